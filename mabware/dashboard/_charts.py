"""Static SVG charts (pygal) of one experiment's history: no JavaScript.

pygal draws interactive charts by default: it puts a ``<script>`` with the
chart's config (and links to its tooltip script) into every SVG. The
dashboard must work with JavaScript off and pass a strict Content-Security
policy, so ``js=[]`` drops the links and an XML filter (pygal's own hook,
run on the tree before it is serialised) removes the config script. What
remains is plain SVG with a scoped ``<style>``; arm names reach it through
the XML serialiser, which escapes them.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.machinery import ModuleSpec
from typing import Any

import pygal
from pygal.style import Style

from mabware.history import Series

# Points drawn per line: about one per 4 px of a 640 px chart. pygal's cost
# grows faster than the points (240 take 70 ms a chart, 120 take 28 ms) and
# every reload of the page redraws every chart.
MAX_POINTS = 160

_STYLE = Style(
    background="transparent",
    plot_background="rgba(255, 255, 255, 1)",
    font_family='system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=13,
    title_font_size=15,
    no_data_font_size=20,
    stroke_width="2",
)


class _PygalMapsFinder:
    """pygal's ``sys.meta_path`` finder for ``pygal.maps.*`` plugins, with ``find_spec``.

    pygal appends a finder that has only the legacy ``find_module``. Python
    warns (``ImportWarning``) whenever an import reaches it, which is every
    import that no other finder resolves: each probe for an optional
    dependency, anywhere in the process. Under ``-W error`` (pytest's
    ``filterwarnings = error``) those probes then fail. This wrapper answers
    the same imports through the modern API.
    """

    def __init__(self, legacy: Any) -> None:
        self.legacy = legacy

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if self.legacy.find_module(fullname, path) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self.legacy)


sys.meta_path[:] = [
    _PygalMapsFinder(f) if type(f) is getattr(pygal, "PluginImportFixer", None) else f
    for f in sys.meta_path
]


def _no_scripts(root: Any) -> Any:
    """pygal XML filter: drop every ``<script>`` element (its config blob)."""
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag == "script" or tag.endswith("}script"):
                parent.remove(child)
    return root


def _thin(count: int) -> list[int]:
    """At most ``MAX_POINTS`` indexes spread evenly over ``count``, always the last."""
    if count <= MAX_POINTS:
        return list(range(count))
    step = (count - 1) / (MAX_POINTS - 1)
    return sorted({round(k * step) for k in range(MAX_POINTS)} | {count - 1})


def _line(
    title: str,
    series: Series,
    rows: Sequence[Sequence[float]],
    *,
    formatter: Callable[[float], str],
    percent: bool,
) -> str:
    """A time line chart of one value per arm, as inline SVG markup."""
    keep = _thin(len(series.times))
    options: dict[str, Any] = {
        "js": [],
        "disable_xml_declaration": True,
        "title": title,
        "style": _STYLE,
        "width": 640,
        "height": 320,
        "show_dots": len(keep) < 2,  # a lone point is invisible without its dot
        "dots_size": 3,
        "x_value_formatter": lambda moment: moment.strftime("%H:%M:%S"),
        "value_formatter": formatter,
        "x_label_rotation": 20,
        "show_minor_x_labels": False,
        "x_labels_major_count": 8,
        "legend_at_bottom": True,
        "truncate_legend": 30,
        "no_data_text": "no data yet",
        "allow_interruptions": False,
    }
    if percent:
        options["range"] = (0.0, 1.0)
    chart = pygal.DateTimeLine(**options)
    chart.add_xml_filter(_no_scripts)
    for arm, values in zip(series.arms, rows, strict=True):
        points = [(datetime.fromtimestamp(series.times[k], UTC), float(values[k])) for k in keep]
        chart.add(arm, points)
    svg: str = chart.render(is_unicode=True)
    return svg


def allocation_chart(series: Series) -> str:
    """Each arm's traffic share over time, as inline SVG."""
    return _line(
        "Allocation over time (UTC)",
        series,
        series.shares,
        formatter=lambda v: f"{v:.0%}",
        percent=True,
    )


def reward_chart(series: Series) -> str:
    """Each arm's cumulative reward sum over time, as inline SVG."""
    return _line(
        "Cumulative reward over time (UTC)",
        series,
        series.reward_sums,
        formatter=lambda v: f"{v:,.6g}",
        percent=False,
    )
