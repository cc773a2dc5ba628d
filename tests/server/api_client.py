"""What the REST API tests share: an in-process client and real uvicorn servers.

``Client`` drives ``create_app`` in this process (httpx's ASGITransport,
the app's lifespan entered and left like a server would). ``uvicorn_server``
runs it in a real uvicorn process on a loopback port, for what only a real
server shows: two workers on one store, a body streamed for seconds, the
server's memory.
"""

from __future__ import annotations

import asyncio
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
from starlette.applications import Starlette

TOKEN = "write-t0ken"
READ_TOKEN = "read-t0ken"
WRITE = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
PROBLEM = "application/problem+json"
ROOT = Path(__file__).resolve().parents[2]


class Client:
    """A blocking client for an ASGI app, one event loop for its whole life."""

    def __init__(self, app: Starlette, headers: dict[str, str] | None = None) -> None:
        self._runner = asyncio.Runner()
        self._lifespan = app.router.lifespan_context(app)
        self._runner.run(self._lifespan.__aenter__())
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers=headers or {},
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.run(self._lifespan.__aexit__(None, None, None))
        self._runner.close()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 body of ``response``, after checking its status and media type."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVE = """
import json, sys, uvicorn
from mabware.server import create_app
app = create_app(sys.argv[1], **json.loads(sys.argv[2]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


@dataclass(frozen=True)
class Running:
    """A uvicorn process serving ``create_app``."""

    url: str
    pid: int

    def rss(self) -> int:
        """The process's resident memory, in bytes (Linux ``/proc``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


@contextlib.contextmanager
def uvicorn_server(store_url: str, log: Path, **settings: Any) -> Iterator[Running]:
    """``create_app(store_url, **settings)`` under uvicorn until the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVE, store_url, json.dumps(settings), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            running = Running(f"http://127.0.0.1:{port}", process.pid)
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(running.url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.05)
            yield running
        finally:
            process.terminate()
            process.wait(timeout=30)


@dataclass
class Served:
    """A ``mabware serve`` command running as a subprocess (``serve_command``)."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    #: its exit code after the SIGTERM at the end of the block; None if it had to be killed
    code: int | None = None


@contextlib.contextmanager
def serve_command(
    tmp_path: Path, args: list[str], env: dict[str, str], timeout: float = 30.0
) -> Iterator[Served]:
    """``python -m mabware serve --port P ARGS`` until the block ends, then SIGTERM.

    ``env`` is the whole environment (the repository is put on its
    PYTHONPATH); the block starts once ``/health`` answers.
    """
    port = free_port()
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mabware", "serve", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{served.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            served.code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
