"""Write ``cookie.json``, the golden vectors of the ``mabware.cookie.v1`` spec.

The file is a frozen contract shared with the edge SDK (see README.md here).
This script is kept so that anyone can see how the cases were made and
check that it still reproduces the committed file::

    PYTHONPATH=. python tests/vectors/make_cookie_vectors.py --check

Without ``--check`` it writes the file, but refuses to replace an existing
file whose content differs: a changed vector means a changed spec, which
takes a new spec id and a new file, never a silent regeneration.

The output is deterministic. Keys are ``SHA-512("mabware.cookie.v1 vectors
<SEED> key <label>")`` cut to their length, nonces ``SHA-256("... nonce
<n>")`` cut to 12 bytes, the clock is fixed, and every other random choice
comes from one seeded ``random.Random``. Tampered and hand-made tokens are
sealed by ``seal`` below, an independent reading of the spec that is
checked against ``CookieCodec`` on every valid case.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
from _frozen import generate
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mabware.cookies import (
    AUTH_FAILED,
    BAD_PAYLOAD,
    BAD_VERSION,
    DEFAULT_SKEW,
    EXPIRED,
    FUTURE,
    MALFORMED,
    MAX_AGE_LIMIT,
    OVERSIZE,
    SPEC,
    UNKNOWN_KEY,
    CookieCodec,
    CookieEntry,
    CookieState,
)

SEED = 20261127
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
OUTPUT = Path(__file__).with_name("cookie.json")
DESCRIPTION = (
    "Golden vectors for mabware.cookie.v1 (spec text: the docstring of mabware/cookies.py). "
    "'keys' lists every secret exactly as a user passes it ('text': a str; 'bytes_hex': raw "
    "bytes), with the derived aes_key and key_id. Each case configures a decoder with "
    "secret_keys (labels, in order), cookie name, max_age, skew and a clock returning now, "
    "and decodes token. A valid case must decode to state (entries in order) with rotated; "
    "encrypting plaintext_hex with the key encrypted_with, nonce_hex and name gives token "
    "exactly, and plaintext_hex is the shortest-form msgpack of state. An invalid case must "
    f"be rejected with reason. Keys: SHA-512('mabware.cookie.v1 vectors {SEED} key <label>') "
    "cut to length. Integers go up to 2**63 - 1: parse them exactly. Frozen: never "
    "regenerate; a spec change gets a new spec id and file."
)

Case = dict[str, Any]
URLSAFE = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"

# label -> (form, length in bytes): "text" is url-safe base64 without padding,
# "padded" with it, "bytes" raw; "x" is never configured (an unknown key).
KEY_FORMS = {
    "k0": ("text", 32),
    "k1": ("text", 32),
    "k2": ("bytes", 32),
    "k3": ("text", 64),
    "k4": ("padded", 32),
    "k5": ("bytes", 48),
    "x": ("text", 32),
}


def secret(label: str) -> bytes:
    _, length = KEY_FORMS[label]
    return hashlib.sha512(f"mabware.cookie.v1 vectors {SEED} key {label}".encode()).digest()[
        :length
    ]


def user_key(label: str) -> str | bytes:
    """The key as a user passes it to CookieCodec."""
    form, _ = KEY_FORMS[label]
    data = secret(label)
    if form == "bytes":
        return data
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text if form == "padded" else text.rstrip("=")


def derive(label: str) -> tuple[bytes, bytes]:
    """(aes_key, key_id), straight from the spec text."""
    ikm = secret(label)
    aes = HKDF(hashes.SHA256(), 32, None, b"mabware.cookie.v1.aes").derive(ikm)
    kid = HKDF(hashes.SHA256(), 4, None, b"mabware.cookie.v1.kid").derive(ikm)
    return aes, kid


def key_table() -> list[dict[str, Any]]:
    rows = []
    for label in KEY_FORMS:
        key = user_key(label)
        aes, kid = derive(label)
        row: dict[str, Any] = {"label": label}
        row["text" if isinstance(key, str) else "bytes_hex"] = (
            key if isinstance(key, str) else key.hex()
        )
        row.update(secret_hex=secret(label).hex(), aes_key_hex=aes.hex(), key_id_hex=kid.hex())
        rows.append(row)
    return rows


def nonce(n: int) -> bytes:
    return hashlib.sha256(f"mabware.cookie.v1 vectors {SEED} nonce {n}".encode()).digest()[:12]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def seal(
    plaintext: bytes, label: str, name: str, nonce: bytes, *, version: int = 1, kid: bytes = b""
) -> str:
    """A token from raw parts (spec step 3); ``version``/``kid`` override the header."""
    aes, real_kid = derive(label)
    header = bytes([version]) + (kid or real_kid)
    sealed = AESGCM(aes).encrypt(nonce, plaintext, b"mabware.cookie" + header + name.encode())
    return b64(header + nonce + sealed)


def plaintext(state: CookieState) -> bytes:
    rows = {
        e: [x.arm, x.version, x.decision, x.assigned, x.rewarded] for e, x in state.entries.items()
    }
    packed: bytes = msgpack.packb([state.issued, rows], use_bin_type=True)
    return packed


def state_json(state: CookieState) -> dict[str, Any]:
    entries = [
        {
            "experiment": e,
            "arm": x.arm,
            "version": x.version,
            "decision": x.decision,
            "assigned": x.assigned,
            "rewarded": x.rewarded,
        }
        for e, x in state.entries.items()
    ]
    return {"issued": state.issued, "entries": entries}


def state_from_json(data: dict[str, Any]) -> CookieState:
    """The inverse of ``state_json`` (tests use it too)."""
    entries = {
        row["experiment"]: CookieEntry(
            row["arm"], row["version"], row["decision"], row["assigned"], row["rewarded"]
        )
        for row in data["entries"]
    }
    return CookieState(data["issued"], entries)


def codec_from_case(case: Case) -> CookieCodec:
    """The decoder a case describes (tests use it too)."""
    keys = [user_key(label) for label in case["secret_keys"]]
    now = case["now"]
    return CookieCodec(
        keys, name=case["name"], max_age=case["max_age"], skew=case["skew"], clock=lambda: now
    )


class Builder:
    def __init__(self) -> None:
        self.count = 0

    def next_nonce(self) -> bytes:
        self.count += 1
        return nonce(self.count)

    def valid(
        self,
        note: str,
        state: CookieState,
        *,
        keys: tuple[str, ...] = ("k0",),
        signer: int = 0,
        name: str = "mabware",
        now: float = NOW,
        max_age: int = MAX_AGE_LIMIT,
        skew: float = DEFAULT_SKEW,
        fixed_nonce: bytes | None = None,
    ) -> Case:
        """Encode with CookieCodec under keys[signer], check against ``seal``, decode."""
        label = keys[signer]
        the_nonce = fixed_nonce if fixed_nonce is not None else self.next_nonce()
        encoder = CookieCodec([user_key(label)], name=name, random_bytes=lambda n: the_nonce)
        token = encoder.encode(state)
        assert token == seal(plaintext(state), label, name, the_nonce)
        case: Case = {
            "note": note,
            "secret_keys": list(keys),
            "name": name,
            "now": now,
            "max_age": max_age,
            "skew": skew,
            "token": token,
            "encrypted_with": label,
            "nonce_hex": the_nonce.hex(),
            "plaintext_hex": plaintext(state).hex(),
            "rotated": signer > 0,
            "state": state_json(state),
        }
        decoded = codec_from_case(case).decode(token)
        assert decoded.reason is None, (note, decoded)
        assert decoded.state == state, note
        assert decoded.rotated == (signer > 0)
        return case

    def invalid(
        self,
        kind: str,
        note: str,
        token: str,
        reason: str,
        *,
        keys: tuple[str, ...] = ("k0",),
        name: str = "mabware",
        now: float = NOW,
        max_age: int = MAX_AGE_LIMIT,
        skew: float = DEFAULT_SKEW,
    ) -> Case:
        case: Case = {
            "class": kind,
            "note": note,
            "secret_keys": list(keys),
            "name": name,
            "now": now,
            "max_age": max_age,
            "skew": skew,
            "token": token,
            "reason": reason,
        }
        decoded = codec_from_case(case).decode(token)
        assert decoded.state is None, (kind, note)
        assert decoded.reason == reason, (kind, note, decoded)
        return case


def entry(
    arm: str, assigned: int = NOW - 3600, *, version: int = 1, rewarded: bool = False
) -> CookieEntry:
    return CookieEntry(arm, version, 12345, assigned, rewarded)


def random_state(rng: random.Random, n: int) -> CookieState:
    alphabet = "abcxyz019-_.:@ éüß中文😀"
    entries: dict[str, CookieEntry] = {}
    while len(entries) < n:
        experiment = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 21)))
        entries[experiment] = CookieEntry(
            "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 21))),
            rng.choice([0, 1, 2, rng.randrange(2**63)]),
            rng.randrange(2**63),
            NOW - rng.randrange(MAX_AGE_LIMIT),
            rng.random() < 0.3,
        )
    return CookieState(NOW - rng.randrange(MAX_AGE_LIMIT), entries)


def valid_cases(b: Builder, rng: random.Random) -> Iterator[Case]:
    one = CookieState(NOW - 60, {"headline": entry("bold")})
    two = CookieState(
        NOW - 86_400,
        {"headline": entry("control"), "pricing": entry("b", rewarded=True, version=3)},
    )
    yield b.valid("no entries", CookieState(NOW, {}))
    yield b.valid("one entry", one)
    yield b.valid("two entries, one rewarded", two)
    many = {f"exp-{i:02d}": entry(f"arm-{i % 4}", NOW - i, rewarded=i % 3 == 0) for i in range(40)}
    yield b.valid("40 entries", CookieState(NOW - 1000, many))
    for n in (15, 16):  # msgpack fixmap -> map16
        entries = {f"e{i}": entry("a", NOW - i) for i in range(n)}
        yield b.valid(f"{n} entries (map header width)", CookieState(NOW, entries))
    yield b.valid(
        "unicode names: NFC and NFD accents, CJK, emoji ZWJ, empty arm, U+10FFFF",
        CookieState(
            NOW - 5,
            {
                "Jos\u00e9": entry("contr\u00f4le"),
                "Jose\u0301": entry("\u53d8\u4f53"),
                "\U0001f469\u200d\U0001f4bb": entry(""),
                "": entry("\U0010ffff"),
            },
        ),
    )
    yield b.valid(
        "largest and smallest integers",
        CookieState(
            NOW - 1,
            {
                "max": CookieEntry("a", 2**63 - 1, 2**63 - 1, 2**63 - 1, True),
                "zero": CookieEntry("b", 0, 0, 0, False),
            },
        ),
    )
    widths = [127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 + 1]
    yield b.valid(
        "integers at every msgpack width boundary",
        CookieState(NOW, {f"w{w}": CookieEntry("a", w, w, w, w % 2 == 0) for w in widths}),
    )
    yield b.valid(
        "strings at msgpack width boundaries (31, 32, 255, 256 bytes)",
        CookieState(NOW, {"s" * n: entry("a" * n) for n in (31, 32, 255, 256)}),
    )
    yield b.valid("rotated: second of two keys", two, keys=("k0", "k1"), signer=1)
    yield b.valid("first of two keys", two, keys=("k0", "k1"))
    yield b.valid("rotated: third of three keys", one, keys=("k1", "k2", "k0"), signer=2)
    yield b.valid("raw 32-byte key", one, keys=("k2",))
    yield b.valid("raw 48-byte key, rotated", one, keys=("k0", "k5"), signer=1)
    yield b.valid("64-byte text key", one, keys=("k3",))
    yield b.valid("text key with '=' padding", one, keys=("k4",))
    for name in ("mab", "__Host-mabware", "a!#$%&'*+-.^_`|~z"):
        yield b.valid(f"cookie name {name!r}", one, name=name)
    yield b.valid(
        "expiry boundary: now - issued == max_age", CookieState(NOW - 3600, {}), max_age=3600
    )
    yield b.valid("max_age 1, issued a second ago", one_at(NOW - 1), max_age=1)
    yield b.valid("skew boundary: issued - now == skew", one_at(NOW + 60))
    yield b.valid("skew 0, issued == now, fractional clock", one_at(NOW), now=NOW + 0.75, skew=0)
    yield b.valid(
        "skew 0.5, issued 0.5 s ahead of a fractional clock", one_at(NOW), now=NOW - 0.5, skew=0.5
    )
    yield b.valid("all-zero nonce", one, fixed_nonce=bytes(12))
    yield b.valid("all-ones nonce", one, fixed_nonce=b"\xff" * 12)
    yield b.valid("token of exactly 4096 characters", state_of_size(4096))
    for n in (1, 3, 8):
        yield b.valid(f"random state, {n} entries", random_state(rng, n))


def one_at(issued: int) -> CookieState:
    return CookieState(issued, {"headline": entry("bold", issued)})


def state_of_size(chars: int) -> CookieState:
    """A one-entry state whose token is ``chars`` characters (a multiple of 4)."""
    raw = chars * 3 // 4
    base = len(plaintext(CookieState(NOW, {"x": entry("")})))
    pad = raw - 33 - base
    # the arm's str header grows from 1 to 3 bytes (str16) for lengths >= 256
    return CookieState(NOW, {"x": entry("a" * (pad - 2))})


def flip(token: str, index: int, bit: int = 0) -> str:
    raw = bytearray(unb64(token))
    raw[index] ^= 1 << bit
    return b64(bytes(raw))


def invalid_cases(b: Builder, valid: list[Case]) -> Iterator[Case]:
    base = next(c for c in valid if c["note"] == "two entries, one rewarded")
    token = base["token"]
    raw = unb64(token)
    n = len(raw)
    pt = bytes.fromhex(base["plaintext_hex"])

    yield b.invalid("bad_tag", "last bit of the tag flipped", flip(token, n - 1, 7), AUTH_FAILED)
    yield b.invalid(
        "bad_tag", "a bit of the first tag byte flipped", flip(token, n - 16), AUTH_FAILED
    )
    yield b.invalid("bad_ciphertext", "a ciphertext bit flipped", flip(token, 17, 3), AUTH_FAILED)
    yield b.invalid("bad_nonce", "a nonce bit flipped", flip(token, 5, 1), AUTH_FAILED)
    yield b.invalid("truncated", "last byte removed", b64(raw[:-1]), AUTH_FAILED)
    yield b.invalid(
        "truncated", "only header, nonce and tag (33 bytes)", b64(raw[:33]), AUTH_FAILED
    )
    yield b.invalid("truncated", "32 bytes: too short", b64(raw[:32]), MALFORMED)
    yield b.invalid("truncated", "last character removed (length 1 mod 4)", token[:-1], MALFORMED)
    yield b.invalid("truncated", "empty string", "", MALFORMED)
    yield b.invalid("appended", "one byte appended", b64(raw + b"\x00"), AUTH_FAILED)

    std = base64.b64encode(raw).decode("ascii")
    assert "+" in std or "/" in std, "pick a base token whose base64 has + or /"
    yield b.invalid("bad_base64", "standard alphabet (+ and /), padded", std, MALFORMED)
    yield b.invalid("bad_base64", "standard alphabet, unpadded", std.rstrip("="), MALFORMED)
    padded = base64.urlsafe_b64encode(raw).decode("ascii")
    assert padded.endswith("=")
    yield b.invalid("bad_base64", "url-safe with '=' padding", padded, MALFORMED)
    yield b.invalid("bad_base64", "a space inside", token[:10] + " " + token[10:], MALFORMED)
    yield b.invalid("bad_base64", "trailing newline", token + "\n", MALFORMED)
    yield b.invalid("bad_base64", "a non-ASCII letter", token[:-1] + "\u00e9", MALFORMED)
    yield b.invalid("bad_base64", "the literal 'invalid'", "invalid", MALFORMED)
    assert len(token) % 4 in (2, 3)
    # the last character's unused low bits are zero; set the lowest one
    twin = URLSAFE[URLSAFE.index(token[-1]) | 1]
    yield b.invalid(
        "non_canonical_base64",
        "unused low bits of the last character set",
        token[:-1] + twin,
        MALFORMED,
    )

    _, kid_x = derive("x")
    _, kid_k1 = derive("k1")
    under_x = seal(pt, "x", "mabware", b.next_nonce())
    yield b.invalid("unknown_key_id", "a key nobody configured", under_x, UNKNOWN_KEY)
    under_k1 = seal(pt, "k1", "mabware", b.next_nonce())
    yield b.invalid("unknown_key_id", "old key removed", under_k1, UNKNOWN_KEY, keys=("k0",))
    yield b.invalid(
        "unknown_key_id",
        "key id of key x, sealed under k0",
        seal(pt, "k0", "mabware", b.next_nonce(), kid=kid_x),
        UNKNOWN_KEY,
        keys=("k0", "k1"),
    )
    yield b.invalid(
        "swapped_key_id",
        "key id of another configured key (k1), sealed under k0",
        seal(pt, "k0", "mabware", b.next_nonce(), kid=kid_k1),
        AUTH_FAILED,
        keys=("k0", "k1"),
    )

    def at(issued: int) -> str:
        return seal(plaintext(one_at(issued)), "k0", "mabware", b.next_nonce())

    yield b.invalid("expired", "now - issued == max_age + 1", at(NOW - 3601), EXPIRED, max_age=3600)
    yield b.invalid("expired", "issued long ago (0)", at(0), EXPIRED)
    yield b.invalid(
        "expired",
        "fractional: 0.25 s past max_age",
        at(NOW - 10),
        EXPIRED,
        now=NOW + 0.25,
        max_age=10,
    )
    yield b.invalid("future_beyond_skew", "issued - now == skew + 1", at(NOW + 61), FUTURE)
    yield b.invalid("future_beyond_skew", "skew 0, issued 1 s ahead", at(NOW + 1), FUTURE, skew=0)
    yield b.invalid("future_beyond_skew", "issued 2**63 - 1", at(2**63 - 1), FUTURE)

    yield b.invalid(
        "wrong_cookie_name", "decoded as 'mabware2'", token, AUTH_FAILED, name="mabware2"
    )
    yield b.invalid("wrong_cookie_name", "name differs in case", token, AUTH_FAILED, name="Mabware")
    for version in (0, 2, 255):
        yield b.invalid(
            "wrong_version_byte",
            f"version byte {version} (otherwise authentic)",
            seal(pt, "k0", "mabware", b.next_nonce(), version=version),
            BAD_VERSION,
        )
    patched = b64(b"\x02" + raw[1:])
    yield b.invalid("wrong_version_byte", "version byte 2 patched in", patched, BAD_VERSION)

    yield b.invalid("oversize", "4097 characters of 'A'", "A" * 4097, OVERSIZE)
    yield b.invalid("oversize", "4100 characters, also not base64", "+" * 4100, OVERSIZE)
    big = state_of_size(4096)
    big = CookieState(big.issued, {"x": entry(big.entries["x"].arm + "a")})
    long_token = seal(plaintext(big), "k0", "mabware", b.next_nonce())
    assert len(long_token) == 4098
    yield b.invalid("oversize", "authentic token of 4098 characters", long_token, OVERSIZE)

    def sealed(payload: bytes) -> str:
        return seal(payload, "k0", "mabware", b.next_nonce())

    bad_msgpack = [
        ("empty plaintext", b""),
        ("reserved byte 0xc1", b"\xc1"),
        ("array header only", b"\x92"),
        ("trailing byte after a valid payload", pt + b"\x00"),
        (
            "invalid UTF-8 in a str",
            msgpack.packb([NOW, {"e": ["\x00", 1, 2, 3, False]}]).replace(b"\xa1\x00", b"\xa1\xff"),
        ),
    ]
    for note, payload in bad_msgpack:
        yield b.invalid("valid_aead_invalid_msgpack", note, sealed(payload), BAD_PAYLOAD)

    good = [NOW, {"e": ["a", 1, 2, 3, False]}]
    wrong: list[tuple[str, Any]] = [
        ("nil", None),
        ("a map at the top", {"issued": NOW}),
        ("array of 3", [NOW, {}, 0]),
        ("array of 1", [NOW]),
        ("issued negative", [-1, {}]),
        ("issued 2**63", [2**63, {}]),
        ("issued a float", [float(NOW), {}]),
        ("issued a bool", [True, {}]),
        ("entries an array", [NOW, [["e", ["a", 1, 2, 3, False]]]]),
        ("entries nil", [NOW, None]),
        ("entry of 4", [NOW, {"e": ["a", 1, 2, 3]}]),
        ("entry of 6", [NOW, {"e": ["a", 1, 2, 3, False, 0]}]),
        ("entry a map", [NOW, {"e": {"arm": "a"}}]),
        ("arm bin", [NOW, {"e": [b"a", 1, 2, 3, False]}]),
        ("arm an int", [NOW, {"e": [7, 1, 2, 3, False]}]),
        ("experiment bin", [NOW, {b"e": ["a", 1, 2, 3, False]}]),
        ("experiment an int", [NOW, {7: ["a", 1, 2, 3, False]}]),
        ("rewarded 0", [NOW, {"e": ["a", 1, 2, 3, 0]}]),
        ("rewarded nil", [NOW, {"e": ["a", 1, 2, 3, None]}]),
        ("version a bool", [NOW, {"e": ["a", True, 2, 3, False]}]),
        ("version negative", [NOW, {"e": ["a", -1, 2, 3, False]}]),
        ("decision 2**63", [NOW, {"e": ["a", 1, 2**63, 3, False]}]),
        ("decision 2**64 - 1", [NOW, {"e": ["a", 1, 2**64 - 1, 3, False]}]),
        ("assigned a float", [NOW, {"e": ["a", 1, 2, 3.0, False]}]),
        ("an ext value", [NOW, {"e": ["a", 1, 2, msgpack.ExtType(1, b"x"), False]}]),
    ]
    for note, obj in wrong:
        packed = msgpack.packb(obj, use_bin_type=True, strict_types=False)
        yield b.invalid("valid_aead_wrong_schema", note, sealed(packed), BAD_PAYLOAD)
    # a map with a duplicate key: two copies of the entry of `good`
    one_entry = msgpack.packb(good, use_bin_type=True)
    prefix, rest = one_entry[:7], one_entry[7:]  # fixarray(2), uint32 NOW, fixmap(1)
    assert prefix[-1] == 0x81
    duplicate = prefix[:-1] + b"\x82" + rest + rest
    yield b.invalid(
        "valid_aead_wrong_schema", "duplicate experiment key", sealed(duplicate), BAD_PAYLOAD
    )


def build() -> dict[str, Any]:
    rng = random.Random(SEED)
    b = Builder()
    valid = list(valid_cases(b, rng))
    invalid = list(invalid_cases(b, valid))
    return {
        "spec": SPEC,
        "description": DESCRIPTION,
        "keys": key_table(),
        "valid": valid,
        "invalid": invalid,
    }


def main(argv: list[str] | None = None) -> int:
    sections = ["keys", "valid", "invalid"]
    return generate(__doc__ or "", build, OUTPUT, sections, _counts, argv)


def _counts(document: dict[str, Any]) -> str:
    return f"{len(document['valid'])} valid, {len(document['invalid'])} invalid cases"


if __name__ == "__main__":
    sys.exit(main())
