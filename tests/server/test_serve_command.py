"""``mabware serve``: settings checked before uvicorn starts, a clear error without it.

The server itself runs under a real uvicorn in tests/store/test_http_backend.py;
here uvicorn is replaced by a stand-in that records what it was asked to run.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from mabware.cli import main


@pytest.fixture
def uvicorn_runs(monkeypatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    stand_in = types.ModuleType("uvicorn")
    stand_in.run = lambda app, **kwargs: calls.append({"app": app, **kwargs})  # type: ignore[attr-defined]
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
