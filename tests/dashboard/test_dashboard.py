"""The dashboard page (no script, escaped, exact numbers) and its ASGI app under uvicorn."""

from __future__ import annotations

import asyncio
import importlib
import re
import warnings
from dataclasses import replace
from html import escape as html_escape
from typing import Any

import httpx
import pytest

from mabware import Engine, Experiment, Guardrails, Trip
from mabware.dashboard import Dashboard, dashboard_app, render
from mabware.exceptions import ConfigError
from mabware.guardrails import ARM_DISABLED, ArmSLO
from mabware.history import History
from mabware.testing import FakeClock, make_engine

from .browser import cells, site

ODD_ARM = '<b>&"'
ODD_EXPERIMENT = "<i>x</i>&'"
FIELDS = ("pulls", "reward_sum", "mean", "interval", "p_best", "share", "status")


def busy_engine(visitors: int = 120) -> Engine:
    """Two experiments with traffic, an SLO-tripped arm and names that need escaping."""
    clock = FakeClock()
    engine = make_engine(
        [
            Experiment(
                ODD_EXPERIMENT,
                ["control", ODD_ARM, "bold"],
                guardrails=Guardrails(
                    min_pulls_per_arm=10, slo=ArmSLO(min_pulls=10, min_reward_rate=0.05)
                ),
            ),
            Experiment("basket", ["small", "large"], reward_range=(0.0, 50.0)),
        ],
        clock=clock,
    )
    for i in range(visitors):
        visit = engine.begin(None)
        if visit[ODD_EXPERIMENT].arm != ODD_ARM and i % 3 == 0:
            visit.reward(ODD_EXPERIMENT, 1.0)
        visit.reward("basket", 12.5 if visit["basket"].arm == "small" else 20.0)
        engine.respond(visit, 200)
        clock.advance(1.5)
    return engine


def assert_page_matches(html: str, summaries: list[dict[str, Any]]) -> None:
    """Every arm's cells carry exactly the summaries' JSON values."""
    page = cells(html)
    assert page.experiments == [s["experiment"] for s in summaries]
    expected = {
        (s["experiment"], a["arm"], field): a[field]
        for s in summaries
        for a in s["arms"]
        for field in FIELDS
    }
    assert page.values == expected


def assert_no_script(html: str) -> None:
    page = cells(html)
    assert "<script" not in html.lower()
    assert "script" not in page.tags
    assert not [a for a in page.attributes if a.startswith("on")]
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
    assert "javascript:" not in html.lower()


def test_table_cells_carry_the_summaries_exact_values() -> None:
    engine = busy_engine()
    summaries = engine.summaries()
    html = render(summaries, engine.history)
    assert_page_matches(html, [s.to_json() for s in summaries])
    odd = {a.arm: a for a in summaries[0].arms}[ODD_ARM]
    assert odd.status == "slo_reward_rate"  # the page shows a guardrail at work
    assert odd.detail is not None
    assert html_escape(odd.detail) in html


def test_numbers_are_written_for_people_too() -> None:
    engine = busy_engine()
    summary = engine.summaries()[1]
    large = {a.arm: a for a in summary.arms}["large"]
    html = render([summary], engine.history)
    pulls = f"{int(large.pulls):,}"
    assert f'data-field="pulls" data-arm="large" data-value="{large.pulls!r}">{pulls}</td>' in html
    share = f"{large.share:.1%}" if 0.0005 <= large.share <= 0.9995 else None
    if share is not None:
        assert f'data-value="{large.share!r}">{share}</td>' in html
    assert "reward range [0, 50]" in html


def test_there_is_no_script_and_no_event_handler_anywhere() -> None:
    engine = busy_engine()
    html = render(engine.summaries(), engine.history)
    assert html.count("<svg") == 4  # two charts per experiment, inline
    assert_no_script(html)


def test_names_are_escaped_in_the_table_and_the_charts() -> None:
    engine = busy_engine()
    html = render(engine.summaries(), engine.history, title="<title>&")
    assert ODD_ARM not in html
    assert ODD_EXPERIMENT not in html
    assert "<title>&lt;title&gt;&amp;</title>" in html
    page = cells(html)
    assert ODD_EXPERIMENT in page.experiments  # unescaped by the parser: the same name
    assert (ODD_EXPERIMENT, ODD_ARM, "pulls") in page.values
    # table row header, cells, status list and both charts' legends
    assert html.count("&lt;b&gt;&amp;") >= 4


def test_charts_and_events_come_from_the_history() -> None:
    history = History()
    engine = busy_engine()
    summary = engine.summaries()[1]
    empty = render([summary], history)
    assert empty.count("no data yet") == 2
    assert "None recorded by this process." in empty
    allocation = engine.plans.by_name["basket"].allocation
    stats = engine.store.statistics("basket", 0.0)
    off = Trip(ARM_DISABLED, "small", "disabled by operator")
    history.record(allocation, stats, 1_800_000_000.0)
    history.record(replace(allocation, trips=(off,)), stats, 1_800_000_002.0)
    html = render([summary], history)
    assert "no data yet" not in html
    assert 'data-reason="arm_disabled" data-started="true"' in html
    assert "2027-01-15 08:00:02 UTC" in html  # the event's time
    assert html.count(">small</text>") == 2
    assert html.count(">large</text>") == 2


def test_refresh_is_a_meta_tag_or_nothing() -> None:
    engine = busy_engine(10)
    summaries = engine.summaries()
    assert cells(render(summaries, engine.history)).meta_refresh == ["5"]
    assert cells(render(summaries, engine.history, refresh=30)).meta_refresh == ["30"]
    assert cells(render(summaries, engine.history, refresh=None)).meta_refresh == []
    for bad in (0, -1, 1.5, True, "5"):
        with pytest.raises(ConfigError, match="refresh"):
            render(summaries, engine.history, refresh=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="refresh"):
            dashboard_app(engine, refresh=bad)  # type: ignore[arg-type]


def test_no_experiments_is_a_page_too() -> None:
    html = render([], History())
    assert "No experiments." in html
    assert_no_script(html)


async def call(
    app: Dashboard, method: str, path: str, root_path: str = ""
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": []}
    await app(scope, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


def test_the_app_answers_on_its_root_however_it_is_mounted() -> None:
    engine = busy_engine(10)
    app = dashboard_app(engine, title="in-app")

    async def main() -> None:
        for path, root in (("/", ""), ("", ""), ("/admin/ab/", "/admin/ab"), ("/", "/admin/ab")):
            status, headers, body = await call(app, "GET", path, root)
            assert status == 200, (path, root)
            assert b"<title>in-app</title>" in body
            assert headers[b"content-type"] == b"text/html; charset=utf-8"
        assert (await call(app, "GET", "/admin/ab/x", "/admin/ab"))[0] == 404
        assert (await call(app, "GET", "/admin/abc", "/admin/ab"))[0] == 404

    asyncio.run(main())


def test_under_uvicorn_the_mounted_page_shows_what_the_json_says() -> None:
    with site(visitors=300) as url, httpx.Client(base_url=url, timeout=30.0) as client:
        before = client.get("/summaries").json()
        page = client.get("/mabware/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert_page_matches(page.text, before)
        assert_no_script(page.text)
        assert client.get("/summaries").json() == before  # reading the page counted nothing
        assert sum(a["pulls"] for a in before[0]["arms"]) >= 300

        head = client.head("/mabware/")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) > 10_000
        post = client.post("/mabware/")
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, HEAD"
        assert client.get("/mabware/nothing-here").status_code == 404
        bare = client.get("/mabware", follow_redirects=True)  # Starlette adds the slash
        assert bare.status_code == 200
        assert str(bare.url).endswith("/mabware/")


def test_pygal_leaves_failed_imports_without_a_warning() -> None:
    # pygal's legacy sys.meta_path finder made every failed import warn
    # (ImportWarning), which -W error turns into a failure of that import
    import mabware.dashboard  # noqa: F401 - the import under test

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("mabware_there_is_no_such_module")
