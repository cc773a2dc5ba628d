"""Sync fault benchmark: the tests/store fault checks at the issue's long counts.

    python bench/sync_faults.py            # 500 x 50 state machine, 250 crashes per step,
                                           # 16 processes x 1,000 merges, 50 dead lock holders
    python bench/sync_faults.py --quick    # the CI counts (a smoke run)

Every row is a check the test suite runs with CI-sized counts
(``tests/store/test_merge.py``, ``test_file_backend.py``), here repeated:

* the merge state machine (``MergeMachine``): processes record, push,
  lose pushes, see pushes duplicated and replayed late, crash, pause past
  the retention and get retired, rebase; after every step the merged
  totals are exactly what was acknowledged;
* a ``file:`` writer SIGKILLed at each step of its atomic write: the file
  then holds exactly the old or exactly the new state, and the next
  process's exchange works;
* many processes merging into one state file at once: exact totals, no
  replica's seq ever seen going back;
* a process SIGKILLed while holding the lock (alone, or mid-write): a
  blocked exchange in another process goes through (the table gives the
  slowest time from the kill to that exchange's end).

Child processes are forked; state files live in a temporary directory on
the default temp filesystem (``TMPDIR``), so fsync costs are that disk's.
The run exits non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests" / "store")]

import sync_helpers  # noqa: E402
import test_merge  # noqa: E402
from _markdown import table  # noqa: E402
from _regret_report import machine  # noqa: E402
from hypothesis import settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402
from sync_helpers import STEPS, Counts  # noqa: E402

Row = list[object]


def timed(check: str, count: str, run: Callable[[Path], str]) -> tuple[Row, bool]:
    """Run one check in a fresh directory; its table row and whether it passed."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mabware-faults-") as tmp:
        try:
            detail, ok = run(Path(tmp) / "mabware.state"), True
        except Exception as exc:  # AssertionError from the checks, or anything unexpected
            traceback.print_exc()
            detail, ok = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}", False
    seconds = time.perf_counter() - began
    return [check, count, f"{seconds:.1f}", "passed" if ok else "**failed**", detail], ok


def machine_check(counts: Counts) -> Callable[[Path], str]:
    def run(_path: Path) -> str:
        seen: collections.Counter[str] = collections.Counter()
        original = test_merge.event

        def event(value: str) -> None:  # hypothesis reports events only under pytest
            seen[value] += 1
            original(value)

        test_merge.event = event
        try:
            run_state_machine_as_test(
                test_merge.MergeMachine,
                settings=settings(
                    sync_helpers.machine_settings(counts.machine_examples, counts.machine_steps),
                    database=None,
                ),
            )
        finally:
            test_merge.event = original
        return ", ".join(f"{n} {what}" for what, n in sorted(seen.items()))

    return run


def crash_check(step: str, trials: int) -> Callable[[Path], str]:
    def run(path: Path) -> str:
        sync_helpers.crash_trials(path, step, trials)
        return (
            "old state whole" if STEPS.index(step) < STEPS.index("renamed") else "new state whole"
        )

    return run


def merges_check(processes: int, merges: int) -> Callable[[Path], str]:
    def run(path: Path) -> str:
        began = time.perf_counter()
        state = sync_helpers.concurrent_merges(path, processes, merges)
        rate = processes * merges / (time.perf_counter() - began)
        pulls = int(sum(sync_helpers.totals(state)))
        return f"{pulls:,} pulls = increments, {rate:,.0f} merges/s"

    return run


def lock_check(kills: int) -> Callable[[Path], str]:
    def run(path: Path) -> str:
        waits = [
            sync_helpers.kill_lock_holder(path, mid_write=bool(i % 2), seq=i + 1)
            for i in range(kills)
        ]
        return f"released after at most {max(waits) * 1000:.0f} ms"

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI counts (a smoke run)")
    long = sync_helpers.LONG
    parser.add_argument("--examples", type=int, default=long.machine_examples)
    parser.add_argument("--steps", type=int, default=long.machine_steps)
    parser.add_argument("--crashes", type=int, default=long.crashes_per_step, help="per step")
    parser.add_argument("--processes", type=int, default=long.processes)
    parser.add_argument("--merges", type=int, default=long.merges, help="per process")
    parser.add_argument("--kills", type=int, default=long.lock_kills)
    args = parser.parse_args(argv)
    counts = (
        sync_helpers.CI
        if args.quick
        else Counts(
            args.examples, args.steps, args.crashes, args.processes, args.merges, args.kills
        )
    )
    command = "python " + " ".join(["bench/sync_faults.py", *(argv or sys.argv[1:])])
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Command: `{command}`  \nMachine: {machine()}  \nDate: {date}\n", flush=True)
    checks = [
        (
            "merge state machine",
            f"{counts.machine_examples} x {counts.machine_steps} steps",
            machine_check(counts),
        ),
        *(
            (f"writer SIGKILLed at {step}", f"{counts.crashes_per_step}", crash_check(step, n))
            for step, n in ((s, counts.crashes_per_step) for s in STEPS)
        ),
        (
            "concurrent merges, one file",
            f"{counts.processes} x {counts.merges:,}",
            merges_check(counts.processes, counts.merges),
        ),
        ("lock holder SIGKILLed", f"{counts.lock_kills}", lock_check(counts.lock_kills)),
    ]
    rows, passed, began = [], True, time.perf_counter()
    for name, count, run in checks:
        row, ok = timed(name, count, run)
        print(f"  {name}: {row[3]} in {row[2]} s", file=sys.stderr, flush=True)
        rows.append(row)
        passed &= ok
    print(table(["check", "count", "seconds", "result", "detail"], rows, align="lrrll"))
    print(f"\nWall time: {time.perf_counter() - began:.0f} s")
    if not passed:
        sys.exit("a sync fault check FAILED")


if __name__ == "__main__":
    main()
