"""Spec ``mabware.cookie.v1``: the visitor's arms in one AES-GCM cookie.

The spec text is the docstring of ``mabware/cookies.py``; the vectors in
``tests/vectors/cookie.json`` are the contract, so a cookie set by the
middleware is read here and the other way round. In short: per secret,
HKDF-SHA256 gives an AES key and a 4-byte key id; the plaintext is the
MessagePack ``[issued, {experiment: [arm, version, decision, assigned,
rewarded]}]``; the token is base64url(``0x01 || key id || nonce ||
AES-GCM(plaintext, ad = "mabware.cookie" || 0x01 || key id || name)``).
Decoding never raises: it names the first check that failed.

The client imports this module, and AES-GCM and HKDF with it, only when
it is given ``secret_keys``: a client without cookies never needs them, and
they would cost every cold start a few milliseconds.
"""

# No ``from __future__ import annotations`` here, unlike the other modules: under it
# NamedTuple compile()s each field's annotation string, and the first compile() in a
# process sets up CPython's AST types (~1 ms). Every annotation here evaluates at
# import as it is: nothing in this module refers ahead.

import binascii
import math
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import NamedTuple

import msgpack
from cryptography.exceptions import InvalidTag

# defined with Cookie, which a client without cookies needs too; re-exported as the spec's
from mabware_edge._decision import MAX_AGE_LIMIT as MAX_AGE_LIMIT
from mabware_edge._decision import CookieEntry as CookieEntry

MAX_TOKEN_CHARS = 4096
MAX_LINE = 4093  # len("Set-Cookie: " + value)
_MAX_INT = 2**63 - 1
_LETTERS_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"  # not `string`'s
_ALPHABET = (_LETTERS_DIGITS + "-_").encode()
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_UNUSED_BITS = (0, 0, 0x0F, 0x03)  # by len % 4: low bits of the last char that must be 0
_NAME_CHARS = frozenset("!#$%&'*+-.^_`|~" + _LETTERS_DIGITS)
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_MIN_RAW = 1 + 4 + 12 + 16  # header, nonce, tag


class Decoded(NamedTuple):
    """A decoded cookie, or ``reason`` (spec step 4's word) with nothing else."""

    issued: int
    entries: dict[str, CookieEntry]
    rotated: bool
    reason: str | None


def _rejected(reason: str) -> Decoded:
    return Decoded(0, {}, False, reason)


def b64decode(text: bytes) -> bytes | None:
    """Strict base64url without padding: one spelling per byte string, else None."""
    if text.translate(None, _ALPHABET):
        return None
    rest = len(text) % 4
    if rest == 1 or (rest and _VALUE[text[-1]] & _UNUSED_BITS[rest]):
        return None
    # base64.urlsafe_b64decode's own steps, on input already checked
    return binascii.a2b_base64((text + b"=" * (-len(text) % 4)).translate(_FROM_URLSAFE))


def b64encode(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE)
    return encoded.rstrip(b"=").decode("ascii")


def secret_bytes(value: object, index: int) -> bytes:
    """The HKDF input of ``secret_keys[index]`` (spec step 1); ValueError without the key."""
    if isinstance(value, bytes):
        raw: bytes | None = bytes(value)
    elif isinstance(value, str) and value.isascii():
        text = value
        if len(text) % 4 == 0 and text.endswith("="):  # correct padding is tolerated
            text = text[:-2] if text.endswith("==") else text[:-1]
        raw = b64decode(text.encode("ascii"))
    else:
        raw = None
    if raw is None or len(raw) < 32:
        raise ValueError(
            f"secret_keys[{index}] must be the url-safe base64 that `mabware keygen` prints "
            "(32+ bytes) or at least 32 raw bytes"
        )
    return raw


class CookieCodec:
    """Encode and decode ``mabware.cookie.v1`` tokens.

    Args:
        secret_keys: newest first; the first encrypts, all decrypt.
        name: the cookie name, bound into every token.
        max_age: seconds a cookie lives after it was first issued.
        skew: seconds a cookie's issue time may lie in the future.
        clock: unix seconds now.
        random_bytes: the nonce source (fixed only to reproduce vectors).
    """

    def __init__(
        self,
        secret_keys: Sequence[str | bytes],
        *,
        name: str = "mabware",
        max_age: int = MAX_AGE_LIMIT,
        skew: float = 60.0,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if isinstance(secret_keys, str | bytes) or not secret_keys:
            raise ValueError("secret_keys must be a non-empty list of keys, newest first")
        if not isinstance(name, str) or not 0 < len(name) <= 128 or not set(name) <= _NAME_CHARS:
            raise ValueError(f"cookie name {name!r} must be 1 to 128 RFC 6265 token characters")
        if type(max_age) is not int or not 1 <= max_age <= MAX_AGE_LIMIT:
            raise ValueError(f"cookie max_age must be an int in 1..{MAX_AGE_LIMIT}")
        if not isinstance(skew, int | float) or not 0 <= skew < math.inf:
            raise ValueError("cookie skew must be a finite number of seconds >= 0")
        from cryptography.hazmat.primitives import hashes  # see the module docstring
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        self.name, self.max_age, self.skew = name, max_age, float(skew)
        self._clock, self._random_bytes = clock, random_bytes
        self._keys: list[tuple[bytes, AESGCM, bytes]] = []  # (key id, cipher, associated data)
        for index, value in enumerate(secret_keys):
            secret = secret_bytes(value, index)
            kid = HKDF(hashes.SHA256(), 4, None, b"mabware.cookie.v1.kid").derive(secret)
            aes = HKDF(hashes.SHA256(), 32, None, b"mabware.cookie.v1.aes").derive(secret)
            if any(kid == k for k, _, _ in self._keys):
                raise ValueError(f"secret_keys[{index}] repeats an earlier key; list each once")
            ad = b"mabware.cookie\x01" + kid + name.encode()
            self._keys.append((kid, AESGCM(aes), ad))
        self._by_kid = {kid: (aead, ad, i > 0) for i, (kid, aead, ad) in enumerate(self._keys)}

    def __repr__(self) -> str:
        return f"CookieCodec(name={self.name!r}, keys={len(self._keys)})"

    def encode(self, issued: int, entries: Mapping[str, CookieEntry]) -> str:
        """The token of a state under the first key, with a fresh nonce (step 3).

        Raises:
            ValueError: a field breaks step 2, or the token passes 4096 characters.
        """
        for experiment, e in entries.items():
            if not (
                type(experiment) is str
                and type(e.arm) is str
                and all(type(n) is int and 0 <= n <= _MAX_INT for n in e[1:4])
                and type(e.rewarded) is bool
            ):
                raise ValueError(f"invalid cookie entry for {experiment!r}: {e!r}")
        if type(issued) is not int or not 0 <= issued <= _MAX_INT:
            raise ValueError("issued must be an int in 0..2**63-1")
        plaintext = msgpack.packb([issued, {k: tuple(e) for k, e in entries.items()}])
        nonce = self._random_bytes(12)
        kid, aead, ad = self._keys[0]
        token = b64encode(b"\x01" + kid + nonce + aead.encrypt(nonce, plaintext, ad))
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError(f"the state makes a {len(token)}-character token")
        return token

    def decode(self, token: object) -> Decoded:
        """The state in ``token``, or the reason it is refused (step 4); never raises."""
        try:
            if isinstance(token, str | bytes) and len(token) > MAX_TOKEN_CHARS:
                return _rejected("oversize")
            if isinstance(token, str):
                token = token.encode("ascii") if token.isascii() else None
            raw = b64decode(token) if isinstance(token, bytes) else None
            if raw is None or len(raw) < _MIN_RAW:
                return _rejected("malformed")
            if raw[0] != 1:
                return _rejected("version")
            found = self._by_kid.get(raw[1:5])
            if found is None:
                return _rejected("unknown_key")
            aead, ad, rotated = found
            try:
                plaintext = aead.decrypt(raw[5:17], raw[17:], ad)
            except InvalidTag:
                return _rejected("auth")
            try:
                state = _unpack(plaintext)
            except Exception:  # any MessagePack error: the reason is the same
                state = None
            if state is None:
                return _rejected("payload")
            now = self._clock()
            if now - state[0] > self.max_age:
                return _rejected("expired")
            if state[0] - now > self.skew:
                return _rejected("future")
            return Decoded(state[0], state[1], rotated, None)
        except Exception:  # a broken clock must not fail a request either
            return _rejected("malformed")

    def header(self, token: str, *, secure: bool) -> str:
        """The Set-Cookie value that stores ``token`` (step 5)."""
        value = f"{self.name}={token}; Max-Age={self.max_age}; Path=/; SameSite=Lax; HttpOnly"
        return value + "; Secure" if secure else value

    def fit(
        self,
        issued: int,
        entries: Mapping[str, CookieEntry],
        *,
        known: Collection[str],
        secure: bool,
    ) -> tuple[str, dict[str, CookieEntry], int]:
        """Encode, first dropping entries until the Set-Cookie line fits (step 5).

        Ended experiments (not in ``known``) go first, then running ones,
        each group oldest ``assigned`` first, ties by name.

        Returns:
            ``(token, the entries kept, how many were dropped)``.
        """
        chars = min(MAX_LINE - len("Set-Cookie: ") - len(self.header("", secure=secure)), 4096)
        budget = chars * 3 // 4 - _MIN_RAW  # plaintext bytes whose token fits
        kept = dict(entries)
        order = sorted(kept.items(), key=lambda kv: (kv[0] in known, kv[1].assigned, kv[0]))
        dropped = 0
        while len(msgpack.packb([issued, {k: tuple(e) for k, e in kept.items()}])) > budget:
            del kept[order[dropped][0]]  # an empty state always fits
            dropped += 1
        return self.encode(issued, kept), kept, dropped


class _Pairs(list[tuple[object, object]]):
    """A MessagePack map as its pairs, so that a duplicate key shows."""


def _unpack(plaintext: bytes) -> tuple[int, dict[str, CookieEntry]] | None:
    limit = len(plaintext)
    obj = msgpack.unpackb(
        plaintext,
        raw=False,
        strict_map_key=True,
        object_pairs_hook=_Pairs,
        max_str_len=limit,
        max_bin_len=0,
        max_array_len=limit,
        max_map_len=limit,
        max_ext_len=0,
    )
    if type(obj) is not list or len(obj) != 2:
        return None
    issued, pairs = obj
    if type(issued) is not int or not 0 <= issued <= _MAX_INT or type(pairs) is not _Pairs:
        return None
    entries: dict[str, CookieEntry] = {}
    for experiment, row in pairs:
        if type(experiment) is not str or experiment in entries:
            return None
        if type(row) is not list or len(row) != 5 or type(row[0]) is not str:
            return None
        if not all(type(n) is int and 0 <= n <= _MAX_INT for n in row[1:4]):
            return None
        if type(row[4]) is not bool:
            return None
        entries[experiment] = CookieEntry(*row)
    return issued, entries
