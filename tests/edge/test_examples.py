"""examples/edge_job.py and examples/edge_http.py, run as users run them, against a real server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from harness import (
    COOKIE_KEY,
    LIVENESS,
    PUSH,
    READ,
    ROOT,
    Server,
    env_with_repo,
    free_port,
    signing_server,
    wait_for,
)

EXAMPLES = ROOT / "examples"


@pytest.fixture
def server(tmp_path: Path):
    with signing_server(tmp_path) as running:
        yield running


def example_env(server: Server, **more: str) -> dict[str, str]:
    return {
        **env_with_repo(),
        "MABWARE_URL": server.url,
        "MABWARE_PUBLIC_KEY": server.public_key,
        "MABWARE_READ_TOKEN": READ,
        "MABWARE_PUSH_TOKEN": PUSH,
        **more,
    }


def test_the_batch_job_chooses_for_10000_users_and_the_server_counts_them(
    server: Server,
) -> None:
    server.create("subject", ["plain", "question", "emoji"])
    job = subprocess.run(
        [sys.executable, str(EXAMPLES / "edge_job.py")],
        env=example_env(server),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert job.returncode == 0, job.stderr
    summary = json.loads(job.stdout.strip().splitlines()[-1])
    assert summary["pushed"] is True
    assert sum(summary["sent"].values()) == 10_000
    assert set(summary["sent"]) == {"plain", "question", "emoji"}
    opened = sum(summary["opened"].values())
    assert wait_for(lambda: server.totals("subject") == (10_000, opened))
    arms = server.arms("subject")
    assert {arm: arms[arm]["pulls"] for arm in summary["sent"]} == summary["sent"]


def test_the_batch_job_says_what_is_missing(server: Server) -> None:
    job = subprocess.run(
        [sys.executable, str(EXAMPLES / "edge_job.py")],
        env=example_env(server),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert job.returncode == 1
    assert "'subject' is not in the snapshot" in job.stderr


def arm_of(page: str) -> tuple[str, str]:
    found = re.search(r"arm=(\S+) reason=(\S+)", page)
    assert found is not None, page
    return found.group(1), found.group(2)


def test_the_stdlib_server_decides_keeps_the_cookie_and_pushes_on_sigterm(
    server: Server, tmp_path: Path
) -> None:
    server.create("headline", ["control", "bold"])
    port = free_port()
    env = example_env(
        server,
        MABWARE_SECRET_KEY=COOKIE_KEY,
        EDGE_REFRESH_INTERVAL="0.2",
        EDGE_PUSH_INTERVAL="0.2",
    )
    log = tmp_path / "edge_http.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "edge_http.py"), str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        probes = []  # a probe is a visitor too: counted once it is "sampled"

        def learning() -> bool:  # up, and deciding from a snapshot (not the defaults)
            try:
                probes.append(arm_of(httpx.get(url, timeout=2).text)[1])
            except httpx.TransportError:
                return False
            return probes[-1] == "sampled"

        assert wait_for(learning), log.read_text()
        visitors, bought = 20, 0
        for visitor in range(visitors):
            with httpx.Client() as browser:
                first = browser.get(url)
                arm, reason = arm_of(first.text)
                assert reason == "sampled"
                assert first.headers["set-cookie"].startswith("mabware=")
                again = browser.get(url)
                assert arm_of(again.text) == (arm, "cookie")  # sticky
                assert "set-cookie" not in again.headers  # unchanged, not rewritten
                if visitor % 2 == 0:
                    assert browser.get(url + "buy").text == "Thank you!"
                    assert browser.get(url + "buy").text == "Nothing to reward."  # once
                    bought += 1
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=LIVENESS) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert set(probes[:-1]) <= {"no_snapshot"}  # the defaults, before the first snapshot
    expected = (visitors + 1, float(bought))  # + the probe that saw the first snapshot
    assert wait_for(lambda: server.totals("headline") == expected), server.totals("headline")
