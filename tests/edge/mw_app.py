"""The middleware side of the edge tests: a Starlette app under uvicorn, syncing to the server.

Settings from the environment: ``MABWARE_STORE`` (the server's URL; its
write token in ``MABWARE_TOKEN``), ``EDGE_EXPERIMENT``, ``EDGE_ARMS``
(comma-separated), ``EDGE_BURN_IN`` (min_pulls_per_arm) and ``EDGE_MODE``
(the reward mode). The cookie key is key k0 of tests/vectors/cookie.json,
the SDK's ``secret_keys`` in these tests.

    GET /?user=ID  the visitor's arm (the unit id, when given, decides it)
    GET /buy       a reward of 1.0 for the visitor's arm
    GET /whoami    this worker's pid
"""

from __future__ import annotations

import os

from harness import COOKIE_KEY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Scope

from mabware import Experiment, MabwareMiddleware
from mabware.guardrails import Guardrails

NAME = os.environ.get("EDGE_EXPERIMENT", "headline")


def unit_id(scope: Scope) -> str | None:
    return Request(scope).query_params.get("user")


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.scope["mabware"][NAME].arm)


async def buy(request: Request) -> PlainTextResponse:
    counted = request.scope["mabware"].reward(NAME, 1.0)
    return PlainTextResponse("counted" if counted else "not counted")


async def whoami(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


experiment = Experiment(
    NAME,
    os.environ.get("EDGE_ARMS", "control,bold").split(","),
    guardrails=Guardrails(min_pulls_per_arm=int(os.environ.get("EDGE_BURN_IN", "0"))),
    reward_mode=os.environ.get("EDGE_MODE", "once"),
)
app = MabwareMiddleware(
    Starlette(routes=[Route("/", home), Route("/buy", buy), Route("/whoami", whoami)]),
    experiments=[experiment],
    secret_keys=[COOKIE_KEY],
    store=os.environ["MABWARE_STORE"],
    sync_interval=0.2,
    unit_id=unit_id,
)
