"""A published snapshot as a server worker holds it: checked once, walked per decision.

The publisher (``mabware.server._publisher``) stores signed snapshot bytes
(``mabware.edge_snapshot``); every worker reads them back into a
``Published``: the bytes ``GET /edge/snapshot`` answers with their ETag,
the parsed snapshot, and one ``Table`` per experiment with its cumulative
allocation computed here, once per snapshot, so that ``GET /decision``
costs one dict lookup and one bisect (``mabware.assign``), never a numpy
call.

A server without a signing key stores its snapshots with an empty
signature (``unsigned``): its workers still share one sequence and one
allocation per experiment, and no client can mistake the bytes for a
signed snapshot (an empty signature never verifies).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mabware import assign
from mabware.edge_snapshot import (
    ACTIVE,
    EdgeExperiment,
    EdgeSnapshot,
    SnapshotError,
    issue,
    read,
)
from mabware.experiment import Experiment


@dataclass(frozen=True)
class Table:
    """What ``GET /decision`` walks for one experiment.

    Attributes:
        experiment: the experiment as the snapshot publishes it.
        cumulative: ``assign.cumulative`` of its allocation; None when its
            status is not active (the default arm, not counted).
    """

    experiment: EdgeExperiment
    cumulative: tuple[float, ...] | None

    @classmethod
    def of(cls, experiment: EdgeExperiment) -> Table:
        active = experiment.status == ACTIVE
        return cls(experiment, assign.cumulative(experiment.allocation) if active else None)

    def serves(self, experiment: Experiment) -> bool:
        """Whether it publishes ``experiment``'s version and arms (so arm indexes agree)."""
        return (
            self.experiment.version == experiment.version
            and self.experiment.arms == experiment.arm_names
        )


@dataclass(frozen=True)
class Published:
    """One stored snapshot, read back.

    Attributes:
        data: the stored bytes, as ``GET /edge/snapshot`` answers them.
        etag: a strong ETag of ``data``.
        snapshot: what they say.
        signed: they verify under this server's public key.
        tables: experiment name -> its table.
    """

    data: bytes
    etag: str
    snapshot: EdgeSnapshot
    signed: bool
    tables: Mapping[str, Table]

    @property
    def seq(self) -> int:
        return self.snapshot.seq

    def table(self, experiment: Experiment) -> Table | None:
        """The table of ``experiment`` if this snapshot publishes its version and arms."""
        table = self.tables.get(experiment.name)
        return table if table is not None and table.serves(experiment) else None


def published(data: bytes, public: Ed25519PublicKey | None) -> Published:
    """Read stored bytes back (verified if this server has a key).

    Raises:
        SnapshotError: the bytes are no snapshot (a signature that does not
            verify is not an error: ``signed`` says so).
    """
    signed = False
    try:
        snapshot = read(data, public)
        signed = public is not None
    except SnapshotError as exc:
        if exc.reason != "signature":
            raise
        snapshot = read(data, None)
    tables = {e.name: Table.of(e) for e in snapshot.experiments}
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    return Published(data, etag, snapshot, signed, tables)


def signed_bytes(snapshot: EdgeSnapshot, key: Ed25519PrivateKey | None) -> bytes:
    """The stored form of ``snapshot``: signed by ``key``, or with an empty signature.

    Raises:
        ConfigError: an arm payload MessagePack cannot carry.
    """
    if key is not None:
        return issue(snapshot, key)
    # Sign with a key thrown away at once, then empty the signature: the body
    # is built by the one function that defines it, and nothing verifies.
    outer = msgpack.unpackb(issue(snapshot, Ed25519PrivateKey.generate()), raw=False)
    outer["signature"] = b""
    packed: bytes = msgpack.packb(outer, use_bin_type=True)
    return packed
