"""``mabware serve``: settings checked before uvicorn starts, a clear error without it.

The server itself runs under a real uvicorn in tests/store/test_http_backend.py;
here uvicorn is mostly replaced by a stand-in that records what it was asked
to run (and the environment it would hand its workers). One test runs
``mabware serve --workers 2`` for real: two uvicorn workers on one file store.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from typing import Any

import pytest
from api_client import serve_command
from click.testing import CliRunner
from starlette.applications import Starlette

import mabware.server
from mabware.cli import main
from mabware.edge_snapshot import generate_signing_keys
from mabware.exceptions import ConfigError
from mabware.server import ENVIRONMENT, app_from_environment

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@pytest.fixture
def uvicorn_runs(monkeypatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    stand_in = types.ModuleType("uvicorn")

    def run(app: Any, **kwargs: Any) -> None:
        # what spawned workers would inherit, and whether the metrics directory was ready
        env = dict(os.environ)
        metrics = env.get(METRICS_DIR)
        ready = metrics is not None and os.path.isdir(metrics) and not os.listdir(metrics)
        calls.append({"app": app, **kwargs, "env": env, "metrics_dir_ready": ready})

    stand_in.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uvicorn", stand_in)
    return calls


def test_serve_runs_the_app_under_uvicorn(uvicorn_runs, tmp_path, monkeypatch):
    monkeypatch.delenv("MABWARE_TOKEN", raising=False)
    store = f"file:{tmp_path / 'state'}"
    result = CliRunner().invoke(main, ["serve", "--port", "8123", "--store", store])
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_runs
    assert isinstance(call["app"], Starlette)
    assert (call["host"], call["port"]) == ("127.0.0.1", 8123)
    assert "warning" not in result.output


def test_serve_warns_when_exposed_without_a_token(uvicorn_runs, monkeypatch):
    monkeypatch.delenv("MABWARE_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--store", "memory:"])
    assert result.exit_code == 0, result.output
    assert "without a token" in result.output
    monkeypatch.setenv("MABWARE_TOKEN", "from-env")
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--store", "memory:"])
    assert "without a token" not in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--store", "http://x"], "memory:"),
        (["--store", "memory:", "--token", ""], "token"),
        (["--store", "memory:", "--retention", "0"], "retention"),
    ],
)
def test_bad_settings_are_usage_errors(uvicorn_runs, args, says):
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 2
    assert says in result.output
    assert not uvicorn_runs


def test_serve_without_uvicorn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    result = CliRunner().invoke(main, ["serve", "--store", "memory:"])
    assert result.exit_code == 1
    assert "pip install 'mabware[server]'" in result.output


@pytest.mark.parametrize(("args", "logged"), [([], False), (["--access-log"], True)])
def test_the_access_log_is_off_unless_asked_for(uvicorn_runs, args, logged):
    result = CliRunner().invoke(main, ["serve", "--store", "memory:", *args])
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_runs
    assert call["access_log"] is logged


@pytest.fixture
def created(monkeypatch) -> list[dict[str, Any]]:
    """The settings of every create_app call (the real one still builds the app)."""
    calls: list[dict[str, Any]] = []
    real = mabware.server.create_app

    def recording(store_url: str, **settings: Any) -> Starlette:
        calls.append({"store_url": store_url, **settings})
        return real(store_url, **settings)

    monkeypatch.setattr(mabware.server, "create_app", recording)
    return calls


@pytest.fixture
def clean_env(monkeypatch) -> None:
    for name in (*ENVIRONMENT.values(), METRICS_DIR):
        monkeypatch.delenv(name, raising=False)


def test_the_read_token_and_sync_interval_reach_create_app(uvicorn_runs, created, clean_env):
    args = ["serve", "--store", "memory:", "--read-token", "r3ad", "--sync-interval", "0.25"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (settings,) = created
    assert settings == {
        "store_url": "memory:",
        "token": None,
        "read_token": "r3ad",
        "retention": 3600.0,
        "sync_interval": 0.25,
        "protect": [],
        "signing_key": None,
        "snapshot_interval": 10.0,
        "push_token": None,
    }
    (call,) = uvicorn_runs
    assert isinstance(call["app"], Starlette)
    assert "workers" not in call
    assert METRICS_DIR not in call["env"]


def test_the_read_token_comes_from_the_environment_too(uvicorn_runs, created, monkeypatch):
    monkeypatch.setenv("MABWARE_READ_TOKEN", "from-env")
    result = CliRunner().invoke(main, ["serve", "--store", "memory:"])
    assert result.exit_code == 0, result.output
    assert created[0]["read_token"] == "from-env"


def test_several_workers_run_the_factory_with_the_settings_in_their_environment(
    uvicorn_runs, created, clean_env, tmp_path
):
    store = f"file:{tmp_path / 'state'}"
    key_file = tmp_path / "signing.json"
    key_file.write_text(json.dumps(generate_signing_keys()))
    args = ["serve", "--workers", "3", "--store", store, "--port", "8124", "--access-log",
            "--token", "wr1te", "--read-token", "r3ad", "--retention", "60",
            "--sync-interval", "0.25", "--protect", "metrics, docs",
            "--signing-key-file", str(key_file), "--snapshot-interval", "2.5",
            "--push-token", "pu5h"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_runs
    assert call["app"] == "mabware.server:app_from_environment"
    assert call["factory"] is True
    assert (call["workers"], call["host"], call["port"]) == (3, "127.0.0.1", 8124)
    assert call["access_log"] is True
    env = call["env"]
    assert {name: env.get(variable) for name, variable in ENVIRONMENT.items()} == {
        "store_url": store,
        "token": "wr1te",
        "read_token": "r3ad",
        "retention": "60.0",
        "sync_interval": "0.25",
        "protect": "metrics,docs",
        "signing_key": key_file.read_text(),
        "snapshot_interval": "2.5",
        "push_token": "pu5h",
    }
    # a fresh empty directory for the workers' metrics, gone when the server stops
    assert call["metrics_dir_ready"]
    assert not os.path.exists(env[METRICS_DIR])
    # and this process's environment is as it was
    assert not {*ENVIRONMENT.values(), METRICS_DIR} & set(os.environ)

    # the settings were checked here, but no app was built before the workers
    assert created == []
    # what a worker builds from that environment: the same settings
    app_from_environment(env)
    assert created == [
        {"store_url": store, "token": "wr1te", "read_token": "r3ad", "retention": 60.0,
         "sync_interval": 0.25, "protect": ["metrics", "docs"],
         "signing_key": key_file.read_text(), "snapshot_interval": 2.5, "push_token": "pu5h"}
    ]  # fmt: skip


def test_unset_tokens_are_not_passed_to_the_workers(uvicorn_runs, clean_env, tmp_path):
    args = ["serve", "--workers", "2", "--store", f"file:{tmp_path / 'state'}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_runs
    assert "MABWARE_TOKEN" not in call["env"]
    assert "MABWARE_READ_TOKEN" not in call["env"]


def test_a_metrics_directory_the_user_chose_is_kept(uvicorn_runs, clean_env, tmp_path, monkeypatch):
    chosen = tmp_path / "metrics"
    chosen.mkdir()
    monkeypatch.setenv(METRICS_DIR, str(chosen))
    args = ["serve", "--workers", "2", "--store", f"file:{tmp_path / 'state'}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert uvicorn_runs[0]["env"][METRICS_DIR] == str(chosen)
    assert chosen.is_dir()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--store", "memory:"], "memory: lives in one process"),
        (["--store", "http://x"], "redis://HOST"),
        (["--token", ""], "token"),
        (["--read-token", "two words"], "read_token"),
        (["--sync-interval", "0"], "--sync-interval"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_settings_with_several_workers_are_usage_errors(
    uvicorn_runs, clean_env, tmp_path, args, says
):
    store = ["--store", f"file:{tmp_path / 'state'}"]
    result = CliRunner().invoke(main, ["serve", "--workers", "2", *store, *args])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not uvicorn_runs
    assert not {*ENVIRONMENT.values(), METRICS_DIR} & set(os.environ)


def test_the_signing_key_comes_from_a_file_or_the_environment(
    uvicorn_runs, created, clean_env, tmp_path, monkeypatch
):
    pair = generate_signing_keys()
    key_file = tmp_path / "signing.json"
    key_file.write_text(json.dumps(pair))
    args = ["serve", "--store", "memory:", "--snapshot-interval", "3"]
    assert CliRunner().invoke(main, [*args, "--signing-key-file", str(key_file)]).exit_code == 0
    monkeypatch.setenv("MABWARE_SIGNING_KEY", pair["private_key"])  # the key text itself
    assert CliRunner().invoke(main, args).exit_code == 0
    assert [(c["signing_key"], c["snapshot_interval"]) for c in created] == [
        (key_file.read_text(), 3.0),
        (pair["private_key"], 3.0),
    ]


@pytest.mark.parametrize("text", ["not-a-key-at-all", '{"public_key": "x"}', "QUJD" * 10])
def test_a_bad_signing_key_is_a_usage_error_that_never_prints_it(
    uvicorn_runs, clean_env, tmp_path, monkeypatch, text
):
    key_file = tmp_path / "signing.json"
    key_file.write_text(text)
    args = ["serve", "--store", "memory:"]
    from_file = CliRunner().invoke(main, [*args, "--signing-key-file", str(key_file)])
    assert from_file.exit_code == 2
    assert "--signing-key-file" in from_file.output
    monkeypatch.setenv("MABWARE_SIGNING_KEY", text)
    from_env = CliRunner().invoke(main, args)
    assert from_env.exit_code == 2
    assert "MABWARE_SIGNING_KEY" in from_env.output
    for result in (from_file, from_env):
        assert text not in result.output
        assert "keygen --signing" in result.output
    missing = CliRunner().invoke(main, [*args, "--signing-key-file", str(tmp_path / "none")])
    assert missing.exit_code == 2
    assert "--signing-key-file" in missing.output
    assert not uvicorn_runs


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--push-token", "pu5h"], "push_token needs a write token"),
        (["--push-token", "same", "--token", "same"], "push_token must differ"),
        (["--snapshot-interval", "0"], "--snapshot-interval"),
    ],
)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_edge_settings_are_usage_errors(uvicorn_runs, clean_env, tmp_path, args, says, workers):
    store = ["--store", f"file:{tmp_path / 'state'}"]
    result = CliRunner().invoke(main, ["serve", "--workers", workers, *store, *args])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not uvicorn_runs


def test_app_from_environment_names_a_variable_that_is_no_number():
    env = {"MABWARE_SERVE_STORE": "memory:", "MABWARE_SERVE_SYNC_INTERVAL": "soon"}
    with pytest.raises(ConfigError, match="MABWARE_SERVE_SYNC_INTERVAL"):
        app_from_environment(env)


@pytest.mark.parametrize("sync_interval", [0, -1.0, float("nan"), float("inf")])
def test_create_app_refuses_a_sync_interval_that_cannot_work(sync_interval):
    with pytest.raises(ConfigError, match="sync_interval"):
        mabware.server.create_app("memory:", sync_interval=sync_interval)


# -- two real workers -----------------------------------------------------------------

#: the workers' sync interval, and what scheduling and file writes add to two of them
SYNC = 0.5
SLACK = 0.5
DECISIONS = 40


def test_two_workers_share_experiments_statistics_and_metrics(tmp_path):
    httpx = pytest.importorskip("httpx")
    parser = pytest.importorskip("prometheus_client.parser")
    env = {k: v for k, v in os.environ.items() if k not in (*ENVIRONMENT.values(), METRICS_DIR)}
    args = ["--workers", "2", "--store", f"file:{tmp_path / 'state'}", "--sync-interval", str(SYNC)]
    with serve_command(tmp_path, args, env) as served:
        url = served.url
        body = {"experiment_id": "hero", "arm_ids": ["left", "middle", "right"]}
        assert httpx.post(f"{url}/experiments", json=body).status_code == 201
        # one connection each, so that both workers answer (whichever the kernel picks)
        counted = 0
        for _ in range(DECISIONS):
            decision = httpx.get(f"{url}/decision", params={"experiment_id": "hero"})
            assert decision.status_code == 200, decision.text
            counted += decision.json()["counted"]
        assert counted == DECISIONS

        # every worker has pushed its pulls and pulled the others' within two intervals
        time.sleep(2 * SYNC + SLACK)
        for _ in range(6):
            shown = httpx.get(f"{url}/experiments/hero").json()
            assert sum(arm["pulls"] for arm in shown["arms"]) == counted
            text = httpx.get(f"{url}/metrics").text
            assignments = [
                sample.value
                for family in parser.text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "mabware_assignments_total"
            ]
            assert sum(assignments) == counted, text
    # stopped by SIGTERM within 10 s, cleanly
    assert served.code == 0, served.log.read_text()
