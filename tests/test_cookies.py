"""mabware.cookies: golden vectors, round trips, tampering, rotation, fitting, settings."""

from __future__ import annotations

import base64
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from mabware import cookies
from mabware.cookies import (
    AUTH_FAILED,
    BAD_PAYLOAD,
    BAD_VERSION,
    EXPIRED,
    FUTURE,
    MALFORMED,
    MAX_AGE_LIMIT,
    MAX_SET_COOKIE_LINE,
    MAX_TOKEN_CHARS,
    OVERSIZE,
    REASONS,
    UNKNOWN_KEY,
    CookieCodec,
    CookieEntry,
    CookieState,
    Decoded,
)
from mabware.exceptions import ConfigError

VECTOR_DIR = Path(__file__).parent / "vectors"
DOCUMENT: dict[str, Any] = json.loads((VECTOR_DIR / "cookie.json").read_text(encoding="utf-8"))
VALID: list[dict[str, Any]] = DOCUMENT["valid"]
INVALID: list[dict[str, Any]] = DOCUMENT["invalid"]
# every key exactly as a user passes it, from the JSON alone
KEYS: dict[str, str | bytes] = {
    row["label"]: row["text"] if "text" in row else bytes.fromhex(row["bytes_hex"])
    for row in DOCUMENT["keys"]
}
NOW = 1_767_225_600
MAX_INT = 2**63 - 1
K0, K1, K2 = (base64.urlsafe_b64encode(bytes([i]) * 32).rstrip(b"=").decode() for i in (1, 2, 3))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def fixed_clock(now: float) -> Callable[[], float]:
    return lambda: now


def codec(*keys: str | bytes, **settings: Any) -> CookieCodec:
    """A codec whose clock reads NOW unless told otherwise."""
    settings.setdefault("clock", fixed_clock(NOW))
    return CookieCodec(list(keys), **settings)


def kid_of(key: str) -> bytes:
    return HKDF(hashes.SHA256(), 4, None, b"mabware.cookie.v1.kid").derive(unb64(key))


def codec_for(case: dict[str, Any], **overrides: Any) -> CookieCodec:
    settings: dict[str, Any] = {
        "name": case["name"],
        "max_age": case["max_age"],
        "skew": case["skew"],
        "clock": fixed_clock(case["now"]),
    }
    settings.update(overrides)
    return CookieCodec([KEYS[label] for label in case["secret_keys"]], **settings)


def state_from_json(data: dict[str, Any]) -> CookieState:
    entries = {
        row["experiment"]: CookieEntry(
            row["arm"], row["version"], row["decision"], row["assigned"], row["rewarded"]
        )
        for row in data["entries"]
    }
    return CookieState(data["issued"], entries)


def state(n: int = 2, issued: int = NOW, arm: str = "bold") -> CookieState:
    entries = {f"exp-{i}": CookieEntry(arm, i, 2**62 + i, issued - i, i % 2 == 1) for i in range(n)}
    return CookieState(issued, entries)


# -- golden vectors ----------------------------------------------------------


def test_vector_file_covers_the_brief() -> None:
    assert DOCUMENT["spec"] == cookies.SPEC == "mabware.cookie.v1"
    assert len(VALID) >= 20
    classes = Counter(case["class"] for case in INVALID)
    required = {
        "bad_tag",
        "truncated",
        "bad_base64",
        "unknown_key_id",
        "expired",
        "future_beyond_skew",
        "wrong_cookie_name",
        "wrong_version_byte",
        "oversize",
        "valid_aead_invalid_msgpack",
        "valid_aead_wrong_schema",
    }
    assert required <= set(classes)
    assert {case["reason"] for case in INVALID} == set(REASONS)
    sizes = {len(case["state"]["entries"]) for case in VALID}
    assert {0, 1, 2, 40} <= sizes
    assert any(case["rotated"] for case in VALID)
    assert any(not case["rotated"] for case in VALID)
    assert len({case["name"] for case in VALID}) >= 3
    assert any(e["rewarded"] for case in VALID for e in case["state"]["entries"])
    assert any(e["decision"] == MAX_INT for case in VALID for e in case["state"]["entries"])
    names = [e["experiment"] + e["arm"] for case in VALID for e in case["state"]["entries"]]
    assert any(max(map(ord, name), default=0) > 0xFFFF for name in names)
    assert any(len(case["token"]) == MAX_TOKEN_CHARS for case in VALID)
    assert any(isinstance(KEYS[label], bytes) for label in KEYS)


def test_key_table_matches_the_spec_text() -> None:
    for row in DOCUMENT["keys"]:
        secret = bytes.fromhex(row["secret_hex"])
        key = KEYS[row["label"]]
        if isinstance(key, bytes):
            assert key == secret
        else:
            assert unb64(key.rstrip("=")) == secret
        aes = HKDF(hashes.SHA256(), 32, None, b"mabware.cookie.v1.aes").derive(secret)
        kid = HKDF(hashes.SHA256(), 4, None, b"mabware.cookie.v1.kid").derive(secret)
        assert aes.hex() == row["aes_key_hex"]
        assert kid.hex() == row["key_id_hex"]
        assert row["key_id_hex"] in repr(CookieCodec([key]))


@pytest.mark.parametrize("case", VALID, ids=[c["note"] for c in VALID])
def test_valid_vector(case: dict[str, Any]) -> None:
    decoded = codec_for(case).decode(case["token"])
    assert decoded.reason is None
    assert decoded.rotated is case["rotated"]
    expected = state_from_json(case["state"])
    assert decoded.state == expected
    assert decoded.state is not None
    assert list(decoded.state.entries) == [e["experiment"] for e in case["state"]["entries"]]
    # the encoder reproduces the token from the state, key and nonce
    nonce = bytes.fromhex(case["nonce_hex"])
    encoder = CookieCodec(
        [KEYS[case["encrypted_with"]]], name=case["name"], random_bytes=lambda n: nonce
    )
    assert encoder.encode(expected) == case["token"]
    assert msgpack.unpackb(bytes.fromhex(case["plaintext_hex"]), raw=False) == [
        expected.issued,
        {
            e: [x.arm, x.version, x.decision, x.assigned, x.rewarded]
            for e, x in expected.entries.items()
        },
    ]


@pytest.mark.parametrize("case", INVALID, ids=[f"{c['class']}: {c['note']}" for c in INVALID])
def test_invalid_vector(case: dict[str, Any]) -> None:
    decoded = codec_for(case).decode(case["token"])
    assert decoded == Decoded(None, case["reason"])
    # bytes are decoded as their ASCII text
    if case["token"].isascii():
        assert codec_for(case).decode(case["token"].encode("ascii")).reason == case["reason"]


def test_generator_reproduces_the_committed_file() -> None:
    script = VECTOR_DIR / "make_cookie_vectors.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


# -- round trips and robustness ----------------------------------------------

names = st.text(max_size=20)
ints = st.integers(0, MAX_INT)
entries = st.builds(CookieEntry, names, ints, ints, ints, st.booleans())
states = st.builds(
    CookieState,
    st.integers(0, MAX_INT),
    st.dictionaries(names, entries, max_size=12),
)


@given(states, st.sampled_from(["mabware", "m", "__Host-ab"]), st.booleans())
def test_round_trip(original: CookieState, name: str, second_key: bool) -> None:
    encoder = CookieCodec([K1 if second_key else K0], name=name)
    decoder = CookieCodec([K0, K1], name=name, clock=fixed_clock(original.issued))
    token = encoder.encode(original)
    decoded = decoder.decode(token)
    assert decoded == Decoded(original, None, second_key)
    assert decoder.decode(token.encode("ascii")) == decoded
    assert len(token) <= MAX_TOKEN_CHARS


CODEC = codec(K0, K1)
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
anything = st.one_of(
    st.binary(max_size=6000),
    st.text(max_size=6000),
    st.text(URLSAFE, max_size=300),
    st.integers(4090, 12_000).map(lambda n: "A" * n),
    st.integers(4090, 12_000).map(lambda n: b"_" * n),
    st.binary(max_size=3200).map(lambda b: b64(b"\x01" + bytes.fromhex("ffffffff") + b)),
    st.none(),
    st.integers(),
    st.floats(),
    st.lists(st.text()),
    st.just(bytearray(b"abc")),
    st.just(memoryview(b"abc")),
)


@given(anything)
def test_decode_never_raises(token: object) -> None:
    decoded = CODEC.decode(token)
    assert isinstance(decoded, Decoded)
    assert decoded.state is None or decoded.reason is None
    if decoded.state is None:
        assert decoded.reason in REASONS
    if isinstance(token, str | bytes) and len(token) > MAX_TOKEN_CHARS:
        assert decoded.reason == OVERSIZE


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def seal_under_k0(plaintext: bytes, name: str = "mabware") -> str:
    """An authentic token with any plaintext (spec step 3, read independently)."""
    secret = unb64(K0)
    aes = HKDF(hashes.SHA256(), 32, None, b"mabware.cookie.v1.aes").derive(secret)
    kid = HKDF(hashes.SHA256(), 4, None, b"mabware.cookie.v1.kid").derive(secret)
    header, nonce = b"\x01" + kid, os.urandom(12)
    sealed = AESGCM(aes).encrypt(nonce, plaintext, b"mabware.cookie" + header + name.encode())
    return b64(header + nonce + sealed)


@given(st.one_of(st.binary(max_size=200), msgpack_values.map(msgpack.packb)))
def test_authentic_garbage_is_a_payload_error(plaintext: bytes) -> None:
    decoded = CODEC.decode(seal_under_k0(plaintext))
    assert decoded.reason in (BAD_PAYLOAD, None, EXPIRED, FUTURE)


def test_any_msgpack_width_is_accepted() -> None:
    # issued as uint64, an empty map as map16: not what an encoder writes, still valid
    wide = b"\x92\xcf" + (NOW - 5).to_bytes(8, "big") + b"\xde\x00\x00"
    assert CODEC.decode(seal_under_k0(wide)) == Decoded(CookieState(NOW - 5, {}), None)


def test_oversize_is_rejected_before_any_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    authentic = next(c for c in INVALID if c["note"] == "authentic token of 4098 characters")
    decoder = codec_for(authentic)
    calls: list[bytes] = []
    monkeypatch.setattr(cookies, "b64decode", calls.append)
    for token in (authentic["token"], authentic["token"].encode(), "A" * 4097, "é" * 5000):
        assert decoder.decode(token) == Decoded(None, OVERSIZE)
    assert calls == []
    decoder.decode("A" * 4096)
    assert calls == [b"A" * 4096]


@pytest.mark.parametrize("token", [None, 1, 1.5, [], {}, bytearray(b"abc"), object()])
def test_non_text_is_malformed(token: object) -> None:
    assert CODEC.decode(token) == Decoded(None, MALFORMED)


def test_a_broken_clock_does_not_raise() -> None:
    def clock() -> float:
        raise OSError("no clock")

    broken = CookieCodec([K0], clock=clock)
    assert broken.decode(broken.encode(state())).reason == MALFORMED


# -- tampering ----------------------------------------------------------------


def tampered(
    rng: random.Random, encoder: CookieCodec, other_kid: bytes
) -> Iterator[tuple[str, str, str]]:
    """(class, tampered token, expected reason), cycling over six kinds of damage."""
    kinds = ["bit", "truncated", "appended", "standard", "swapped_kid", "literal"]
    for i in range(10_000):
        kind = kinds[i % len(kinds)]
        token = encoder.encode(state(rng.randrange(4), NOW - rng.randrange(1000)))
        raw = unb64(token)
        if kind == "bit":
            pos = rng.randrange(len(raw))
            damaged = bytearray(raw)
            damaged[pos] ^= 1 << rng.randrange(8)
            reason = BAD_VERSION if pos == 0 else UNKNOWN_KEY if pos < 5 else AUTH_FAILED
            yield kind, b64(bytes(damaged)), reason
        elif kind == "truncated":
            keep = rng.randrange(len(raw))
            yield kind, b64(raw[:keep]), MALFORMED if keep < 33 else AUTH_FAILED
        elif kind == "appended":
            yield kind, b64(raw + bytes([rng.randrange(256)])), AUTH_FAILED
        elif kind == "standard":
            while base64.b64encode(raw).decode() == token:  # no -, _ or padding: re-encrypt
                token = encoder.encode(state(1))
                raw = unb64(token)
            yield kind, base64.b64encode(raw).decode(), MALFORMED
        elif kind == "swapped_kid":
            yield kind, b64(raw[:1] + other_kid + raw[5:]), AUTH_FAILED
        else:
            yield kind, "invalid", MALFORMED


def test_ten_thousand_tampered_tokens_are_all_rejected() -> None:
    kid_k1 = kid_of(K1)
    rng = random.Random(7)
    by_reason: Counter[str | None] = Counter()
    by_kind: Counter[str] = Counter()
    errors = 0
    for kind, token, expected in tampered(rng, CODEC, kid_k1):
        try:
            decoded = CODEC.decode(token)
        except Exception:  # pragma: no cover - the point of the test
            errors += 1
            continue
        assert decoded.state is None, kind
        assert decoded.reason == expected, (kind, token)
        by_reason[decoded.reason] += 1
        by_kind[kind] += 1
    assert errors == 0
    assert sum(by_reason.values()) == 10_000
    assert set(by_kind.values()) == {1667, 1666}
    assert by_reason[AUTH_FAILED] > 3 * 1666
    assert {BAD_VERSION, UNKNOWN_KEY, MALFORMED} <= set(by_reason)


def test_other_cookie_name_or_version_byte_is_rejected() -> None:
    token = codec(K0, name="mabware").encode(state())
    assert codec(K0, name="mabware").decode(token).reason is None
    assert codec(K0, name="other").decode(token).reason == AUTH_FAILED
    raw = unb64(token)
    for version in (0, 2, 0x81, 255):
        assert CODEC.decode(b64(bytes([version]) + raw[1:])).reason == BAD_VERSION


# -- rotation -----------------------------------------------------------------


def test_key_rotation() -> None:
    old, both, new = codec(K0), codec(K1, K0), codec(K1)
    rng = random.Random(3)
    for _ in range(1000):
        original = state(rng.randrange(5), NOW - rng.randrange(MAX_AGE_LIMIT))
        token = old.encode(original)
        decoded = both.decode(token)
        assert decoded == Decoded(original, None, rotated=True)
        reissued = both.encode(original)
        assert new.decode(reissued) == Decoded(original, None, rotated=False)
        assert both.decode(reissued) == Decoded(original, None, rotated=False)
        assert new.decode(token) == Decoded(None, UNKNOWN_KEY)


# -- fit ----------------------------------------------------------------------


def line(encoder: CookieCodec, token: str, secure: bool = True) -> int:
    return len("Set-Cookie: " + encoder.header(token, secure=secure))


def line_if_encoded(encoder: CookieCodec, kept: CookieState, secure: bool = True) -> int:
    """The Set-Cookie line length for ``kept``, computed without encrypting."""
    rows = {
        e: [x.arm, x.version, x.decision, x.assigned, x.rewarded] for e, x in kept.entries.items()
    }
    raw = 33 + len(msgpack.packb([kept.issued, rows], use_bin_type=True))
    return line(encoder, "x" * math.ceil(raw * 4 / 3), secure)


def drop_order(full: CookieState, known: set[str]) -> list[str]:
    return [
        e
        for e, x in sorted(
            full.entries.items(), key=lambda item: (item[0] in known, item[1].assigned, item[0])
        )
    ]


def check_fit(fitter: CookieCodec, full: CookieState, known: set[str], secure: bool = True) -> int:
    token, kept, dropped = fitter.fit(full, known=known, secure=secure)
    assert line(fitter, token, secure) <= MAX_SET_COOKIE_LINE
    assert fitter.decode(token) == Decoded(kept, None)
    assert kept.issued == full.issued
    assert dropped == len(full.entries) - len(kept.entries)
    order = drop_order(full, known)
    assert set(full.entries) - set(kept.entries) == set(order[:dropped])  # in drop order
    assert all(kept.entries[e] == full.entries[e] for e in kept.entries)
    assert list(kept.entries) == [e for e in full.entries if e in kept.entries]
    if dropped:  # dropping one fewer would not fit
        one_fewer = {e: x for e, x in full.entries.items() if e not in order[: dropped - 1]}
        assert (
            line_if_encoded(fitter, CookieState(full.issued, one_fewer), secure)
            > MAX_SET_COOKIE_LINE
        )
    return dropped


def test_fit_forty_experiments_with_long_arm_names() -> None:
    fitter = codec(K0)
    rng = random.Random(11)
    words = ["headline", "checkout-button", "pricing-page-v2", "onboarding-email", "hero"]
    full_entries = {}
    for i in range(40):
        name = f"{rng.choice(words)}-{i}"
        assert len(name) <= 20
        arm = "".join(rng.choice(URLSAFE) for _ in range(64))
        full_entries[name] = CookieEntry(
            arm,
            rng.randrange(5),
            rng.randrange(2**63),
            NOW - rng.randrange(10**7),
            rng.random() < 0.5,
        )
    full = CookieState(NOW - 10**7, full_entries)
    names_by_age = drop_order(full, set(full.entries))
    ended = set(names_by_age[::8])  # five experiments have ended
    known = set(full.entries) - ended
    dropped = check_fit(fitter, full, known)
    assert dropped > len(ended)  # all ended ones went, and some known ones
    _, kept, _ = fitter.fit(full, known=known, secure=True)
    assert not ended & set(kept.entries)
    dropped_known = known - set(kept.entries)
    oldest_known = sorted(known, key=lambda e: (full.entries[e].assigned, e))
    assert dropped_known == set(oldest_known[: len(dropped_known)])
    # without Secure the line is 8 characters shorter: never more drops
    assert check_fit(fitter, full, known, secure=False) <= dropped


def test_fit_drops_only_ended_experiments_when_that_suffices() -> None:
    fitter = codec(K0)
    full = state(40, arm="a" * 90)
    known = {f"exp-{i}" for i in range(20)}
    dropped = check_fit(fitter, full, known)
    assert 0 < dropped <= 20
    _, kept, _ = fitter.fit(full, known=known, secure=True)
    assert known <= set(kept.entries)


def test_fit_keeps_a_small_state_whole_and_ties_break_by_name() -> None:
    fitter = codec(K0)
    small = state(3)
    token, kept, dropped = fitter.fit(small, known=set(), secure=True)
    assert (kept, dropped) == (small, 0)
    assert fitter.decode(token).state == small
    same_time = CookieState(
        NOW, {f"e{i:02d}": CookieEntry("a" * 200, 0, 0, NOW) for i in range(30)}
    )
    _, kept, dropped = fitter.fit(same_time, known=set(), secure=True)
    assert dropped > 0
    assert set(same_time.entries) - set(kept.entries) == {f"e{i:02d}" for i in range(dropped)}


@st.composite
def crowded_states(draw: st.DrawFn) -> CookieState:
    """Up to 60 entries whose arm names share a drawn padding, so many overflow."""
    padding = "a" * draw(st.integers(0, 200))
    assigned = st.integers(0, 3) | ints  # small values make ties
    rows = {
        draw(names) + f"#{i}": CookieEntry(
            draw(names) + padding, draw(ints), draw(ints), draw(assigned), draw(st.booleans())
        )
        for i in range(draw(st.integers(0, 60)))
    }
    return CookieState(NOW, rows)


@given(crowded_states(), st.data(), st.booleans(), st.sampled_from(["m", "x" * 128]))
def test_fit_properties(full: CookieState, data: st.DataObject, secure: bool, name: str) -> None:
    known = data.draw(st.sets(st.sampled_from(sorted(full.entries) or [""])))
    check_fit(codec(K0, name=name), full, known, secure)


# -- nonces -------------------------------------------------------------------


def test_one_hundred_thousand_nonces_are_distinct() -> None:
    encoder = CookieCodec([K0])  # the real os.urandom
    small = state(0)
    nonces = {unb64(encoder.encode(small))[5:17] for _ in range(100_000)}
    assert len(nonces) == 100_000


def test_random_bytes_of_the_wrong_length_is_an_error() -> None:
    encoder = CookieCodec([K0], random_bytes=lambda n: b"\x00" * (n - 1))
    with pytest.raises(ValueError, match="random_bytes"):
        encoder.encode(state())


# -- settings and secrecy -----------------------------------------------------

SHORT_TEXT = b64(b"s" * 31)
SHORT_BYTES = b"b" * 31


@pytest.mark.parametrize(
    ("keys", "secret", "setting"),
    [
        ([], None, "secret_keys"),
        (K0, K0, "secret_keys"),
        (K0.encode(), K0, "secret_keys"),
        ([SHORT_TEXT], SHORT_TEXT, "secret_keys[0]"),
        ([K0, SHORT_BYTES], SHORT_BYTES.decode(), "secret_keys[1]"),
        ([K0.replace(K0[3], "+")], K0.replace(K0[3], "+"), "secret_keys[0]"),
        ([K0 + "\n"], K0, "secret_keys[0]"),
        ([" " + K0], K0, "secret_keys[0]"),
        (["hunter2-is-my-password-and-it-is-long"], "hunter2", "secret_keys[0]"),
        ([base64.b64encode(b"\xfb" * 32).decode()], "+/", "secret_keys[0]"),
        ([12345678901234567890], "12345678901234567890", "secret_keys[0]"),
        ([K0, K1, K0], K0, "secret_keys[2]"),
        ([K0, K0 + "="], K0, "secret_keys[1]"),  # the same key, padded
        ([unb64(K0), K0], K0, "secret_keys[1]"),  # the same key as raw bytes
    ],
)
def test_bad_keys_raise_without_echoing_the_key(
    keys: Any, secret: str | None, setting: str
) -> None:
    with pytest.raises(ConfigError) as info:
        CookieCodec(keys)
    message = str(info.value)
    assert setting in message
    assert "keygen" in message or "once" in message
    if secret is not None:
        for text in (message, repr(info.value.args), repr(info.value.payload)):
            assert secret not in text
            assert secret[:8] not in text
    assert info.value.payload is None


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"name": ""}, "name"),
        ({"name": "my cookie"}, "name"),
        ({"name": "a;b"}, "name"),
        ({"name": "a=b"}, "name"),
        ({"name": "caf\u00e9"}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": None}, "name"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": MAX_AGE_LIMIT + 1}, "max_age"),
        ({"max_age": 3600.0}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"max_age": "3600"}, "max_age"),
        ({"skew": -1}, "skew"),
        ({"skew": math.nan}, "skew"),
        ({"skew": math.inf}, "skew"),
        ({"skew": "60"}, "skew"),
        ({"skew": True}, "skew"),
    ],
)
def test_bad_settings_name_the_setting(settings: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError, match=setting) as info:
        CookieCodec([K0], **settings)
    assert K0 not in str(info.value)


def test_good_settings_and_keys_are_accepted() -> None:
    good = CookieCodec([K0 + "=", unb64(K1), b"\x00" * 64], name="__Host-a.b", max_age=1, skew=0)
    assert (good.name, good.max_age, good.skew) == ("__Host-a.b", 1, 0.0)
    assert CookieCodec([K0], max_age=MAX_AGE_LIMIT, skew=0.5).max_age == MAX_AGE_LIMIT


def test_repr_shows_no_key_material() -> None:
    secrets = [K0, unb64(K1)]
    shown = CookieCodec(secrets, name="sid")
    text = repr(shown) + str(shown)
    assert text.startswith("CookieCodec(name='sid', keys=2, key_ids=[")
    for secret in (unb64(K0), unb64(K1)):
        aes = HKDF(hashes.SHA256(), 32, None, b"mabware.cookie.v1.aes").derive(secret)
        for material in (secret, aes):
            for form in (material.hex(), b64(material), repr(material), str(list(material))):
                assert form[:12] not in text
    assert K0[:8] not in text
    with pytest.raises(AttributeError):
        shown.extra = 1  # type: ignore[attr-defined]


# -- clock --------------------------------------------------------------------


def test_expiry_and_skew_boundaries() -> None:
    now = [0.0]
    clocked = CookieCodec([K0], max_age=100, skew=60, clock=lambda: now[0])
    token = clocked.encode(CookieState(1000, {}))
    for t, reason in [
        (1000, None),
        (1100, None),  # now - issued == max_age
        (1100.001, EXPIRED),
        (1101, EXPIRED),
        (940, None),  # issued - now == skew
        (939.999, FUTURE),
        (939, FUTURE),
    ]:
        now[0] = t
        assert clocked.decode(token).reason == reason, t
    zero = CookieCodec([K0], skew=0, clock=lambda: 1000.0)
    assert zero.decode(zero.encode(CookieState(1000, {}))).reason is None
    assert zero.decode(zero.encode(CookieState(1001, {}))).reason == FUTURE


# -- encode and header --------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        CookieState(-1, {}),
        CookieState(2**63, {}),
        CookieState(True, {}),  # type: ignore[arg-type]
        CookieState(1.0, {}),  # type: ignore[arg-type]
        CookieState(NOW, [("a", CookieEntry("a", 0, 0, 0))]),  # type: ignore[arg-type]
        CookieState(NOW, {1: CookieEntry("a", 0, 0, 0)}),  # type: ignore[dict-item]
        CookieState(NOW, {"a": ("a", 0, 0, 0, False)}),  # type: ignore[dict-item]
        CookieState(NOW, {"a": CookieEntry(b"a", 0, 0, 0)}),  # type: ignore[arg-type]
        CookieState(NOW, {"a": CookieEntry("a", -1, 0, 0)}),
        CookieState(NOW, {"a": CookieEntry("a", 0, 2**63, 0)}),
        CookieState(NOW, {"a": CookieEntry("a", 0, 0, False)}),
        CookieState(NOW, {"a": CookieEntry("a", 0, 0, 0, 1)}),  # type: ignore[arg-type]
        CookieState(NOW, {"\ud800": CookieEntry("a", 0, 0, 0)}),
        CookieState(NOW, {"a": CookieEntry("x" * 4000, 0, 0, 0)}),  # too long: use fit()
        {"issued": NOW, "entries": {}},
    ],
)
def test_encode_rejects_states_the_decoder_would(bad: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        CODEC.encode(bad)


def test_header_value() -> None:
    sid = CookieCodec([K0], name="mab", max_age=3600)
    assert sid.header("TOKEN", secure=False) == (
        "mab=TOKEN; Max-Age=3600; Path=/; SameSite=Lax; HttpOnly"
    )
    assert sid.header("TOKEN", secure=True).endswith("; HttpOnly; Secure")


def test_public_names() -> None:
    for name in cookies.__all__:
        assert hasattr(cookies, name)
    assert (cookies.FORMAT_VERSION, MAX_TOKEN_CHARS, MAX_SET_COOKIE_LINE) == (1, 4096, 4093)
    assert (MAX_AGE_LIMIT, cookies.DEFAULT_SKEW) == (400 * 86_400, 60.0)
    metric_names = ("malformed", "oversize", "version", "unknown_key", "auth", "payload")
    assert (*metric_names, "expired", "future") == REASONS
