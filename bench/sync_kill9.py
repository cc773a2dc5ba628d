"""SIGKILL a gunicorn worker mid-run, 20 times: what is lost, what is counted twice.

    python bench/sync_kill9.py            # 20 runs: gunicorn -w 8, 2,000 rewards each
    python bench/sync_kill9.py --quick    # 3 runs: -w 4, 1,000 rewards (the CI test's size)

Each run is ``tests/integration/harness.kill9_run``, the scenario the CI
test (``tests/integration/test_kill9.py``) runs three times: gunicorn with
uvicorn workers serves ``tests/integration/app.py`` on a fresh ``file:``
store (sync every 0.2 s); four client threads send new visitors, each
rewarded once, every request on its own connection; one worker is
SIGKILLed once a random 20-80% of the rewards has been sent; gunicorn
replaces it; at the end gunicorn gets SIGTERM and the workers flush in
their lifespan shutdown. A second thread unpacks the state file every
20 ms throughout.

Columns: rewards acknowledged (HTTP 200) by the surviving workers and by
the killed one; what the state file counts for each; the killed worker's
acknowledged rewards it never pushed (lost by design: they were counted
after its last push); rewards counted beyond those sent (double counts);
replica ids in the state (the replacement's is new: workers + 1); state
file reads during the run (every one must parse). A run is "ok" when
``Kill9Result.problems()`` finds nothing. Exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests" / "integration")]

from _markdown import table  # noqa: E402
from _regret_report import machine  # noqa: E402
from harness import Kill9Result, kill9_run, totals  # noqa: E402


def row(run: int, seed: int, r: Kill9Result) -> list[object]:
    survivors = r.survivors
    counted_survivors = sum(totals(r.state.replicas.get(rid))[1] for rid in survivors)
    counted_killed = sum(
        totals(rep)[1] for rid, rep in r.state.replicas.items() if rid not in survivors
    )
    acked_killed = sum(n for rid, n in r.acked.items() if rid not in survivors)
    total = counted_survivors + counted_killed
    problems = r.problems()
    return [
        run, seed, f"{r.sent:,}", f"{r.killed_after:,}", r.failed,
        f"{r.acked_by_survivors:,}", f"{counted_survivors:,.0f}",
        acked_killed, f"{counted_killed:,.0f}", max(0, acked_killed - round(counted_killed)),
        f"{max(0.0, total - r.sent):,.0f}", len(r.state.replicas), r.reads,
        f"{r.seconds:.1f}", "ok" if not problems else "**" + "; ".join(problems) + "**",
    ]  # fmt: skip


HEADERS = [
    "run", "seed", "sent", "killed after", "unanswered",
    "acked by survivors", "counted for survivors",
    "acked by killed", "counted for killed", "killed's acked not pushed",
    "counted beyond sent", "replica ids", "state reads", "seconds", "result",
]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, -w 4, 1,000 rewards")
    args = parser.parse_args(argv)
    runs, workers, rewards = (3, 4, 1000) if args.quick else (20, 8, 2000)
    command = "python bench/sync_kill9.py" + (" --quick" if args.quick else "")
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Command: `{command}`  \nMachine: {machine()}  \nDate: {date}\n")
    print(
        f"gunicorn -w {workers} -k uvicorn.workers.UvicornWorker, file: store, sync every "
        f"0.2 s; {rewards:,} rewarded new visitors per run; one worker SIGKILLed per run.\n"
    )
    rows, ok = [], 0
    for run in range(1, runs + 1):
        seed = 1000 + run
        with tempfile.TemporaryDirectory(prefix="mabware-kill9-") as directory:
            result = kill9_run(Path(directory), workers=workers, rewards=rewards, seed=seed)
        rows.append(row(run, seed, result))
        ok += not result.problems()
        print(f"run {run}/{runs} done", file=sys.stderr)
    print(table(HEADERS, rows, "r" * (len(HEADERS) - 1) + "l"))
    print(f"\n{ok}/{runs} runs with every guarantee held.")
    if ok != runs:
        sys.exit(1)


if __name__ == "__main__":
    main()
