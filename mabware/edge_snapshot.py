"""The signed snapshot the edge SDK decides from: build, sign, read.

A snapshot is everything a process without mabware needs to make the
middleware's decisions: each experiment's arms, payloads, default arm,
reward range and mode, status and current allocation (after guardrails),
under a rising sequence and an issue time. The server publishes it at
``GET /edge/snapshot``; ``mabware snapshot`` writes it to a file for any
static host. The signature is inside the body, so the bytes are
self-contained: whoever serves them cannot change them unnoticed.

Specification ``mabware.edge.v1``
---------------------------------

This text and ``tests/vectors/edge_snapshot.json`` are the contract that
every reader (``sdk/mabware_edge``, any port) and every issuer meets.
MessagePack is written in its shortest form, strings as str, bytes as bin.

1. Keys. Ed25519 (RFC 8032). ``mabware keygen --signing`` prints
   ``{"private_key": ..., "public_key": ...}``: the raw 32-byte keys in
   url-safe base64 without padding (padding is tolerated when read).

2. File. One MessagePack map with exactly three keys::

       {"spec": "mabware.edge.v1", "body": bin, "signature": bin (64 bytes)}

   ``signature = Ed25519-sign(private_key, b"mabware.edge.v1\\x00" + body)``:
   the spec id and a zero byte go before the body, so a signature made for
   another purpose never verifies here.

3. Body. One MessagePack map, read only after the signature verified::

       {"format": 1, "seq": int, "issued": float, "experiments": [EXPERIMENT, ...]}

   ``seq`` (``0 .. 2**63 - 1``) rises with every issue: an issuer takes
   ``max(previous seq + 1, floor(issued * 1000))``, so it keeps rising
   across restarts and issuers as long as clocks do. ``issued`` is unix
   seconds. EXPERIMENT is::

       {"name": str, "version": int, "arms": [str, ...], "payloads": [any, ...],
        "default": int, "reward_range": [float, float], "reward_mode": "once" | "every",
        "status": "active" | "disabled" | "fallback", "allocation": [float, ...],
        "bucket_seconds": float, "buckets": int}

   ``arms`` are unique and non-empty; ``payloads`` and ``allocation`` are
   parallel to them; ``default`` indexes ``arms``; ``allocation`` is
   finite, ``>= 0`` and sums to 1 within 1e-9 (``mabware.assign`` step 2);
   names are unique. ``status`` is ``active`` when the allocation is the
   policy's (after guardrails), ``disabled`` when an operator switched the
   experiment off, ``fallback`` when a guardrail sent all traffic to the
   default arm; only ``active`` experiments are learned from.
   ``buckets`` is how many time buckets of ``bucket_seconds`` the
   experiment's policy reads (0: none; drift policies only).

4. Reading. In this order; the first failure is the reason:
   ``malformed`` (not MessagePack, not the map of step 2, or trailing
   bytes), ``spec`` (another spec id), ``signature`` (does not verify under
   the configured public key), ``format`` (the body's format is not 1),
   ``malformed`` (the body breaks step 3). A reader keeps the last good
   snapshot and refuses one whose ``seq`` is lower than it holds
   (``rollback``). Keys a reader does not know are ignored: an issuer may
   add keys within format 1, never change the meaning of one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mabware._signing_keys import generate_signing_keys, private_key, public_key
from mabware.allocation import Allocation
from mabware.exceptions import ConfigError, MabwareError
from mabware.experiment import Experiment

__all__ = [
    "FORMAT",
    "SPEC",
    "EdgeExperiment",
    "EdgeSnapshot",
    "SnapshotError",
    "generate_signing_keys",
    "issue",
    "next_seq",
    "private_key",
    "public_key",
    "read",
]

SPEC = "mabware.edge.v1"
FORMAT = 1
ACTIVE, DISABLED, FALLBACK = "active", "disabled", "fallback"
_TAG = SPEC.encode("ascii") + b"\x00"
_MAX_INT = 2**63 - 1
_MAX_BYTES = 64 * 1024 * 1024  # far beyond 1,000 experiments of 50 arms


class SnapshotError(MabwareError, ValueError):
    """A snapshot that is refused; ``reason`` is one of spec step 4's words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class EdgeExperiment:
    """One experiment as a snapshot carries it (spec step 3)."""

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

    @classmethod
    def of(cls, experiment: Experiment, allocation: Allocation) -> EdgeExperiment:
        """What the edge needs of ``experiment`` serving ``allocation``."""
        status = ACTIVE
        if allocation.fallback:
            status = DISABLED if not experiment.enabled else FALLBACK
        return cls(
            name=experiment.name,
            version=experiment.version,
            arms=tuple(experiment.arm_names),
            payloads=tuple(experiment.payloads[a] for a in experiment.arm_names),
            default=experiment.default_index,
            reward_range=(float(experiment.reward_range[0]), float(experiment.reward_range[1])),
            reward_mode=experiment.reward_mode,
            status=status,
            allocation=tuple(float(p) for p in allocation.probabilities),
            bucket_seconds=float(experiment.bucket_seconds),
            buckets=int(experiment.policy.buckets_needed),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "arms": list(self.arms),
            "payloads": list(self.payloads),
            "default": self.default,
            "reward_range": list(self.reward_range),
            "reward_mode": self.reward_mode,
            "status": self.status,
            "allocation": list(self.allocation),
            "bucket_seconds": self.bucket_seconds,
            "buckets": self.buckets,
        }


@dataclass(frozen=True)
class EdgeSnapshot:
    """A whole snapshot: its sequence, issue time and experiments."""

    seq: int
    issued: float
    experiments: tuple[EdgeExperiment, ...]

    def experiment(self, name: str) -> EdgeExperiment | None:
        return next((e for e in self.experiments if e.name == name), None)


def next_seq(previous: int | None, issued: float) -> int:
    """The sequence of a snapshot issued at ``issued`` after one numbered ``previous``."""
    return max((previous or 0) + 1, math.floor(issued * 1000))


def issue(snapshot: EdgeSnapshot, key: Ed25519PrivateKey) -> bytes:
    """The signed file of ``snapshot`` (spec step 2).

    Raises:
        ConfigError: an arm payload MessagePack cannot carry (named).
    """
    body = {
        "format": FORMAT,
        "seq": snapshot.seq,
        "issued": float(snapshot.issued),
        "experiments": [e.to_wire() for e in snapshot.experiments],
    }
    try:
        packed: bytes = msgpack.packb(body, use_bin_type=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"a snapshot carries arm payloads as MessagePack; one cannot be: {exc}",
            original_error=exc,
        ) from exc
    signed: bytes = msgpack.packb(
        {"spec": SPEC, "body": packed, "signature": key.sign(_TAG + packed)}, use_bin_type=True
    )
    return signed


def read(data: bytes, key: Ed25519PublicKey | None) -> EdgeSnapshot:
    """Check and parse a snapshot file (spec step 4, without the rollback check).

    Args:
        data: the file's bytes.
        key: the issuer's public key; None skips the signature (an issuer
            reading back what it wrote itself, never a client).

    Raises:
        SnapshotError: with the spec's reason.
    """
    outer = _unpack(data, "the file")
    if not isinstance(outer, dict) or set(outer) != {"spec", "body", "signature"}:
        raise SnapshotError("malformed", "expected a map of spec, body and signature")
    if outer["spec"] != SPEC:
        raise SnapshotError("spec", f"expected {SPEC!r}, got {outer['spec']!r:.60}")
    body, signature = outer["body"], outer["signature"]
    if not isinstance(body, bytes) or not isinstance(signature, bytes):
        raise SnapshotError("malformed", "body and signature must be bytes")
    if key is not None:
        try:
            key.verify(signature, _TAG + body)
        except InvalidSignature:
            raise SnapshotError("signature", "the signature does not verify") from None
    inner = _unpack(body, "the body")
    if not isinstance(inner, dict) or inner.get("format") != FORMAT:
        found = inner.get("format") if isinstance(inner, dict) else None
        raise SnapshotError("format", f"expected format {FORMAT}, got {found!r:.60}")
    try:
        return _snapshot(inner)
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError("malformed", f"the body breaks the schema: {exc}") from None


def _unpack(data: bytes, what: str) -> Any:
    if not isinstance(data, bytes) or len(data) > _MAX_BYTES:
        raise SnapshotError("malformed", f"{what} is not bytes of a sane size")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise SnapshotError("malformed", f"{what} is not MessagePack ({exc})") from None


def _snapshot(body: Mapping[str, Any]) -> EdgeSnapshot:
    seq, issued = body["seq"], body["issued"]
    if type(seq) is not int or not 0 <= seq <= _MAX_INT:
        raise ValueError("seq must be an int in 0..2**63-1")
    if type(issued) is not float or not math.isfinite(issued):
        raise ValueError("issued must be a finite float")
    if type(body["experiments"]) is not list:
        raise ValueError("experiments must be an array")
    experiments = tuple(_experiment(e) for e in body["experiments"])
    if len({e.name for e in experiments}) != len(experiments):
        raise ValueError("experiment names must be unique")
    return EdgeSnapshot(seq, issued, experiments)


def _experiment(wire: Mapping[str, Any]) -> EdgeExperiment:
    # tuple() below would also take a str ("ab" as two arms): arrays only, as step 3 says
    if not all(type(wire[k]) is list for k in ("arms", "payloads", "allocation", "reward_range")):
        raise ValueError("arms, payloads, allocation and reward_range must be arrays")
    arms = tuple(wire["arms"])
    if not arms or not all(type(a) is str for a in arms) or len(set(arms)) != len(arms):
        raise ValueError("arms must be unique strings")
    allocation = tuple(wire["allocation"])
    payloads = tuple(wire["payloads"])
    if len(allocation) != len(arms) or len(payloads) != len(arms):
        raise ValueError("payloads and allocation must be parallel to arms")
    if not all(type(p) is float and math.isfinite(p) and p >= 0 for p in allocation):
        raise ValueError("allocation entries must be finite floats >= 0")
    if abs(math.fsum(allocation) - 1.0) > 1e-9:
        raise ValueError("allocation must sum to 1")
    low, high = wire["reward_range"]
    experiment = EdgeExperiment(
        name=wire["name"],
        version=wire["version"],
        arms=arms,
        payloads=payloads,
        default=wire["default"],
        reward_range=(low, high),
        reward_mode=wire["reward_mode"],
        status=wire["status"],
        allocation=allocation,
        bucket_seconds=wire["bucket_seconds"],
        buckets=wire["buckets"],
    )
    _check(experiment)
    return experiment


def _check(e: EdgeExperiment) -> None:
    if type(e.name) is not str or type(e.version) is not int or not 0 <= e.version <= _MAX_INT:
        raise ValueError("name must be a str and version an int in 0..2**63-1")
    if type(e.default) is not int or not 0 <= e.default < len(e.arms):
        raise ValueError("default must index arms")
    low, high = e.reward_range
    if not (type(low) is float and type(high) is float and low < high):
        raise ValueError("reward_range must be two floats, low < high")
    if e.reward_mode not in ("once", "every") or e.status not in (ACTIVE, DISABLED, FALLBACK):
        raise ValueError("reward_mode or status is not one of the spec's words")
    if type(e.bucket_seconds) is not float or not e.bucket_seconds > 0:
        raise ValueError("bucket_seconds must be a float > 0")
    if type(e.buckets) is not int or e.buckets < 0:
        raise ValueError("buckets must be an int >= 0")
