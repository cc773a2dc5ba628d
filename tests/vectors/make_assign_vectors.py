"""Write ``assign.json``, the golden vectors of the ``mabware.assign.v1`` spec.

The file is a frozen contract shared with the edge SDK (see README.md here).
This script is kept so that anyone can see how the cases were chosen and
check that it still reproduces the committed file::

    PYTHONPATH=. python tests/vectors/make_assign_vectors.py --check

Without ``--check`` it writes the file, but refuses to replace an existing
file whose content differs: a changed vector means a changed spec, which
takes a new spec id and a new file, never a silent regeneration.

The output is deterministic: every random choice comes from one seeded
``random.Random``.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _frozen import generate

from mabware.assign import SPEC, cumulative, unit_hash, walk

SEED = 20240601
OUTPUT = Path(__file__).with_name("assign.json")
DESCRIPTION = (
    "Golden vectors for mabware.assign.v1 (spec text: the docstring of "
    "mabware/assign.py). For each case, u == unit_hash(experiment, version, unit_id) "
    "exactly, cumulative == cumulative(allocation) exactly, and arm_index == "
    "walk(cumulative, u), the first index i with u < cumulative[i]; arm == "
    "arms[arm_index]. Floats are written with Python repr() and round-trip exactly; "
    "versions go up to 2**63 - 1 and must be parsed as exact integers. Frozen: "
    "never regenerate; a spec change gets a new spec id and file."
)

Case = dict[str, Any]


def make_case(
    note: str,
    experiment: str,
    version: int,
    unit_id: str,
    allocation: list[float],
    arms: list[str] | None = None,
) -> Case:
    """Compute one case from its inputs with the reference module."""
    if arms is None:
        arms = [f"arm{i}" for i in range(len(allocation))]
    table = cumulative(allocation)
    u = unit_hash(experiment, version, unit_id)
    index = walk(table, u)
    assert allocation[index] > 0.0
    return {
        "note": note,
        "experiment": experiment,
        "version": version,
        "unit_id": unit_id,
        "arms": arms,
        "allocation": allocation,
        "cumulative": list(table),
        "u": u,
        "arm_index": index,
        "arm": arms[index],
    }


def random_allocation(rng: random.Random, n: int, zero_share: float = 0.0) -> list[float]:
    """A random probability vector; each arm is zero with ``zero_share``."""
    weights = [0.0 if rng.random() < zero_share else rng.expovariate(1.0) for _ in range(n)]
    if not any(weights):
        weights[rng.randrange(n)] = 1.0
    total = sum(weights)
    return [w / total for w in weights]


def random_id(rng: random.Random) -> str:
    return f"user-{rng.randrange(10**9)}"


UNICODE_IDS = [
    ("accents, NFC", "José Müller"),
    ("accents, NFD (no normalisation: differs from NFC)", "Jose\u0301 Mu\u0308ller"),
    ("precomposed e-acute alone", "\u00e9"),
    ("decomposed e-acute alone", "e\u0301"),
    ("French", "élève-ça-où"),
    ("German sharp s (no case folding)", "Straße"),
    ("German sharp s, upper-case spelling", "STRASSE"),
    ("CJK", "用户一二三"),
    ("Japanese kana and kanji", "ユーザー名前"),
    ("Korean", "사용자"),
    ("Cyrillic", "пользователь"),
    ("Greek", "χρήστης"),
    ("Arabic (right to left)", "مستخدم"),
    ("Hebrew", "משתמש"),
    ("Devanagari", "उपयोगकर्ता"),
    ("Thai", "ผู้ใช้"),
    ("emoji, 4-byte UTF-8", "😀"),
    ("emoji with skin tone", "👍🏽"),
    ("emoji ZWJ family", "👨\u200d👩\u200d👧\u200d👦"),
    ("flag (regional indicators)", "🇫🇷"),
    ("mathematical alphanumerics (4-byte)", "\U0001d4b0\U0001d4c8\U0001d452\U0001d4c7"),
    ("mixed scripts and emoji", "bob-鮑勃-\u0431\u043e\u0431-🎉"),
    ("NUL byte inside", "a\x00b"),
    ("NUL only", "\x00"),
    ("control characters", "\t\n\r"),
    ("leading and trailing spaces (no trimming)", "  user-1  "),
    ("JSON specials", '"quote" \\backslash/ {brace}'),
    ("BOM character", "\ufeffuser"),
    ("highest code point", "\U0010ffff"),
    ("non-characters and replacement char", "\ufffd\ufffe"),
]

UNICODE_EXPERIMENTS = [
    ("unicode experiment name", "título-é"),
    ("CJK experiment name", "标题测试"),
    ("emoji experiment name", "🚀-launch"),
    ("empty experiment name", ""),
]

VERSIONS = [
    0,
    1,
    2,
    9,
    10,
    99,
    100,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**53 - 1,
    2**53,
    2**53 + 1,
    2**63 - 1,
]


def basic_cases(rng: random.Random) -> Iterator[Case]:
    experiments = ["headline", "checkout-button", "price_test_2024"]
    allocations = [[0.5, 0.5], [0.2, 0.3, 0.5], [0.7, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]]
    for experiment in experiments:
        for version in (0, 1, 2):
            for k in range(3):
                allocation = allocations[(k + version) % len(allocations)]
                yield make_case("ASCII", experiment, version, f"user-{k + 1}", list(allocation))
    for _ in range(6):
        yield make_case("ASCII, random id", "headline", 1, random_id(rng), [0.5, 0.5])
    yield make_case(
        "named arms",
        "headline",
        3,
        "customer-42",
        [0.6, 0.4],
        arms=["control", "bold"],
    )


def unicode_cases(rng: random.Random) -> Iterator[Case]:
    for note, unit_id in UNICODE_IDS:
        yield make_case(f"unicode id: {note}", "headline", 1, unit_id, [0.3, 0.3, 0.4])
    for note, experiment in UNICODE_EXPERIMENTS:
        for unit_id in ("user-1", "ユーザー"):
            yield make_case(note, experiment, 2, unit_id, [0.5, 0.25, 0.25])
    yield make_case(
        "unicode arm names (not hashed)",
        "headline",
        0,
        "user-7",
        [0.5, 0.5],
        arms=["contrôle", "变体"],
    )


def empty_and_long_cases(rng: random.Random) -> Iterator[Case]:
    for version in (0, 1, 2):
        yield make_case("empty unit id", "headline", version, "", [0.5, 0.5])
    yield make_case("empty unit id and experiment", "", 0, "", [0.1, 0.9])
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    ascii_1k = "".join(rng.choice(letters) for _ in range(1024))
    yield make_case("long id: 1024 ASCII bytes", "headline", 1, ascii_1k, [0.2, 0.3, 0.5])
    yield make_case("long id: 1023 ASCII bytes", "headline", 1, ascii_1k[:-1], [0.2, 0.3, 0.5])
    yield make_case(
        "long id: 1024 bytes of 2-byte UTF-8", "headline", 1, "é" * 512, [0.2, 0.3, 0.5]
    )
    yield make_case(
        "long id: 1024 bytes of 4-byte UTF-8", "headline", 1, "😀" * 256, [0.2, 0.3, 0.5]
    )
    yield make_case("long id: 4096 ASCII bytes", "headline", 1, ascii_1k * 4, [0.5, 0.5])
    yield make_case("long experiment name: 1024 bytes", ascii_1k, 0, "user-1", [0.25, 0.25, 0.5])


def version_cases(rng: random.Random) -> Iterator[Case]:
    for version in VERSIONS:
        for unit_id in ("user-1", "user-2"):
            yield make_case(f"version {version}", "headline", version, unit_id, [0.5, 0.5])


def length_prefix_cases() -> Iterator[Case]:
    # Neighbouring pairs whose fields, concatenated without the length
    # prefixes, give the same bytes: the prefixes must make them differ.
    pairs = [
        (("exp1", 2, "u"), ("exp", 12, "u")),
        (("a", 1, "23"), ("a", 12, "3")),
        (("x1", 0, ""), ("x", 10, "")),
        (("headline", 1, "0user"), ("headline", 10, "user")),
    ]
    for left, right in pairs:
        for experiment, version, unit_id in (left, right):
            yield make_case(
                "length prefix: unprefixed concatenation equals its neighbour's",
                experiment,
                version,
                unit_id,
                [0.5, 0.5],
            )
    for experiment, unit_id in (("ab", "c"), ("a", "bc")):
        yield make_case(
            "length prefix: the split of 'abc' between experiment and unit id moves",
            experiment,
            0,
            unit_id,
            [0.5, 0.5],
        )


def arm_count_cases(rng: random.Random) -> Iterator[Case]:
    for n in range(1, 51):
        yield make_case(f"{n} arms", "many-arms", 1, random_id(rng), random_allocation(rng, n))
    for n in (1, 2, 3, 10, 50):
        yield make_case(f"{n} arms, uniform", "uniform", 0, random_id(rng), [1.0 / n] * n)


def zero_arm_cases(rng: random.Random) -> Iterator[Case]:
    fixed = [
        ("zero arm first", [0.0, 0.5, 0.5]),
        ("zero arm in the middle", [0.5, 0.0, 0.5]),
        ("zero arm at the end", [0.5, 0.5, 0.0]),
        ("zero arms at both ends", [0.0, 0.4, 0.6, 0.0]),
        ("several zero arms at the end", [0.3, 0.7, 0.0, 0.0, 0.0]),
        ("alternating zero arms", [0.0, 0.25, 0.0, 0.25, 0.0, 0.5, 0.0]),
        ("negative zero arm (counts as zero)", [0.5, -0.0, 0.5]),
    ]
    for note, allocation in fixed:
        for k in range(3):
            yield make_case(note, "zeros", k, f"user-{k}", allocation)
    for _ in range(12):
        n = rng.randrange(3, 20)
        yield make_case(
            "random allocation with zero arms",
            "zeros",
            rng.randrange(3),
            random_id(rng),
            random_allocation(rng, n, zero_share=0.4),
        )


def one_hot_cases(rng: random.Random) -> Iterator[Case]:
    for n, hot in [(1, 0), (2, 0), (2, 1), (3, 1), (5, 0), (5, 4), (10, 7), (50, 49), (50, 0)]:
        allocation = [0.0] * n
        allocation[hot] = 1.0
        yield make_case(f"one-hot: arm {hot} of {n}", "one-hot", 1, random_id(rng), allocation)


def off_sum_cases(rng: random.Random) -> Iterator[Case]:
    fixed = [
        ("ten tenths (float sum 0.9999999999999999)", [0.1] * 10),
        ("thirds", [1 / 3] * 3),
        ("sevenths", [1 / 7] * 7),
        ("sum 1 - 9e-10", [0.5, 0.5 - 9e-10]),
        ("sum 1 + 9e-10", [0.5, 0.5 + 9e-10]),
        ("sum 1 - 5e-10, tiny last arm", [0.6, 0.4 - 5e-10 - 1e-12, 1e-12]),
        ("sum 1 + 5e-10, entry before the last arm above 1", [0.5, 0.5 + 5e-10, 1e-12]),
        ("sum 1 - 9e-10 with trailing zero arms", [0.25, 0.75 - 9e-10, 0.0, 0.0]),
    ]
    for note, allocation in fixed:
        for k in range(3):
            yield make_case(note, "off-sum", k, f"user-{k}", allocation)
    for _ in range(10):
        n = rng.randrange(2, 12)
        base = random_allocation(rng, n)
        scale = 1.0 + rng.uniform(-9e-10, 9e-10)
        yield make_case(
            "random allocation scaled off 1 (within 1e-9)",
            "off-sum",
            1,
            random_id(rng),
            [p * scale for p in base],
        )


def boundary_cases(rng: random.Random) -> Iterator[Case]:
    """Allocations built so that a cumulative boundary sits at or next to u."""
    shifts = [
        ("boundary == u (u belongs to the next arm)", 0),
        ("boundary one ulp above u", 1),
        ("boundary one ulp below u", -1),
    ]
    made = 0
    attempt = 0
    while made < 30:
        attempt += 1
        unit_id = f"edge-{attempt}"
        version = attempt % 3
        u = unit_hash("boundary", version, unit_id)
        if not 0.05 < u < 0.95:
            continue
        note, shift = shifts[made % 3]
        target = u if shift == 0 else math.nextafter(u, math.inf if shift > 0 else -math.inf)
        shape = made // 3 % 3
        if shape == 0:
            # two arms: the boundary is cumulative[0]
            allocation, j = [target, 1.0 - target], 0
        else:
            # arms before j share target, arm j closes at target exactly,
            # the rest (with a zero arm after j in shape 2) share 1 - target
            j = rng.randrange(1, 4)
            head = random_allocation(rng, j)
            head = [p * target * 0.9 for p in head]
            s = 0.0
            for p in head:
                s += p
            tail_n = rng.randrange(1, 4)
            tail = [(1.0 - target) / tail_n] * tail_n
            if shape == 2:
                tail = [0.0, *tail]
            allocation = [*head, target - s, *tail]
        table = cumulative(allocation)
        if table[j] != target:
            continue  # the float sums missed the target; try another unit
        case = make_case(
            f"{note}; {len(allocation)} arms, boundary at cumulative[{j}]",
            "boundary",
            version,
            unit_id,
            allocation,
        )
        expected = (
            j if shift > 0 else next(i for i in range(j + 1, len(allocation)) if allocation[i] > 0)
        )
        assert case["arm_index"] == expected, case
        made += 1
        yield case


def random_cases(rng: random.Random, count: int) -> Iterator[Case]:
    alphabet = "abcxyz019-_.:@éüß中文😀 "
    for _ in range(count):
        length = rng.randrange(0, 40)
        unit_id = "".join(rng.choice(alphabet) for _ in range(length))
        yield make_case(
            "random",
            rng.choice(["headline", "checkout", "pricing", "onboarding-v2"]),
            rng.choice([0, 1, 2, rng.randrange(2**63)]),
            unit_id,
            random_allocation(rng, rng.randrange(1, 51), zero_share=rng.choice([0.0, 0.3])),
        )


def build() -> dict[str, Any]:
    rng = random.Random(SEED)
    cases: list[Case] = []
    cases += basic_cases(rng)
    cases += unicode_cases(rng)
    cases += empty_and_long_cases(rng)
    cases += version_cases(rng)
    cases += length_prefix_cases()
    cases += arm_count_cases(rng)
    cases += zero_arm_cases(rng)
    cases += one_hot_cases(rng)
    cases += off_sum_cases(rng)
    cases += boundary_cases(rng)
    cases += random_cases(rng, 40)
    return {"spec": SPEC, "description": DESCRIPTION, "cases": cases}


def main(argv: list[str] | None = None) -> int:
    return generate(__doc__ or "", build, OUTPUT, ["cases"], _counts, argv)


def _counts(document: dict[str, Any]) -> str:
    return f"{len(document['cases'])} cases"


if __name__ == "__main__":
    sys.exit(main())
