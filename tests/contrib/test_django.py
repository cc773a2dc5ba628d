"""The Django middleware and checks in-process, and its example under gunicorn and uvicorn."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django")

import django
from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, AsyncRequestFactory, Client, override_settings
from django.urls import path

from mabware import Engine, Experiment
from mabware.contrib.django import MabwareMiddleware, get_engine
from mabware.testing import TEST_KEYS

from .servers import check_example, free_port, running

HEADLINES = {"control": "Welcome back", "bold": "Big sale today"}
EXPERIMENTS = [Experiment("headline", HEADLINES, default_arm="control")]
MIDDLEWARE = ["mabware.contrib.django.MabwareMiddleware"]


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"arm={request.mabware['headline'].arm}")


def buy(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.mabware.reward("headline", 1.0)))


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("view failed")


async def async_home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"arm={request.mabware['headline'].arm}")


urlpatterns = [path("", home), path("buy", buy), path("boom", boom), path("async", async_home)]


def mabware_setting(**overrides: Any) -> dict[str, Any]:
    return {"EXPERIMENTS": EXPERIMENTS, "SECRET_KEYS": list(TEST_KEYS), **overrides}


@pytest.fixture(scope="module", autouse=True)
def _django() -> None:
    if not settings.configured:
        settings.configure(
            ALLOWED_HOSTS=["testserver"],
            SECRET_KEY="django-test-only",  # Django 4.2 reads it to log a 500
            INSTALLED_APPS=["mabware.contrib.django"],
            MIDDLEWARE=MIDDLEWARE,
            ROOT_URLCONF=__name__,
            MABWARE=mabware_setting(),
        )
        django.setup()


@pytest.fixture
def engine() -> Iterator[Engine]:
    """A fresh process engine (overriding MABWARE rebuilds it), in strict mode."""
    with override_settings(MABWARE=mabware_setting(STRICT=True)):
        yield get_engine()


def pulls(engine: Engine) -> float:
    return float(engine.store.statistics("headline", 0.0).pulls.sum())


def test_example_under_gunicorn() -> None:
    port = free_port()
    argv = ["gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "django_app:application"]
    with running(argv, port) as url:
        check_example(url)


@pytest.mark.skipif(importlib.util.find_spec("uvicorn") is None, reason="needs uvicorn")
def test_example_under_uvicorn() -> None:
    port = free_port()
    argv = ["uvicorn", "django_app:asgi", "--host", "127.0.0.1", "--port", str(port)]
    with running([*argv, "--loop", "asyncio", "--lifespan", "off"], port) as url:
        check_example(url)


def test_request_mabware_and_one_cookie_with_the_engines_value_and_attributes(
    engine: Engine,
) -> None:
    client = Client()
    first = client.get("/")
    assert first.status_code == 200
    cookie = first.cookies["mabware"]
    header = cookie.output(header="").strip()
    assert header.count("mabware=") == 1
    assert len(first.cookies) == 1
    assert engine.codec.decode(cookie.value).state is not None
    expected = engine.codec.header(cookie.value, secure=False)
    assert sorted(header.split("; ")) == sorted(expected.split("; "))
    arm = first.content.decode().removeprefix("arm=")
    for _ in range(5):  # the test client keeps the cookie, like a browser
        again = client.get("/")
        assert again.content.decode() == f"arm={arm}"
        assert not again.cookies
    assert pulls(engine) == 1


def test_https_gets_a_secure_cookie(engine: Engine) -> None:
    response = Client().get("/", secure=True)
    assert response.cookies["mabware"]["secure"] is True


def test_rewards_and_response_outcomes_reach_the_statistics(engine: Engine) -> None:
    client = Client(raise_request_exception=False)
    client.get("/")
    bought = client.get("/buy")
    assert bought.content == b"True"
    assert "mabware" in bought.cookies
    assert client.get("/buy").content == b"False"  # reward_mode "once"
    assert client.get("/boom").status_code == 500
    stats = engine.store.statistics("headline", 0.0)
    assert stats.reward_sum.sum() == 1.0
    assert stats.responses.sum() == 4
    assert stats.errors.sum() == 1


def test_the_engine_is_built_once_per_process(engine: Engine) -> None:
    Client().get("/")
    Client().get("/")
    assert get_engine() is engine
    assert pulls(engine) == 2


def test_async_view_under_async_client(engine: Engine) -> None:
    client = AsyncClient()
    first = asyncio.run(client.get("/async"))
    assert first.status_code == 200
    assert "mabware" in first.cookies
    arm = first.content.decode().removeprefix("arm=")
    assert arm in HEADLINES
    again = asyncio.run(client.get("/async"))
    assert again.content.decode() == f"arm={arm}"
    assert not again.cookies
    assert pulls(engine) == 1


def test_the_middleware_is_a_coroutine_under_an_async_chain(engine: Engine) -> None:
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(request.mabware["headline"].arm)

    middleware = MabwareMiddleware(view)
    assert iscoroutinefunction(middleware)
    request = AsyncRequestFactory().get("/")
    response = asyncio.run(middleware(request))
    assert request.mabware is not None
    assert "mabware" in response.cookies
    assert not iscoroutinefunction(MabwareMiddleware(home))


CHECKS = [
    pytest.param({}, {}, set(), id="good"),
    pytest.param({"MABWARE": "yes"}, {}, {"mabware.E001"}, id="not-a-dict"),
    pytest.param({}, {"SECRET_KEYS": None}, {"mabware.E002"}, id="no-keys"),
    pytest.param({}, {"SECRET_KEYS": ["short"]}, {"mabware.E002"}, id="short-key"),
    pytest.param({}, {"SECRET_KEYS": TEST_KEYS[0]}, set(), id="key-as-string"),
    pytest.param({}, {"EXPERIMENTS": None}, {"mabware.E003"}, id="no-experiments"),
    pytest.param({}, {"EXPERIMENTS": [1]}, {"mabware.E003"}, id="not-experiments"),
    pytest.param({}, {"EXPERIMENTS": "nowhere.LIST"}, {"mabware.E003"}, id="not-importable"),
    pytest.param({}, {"EXPERIMENTS": f"{__name__}.EXPERIMENTS"}, set(), id="dotted-path"),
    pytest.param({}, {"STORE": "mongodb://db"}, {"mabware.E004"}, id="bad-store"),
    pytest.param({}, {"COOKIE_NAM": "x"}, {"mabware.E005"}, id="unknown-key"),
    pytest.param({}, {"MAX_AGE": -1}, {"mabware.E005"}, id="bad-max-age"),
    pytest.param({"MIDDLEWARE": []}, {}, {"mabware.W001"}, id="no-middleware"),
    pytest.param(
        {"MIDDLEWARE": ["mabware.contrib.django.middleware.MabwareMiddleware"]},
        {},
        set(),
        id="middleware-full-path",
    ),
]


@pytest.mark.parametrize(("top", "mabware", "expected"), CHECKS)
def test_each_system_check_fires_on_its_misconfiguration_only(
    top: dict[str, Any], mabware: dict[str, Any], expected: set[str]
) -> None:
    with override_settings(**{"MABWARE": mabware_setting(**mabware), **top}):
        messages = run_checks(tags=["mabware"])
    assert {m.id for m in messages} == expected, messages
    assert all(m.hint for m in messages)


def test_a_missing_mabware_setting_is_e001() -> None:
    with override_settings():
        del settings.MABWARE
        messages = run_checks(tags=["mabware"])
    assert [m.id for m in messages] == ["mabware.E001"]
    assert "settings.MABWARE" in messages[0].msg
