"""Run an example app under a real server on loopback, and check it like a browser.

Every framework test starts its example from examples/ with the server the
issue names (uvicorn, hypercorn, gunicorn) as a subprocess on a free
loopback port, then drives it with httpx. The checks are the same for every
framework, because the behaviour comes from one engine.

Every example serves:
    GET /       the page; its body names the visitor's headline arm
    GET /buy    rewards the headline experiment (value 1.0)
    GET /stats  ``engine.report()`` as JSON
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ARMS = ("control", "bold")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(argv: list[str], port: int, *, timeout: float = 30.0) -> Iterator[str]:
    """Start ``argv`` (a server bound to 127.0.0.1:port) from examples/; yield its URL."""
    path = os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    log = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", *argv],
        cwd=EXAMPLES,
        env=env,
        stdout=log,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                err = server.stderr.read().decode() if server.stderr else ""
                raise RuntimeError(f"{argv[0]} exited with {server.returncode}:\n{err}")
            try:
                httpx.get(f"{url}/stats", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv} did not answer on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        if server.stderr:
            server.stderr.close()
        log.close()


def arm_in(body: str) -> str:
    found = [arm for arm in ARMS if f"arm={arm}" in body]
    assert len(found) == 1, body
    return found[0]


def check_example(url: str) -> None:
    """First visit sets the cookie; 20 returning visits keep the arm; a reward is counted."""
    with httpx.Client(base_url=url, timeout=10.0) as browser:
        first = browser.get("/")
        assert first.status_code == 200
        set_cookie = first.headers.get_list("set-cookie")
        assert len(set_cookie) == 1
        assert set_cookie[0].startswith("mabware=")
        assert "HttpOnly" in set_cookie[0]
        assert "SameSite=Lax" in set_cookie[0]
        arm = arm_in(first.text)
        for _ in range(20):
            again = browser.get("/")
            assert again.status_code == 200
            assert arm_in(again.text) == arm
            assert "mabware=" not in again.headers.get("set-cookie", "")
        before = browser.get("/stats").json()["experiments"]["headline"]["arms"][arm]
        assert before["pulls"] >= 1
        assert browser.get("/buy").status_code == 200
        after = browser.get("/stats").json()["experiments"]["headline"]["arms"][arm]
        assert after["reward_sum"] == before["reward_sum"] + 1.0
        assert browser.get("/buy").status_code == 200  # reward_mode "once": not counted twice
        again_after = browser.get("/stats").json()["experiments"]["headline"]["arms"][arm]
        assert again_after["reward_sum"] == after["reward_sum"]
    with httpx.Client(base_url=url, timeout=10.0) as bot:
        crawler = bot.get("/", headers={"User-Agent": "Googlebot/2.1"})
        assert crawler.status_code == 200
        assert "set-cookie" not in crawler.headers
        assert arm_in(crawler.text) == "control"  # the default arm
    with httpx.Client(base_url=url, timeout=10.0) as tampered:
        tampered.cookies.set("mabware", "invalid")
        fresh = tampered.get("/")
        assert fresh.status_code == 200
        assert fresh.headers["set-cookie"].startswith("mabware=")
