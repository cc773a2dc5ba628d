"""mabware on Starlette: two experiments, a reward, the engine's report.

Run it from this directory:  uvicorn starlette_app:app
"""

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

from mabware import Engine, Experiment, MabwareMiddleware
from mabware.contrib.starlette import arms
from mabware.testing import TEST_KEYS

# `mabware keygen` prints a key. The fallback is public, for this demo only:
# never use it in production.
SECRET_KEY = os.environ.get("MABWARE_SECRET_KEY", TEST_KEYS[0])

# Built here rather than inside the middleware so /stats can read it.
engine = Engine(
    [
        Experiment(
            "headline",
            {"control": "Welcome back", "bold": "Big sale today"},
            default_arm="control",
        ),
        Experiment("button", {"green": "#2e7d32", "blue": "#1565c0"}),
    ],
    secret_keys=[SECRET_KEY],
    store="memory:",
)


async def home(request: Request) -> HTMLResponse:
    visit = arms(request)
    headline, button = visit["headline"], visit["button"]
    return HTMLResponse(
        f"<h1>{headline.value}</h1>"
        f'<a href="/buy" style="background:{button.value}">Buy now</a>'
        f"<!-- arm={headline.arm} button={button.arm} -->"
    )


async def buy(request: Request) -> PlainTextResponse:
    arms(request).reward("headline", 1.0)
    return PlainTextResponse("Thank you!")


async def stats(request: Request) -> JSONResponse:
    return JSONResponse(engine.report())


app = Starlette(
    routes=[Route("/", home), Route("/buy", buy), Route("/stats", stats)],
    middleware=[Middleware(MabwareMiddleware, engine=engine)],
)
