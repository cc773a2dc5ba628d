"""Regret benchmark: mabware's policies side by side, in one run.

    python bench/regret.py            # full counts on every core
    python bench/regret.py --quick    # small counts, < 1 minute (the test suite's smoke run)

Prints markdown tables (pasted into the README) with the command, the
machine and the date, and writes every number as JSON (``--json``; default
``bench/results/regret.json``). What runs is listed in
``bench/_regret_tasks.py`` (policies, settings, seeds, the piecewise
scenario); the tables are drawn by ``bench/_regret_report.py``.

(a) The MAB E-Commerce Optimizer's convergence protocol: its three
    strategies reproduced by ``mabware.simulate.reference`` (20.89, 62.93,
    93.68), then mabware's policies on the same 20 environments through the
    real simulate runner (batch 1) over replicate reward seeds: every
    registered stationary policy 50 replicates, the drift policies 5
    (they are there for (b)'s "stationary regret" check and cost up to 4x
    more per round). Then an investigation of other settings on the
    first 20 replicates, paired with Thompson sampling, with a risk check
    on small gaps (rates 0.05/0.07/0.09, 10,000 rounds, 20 seeds), where a
    policy that commits early pays.
(b) Piecewise-stationary: 3 arms, 3 phases x 3,000 rounds, the best arm
    changes every phase, 20 seeds: stationary and drift policies, and
    two "oracle restart" yardsticks (``bench/_candidates.py``, not
    policies) that are told the change points.
(c) Batching: Thompson sampling with the allocation recomputed every 1,
    10 and 100 rounds (first 20 replicates of (a)), as regret ratios.
(d) MABWiser 2.7.4 (bench-only dependency): its regret on (a)'s
    environments, and per-call cost next to mabware's (``_regret_timing``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench helpers; mabware from this checkout

import _regret_report as report  # noqa: E402
from _regret_tasks import (  # noqa: E402
    BATCHES,
    DRIFT,
    INVESTIGATE,
    MABWISER,
    PIECEWISE,
    SMALL_GAP,
    STATIONARY,
    TS,
    Config,
    Outcome,
    mabwiser,
    piecewise,
    small_gap,
    stationary,
)

FULL = {
    "envs": 20,
    "replicates": 50,
    "investigate_replicates": 20,
    "drift_replicates": 5,
    "batch_replicates": 20,
    "small_gap_seeds": 20,
    "small_gap_rounds": 10_000,
    "piecewise_seeds": 20,
    "phase_scale": 1.0,
    "mabwiser_replicates": 5,
    "timing_repeats": 30,
}
QUICK = {
    "envs": 3,
    "replicates": 1,
    "investigate_replicates": 1,
    "drift_replicates": 1,
    "batch_replicates": 1,
    "small_gap_seeds": 1,
    "small_gap_rounds": 1000,
    "piecewise_seeds": 1,
    "phase_scale": 0.05,
    "mabwiser_replicates": 1,
    "timing_repeats": 3,
}

Job = tuple[str, Any]


def build_jobs(counts: dict[str, Any], with_mabwiser: bool) -> list[Job]:
    """Every run, slowest kinds first so the pool ends with short jobs."""
    envs = range(counts["envs"])

    def on_a(configs: list[Config], replicates: int, batch: int = 1) -> list[Job]:
        return [
            ("stationary", (c, i, s, batch))
            for c in configs
            for i in envs
            for s in range(replicates)
        ]

    jobs: list[Job] = [
        ("piecewise", (c, s, counts["phase_scale"]))
        for c in PIECEWISE
        for s in range(counts["piecewise_seeds"])
    ]
    jobs += [
        ("small-gap", (c, s, counts["small_gap_rounds"]))
        for c in SMALL_GAP
        for s in range(counts["small_gap_seeds"])
    ]
    jobs += on_a(DRIFT, counts["drift_replicates"])
    jobs += on_a(STATIONARY, counts["replicates"])
    jobs += on_a(INVESTIGATE, counts["investigate_replicates"])
    for batch in BATCHES[1:]:
        jobs += on_a([TS], counts["batch_replicates"], batch)
    if with_mabwiser:
        jobs += [
            ("mabwiser", (name, i, s))
            for name in MABWISER
            for i in envs
            for s in range(counts["mabwiser_replicates"])
        ]
    return jobs


def _call(job: Job) -> Outcome:
    kind, argument = job
    function = {
        "stationary": stationary,
        "piecewise": piecewise,
        "small-gap": small_gap,
        "mabwiser": mabwiser,
    }[kind]
    return function(argument)  # type: ignore[operator]


def run_jobs(jobs: list[Job], workers: int) -> list[Outcome]:
    """Run the jobs on a process pool, printing progress to stderr."""
    started, out = time.perf_counter(), []
    step = max(1, len(jobs) // 20)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for k, outcome in enumerate(pool.imap_unordered(_call, jobs, chunksize=2), 1):
            out.append(outcome)
            if k % step == 0 or k == len(jobs):
                elapsed = time.perf_counter() - started
                print(f"  {k}/{len(jobs)} runs, {elapsed:.0f}s", file=sys.stderr, flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (< 1 minute)")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-mabwiser", action="store_true", help="leave MABWiser out of (d)")
    parser.add_argument(
        "--replicates",
        type=int,
        default=None,
        help="(a)'s replicates (default 50; fewer is faster)",
    )
    args = parser.parse_args(argv)
    counts = dict(QUICK if args.quick else FULL)
    if args.replicates is not None:
        counts["replicates"] = args.replicates
        for key in ("investigate_replicates", "batch_replicates", "mabwiser_replicates"):
            counts[key] = min(counts[key], args.replicates)
    json_path = args.json or HERE / "results" / f"regret{'-quick' if args.quick else ''}.json"
    started = time.perf_counter()
    command = " ".join(["python bench/regret.py", *(sys.argv[1:] if argv is None else argv)])
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    quick_note = "  \n**--quick: small counts, not the published numbers**" if args.quick else ""
    print(f"Command: `{command}`  \nMachine: {report.machine()}  \nDate: {date}{quick_note}")

    with_mabwiser = not args.no_mabwiser
    try:
        import mabwiser as _  # noqa: F401
    except ImportError:
        print("MABWiser is not installed (pip install mabwiser==2.7.4)", file=sys.stderr)
        with_mabwiser = False

    reference_text, reference_records = report.reference_section()
    results = report.Results(run_jobs(build_jobs(counts, with_mabwiser), args.workers))
    record: dict[str, Any] = {
        "command": command,
        "machine": report.machine(),
        "date": date,
        "quick": args.quick,
        "counts": counts,
        "fallbacks": results.fallbacks,
    }
    record["a"] = {
        "reference": reference_records,
        **report.section_a(results, counts, reference_text),
    }
    record["b"] = report.section_b(results, counts)
    record["c"] = report.section_c(results, counts, BATCHES)
    print("\n### (d) MABWiser 2.7.4 side by side\n")
    record["d"] = {"mabwiser_replicates": counts["mabwiser_replicates"] if with_mabwiser else 0}
    if with_mabwiser:
        record["d"]["regret"] = report.section_d_regret(results, counts)
    from _regret_timing import measure, timing_cases

    timings = measure(timing_cases(with_mabwiser), counts["timing_repeats"])
    report.section_d_timing(timings, counts["timing_repeats"])
    record["d"]["seconds_per_call"] = timings
    if results.fallbacks:
        print(f"\nWARNING: {results.fallbacks} allocations fell back to the default arm.")
    record["wall_seconds"] = wall = time.perf_counter() - started
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"\nWall time: {wall:.0f} s with {args.workers} worker processes. JSON: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
