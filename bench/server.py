"""Server benchmark: /decision and /reward per second, next to the E-Commerce Optimizer's design.

    python bench/server.py            # the README's table (about 3 minutes)
    python bench/server.py --quick    # smoke-run size (about 40 s)

Each server runs under uvicorn (one worker, access log off) pinned to CPU
0 with ``taskset``; the load comes from client processes pinned to CPU 1,
each with one keep-alive connection, sending requests back to back (so a
row measures what one core of server does, and the ratios between rows are
what to read: the machine is shared and noisy). Rows:

* ``mabware serve --store file:...``: the embedded default;
* ``mabware serve --store redis://...``: the same server on a local
  ``redis-server`` (AOF off, no snapshots: the disk is not measured);
* the MAB E-Commerce Optimizer's design (``bench/_ecommerce_design.py``):
  every decision reads each arm's counters from Redis (one round trip per
  arm) and draws from the arms' Beta posteriors; a reward is one
  transaction on the arm's hash. Same Redis, same load.

mabware's server decides from an allocation kept in memory (recomputed at
most every 50 ms while statistics move) and counts pulls and rewards in
its replica's counters, pushed to the store once a second; no store round
trip is on a request's path. The last table is ``POST /sync`` pushes per
second (``bench/sync.py``'s pushes table, run here in the same session).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import sync as sync_bench  # noqa: E402
from _markdown import num, table  # noqa: E402
from _regret_report import machine  # noqa: E402

ARMS = {3: ["a0", "a1", "a2"], 10: [f"a{i}" for i in range(10)]}


def _wait_for(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(400):
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


@contextlib.contextmanager
def running(argv: Sequence[str], port: int, what: str, env: dict[str, str] | None = None,
            cpu: int | None = 0) -> Iterator[None]:  # fmt: skip
    """A process listening on ``port`` (pinned to ``cpu``), stopped on exit."""
    if cpu is not None and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        argv = ["taskset", "-c", str(cpu), *argv]
    process = subprocess.Popen(
        argv, env={**os.environ, "PYTHONPATH": f"{HERE.parent}:{HERE}", **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(port, process, what)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def redis_server(directory: str) -> Iterator[str]:
    port = sync_bench.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", directory]  # fmt: skip
    with running(argv, port, "redis-server", cpu=None):
        yield f"redis://127.0.0.1:{port}/0"


def client(port: int, arms: list[str], path: str, seconds: float, start: Any,
           results: Any) -> None:  # fmt: skip
    """Send ``path`` requests back to back on one keep-alive connection."""
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    bodies = [
        json.dumps({"experiment_id": "cta", "arm_id": arms[i % len(arms)],
                    "reward": float(i % 10 == 0)}).encode()
        for i in range(1000)
    ]  # fmt: skip
    done = failed = 0
    start.wait()
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        if path == "/decision":
            connection.request("GET", "/decision?experiment_id=cta")
        else:
            connection.request("POST", "/reward", body=bodies[done % 1000], headers=headers)
        response = connection.getresponse()
        response.read()
        done += 1
        failed += response.status != 200
    connection.close()
    results.put((done, failed))


def load(port: int, arms: list[str], path: str, clients: int, seconds: float) -> tuple[float, int]:
    """Requests per second and failures of ``clients`` connections on ``path``."""
    parts, wall = sync_bench.timed_clients(client, [(port, arms, path, seconds)] * clients)
    return sum(d for d, _ in parts) / wall, sum(f for _, f in parts)


def create(port: int, arms: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"experiment_id": "cta", "arm_ids": arms, "strategy": "thompson"})
    connection.request("POST", "/experiments", body=body,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    response = connection.getresponse()
    response.read()
    if response.status != 201:
        raise RuntimeError(f"POST /experiments answered {response.status}")


def rows_for(n_arms: int, clients: int, seconds: float) -> list[list[object]]:
    arms = ARMS[n_arms]
    out: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="mabware-bench-") as directory, \
            redis_server(directory) as redis_url:  # fmt: skip
        servers = {
            "mabware serve, file store": (
                ["-m", "mabware", "serve", "--store", f"file:{directory}/state"], {}),
            "mabware serve, Redis store": (
                ["-m", "mabware", "serve", "--store", redis_url], {}),
            "E-Commerce Optimizer design (Redis, a round trip per arm)": (
                ["-m", "uvicorn", "--factory", "_ecommerce_design:create_app", "--no-access-log",
                 "--log-level", "warning"], {"ECOMMERCE_REDIS": redis_url}),
        }  # fmt: skip
        for name, (args, env) in servers.items():
            port = sync_bench.free_port()
            argv = [sys.executable, *args, "--port", str(port)]
            with running(argv, port, name, env):
                create(port, arms)
                decisions, bad_d = load(port, arms, "/decision", clients, seconds)
                rewards, bad_r = load(port, arms, "/reward", clients, seconds)
            out.append([name, n_arms, f"{decisions:,.0f}", f"{rewards:,.0f}", bad_d + bad_r])
    base_d = float(out[-1][2].replace(",", ""))  # type: ignore[union-attr]
    for row in out:
        row.insert(3, num(float(str(row[2]).replace(",", "")) / base_d) + "x")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-run size")
    args = parser.parse_args(argv)
    seconds, clients = (3.0, 4) if args.quick else (10.0, 8)
    command = "python bench/server.py" + (" --quick" if args.quick else "")
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Command: `{command}`  \nMachine: {machine()}  \nDate: {date}\n")
    print(f"{clients} keep-alive clients on CPU 1, server on CPU 0, {seconds:g} s per cell.\n")
    rows = rows_for(3, clients, seconds) + rows_for(10, clients, seconds)
    print(table(["server", "arms", "/decision per s", "vs E-Commerce design", "/reward per s",
                 "non-200 answers"], rows))  # fmt: skip
    print("\nPOST /sync pushes per second (8 replicas pushing back to back).\n")
    print(sync_bench.pushes_table(clients=8, seconds=seconds))


if __name__ == "__main__":
    main()
