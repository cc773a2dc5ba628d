"""The app the dashboard tests (and ``bench/dashboard_screenshot.py``) serve with uvicorn.

A Starlette app wrapped by ``MabwareMiddleware`` on a ``memory:`` store,
with two experiments: ``headline`` (0/1 rewards, three arms, one named
``<b>&"`` to prove escaping, and a reward-rate SLO that switches the worst
arm off) and ``basket`` (revenue in [0, 50], rewarded every event).

Routes:

    GET /               assigns; body ``arm=<headline arm>``
    GET /simulate?visitors=N
                        N simulated visitors through the engine (sans-IO).
                        The app's clock starts half an hour behind the wall
                        clock; the first simulation spreads its visitors
                        over that half hour (so the history charts have
                        lines) and leaves the clock on the wall clock.
    GET /summaries      ``[s.to_json() for s in engine.summaries()]``
    GET /stats          ``engine.report()`` (what ``servers.running`` polls)
    GET /js-probe       a page whose script would rewrite its text: the
                        browser tests' proof that JavaScript is really off
    /mabware/           the dashboard (``dashboard_app(engine)``)

Only ``/`` and ``/simulate`` count: a consent hook keeps every other path
out of the statistics, so reading the numbers never changes them.
"""

import random
import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

from mabware import Engine, Experiment, Guardrails, MabwareMiddleware
from mabware.dashboard import dashboard_app
from mabware.guardrails import ArmSLO
from mabware.testing import TEST_KEYS

ODD_ARM = '<b>&"'
HEADLINE_RATES = {"control": 0.10, "bold": 0.16, ODD_ARM: 0.01}
BASKET_MEANS = {"small": 14.0, "large": 19.0}
SPAN = 1800.0  # seconds of simulated past


class ShiftedClock:
    """The wall clock plus an offset that only rises (the engine needs a clock that never
    goes back: it recomputes when enough time has passed since the last recompute)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


clock = ShiftedClock(-SPAN)
engine = Engine(
    [
        Experiment(
            "headline",
            {"control": "Welcome back", "bold": "Big sale today", ODD_ARM: "Escaped?"},
            # the burn-in gives every arm the pulls the SLO needs to judge it
            guardrails=Guardrails(
                min_pulls_per_arm=40, slo=ArmSLO(min_pulls=40, min_reward_rate=0.03)
            ),
        ),
        Experiment("basket", ["small", "large"], reward_range=(0.0, 50.0), reward_mode="every"),
    ],
    secret_keys=list(TEST_KEYS),
    store="memory:",
    clock=clock,
    seed=7,
)
COUNTED = ("/", "/simulate")


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"arm={request.scope['mabware']['headline'].arm}")


def simulate(request: Request) -> PlainTextResponse:
    visitors = int(request.query_params.get("visitors", "1000"))
    rnd = random.Random(visitors)
    step = -clock.offset / max(visitors, 1)
    for _ in range(visitors):
        visit = engine.begin(None, user_agent="simulated visitor")
        if rnd.random() < HEADLINE_RATES[visit["headline"].arm]:
            visit.reward("headline", 1.0)
        if rnd.random() < 0.4:
            basket = BASKET_MEANS[visit["basket"].arm] * rnd.uniform(0.5, 1.5)
            visit.reward("basket", min(basket, 50.0))
        engine.respond(visit, 200)
        clock.offset = min(clock.offset + step, 0.0)
    clock.offset = 0.0
    return PlainTextResponse(f"simulated {visitors}")


async def summaries(request: Request) -> JSONResponse:
    return JSONResponse([s.to_json() for s in engine.summaries()])


async def stats(request: Request) -> JSONResponse:
    return JSONResponse(engine.report())


async def js_probe(request: Request) -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html><html><body><p id='probe'>script did not run</p>"
        "<script>document.getElementById('probe').textContent = 'script' + ' ran';</script>"
        "</body></html>"
    )


app = Starlette(
    routes=[
        Route("/", home),
        Route("/simulate", simulate),
        Route("/summaries", summaries),
        Route("/stats", stats),
        Route("/js-probe", js_probe),
        Mount("/mabware", dashboard_app(engine)),
    ],
    middleware=[
        Middleware(
            MabwareMiddleware,
            engine=engine,
            consent=lambda scope: scope["path"] in COUNTED,
        )
    ],
)
