"""Redis sync benchmark: many replicas merging into one redis-server at once.

    python bench/sync_redis.py            # 100 clients x 1,000 merges, appendfsync always
    python bench/sync_redis.py --fsync always,everysec
    python bench/sync_redis.py --quick    # 10 clients x 100 merges (a smoke run)

Each run starts a fresh ``redis-server`` (Debian's package) on loopback
with AOF on and the given ``appendfsync`` policy, in a temporary
directory. The clients are threads spread over one process per CPU; each
is one replica with its own ``RedisBackend`` (its own connection) and
pushes its cumulative totals with a rising seq, exactly as a
``SharedStore`` does, as fast as it can. Every exchange is the whole round
trip: the Lua merge, the reply with every replica's blob, and decoding
them all into a ``SharedState``.

At the end the totals are checked: every replica at its last seq, every
replica's reward sum bit for bit what its client summed (0.1 added once
per merge), the combined pulls exactly clients x merges. The run exits
non-zero if any check fails.

A second table times one client alone against a state of 1, 10 and 100
replicas: the exchange, and the same merge as a bare script call (Redis,
the fsync and the network, the reply left undecoded), which shows where
the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import msgpack  # noqa: E402
import redis  # noqa: E402
from _markdown import num, table  # noqa: E402
from _regret_report import machine  # noqa: E402

from mabware.statistics import Statistics  # noqa: E402
from mabware.store.merge import Replica, Tally, combined, replica_to_wire  # noqa: E402
from mabware.store.redis import RedisBackend  # noqa: E402

KEY = ("headline", 1)
ARMS = ("a", "b")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server(fsync: str) -> Iterator[str]:
    """A fresh redis-server with AOF on; its URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="mabware-redis-") as directory:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", fsync, "--dir", directory,
             "--logfile", os.path.join(directory, "redis.log")],
        )  # fmt: skip
        client = redis.Redis(port=port)
        try:
            for _ in range(500):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.02)
            else:
                raise RuntimeError("redis-server did not answer PING")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            client.close()
            server.kill()
            server.wait(timeout=10)


def push(seq: int, reward: float, seen: float | None = None) -> Replica:
    """A replica's cumulative totals after ``seq`` merges (arm a: seq pulls, b: one)."""
    stats = Statistics.from_counts([seq, 1], [reward, 0.0])
    return Replica(seq, time.time() if seen is None else seen, {KEY: Tally(ARMS, stats)})


def worker(url: str, rids: list[str], merges: int, start: Any, results: Any) -> None:
    """One process: its clients as threads, each timing every exchange."""
    out: dict[str, tuple[float, list[float]]] = {}

    def client(rid: str) -> None:
        backend = RedisBackend(url)
        reward, latencies = 0.0, []
        for seq in range(1, merges + 1):
            reward += 0.1
            one = push(seq, reward)
            began = time.perf_counter()
            backend.exchange(rid, one)
            latencies.append(time.perf_counter() - began)
        backend.close()
        out[rid] = (reward, latencies)

    threads = [threading.Thread(target=client, args=(rid,)) for rid in rids]
    start.wait()
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((began, time.time(), out))


def concurrent_run(fsync: str, clients: int, merges: int) -> tuple[list[object], bool]:
    """One table row: clients x merges against a fresh server; and whether totals were exact."""
    processes = min(os.cpu_count() or 1, clients)
    rids = [f"client-{i:03d}" for i in range(clients)]
    ctx = mp.get_context("spawn")
    with redis_server(fsync) as url:
        start, results = ctx.Barrier(processes), ctx.Queue()
        procs = [
            ctx.Process(target=worker, args=(url, rids[i::processes], merges, start, results))
            for i in range(processes)
        ]
        for p in procs:
            p.start()
        parts = [results.get() for _ in procs]
        for p in procs:
            p.join()
            if p.exitcode:
                raise RuntimeError(f"a worker process failed (exit code {p.exitcode})")
        wall = max(end for _, end, _ in parts) - min(began for began, _, _ in parts)
        finals = {rid: res for _, _, out in parts for rid, res in out.items()}
        backend = RedisBackend(url)
        state = backend.read()
        backend.close()
    exact = (
        set(state.replicas) == set(rids)
        and all(r.seq == merges for r in state.replicas.values())
        and all(
            r.tallies[KEY].stats.reward_sum[0] == finals[rid][0]
            for rid, r in state.replicas.items()
        )
        and combined(state, KEY, ARMS, 0).pulls.tolist() == [clients * merges, clients]
    )
    latencies = sorted(x for _, lat in finals.values() for x in lat)
    total = clients * merges
    row: list[object] = [
        fsync, clients, f"{merges:,}", f"{total:,}", num(wall, 1), f"{total / wall:,.0f}",
        num(latencies[len(latencies) // 2] * 1e3), num(latencies[int(len(latencies) * 0.99)] * 1e3),
        "yes" if exact else "**NO**",
    ]  # fmt: skip
    return row, exact


def scaling_table(sizes: tuple[int, ...], n: int) -> str:
    """One client alone, the state holding ``size`` replicas: ms per exchange and per script."""
    rows, rid = [], "replica-000"
    with redis_server("always") as url:
        backend = RedisBackend(url)
        for size in sizes:
            backend._redis.flushdb()
            for i in range(size):
                backend.exchange(f"replica-{i:03d}", push(1, 0.1))
            exchange, script = [], []
            for k in range(n):
                seq = 2 + 2 * k
                began = time.perf_counter()
                backend.exchange(rid, push(seq, 0.1))
                exchange.append(time.perf_counter() - began)
                # the same merge through the backend's private script, reply undecoded
                blob = msgpack.packb(replica_to_wire(rid, push(seq + 1, 0.1)), use_bin_type=True)
                began = time.perf_counter()
                backend._script(keys=backend._keys, args=[rid, str(seq + 1), blob])
                script.append(time.perf_counter() - began)
            rows.append(
                [size, num(statistics.median(exchange) * 1e3), num(statistics.median(script) * 1e3)]
            )
        backend.close()
    return table(
        ["replicas in the state", "exchange, ms (median)", "bare merge script, ms (median)"], rows
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 clients x 100 merges")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--merges", type=int, default=1000, help="merges per client")
    parser.add_argument(
        "--fsync", default="always", help="appendfsync policies, comma-separated (always,everysec)"
    )
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed: apt-get install redis-server")
    clients, merges = (10, 100) if args.quick else (args.clients, args.merges)
    command = "python " + " ".join(["bench/sync_redis.py", *(argv or sys.argv[1:])])
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Command: `{command}`  \nMachine: {machine()}  \nDate: {date}\n", flush=True)
    rows, all_exact, began = [], True, time.perf_counter()
    for fsync in args.fsync.split(","):
        row, exact = concurrent_run(fsync, clients, merges)
        rows.append(row)
        all_exact &= exact
    headers = ["appendfsync", "clients", "merges each", "merges", "seconds", "merges/s",
               "exchange p50, ms", "exchange p99, ms", "totals exact"]  # fmt: skip
    print(table(headers, rows))
    print()
    print(scaling_table((1, 10, 100), 100 if args.quick else 500))
    print(f"\nWall time: {time.perf_counter() - began:.0f} s")
    if not all_exact:
        sys.exit("the combined totals are NOT exact")


if __name__ == "__main__":
    main()
