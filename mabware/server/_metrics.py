"""``GET /metrics`` of the standalone server: the middleware's metrics, fed by the service.

The same names as ``mabware.metrics`` (one dashboard for both): the
server's own decisions are ``mabware_assignments_total``, its rewards
``mabware_rewards_total`` / ``mabware_reward_sum``, every exchange of its
replica ``mabware_sync_duration_seconds``; the scrape-time gauges
(allocation, what the learning sees, active guardrails, backend health)
come from the current runtime. With ``PROMETHEUS_MULTIPROC_DIR`` set, the
counters of every server worker add up, as for the middleware.
"""

from __future__ import annotations

from typing import Any

from mabware.metrics import source_registry
from mabware.server._service import Runtime, Service


def metrics_for(service: Service) -> Any:
    """The ASGI app serving ``service``'s metrics; counting starts now."""
    _, instruments, app = source_registry(service)

    def on_pull(experiment: str, arm: str) -> None:
        instruments.assignments.labels(experiment, arm).inc()

    def on_reward(experiment: str, arm: str, value: float) -> None:
        instruments.rewards.labels(experiment, arm).inc()
        instruments.reward_sum.labels(experiment, arm).inc(value)

    def on_runtime(runtime: Runtime) -> None:
        instruments.observe_syncs(runtime.store)

    service.pull_listeners.append(on_pull)
    service.reward_listeners.append(on_reward)
    service.runtime_listeners.append(on_runtime)
    return app
