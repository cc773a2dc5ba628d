"""Secret keys and base64 for ``mabware.cookies`` (spec steps 1 and 4).

Key material is turned into AES-GCM objects and key ids here and nowhere
else, so no other module ever holds the secret bytes. No message in this
module contains a key, a derived key or any part of one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mabware.exceptions import ConfigError

MIN_SECRET_BYTES = 32
AES_INFO = b"mabware.cookie.v1.aes"
KID_INFO = b"mabware.cookie.v1.kid"
KID_BYTES = 4

# The url-safe alphabet (RFC 4648 section 5), for bytes.translate(None, delete=...):
# a token is clean when deleting every alphabet byte leaves nothing.
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")  # by len % 4; 1 is never valid
# The last character of an unpadded group carries 4 (len % 4 == 2) or 2
# (len % 4 == 3) unused low bits; canonical base64 has them zero.
_UNUSED_BITS = (0, 0, 0x0F, 0x03)
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}

KEYGEN_HINT = "run `mabware keygen` to make one"


class Key(NamedTuple):
    """One configured key: its id and its precomputed AES-GCM object."""

    kid: bytes
    aead: AESGCM


def b64encode(data: bytes) -> str:
    """Url-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: bytes) -> bytes | None:
    """Strict url-safe base64 without padding; None unless canonical.

    Rejects any byte outside the url-safe alphabet (so ``+``, ``/``, ``=``
    and whitespace), a length of 1 mod 4, and non-zero unused trailing bits,
    so every byte string has exactly one accepted spelling.
    """
    if text.translate(None, _ALPHABET):
        return None
    rest = len(text) % 4
    if rest == 1 or (rest and _VALUE[text[-1]] & _UNUSED_BITS[rest]):
        return None
    return binascii.a2b_base64(text.translate(_TO_STANDARD) + _PADDING[rest])


def derive(secret: bytes) -> tuple[bytes, bytes]:
    """``(key_id, aes_key)`` from secret bytes (HKDF-SHA256, no salt)."""
    kid = HKDF(hashes.SHA256(), KID_BYTES, None, KID_INFO).derive(secret)
    aes = HKDF(hashes.SHA256(), 32, None, AES_INFO).derive(secret)
    return kid, aes


def secret_bytes(value: object, index: int) -> bytes:
    """The secret bytes of ``secret_keys[index]``, or a ConfigError without the key."""
    where = f"secret_keys[{index}]"
    if isinstance(value, bytes):
        if len(value) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"{where} is {len(value)} raw bytes; a bytes key needs at least "
                f"{MIN_SECRET_BYTES} random bytes ({KEYGEN_HINT})"
            )
        return bytes(value)
    if not isinstance(value, str):
        raise ConfigError(
            f"{where} is a {type(value).__name__}; pass the str printed by `mabware keygen` "
            f"or at least {MIN_SECRET_BYTES} raw bytes"
        )
    text = value
    if len(text) % 4 == 0 and text.endswith("="):  # optional padding, at most "=="
        text = text[:-2] if text.endswith("==") else text[:-1]
    secret = b64decode(text.encode("ascii")) if text.isascii() else None
    if secret is None:
        raise ConfigError(
            f"{where} is not url-safe base64 (letters, digits, '-' and '_'; no spaces "
            f"or newlines); {KEYGEN_HINT}"
        )
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{where} decodes to {len(secret)} bytes; a key needs at least "
            f"{MIN_SECRET_BYTES} ({KEYGEN_HINT})"
        )
    return secret


def load_keys(secret_keys: Sequence[str | bytes]) -> tuple[Key, ...]:
    """Parse and derive every configured key, first (the encrypting key) first."""
    if isinstance(secret_keys, str | bytes) or not isinstance(secret_keys, Sequence):
        raise ConfigError(
            "secret_keys must be a list of keys, newest first (a single key goes in a "
            f"one-element list); {KEYGEN_HINT}"
        )
    if not secret_keys:
        raise ConfigError(f"secret_keys is empty; {KEYGEN_HINT} and pass [key]")
    keys: list[Key] = []
    for index, value in enumerate(secret_keys):
        kid, aes = derive(secret_bytes(value, index))
        for other, earlier in enumerate(keys):
            if earlier.kid == kid:
                raise ConfigError(
                    f"secret_keys[{index}] has the same key id as secret_keys[{other}] "
                    "(the same key twice?); list each key once"
                )
        keys.append(Key(kid, AESGCM(aes)))
    return tuple(keys)
