"""The no-JavaScript dashboard: server-rendered HTML with static SVG charts.

Per experiment: an arms table (pulls, reward sum, mean, 95% interval,
P(best), allocation, guardrail and SLO status), the allocation and the
cumulative reward over time, and the guardrail events. It needs no script
in the browser: jinja2 renders the page, pygal draws the charts as plain
SVG inlined in it, and a ``<meta http-equiv="refresh">`` keeps it current.

In your own app (``pip install 'mabware[dashboard]'``)::

    from mabware.dashboard import dashboard_app

    middleware = MabwareMiddleware(app, experiments=[...], secret_keys=[...])
    app.routes.append(Mount("/mabware", dashboard_app(middleware.engine)))

``mabware serve`` shows the same page at ``/dashboard``. Protect the mount
as you would any admin page: it shows your experiments' numbers.
"""

from __future__ import annotations

try:
    import jinja2  # noqa: F401 - checked here so the error names the extra
    import pygal  # noqa: F401
except ImportError as exc:  # pragma: no cover - the test env has both
    raise ImportError(
        f"mabware.dashboard needs jinja2 and pygal ({exc.name} is missing): "
        "pip install 'mabware[dashboard]'"
    ) from exc

from mabware.dashboard._app import Dashboard, dashboard_app
from mabware.dashboard._page import render

__all__ = ["Dashboard", "dashboard_app", "render"]
