"""The Starlette adapter in-process, and its example under uvicorn on loopback."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("starlette")

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mabware import Engine, Experiment, MabwareMiddleware
from mabware.contrib.starlette import arms
from mabware.exceptions import ConfigError
from mabware.testing import make_engine

from .servers import check_example, free_port, running


def make_app(engine: Engine | None, seen: list[object]) -> Starlette:
    async def home(request: Request) -> PlainTextResponse:
        seen.append(arms(request))
        seen.append(request.scope["mabware"])
        return PlainTextResponse(f"arm={arms(request)['headline'].arm}")

    async def buy(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(arms(request).reward("headline", 1.0)))

    middleware = [] if engine is None else [Middleware(MabwareMiddleware, engine=engine)]
    return Starlette(routes=[Route("/", home), Route("/buy", buy)], middleware=middleware)


def engine() -> Engine:
    return make_engine([Experiment("headline", ["control", "bold"], default_arm="control")])


async def get(app: Starlette, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.get(path) for path in paths]


def test_example_under_uvicorn() -> None:
    port = free_port()
    argv = ["uvicorn", "starlette_app:app", "--host", "127.0.0.1", "--port", str(port)]
    with running([*argv, "--loop", "asyncio"], port) as url:
        check_example(url)


def test_arms_is_the_scope_assignments() -> None:
    seen: list[object] = []
    (response,) = asyncio.run(get(make_app(engine(), seen), "/"))
    assert response.status_code == 200
    assert seen[0] is seen[1]
    assert response.text == f"arm={seen[0]['headline'].arm}"  # type: ignore[index]


def test_a_reward_reaches_the_statistics() -> None:
    shared = engine()
    home, buy = asyncio.run(get(make_app(shared, []), "/", "/buy"))
    assert buy.text == "True"
    arm = home.text.removeprefix("arm=")
    stats = shared.store.statistics("headline", 0.0)
    assert stats.reward_sum[shared.experiments["headline"].arm_names.index(arm)] == 1.0


def test_without_the_middleware_arms_says_what_to_add() -> None:
    with pytest.raises(ConfigError, match=r"Middleware\(MabwareMiddleware"):
        asyncio.run(get(make_app(None, []), "/"))
