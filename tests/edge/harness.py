"""Real processes on loopback for the edge tests: ``mabware serve`` signing snapshots, SDKs.

``signing_server`` runs ``mabware serve`` (the real CLI, uvicorn) on a file
store with a signing key, a write token, a read token and a push token;
``Server.create`` adds an experiment through the REST API and
``Server.arms`` reads one back. ``edge_client`` is an ``EdgeClient`` for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from mabware_edge import EdgeClient

from mabware.edge_snapshot import generate_signing_keys

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WRITE, READ, PUSH = "write-token", "read-token", "push-token"
#: the middleware's and the SDK's cookie key (key k0 of tests/vectors/cookie.json)
COOKIE_KEY = "J7INaW9SNrV8bxKJmXGZ97gqw7bFPS7tC1OTLWzvpac"
#: a generous bound for "it must happen", not for "it must be fast"
LIVENESS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_with_repo() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(HERE), str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


@dataclass
class Server:
    """A running ``mabware serve``; ``url``, its public key and its store."""

    url: str
    public_key: str
    store: str
    process: subprocess.Popen[bytes]
    log: Path

    def headers(self, token: str = WRITE) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def create(self, name: str, arms: list[str], **settings: Any) -> None:
        body = {"experiment_id": name, "arm_ids": arms, **settings}
        answer = httpx.post(f"{self.url}/experiments", json=body, headers=self.headers())
        assert answer.status_code == 201, answer.text

    def experiment(self, name: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/experiments/{name}", headers=self.headers())
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def arms(self, name: str) -> dict[str, dict[str, Any]]:
        """Per arm: the server's numbers (pulls, reward sum, ...) for ``name``."""
        return {arm["arm"]: arm for arm in self.experiment(name)["arms"]}

    def totals(self, name: str) -> tuple[float, float]:
        """(pulls, reward sum) over every arm of ``name``."""
        arms = self.arms(name).values()
        return sum(a["pulls"] for a in arms), sum(a["reward_sum"] for a in arms)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_server(
    directory: Path, *, port: int | None = None, snapshot_interval: float = 0.5, keys: Any = None
) -> Server:
    """``mabware serve`` on ``file:directory/state`` (keeps the key in ``directory``)."""
    keys = keys or generate_signing_keys()
    key_file = directory / "signing.json"
    key_file.write_text(json.dumps(keys))
    port = port or free_port()
    store = f"file:{directory}/state"
    log = directory / f"serve-{port}.log"
    argv = [
        sys.executable, "-m", "mabware", "serve", "--port", str(port), "--store", store,
        "--token", WRITE, "--read-token", READ, "--push-token", PUSH,
        "--signing-key-file", str(key_file), "--snapshot-interval", str(snapshot_interval),
        "--sync-interval", "0.2",
    ]  # fmt: skip
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env_with_repo(),
            start_new_session=True,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", keys["public_key"], store, process, log)
    deadline = time.monotonic() + LIVENESS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"mabware serve exited ({process.returncode}):\n{server.output()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + "/health", timeout=2.0).status_code == 200:
                return server
        if time.monotonic() > deadline:
            raise TimeoutError(f"mabware serve did not answer:\n{server.output()}")
        time.sleep(0.05)


def stop_server(server: Server) -> None:
    """SIGTERM (the server pushes its last totals), then SIGKILL whatever is left."""
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=LIVENESS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def signing_server(directory: Path, **settings: Any) -> Iterator[Server]:
    server = start_server(directory, **settings)
    try:
        yield server
    finally:
        stop_server(server)


def edge_client(server: Server, **settings: Any) -> EdgeClient:
    """An ``EdgeClient`` of ``server`` with its read and push tokens."""
    settings.setdefault("refresh", "manual")
    return EdgeClient(
        f"{server.url}/edge/snapshot",
        public_key=server.public_key,
        read_token=READ,
        push_url=f"{server.url}/sync",
        push_token=PUSH,
        **settings,
    )


def wait_for(predicate: Any, timeout: float = LIVENESS, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


@contextlib.contextmanager
def middleware_app(
    server: Server, directory: Path, *, workers: int = 1, **settings: str
) -> Iterator[str]:
    """``tests/edge/mw_app.py`` under uvicorn, syncing to ``server``; yields its URL.

    ``settings`` become its ``EDGE_*`` variables (``EDGE_ARMS="a,b"``, ...).
    """
    port = free_port()
    env = {**env_with_repo(), "MABWARE_STORE": server.url, "MABWARE_TOKEN": WRITE, **settings}
    argv = [
        sys.executable, "-m", "uvicorn", "mw_app:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    log = directory / f"app-{port}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LIVENESS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited:\n{log.read_text(errors='replace')[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/whoami", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer:\n{log.read_text()[-4000:]}")
            time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)  # its workers push their last totals
        try:
            process.wait(timeout=LIVENESS)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
