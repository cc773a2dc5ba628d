"""The mabware command line: simulate, keygen, snapshot, and what importing it costs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mabware import edge_snapshot, policies
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


def test_keygen_signing_prints_a_pair_that_signs_and_verifies(cli):
    result = cli("keygen", "--signing")
    assert result.exit_code == 0
    assert len(result.output.splitlines()) == 1  # one JSON object
    pair = json.loads(result.output)
    assert set(pair) == {"private_key", "public_key"}
    assert pair != json.loads(cli("keygen", "--signing").output)
    snapshot = edge_snapshot.EdgeSnapshot(1, 1.0, ())
    # the whole output is what --signing-key-file takes; the public key verifies
    signed = edge_snapshot.issue(snapshot, edge_snapshot.private_key(result.output))
    assert edge_snapshot.read(signed, edge_snapshot.public_key(pair["public_key"])) == snapshot
    assert cli("keygen", "--signing", "--count", "2").exit_code == 2


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


# -- mabware snapshot ------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
PAIR = edge_snapshot.generate_signing_keys()
PUBLIC = edge_snapshot.public_key(PAIR["public_key"])


def _experiments(registry, backend) -> None:
    """What `mabware serve` would have stored: one experiment, and pulls where right pays."""
    from mabware.experiment import Experiment
    from mabware.server._registry import Entry
    from mabware.statistics import Statistics
    from mabware.store.merge import Replica, Tally

    hero = Experiment("hero", ["left", "right"], policy=policies.EpsilonGreedy(epsilon=0.1))
    registry.update(lambda entries: {"hero": Entry(hero, "epsilon_greedy")})
    tally = Tally(("left", "right"), Statistics.from_counts([10, 10], [1, 9]))
    backend.exchange("replica-1", Replica(1, time.time(), {("hero", 1): tally}))


@pytest.fixture
def file_store(tmp_path) -> tuple[str, Path, Path]:
    """A file store with experiments, a key file, and where the snapshot goes."""
    from mabware.server._registry import FileRegistry
    from mabware.store.file import FileBackend

    state = tmp_path / "state"
    _experiments(FileRegistry(state), FileBackend(state))
    key = tmp_path / "signing.json"
    key.write_text(json.dumps(PAIR))
    return f"file:{state}", key, tmp_path / "public" / "edge.msgpack"


def _written(out: Path) -> edge_snapshot.EdgeSnapshot:
    return edge_snapshot.read(out.read_bytes(), PUBLIC)


def test_snapshot_writes_a_signed_file_and_leaves_the_store_alone(cli, file_store):
    store, key, out = file_store
    out.parent.mkdir()
    state = Path(store.removeprefix("file:"))
    before = {p.name: p.read_bytes() for p in state.parent.iterdir() if p.is_file()}
    result = cli("snapshot", "--store", store, "--signing-key-file", str(key), "--out", str(out))
    assert result.exit_code == 0, result.output
    first = _written(out)
    assert f"seq {first.seq}: 1 experiments -> {out}" in result.output
    (hero,) = first.experiments
    assert (hero.name, hero.arms, hero.status) == ("hero", ("left", "right"), "active")
    assert hero.allocation == pytest.approx((0.05, 0.95))  # epsilon-greedy after guardrails
    again = cli("snapshot", "--store", store, "--signing-key-file", str(key), "--out", str(out))
    assert again.exit_code == 0, again.output
    assert _written(out).seq > first.seq
    after = {p.name: p.read_bytes() for p in state.parent.iterdir() if p.is_file()}
    assert after == before  # nothing pushed, nothing written beside the store
    assert [p.name for p in out.parent.iterdir()] == ["edge.msgpack"]  # no temp file left


def test_snapshot_takes_the_key_from_the_environment(cli, file_store, monkeypatch, tmp_path):
    store = file_store[0]
    monkeypatch.setenv("MABWARE_SIGNING_KEY", PAIR["private_key"])
    result = cli("snapshot", "--store", store, "--out", str(tmp_path / "edge"))
    assert result.exit_code == 0, result.output
    assert _written(tmp_path / "edge").experiments[0].name == "hero"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--store", "memory:"], "--store"),
        (["--store", "http://localhost:1"], "--store"),
        (["--store", "file:/nonexistent/dir/state"], "--store"),
        (["--signing-key-file", "/nonexistent/key"], "--signing-key-file"),
        (["--out", "/nonexistent/dir/edge"], "--out"),
    ],
)
def test_snapshot_bad_input_is_a_usage_error(cli, file_store, monkeypatch, args, says):
    store, key, out = file_store
    monkeypatch.delenv("MABWARE_SIGNING_KEY", raising=False)
    base = {"--store": store, "--signing-key-file": str(key), "--out": str(out.parent)}
    base.update(zip(args[::2], args[1::2], strict=True))
    result = cli("snapshot", *[x for pair in base.items() for x in pair])
    assert result.exit_code == 2, result.output
    assert says in result.output
    no_key = cli("snapshot", "--store", store, "--out", str(out.parent / "x"))
    assert no_key.exit_code == 2
    assert "--signing-key-file" in no_key.output


def test_snapshot_every_issues_until_sigterm(file_store):
    store, key, out = file_store
    out.parent.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [sys.executable, "-m", "mabware", "snapshot", "--store", store,
            "--signing-key-file", str(key), "--out", str(out), "--every", "0.05"]  # fmt: skip
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seqs: set[int] = set()
        deadline = time.monotonic() + 30
        while len(seqs) < 3:  # issued again and again
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no issues"
            with contextlib.suppress(OSError, edge_snapshot.SnapshotError):
                seqs.add(_written(out).seq)  # always whole: replaced by a rename
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    lines = stdout.decode().splitlines()
    assert len(lines) >= 3
    assert lines[-1] == f"seq {_written(out).seq}: 1 experiments -> {out}"


def test_snapshot_reads_a_redis_store(cli, tmp_path):
    from redis_server import running_redis

    from mabware.server._registry import open_registry
    from mabware.store.redis import RedisBackend

    key = tmp_path / "signing.json"
    key.write_text(json.dumps(PAIR))
    with running_redis(tmp_path) as redis_server:
        backend = RedisBackend(redis_server.url)
        _experiments(open_registry(redis_server.url, backend), backend)
        before = sorted(backend.client.keys("*"))
        out = tmp_path / "edge"
        args = ["--store", redis_server.url, "--signing-key-file", str(key), "--out", str(out)]
        result = cli("snapshot", *args)
        assert result.exit_code == 0, result.output
        assert _written(out).experiments[0].allocation == pytest.approx((0.05, 0.95))
        assert sorted(backend.client.keys("*")) == before
        backend.close()
