"""SIGKILL soak for the edge SDK: many kills of a process in the middle of its pushes.

The scenario of ``tests/edge/test_faults.py`` (3 kills there) repeated:
one real ``mabware serve``, an SDK process deciding, rewarding and pushing
every 0.05 s, killed with SIGKILL at a random moment, again and again. After
each kill the server must hold, for that replica, exactly the totals of one
push the process logged, at or after the last one it saw acknowledged.

    python bench/edge_kill9.py            # 40 kills, about a minute
    python bench/edge_kill9.py --runs 5   # smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "edge")]

from _markdown import table  # noqa: E402
from _regret_report import machine  # noqa: E402
from harness import signing_server  # noqa: E402
from kill import kill_while_pushing  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="kills (default 40)")
    args = parser.parse_args(argv)
    exact = beyond_ack = 0
    pushes_held = []
    with (
        tempfile.TemporaryDirectory(prefix="mabware-edge-kill9-") as directory,
        signing_server(Path(directory), snapshot_interval=1.0) as server,
    ):
        server.create("headline", ["control", "bold", "banner"], reward_mode="every")
        for run in range(args.runs):
            killed = kill_while_pushing(
                server, "headline", Path(directory) / f"pushes-{run}.jsonl", (0.05, 1.5)
            )
            ok = (
                killed.held >= killed.acked
                and killed.held in killed.logged
                and killed.totals == killed.logged[killed.held]
            )
            exact += ok
            beyond_ack += killed.held > killed.acked
            pushes_held.append(killed.held)
            print(f"kill {run + 1}/{args.runs}: {'ok' if ok else 'WRONG'}", file=sys.stderr)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python bench/edge_kill9.py" + (f" --runs {args.runs}" if args.runs != 40 else "")
    print(f"Command: `{command}`  \nMachine: {machine()}  \nDate: {date}\n")
    rows = [
        [
            args.runs,
            f"{exact} / {args.runs}",
            beyond_ack,
            f"{min(pushes_held)}-{max(pushes_held)}",
        ]
    ]
    print(
        table(
            [
                "SIGKILLs",
                "server holds exactly one logged push, at or after the last ack",
                "held a push whose ack the process never saw",
                "seq held at the kill (min-max)",
            ],
            rows,
        )
    )
    if exact != args.runs:
        sys.exit(1)


if __name__ == "__main__":
    main()
