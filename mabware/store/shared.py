"""A store shared by many processes: push our totals, pull everyone's.

``SharedStore`` is the local ``Store`` (this replica's counters) plus a
backend holding the merged state of all replicas (``mabware.store.merge``)
and one background thread that, every ``sync_interval`` seconds, pushes
this replica's cumulative totals and pulls the merged state back. The
request path never waits on it: ``statistics()`` adds the last pulled
state of the *other* replicas to this process's own live counters, so one
process learns after every reward and all of them learn together.

When the backend fails, the process keeps serving from the last known
state plus its own counters, keeps its totals for the next push (they are
cumulative, so nothing is lost), backs off up to ``8 * sync_interval``,
says so in ``backend_up`` / ``sync_errors`` and logs once per cause per
minute.

A replica is one process lifetime: a fresh random id at start and in the
child after ``fork`` (whose counters start empty: what the parent counted
is the parent's to push). The thread is restarted in the child, and
``close()`` (lifespan shutdown, ``atexit``) pushes one last time.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Protocol

from mabware._ratelimit import OncePerInterval
from mabware.experiment import Experiment
from mabware.statistics import Statistics
from mabware.store.local import Store
from mabware.store.merge import (
    Key,
    Replica,
    RetiredReplicaError,
    SharedState,
    Tally,
    add,
    combined,
)

logger = logging.getLogger("mabware.store")


class Backend(Protocol):
    """Where the merged state lives (file, HTTP server, Redis)."""

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        """Merge ``push`` into the shared state atomically; return the merged state.

        Raises:
            RetiredReplicaError: the replica was folded into the retired totals.
            Exception: anything else means "unreachable for now".
        """
        ...

    def read(self) -> SharedState:
        """The merged state, without pushing (reports)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SharedStore(Store):
    """This process's counters, synchronised through a ``Backend``.

    Args:
        experiments: the experiments whose statistics are kept.
        backend: where the merged state lives.
        scheme: the store URL's scheme (for repr and metrics).
        sync_interval: seconds between two pushes, > 0.
        clock: wall-clock seconds; injectable for tests.
    """

    def __init__(
        self,
        experiments: Sequence[Experiment],
        backend: Backend,
        *,
        scheme: str,
        sync_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(experiments)
        self.scheme = scheme
        self.backend = backend
        self.sync_interval = sync_interval
        self._clock = clock
        self._log = OncePerInterval(logger)
        self._sync_lock = threading.Lock()  # one exchange at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._new_replica()
        self._others: dict[str, Statistics] = {}
        #: True while the last exchange succeeded
        self.backend_up = False
        #: when the shared state was last pulled (clock seconds), None before the first
        self.last_sync: float | None = None
        _after_fork(self)

    def _new_replica(self) -> None:
        self.replica_id = uuid.uuid4().hex
        self.seq = 0
        self._acked: dict[Key, Tally] = {}  # what the backend last acknowledged

    @property
    def sync_errors(self) -> int:
        """Failed exchanges so far (all causes)."""
        return sum(self._log.counts.values())

    def statistics(self, experiment: str, now: float) -> Statistics:
        """The other replicas' last pulled totals plus this process's live ones."""
        own = super().statistics(experiment, now)
        others = self._others.get(experiment)
        if others is None:
            return own
        arms = self._experiments[experiment].arm_names
        return add(Tally(arms, others), Tally(arms, own)).stats

    def state_age(self, now: float) -> float | None:
        """Seconds since the last successful pull (None before the first)."""
        return None if self.last_sync is None else now - self.last_sync

    # -- syncing ----------------------------------------------------------------

    def _tallies(self, now: float) -> dict[Key, Tally]:
        out: dict[Key, Tally] = {}
        for name, exp in self._experiments.items():
            out[(name, exp.version)] = Tally(exp.arm_names, super().statistics(name, now))
        return out

    def sync(self) -> bool:
        """Push our totals and pull the merged state once; True on success."""
        with self._sync_lock:
            try:
                return self._sync()
            except RetiredReplicaError:
                # Push again at once as the new replica: otherwise the counts
                # since the last acknowledged push would wait out a back-off,
                # and be lost if this was close()'s last push.
                self._rebase()
                return self._sync()

    def _sync(self) -> bool:
        """One exchange (the sync lock is held); RetiredReplicaError passes through."""
        now = self._clock()
        tallies = self._tallies(now)
        self.seq += 1
        push = Replica(self.seq, now, tallies)
        try:
            state = self.backend.exchange(self.replica_id, push)
        except RetiredReplicaError:
            raise  # sync() rebases
        except Exception as exc:
            self.backend_up = False
            self._log(type(exc).__name__, f"{self.scheme} store unreachable: {exc}")
            return False
        self._acked = tallies
        self._others = {
            name: combined(
                state,
                (name, exp.version),
                exp.arm_names,
                exp.policy.buckets_needed,
                exclude=self.replica_id,
            )
            for name, exp in self._experiments.items()
        }
        for name in self.changes:
            self.changes[name] += 1
        self.backend_up = True
        self.last_sync = now
        return True

    def _rebase(self) -> None:
        """We were retired (silent past the retention): carry on as a new replica.

        The retired totals hold what we last pushed and had acknowledged;
        the new replica starts from the counts since then, so nothing is
        counted twice and nothing is lost. Until the next pull, those
        acknowledged totals count among the others' (where the retired
        tally now has them), so ``statistics()`` stays whole meanwhile.
        """
        self._log("retired", f"replica {self.replica_id} was retired; continuing as a new one")
        acked = self._acked
        self._new_replica()
        others = dict(self._others)
        with self._lock:
            for name, exp in self._experiments.items():
                pushed = acked.get((name, exp.version))
                if pushed is not None:
                    self._counters[name].subtract(pushed.stats)
                    last = others.get(name)
                    others[name] = (
                        pushed.stats
                        if last is None
                        else add(Tally(exp.arm_names, last), pushed).stats
                    )
            self._others = others

    def _run(self) -> None:
        delay = 0.0  # the first exchange at once: it brings the other replicas' learning
        while not self._stop.wait(delay):
            ok = self.sync()
            delay = (
                self.sync_interval
                if ok
                else min(max(delay, self.sync_interval) * 2, 8 * self.sync_interval)
            )

    def start(self) -> None:
        """Sync every ``sync_interval`` in a daemon thread, starting now; idempotent."""
        if self._thread is not None or self._closed:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mabware-sync", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def close(self) -> None:
        """Stop the thread and push one last time; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.sync()
        self.backend.close()

    def _forked(self) -> None:
        """In a child after fork: a new replica with empty counters, its own thread."""
        running = self._thread is not None and not self._closed
        self._thread = None
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._log = OncePerInterval(logger)  # its lock too may have been held at the fork
        self._new_replica()
        self._counters = {name: exp.counters() for name, exp in self._experiments.items()}
        self._responses = {}
        self._sums = {}
        if running:
            self.start()


def _after_fork(store: SharedStore) -> None:
    ref = weakref.ref(store)

    def child() -> None:
        alive = ref()
        if alive is not None:
            alive._forked()

    os.register_at_fork(after_in_child=child)
