"""``mabware report``: what a shared store holds, from the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mabware import Experiment
from mabware.cli import main
from mabware.store import SharedStore
from mabware.store.file import FileBackend
from mabware.testing import FakeClock

EXPERIMENTS = [
    Experiment("headline", ["control", "bold"]),
    Experiment("button", ["green", "blue", "red"]),
]


def report(*args: str):
    return CliRunner().invoke(main, ["report", *args], catch_exceptions=False)


@pytest.fixture
def store_url(tmp_path):
    """Two replicas (two SharedStores) pushed into one state file."""
    path = tmp_path / "state"
    clock = FakeClock()
    one, two = (
        SharedStore(EXPERIMENTS, FileBackend(path, clock=clock), scheme="file", clock=clock)
        for _ in range(2)
    )
    now = clock()
    for _ in range(3):
        one.add_pull("headline", 0, now)
    one.add_reward("headline", 0, 1.0, None, now)
    for _ in range(5):
        two.add_pull("headline", 1, now)
    two.add_reward("headline", 1, 1.0, None, now)
    two.add_reward("headline", 1, 0.5, None, now)
    two.add_pull("button", 2, now)
    assert one.sync()
    assert two.sync()
    return f"file:{path}"


def test_json_sums_every_replica(store_url):
    result = report("--store", store_url, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    headline = doc["experiments"]["headline"]
    assert headline["version"] == 1
    assert headline["arms"]["control"] == {
        "pulls": 3.0, "reward_sum": 1.0, "mean_reward": 1 / 3, "errors": 0.0, "responses": 0.0,
    }  # fmt: skip
    assert headline["arms"]["bold"]["pulls"] == 5.0
    assert headline["arms"]["bold"]["reward_sum"] == 1.5
    assert headline["arms"]["bold"]["mean_reward"] == pytest.approx(0.3)
    button = doc["experiments"]["button"]["arms"]
    assert [button[arm]["pulls"] for arm in ("green", "blue", "red")] == [0.0, 0.0, 1.0]
    assert button["green"]["mean_reward"] is None
    assert doc["replicas"]["live"] == 2
    assert doc["replicas"]["retired"] == 0


def test_table_names_every_arm_with_its_numbers(store_url):
    result = CliRunner().invoke(
        main, ["report", "--store", store_url], terminal_width=120, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    for heading in ("experiment", "arm", "pulls", "reward_sum", "mean"):
        assert heading in result.output
    lines = {line.split("│")[2].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "3" in lines["control"]
    assert "1.0000" not in lines["control"]
    assert "0.3333" in lines["control"]
    assert "1.5000" in lines["bold"]
    assert "0.3000" in lines["bold"]
    assert "-" in lines["green"]  # no pulls: no mean
    assert "2 live replicas" in result.output


def test_a_file_that_is_not_a_state_is_an_error(tmp_path):
    (tmp_path / "state").write_bytes(b"")  # e.g. truncated by hand
    result = report("--store", f"file:{tmp_path / 'state'}")
    assert result.exit_code == 1
    assert "unreadable" in result.output


def test_a_missing_file_is_a_usage_error_and_creates_nothing(tmp_path):
    result = report("--store", f"file:{tmp_path / 'nowhere' / 'state'}")
    assert result.exit_code == 2
    assert "no state file" in result.output
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("url", ["memory:", "ftp://example.com", "nothing"])
def test_a_url_that_is_not_a_shared_store_is_a_usage_error(url):
    result = report("--store", url)
    assert result.exit_code == 2
    assert "--store" in result.output


def test_an_unreachable_server_is_an_error_without_traceback():
    result = report("--store", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert "could not read" in result.output
    assert "Traceback" not in result.output
