"""The server's Service: replacing the runtime when the registry changes loses nothing."""

from __future__ import annotations

import time

from mabware.edge_snapshot import EdgeExperiment
from mabware.experiment import Experiment
from mabware.server._published import Table
from mabware.server._registry import Entry, MemoryRegistry
from mabware.server._service import Runtime, Service
from mabware.server._state import MemoryBackend
from mabware.store.merge import combined


def _entry(name: str) -> Entry:
    return Entry(Experiment(name, ["a", "b"]), "thompson")


def _decide(runtime: Runtime, name: str) -> None:
    """A decision from the runtime's own allocation, as if it were published."""
    plan = runtime.plan(name, time.time())
    table = Table.of(EdgeExperiment.of(plan.experiment, plan.allocation))
    assert runtime.decide(name, None, time.time(), table).counted


def _pulls(backend: MemoryBackend, name: str) -> float:
    return float(combined(backend.read(), (name, 1), ("a", "b"), 0).pulls.sum())


def test_counts_into_a_replaced_runtime_are_pushed_before_it_closes() -> None:
    backend = MemoryBackend(retention=3600.0)
    service = Service(MemoryRegistry(), backend, scheme="memory", sync_interval=0.2)
    try:
        first = service.update(lambda entries: {**entries, "one": _entry("one")})
        _decide(first, "one")
        # another request changes the registry: a new runtime serves from now on ...
        second = service.update(lambda entries: {**entries, "two": _entry("two")})
        assert second is not first
        assert service.current() is second
        assert _pulls(backend, "one") == 1.0  # the old one pushed at the switch
        # ... while a request that took the old runtime a moment ago still counts into it
        _decide(first, "one")
        first.reward("one", 0, 1.0, None, time.time())
        _decide(second, "one")
        second.store.sync()  # type: ignore[attr-defined]
        deadline = time.monotonic() + 5
        while _pulls(backend, "one") < 3.0 and time.monotonic() < deadline:
            time.sleep(0.02)  # the old runtime syncs on, then closes with a last push
        assert _pulls(backend, "one") == 3.0
    finally:
        service.close()
    assert _pulls(backend, "one") == 3.0
    rewards = combined(backend.read(), ("one", 1), ("a", "b"), 0).reward_sum
    assert float(rewards.sum()) == 1.0


def test_close_pushes_the_runtimes_still_retiring() -> None:
    backend = MemoryBackend(retention=3600.0)
    service = Service(MemoryRegistry(), backend, scheme="memory", sync_interval=60.0)
    first = service.update(lambda entries: {**entries, "one": _entry("one")})
    service.update(lambda entries: {**entries, "two": _entry("two")})
    _decide(first, "one")  # after the switch's push; no sync for a minute
    assert _pulls(backend, "one") == 0.0
    service.close()
    assert _pulls(backend, "one") == 1.0


def test_the_ticker_of_an_idle_server_starts_no_replica() -> None:
    backend = MemoryBackend(retention=60.0)
    service = Service(MemoryRegistry(), backend, scheme="memory", sync_interval=60.0)
    service.tick()  # no experiments: nothing to recompute, and no replica to push
    service.close()
    assert backend.read().replicas == {}
