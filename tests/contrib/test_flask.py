"""The Flask extension in-process, and its example under gunicorn on loopback."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("flask")

from flask import Flask, abort

from mabware import Experiment
from mabware.contrib.flask import Mabware
from mabware.exceptions import ConfigError
from mabware.testing import TEST_KEYS

from .servers import check_example, free_port, running

HEADLINES = {"control": "Welcome back", "bold": "Big sale today"}


def headline(**options: Any) -> Experiment:
    return Experiment("headline", HEADLINES, default_arm="control", **options)


def make_app(mab: Mabware | None = None, **config: Any) -> tuple[Flask, Mabware]:
    """An app with a few views; ``mab`` defaults to one running ``headline``."""
    mab = mab if mab is not None else Mabware(experiments=[headline()], seed=0)
    app = Flask(__name__)
    app.config.update(MABWARE_SECRET_KEYS=list(TEST_KEYS), **config)
    mab.init_app(app)

    @app.get("/")
    @mab.choose_arm("headline")
    def home(headline: str) -> str:
        return f"{mab.arms()['headline'].arm}={headline}"

    @app.get("/hello/<name>")
    @mab.choose_arm("headline")
    def hello(name: str, headline: str) -> str:
        return f"{headline}, {name}"

    @app.get("/buy")
    @mab.reward_endpt("headline", 1.0)
    def buy() -> str:
        return "thanks"

    @app.get("/refused")
    @mab.reward_endpt("headline")
    def refused() -> tuple[str, int]:
        return "no", 500

    @app.get("/missing")
    @mab.reward_endpt("headline")
    def missing() -> str:
        abort(404)

    @app.get("/boom")
    @mab.reward_endpt("headline")
    def boom() -> str:
        raise RuntimeError("view failed")

    return app, mab


def rewards(mab: Mabware, app: Flask) -> float:
    with app.app_context():
        return float(mab.engine.store.statistics("headline", 0.0).reward_sum.sum())


def test_example_under_gunicorn() -> None:
    port = free_port()
    with running(["gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "flask_app:app"], port) as url:
        check_example(url)


def test_registers_on_the_app_with_config_defaults() -> None:
    app, mab = make_app()
    assert app.extensions["mabware"] is mab
    assert app.config["MABWARE_STORE"] == "memory:"
    assert app.config["MABWARE_COOKIE_NAME"] == "mabware"


def test_choose_arm_passes_the_arms_value_after_route_params() -> None:
    app, _ = make_app()
    client = app.test_client()
    first = client.get("/")
    arm, value = first.text.split("=")
    assert HEADLINES[arm] == value
    assert len(first.headers.get_all("Set-Cookie")) == 1
    assert client.get("/hello/ada").text == f"{value}, ada"
    assert "Set-Cookie" not in client.get("/").headers  # a returning visitor


def test_reward_endpt_rewards_only_a_successful_response() -> None:
    app, mab = make_app()
    app.testing = False  # a raising view becomes a 500, as in production
    client = app.test_client()
    client.get("/")
    assert client.get("/refused").status_code == 500
    assert client.get("/missing").status_code == 404
    assert client.get("/boom").status_code == 500
    assert rewards(mab, app) == 0.0
    bought = client.get("/buy")
    assert bought.status_code == 200
    assert "Set-Cookie" in bought.headers
    assert rewards(mab, app) == 1.0
    client.get("/buy")  # reward_mode "once"
    assert rewards(mab, app) == 1.0


def test_add_bandit_before_the_first_request_and_not_after() -> None:
    mab = Mabware(seed=0)
    mab.add_bandit("headline", headline())
    app, _ = make_app(mab)
    assert app.test_client().get("/").status_code == 200
    with pytest.raises(ConfigError, match="after the first request"):
        mab.add_bandit("button", Experiment("button", ["green", "orange"]))


def test_add_bandit_name_must_match_the_experiment() -> None:
    with pytest.raises(ConfigError, match=r"'headline'.*'button'"):
        Mabware().add_bandit("headline", Experiment("button", ["green", "orange"]))


def test_unknown_config_key_is_named() -> None:
    app, _ = make_app(MABWARE_STORAGE="memory:")
    with pytest.raises(ConfigError, match="MABWARE_STORAGE"):
        app.test_client().get("/")


def test_missing_secret_keys_say_what_to_set() -> None:
    app, _ = make_app()
    del app.config["MABWARE_SECRET_KEYS"]
    with pytest.raises(ConfigError, match=r"MABWARE_SECRET_KEYS.*mabware keygen"):
        app.test_client().get("/")


def test_a_decorator_for_an_unknown_experiment_fails_at_start_up() -> None:
    app, mab = make_app()

    @app.get("/typo")
    @mab.choose_arm("headlin")
    def typo(headlin: str) -> str:
        return headlin

    with pytest.raises(ConfigError, match="'headlin'"):
        app.test_client().get("/")


def test_an_out_of_range_reward_fails_at_start_up() -> None:
    app, mab = make_app()

    @app.get("/big")
    @mab.reward_endpt("headline", 5.0)
    def big() -> str:
        return "big"

    with pytest.raises(ConfigError, match=r"reward_endpt\('headline', 5.0\)"):
        app.test_client().get("/")


def test_app_factory_each_app_its_own_engine_and_config() -> None:
    mab = Mabware(experiments=[headline()], store="memory:", seed=0)
    one, _ = make_app(mab)
    two, _ = make_app(mab, MABWARE_COOKIE_NAME="other")  # each app reads its own config
    assert one.test_client().get("/").headers["Set-Cookie"].startswith("mabware=")
    assert two.test_client().get("/").headers["Set-Cookie"].startswith("other=")
    with one.app_context():
        first = mab.engine
    with two.app_context():
        assert mab.engine is not first


def test_constructor_settings_override_the_config() -> None:
    mab = Mabware(experiments=[headline()], secret_keys=[TEST_KEYS[1]], cookie_name="ctor")
    app, _ = make_app(mab, MABWARE_COOKIE_NAME="config")
    del app.config["MABWARE_SECRET_KEYS"]
    assert app.test_client().get("/").headers["Set-Cookie"].startswith("ctor=")


def test_unit_id_and_consent_hooks_reach_the_middleware() -> None:
    mab = Mabware(
        experiments=[headline()],
        unit_id=lambda environ: environ.get("HTTP_X_USER"),
        consent=lambda environ: "HTTP_X_NO_CONSENT" not in environ,
        recompute_interval=3600.0,  # one allocation throughout, so one unit -> one arm
    )
    app, _ = make_app(mab)
    seen = {app.test_client().get("/", headers={"X-User": "ada"}).text for _ in range(10)}
    assert len(seen) == 1  # the same user, the same arm, even without the cookie
    refused = app.test_client().get("/", headers={"X-No-Consent": "1"})
    assert refused.text == "control=Welcome back"
    assert "Set-Cookie" not in refused.headers


def test_arms_outside_the_middleware_says_what_to_call() -> None:
    app, mab = make_app()
    with app.test_request_context("/"), pytest.raises(ConfigError, match="init_app"):
        mab.arms()


def test_experiments_from_config() -> None:
    button = Experiment("button", ["green", "orange"])
    app, mab = make_app(MABWARE_EXPERIMENTS=[button])
    app.test_client().get("/")
    with app.app_context():
        assert sorted(mab.engine.experiments) == ["button", "headline"]


def test_async_views_work_with_the_decorators() -> None:
    pytest.importorskip("asgiref")
    app, mab = make_app()

    @app.get("/async")
    @mab.choose_arm("headline")
    @mab.reward_endpt("headline")
    async def async_view(headline: str) -> str:
        return headline

    assert app.test_client().get("/async").text in HEADLINES.values()
    assert rewards(mab, app) == 1.0
