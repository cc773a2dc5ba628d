"""The dashboard page: summaries and history in, one self-contained HTML page out.

Server-rendered with jinja2 (autoescaped: arm and experiment names are user
data) from ``templates/dashboard.html``, charts inlined as SVG, styles
inlined, no script and no event-handler attribute anywhere, so the page
works with JavaScript disabled and under ``Content-Security-Policy:
script-src 'none'``. A ``<meta http-equiv="refresh">`` reloads it.

Every number in an arms table is a cell like ``<td data-field="pulls"
data-arm="bold" data-value="1234.0">1,234</td>``: the text is for people,
``data-value`` is the exact value as JSON (floats in full precision, null
for None, ``[low, high]`` for an interval), equal to what
``ExperimentSummary.to_json`` answers, so tests and scrapers read the page
without parsing human formatting.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import jinja2
from markupsafe import Markup

from mabware.dashboard._charts import allocation_chart, reward_chart
from mabware.exceptions import ConfigError
from mabware.history import History
from mabware.summary import ExperimentSummary

#: guardrail events listed per experiment, newest first
MAX_EVENTS = 50
#: shown where there is no value yet (an em dash, as printed tables do)
MISSING = "\u2014"

_environment: jinja2.Environment | None = None


def _count(value: float) -> str:
    if math.isfinite(value) and value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _number(value: float | None) -> str:
    if value is None:
        return MISSING
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if 1000 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _percent(value: float) -> str:
    if 0.0 < value < 0.0005:
        return "<0.1%"
    if 0.9995 < value < 1.0:
        return ">99.9%"
    return f"{value:.1%}"


def _interval(value: tuple[float, float] | None) -> str:
    if value is None:
        return MISSING
    return f"{_number(value[0])} to {_number(value[1])}"


def _data(value: Any) -> str:
    """The exact value for a ``data-value`` attribute (JSON; floats in full precision)."""
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _bounds(bounds: tuple[float, float]) -> str:
    return f"[{_number(bounds[0])}, {_number(bounds[1])}]"


def environment() -> jinja2.Environment:
    """The jinja2 environment: templates shipped in the package, autoescaped."""
    global _environment
    if _environment is None:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("mabware.dashboard", "templates"),
            autoescape=True,  # every template here is HTML
            undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly in tests
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            count=_count,
            number=_number,
            percent=_percent,
            interval=_interval,
            data=_data,
            when=_when,
            bounds=_bounds,
        )
        _environment = env
    return _environment


def check_refresh(refresh: int | None) -> None:
    """ConfigError unless ``refresh`` is None or a whole number of seconds >= 1."""
    if refresh is not None and (
        not isinstance(refresh, int) or isinstance(refresh, bool) or refresh < 1
    ):
        raise ConfigError(f"refresh must be None or whole seconds >= 1, got {refresh!r}")


def render(
    summaries: Sequence[ExperimentSummary],
    history: History,
    *,
    title: str = "mabware",
    refresh: int | None = 5,
    now: float | None = None,
) -> str:
    """The dashboard page for ``summaries``, charts drawn from ``history``.

    Args:
        summaries: the experiments to show, in order (``Engine.summaries()``).
        history: where the allocation and reward charts and the guardrail
            events come from (``Engine.history``).
        title: the page title.
        refresh: seconds between automatic reloads (``<meta
            http-equiv="refresh">``); None for none.
        now: the "generated at" time, clock seconds; the wall clock by default.

    Returns:
        A complete HTML document without any script.
    """
    check_refresh(refresh)
    sections = []
    for summary in summaries:
        series = history.series(summary.experiment)
        events = history.events(summary.experiment)[-MAX_EVENTS:]
        sections.append(
            {
                "summary": summary,
                # pygal escaped every text it wrote; the markup itself is trusted
                "allocation_svg": Markup(allocation_chart(series)),
                "reward_svg": Markup(reward_chart(series)),
                "events": list(reversed(events)),
                "points": len(series.times),
            }
        )
    generated = time.time() if now is None else now
    page: str = (
        environment()
        .get_template("dashboard.html")
        .render(title=title, refresh=refresh, sections=sections, generated=generated)
    )
    return page
