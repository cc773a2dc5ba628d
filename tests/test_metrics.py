"""Prometheus metrics: each number in the exposition equals what happened.

Single-process mode only (this test process has no PROMETHEUS_MULTIPROC_DIR);
tests/integration/test_metrics_gunicorn.py runs the multiprocess mode under
a real gunicorn.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mabware import Experiment, Guardrails
from mabware.cookies import CookieCodec, CookieState
from mabware.engine import Engine
from mabware.exceptions import ConfigError
from mabware.guardrails import ArmSLO
from mabware.metrics import metrics_app, metrics_wsgi_app, register_engine
from mabware.testing import FakeClock, make_engine

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(registry: CollectorRegistry) -> Samples:
    return parse(generate_latest(registry).decode())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def watched(engine: Engine) -> CollectorRegistry:
    registry = CollectorRegistry()
    register_engine(engine, registry)
    return registry


def headline(**kw: object) -> Experiment:
    return Experiment("headline", ["control", "bold"], **kw)  # type: ignore[arg-type]


def cookie_of(set_cookie: str | None) -> str:
    assert set_cookie is not None
    return set_cookie.split(";", 1)[0]


def test_assignments_count_every_pull_per_arm_and_no_returning_visit() -> None:
    engine = make_engine([headline(), Experiment("layout", ["grid", "list", "cards"])])
    registry = watched(engine)
    served: Counter[tuple[str, str]] = Counter()
    cookies = []
    for _ in range(57):
        visit = engine.begin(None)
        served.update((name, a.arm) for name, a in visit.items())
        cookies.append(cookie_of(engine.respond(visit, 200)))
    for cookie in cookies[:20]:  # returning visitors keep their arms: no pull
        engine.respond(engine.begin(cookie), 200)
    samples = scrape(registry)
    counted = names(samples, "mabware_assignments_total")
    assert len(counted) == 5  # every arm exported, even one never served
    for (experiment, arm), n in served.items():
        assert value(samples, "mabware_assignments_total", experiment=experiment, arm=arm) == n
    assert sum(counted.values()) == 2 * 57
    pulls = {  # the learning sees the same pulls (one process, memory: store)
        dict(labels)["arm"]: v
        for labels, v in names(samples, "mabware_global_pulls").items()
        if dict(labels)["experiment"] == "headline"
    }
    assert pulls == {arm: served["headline", arm] for arm in ("control", "bold")}


def test_rewards_count_sum_and_rejections_by_reason() -> None:
    clicks = Experiment("clicks", ["control", "bold"], reward_mode="every")
    engine = make_engine([headline(), clicks], strict=False)
    registry = watched(engine)
    visit = engine.begin(None)
    arm = visit["clicks"].arm
    for reward in (0.25, 1.0, 0.0):
        assert visit.reward("clicks", reward)
    assert visit.reward("headline", 1.0)
    assert not visit.reward("headline", 1.0)  # reward_mode "once"
    assert not visit.reward("clicks", 7.0)  # outside [0, 1]
    assert not visit.reward("nope", 1.0)
    samples = scrape(registry)
    assert value(samples, "mabware_rewards_total", experiment="clicks", arm=arm) == 3
    assert value(samples, "mabware_reward_sum", experiment="clicks", arm=arm) == 1.25
    assert sum(names(samples, "mabware_rewards_total").values()) == 4
    rejected = names(samples, "mabware_rewards_rejected_total")
    assert {dict(k)["reason"]: v for k, v in rejected.items()} == {
        "unknown_experiment": 1,
        "unknown_arm": 0,
        "bad_value": 1,
        "duplicate_reward": 1,
    }


def test_rejected_cookies_by_reason() -> None:
    clock = FakeClock()
    engine = make_engine([headline()], clock=clock, max_age=3600)
    registry = watched(engine)
    good = cookie_of(engine.respond(engine.begin(None), 200))
    name, token = good.split("=", 1)
    tampered = f"{name}={token[:-6]}{'A' if token[-6] != 'A' else 'B'}{token[-5:]}"
    stranger = CookieCodec(["c3RyYW5nZXIta2V5LW1hYndhcmUtMDEyMzQ1Njc4OWFiY2Q="])
    foreign = f"{name}={stranger.encode(CookieState(int(clock()), {}))}"
    sent = ["mabware=garbage"] * 3 + [tampered] * 2 + [foreign]
    for cookie in sent:
        engine.respond(engine.begin(cookie), 200)
    clock.advance(3601)
    engine.respond(engine.begin(good), 200)
    samples = scrape(registry)
    rejected = names(samples, "mabware_cookies_rejected_total")
    assert {dict(k)["reason"]: v for k, v in rejected.items() if v} == {
        "malformed": 3,
        "auth": 2,
        "unknown_key": 1,
        "expired": 1,
    }
    assert len(rejected) == 8  # every reason exported, at 0 until it happens
    assert sum(names(samples, "mabware_assignments_total").values()) == 1 + len(sent) + 1


def test_truncated_cookies_are_counted_per_response() -> None:
    many = [Experiment(f"e{i:02d}_" + "x" * 60, ["a" * 50, "b" * 50]) for i in range(60)]
    engine = make_engine(many)
    registry = watched(engine)
    assert value(scrape(registry), "mabware_cookies_truncated_total") == 0
    for _ in range(3):
        engine.respond(engine.begin(None), 200)
    assert value(scrape(registry), "mabware_cookies_truncated_total") == 3


def test_a_guardrail_trip_is_counted_by_reason_and_shown_while_active() -> None:
    slo = ArmSLO(min_pulls=5, max_error_rate=0.5)
    engine = make_engine(
        [Experiment("layout", ["grid", "list", "cards"], guardrails=Guardrails(slo=slo))]
    )
    registry = watched(engine)
    for _ in range(60):
        visit = engine.begin(None)
        engine.respond(visit, 200)
        engine.finish(visit, 503 if visit["layout"].arm == "list" else 200, 0.01)
    samples = scrape(registry)
    trips = {
        dict(k)["reason"]: v for k, v in names(samples, "mabware_guardrail_trips_total").items()
    }
    assert trips["slo_error_rate"] == 1
    assert sum(trips.values()) == 1
    active = names(samples, "mabware_guardrail_active")
    assert active == {
        frozenset({"experiment": "layout", "reason": "slo_error_rate", "arm": "list"}.items()): 1
    }
    assert value(samples, "mabware_allocation", experiment="layout", arm="list") == 0
    shares = names(samples, "mabware_allocation").values()
    assert math.isclose(sum(shares), 1.0)


def test_uncounted_requests_and_other_events() -> None:
    engine = make_engine([headline()])
    registry = watched(engine)
    engine.begin(None, user_agent="Googlebot/2.1")
    engine.begin(None, consent=False)
    engine.begin(None, consent=False)

    def broken(request: object) -> str:
        raise RuntimeError("no session")

    engine.call_hook("unit_id", broken, None, None)
    samples = scrape(registry)
    assert value(samples, "mabware_uncounted_requests_total", reason="bot") == 1
    assert value(samples, "mabware_uncounted_requests_total", reason="no_consent") == 2
    assert value(samples, "mabware_events_total", event="hook_error:unit_id") == 1
    assert sum(names(samples, "mabware_assignments_total").values()) == 0


def test_backend_up_state_age_and_sync_durations_follow_the_file_backend(tmp_path: Path) -> None:
    path = tmp_path / "state"
    engine = make_engine([headline()], store=f"file:{path}")  # no thread: we sync by hand
    registry = watched(engine)
    samples = scrape(registry)
    assert value(samples, "mabware_backend_up", store="file") == 0  # not reached yet
    assert value(samples, "mabware_state_age_seconds", store="file") == math.inf
    assert engine.store.sync()  # type: ignore[attr-defined]
    assert engine.store.sync()  # type: ignore[attr-defined]
    samples = scrape(registry)
    assert value(samples, "mabware_backend_up", store="file") == 1
    assert 0 <= value(samples, "mabware_state_age_seconds", store="file") < 60  # type: ignore[operator]
    assert value(samples, "mabware_sync_duration_seconds_count", outcome="ok") == 2
    # The backend goes away: garbage where the state was (tests/integration/test_backend_down.py)
    path.write_bytes(b"MABW\x01garbage, not a state")
    assert not engine.store.sync()  # type: ignore[attr-defined]
    samples = scrape(registry)
    assert value(samples, "mabware_backend_up", store="file") == 0
    assert value(samples, "mabware_sync_duration_seconds_count", outcome="ok") == 2
    assert value(samples, "mabware_sync_duration_seconds_count", outcome="error") == 1
    assert value(samples, "mabware_sync_duration_seconds_bucket", outcome="error", le="+Inf") == 1
    engine.store.backend.close()  # type: ignore[attr-defined]


def test_memory_store_is_always_up_and_has_no_state_age_or_sync_histogram() -> None:
    engine = make_engine([headline()])
    samples = scrape(watched(engine))
    assert value(samples, "mabware_backend_up", store="memory") == 1
    assert names(samples, "mabware_state_age_seconds") == {}
    assert names(samples, "mabware_sync_duration_seconds_count") == {}


def call(app: Any, method: str = "GET", path: str = "/metrics") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            return await client.request(method, path)

    return asyncio.run(go())


def test_metrics_app_serves_the_exposition() -> None:
    engine = make_engine([headline()])
    app = metrics_app(engine)
    engine.begin("mabware=garbage")
    response = call(app)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = parse(response.text)
    assert value(samples, "mabware_cookies_rejected_total", reason="malformed") == 1
    assert call(app, "HEAD", "/").status_code == 200
    refused = call(app, "POST")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD"


def test_metrics_app_served_on_its_own_acknowledges_lifespan() -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(metrics_app(make_engine([headline()]))({"type": "lifespan"}, receive, send))
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def test_metrics_wsgi_app_serves_the_same() -> None:
    engine = make_engine([headline()])
    app = metrics_wsgi_app(engine)
    engine.begin(None)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://x") as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        assert sum(names(parse(response.text), "mabware_assignments_total").values()) == 1
        assert client.post("/metrics").status_code == 405


def test_metrics_app_serves_a_given_registry_with_the_users_own_metrics() -> None:
    from prometheus_client import Counter as PromCounter

    registry = CollectorRegistry()
    PromCounter("shop_orders", "Orders.", registry=registry).inc(2)
    engine = make_engine([headline()])
    samples = parse(call(metrics_app(engine, registry=registry), "GET", "/").text)
    assert value(samples, "shop_orders_total") == 2
    assert value(samples, "mabware_backend_up", store="memory") == 1


def test_register_engine_is_idempotent_and_one_engine_per_registry() -> None:
    engine = make_engine([headline()])
    registry = watched(engine)
    register_engine(engine, registry)  # again: nothing changes
    engine.begin(None)
    assert sum(names(scrape(registry), "mabware_assignments_total").values()) == 1
    with pytest.raises(ConfigError, match="its own registry"):
        register_engine(make_engine([headline()]), registry)
    assert sum(names(scrape(registry), "mabware_assignments_total").values()) == 1


def test_a_registry_does_not_keep_an_engine_alive() -> None:
    engine = make_engine([headline()])
    registry = watched(engine)
    del engine
    gc.collect()
    samples = scrape(registry)
    assert names(samples, "mabware_allocation") == {}
    assert names(samples, "mabware_backend_up") == {}


def test_without_prometheus_client_the_import_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "mabware.metrics")
    with pytest.raises(ImportError, match=r"pip install 'mabware\[metrics\]'"):
        importlib.import_module("mabware.metrics")
