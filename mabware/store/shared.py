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
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mabware._ratelimit import OncePerInterval
from mabware.experiment import Experiment
from mabware.statistics import Statistics
from mabware.store.local import Store
from mabware.store.merge import (
    Key,
    PackedTallies,
    Replica,
    RetiredReplicaError,
    SharedState,
    Tally,
    add,
    combined_many,
)

logger = logging.getLogger("mabware.store")

#: sync early while this replica's unpushed pulls are this share of the pulls it knows of
EARLY_SHARE = 0.05  # tuned with bench/sync.py table 1
_TICK = 1e-6  # seconds: the schedule's resolution


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

    When to sync (``next_sync_delay``, the one rule the thread and the
    benchmarks follow): ``sync_interval`` after the last successful sync,
    or earlier, though never within ``sync_interval / 10`` of it, as soon as
    this replica's unpushed pulls of some experiment are ``EARLY_SHARE``
    (5%) or more of all its pulls this replica knows of (the others' as
    last pulled plus its own). A young experiment is where a replica learns
    almost alone and where a second of it costs the most regret; once an
    experiment has many pulls, what one replica adds in a second is a small
    share and syncs are every ``sync_interval`` again. The loop looks every
    ``sync_interval / 10``; after a failure it backs off as described above.

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
        # Pushes kept besides the acknowledged one while their fate is unknown
        # (see _push): enough for the first attempts after an outage begins.
        self._attempts_kept = 6
        self._new_replica()
        self._others: dict[str, Statistics] = {}
        #: True while the last exchange succeeded
        self.backend_up = False
        #: when the shared state was last pulled (clock seconds), None before the first
        self.last_sync: float | None = None
        #: called after every sync with (seconds the whole sync took, whether it
        #: succeeded), from the syncing thread; one that raises is logged and
        #: counted (cause "observer_error"), and the others still run
        self.sync_observers: list[Callable[[float, bool], None]] = []
        _after_fork(self)

    def _new_replica(self) -> None:
        self.replica_id = uuid.uuid4().hex
        self.seq = 0
        self._acked: Mapping[Key, Tally] = {}  # what the backend last acknowledged
        # seq -> tallies of the pushes that may be what the backend holds of
        # us: the acknowledged one and those attempted since (a push can land
        # and its reply be lost). A retirement names the one it folded.
        self._attempted: dict[int, Mapping[Key, Tally]] = {}

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
        """Push and pull once, again as a new replica if retired (the sync lock is held).

        Then tells every ``sync_observers`` how long it all took and whether
        it succeeded.
        """
        began = time.perf_counter()
        ok = False
        try:
            try:
                ok = self._push()
            except RetiredReplicaError as exc:
                # Push again at once as the new replica: otherwise the counts
                # since the folded push would wait out a back-off, and be lost
                # if this was close()'s last push.
                self._rebase(exc.folded_seq)
                ok = self._push()
        finally:
            seconds = time.perf_counter() - began
            for observer in self.sync_observers:
                try:
                    observer(seconds, ok)
                except Exception as exc:  # a metrics hook must not stop the syncing
                    self._log("observer_error", f"sync observer {observer!r} raised: {exc!r}")
        return ok

    def _push(self) -> bool:
        """One exchange; RetiredReplicaError passes through."""
        now = self._clock()
        # Packed here, before the exchange: a file backend's lock is then held
        # to encode one block, not to gather a hundred tallies first.
        tallies = PackedTallies.of(self._tallies(now))
        self.seq += 1
        self._attempted[self.seq] = tallies
        if len(self._attempted) > self._attempts_kept:
            # Keep the acknowledged push, the first attempts after it and the
            # latest: a push folded while its reply was lost is the first one
            # of an outage, or the last before the process paused.
            del self._attempted[list(self._attempted)[-2]]
        push = Replica(self.seq, now, tallies)
        try:
            state = self.backend.exchange(self.replica_id, push)
        except RetiredReplicaError:
            raise  # _sync rebases
        except Exception as exc:
            self.backend_up = False
            self._log(type(exc).__name__, f"{self.scheme} store unreachable: {exc}")
            return False
        self._acked = tallies
        self._attempted = {self.seq: tallies}  # the state holds this one or a later one
        wanted = [
            ((name, exp.version), exp.arm_names, exp.policy.buckets_needed)
            for name, exp in self._experiments.items()
        ]
        merged = combined_many(state, wanted, exclude=self.replica_id)
        self._others = dict(zip(self._experiments, merged, strict=True))
        for name in self.changes:
            self.changes[name] += 1
        self.backend_up = True
        self.last_sync = now
        return True

    def _rebase(self, folded_seq: int | None = None) -> None:
        """We were retired (silent past the retention): carry on as a new replica.

        The retired totals hold one push of ours, ``folded_seq``: usually the
        last acknowledged one, but it may be a later one whose reply was
        lost. The new replica starts from the counts since that push, so
        nothing is counted twice and nothing is lost. Until the next pull,
        its totals count among the others' (where the retired tally now has
        them), so ``statistics()`` stays whole meanwhile. A backend that does
        not say which push it folded is taken to hold the acknowledged one.
        """
        self._log("retired", f"replica {self.replica_id} was retired; continuing as a new one")
        counted = self._acked
        if folded_seq is not None:
            # The folded push if it is kept; if not, the latest kept before it,
            # which counts the difference twice but never takes out a count the
            # retired totals lack. None before it: the backend lost what it
            # acknowledged, and the acknowledged push is the nearest.
            earlier = [seq for seq in self._attempted if seq <= folded_seq]
            counted = self._attempted[max(earlier)] if earlier else counted
        self._new_replica()
        others = dict(self._others)
        with self._lock:
            for name, exp in self._experiments.items():
                pushed = counted.get((name, exp.version))
                if pushed is not None:
                    self._counters[name].subtract(pushed.stats)
                    last = others.get(name)
                    others[name] = (
                        pushed.stats
                        if last is None
                        else add(Tally(exp.arm_names, last), pushed).stats
                    )
            self._others = others

    def next_sync_delay(self, now: float) -> float:
        """Seconds from ``now`` until the sync loop should look again; 0.0: sync now.

        The schedule in the class docstring; pure: it only reads the store.
        """
        if self.last_sync is None:
            return 0.0
        elapsed = now - self.last_sync
        step = self.sync_interval / 10
        # Times within a microsecond count as reached: a float sum such as
        # last_sync + step - last_sync may fall a hair short of step.
        if not -_TICK < elapsed < self.sync_interval - _TICK:  # or the clock went back
            return 0.0
        if elapsed < step - _TICK:
            return step - elapsed
        if self._mostly_unshared(now):
            return 0.0
        return min(step, self.sync_interval - elapsed)

    def _mostly_unshared(self, now: float) -> bool:
        """Does some experiment have EARLY_SHARE or more of its known pulls unpushed here?"""
        for name, exp in self._experiments.items():
            own = float(super().statistics(name, now).pulls.sum())
            acked = self._acked.get((name, exp.version))
            unpushed = own - (float(acked.stats.pulls.sum()) if acked is not None else 0.0)
            others = self._others.get(name)
            known = own + (float(others.pulls.sum()) if others is not None else 0.0)
            if unpushed > 0 and unpushed >= EARLY_SHARE * known:
                return True
        return False

    def _run(self) -> None:
        backoff = 0.0  # the last back-off; 0.0 while the backend answers
        delay = waited = 0.0  # the first exchange at once: it brings the others' learning
        while not self._stop.wait(delay):
            waited += delay
            # A whole interval of real waiting syncs whatever the store's clock says.
            if not backoff and waited < self.sync_interval - _TICK:
                delay = self.next_sync_delay(self._clock())
                if delay > 0.0:
                    continue
            waited = 0.0
            if self.sync():
                backoff = 0.0
                delay = self.next_sync_delay(self._clock())
            else:
                backoff = min(max(backoff, self.sync_interval) * 2, 8 * self.sync_interval)
                delay = backoff

    def start(self) -> None:
        """Sync on ``next_sync_delay``'s schedule in a daemon thread, starting now; idempotent."""
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
