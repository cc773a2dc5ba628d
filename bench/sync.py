"""Sync benchmark: what learning across processes costs and what it saves.

    python bench/sync.py            # the README's tables (about 9 minutes on 2 cores)
    python bench/sync.py --quick    # every table at smoke-run size (about 80 s)
    python bench/sync.py --only cycle   # one table (repeat --only for more)

Four tables:

1. Regret of 4 workers that sync every second vs one process. The seed
   protocol (``mabware.simulate.reference.reference_environments()``: 20
   four-arm Bernoulli environments x 2,000 rounds), Thompson sampling, 100
   requests/s spread round-robin over 4 simulated workers (25 rounds per
   second of simulated time each). Each worker is a real ``SharedStore``
   on an in-memory backend with a fake clock, first syncing at its own
   random phase, then on the sync thread's own schedule
   (``SharedStore.next_sync_delay`` with ``sync_interval`` 1 s: sooner
   while an experiment is young) or, for comparison, every 1 s or 0.2 s
   exactly; before every round it serves, its allocation is
   recomputed from ``SharedStore.statistics`` (the merged state it last
   pulled plus its own live counts: exactly what serving reads). The
   single process recomputes from its ``Store`` before every round. Same
   environments and the same reward stream (one uniform per round) for
   every row; the ratio's interval is a paired bootstrap over runs.
2. Sync cycle time: 8 worker processes, each a ``SharedStore`` of 100
   experiments x 10 arms on one ``file:`` store, each calling ``sync()``
   every interval at its own phase after recording some traffic. A cycle
   is the whole ``sync()``: totals, the exchange (flock, read, unpack,
   merge, pack, write, fsync, rename, directory fsync) and the recompute of
   every experiment's merged statistics; "exchange" is the backend part.
3. ``POST /sync`` pushes per second against ``mabware serve`` (file
   store) pinned to one core with ``taskset``; 8 client processes (8
   replicas, 3 experiments x 3 arms each) on the other core push with
   rising seqs over keep-alive connections as fast as the server answers.
   At the end the state must hold every client's replica at its last seq.
   The server group-commits: pushes that arrive while a write is under way
   share the next write (``mabware.server.sync``).
4. Flask-MAB's ``JSONBanditStorage`` pattern next to mabware's file store,
   4 processes each: Flask-MAB loads the JSON file when a process starts
   and after every request rewrites the whole file (``open(path,
   "w").write(json_bandits)``: no lock, no atomic rename), so the last
   writer's counts replace everyone else's; mabware's processes push
   cumulative totals that merge per replica. A reader thread parses the
   file every millisecond meanwhile (a process starting then would load
   what it reads; Flask-MAB's ``load()`` turns a torn file into ``{}``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import msgpack  # noqa: E402
import numpy as np  # noqa: E402
from _markdown import num, table  # noqa: E402
from _regret_report import machine  # noqa: E402

from mabware import Engine, Experiment, assign, policies  # noqa: E402
from mabware.simulate.reference import reference_environments, run_reference  # noqa: E402
from mabware.statistics import Statistics  # noqa: E402
from mabware.store import SharedStore, Store  # noqa: E402
from mabware.store.file import FileBackend  # noqa: E402
from mabware.store.merge import (  # noqa: E402
    Replica,
    SharedState,
    Tally,
    merge,
    replica_to_wire,
    unpack,
)
from mabware.store.report import summary  # noqa: E402
from mabware.testing import TEST_KEYS, FakeClock  # noqa: E402

SPAWN = mp.get_context("spawn")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


# -- 1. regret: 4 workers syncing every second vs one process ------------------------------


class MemoryBackend:
    """The merged state in this process (the simulated workers share one)."""

    def __init__(self) -> None:
        self.state = SharedState()

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        self.state = merge(self.state, replica_id, push)
        return self.state

    def read(self) -> SharedState:
        return self.state

    def close(self) -> None:
        pass


REQUESTS_PER_SECOND = 100.0


def play(rates: tuple[float, ...], rounds: int, seed: Sequence[int], workers: int,
         sync_every: float | None, triggered: bool = False) -> tuple[float, int]:  # fmt: skip
    """Final pseudo-regret of one run and its syncs. ``workers=1, sync_every=None``: one process.

    ``sync_every=inf``: the workers never sync (each learns alone).
    ``triggered``: each worker looks when ``SharedStore.next_sync_delay`` says
    and syncs when it answers 0 (what the sync thread does, ``sync_every``
    its ``sync_interval``); otherwise it syncs every ``sync_every`` exactly.
    """
    exp = Experiment("e", [f"arm{i}" for i in range(len(rates))],
                     policy=policies.ThompsonSampling())  # fmt: skip
    rewards_u = np.random.default_rng([*seed, 0]).random(rounds)  # the same for every row
    policy_rng = np.random.default_rng([*seed, 1])
    pick = random.Random(int(np.random.default_rng([*seed, 2]).integers(2**63)))
    clock = FakeClock(0.0)
    stores: list[Store]
    next_sync = [float("inf")] * workers
    if sync_every is None:
        stores = [Store([exp])]
    else:
        backend = MemoryBackend()
        interval = sync_every if triggered else 1.0
        stores = [
            SharedStore([exp], backend, scheme="memory", sync_interval=interval, clock=clock)
            for _ in range(workers)
        ]
        if np.isfinite(sync_every):
            next_sync = [pick.uniform(0.0, sync_every) for _ in range(workers)]
    best = max(rates)
    regret = 0.0
    syncs = 0
    for t in range(rounds):
        now = t / REQUESTS_PER_SECOND
        for w, store in enumerate(stores):
            while next_sync[w] <= now:
                clock.now = next_sync[w]
                assert isinstance(store, SharedStore)
                assert sync_every is not None
                delay = store.next_sync_delay(clock.now) if triggered else 0.0
                if delay == 0.0:
                    if not store.sync():
                        raise RuntimeError("an in-memory sync failed")
                    syncs += 1
                    delay = store.next_sync_delay(clock.now) if triggered else sync_every
                next_sync[w] += delay
        store = stores[t % workers]
        allocation = exp.decide(store.statistics("e", now), policy_rng)
        arm = assign.sample(allocation.cumulative, pick)
        store.add_pull("e", arm, now)
        if rewards_u[t] < rates[arm]:
            store.add_reward("e", arm, 1.0, allocation.probabilities[arm], now)
        regret += best - rates[arm]
    return regret, syncs


ROWS = {  # name -> (workers, sync_every, triggered)
    "1 process (learns after every reward)": (1, None, False),
    "4 workers, sync_interval 1 s (sooner while young)": (4, 1.0, True),
    "4 workers, fixed schedule: every 1 s": (4, 1.0, False),
    "4 workers, fixed schedule: every 0.2 s": (4, 0.2, False),
    "4 workers, never sync (each learns alone)": (4, float("inf"), False),
}


def _play_task(task: tuple[str, int, int, int]) -> tuple[str, int, int, tuple[float, int]]:
    name, env, replicate, rounds = task
    workers, sync_every, triggered = ROWS[name]
    rates = reference_environments()[env]
    return name, env, replicate, play(rates, rounds, (env, replicate), workers, sync_every,
                                      triggered)  # fmt: skip


def regret_table(replicates: int, rounds: int, jobs: int) -> str:
    envs = len(reference_environments())
    tasks = [(name, e, r, rounds) for r in range(replicates) for e in range(envs) for name in ROWS]
    with SPAWN.Pool(jobs) as pool:
        results = pool.map(_play_task, tasks, chunksize=4)
    by_row: dict[str, dict[tuple[int, int], float]] = {name: {} for name in ROWS}
    syncs: dict[str, list[int]] = {name: [] for name in ROWS}
    for name, env, replicate, (regret, count) in results:
        by_row[name][env, replicate] = regret
        syncs[name].append(count)
    keys = sorted(by_row["1 process (learns after every reward)"])
    single = np.array([by_row["1 process (learns after every reward)"][k] for k in keys])
    boot = np.random.default_rng(0)
    picks = boot.integers(0, len(keys), size=(2000, len(keys)))
    rows = []
    for name, runs in by_row.items():
        values = np.array([runs[k] for k in keys])
        ratios = values[picks].mean(axis=1) / single[picks].mean(axis=1)
        rows.append([
            name, num(values.mean()), num(np.median(values)),
            f"{num(np.percentile(values, 10))}-{num(np.percentile(values, 90))}",
            num(values.mean() / single.mean()),
            f"{num(np.percentile(ratios, 5))}-{num(np.percentile(ratios, 95))}",
            num(np.mean(syncs[name]) / ROWS[name][0], 1) if ROWS[name][1] else "-",
        ])  # fmt: skip
    reference = run_reference("thompson", rounds).mean_regret
    rows.append(["reference protocol's own TS loop (per-round Beta draw)", num(reference),
                 "-", "-", "-", "-", "-"])  # fmt: skip
    return table(
        ["Thompson sampling, 100 requests/s", "mean regret", "median", "p10-p90",
         "x 1 process", "90% interval", f"syncs per worker in {rounds / REQUESTS_PER_SECOND:g} s"],
        rows,
    )  # fmt: skip


# -- 2. sync cycle time: 8 processes, 100 experiments x 10 arms, file store ------------------


class TimedBackend:
    """A backend that records how long each exchange took."""

    def __init__(self, inner: FileBackend) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        began = time.perf_counter()
        try:
            return self.inner.exchange(replica_id, push)
        finally:
            self.seconds.append(time.perf_counter() - began)

    def read(self) -> SharedState:
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()


def many_experiments(count: int, arms: int) -> list[Experiment]:
    return [Experiment(f"exp{e:03d}", [f"arm{a}" for a in range(arms)]) for e in range(count)]


def cycle_worker(path: str, index: int, cycles: int, interval: float, experiments: int,
                 arms: int, start: Any, results: Any) -> None:  # fmt: skip
    """One worker process: record some traffic, ``sync()``, sleep to the next tick."""
    exps = many_experiments(experiments, arms)
    backend = TimedBackend(FileBackend(path))
    store = SharedStore(exps, backend, scheme="file", sync_interval=interval)
    rng = random.Random(index)
    start.wait()
    time.sleep(rng.uniform(0.0, interval))  # workers start at different moments
    cycles_s: list[float] = []
    tick = time.monotonic()
    for _ in range(cycles):
        now = time.time()
        for _ in range(50):  # the traffic of one interval: pulls and rewards here and there
            name, arm = exps[rng.randrange(experiments)].name, rng.randrange(arms)
            store.add_pull(name, arm, now)
            if rng.random() < 0.1:
                store.add_reward(name, arm, 1.0, None, now)
        began = time.perf_counter()
        if not store.sync():
            raise RuntimeError("a sync failed")
        cycles_s.append(time.perf_counter() - began)
        tick += interval
        time.sleep(max(0.0, tick - time.monotonic()))
    results.put((cycles_s, backend.seconds))


def durable_write_ms(trials: int = 20) -> float:
    """Median milliseconds of one atomic durable write of 10 KiB where the store lives (/tmp)."""
    times = []
    with tempfile.TemporaryDirectory(prefix="mabware-fsync-") as directory:
        backend = FileBackend(os.path.join(directory, "state"))
        for _ in range(trials):
            began = time.perf_counter()
            backend._write(SharedState(tombstones={f"r{i}": 0.0 for i in range(400)}))
            times.append(time.perf_counter() - began)
    return percentile(times, 50) * 1e3


def cycle_row(processes: int, experiments: int, arms: int, interval: float,
              cycles: int) -> list[object]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mabware-sync-") as directory:
        path = os.path.join(directory, "state")
        start, results = SPAWN.Barrier(processes), SPAWN.Queue()
        procs = [
            SPAWN.Process(target=cycle_worker,
                          args=(path, i, cycles, interval, experiments, arms, start, results))
            for i in range(processes)
        ]  # fmt: skip
        for p in procs:
            p.start()
        parts = [results.get() for _ in procs]
        for p in procs:
            p.join()
            if p.exitcode:
                raise RuntimeError(f"a sync worker failed (exit code {p.exitcode})")
        size = os.path.getsize(path)
        state = FileBackend(path).read()
    cycle = [x for c, _ in parts for x in c]
    exchange = [x for _, e in parts for x in e]
    if len(state.replicas) != processes:
        raise RuntimeError(f"{len(state.replicas)} replicas in the state, not {processes}")
    return [
        processes, f"{experiments} x {arms}", num(interval, 1), f"{len(cycle):,}",
        num(percentile(cycle, 50) * 1e3, 1), num(percentile(cycle, 99) * 1e3, 1),
        num(max(cycle) * 1e3, 1), num(percentile(exchange, 50) * 1e3, 1),
        num(percentile(exchange, 99) * 1e3, 1), f"{size / 1024:,.0f} KiB",
    ]  # fmt: skip


def cycle_table(settings: Sequence[tuple[int, int, int, float, int]]) -> str:
    """Rows of (processes, experiments, arms, interval, cycles per process)."""
    rows = [cycle_row(*setting) for setting in settings]
    return table(
        ["processes", "experiments x arms", "interval, s", "cycles", "sync p50, ms",
         "sync p99, ms", "sync max, ms", "exchange p50, ms", "exchange p99, ms",
         "state file"],
        rows,
    )  # fmt: skip


# -- 3. POST /sync pushes per second against `mabware serve` on one core -----------------------


SERVE_EXPERIMENTS = [(f"exp{e}", 1) for e in range(3)]
SERVE_ARMS = ("a", "b", "c")


def push_body(replica_id: str, seq: int) -> bytes:
    stats = Statistics.from_counts([seq, seq // 2, 1], [seq / 10, 0.0, 0.0])
    tallies = {key: Tally(SERVE_ARMS, stats) for key in SERVE_EXPERIMENTS}
    wire = replica_to_wire(replica_id, Replica(seq, time.time(), tallies))
    return msgpack.packb(wire, use_bin_type=True)  # type: ignore[no-any-return]


#: pushes each client builds before the clock starts (the rest are built as it goes)
PREBUILT = 4000


def push_client(port: int, replica_id: str, cpu: int | None, seconds: float, start: Any,
                results: Any) -> None:  # fmt: skip
    """Push with rising seqs over one keep-alive connection until ``seconds`` have passed."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/msgpack"}
    latencies: list[float] = []
    ready = [push_body(replica_id, seq) for seq in range(1, PREBUILT + 1)]  # off the clock
    seq = 0
    start.wait()
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        seq += 1
        body = ready[seq - 1] if seq <= PREBUILT else push_body(replica_id, seq)
        began = time.perf_counter()
        connection.request("POST", "/sync", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /sync answered {response.status}")
        latencies.append(time.perf_counter() - began)
    connection.close()
    results.put((replica_id, seq, latencies))


def timed_clients(target: Callable[..., None], argses: Sequence[tuple[Any, ...]]
                  ) -> tuple[list[Any], float]:  # fmt: skip
    """Run ``target(*args, start, results)`` in one spawned process per ``args``.

    They start together (a barrier), each puts one result; returns the
    results and the wall time from the start to the last result. A client
    that exits non-zero is an error.
    """
    start, results = SPAWN.Barrier(len(argses) + 1), SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*args, start, results)) for args in argses]
    for p in procs:
        p.start()
    start.wait()
    began = time.monotonic()
    parts = [results.get() for _ in procs]
    wall = time.monotonic() - began
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"a client process failed (exit code {p.exitcode})")
    return parts, wall


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(store: str, cpu: int | None) -> Iterator[int]:
    """``mabware serve --store STORE`` on a free loopback port, pinned to ``cpu``; its port."""
    port = free_port()
    argv = [sys.executable, "-m", "mabware", "serve", "--port", str(port), "--store", store]
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    server = subprocess.Popen(
        argv, env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(400):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("mabware serve did not start")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def pushes_row(store: str, clients: int, seconds: float) -> list[object]:
    """One row: ``clients`` replicas pushing to a fresh server with ``store`` for ``seconds``."""
    two_cores = (os.cpu_count() or 1) >= 2
    server_cpu, client_cpu = (0, 1) if two_cores else (None, None)
    with tempfile.TemporaryDirectory(prefix="mabware-serve-") as directory:
        url = store.replace("DIR", directory)
        with serve(url, server_cpu) as port:
            rids = [f"replica-{i:02d}" for i in range(clients)]
            parts, wall = timed_clients(
                push_client, [(port, rid, client_cpu, seconds) for rid in rids]
            )
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot", timeout=30) as r:
                state = unpack(r.read())
    last = {rid: seq for rid, seq, _ in parts}
    # Only the clients' replicas: the server keeps one of its own in the same state.
    exact = {rid: r.seq for rid, r in state.replicas.items() if rid in last} == last
    latencies = [x for _, _, lat in parts for x in lat]
    total = sum(last.values())
    pinned = "server on CPU 0, clients on CPU 1" if two_cores else "no pinning (1 CPU)"
    return [
        f"mabware serve --store {store.replace('DIR/', '')}", pinned, clients, num(wall, 1),
        f"{total:,}", f"{total / wall:,.0f}", num(percentile(latencies, 50) * 1e3),
        num(percentile(latencies, 99) * 1e3), "yes" if exact else "**NO**",
    ]  # fmt: skip


def pushes_table(clients: int, seconds: float) -> str:
    rows = [pushes_row(store, clients, seconds) for store in ("file:DIR/state", "memory:")]
    return table(
        ["server", "cores", "clients (replicas)", "seconds", "pushes", "pushes/s",
         "latency p50, ms", "latency p99, ms", "every client at its last seq"],
        rows,
    )  # fmt: skip


# -- 4. Flask-MAB's JSONBanditStorage pattern vs mabware's file store -----------------------------


ARMS = ("control", "bold")


def flask_mab_worker(path: str, requests: int, index: int, start: Any, results: Any) -> None:
    """One process in Flask-MAB's pattern: load at start, rewrite the file after every request."""

    def load() -> dict[str, Any]:  # JSONBanditStorage.load
        try:
            with open(path) as f:
                return dict(json.loads(f.read()))
        except (ValueError, OSError):
            return {}

    def save(bandits: dict[str, Any]) -> None:  # JSONBanditStorage.save, line for line
        json_bandits = json.dumps(bandits, indent=4)
        open(path, "w").write(json_bandits)  # noqa: SIM115 - no close, no lock: as Flask-MAB

    bandits = load()
    start.wait()
    rng = random.Random(index)
    for _ in range(requests):
        bandit = bandits.setdefault("headline", {"pulls": [0, 0], "reward": [0.0, 0.0]})
        arm = rng.randrange(len(ARMS))
        bandit["pulls"][arm] += 1
        bandit["reward"][arm] += 1.0
        save(bandits)
    results.put(index)


def mabware_worker(path: str, requests: int, index: int, start: Any, results: Any) -> None:
    """One process with mabware's engine on the file store: a rewarded new visitor per request."""
    engine = Engine(
        [Experiment("headline", list(ARMS))],
        secret_keys=list(TEST_KEYS),
        store=f"file:{path}",
        sync_interval=0.05,
    )
    engine.start()
    start.wait()
    for _ in range(requests):
        visit = engine.begin(None)
        if not visit.reward("headline", 1.0):
            raise RuntimeError("a reward was refused")
        engine.respond(visit, 200)
    engine.close()  # the final push: what the lifespan shutdown does
    results.put(index)


def flask_mab_count(path: str) -> float | None:
    try:
        doc = json.loads(Path(path).read_text())
    except (ValueError, OSError):
        return None
    return float(sum(doc.get("headline", {}).get("reward", [])))


def mabware_count(path: str) -> float | None:
    try:
        doc = summary(unpack(Path(path).read_bytes()), time.time())
    except (ValueError, OSError):
        return None
    return float(sum(a["reward_sum"] for a in doc["experiments"]["headline"]["arms"].values()))


def watch(path: str, parse: Callable[[bytes], object], stop: threading.Event,
          counts: list[int]) -> None:  # fmt: skip
    """Parse the file every millisecond; counts[0] reads, counts[1] failures."""
    while not stop.wait(0.001):
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            continue
        counts[0] += 1
        try:
            parse(data)
        except ValueError:  # json.JSONDecodeError and mabware's StateError are ValueErrors
            counts[1] += 1


def contention_row(name: str, worker: Callable[..., None], count: Callable[[str], float | None],
                   parse: Callable[[bytes], object], processes: int,
                   requests: int) -> list[object]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mabware-contention-") as directory:
        path = os.path.join(directory, "state")
        start, results = SPAWN.Barrier(processes + 1), SPAWN.Queue()
        procs = [SPAWN.Process(target=worker, args=(path, requests, i, start, results))
                 for i in range(processes)]  # fmt: skip
        for p in procs:
            p.start()
        stop, counts = threading.Event(), [0, 0]
        reader = threading.Thread(target=watch, args=(path, parse, stop, counts))
        reader.start()
        start.wait()
        began = time.monotonic()
        for _ in procs:
            results.get()
        seconds = time.monotonic() - began
        stop.set()
        reader.join()
        for p in procs:
            p.join()
            if p.exitcode:
                raise RuntimeError(f"a {name} worker failed (exit code {p.exitcode})")
        counted = count(path)
    sent = processes * requests
    lost = "file unparseable" if counted is None else f"{(sent - counted) / sent:.1%}"
    return [
        name, processes, f"{sent:,}", "unparseable" if counted is None else f"{counted:,.0f}",
        lost, f"{counts[1]:,} of {counts[0]:,}", num(seconds, 1),
    ]  # fmt: skip


def contention_table(processes: int, requests: int, repeats: int) -> str:
    rows = []
    for _ in range(repeats):
        rows.append(contention_row(
            "Flask-MAB JSONBanditStorage pattern", flask_mab_worker, flask_mab_count,
            json.loads, processes, requests,
        ))  # fmt: skip
        rows.append(contention_row(
            "mabware file: store", mabware_worker, mabware_count, unpack, processes, requests,
        ))  # fmt: skip
    return table(
        ["storage", "processes", "rewards sent", "rewards counted", "lost",
         "torn reads (of reads)", "seconds"],
        rows,
    )  # fmt: skip


#: the tables, in the order they print (``--only NAME`` picks some)
TABLES = ("regret", "cycle", "pushes", "contention")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every table at smoke-run size")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes for the regret simulation")  # fmt: skip
    parser.add_argument("--only", choices=TABLES, action="append",
                        help="run only this table (repeatable); default: all four")  # fmt: skip
    args = parser.parse_args(argv)
    quick = args.quick
    only = args.only or list(TABLES)
    command = "python bench/sync.py" + (" --quick" if quick else "")
    command += "".join(f" --only {name}" for name in args.only or [])
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Command: `{command}`  \nMachine: {machine()}  \nDate: {date}\n")

    if "regret" in only:
        replicates = 1 if quick else 10
        print(f"Regret, seed protocol: 20 environments x 2,000 rounds x {replicates} "
              f"replicate{'s' if replicates > 1 else ''}; 100 requests/s round-robin over "
              "the workers.\n")  # fmt: skip
        print(regret_table(replicates, 2000, args.jobs))
        print()
    if "cycle" in only:
        if quick:
            settings = [(1, 100, 10, 1.0, 5), (8, 100, 10, 1.0, 10), (8, 10, 3, 1.0, 10)]
        else:
            settings = [(1, 100, 10, 1.0, 30), (8, 100, 10, 1.0, 60), (8, 10, 3, 1.0, 60)]
        print(
            f"Sync cycle, file: store; {durable_write_ms():.1f} ms per durable write on this "
            "disk (fsync of the temp file, rename, fsync of the directory).\n"
        )
        print(cycle_table(settings))
        print()
    if "pushes" in only:
        print("POST /sync throughput.\n")
        print(pushes_table(clients=8, seconds=3.0 if quick else 10.0))
        print()
    if "contention" in only:
        requests = 500 if quick else 5000
        print(f"Rewards sent vs counted: {requests:,} rewarded requests per process.\n")
        print(contention_table(processes=4, requests=requests, repeats=1 if quick else 3))


if __name__ == "__main__":
    main()
