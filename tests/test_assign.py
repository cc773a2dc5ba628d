"""mabware.assign: the golden vectors, the spec text, properties, errors."""

from __future__ import annotations

import hashlib
import json
import math
import random
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mabware.assign import MAX_VERSION, SPEC, assign_unit, cumulative, sample, unit_hash, walk
from mabware.exceptions import ConfigError, MabwareError

VECTORS = Path(__file__).parent / "vectors" / "assign.json"
DOCUMENT: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DOCUMENT["cases"]
N = 100_000


# -- an independent reading of the spec text (module docstring) -------------


def spec_u(experiment: str, version: int, unit_id: str) -> float:
    fields = [experiment.encode("utf-8"), str(version).encode("ascii"), unit_id.encode("utf-8")]
    message = b"mabware.assign.v1" + b"".join(struct.pack(">I", len(f)) + f for f in fields)
    h: int = struct.unpack(">Q", hashlib.blake2b(message, digest_size=8).digest())[0]
    return (h >> 11) / 9007199254740992.0


def spec_cumulative(allocation: Sequence[float]) -> list[float]:
    sums, s = [], 0.0
    for p in allocation:
        s += p
        sums.append(s)
    last = max(i for i, p in enumerate(allocation) if p > 0)
    return sums[:last] + [1.0] * (len(sums) - last)


def spec_walk(table: Sequence[float], u: float) -> int:
    return next(i for i, c in enumerate(table) if u < c)


def within_4_sigma(counts: Sequence[int], allocation: Sequence[float]) -> None:
    n = sum(counts)
    for i, (count, p) in enumerate(zip(counts, allocation, strict=True)):
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(count - n * p) <= 4 * sigma, (i, count, n * p, sigma)


# -- golden vectors ----------------------------------------------------------


def test_vector_file_covers_the_brief() -> None:
    assert DOCUMENT["spec"] == SPEC == "mabware.assign.v1"
    assert len(CASES) >= 200
    assert {len(c["allocation"]) for c in CASES} >= set(range(1, 51))
    assert {0, 1, 2, 2**53, MAX_VERSION} <= {c["version"] for c in CASES}
    ids = [c["unit_id"] for c in CASES]
    assert "" in ids
    assert any(len(i.encode()) >= 1024 for i in ids)
    assert any(max(map(ord, i), default=0) > 0xFFFF for i in ids)  # emoji
    assert any("\u4e00" <= ch <= "\u9fff" for i in ids for ch in i)  # CJK
    allocations = [c["allocation"] for c in CASES]
    assert any(0.0 in a[1:-1] for a in allocations)
    assert any(a[-1] == 0.0 for a in allocations)
    assert any(sorted(a)[-1] == 1.0 and sum(a) == 1.0 and len(a) > 1 for a in allocations)
    assert any(0 < abs(math.fsum(a) - 1) <= 1e-9 for a in allocations)
    assert any(c["u"] in c["cumulative"] for c in CASES)  # u exactly on a boundary


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_vector(case: dict[str, Any]) -> None:
    u = unit_hash(case["experiment"], case["version"], case["unit_id"])
    assert u == case["u"]
    assert abs(u - case["u"]) <= 1e-12
    table = cumulative(case["allocation"])
    assert list(table) == case["cumulative"]
    index = assign_unit(table, case["experiment"], case["version"], case["unit_id"])
    assert index == walk(table, u) == case["arm_index"]
    assert case["arms"][index] == case["arm"]
    assert case["allocation"][index] > 0


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_vector_matches_spec_text(case: dict[str, Any]) -> None:
    u = spec_u(case["experiment"], case["version"], case["unit_id"])
    assert u == case["u"]
    table = spec_cumulative(case["allocation"])
    assert table == case["cumulative"]
    assert spec_walk(table, u) == case["arm_index"]


# -- unit_hash ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("exp1", 2, "u"), ("exp", 12, "u")),
        (("a", 1, "23"), ("a", 12, "3")),
        (("x1", 0, ""), ("x", 10, "")),
    ],
)
def test_length_prefix_separates_fields(
    left: tuple[str, int, str], right: tuple[str, int, str]
) -> None:
    # without the prefixes these would hash the same bytes
    assert "".join(map(str, left)) == "".join(map(str, right))
    assert unit_hash(*left) != unit_hash(*right)


def test_split_between_experiment_and_unit_id_matters() -> None:
    assert unit_hash("ab", 0, "c") != unit_hash("a", 0, "bc")


def test_no_unicode_normalisation() -> None:
    assert unit_hash("e", 0, "Jos\u00e9") != unit_hash("e", 0, "Jose\u0301")


@given(st.text(), st.integers(0, MAX_VERSION), st.text())
def test_unit_hash_is_a_53_bit_fraction_in_unit_interval(
    experiment: str, version: int, unit_id: str
) -> None:
    u = unit_hash(experiment, version, unit_id)
    assert 0.0 <= u < 1.0
    assert (u * 2**53).is_integer()
    assert u == spec_u(experiment, version, unit_id)


# -- cumulative and walk -----------------------------------------------------

weights = st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e6)), min_size=1, max_size=60).filter(
    any
)


def normalise(ws: list[float]) -> list[float]:
    total = sum(ws)
    return [w / total for w in ws]


@given(weights, st.floats(0.0, 1.0, exclude_max=True))
def test_walk_returns_an_arm_with_positive_probability(ws: list[float], u: float) -> None:
    allocation = normalise(ws)
    table = cumulative(allocation)
    i = walk(table, u)
    assert 0 <= i < len(allocation)
    assert allocation[i] > 0
    assert i == spec_walk(table, u)


@given(weights)
def test_cumulative_tail_is_exactly_one(ws: list[float]) -> None:
    allocation = normalise(ws)
    table = cumulative(allocation)
    last = max(i for i, p in enumerate(allocation) if p > 0)
    assert table[last:] == (1.0,) * (len(table) - last)
    assert all(type(c) is float for c in table)
    assert list(table) == spec_cumulative(allocation)


def test_walk_boundaries_belong_to_the_next_arm() -> None:
    table = cumulative([0.0, 0.5, 0.0, 0.5, 0.0])
    assert table == (0.0, 0.5, 0.5, 1.0, 1.0)
    assert walk(table, 0.0) == 1
    assert walk(table, math.nextafter(0.5, 0.0)) == 1
    assert walk(table, 0.5) == 3
    assert walk(table, math.nextafter(1.0, 0.0)) == 3


def test_sum_below_one_leaves_no_gap_at_the_top() -> None:
    table = cumulative([0.5, 0.5 - 9e-10])
    assert table == (0.5, 1.0)
    assert walk(table, 1.0 - 5e-10) == 1


def test_cumulative_accepts_numpy() -> None:
    table = cumulative(np.array([0.2, 0.8]))
    assert table == (0.2, 1.0)
    assert all(type(c) is float for c in table)


# -- frequencies -------------------------------------------------------------

ALLOCATION = [0.5, 0.3, 0.0, 0.15, 0.05]


def test_assign_unit_frequencies_match_allocation() -> None:
    table = cumulative(ALLOCATION)
    counts = [0] * len(ALLOCATION)
    for k in range(N):
        counts[assign_unit(table, "freq", 1, f"user-{k}")] += 1
    assert counts[2] == 0
    within_4_sigma(counts, ALLOCATION)


def test_sample_frequencies_match_allocation() -> None:
    table = cumulative(ALLOCATION)
    rng = random.Random(1234)
    counts = [0] * len(ALLOCATION)
    for _ in range(N):
        counts[sample(table, rng)] += 1
    assert counts[2] == 0
    within_4_sigma(counts, ALLOCATION)


def test_sample_accepts_numpy_generator() -> None:
    table = cumulative([0.25, 0.75])
    rng = np.random.default_rng(7)
    assert {sample(table, rng) for _ in range(200)} == {0, 1}


def test_version_bump_reshuffles_expected_share() -> None:
    allocation = [0.5, 0.3, 0.2]
    table = cumulative(allocation)
    moved = sum(
        assign_unit(table, "shuffle", 4, f"u{k}") != assign_unit(table, "shuffle", 5, f"u{k}")
        for k in range(N)
    )
    q = 1 - sum(p * p for p in allocation)  # independent draws differ
    assert abs(moved / N - q) <= 4 * math.sqrt(q * (1 - q) / N)


# -- errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("e", -1, "u"), r"version must be an int in \[0, 2\*\*63 - 1\], got -1"),
        (("e", 2**63, "u"), r"version must be an int .* got 9223372036854775808"),
        (("e", True, "u"), r"version must be an int .* got True"),
        (("e", 1.0, "u"), r"version must be an int .* got 1\.0"),
        (("e", "1", "u"), r"version must be an int .* got '1'"),
        ((None, 1, "u"), "experiment name must be a str, got NoneType"),
        ((b"e", 1, "u"), "experiment name must be a str, got bytes"),
        (("e", 1, 42), r"unit id must be a str, got int; convert it \(e\.g\. str\(user\.id\)\)"),
        (("e", 1, None), "unit id must be a str, got NoneType"),
        (("e", 1, "\ud800"), "encodable as UTF-8 .* position 0"),
    ],
)
def test_unit_hash_rejects(args: tuple[Any, Any, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        unit_hash(*args)
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, MabwareError)


@pytest.mark.parametrize(
    ("allocation", "match"),
    [
        ([], "allocation is empty"),
        ([0.5, math.nan], r"allocation\[1\] must be finite and >= 0, got nan"),
        ([math.inf], r"allocation\[0\] must be finite and >= 0, got inf"),
        ([-0.1, 1.1], r"allocation\[0\] must be finite and >= 0, got -0\.1"),
        ([10**400], r"allocation\[0\] must be finite"),
        (["0.5", 0.5], r"allocation\[0\] must be a number, got str"),
        ([True], r"allocation\[0\] must be a number, got bool"),
        ([0.5, 0.4], r"must sum to 1 \(within 1e-09\), sums to 0\.9"),
        ([0.0, 0.0], "must sum to 1"),
        ([0.5, 0.5 + 2e-9], "must sum to 1"),
    ],
)
def test_cumulative_rejects(allocation: list[Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cumulative(allocation)


def test_cumulative_tolerates_sums_within_1e9() -> None:
    assert cumulative([0.5, 0.5 + 9e-10]) == (0.5, 1.0)
    assert cumulative([0.5, 0.5 - 9e-10]) == (0.5, 1.0)


@pytest.mark.parametrize("u", [1.0, -0.0001, math.nan, math.inf])
def test_walk_rejects_u_outside_unit_interval(u: float) -> None:
    with pytest.raises(ConfigError, match=r"u must be in \[0, 1\)"):
        walk((0.5, 1.0), u)


def test_sample_rejects_bad_rng() -> None:
    class One:
        def random(self) -> float:
            return 1.0

    with pytest.raises(ConfigError, match=r"rng\.random\(\) must be in \[0, 1\), got 1\.0"):
        sample((0.5, 1.0), One())
