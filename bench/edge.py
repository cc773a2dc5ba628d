"""Edge SDK benchmark: decisions, snapshot loading, import time, pushes, learning.

Run from the repository root (the SDK installed, ``pip install ./sdk``):

    python bench/edge.py            # the README's tables, about 4 minutes
    python bench/edge.py --quick    # smoke run, CI-sized counts

Every number is a ratio or a median taken side by side in one run, so the
tables compare fairly on a shared, noisy machine.

1. ``decide`` per call (unit id, sampled, with the cookie written) beside
   the middleware engine's per-request cost for the same experiment.
2. Checking and parsing a signed snapshot of 100 experiments x 10 arms:
   the SDK's reader beside mabware's own.
3. A cold start: ``import mabware_edge`` plus loading that snapshot from the
   cache file, beside ``import mabware`` (fresh interpreters, median).
4. Pushes per second to a real ``mabware serve`` (file store, 8 client
   processes): SDK replicas beside middleware replicas.
5. Regret of SDK decisions fed one snapshot per simulated interval, beside
   Thompson sampling in one process (tests/edge/learning.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "edge")]

from _markdown import num, table  # noqa: E402
from _regret_report import machine  # noqa: E402
from harness import PUSH, WRITE, start_server, stop_server  # noqa: E402
from mabware_edge import EdgeClient, read_snapshot  # noqa: E402
from sync import timed_clients  # noqa: E402

from mabware import Experiment  # noqa: E402
from mabware.edge_snapshot import (  # noqa: E402
    EdgeExperiment,
    EdgeSnapshot,
    generate_signing_keys,
    issue,
    private_key,
    public_key,
    read,
)
from mabware.statistics import Statistics  # noqa: E402
from mabware.store.http import HttpBackend  # noqa: E402
from mabware.store.merge import Replica, Tally  # noqa: E402
from mabware.testing import make_engine  # noqa: E402

Block = Callable[[int], float]


def signed_snapshot(experiments: int, arms: int, keys: dict[str, str]) -> bytes:
    """A snapshot of ``experiments`` x ``arms`` with a skewed allocation, signed."""
    rng = np.random.default_rng(7)
    made = []
    for e in range(experiments):
        exp = Experiment(f"exp{e:03d}", {f"arm{a}": f"payload {a}" for a in range(arms)})
        allocation = exp.decide(exp.counters().snapshot(0), rng)
        made.append(EdgeExperiment.of(exp, allocation))
    shares = rng.dirichlet(np.ones(arms))
    made[0] = EdgeExperiment(**{**made[0].__dict__, "allocation": tuple(map(float, shares))})
    return issue(EdgeSnapshot(1, time.time(), tuple(made)), private_key(keys["private_key"]))


def per_call(cases: dict[str, Block], repeats: int, n: int) -> dict[str, float]:
    """Median microseconds per call of each case, cases interleaved round by round."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for block in cases.values():
        block(n // 10)  # warm up
    for _ in range(repeats):
        for name, block in cases.items():
            samples[name].append(block(n) / n * 1e6)
    return {name: statistics.median(v) for name, v in samples.items()}


def decide_table(repeats: int, n: int) -> str:
    keys = generate_signing_keys()
    data = signed_snapshot(1, 10, keys)
    cookie_key = "J7INaW9SNrV8bxKJmXGZ97gqw7bFPS7tC1OTLWzvpac"
    edge = EdgeClient(
        None, public_key=keys["public_key"], refresh="manual", secret_keys=[cookie_key]
    )
    assert edge.load(data)
    exp = Experiment("exp000", [f"arm{a}" for a in range(10)])
    engine = make_engine([exp], strict=False, recompute_interval=0.05)
    units = [f"user-{i}" for i in range(n)]
    decide, cookie_header = edge.decide, edge.cookie_header

    def timed(body: Callable[[list[str]], None]) -> Block:
        def block(count: int) -> float:
            batch = units[:count]
            start = time.perf_counter()
            body(batch)
            return time.perf_counter() - start

        return block

    def sdk_unit(batch: list[str]) -> None:
        for unit in batch:
            decide("exp000", unit)

    def sdk_sampled(batch: list[str]) -> None:
        for _ in batch:
            decide("exp000")

    def sdk_cookie(batch: list[str]) -> None:
        for unit in batch:
            cookie_header([decide("exp000", unit)], secure=True)

    def engine_unit(batch: list[str]) -> None:
        begin, respond = engine.begin, engine.respond
        for unit in batch:
            respond(begin(None, unit_id=unit), 200)

    returning = (engine.respond(engine.begin(None), 200) or "").split(";")[0]

    def engine_returning(batch: list[str]) -> None:
        begin, respond = engine.begin, engine.respond
        for _ in batch:
            respond(begin(returning), 200)

    cases = {
        "SDK decide, unit id (10 arms)": timed(sdk_unit),
        "SDK decide, sampled (10 arms)": timed(sdk_sampled),
        "SDK decide + Set-Cookie (encrypt)": timed(sdk_cookie),
        "engine, new visitor with unit id: begin + respond (encrypt)": timed(engine_unit),
        "engine, returning visitor: begin + respond": timed(engine_returning),
    }
    medians = per_call(cases, repeats, n)
    base = medians["SDK decide, unit id (10 arms)"]
    rows = [[name, num(us), num(us / base, 1)] for name, us in medians.items()]
    return table(["per call, one experiment", "us (median)", "x SDK decide"], rows)


def parse_table(repeats: int) -> str:
    keys = generate_signing_keys()
    data = signed_snapshot(100, 10, keys)
    pub = public_key(keys["public_key"])

    def sdk(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            read_snapshot(data, keys["public_key"])
        return time.perf_counter() - start

    def mabware_reader(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            read(data, pub)
        return time.perf_counter() - start

    def sdk_load(count: int) -> float:
        edge = EdgeClient(None, public_key=keys["public_key"], refresh="manual")
        start = time.perf_counter()
        for _ in range(count):
            edge._feed.view = None  # each load a first one (no rollback check)
            assert edge.load(data)
        return time.perf_counter() - start

    cases = {
        "SDK read_snapshot: verify + parse": sdk,
        "SDK EdgeClient.load: verify + parse + decision tables": sdk_load,
        "mabware.edge_snapshot.read: verify + parse": mabware_reader,
    }
    medians = per_call(cases, repeats, 20)
    rows = [[name, num(us / 1e3)] for name, us in medians.items()]
    header = f"100 experiments x 10 arms ({len(data) / 1024:,.0f} KiB)"
    return table([header, "ms (median)"], rows)


COLD_SDK = """
import time
started = time.perf_counter()
import mabware_edge
edge = mabware_edge.EdgeClient(None, public_key={key!r}, cache_path={path!r}, refresh="manual")
assert edge.snapshot is not None and len(edge.snapshot.experiments) == 100
print(time.perf_counter() - started)
"""
COLD_MABWARE = """
import time
started = time.perf_counter()
import mabware
print(time.perf_counter() - started)
"""


def cold_table(repeats: int) -> str:
    keys = generate_signing_keys()
    with tempfile.TemporaryDirectory(prefix="mabware-edge-bench-") as directory:
        path = os.path.join(directory, "mab.snap")
        Path(path).write_bytes(signed_snapshot(100, 10, keys))
        scripts = {
            "import mabware_edge + load the cached 100 x 10 snapshot": COLD_SDK.format(
                key=keys["public_key"], path=path
            ),
            "import mabware": COLD_MABWARE,
        }
        samples: dict[str, list[float]] = {name: [] for name in scripts}
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its .pyc files
        for script in scripts.values():  # compile them once, off the clock
            subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True)
        for _ in range(repeats):
            for name, script in scripts.items():
                out = subprocess.run(
                    [sys.executable, "-c", script], env=env, check=True, capture_output=True
                )
                samples[name].append(float(out.stdout.decode().split()[-1]))
    medians = {name: statistics.median(v) * 1e3 for name, v in samples.items()}
    base = medians["import mabware"]
    rows = [[name, num(ms, 1), num(ms / base)] for name, ms in medians.items()]
    return table(["fresh interpreter, in-process time", "ms (median)", "x import mabware"], rows)


def sdk_pusher(url: str, key: str, seconds: float, start: Any, results: Any) -> None:
    """One SDK replica: a decision and a reward, then a push, until ``seconds`` have passed."""
    edge = EdgeClient(
        f"{url}/edge/snapshot",
        public_key=key,
        read_token=WRITE,
        push_url=f"{url}/sync",
        push_token=PUSH,
        refresh="manual",
    )
    assert edge.refresh()
    pushes = 0
    start.wait()
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        edge.reward(edge.decide("exp0", "u").decision_id, 1.0)
        pushes += edge.push()
    edge.close()
    results.put(pushes)


def replica_pusher(url: str, key: str, seconds: float, start: Any, results: Any) -> None:
    """One middleware replica (``HttpBackend``): push, and pull the merged state back."""
    backend = HttpBackend(url, token=WRITE)
    replica_id = os.urandom(8).hex()
    pushes = 0
    start.wait()
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        pushes += 1
        stats = Statistics.from_counts([pushes, 0], [pushes / 2, 0.0])
        tallies = {("exp0", 1): Tally(("a", "b"), stats)}
        backend.exchange(replica_id, Replica(pushes, time.time(), tallies))
    backend.close()
    results.put(pushes)


def pushes_table(clients: int, seconds: float) -> str:
    rows = []
    for label, pusher in (
        ("SDK replicas, push token (answer: the seq)", sdk_pusher),
        ("middleware replicas, HttpBackend (answer: the merged state)", replica_pusher),
    ):
        with tempfile.TemporaryDirectory(prefix="mabware-edge-bench-") as directory:
            server = start_server(Path(directory), snapshot_interval=10.0)
            try:
                server.create("exp0", ["a", "b"], reward_mode="every")
                argses = [(server.url, server.public_key, seconds) for _ in range(clients)]
                counts, wall = timed_clients(pusher, argses)
            finally:
                stop_server(server)
        rows.append([label, clients, f"{sum(counts):,}", f"{sum(counts) / wall:,.0f}"])
    return table(
        ["POST /sync on mabware serve (file store)", "clients", "pushes", "pushes/s"], rows
    )


def learning_table(replicates: int) -> str:
    from learning import ENVIRONMENTS, sdk_regret, single_process_regret

    runs = [(i, s) for i in range(len(ENVIRONMENTS)) for s in range(replicates)]
    one = statistics.mean(single_process_regret(i, s) for i, s in runs)
    rows: list[list[object]] = [
        ["Thompson sampling, one process, learns every reward", num(one), "1.00"]
    ]
    for per_second, label in ((100, "1 s"), (50, "0.5 s"), (20, "0.2 s")):
        sdk = statistics.mean(sdk_regret(i, s, per_second) for i, s in runs)
        batched = statistics.mean(single_process_regret(i, s, per_second) for i, s in runs)
        rows.append([f"SDK, a snapshot every {label} at 100 decisions/s", num(sdk), num(sdk / one)])
        rows.append(
            [f"one process, allocation every {per_second} rounds", num(batched), num(batched / one)]
        )
    title = f"seed protocol, 20 environments x {replicates} replicates x 2000 rounds"
    return table([title, "mean regret", "x one process"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized counts (smoke run)")
    args = parser.parse_args(argv)
    quick = args.quick
    command = "python bench/edge.py" + (" --quick" if quick else "")
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Command: `{command}`  \nMachine: {machine()}  \nDate: {date}\n")
    print(decide_table(repeats=3 if quick else 15, n=2000 if quick else 20000))
    print()
    print(parse_table(repeats=3 if quick else 15))
    print()
    print(cold_table(repeats=3 if quick else 15))
    print()
    print(pushes_table(clients=8, seconds=2.0 if quick else 10.0))
    print()
    print(learning_table(replicates=1 if quick else 10))


if __name__ == "__main__":
    main()
