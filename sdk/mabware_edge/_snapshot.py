"""Spec ``mabware.edge.v1``: check and parse the signed snapshot.

The spec text is the docstring of ``mabware/edge_snapshot.py``; the vectors
in ``tests/vectors/edge_snapshot.json`` are the contract. In short: a file
is the MessagePack map ``{"spec", "body", "signature"}``, the signature is
Ed25519 over ``b"mabware.edge.v1\\x00" + body``, and the body (read only
once it verified) is ``{"format": 1, "seq", "issued", "experiments"}``.
The checks run in the spec's order and the first failure names the reason:
``malformed``, ``spec``, ``signature``, ``format``, ``malformed``. The
``rollback`` check needs the snapshot held, so the client makes it.
"""

from __future__ import annotations

import binascii
import math
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SPEC = "mabware.edge.v1"
_TAG = SPEC.encode("ascii") + b"\x00"
_MAX_INT = 2**63 - 1
_MAX_BYTES = 64 * 1024 * 1024
_STATUSES = ("active", "disabled", "fallback")
_LISTS = ("arms", "payloads", "allocation", "reward_range")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_set = object.__setattr__  # past the frozen records' own __setattr__, in their __init__ only


class SnapshotError(ValueError):
    """A snapshot that is refused.

    Attributes:
        reason: ``malformed``, ``spec``, ``signature``, ``format`` (spec step
            4) or ``rollback`` (a lower seq than the one held).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class _Frozen:
    """What ``@dataclass(frozen=True, slots=True)`` gave the two records below.

    Importing ``dataclasses`` (and ``inspect`` with it) would cost a cold
    start more than the rest of this module. The fields are
    ``__match_args__``, in order: set once by ``__init__`` (with ``_set``);
    compared, hashed, shown and pickled by value; assigning one raises
    AttributeError.
    """

    __slots__ = ()
    __match_args__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Frozen) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        pairs = zip(self.__match_args__, self._values(), strict=True)
        return f"{type(self).__qualname__}({', '.join(f'{n}={v!r}' for n, v in pairs)})"

    def __reduce__(self) -> tuple[type[_Frozen], tuple[Any, ...]]:
        return type(self), self._values()  # pickle's default would set slots, which raises


class SnapshotExperiment(_Frozen):
    """One experiment as the snapshot carries it (spec step 3).

    Attributes:
        name: the experiment's name.
        version: its version (salt): a new one resets learning and cookies.
        arms: arm names, unique.
        payloads: each arm's payload, parallel to ``arms``.
        default: index of the default arm.
        reward_range: ``(low, high)``: what a reward may be.
        reward_mode: ``"once"`` per decision or ``"every"`` event.
        status: ``"active"``, ``"disabled"`` or ``"fallback"``.
        allocation: each arm's probability, summing to 1.
        bucket_seconds: the width of a time bucket.
        buckets: time buckets the policy reads (0: none).
    """

    __slots__ = (
        "allocation",
        "arms",
        "bucket_seconds",
        "buckets",
        "default",
        "name",
        "payloads",
        "reward_mode",
        "reward_range",
        "status",
        "version",
    )
    __match_args__ = (
        "name",
        "version",
        "arms",
        "payloads",
        "default",
        "reward_range",
        "reward_mode",
        "status",
        "allocation",
        "bucket_seconds",
        "buckets",
    )

    name: str
    version: int
    arms: tuple[str, ...]
    payloads: tuple[Any, ...]
    default: int
    reward_range: tuple[float, float]
    reward_mode: str
    status: str
    allocation: tuple[float, ...]
    bucket_seconds: float
    buckets: int

    def __init__(
        self,
        name: str,
        version: int,
        arms: tuple[str, ...],
        payloads: tuple[Any, ...],
        default: int,
        reward_range: tuple[float, float],
        reward_mode: str,
        status: str,
        allocation: tuple[float, ...],
        bucket_seconds: float,
        buckets: int,
    ) -> None:
        _set(self, "name", name)
        _set(self, "version", version)
        _set(self, "arms", arms)
        _set(self, "payloads", payloads)
        _set(self, "default", default)
        _set(self, "reward_range", reward_range)
        _set(self, "reward_mode", reward_mode)
        _set(self, "status", status)
        _set(self, "allocation", allocation)
        _set(self, "bucket_seconds", bucket_seconds)
        _set(self, "buckets", buckets)


class Snapshot(_Frozen):
    """A verified snapshot.

    Attributes:
        seq: rises with every issue; a lower one is a rollback.
        issued: unix seconds when it was issued (staleness counts from here).
        experiments: in the issuer's order.
    """

    __slots__ = ("experiments", "issued", "seq")
    __match_args__ = ("seq", "issued", "experiments")

    seq: int
    issued: float
    experiments: tuple[SnapshotExperiment, ...]

    def __init__(
        self, seq: int, issued: float, experiments: tuple[SnapshotExperiment, ...]
    ) -> None:
        _set(self, "seq", seq)
        _set(self, "issued", issued)
        _set(self, "experiments", experiments)


def public_key(key: str | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """The issuer's key: as ``mabware keygen --signing`` prints it, 32 raw bytes, or a key.

    Raises:
        ValueError: none of those.
    """
    if isinstance(key, Ed25519PublicKey):
        return key
    raw = key if isinstance(key, bytes) else _unbase64(key)
    if len(raw) != 32:
        raise ValueError(
            "public_key must be the issuer's Ed25519 public key: 32 bytes, or the url-safe "
            "base64 that `mabware keygen --signing` prints"
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def _unbase64(text: str) -> bytes:
    # base64.urlsafe_b64decode's own steps; the base64 module would be an import for one call
    text = text.strip()
    try:
        data = (text + "=" * (-len(text) % 4)).encode("ascii").translate(_FROM_URLSAFE)
        return binascii.a2b_base64(data)
    except (ValueError, binascii.Error):
        return b""


def read_snapshot(data: bytes, key: str | bytes | Ed25519PublicKey) -> Snapshot:
    """Verify and parse a snapshot file (spec step 4, without the rollback check).

    Args:
        data: the file's bytes.
        key: the issuer's public key (see ``public_key``).

    Raises:
        SnapshotError: with the spec's reason for the first check that fails.
    """
    outer = _unpack(data, "the file")
    if type(outer) is not dict or set(outer) != {"spec", "body", "signature"}:
        raise SnapshotError("malformed", "expected a map of spec, body and signature")
    if outer["spec"] != SPEC:
        raise SnapshotError("spec", f"expected {SPEC!r}, got {outer['spec']!r:.60}")
    body, signature = outer["body"], outer["signature"]
    if type(body) is not bytes or type(signature) is not bytes:
        raise SnapshotError("malformed", "body and signature must be bytes")
    try:
        public_key(key).verify(signature, _TAG + body)
    except Exception as exc:
        if not _bad_signature(exc):
            raise
        raise SnapshotError("signature", "the signature does not verify") from None
    inner = _unpack(body, "the body")
    # ``!=`` as the reference reads it: 1.0 and true pass as 1 (it is signed anyway)
    found = inner.get("format") if type(inner) is dict else None
    if found != 1:
        raise SnapshotError("format", f"expected format 1, got {found!r:.60}")
    try:
        return _snapshot(inner)
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError("malformed", f"the body breaks the schema: {exc}") from None


def _bad_signature(exc: Exception) -> bool:
    # imported here: cryptography imports it to raise it, and a cold start whose cache
    # file verifies is ~0.2 ms faster without it
    from cryptography.exceptions import InvalidSignature

    return isinstance(exc, InvalidSignature)


def _unpack(data: object, what: str) -> Any:
    if type(data) is not bytes or len(data) > _MAX_BYTES:
        raise SnapshotError("malformed", f"{what} is not bytes of a sane size")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise SnapshotError("malformed", f"{what} is not MessagePack ({exc})") from None


def _snapshot(body: dict[str, Any]) -> Snapshot:
    seq, issued, experiments = body["seq"], body["issued"], body["experiments"]
    if type(seq) is not int or not 0 <= seq <= _MAX_INT:
        raise ValueError("seq must be an int in 0..2**63-1")
    if type(issued) is not float or not math.isfinite(issued):
        raise ValueError("issued must be a finite float")
    if type(experiments) is not list:
        raise ValueError("experiments must be an array")
    parsed = tuple(_experiment(e) for e in experiments)
    if len({e.name for e in parsed}) != len(parsed):
        raise ValueError("experiment names must be unique")
    return Snapshot(seq, issued, parsed)


def _experiment(wire: Any) -> SnapshotExperiment:
    if type(wire) is not dict or not all(type(wire[k]) is list for k in _LISTS):
        raise ValueError("an experiment is a map whose arms, payloads, allocation are arrays")
    name, version, default = wire["name"], wire["version"], wire["default"]
    arms, payloads, allocation = tuple(wire["arms"]), tuple(wire["payloads"]), wire["allocation"]
    if type(name) is not str or type(version) is not int or not 0 <= version <= _MAX_INT:
        raise ValueError("name must be a str and version an int in 0..2**63-1")
    if not arms or not all(type(a) is str for a in arms) or len(set(arms)) != len(arms):
        raise ValueError("arms must be unique strings")
    if len(payloads) != len(arms) or len(allocation) != len(arms):
        raise ValueError("payloads and allocation must be parallel to arms")
    if not all(type(p) is float and math.isfinite(p) and p >= 0.0 for p in allocation):
        raise ValueError("allocation entries must be finite floats >= 0")
    if abs(math.fsum(allocation) - 1.0) > 1e-9:
        raise ValueError("allocation must sum to 1")
    if type(default) is not int or not 0 <= default < len(arms):
        raise ValueError("default must index arms")
    if len(wire["reward_range"]) != 2:
        raise ValueError("reward_range must be [low, high]")
    low, high = wire["reward_range"]
    if not (type(low) is float and type(high) is float and low < high):
        raise ValueError("reward_range must be two floats, low < high")
    mode, status = wire["reward_mode"], wire["status"]
    if mode not in ("once", "every") or status not in _STATUSES:
        raise ValueError("reward_mode or status is not one of the spec's words")
    seconds, buckets = wire["bucket_seconds"], wire["buckets"]
    if type(seconds) is not float or not seconds > 0.0:
        raise ValueError("bucket_seconds must be a float > 0")
    if type(buckets) is not int or buckets < 0:
        raise ValueError("buckets must be an int >= 0")
    return SnapshotExperiment(
        name=name,
        version=version,
        arms=arms,
        payloads=payloads,
        default=default,
        reward_range=(low, high),
        reward_mode=mode,
        status=status,
        allocation=tuple(allocation),
        bucket_seconds=seconds,
        buckets=buckets,
    )
