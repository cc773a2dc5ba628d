"""What the REST API does: decisions, rewards and changes, over registry and store.

The server is one more replica of the exact merge: its decisions and
rewards are counted in a ``SharedStore`` that pushes to the same backend
the ``POST /sync`` endpoint merges into, so the statistics of the server
and of every middleware process add up.

A ``Runtime`` serves one revision of the registry: the store of its
experiments (one replica) and their ``Plans`` (allocations recomputed at
most every 50 ms while the statistics move). Decisions walk the published
allocations (``mabware.server._publisher``), which are the plans' as of the
last snapshot. When the registry changes (this worker or another changed an
experiment), the runtime is replaced: the old store pushes its totals, the
new one starts as a new replica and pulls the merged state at once, so no
statistics are forgotten: they are keyed by experiment name, version and
arm name. The old runtime keeps syncing for ``RETIRE_AFTER`` intervals
before its last push, so a request that took it just before the switch
still has its pull or reward counted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mabware import assign
from mabware._plans import Plan, Plans
from mabware._ratelimit import OncePerInterval
from mabware.history import History
from mabware.server._published import Table
from mabware.server._registry import Change, Entries, Registry
from mabware.store import Store
from mabware.store.merge import Replica, SharedState
from mabware.store.shared import Backend, SharedStore
from mabware.summary import ExperimentSummary, summarize

logger = logging.getLogger("mabware.server")

#: sync intervals a replaced runtime keeps syncing before it closes
RETIRE_AFTER = 2.0


@dataclass(frozen=True)
class Decision:
    """One decision the server made."""

    experiment: str
    version: int
    arm: str
    arm_index: int
    propensity: float
    counted: bool


class Runtime:
    """The store and plans of one registry revision."""

    def __init__(
        self,
        revision: object,
        entries: Entries,
        backend: Backend,
        *,
        scheme: str,
        sync_interval: float,
        events: OncePerInterval,
    ) -> None:
        self.revision = revision
        self.entries = entries
        experiments = [e.experiment for e in entries.values()]
        self.store: Store = SharedStore(
            experiments, backend, scheme=scheme, sync_interval=sync_interval
        )
        self.plans = Plans(
            experiments,
            self.store,
            events,
            recompute_interval=0.05,
            refresh_interval=10.0,
            seed=None,
        )
        self.plans.disabled_arms = {n: e.disabled_arms for n, e in entries.items()}
        self._rng = random.Random()
        self.pull_listeners: list[Callable[[str, str], None]] = []
        self.reward_listeners: list[Callable[[str, str, float], None]] = []

    def start(self) -> None:
        """Pull the merged state once (the first decisions know it), then sync in the background."""
        assert isinstance(self.store, SharedStore)
        self.store.sync()
        self.plans.refresh(time.time())
        self.store.start()

    def close(self) -> None:
        """Push the last totals and stop syncing."""
        assert isinstance(self.store, SharedStore)
        self.store.close()

    def plan(self, name: str, now: float) -> Plan:
        self.plans.refresh(now)
        return self.plans.by_name[name]

    def decide(self, name: str, unit_id: str | None, now: float, table: Table | None) -> Decision:
        """Pick an arm from the published ``table`` (by the unit's hash, or by sampling).

        The pull is counted in this runtime's store. No table (the snapshot
        could not be published), or one whose status is not active: the
        default arm, not counted. The table publishes this runtime's
        version and arms (``Table.serves``), so its arm indexes are ours.
        """
        exp = self.entries[name].experiment
        if table is None or table.cumulative is None:
            index = exp.default_index
            return Decision(name, exp.version, exp.arm_names[index], index, 1.0, counted=False)
        if unit_id is None:
            index = assign.sample(table.cumulative, self._rng)
        else:
            index = assign.assign_unit(table.cumulative, name, exp.version, unit_id)
        self.store.add_pull(name, index, now)
        for listener in self.pull_listeners:
            listener(name, exp.arm_names[index])
        share = table.experiment.allocation[index]
        return Decision(name, exp.version, exp.arm_names[index], index, share, counted=True)

    def reward(
        self, name: str, arm_index: int, value: float, propensity: float | None, now: float
    ) -> None:
        """Count a reward that the caller validated."""
        self.store.add_reward(name, arm_index, value, propensity, now)
        arm = self.entries[name].experiment.arm_names[arm_index]
        for listener in self.reward_listeners:
            listener(name, arm, value)

    def summary(self, name: str, now: float) -> ExperimentSummary:
        plan = self.plan(name, now)
        return summarize(plan.experiment, self.store.statistics(name, now), plan.allocation)


class Service:
    """The registry, the backend, and the runtime of the registry's current revision.

    Args:
        registry: where the experiment settings live.
        backend: where the merged statistics live.
        scheme: the store's scheme (metrics, repr).
        sync_interval: seconds between two syncs of the server's own replica.
        clock: wall-clock seconds.
    """

    def __init__(
        self,
        registry: Registry,
        backend: Backend,
        *,
        scheme: str,
        sync_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.backend = backend
        self._store_backend = _KeptOpen(backend)
        self.scheme = scheme
        self.sync_interval = sync_interval
        self.clock = clock
        self.events = OncePerInterval(logger)
        self._lock = threading.Lock()
        self._runtime: Runtime | None = None
        #: replaced runtimes still syncing until ``RETIRE_AFTER`` intervals have passed
        self._retiring: list[Runtime] = []
        #: allocations and rewards over time, kept across registry revisions (dashboard)
        self.history = History()
        #: called with each new runtime before it serves (metrics time its syncs)
        self.runtime_listeners: list[Callable[[Runtime], None]] = []
        #: called as ``(experiment, arm)`` after each counted decision (metrics)
        self.pull_listeners: list[Callable[[str, str], None]] = []
        #: called as ``(experiment, arm, value)`` after each counted reward (metrics)
        self.reward_listeners: list[Callable[[str, str, float], None]] = []

    def current(self, *, reload: bool = False) -> Runtime:
        """The runtime of the registry's revision, rebuilt if another worker changed it.

        ``reload`` reads the registry even if its revision looks unchanged (a
        request names an experiment this worker does not know yet).
        """
        runtime = self._runtime
        if runtime is not None and not reload and runtime.revision == self.registry.revision():
            return runtime
        with self._lock:
            revision, entries = self.registry.load()
            return self._switch(revision, entries)

    def current_if_any(self) -> Runtime | None:
        """The current runtime; None while none started and the registry is empty.

        An idle server starts no replica: it writes nothing to the store.
        """
        if self._runtime is None and not self.registry.load()[1]:
            return None
        return self.current()

    def knowing(self, name: str) -> Runtime:
        """The current runtime, reloaded once if it does not know experiment ``name``."""
        runtime = self.current()
        return runtime if name in runtime.entries else self.current(reload=True)

    def update(self, change: Change) -> Runtime:
        """Change the registry (``change`` may raise: nothing changes) and serve the result."""
        with self._lock:
            revision, entries = self.registry.update(change)
            return self._switch(revision, entries)

    def _switch(self, revision: object, entries: Entries) -> Runtime:
        old = self._runtime
        if old is not None and old.revision == revision:
            return old
        new = Runtime(
            revision,
            entries,
            self._store_backend,
            scheme=self.scheme,
            sync_interval=self.sync_interval,
            events=self.events,
        )
        new.pull_listeners = self.pull_listeners
        new.reward_listeners = self.reward_listeners
        new.plans.history = self.history
        for listener in self.runtime_listeners:
            listener(new)
        if old is not None:
            # Push now, so the new replica's first pull has everything so far;
            # close later: a request that took the old runtime a moment ago may
            # still count into it, and its sync thread pushes that too.
            old.store.sync()  # type: ignore[attr-defined]
            self._retiring.append(old)
            timer = threading.Timer(RETIRE_AFTER * self.sync_interval, self._retire, [old])
            timer.daemon = True
            timer.start()
        new.start()
        self._runtime = new
        return new

    def _retire(self, runtime: Runtime) -> None:
        """Close a replaced runtime (its last push), once no request can be using it."""
        with self._lock:
            if runtime not in self._retiring:
                return  # close() got there first
            self._retiring.remove(runtime)
        runtime.close()

    def tick(self) -> None:
        """Recompute the allocations that are due (the server's ticker calls it).

        An idle server (no experiments, no runtime yet) starts none: a runtime
        is a replica, and an idle server writes nothing to the store.
        """
        runtime = self.current_if_any()
        if runtime is not None:
            runtime.plans.refresh(self.clock())

    def dashboard_source(self) -> tuple[list[ExperimentSummary], History]:
        """What ``mabware.dashboard.Dashboard`` shows: every experiment, and the history."""
        return self.current().plans.summaries(self.clock()), self.history

    @property
    def store(self) -> Store:
        """The current runtime's store (``mabware.metrics.Reporting``)."""
        return self.current().store

    def report(self) -> dict[str, Any]:
        """The current runtime's ``Plans.report`` (``mabware.metrics.Reporting``)."""
        return self.current().plans.report(self.clock())

    def close(self) -> None:
        """Push the last totals (of replaced runtimes too)."""
        with self._lock:
            retiring, self._retiring = self._retiring, []
            for runtime in retiring:
                runtime.close()
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None


class _KeptOpen:
    """The service's backend as a runtime's store sees it: ``close`` leaves it open.

    A store closes its backend when it closes; the runtimes of successive
    revisions share the service's one backend (and its connections).
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        return self._backend.exchange(replica_id, push)

    def read(self) -> SharedState:
        return self._backend.read()

    def close(self) -> None:
        """Nothing: the service closes the backend."""
