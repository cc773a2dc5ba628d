"""The mabware command line: simulate, keygen, and what importing it costs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mabware import policies
from mabware.cli import main
from mabware.cookies import CookieCodec


@pytest.fixture
def cli():
    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_simulate_prints_a_table_and_writes_json(cli, tmp_path):
    out = tmp_path / "result.json"
    args = "simulate --policy thompson --rates 0.1,0.2,0.5 --rounds 300 --seeds 3"
    result = cli(*args.split(), "--json", str(out))
    assert result.exit_code == 0, result.output
    for heading in ("mean regret", "median", "p10", "p90", "median convergence", "seconds"):
        assert heading in result.output
    data = json.loads(out.read_text())
    assert {"mean_regret", "median_regret", "per_seed", "policy", "rates", "rounds"} <= set(data)
    assert len(data["per_seed"]) == 3
    assert data["rates"] == [0.1, 0.2, 0.5]
    assert data["mean_regret"] == pytest.approx(sum(data["per_seed"]) / 3)
    assert data["params"]["prior_alpha"] == 1.0


def test_simulate_is_reproducible_and_seeded(cli, tmp_path):
    paths = [tmp_path / f"{k}.json" for k in range(3)]
    base = ["simulate", "--policy", "ucb1", "--rates", "0.2,0.3", "--rounds", "200", "--seeds", "2"]
    cli(*base, "--json", str(paths[0]))
    cli(*base, "--json", str(paths[1]))
    cli(*base, "--reward-seed", "9", "--json", str(paths[2]))
    first, again, other = (json.loads(p.read_text())["per_seed"] for p in paths)
    assert first == again
    assert first != other


def test_simulate_params_and_batch(cli, tmp_path):
    out = tmp_path / "r.json"
    args = (
        "simulate --policy EPSILON_GREEDY --param epsilon=0.05 --param decay=inverse "
        "--rates 0.1,0.9 --rounds 100 --seeds 1 --batch 10"
    )
    result = cli(*args.split(), "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["params"]["epsilon"] == 0.05
    assert data["params"]["decay"] == "inverse"
    assert data["batch"] == 10
    assert data["policy"] == "epsilon-greedy"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--policy", "nope"], "--policy"),
        (["--rates", "0.1,1.5"], "--rates"),
        (["--rates", "0.1"], "--rates"),
        (["--rates", "0.1,abc"], "--rates"),
        (["--rounds", "0"], "--rounds"),
        (["--seeds", "0"], "--seeds"),
        (["--batch", "0"], "--batch"),
        (["--param", "epsilon"], "--param"),
        (["--param", "nosuch=1"], "--param"),
        (["--policy", "epsilon-greedy", "--param", "epsilon=2"], "--param"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(cli, args, option):
    result = cli("simulate", "--rounds", "10", "--seeds", "1", *args)
    assert result.exit_code == 2
    assert option in result.output
    assert "Traceback" not in result.output


def test_help_lists_simulate_and_the_policies(cli):
    result = cli("--help")
    assert result.exit_code == 0
    assert "simulate" in result.output
    result = cli("simulate", "--help")
    assert result.exit_code == 0
    text = re.sub(r"-\s+", "-", result.output)  # click wraps lines after hyphens
    for name in (*policies.POLICIES, "--param", "--reward-seed"):
        assert name in text


def test_keygen_prints_fresh_keys_the_codec_accepts(cli):
    one = cli("keygen")
    assert one.exit_code == 0
    assert len(one.output.splitlines()) == 1
    result = cli("keygen", "--count", "3")
    assert result.exit_code == 0
    keys = result.output.split()
    assert len(keys) == 3
    assert len(set(keys) | {one.output.strip()}) == 4
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key)
    codec = CookieCodec(keys)  # each is a valid key, and no two share a key id
    assert "keys=3" in repr(codec)
    assert cli("keygen", "--count", "0").exit_code == 2


def test_importing_the_cli_loads_no_server_dependencies():
    # a fresh interpreter: this test process has imported them all already
    heavy = ("uvicorn", "httpx", "redis", "starlette", "prometheus_client", "jinja2")
    code = f"import sys, mabware.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]"
