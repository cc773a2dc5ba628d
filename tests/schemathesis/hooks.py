"""schemathesis hooks (``SCHEMATHESIS_HOOKS=hooks``): how to send a msgpack body.

``POST /sync`` reads ``application/msgpack``; schemathesis knows no such
serializer, so without this it could not send one body there.
"""

from __future__ import annotations

from typing import Any

import msgpack
import schemathesis


def _packable(value: Any) -> Any:
    """Generated JSON data as msgpack can carry it: integers past 64 bits become floats."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, list):
        return [_packable(v) for v in value]
    if isinstance(value, dict):
        return {k: _packable(v) for k, v in value.items()}
    return value


@schemathesis.serializer("application/msgpack")
def to_msgpack(ctx: Any, value: Any) -> bytes:
    return msgpack.packb(_packable(value), use_bin_type=True)
