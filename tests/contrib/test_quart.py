"""The Quart extension in-process and under hypercorn, and its example under hypercorn."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

pytest.importorskip("quart")

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, request

from mabware import Experiment
from mabware.contrib.quart import Mabware
from mabware.cookies import CookieCodec, CookieState
from mabware.exceptions import ConfigError
from mabware.testing import TEST_KEYS

from .servers import check_example, free_port, running


def experiments() -> list[Experiment]:
    return [Experiment("headline", ["control", "bold"], default_arm="control")]


def make_app(**config: Any) -> Quart:
    app = Quart(__name__)
    app.config.update({"MABWARE_SECRET_KEYS": list(TEST_KEYS), **config})
    return app


def add_routes(app: Quart, ext: Mabware, seen: list[tuple[object, object]]) -> None:
    @app.get("/")
    async def home() -> str:
        seen.append((ext.arms(), request.scope["mabware"]))
        return ext.arms()["headline"].arm

    @app.get("/buy")
    async def buy() -> str:
        return str(ext.arms().reward("headline", 1.0))


async def get(app: Quart, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.get(path) for path in paths]


def test_example_under_hypercorn() -> None:
    port = free_port()
    with running(["hypercorn", "quart_app:app", "--bind", f"127.0.0.1:{port}"], port) as url:
        check_example(url)


def test_arms_is_the_scope_assignments() -> None:
    app = make_app()
    ext = Mabware(app, experiments())
    seen: list[tuple[object, object]] = []
    add_routes(app, ext, seen)
    (home,) = asyncio.run(get(app, "/"))
    helper, scope = seen[0]
    assert helper is scope
    assert home.text == scope["headline"].arm  # type: ignore[index]
    assert app.extensions["mabware"] is ext


def test_a_reward_reaches_the_statistics() -> None:
    app = make_app()
    ext = Mabware(app, experiments(), seed=0)
    add_routes(app, ext, [])
    home, buy = asyncio.run(get(app, "/", "/buy"))
    assert buy.text == "True"
    index = ext.engine.experiments["headline"].arm_names.index(home.text)
    assert ext.engine.store.statistics("headline", 0.0).reward_sum[index] == 1.0


def test_a_request_the_extension_did_not_see_says_what_to_call() -> None:
    app = make_app()
    ext = Mabware(make_app(), experiments())  # set up on another app

    async def handle() -> None:
        async with app.test_request_context("/"):
            ext.arms()

    with pytest.raises(ConfigError, match=r"Mabware\(app\)"):
        asyncio.run(handle())


def test_init_app_reads_config_with_defaults_and_comma_separated_keys() -> None:
    app = make_app(
        MABWARE_SECRET_KEYS=f" {TEST_KEYS[0]}, {TEST_KEYS[1]} ",
        MABWARE_EXPERIMENTS=experiments(),
        MABWARE_COOKIE_NAME="ab",
    )
    ext = Mabware()
    ext.init_app(app)
    assert list(ext.engine.experiments) == ["headline"]
    assert ext.engine.codec.name == "ab"
    assert app.config["MABWARE_STORE"] == "memory:"  # DEFAULTS, set with setdefault
    old = CookieCodec([TEST_KEYS[1]], name="ab").encode(CookieState(int(time.time()), {}))
    decoded = ext.engine.codec.decode(old)
    assert decoded.state is not None  # the second key still decrypts
    assert decoded.rotated


def test_an_unknown_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="MABWARE_STROE"):
        Mabware(make_app(MABWARE_STROE="memory:"), experiments())


def test_a_missing_key_says_to_run_keygen() -> None:
    app = Quart(__name__)
    with pytest.raises(ConfigError, match=r"MABWARE_SECRET_KEYS.*`mabware keygen`"):
        Mabware(app, experiments())


def test_the_engine_starts_and_closes_with_hypercorn() -> None:
    calls: list[str] = []
    app = make_app()
    ext = Mabware(app, experiments())
    ext.engine.store.start = lambda: calls.append("start")  # type: ignore[method-assign]
    ext.engine.store.close = lambda: calls.append("close")  # type: ignore[method-assign]

    @app.before_serving
    async def starting() -> None:
        calls.append("before_serving")

    @app.after_serving
    async def stopping() -> None:
        calls.append("after_serving")

    @app.get("/")
    async def home() -> str:
        return ext.arms()["headline"].arm

    async def serve_one_request() -> int:
        port = free_port()
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        stop = asyncio.Event()
        server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        async with httpx.AsyncClient() as client:
            while True:  # start-up polling
                if server.done():
                    server.result()
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        stop.set()
        await server
        return response.status_code

    assert asyncio.run(serve_one_request()) == 200
    assert calls[:2] == ["start", "before_serving"]  # started by lifespan, not the request
    assert sorted(calls[2:]) == ["after_serving", "close"]
