"""The demo shop: one product page, three page variants, a checkout.

The ``offer`` experiment decides the whole page: its headline, its price
badge and its button (one arm per variant, so a visitor always sees a
coherent page and each new visitor is one pull of one arm). ``/buy`` rewards the
variant the visitor's cookie says they saw, so a visitor who comes back
later and buys still credits the page that convinced them.

Built by a factory that reads its settings from the environment, so every
uvicorn worker builds the same app::

    MABWARE_DEMO_SECRET_KEY=$(mabware keygen) \\
        uvicorn --factory mabware.demo.shop:create_app --workers 2

=============================  ===============================================
``MABWARE_DEMO_SECRET_KEY``    the cookie key, the same in every worker
                               (required: ``mabware keygen`` prints one)
``MABWARE_DEMO_STATE``         the ``file:`` store's path (default
                               ``./mabware-demo.state``)
``MABWARE_DEMO_SYNC_INTERVAL`` seconds between syncs (default 1.0)
``PROMETHEUS_MULTIPROC_DIR``   an empty directory, so that ``/mabware/metrics``
                               sums every worker's counters (``mabware.metrics``)
=============================  ===============================================

Routes: ``GET /`` the product page, ``POST /buy`` the purchase,
``GET /healthz`` a probe, ``/mabware/dashboard/`` the dashboard,
``/mabware/metrics`` Prometheus metrics. Only ``/`` and ``/buy`` take part
in the experiment: the others get default arms, uncounted (the consent
hook), so probes and dashboard reloads never count as visitors.

Responses carry ``X-Demo-Arm`` (the variant served) and ``X-Demo-Pid`` (the
worker), and ``/buy`` carries ``X-Demo-Rewarded: 1`` when the reward was
stored. They exist for the traffic generator and the tests, which count
exactly what the store should hold; a real shop would not reveal its arms.
"""

from __future__ import annotations

import html
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Mount, Route

from mabware import Engine, Experiment, Guardrails, MabwareMiddleware
from mabware.asgi import Scope
from mabware.contrib.starlette import arms
from mabware.dashboard import dashboard_app
from mabware.exceptions import ConfigError
from mabware.metrics import metrics_app

__all__ = ["ENV_KEY", "ENV_STATE", "ENV_SYNC", "EXPERIMENT", "create_app", "offer"]

ENV_KEY = "MABWARE_DEMO_SECRET_KEY"
ENV_STATE = "MABWARE_DEMO_STATE"
ENV_SYNC = "MABWARE_DEMO_SYNC_INTERVAL"
EXPERIMENT = "offer"
TITLE = "mabware demo shop"
#: the paths that take part in the experiment
SHOP_PATHS = frozenset({"/", "/buy"})


def offer() -> Experiment:
    """The experiment: three variants of the product page (Thompson sampling).

    A burn-in of 100 pulls per arm (``Guardrails.min_pulls_per_arm``) keeps
    the first visitors evenly split, as a shop would: at conversion rates of
    a few percent, a handful of early visitors who happen not to buy could
    otherwise starve the best variant for a while.

    Payloads are plain dicts of strings, so the experiment serialises like
    any other (the dashboard and ``mabware report`` show it).
    """
    return Experiment(
        EXPERIMENT,
        arms={
            "plain": {
                "headline": "The Everyday Mug",
                "price": "EUR 24.00",
                "badge": "",
                "button": "Add to cart",
            },
            "shipping": {
                "headline": "The Everyday Mug",
                "price": "EUR 24.00",
                "badge": "Free shipping",
                "button": "Add to cart",
            },
            "sale": {
                "headline": "Today only: the Everyday Mug, 20% off",
                "price": "EUR 19.20",
                "badge": "-20%",
                "button": "Buy now",
            },
        },
        default_arm="plain",
        guardrails=Guardrails(min_pulls_per_arm=100),
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:18px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}}
.badge{{background:#c62828;color:#fff;border-radius:4px;padding:0 .4em;margin-left:.5em}}
button{{font-size:1em;padding:.5em 1.5em;background:#2e7d32;color:#fff;border:0;border-radius:4px}}
footer{{margin-top:3em;font-size:.8em;color:#666}}</style></head>
<body><main data-experiment="{experiment}" data-arm="{arm}">{content}</main>
<footer>Variant <code>{arm}</code>, served by worker {pid}.
<a href="/mabware/dashboard/">What the shop has learned</a></footer></body></html>
"""


def _page(title: str, arm: str, content: str) -> str:
    return _PAGE.format(
        title=html.escape(title),
        experiment=EXPERIMENT,
        arm=html.escape(arm),
        content=content,
        pid=os.getpid(),
    )


def _headers(arm: str) -> dict[str, str]:
    return {"X-Demo-Arm": arm, "X-Demo-Pid": str(os.getpid()), "Cache-Control": "no-store"}


async def product(request: Request) -> HTMLResponse:
    """The product page, as the visitor's variant of ``offer`` says."""
    assignment = arms(request)[EXPERIMENT]
    variant = assignment.value
    badge = variant["badge"]
    content = (
        f"<h1>{html.escape(variant['headline'])}</h1>"
        "<p>Stoneware, 350 ml, dishwasher safe. Glazed by hand."
        f" <strong>{html.escape(variant['price'])}</strong>"
        + (f'<span class="badge">{html.escape(badge)}</span>' if badge else "")
        + f'</p><form method="post" action="/buy"><button>{html.escape(variant["button"])}'
        "</button></form>"
    )
    return HTMLResponse(
        _page(variant["headline"], assignment.arm, content), headers=_headers(assignment.arm)
    )


async def buy(request: Request) -> HTMLResponse:
    """A purchase: rewards the variant this visitor was shown (once per visitor)."""
    visit = arms(request)
    stored = visit.reward(EXPERIMENT, 1.0)
    arm = visit[EXPERIMENT].arm
    text = "Thank you for your order!" if stored else "You have already ordered: thank you!"
    content = f'<h1>{text}</h1><p><a href="/">Back to the shop</a></p>'
    headers = {**_headers(arm), "X-Demo-Rewarded": "1" if stored else "0"}
    return HTMLResponse(_page("Thank you", arm, content), headers=headers)


async def healthz(request: Request) -> PlainTextResponse:
    """Readiness probe: which worker answered."""
    return PlainTextResponse(f"ok pid={os.getpid()}", headers={"X-Demo-Pid": str(os.getpid())})


def _counted(scope: Scope) -> bool:
    """The consent hook, used to keep everything but the shop's pages out of the counts."""
    return scope.get("path") in SHOP_PATHS


def create_app() -> MabwareMiddleware:
    """The shop wrapped by ``MabwareMiddleware``, configured from the environment.

    Raises:
        ConfigError: ``MABWARE_DEMO_SECRET_KEY`` is missing, or a setting is bad.
    """
    key = os.environ.get(ENV_KEY)
    if not key:
        raise ConfigError(f"set {ENV_KEY} to a cookie key: `mabware keygen` prints one")
    state = os.environ.get(ENV_STATE, "./mabware-demo.state")
    try:
        sync_interval = float(os.environ.get(ENV_SYNC, "1.0"))
    except ValueError:
        raise ConfigError(f"{ENV_SYNC} must be a number of seconds") from None
    # Built before the middleware, as the README advises: a bad setting raises
    # here, and the dashboard and metrics need the engine.
    engine = Engine(
        [offer()], secret_keys=[key], store=f"file:{state}", sync_interval=sync_interval
    )
    # The dashboard and metrics sit inside the wrapped app, so the middleware's
    # lifespan (which flushes the store at shutdown) is the only one; the
    # consent hook keeps their requests out of the counts.
    shop = Starlette(
        routes=[
            Route("/", product),
            Route("/buy", buy, methods=["POST"]),
            Route("/healthz", healthz),
            Mount("/mabware/dashboard", app=dashboard_app(engine, title=TITLE, refresh=2)),
            Route("/mabware/metrics", metrics_app(engine)),
        ]
    )
    return MabwareMiddleware(shop, engine=engine, consent=_counted)
