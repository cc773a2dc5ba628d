"""Prometheus metrics for an engine: an ASGI or WSGI app to mount, or your registry.

::

    from mabware.metrics import metrics_app
    app.mount("/metrics", metrics_app(middleware.engine))   # Starlette, FastAPI
    # WSGI: metrics_wsgi_app(engine); already on prometheus_client:
    # register_engine(engine, prometheus_client.REGISTRY)

Needs the ``metrics`` extra (``pip install 'mabware[metrics]'``). Call one
of these when the app is built, before it serves: counting starts then.

Counted as they happen, in every process (they add up over workers)::

    mabware_assignments_total{experiment,arm}     counter  arms assigned (pulls counted)
    mabware_rewards_total{experiment,arm}         counter  rewards stored
    mabware_reward_sum{experiment,arm}            gauge    sum of the stored rewards' values
    mabware_cookies_rejected_total{reason}        counter  cookies ignored (visitor reassigned)
    mabware_cookies_truncated_total               counter  Set-Cookies that dropped assignments
    mabware_guardrail_trips_total{reason}         counter  guardrail trips as they start [1]
    mabware_rewards_rejected_total{reason}        counter  rewards dropped
    mabware_uncounted_requests_total{reason}      counter  default arms, uncounted: bot, no_consent
    mabware_events_total{event}                   counter  other engine events: engine_error,
                                                           hook_error:<hook>, bad_unit_id,
                                                           cookie_rotated
    mabware_sync_duration_seconds{outcome}        histogram  one exchange with the shared
                                                           store; outcome ok or error

Read at scrape time from the process that answers (never summed)::

    mabware_allocation{experiment,arm}            gauge  current share of new visitors (0..1)
    mabware_global_pulls{experiment,arm}          gauge  pulls the learning sees (all replicas
                                                         at the last sync + this process's)
    mabware_global_reward_sum{experiment,arm}     gauge  reward sum the learning sees (same)
    mabware_guardrail_active{experiment,reason,arm}  gauge  1 while a guardrail acts (arm
                                                         empty for experiment-wide trips)
    mabware_backend_up{store}                     gauge  1 if the last sync succeeded
                                                         (``memory:`` always 1)
    mabware_state_age_seconds{store}              gauge  seconds since the last pull (+Inf
                                                         before it; absent for ``memory:``)

Reasons: cookies ``malformed``, ``oversize``, ``version``, ``unknown_key``,
``auth``, ``payload``, ``expired``, ``future``; rewards
``unknown_experiment``, ``unknown_arm``, ``bad_value``,
``duplicate_reward`` (a second reward for one ``once`` assignment); trips
the ``mabware.guardrails`` reasons. Known reasons are exported at 0 from
the start. [1] Each process recomputes its allocation from the merged
state and counts a trip when *it* starts applying it, so N workers count
one trip up to N times; ``mabware_guardrail_active`` says whether it is on.

How workers add up. The first group is counted in each process as the
events happen (``mabware._instruments``; prometheus_client objects fed by
the engine's listeners). Without ``PROMETHEUS_MULTIPROC_DIR`` they are this
process's numbers: scrape each process and ``sum()`` in PromQL. With it set
(gunicorn or uvicorn workers behind one port, a scrape answered by any
worker) the library writes every update to that directory and
``metrics_app`` sums all workers' files, exited workers included, so a
counter equals the whole server's count whichever worker answers (the
reward-sum gauge uses ``multiprocess_mode="sum"``). Empty the directory
when the server starts, as prometheus_client requires. The second group
describes what a process's learning sees: the merged state that every
worker shares (within one sync interval) plus its own counts. They are
read at scrape time from the answering worker and never summed, since
summing N copies of one state would count it N times.

Why the per-arm counters are fed at event time rather than read from the
store at scrape time: the store keeps no count of rewards (only sums), its
own counters shrink when a replica is rebased, and in multiprocess mode a
scrape-time reading would reach only the answering worker. The price is
one prometheus_client increment per experiment a new visitor is assigned
(returning visitors, the hot path, pull nothing; without metrics a pull
loops over an empty listener list); nothing else runs on a request unless
an event is counted.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app, make_wsgi_app
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import Collector
except ImportError as exc:  # an optional extra: say which one
    raise ImportError(
        "mabware.metrics needs prometheus-client: pip install 'mabware[metrics]'"
    ) from exc

from mabware._gauges import Live, Reporting
from mabware._instruments import Instruments
from mabware.engine import Engine
from mabware.exceptions import ConfigError

__all__ = [
    "Reporting",
    "metrics_app",
    "metrics_wsgi_app",
    "multiprocess",
    "register_engine",
    "source_registry",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def multiprocess() -> bool:
    """True when prometheus_client runs in multiprocess mode (the same test it makes).

    Set ``PROMETHEUS_MULTIPROC_DIR`` before the process starts: the library
    picks its mode once, when it is first imported.
    """
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ


class _Hooked:
    """What ``register_engine`` made for one engine."""

    def __init__(self, instruments: Instruments, live: Live) -> None:
        self.instruments = instruments
        self.live = live
        self.registries: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


_lock = threading.Lock()
_hooked: weakref.WeakKeyDictionary[Engine, _Hooked] = weakref.WeakKeyDictionary()
_process_instruments: list[Instruments] = []  # multiprocess mode: one set per process


def _instruments() -> Instruments:
    """New counters (one registry per engine), or the process's in multiprocess mode.

    Two sets of objects with the same names would overwrite each other's
    values in the process's multiprocess files, so there all engines share one.
    """
    if not multiprocess():
        return Instruments()
    if not _process_instruments:
        _process_instruments.append(Instruments())
    return _process_instruments[0]


def register_engine(engine: Engine, registry: CollectorRegistry | None = None) -> None:
    """Count ``engine``'s events from now on and serve them from ``registry``.

    Idempotent per (engine, registry). In multiprocess mode only the
    scrape-time gauges are registered: the counters reach the scrape
    through the ``MultiProcessCollector`` that your registry must hold
    (``metrics_app`` builds that for you).

    Args:
        engine: the engine (``MabwareMiddleware(...).engine``).
        registry: where to register; default ``prometheus_client.REGISTRY``.

    Raises:
        ConfigError: the registry already has mabware's metrics (another engine).
    """
    registry = REGISTRY if registry is None else registry
    with _lock:
        hooked = _hooked.get(engine)
        if hooked is None:
            instruments = _instruments()
            instruments.attach(engine)
            hooked = _hooked[engine] = _Hooked(instruments, Live(engine))
        if registry in hooked.registries:
            return
        collectors: list[Collector] = [hooked.live]
        if not multiprocess():
            collectors += hooked.instruments.collectors()
        done: list[Collector] = []
        try:
            for collector in collectors:
                registry.register(collector)
                done.append(collector)
        except ValueError as exc:  # duplicated names: leave the registry as it was
            for collector in done:
                registry.unregister(collector)
            raise ConfigError(
                f"this registry already serves mabware metrics ({exc}); "
                "give each engine its own registry"
            ) from exc
        hooked.registries.add(registry)


def _served(engine: Engine, registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is None:
        registry = CollectorRegistry()
        if multiprocess():  # every worker's files, read afresh at each scrape
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    register_engine(engine, registry)
    return registry


def source_registry(source: Reporting) -> tuple[CollectorRegistry, Instruments, ASGIApp]:
    """A registry for a process that is not an ``Engine`` (the standalone server).

    ``source`` feeds the scrape-time gauges; the caller counts its own
    assignments and rewards on the returned instruments (``assignments``,
    ``rewards``, ``reward_sum``) and hands it its stores
    (``Instruments.observe_syncs``). Multiprocess mode as in ``metrics_app``.

    Returns:
        The registry, the instruments, and an ASGI app serving the registry.
    """
    registry = CollectorRegistry()
    instruments = _instruments()
    if multiprocess():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in instruments.collectors():
            registry.register(collector)
    registry.register(Live(source))
    return registry, instruments, _MetricsApp(registry)


def metrics_app(engine: Engine, *, registry: CollectorRegistry | None = None) -> ASGIApp:
    """An ASGI app answering GET (any path) with the Prometheus exposition.

    Content negotiation (OpenMetrics), gzip and ``name[]`` filtering are
    prometheus_client's. Other methods get 405; lifespan is acknowledged.

    Args:
        engine: the engine whose metrics to serve.
        registry: the registry to serve, with the engine registered in it
            (give ``prometheus_client.REGISTRY`` to serve your own metrics
            too). Default: a new one; with ``PROMETHEUS_MULTIPROC_DIR`` set,
            a new one holding a ``MultiProcessCollector`` (all workers).
    """
    return _MetricsApp(_served(engine, registry))


def metrics_wsgi_app(engine: Engine, *, registry: CollectorRegistry | None = None) -> WSGIApp:
    """The WSGI twin of ``metrics_app`` (prometheus_client's ``make_wsgi_app``)."""
    app: WSGIApp = make_wsgi_app(_served(engine, registry))
    return app


class _MetricsApp:
    """A class, not a function, so Starlette's ``Route`` treats it as an ASGI app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._app: ASGIApp = make_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served on its own: say yes, hold nothing
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            body = f"# HTTP 405: {scope['method']}; use GET\n".encode()
            headers = [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain; charset=utf-8")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)
