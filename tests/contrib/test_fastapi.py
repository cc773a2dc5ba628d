"""The FastAPI dependencies in-process, and the example under uvicorn on loopback."""

from __future__ import annotations

import asyncio
from typing import Annotated

import pytest

pytest.importorskip("fastapi")

import httpx
from fastapi import Depends, FastAPI

from mabware import Assignment, Assignments, Engine, Experiment, MabwareMiddleware
from mabware.contrib.fastapi import arm, assignments
from mabware.exceptions import ConfigError
from mabware.testing import make_engine

from .servers import check_example, free_port, running


def make_app(engine: Engine | None, seen: list[object]) -> FastAPI:
    app = FastAPI()
    if engine is not None:
        app.add_middleware(MabwareMiddleware, engine=engine)

    @app.get("/")
    async def home(
        every: Annotated[Assignments, Depends(assignments)],
        headline: Assignment = Depends(arm("headline")),  # noqa: B008 - the classic form
    ) -> dict[str, str]:
        seen.extend([headline, every])
        return {"arm": headline.arm}

    @app.get("/buy")
    async def buy(every: Annotated[Assignments, Depends(assignments)]) -> dict[str, bool]:
        return {"rewarded": every.reward("headline", 1.0)}

    @app.get("/typo")
    async def typo(headline: Annotated[Assignment, Depends(arm("headlnie"))]) -> str:
        return headline.arm

    return app


def engine() -> Engine:
    return make_engine([Experiment("headline", ["control", "bold"], default_arm="control")])


async def get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.get(path) for path in paths]


def test_example_under_uvicorn() -> None:
    port = free_port()
    argv = ["uvicorn", "fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]
    with running([*argv, "--loop", "asyncio"], port) as url:
        check_example(url)


def test_arm_gives_the_assignment_and_assignments_the_scope_object() -> None:
    seen: list[object] = []
    (response,) = asyncio.run(get(make_app(engine(), seen), "/"))
    headline, every = seen
    assert isinstance(headline, Assignment)
    assert isinstance(every, Assignments)
    assert headline is every["headline"]
    assert response.json() == {"arm": headline.arm}


def test_a_reward_reaches_the_statistics() -> None:
    shared = engine()
    home, buy = asyncio.run(get(make_app(shared, []), "/", "/buy"))
    assert buy.json() == {"rewarded": True}
    index = shared.experiments["headline"].arm_names.index(home.json()["arm"])
    assert shared.store.statistics("headline", 0.0).reward_sum[index] == 1.0


def test_an_unknown_experiment_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"arm\('headlnie'\).*\['headline'\]"):
        asyncio.run(get(make_app(engine(), []), "/typo"))


def test_without_the_middleware_the_dependency_says_what_to_add() -> None:
    with pytest.raises(ConfigError, match=r"add_middleware\(MabwareMiddleware"):
        asyncio.run(get(make_app(None, []), "/"))
