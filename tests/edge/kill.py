"""SIGKILL while an SDK process pushes: the scenario of a test and of ``bench/edge_kill9.py``.

A child process (``sdk_child.py forever``) decides and rewards in a loop and
pushes every 0.05 s through a transport that logs each push's totals before
it is sent and its seq after the server acknowledged it. ``kill_while_pushing``
SIGKILLs it at a random moment and reads the server's merged state once: the
server must hold, for that replica, exactly the totals of one logged push, at
or after the last acknowledged one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import HERE, LIVENESS, PUSH, READ, WRITE, Server, env_with_repo, wait_for

from mabware.store.merge import SharedState, unpack


@dataclass
class Killed:
    """What one kill left: the last acknowledged seq, the seq the server holds, the logs."""

    replica: str
    acked: int
    held: int
    logged: dict[int, dict[str, Any]]
    totals: dict[str, dict[str, float]]


def kill_while_pushing(
    server: Server, experiment: str, log: Path, delay: tuple[float, float] = (0.2, 1.2)
) -> Killed:
    """Run a pushing child, SIGKILL it after a random delay (seconds) past its first ack."""
    process = child("forever", child_settings(server, experiment, log=str(log)))
    try:
        if not wait_for(lambda: log.exists() and '"ack"' in log.read_text("utf-8")):
            raise AssertionError("the child never had a push acknowledged")
        time.sleep(random.uniform(*delay))
        if process.poll() is not None:
            raise AssertionError(f"the child exited early ({process.returncode})")
    finally:
        os.kill(process.pid, signal.SIGKILL)  # a zombie until waited for: never ESRCH
        process.wait(timeout=LIVENESS)
    replica, logged, acked = read_log(log)
    # one read: a push in flight at the kill may still land, before it or after
    state = merged_state(server)
    held = state.replicas[replica].seq
    return Killed(replica, acked, held, logged, replica_totals(state, replica, experiment))


def merged_state(server: Server) -> SharedState:
    """The server's merged state as stored (``GET /snapshot``: no sync lag)."""
    answer = httpx.get(f"{server.url}/snapshot", headers=server.headers(WRITE))
    assert answer.status_code == 200, answer.text
    return unpack(answer.content)


def replica_totals(state: SharedState, replica: str, name: str) -> dict[str, dict[str, float]]:
    """Per arm, the pulls and reward sum the server holds of one replica."""
    pulls: dict[str, float] = {}
    rewards: dict[str, float] = {}
    for (experiment, _version), tally in state.replicas[replica].tallies.items():
        if experiment == name:
            for i, arm in enumerate(tally.arms):
                pulls[arm] = pulls.get(arm, 0.0) + float(tally.stats.pulls[i])
                rewards[arm] = rewards.get(arm, 0.0) + float(tally.stats.reward_sum[i])
    return {"pulls": pulls, "rewards": rewards}


def read_log(path: Path) -> tuple[str, dict[int, dict[str, Any]], int]:
    """The child's replica id, the totals it logged per seq, and the last seq acknowledged."""
    lines = path.read_text("utf-8").split("\n")
    if lines[-1]:  # a line torn by the kill: it was never sent
        lines.pop()
    pushes: dict[int, dict[str, Any]] = {}
    acked = 0
    replicas = set()
    for line in filter(None, lines):
        entry = json.loads(line)
        if "ack" in entry:
            acked = max(acked, entry["ack"])
            continue
        replicas.add(entry.pop("replica"))
        seq = entry.pop("seq")
        # a push resent after a failure is the same body: the same totals
        assert pushes.setdefault(seq, entry) == entry
    assert len(replicas) == 1, replicas
    return replicas.pop(), pushes, acked


def child(mode: str, settings: dict[str, Any], **options: Any) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(HERE / "sdk_child.py"), mode, json.dumps(settings)]
    return subprocess.Popen(argv, env=env_with_repo(), **options)


def child_settings(server: Server, experiment: str, **more: Any) -> dict[str, Any]:
    return {
        "url": server.url,
        "public_key": server.public_key,
        "read_token": READ,
        "push_token": PUSH,
        "experiment": experiment,
        **more,
    }
