"""Ed25519 keys of edge snapshots (``mabware.edge_snapshot`` spec step 1).

``mabware keygen --signing`` prints a pair; the server and ``mabware
snapshot`` read the private key, clients and tests the public one. Raw
32-byte keys in url-safe base64 without padding (padding is tolerated when
read). No message here contains a key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mabware.exceptions import ConfigError


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _raw(text: str, what: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            f"{what} must be 32 bytes in url-safe base64, as `mabware keygen --signing` prints"
        )
    return raw


def generate_signing_keys() -> dict[str, str]:
    """``{"private_key", "public_key"}``: a fresh Ed25519 pair (spec step 1)."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"private_key": _b64(key.private_bytes_raw()), "public_key": _b64(public)}


def private_key(text: str) -> Ed25519PrivateKey:
    """The signing key in ``text``: keygen's JSON, or its ``private_key`` alone.

    Raises:
        ConfigError: neither; the message never contains the key.
    """
    text = text.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
            text = document["private_key"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                "the signing key file is JSON without a private_key string; "
                "write the output of `mabware keygen --signing` to it"
            ) from None
        if not isinstance(text, str):
            raise ConfigError("the signing key file's private_key must be a string")
    return Ed25519PrivateKey.from_private_bytes(_raw(text, "the signing key"))


def public_key(text: str | bytes | Sequence[int]) -> Ed25519PublicKey:
    """A public key from its url-safe base64 (or raw bytes)."""
    raw = bytes(text) if not isinstance(text, str) else _raw(text, "the public key")
    return Ed25519PublicKey.from_public_bytes(raw)
