"""Replica totals and their merge: the arithmetic of learning across processes.

DESIGN.md, "Data model": a replica is one process lifetime. Each push
carries the replica's id, a sequence number that rises with every push,
and the replica's *cumulative* totals since it started. The shared state
keeps, per replica, the entry with the highest sequence number, and the
global statistics are the sum over replicas. So:

* a duplicated, reordered or replayed push changes nothing (a lower or
  equal seq never replaces what is there);
* a push that is lost is made good by the next one (totals, not deltas);
* replicas silent for longer than the retention period are folded into one
  ``retired`` tally per experiment and remembered as tombstones, with the
  seq of the push that was folded, so the state stays small. A tombstoned
  replica that pushes again is refused (``RetiredReplicaError``, carrying
  that seq): it restarts under a new id with only what it counted after
  that push, so nothing is counted twice, not even a push whose reply it
  never got.

Everything here is pure: states in, states out. The backends (file, HTTP
server, Redis) store ``pack(state)`` and call ``merge``. The types live in
``_model``, the sums in ``_sums``, the wire form in ``_wire`` and the
stored form in ``_stored``; this module is their public face.
"""

from __future__ import annotations

from collections.abc import Sequence

from mabware.statistics import Statistics
from mabware.store._model import (
    MAX_BUCKETS,
    SUMS,
    WIDTH,
    Key,
    PackedTallies,
    Replica,
    RetiredReplicaError,
    SharedState,
    StateError,
    Tally,
)
from mabware.store._stored import FORMAT, pack, unpack
from mabware.store._sums import add, totals
from mabware.store._wire import replica_from_wire, replica_to_wire

__all__ = [
    "FORMAT",
    "MAX_BUCKETS",
    "SUMS",
    "WIDTH",
    "Key",
    "PackedTallies",
    "Replica",
    "RetiredReplicaError",
    "SharedState",
    "StateError",
    "Tally",
    "add",
    "combined",
    "combined_many",
    "compact",
    "merge",
    "pack",
    "replica_from_wire",
    "replica_to_wire",
    "unpack",
]


def merge(state: SharedState, replica_id: str, push: Replica) -> SharedState:
    """``state`` with ``push`` taken in, unless a push with a seq as high is there.

    Raises:
        RetiredReplicaError: ``replica_id`` was folded into the retired totals
            (its ``folded_seq`` says which push of it was).
    """
    if replica_id in state.tombstones:
        raise RetiredReplicaError(
            f"replica {replica_id} was retired",
            payload=replica_id,
            folded_seq=state.folded_seqs.get(replica_id),
        )
    current = state.replicas.get(replica_id)
    if current is not None and current.seq >= push.seq:
        return state
    return SharedState(
        {**state.replicas, replica_id: push}, state.retired, state.tombstones, state.folded_seqs
    )


def compact(state: SharedState, now: float, retention: float) -> SharedState:
    """Fold replicas not seen for ``retention`` seconds into ``retired``.

    Tombstones are forgotten after 30 retention periods: a replica silent
    that long is dead, not paused.
    """
    dead = [rid for rid, r in state.replicas.items() if now - r.seen > retention]
    old_tombs = [rid for rid, at in state.tombstones.items() if now - at > 30 * retention]
    if not dead and not old_tombs:
        return state
    retired = dict(state.retired)
    for rid in dead:
        for key, tally in state.replicas[rid].tallies.items():
            retired[key] = add(retired[key], tally) if key in retired else tally
    replicas = {rid: r for rid, r in state.replicas.items() if rid not in dead}
    tombstones = {rid: at for rid, at in state.tombstones.items() if rid not in old_tombs}
    tombstones.update(dict.fromkeys(dead, now))
    folded = {rid: seq for rid, seq in state.folded_seqs.items() if rid in tombstones}
    folded.update((rid, state.replicas[rid].seq) for rid in dead)
    return SharedState(replicas, retired, tombstones, folded)


def combined(
    state: SharedState,
    key: Key,
    arms: Sequence[str],
    depth: int,
    *,
    exclude: str | None = None,
) -> Statistics:
    """The global statistics of one experiment in ``arms`` order.

    Arms the tallies do not know are zeros; arms no longer in ``arms`` are
    left out. ``exclude`` leaves one replica out (the caller adds its own,
    fresher, totals instead). ``depth`` time buckets are kept (0: none).
    """
    return combined_many(state, [(key, arms, depth)], exclude=exclude)[0]


def combined_many(
    state: SharedState,
    wanted: Sequence[tuple[Key, Sequence[str], int]],
    *,
    exclude: str | None = None,
) -> list[Statistics]:
    """``combined`` of many experiments at once: (key, arms, depth) each, in that order.

    A replica that pushed exactly these experiments with these arms (every
    replica of one configuration does) is added in one numpy addition.
    """
    sources = [r.tallies for rid, r in state.replicas.items() if rid != exclude]
    sources.append(state.retired)
    return totals(sources, [(key, tuple(arms), depth) for key, arms, depth in wanted])
