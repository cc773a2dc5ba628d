"""Web benchmark: what mabware costs a real app, side by side in one run.

    python bench/web.py            # 5 interleaved rounds of 5 s per case
    python bench/web.py --quick    # 1 round of 1 s (a smoke run)

Serving: uvicorn (uvloop, httptools, one worker, access log off) on
127.0.0.1, driven by wrk (Debian's package) with 1 thread and 50
connections on the other core. Cases (``bench/_web_apps.py``):

* plain Starlette;
* + a pure ASGI middleware that only wraps ``send`` (the floor for any
  middleware that sets a cookie);
* + mabware, returning visitor: every request carries a valid cookie, so
  the middleware decodes (from its cache), keeps three arms, and writes no
  Set-Cookie;
* + mabware, new visitor: no cookie, so every request assigns three arms,
  records three pulls and encrypts a fresh cookie;
* + Starlette's SessionMiddleware with a session cookie (the anchor).

Cases run interleaved (plain, returning, new, sessions, plain, ...), each
round on a fresh server, and the table reports median requests/s and the
median of per-round ratios to plain, so a noisy neighbour slows all alike.

In-process: ``Engine.begin`` + ``respond`` for a returning and a new
visitor (3 experiments), and ``Assignments.reward``, timed with
``time.perf_counter`` over blocks, interleaved, medians.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from _markdown import num, table  # noqa: E402
from _regret_report import machine  # noqa: E402
from _web_apps import EXPERIMENTS  # noqa: E402

from mabware.testing import make_engine  # noqa: E402

CASES = {  # name -> (app, send the cookie the first response set)
    "plain Starlette": ("plain", False),
    "+ a pass-through ASGI middleware (floor)": ("passthrough", False),
    "+ mabware, returning visitor": ("mabware", True),
    "+ mabware, new visitor": ("mabware", False),
    "+ SessionMiddleware (anchor)": ("sessions", True),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: str) -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"_web_apps:{app}", "--host", "127.0.0.1",
         "--port", str(port), "--loop", "uvloop", "--http", "httptools",
         "--no-access-log", "--log-level", "warning"],
        cwd=HERE, env={**os.environ, "PYTHONPATH": f"{HERE}:{HERE.parent}"},
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"uvicorn did not start for {app}")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def first_cookie(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        cookie = response.headers.get("set-cookie", "")
    return cookie.split(";", 1)[0]


def wrk(url: str, seconds: float, cookie: str | None) -> float:
    """Requests per second wrk measured."""
    args = ["wrk", "-t1", "-c50", f"-d{max(1, round(seconds))}s", "--latency", url]
    if cookie:
        args[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} error responses from {url}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def web_table(rounds: int, seconds: float) -> str:
    rps: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, (app, with_cookie) in CASES.items():
            with serving(app) as url:
                wrk(url, 1, None)  # warm-up: imports, first allocation
                rps[name].append(wrk(url, seconds, first_cookie(url) if with_cookie else None))
    plain = rps["plain Starlette"]
    rows = [
        [name, f"{statistics.median(v):,.0f}",
         num(statistics.median(x / p for x, p in zip(v, plain, strict=True)))]
        for name, v in rps.items()
    ]  # fmt: skip
    return table(["case", "requests/s (median)", "x plain (median of rounds)"], rows)


Block = Callable[[int], float]


def engine_cases() -> dict[str, Block]:
    engine = make_engine(EXPERIMENTS, strict=False, recompute_interval=0.05)
    returning_cookie = (engine.respond(engine.begin(None), 200) or "").split(";")[0]
    begin, respond = engine.begin, engine.respond

    def returning(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            respond(begin(returning_cookie), 200)
        return time.perf_counter() - start

    def new(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            respond(begin(None), 200)
        return time.perf_counter() - start

    def reward(n: int) -> float:
        visit = make_engine(
            [EXPERIMENTS[0].__class__("headline", ["a", "b"], reward_mode="every")]
        ).begin(None)
        start = time.perf_counter()
        for _ in range(n):
            visit.reward("headline", 1.0)
        return time.perf_counter() - start

    return {
        "returning visitor: begin + respond (3 experiments)": returning,
        "new visitor: begin + respond (3 experiments, encrypt)": new,
        "reward (record one reward)": reward,
    }


def engine_table(repeats: int, n: int) -> str:
    cases = engine_cases()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for block in cases.values():
        block(n // 10)
    for _ in range(repeats):
        for name, block in cases.items():
            samples[name].append(block(n) / n * 1e6)
    rows = [[name, num(statistics.median(v))] for name, v in samples.items()]
    return table(["in-process engine", "us per call (median)"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s (smoke run)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    rounds, seconds = (1, 1.0) if args.quick else (5, 5.0)
    command = "python bench/web.py" + (" --quick" if args.quick else "")
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Command: `{command}`  \nMachine: {machine()}  \nDate: {date}\n")
    print(web_table(rounds, seconds))
    print()
    print(engine_table(repeats=5 if args.quick else 15, n=2000))


if __name__ == "__main__":
    main()
