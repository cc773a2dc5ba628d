"""The app the integration tests run under real servers (gunicorn, uvicorn).

A Starlette app wrapped by ``MabwareMiddleware`` with two experiments:
``headline`` (``reward_mode="once"``, default arm ``control``) and ``button``
(``reward_mode="every"``). Settings come from the environment, so one
module serves every test:

    MABWARE_STORE           the store URL (default ``memory:``)
    MABWARE_SYNC_INTERVAL   seconds between syncs (default 0.2)

Routes:

    GET /          assigns; body ``arm=<headline arm> button=<button arm> pid=<pid>``
    GET /reward?experiment=headline&value=1.0
                   rewards through ``scope["mabware"].reward``; 200
                   ``ok pid=<pid> replica=<replica id>`` only when the reward
                   was stored, else 409
    GET /whoami    ``{"pid", "replica_id"}``
    GET /stats     ``engine.report()`` plus ``pid``, ``replica_id``,
                   ``backend_up``, ``sync_errors``, ``last_sync``
    GET /metrics   ``mabware.metrics.metrics_app(engine)``: Prometheus text,
                   every worker's counters summed when the environment has
                   ``PROMETHEUS_MULTIPROC_DIR``

/whoami, /stats and /metrics are the tests' own probes: a consent hook keeps them
out of the counts (default arms, no pull, no cookie), so every pull in the
store is a visitor of / or /reward.
"""

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from mabware import Engine, Experiment, MabwareMiddleware
from mabware.metrics import metrics_app
from mabware.testing import TEST_KEYS

PROBES = ("/whoami", "/stats", "/metrics")

engine = Engine(
    [
        Experiment("headline", ["control", "bold"], default_arm="control"),
        Experiment("button", ["green", "blue"], reward_mode="every"),
    ],
    secret_keys=list(TEST_KEYS),
    store=os.environ.get("MABWARE_STORE", "memory:"),
    sync_interval=float(os.environ.get("MABWARE_SYNC_INTERVAL", "0.2")),
)


def _replica_id() -> str | None:
    return getattr(engine.store, "replica_id", None)


async def home(request: Request) -> PlainTextResponse:
    visit = request.scope["mabware"]
    return PlainTextResponse(
        f"arm={visit['headline'].arm} button={visit['button'].arm} pid={os.getpid()}"
    )


async def reward(request: Request) -> PlainTextResponse:
    experiment = request.query_params.get("experiment", "headline")
    text = request.query_params.get("value", "1.0")
    try:
        value: object = float(text)
    except ValueError:
        value = text  # the engine rejects it (and counts the rejection)
    if request.scope["mabware"].reward(experiment, value):
        return PlainTextResponse(f"ok pid={os.getpid()} replica={_replica_id()}")
    return PlainTextResponse("not stored", status_code=409)


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid(), "replica_id": _replica_id()})


async def stats(request: Request) -> JSONResponse:
    store = engine.store
    return JSONResponse(
        {
            **engine.report(),
            "pid": os.getpid(),
            "replica_id": _replica_id(),
            "backend_up": getattr(store, "backend_up", None),
            "sync_errors": getattr(store, "sync_errors", 0),
            "last_sync": getattr(store, "last_sync", None),
        }
    )


app = Starlette(
    routes=[
        Route("/", home),
        Route("/reward", reward),
        Route("/whoami", whoami),
        Route("/stats", stats),
        Route("/metrics", metrics_app(engine)),
    ],
    middleware=[
        Middleware(
            MabwareMiddleware,
            engine=engine,
            consent=lambda scope: scope["path"] not in PROBES,
        )
    ],
)
