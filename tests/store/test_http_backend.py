"""The http:// backend against a real ``mabware serve`` (uvicorn) on loopback.

Each server is a subprocess on a free loopback port, killed by PID. A
second, tiny ASGI app stands in for a server that misbehaves: it answers
500, answers 200 with a body that is no state, answers 409 "retired", or
sleeps past the client's timeout, by path prefix.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="needs the server extra: pip install 'mabware[server]'")
httpx = pytest.importorskip("httpx", reason="needs the server extra: pip install 'mabware[server]'")

from mabware.exceptions import ConfigError  # noqa: E402
from mabware.experiment import Experiment  # noqa: E402
from mabware.statistics import Statistics  # noqa: E402
from mabware.store import open_store  # noqa: E402
from mabware.store.http import HttpBackend, SyncServerError  # noqa: E402
from mabware.store.merge import Replica, RetiredReplicaError, Tally, combined  # noqa: E402
from mabware.store.shared import SharedStore  # noqa: E402

TOKEN = "s3cret-sync-token"
ROOT = Path(__file__).resolve().parents[2]

MISBEHAVING = """
import asyncio
import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    path, status, headers = scope["path"], 200, [(b"content-type", b"text/plain")]
    body = b"this is not a state"
    if path.startswith("/slow/"):
        await asyncio.sleep(30)
    elif path.startswith("/fail/"):
        status, body = 500, b"Internal Server Error"
    elif path.startswith("/retired"):
        status, headers = 409, [(b"content-type", b"application/problem+json")]
        problem = {"type": "tag:mabware,2025:problem:retired-replica",
                   "title": "Replica retired", "status": 409, "detail": "retired"}
        if path.startswith("/retired-at-7/"):
            problem["folded_seq"] = 7
        body = json.dumps(problem).encode()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One server subprocess on a fixed loopback port; restartable on the same port."""

    def __init__(self, argv: list[str], log: Path, *, cwd: Path = ROOT) -> None:
        self.port = free_port()
        self.argv = [sys.executable, "-m", *argv, "--host", "127.0.0.1", "--port", str(self.port)]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if k != "MABWARE_TOKEN"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{self.url}/ready", timeout=1.0)  # any answer will do
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"{self.argv} did not answer:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.05)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def mabware_server(tmp: Path, *extra: str) -> Server:
    argv = ["mabware.cli", "serve", "--store", f"file:{tmp / 'mabware.state'}", *extra]
    return Server(argv, tmp / "server.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """A mabware server with a token, shared by the tests that only push and pull."""
    tmp = tmp_path_factory.mktemp("sync-server")
    running = mabware_server(tmp, "--token", TOKEN)
    running.start()
    yield running
    running.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def misbehaving(tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("misbehaving")
    (tmp / "misbehaving.py").write_text(textwrap.dedent(MISBEHAVING))
    argv = ["uvicorn", "--app-dir", str(tmp), "misbehaving:app", "--lifespan", "off"]
    running = Server([*argv, "--log-level", "warning"], tmp / "server.log", cwd=tmp)
    running.start()
    yield running.url
    running.kill()


@pytest.fixture
def stores() -> Iterator[list[SharedStore]]:
    """Stores to close after the test (close() pushes one last time)."""
    made: list[SharedStore] = []
    yield made
    for store in made:
        store.close()


def experiment(name: str) -> Experiment:
    return Experiment(name, ["control", "bold"])


def http_store(
    stores: list[SharedStore], url: str, exp: Experiment, **backend: object
) -> SharedStore:
    store = SharedStore([exp], HttpBackend(url, **backend), scheme="http")  # type: ignore[arg-type]
    stores.append(store)
    return store


def record(store: SharedStore, exp: Experiment, pulls: list[int], rewards: list[int]) -> None:
    now = time.time()
    for arm, (n, r) in enumerate(zip(pulls, rewards, strict=True)):
        for _ in range(n):
            store.add_pull(exp.name, arm, now)
        for _ in range(r):
            store.add_reward(exp.name, arm, 1.0, None, now)


def seen(store: SharedStore, exp: Experiment) -> tuple[list[float], list[float]]:
    stats = store.statistics(exp.name, time.time())
    return stats.pulls.tolist(), stats.reward_sum.tolist()


def test_two_stores_learn_together_through_the_server(server, stores):
    exp = experiment("learn-together")
    url = f"http://:{TOKEN}@127.0.0.1:{server.port}"  # the token as the URL's password
    a = open_store(url, [exp])
    b = open_store(url, [exp])
    assert isinstance(a, SharedStore)
    assert isinstance(b, SharedStore)
    stores.extend([a, b])
    assert TOKEN not in repr(a.backend)
    record(a, exp, [5, 2], [2, 1])
    record(b, exp, [1, 4], [0, 3])
    assert a.sync()
    assert b.sync()
    assert a.sync()
    assert a.backend_up
    assert b.backend_up
    assert seen(a, exp) == seen(b, exp) == ([6, 6], [2, 4])
    record(b, exp, [0, 1], [0, 0])  # b sees its own count at once, a after a sync
    assert seen(b, exp) == ([6, 7], [2, 4])
    assert seen(a, exp) == ([6, 6], [2, 4])
    assert b.sync()
    assert a.sync()
    assert seen(a, exp) == ([6, 7], [2, 4])


def test_token_from_the_argument_or_the_environment(server, stores, monkeypatch):
    exp = experiment("token-sources")
    record(by_argument := http_store(stores, server.url, exp, token=TOKEN), exp, [1, 0], [0, 0])
    assert by_argument.sync()
    monkeypatch.setenv("MABWARE_TOKEN", TOKEN)
    by_env = http_store(stores, server.url, exp)
    assert by_env.sync()
    assert seen(by_env, exp) == ([1, 0], [0, 0])
    # the argument wins over the URL's password, which wins over the environment
    wrong_in_url = f"http://:nope@127.0.0.1:{server.port}"
    assert http_store(stores, wrong_in_url, exp, token=TOKEN).sync()
    assert not http_store(stores, wrong_in_url, exp).sync()


def test_a_wrong_or_missing_token_is_backend_down(server, stores, monkeypatch):
    monkeypatch.delenv("MABWARE_TOKEN", raising=False)
    exp = experiment("wrong-token")
    for url in (f"http://:wrong@127.0.0.1:{server.port}", server.url):
        store = http_store(stores, url, exp)
        record(store, exp, [2, 1], [1, 0])
        assert not store.sync()
        assert not store.backend_up
        assert store.sync_errors == 1
        assert seen(store, exp) == ([2, 1], [1, 0])  # still serving its own counts
    backend = HttpBackend(f"http://:wrong@127.0.0.1:{server.port}")
    try:
        with pytest.raises(SyncServerError, match="401"):
            backend.read()
    finally:
        backend.close()


def test_snapshot_is_read_with_its_etag(server, stores):
    exp = experiment("snapshot-etag")
    writer = http_store(stores, server.url, exp, token=TOKEN)
    record(writer, exp, [3, 0], [1, 0])
    assert writer.sync()
    reader = HttpBackend(server.url, token=TOKEN)
    try:
        first = reader.read()
        assert reader.read() is first  # 304: the cached state, not a new one
        stats = combined(first, (exp.name, exp.version), exp.arm_names, 0)
        assert stats.pulls.tolist() == [3, 0]
        record(writer, exp, [1, 0], [0, 0])
        assert writer.sync()
        again = reader.read()
        assert again is not first
        assert combined(again, (exp.name, exp.version), exp.arm_names, 0).pulls.tolist() == [4, 0]
    finally:
        reader.close()


def test_a_forked_child_gets_its_own_connections(server):
    backend = HttpBackend(server.url, token=TOKEN)
    try:
        backend.read()  # a pooled keep-alive connection, inherited by the child
        parent_client = backend._client
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            ok = backend._client is not parent_client and backend.read() is not None
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert backend._client is parent_client
        backend.read()
    finally:
        backend.close()


def test_a_killed_server_loses_nothing_and_doubles_nothing(tmp_path, stores):
    sync_server = mabware_server(tmp_path, "--token", TOKEN)
    sync_server.start()
    try:
        exp = experiment("killed")
        a = http_store(stores, sync_server.url, exp, token=TOKEN, timeout=1.0)
        b = http_store(stores, sync_server.url, exp, token=TOKEN, timeout=1.0)
        record(a, exp, [4, 1], [2, 0])
        record(b, exp, [1, 3], [0, 2])
        assert a.sync()
        assert b.sync()
        assert a.sync()
        assert seen(a, exp) == ([5, 4], [2, 2])

        sync_server.kill(signal.SIGKILL)
        record(a, exp, [2, 0], [1, 0])
        record(b, exp, [0, 2], [0, 1])
        assert not a.sync()
        assert not b.sync()
        assert not a.backend_up
        # the last known state of the others plus our own live counts
        assert seen(a, exp) == ([7, 4], [3, 2])
        assert seen(b, exp) == ([5, 6], [2, 3])

        sync_server.start()  # the same state file, the same port
        assert a.sync()
        assert b.sync()
        assert a.sync()
        assert a.backend_up
        assert seen(a, exp) == seen(b, exp) == ([7, 6], [3, 3])
        snapshot = HttpBackend(sync_server.url, token=TOKEN)
        try:
            state = snapshot.read()
        finally:
            snapshot.close()
        assert set(state.replicas) == {a.replica_id, b.replica_id}
        stats = combined(state, (exp.name, exp.version), exp.arm_names, 0)
        assert stats.pulls.tolist() == [7, 6]
        assert stats.reward_sum.tolist() == [3, 3]
    finally:
        for store in stores:
            store.close()  # their last push, while the server still runs
        sync_server.kill(signal.SIGTERM)


def test_a_retired_replica_carries_on_under_a_new_id(tmp_path, stores):
    sync_server = mabware_server(tmp_path, "--retention", "0.5")
    sync_server.start()
    try:
        exp = experiment("retired")
        a = http_store(stores, sync_server.url, exp)
        b = http_store(stores, sync_server.url, exp)
        record(a, exp, [3, 0], [1, 0])
        assert a.sync()
        time.sleep(0.7)  # a is silent past the retention
        record(b, exp, [0, 2], [0, 1])
        assert b.sync()  # the server folds a into the retired totals
        old_id = a.replica_id
        record(a, exp, [1, 1], [0, 0])
        assert a.sync()  # refused as retired, then pushed again under a new id
        assert a.replica_id != old_id
        assert b.sync()
        assert seen(a, exp) == seen(b, exp) == ([4, 3], [1, 1])
    finally:
        for store in stores:
            store.close()
        sync_server.kill(signal.SIGTERM)


def test_an_http_500_is_backend_down(misbehaving, stores):
    exp = experiment("fails")
    store = http_store(stores, f"{misbehaving}/fail", exp)
    record(store, exp, [1, 2], [0, 1])
    assert not store.sync()
    assert not store.backend_up
    assert seen(store, exp) == ([1, 2], [0, 1])
    with pytest.raises(SyncServerError, match="500") as raised:
        store.backend.exchange("r", Replica(1, time.time(), {}))
    assert raised.value.payload == 500


def test_a_200_that_is_not_a_state_is_backend_down(misbehaving, stores):
    exp = experiment("garbage")
    store = http_store(stores, f"{misbehaving}/garbage", exp)
    assert not store.sync()
    assert not store.backend_up


def test_a_timeout_is_backend_down(misbehaving, stores):
    exp = experiment("slow")
    store = http_store(stores, f"{misbehaving}/slow", exp, timeout=0.3)
    record(store, exp, [1, 0], [0, 0])
    started = time.monotonic()
    assert not store.sync()
    assert time.monotonic() - started < 3
    assert not store.backend_up
    assert seen(store, exp) == ([1, 0], [0, 0])
    store.backend.close()
    store.backend = HttpBackend(f"{misbehaving}/garbage")  # close() pushes: keep it quick


@pytest.mark.parametrize(("prefix", "folded_seq"), [("retired", None), ("retired-at-7", 7)])
def test_a_409_retired_problem_is_retired_replica_error(misbehaving, prefix, folded_seq):
    backend = HttpBackend(f"{misbehaving}/{prefix}")
    tally = Tally(("a", "b"), Statistics.from_counts([1, 0], [0, 0]))
    try:
        with pytest.raises(RetiredReplicaError) as refused:
            backend.exchange("r", Replica(1, time.time(), {("x", 1): tally}))
        assert refused.value.folded_seq == folded_seq  # the problem's member, when it has one
    finally:
        backend.close()


@pytest.mark.parametrize(
    "url", ["ftp://host", "http://", "file:./x", "http://host:notaport", "no scheme"]
)
def test_a_url_that_cannot_work_is_a_config_error(url):
    with pytest.raises(ConfigError):
        HttpBackend(url)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_a_timeout_that_cannot_work_is_a_config_error(timeout):
    with pytest.raises(ConfigError):
        HttpBackend("http://127.0.0.1:1", timeout=timeout)


def test_repr_and_url_hide_the_token():
    backend = HttpBackend(f"https://:{TOKEN}@sync.example:8443/mab/?q=1#f")
    try:
        assert backend.url == "https://sync.example:8443/mab"
        assert TOKEN not in repr(backend)
        assert TOKEN not in repr(backend._client.auth)
    finally:
        backend.close()
