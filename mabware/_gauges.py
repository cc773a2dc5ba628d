"""The scrape-time gauges of ``mabware.metrics``: what a process's learning sees now.

Read from the answering process at each scrape, never summed over workers
(they describe the merged state every worker shares): the allocation, the
statistics it is computed from, the guardrails acting, the store's health.
"""

from __future__ import annotations

import time
import weakref
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mabware.store import SharedStore, Store


class Reporting(Protocol):
    """What the scrape-time gauges read: an ``Engine``, or the server's service."""

    @property
    def store(self) -> Store:
        """Where the statistics are (backend health, state age)."""
        ...

    def report(self) -> dict[str, Any]:
        """``Plans.report``'s plain data."""
        ...


class Live(Collector):
    """The gauges read at scrape time from the process that answers."""

    def __init__(self, engine: Reporting) -> None:
        self._engine = weakref.ref(engine)  # the registry must not keep an engine alive

    def describe(self) -> Iterator[Metric]:
        """The families (no samples), so a registry can refuse duplicated names."""
        return iter(_families())

    def collect(self) -> Iterator[Metric]:
        """Allocation, what the learning sees, active guardrails, backend health."""
        engine = self._engine()
        if engine is None:
            return iter(())
        allocation, pulls, reward_sum, active, up, age = families = _families()
        for name, exp in engine.report()["experiments"].items():
            for arm, row in exp["arms"].items():
                allocation.add_metric([name, arm], row["share"])
                pulls.add_metric([name, arm], row["pulls"])
                reward_sum.add_metric([name, arm], row["reward_sum"])
            trips = Tally((trip["reason"], trip["arm"] or "") for trip in exp["trips"])
            for (reason, arm), count in sorted(trips.items()):
                active.add_metric([name, reason, arm], count)
        store = engine.store
        if isinstance(store, SharedStore):
            up.add_metric([store.scheme], 1.0 if store.backend_up else 0.0)
            seconds = store.state_age(time.time())
            age.add_metric([store.scheme], float("inf") if seconds is None else seconds)
        else:  # nothing shared: nothing can be down or stale
            up.add_metric([store.scheme], 1.0)
        return iter(families)


def _families() -> tuple[GaugeMetricFamily, ...]:
    arm = ["experiment", "arm"]
    return (
        GaugeMetricFamily(
            "mabware_allocation", "Current share of new visitors per arm (0..1).", labels=arm
        ),
        GaugeMetricFamily(
            "mabware_global_pulls",
            "Pulls the allocation is computed from: every replica as of the last sync, "
            "plus this process's own.",
            labels=arm,
        ),
        GaugeMetricFamily(
            "mabware_global_reward_sum",
            "Reward sum the allocation is computed from (as mabware_global_pulls).",
            labels=arm,
        ),
        GaugeMetricFamily(
            "mabware_guardrail_active",
            "Guardrails acting on the current allocation (arm empty: experiment-wide).",
            labels=["experiment", "reason", "arm"],
        ),
        GaugeMetricFamily(
            "mabware_backend_up",
            "1 if the last exchange with the store succeeded.",
            labels=["store"],
        ),
        GaugeMetricFamily(
            "mabware_state_age_seconds",
            "Seconds since the shared state was last pulled (+Inf before the first pull).",
            labels=["store"],
        ),
    )
