"""The server's settings, checked before anything is built.

``create_app`` and ``check_settings`` (``mabware serve --workers N`` checks
in the parent) refuse the same settings with the same ``ConfigError``s,
each saying what to change; the signing key's text becomes the key here
(``mabware.edge_snapshot.private_key``, whose errors never quote the key).
"""

from __future__ import annotations

import math
from collections.abc import Collection

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mabware import edge_snapshot
from mabware.exceptions import ConfigError

#: the endpoints open to anyone by default; ``protect`` puts any of them behind the read token
OPEN_ENDPOINTS = ("health", "metrics", "dashboard", "docs")


def check_values(
    token: str | None,
    read_token: str | None,
    push_token: str | None,
    signing_key: str | None,
    protect: Collection[str],
    **intervals: float,
) -> Ed25519PrivateKey | None:
    """Refuse settings that cannot work (ConfigError saying what to change); the signing key.

    ``intervals``: seconds that must be finite and > 0, by setting name.
    """
    unknown = sorted(set(protect) - set(OPEN_ENDPOINTS))
    if isinstance(protect, str) or unknown:
        raise ConfigError(
            f"protect names endpoints among {', '.join(OPEN_ENDPOINTS)}, got {protect!r}"
        )
    if protect and not (token or read_token):
        raise ConfigError("protect needs a token (or a read token) to protect with")
    tokens = (("token", token), ("read_token", read_token), ("push_token", push_token))
    for name, value in tokens:
        if value is not None and (
            not isinstance(value, str) or not value or not value.isprintable() or " " in value
        ):
            raise ConfigError(f"{name} must be a non-empty string of printable characters, "
                              "no spaces")  # fmt: skip
    if push_token is not None and token is None:
        raise ConfigError(
            "push_token needs a write token (token) beside it: without one, every "
            "request may push and read anyway; set MABWARE_TOKEN too"
        )
    if push_token is not None and push_token in (token, read_token):
        raise ConfigError("push_token must differ from the write token and the read token")
    for name, seconds in intervals.items():
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
            raise ConfigError(f"{name} must be a number of seconds > 0, got {seconds!r}")
    if signing_key is None:
        return None
    if not isinstance(signing_key, str):
        raise ConfigError("signing_key must be the key's text (mabware keygen --signing)")
    return edge_snapshot.private_key(signing_key)
