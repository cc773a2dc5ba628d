"""Reading a push from a ``POST /sync`` body: msgpack, within limits, or a 422.

A push is a small map of strings, numbers and byte strings
(``merge.replica_to_wire``). What msgpack can say beyond that (maps nested
thousands deep, keys that are not strings, extension types, timestamps,
bytes after the one object) is refused with a problem naming where.
"""

from __future__ import annotations

import msgpack

from mabware.server._problems import INVALID_PUSH, ProblemError
from mabware.store.merge import Replica, StateError, replica_from_wire


def decode_push(body: bytes) -> tuple[str, Replica]:
    """The push in ``body``; ProblemError 422 naming what is wrong."""
    try:
        wire = msgpack.unpackb(body, raw=False, ext_hook=_no_extensions)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        reason = str(exc) or type(exc).__name__
        raise invalid_push(f"the body is not msgpack ({reason})") from None
    _check_plain(wire)
    if not isinstance(wire, dict):
        kind = type(wire).__name__
        raise invalid_push(f"a push is a msgpack map, got {kind}")
    try:
        return replica_from_wire(wire)
    except StateError as exc:
        raise invalid_push(f"invalid push: {exc}") from None


#: deepest nesting of maps and arrays a push may have (a real one has 4)
MAX_DEPTH = 32


def _no_extensions(code: int, data: bytes) -> object:
    raise ValueError(f"msgpack extension type {code} is not allowed in a push")


def _check_plain(wire: object) -> None:
    """Refuse what a push never holds: deep nesting, non-string keys, timestamps.

    msgpack decodes timestamps (extension -1) itself, without ``ext_hook``,
    and lets ``bytes`` keys through; a walk over the decoded push (iterative:
    a hostile depth must not exhaust the stack) catches both.
    """
    stack: list[tuple[object, int, str]] = [(wire, 1, "push")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise invalid_push(f"{where}: nested deeper than {MAX_DEPTH} levels")
            if isinstance(value, dict):
                for key, member in value.items():
                    if not isinstance(key, str):
                        raise invalid_push(f"{where}: map keys must be strings, got {key!r:.40}")
                    stack.append((member, depth + 1, f"{where}.{key[:40]}"))
            else:
                stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, msgpack.Timestamp | msgpack.ExtType):
            raise invalid_push(f"{where}: msgpack extension types are not allowed in a push")


def invalid_push(detail: str) -> ProblemError:
    return ProblemError(422, detail, type=INVALID_PUSH, title="Invalid push")
