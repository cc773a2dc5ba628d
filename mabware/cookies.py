"""The encrypted assignment cookie: encode, decode, fit into a Set-Cookie line.

A visitor's arms travel in one cookie, so that every process (and the edge
SDK) serves the same visitor the same arms without a shared store. This
module is sans-IO: it turns a :class:`CookieState` into a token and back,
and builds the ``Set-Cookie`` value; the engine decides when to call it.

``decode`` never raises. A token that is malformed, oversized, under an
unknown key, tampered with, expired or from the future gives a
:class:`Decoded` with ``state=None`` and a ``reason`` (a short string, used
as the metric label), and the engine treats the cookie as absent.

Specification ``mabware.cookie.v1``
-----------------------------------

This text and ``tests/vectors/cookie.json`` are the contract that every
implementation (this module, the edge SDK, any port) must meet. "base64url"
is RFC 4648 section 5 without ``=`` padding.

1. Keys. The application configures a list of secrets, newest first. A
   secret is either a text string, base64url of at least 32 bytes (what
   ``mabware keygen`` prints; decoded as strictly as a token in step 4c,
   except that correct ``=`` padding is tolerated), or raw bytes, at least
   32, used as they are. For each secret S::

       aes_key = HKDF-SHA256(IKM=S, salt=none, info="mabware.cookie.v1.aes", L=32)
       key_id  = HKDF-SHA256(IKM=S, salt=none, info="mabware.cookie.v1.kid", L=4)

   ("salt=none" is RFC 5869's default, 32 zero bytes.) Key ids must be
   distinct. The first key encrypts; every key decrypts, so a new key goes
   first and the old one stays second until its cookies have expired.

2. Plaintext. One MessagePack value::

       [issued, {experiment: [arm, version, decision, assigned, rewarded], ...}]

   ``issued`` (unix seconds when the cookie was first issued), ``version``
   (the experiment version the arm was assigned under), ``decision`` (a
   random id) and ``assigned`` (unix seconds) are integers in
   ``0 .. 2**63 - 1``; ``experiment`` and ``arm`` are strings (MessagePack
   str, UTF-8; any length, empty allowed); ``rewarded`` is MessagePack
   ``true``/``false``. The map has unique keys. Encoders write the entries
   in the caller's order, each value in its shortest MessagePack form (as
   ``msgpack.packb(..., use_bin_type=True)`` does), so a token is
   reproducible from its state and nonce; decoders accept any width (a
   small int stored as uint64 is still that int).

3. Token. With ``name`` the cookie name (UTF-8) and ``nonce`` 12 fresh bytes
   from a CSPRNG for every token::

       header = 0x01 || key_id                         (5 bytes; 0x01 = format version)
       ad     = "mabware.cookie" || header || name     (associated data)
       sealed = AES-256-GCM(aes_key, nonce, plaintext, ad)   (ciphertext || 16-byte tag)
       token  = base64url(header || nonce || sealed)

   An encoder never emits a token longer than 4096 characters.

4. Decoding. Check in this order; the first failure is the reason:

   a. ``malformed``: not a string (bytes count as their ASCII text);
   b. ``oversize``: longer than 4096 characters (before any decoding);
   c. ``malformed``: a character outside ``A-Z a-z 0-9 - _`` (so ``+``,
      ``/``, ``=``, whitespace, non-ASCII), a length of 1 mod 4, non-zero
      unused bits in the last character (non-canonical base64), or fewer
      than 33 decoded bytes (header, nonce, tag);
   d. ``version``: byte 0 is not 0x01;
   e. ``unknown_key``: bytes 1-4 match no configured key id (no trial
      decryption under other keys);
   f. ``auth``: AES-GCM decryption fails (tampering, or another cookie name);
   g. ``payload``: the plaintext is not exactly one MessagePack value of the
      schema in step 2 (wrong type anywhere, bool for int or int for bool,
      out of range, duplicate key, bin/ext/float/nil, trailing bytes);
   h. ``expired``: ``now - issued > max_age``, with ``now`` the clock's
      unix time in seconds (possibly fractional);
   i. ``future``: ``issued - now > skew`` (default 60 s).

   Otherwise the token is valid; it is ``rotated`` when its key is not the
   first, and the engine re-issues it under the first key with the same
   ``issued``.

5. Header. ``{name}={token}; Max-Age={max_age}; Path=/; SameSite=Lax;
   HttpOnly``, plus ``; Secure`` on https; ``1 <= max_age <= 34560000``
   (400 days). ``len("Set-Cookie: " + value)`` stays at most 4093 bytes:
   when the state is too large, entries are dropped, first those of
   experiments the server no longer runs, then those of running ones, each
   group oldest ``assigned`` first (ties by experiment name in code point
   order), until it fits.

A change to any step is a new format version and a new spec id.
"""

from __future__ import annotations

import math
import os
import string
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from mabware._cookie_keys import b64decode, b64encode, load_keys
from mabware._cookie_payload import (
    CookieEntry,
    CookieState,
    check,
    map_header_bytes,
    packb,
    row,
    unpack,
)
from mabware.exceptions import ConfigError

__all__ = [
    "AUTH_FAILED",
    "BAD_PAYLOAD",
    "BAD_VERSION",
    "DEFAULT_SKEW",
    "EXPIRED",
    "FORMAT_VERSION",
    "FUTURE",
    "MALFORMED",
    "MAX_AGE_LIMIT",
    "MAX_SET_COOKIE_LINE",
    "MAX_TOKEN_CHARS",
    "OVERSIZE",
    "REASONS",
    "SPEC",
    "UNKNOWN_KEY",
    "CookieCodec",
    "CookieEntry",
    "CookieState",
    "Decoded",
]

SPEC = "mabware.cookie.v1"
FORMAT_VERSION = 1
MAX_TOKEN_CHARS = 4096
MAX_SET_COOKIE_LINE = 4093
MAX_AGE_LIMIT = 34_560_000
DEFAULT_SKEW = 60.0

MALFORMED = "malformed"
OVERSIZE = "oversize"
BAD_VERSION = "version"
UNKNOWN_KEY = "unknown_key"
AUTH_FAILED = "auth"
BAD_PAYLOAD = "payload"
EXPIRED = "expired"
FUTURE = "future"
#: every decode failure reason, in the order they are checked
REASONS = (MALFORMED, OVERSIZE, BAD_VERSION, UNKNOWN_KEY, AUTH_FAILED, BAD_PAYLOAD, EXPIRED, FUTURE)

_NAME_MAX_CHARS = 128
_LINE_PREFIX = "Set-Cookie: "
_AD_PREFIX = b"mabware.cookie"
_NONCE = 12
_MIN_RAW = 1 + 4 + _NONCE + 16
# RFC 6265 cookie-name = token (RFC 2616): visible ASCII but separators
_NAME_CHARS = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)


@dataclass(frozen=True, slots=True)
class Decoded:
    """The result of :meth:`CookieCodec.decode`: a state, or a reason it was rejected."""

    state: CookieState | None
    reason: str | None
    rotated: bool = False


_REJECTED = {reason: Decoded(None, reason) for reason in REASONS}


class CookieCodec:
    """Encrypts and decrypts assignment cookies (spec ``mabware.cookie.v1`` above).

    Args:
        secret_keys: newest first. The first key encrypts every new token;
            all keys decrypt, so rotate by putting a new key first and
            dropping the old one once ``max_age`` has passed. Each is the
            str printed by ``mabware keygen`` or at least 32 raw bytes.
        name: the cookie name (1 to 128 RFC 6265 token characters), bound
            into every token.
        max_age: seconds a cookie lives after it was first issued.
        skew: seconds a cookie's issue time may lie in the future.
        clock: unix seconds now (inject a fake one in tests).
        random_bytes: the nonce source (inject a fixed one for vectors only).

    Raises:
        ConfigError: a setting is invalid; the message names it and never
            contains a key.
    """

    __slots__ = (
        "_ads",
        "_budget",
        "_by_kid",
        "_clock",
        "_keys",
        "_random_bytes",
        "max_age",
        "name",
        "skew",
    )

    def __init__(
        self,
        secret_keys: Sequence[str | bytes],
        *,
        name: str = "mabware",
        max_age: int = MAX_AGE_LIMIT,
        skew: float = DEFAULT_SKEW,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not isinstance(name, str) or not 0 < len(name) <= _NAME_MAX_CHARS:
            raise ConfigError(f"name must be a cookie name of 1 to {_NAME_MAX_CHARS} characters")
        if not _NAME_CHARS.issuperset(name):
            raise ConfigError(
                f"name {name!r} is not a valid cookie name: use letters, digits and "
                "!#$%&'*+-.^_`|~ only",
                payload=name,
            )
        if type(max_age) is not int or not 1 <= max_age <= MAX_AGE_LIMIT:
            raise ConfigError(
                f"max_age must be an int number of seconds in 1..{MAX_AGE_LIMIT} (400 days), "
                f"got {max_age!r}",
                payload=max_age,
            )
        if not isinstance(skew, int | float) or isinstance(skew, bool) or not skew >= 0:
            raise ConfigError(f"skew must be a number of seconds >= 0, got {skew!r}", payload=skew)
        if not math.isfinite(skew):
            raise ConfigError(f"skew must be finite, got {skew!r}", payload=skew)
        if not callable(clock) or not callable(random_bytes):
            raise ConfigError("clock and random_bytes must be callables")
        self._keys = load_keys(secret_keys)
        self.name = name
        self.max_age = max_age
        self.skew = float(skew)
        self._clock = clock
        self._random_bytes = random_bytes
        header = bytes([FORMAT_VERSION])
        self._ads = tuple(_AD_PREFIX + header + k.kid + name.encode() for k in self._keys)
        self._by_kid = {
            key.kid: (key.aead, ad, index > 0)
            for index, (key, ad) in enumerate(zip(self._keys, self._ads, strict=True))
        }

        # plaintext bytes that fit a Set-Cookie line, by ``secure``
        # (base64url of n bytes is ceil(4n / 3) characters)
        self._budget = {
            secure: min(
                MAX_SET_COOKIE_LINE - len(_LINE_PREFIX) - len(self.header("", secure=secure)),
                MAX_TOKEN_CHARS,
            )
            * 3
            // 4
            - _MIN_RAW
            for secure in (False, True)
        }

    def __repr__(self) -> str:
        kids = ", ".join(key.kid.hex() for key in self._keys)
        return f"CookieCodec(name={self.name!r}, keys={len(self._keys)}, key_ids=[{kids}])"

    def encode(self, state: CookieState) -> str:
        """The token for ``state`` under the first key.

        Raises:
            ValueError: ``state`` breaks the schema, or its token would be
                longer than MAX_TOKEN_CHARS (use :meth:`fit`).
        """
        check(state)
        rows = {experiment: row(entry) for experiment, entry in state.entries.items()}
        return self._seal(packb([state.issued, rows]))

    def _seal(self, plaintext: bytes) -> str:
        nonce = self._random_bytes(_NONCE)
        if type(nonce) is not bytes or len(nonce) != _NONCE:
            raise ValueError(f"random_bytes({_NONCE}) must return {_NONCE} bytes")
        key = self._keys[0]
        sealed = key.aead.encrypt(nonce, plaintext, self._ads[0])
        token = b64encode(bytes([FORMAT_VERSION]) + key.kid + nonce + sealed)
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError(f"the state makes a {len(token)}-character token; use fit()")
        return token

    def decode(self, token: object) -> Decoded:
        """Authenticate and parse a cookie value; never raises (spec step 4)."""
        try:
            if isinstance(token, str):
                if len(token) > MAX_TOKEN_CHARS:
                    return _REJECTED[OVERSIZE]
                if not token.isascii():
                    return _REJECTED[MALFORMED]
                data = token.encode("ascii")
            elif isinstance(token, bytes):
                if len(token) > MAX_TOKEN_CHARS:
                    return _REJECTED[OVERSIZE]
                data = bytes(token)
            else:
                return _REJECTED[MALFORMED]
            raw = b64decode(data)
            if raw is None or len(raw) < _MIN_RAW:
                return _REJECTED[MALFORMED]
            if raw[0] != FORMAT_VERSION:
                return _REJECTED[BAD_VERSION]
            found = self._by_kid.get(raw[1:5])
            if found is None:
                return _REJECTED[UNKNOWN_KEY]
            aead, ad, rotated = found
            try:
                plaintext = aead.decrypt(raw[5:17], raw[17:], ad)
            except InvalidTag:
                return _REJECTED[AUTH_FAILED]
            try:
                state = unpack(plaintext)
            except Exception:
                state = None
            if state is None:
                return _REJECTED[BAD_PAYLOAD]
            now = self._clock()
            if now - state.issued > self.max_age:
                return _REJECTED[EXPIRED]
            if state.issued - now > self.skew:
                return _REJECTED[FUTURE]
            return Decoded(state, None, rotated)
        except Exception:  # a bug or a broken clock must still not fail the request
            return _REJECTED[MALFORMED]

    def header(self, token: str, *, secure: bool) -> str:
        """The ``Set-Cookie`` header value that stores ``token`` (spec step 5)."""
        value = f"{self.name}={token}; Max-Age={self.max_age}; Path=/; SameSite=Lax; HttpOnly"
        return value + "; Secure" if secure else value

    def fit(
        self, state: CookieState, *, known: Collection[str], secure: bool, trusted: bool = False
    ) -> tuple[str, CookieState, int]:
        """Encode ``state``, dropping entries until the Set-Cookie line fits.

        Entries of experiments not in ``known`` (ended ones) go first, then
        those of known experiments; in each group the oldest ``assigned``
        first (ties by experiment name). Drops the fewest entries that make
        ``len("Set-Cookie: " + header(token)) <= MAX_SET_COOKIE_LINE``.

        ``trusted=True`` skips the schema check, for states the caller built
        from checked parts (the engine, on the request path).

        Returns:
            ``(token, the state actually encoded, number of entries dropped)``.
        """
        if not trusted:
            check(state)
        budget = self._budget[secure]
        plaintext = packb([state.issued, dict(state.entries)])  # entries pack as arrays
        if len(plaintext) <= budget:  # the common case: everything fits, pack once
            return self._seal(plaintext), state, 0
        sizes = {
            experiment: len(packb(experiment)) + len(packb(row(entry)))
            for experiment, entry in state.entries.items()
        }
        size = 1 + len(packb(state.issued)) + sum(sizes.values())
        order = sorted(
            state.entries.items(),
            key=lambda item: (item[0] in known, item[1].assigned, item[0]),
        )
        dropped: set[str] = set()
        left = len(sizes)
        while size + map_header_bytes(left) > budget:
            experiment = order[len(dropped)][0]  # an empty state always fits
            dropped.add(experiment)
            size -= sizes[experiment]
            left -= 1
        kept = {e: entry for e, entry in state.entries.items() if e not in dropped}
        fitted = CookieState(state.issued, kept) if dropped else state
        token = self.encode(fitted)
        assert len(_LINE_PREFIX) + len(self.header(token, secure=secure)) <= MAX_SET_COOKIE_LINE
        return token, fitted, len(dropped)
