"""What ``mabware demo`` does, from start to summary.

1. A state file (in a temporary directory unless ``state`` is given) and
   a fresh cookie key, shared by every worker through the environment.
2. uvicorn serving ``mabware.demo.shop`` with ``workers`` processes on a
   loopback port (``mabware.demo._server``); the URLs are printed once the
   shop answers.
3. ``mabware.demo.traffic`` plays visitors for ``seconds`` (None: until
   Ctrl-C). SIGTERM is taken as Ctrl-C, so both end the same clean way.
4. uvicorn is stopped gracefully (each worker flushes its last counts to
   the store), then anything left in its session is killed: this happens
   however the run ends, errors included.
5. The merged state is read back (``mabware.store.report``), and this run's
   counts (the state may hold earlier runs' too) are printed beside the
   hidden true rates, with the regret: the expected conversions lost to
   showing weaker variants, against what a uniform split would have lost.

Ctrl-C is the normal way to end an open-ended demo, so it still prints the
summary and exits 0; a second Ctrl-C while the server stops kills it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from mabware.demo._report import DemoResult, Totals, report, say
from mabware.demo._server import DemoError, ShopServer
from mabware.demo.shop import ENV_KEY, ENV_STATE, EXPERIMENT
from mabware.demo.traffic import TRUE_RATES, Tally, Traffic
from mabware.store.merge import StateError
from mabware.store.report import open_backend, summary

__all__ = ["DemoError", "DemoOptions", "DemoResult", "report", "run_demo"]


@dataclass(frozen=True)
class DemoOptions:
    """The ``mabware demo`` options (see the command's help)."""

    seconds: float | None = None
    workers: int = 2
    port: int = 0
    rate: float = 150.0
    state: Path | None = None
    seed: int = 0


def run_demo(options: DemoOptions, *, out: Console, err: Console) -> DemoResult:
    """Run the demo: URLs on ``out``, the live line on ``err`` (a terminal only).

    Raises:
        DemoError: the shop could not be started, or its state not read.
        KeyboardInterrupt: Ctrl-C (or SIGTERM) before the traffic started.
    """
    state = options.state.resolve() if options.state else None
    with tempfile.TemporaryDirectory(prefix="mabware-demo-") as tmp:
        work = Path(tmp)
        path = state or work / "mabware.state"
        before, _ = _read_totals(path) if path.exists() else ({}, 0)
        metrics_dir = work / "prometheus"  # every worker's counters, summed at each scrape
        metrics_dir.mkdir()
        env = {
            ENV_KEY: secrets.token_urlsafe(32),  # what `mabware keygen` prints
            ENV_STATE: str(path),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        server = ShopServer(
            workers=options.workers, port=options.port, env=env, log=work / "uvicorn.log"
        )
        tally = Tally()
        with _sigterm_as_interrupt(), server:  # leaving it stops the server, whatever happened
            server.start()
            server.wait_ready()
            urls = {
                "shop": f"{server.url}/",
                "dashboard": f"{server.url}/mabware/dashboard/",
                "metrics": f"{server.url}/mabware/metrics",
            }
            workers = f"{options.workers} uvicorn workers"
            say(out, f"mabware demo: a shop on {workers}, learning together through file:{path}")
            for name, url in urls.items():
                say(out, f"  {name:<10} {url}")
            until = "until Ctrl-C" if options.seconds is None else f"for {options.seconds:g} s"
            say(out, f"Visitors arrive at up to {options.rate:g} a second {until}.")
            traffic = Traffic(urls["shop"], rate=options.rate, seed=options.seed, tally=tally)
            started = time.monotonic()
            interrupted = _play(traffic, options.seconds, err)
            seconds = time.monotonic() - started
            if interrupted:
                say(err, "Stopping the shop (its workers flush their last counts)...")
            exit_code = server.stop()
        if exit_code != 0:
            say(err, f"warning: uvicorn exited with {exit_code}:\n{server.log_tail()}")
        after, replicas = _read_totals(path)
    zero = (0.0, 0.0)
    totals = {
        arm: (pulls - before.get(arm, zero)[0], reward - before.get(arm, zero)[1])
        for arm, (pulls, reward) in after.items()
    }
    return DemoResult(
        urls=urls,
        tally=tally,
        totals=totals,
        replicas=replicas,
        seconds=seconds,
        interrupted=interrupted,
        exit_code=exit_code,
        state=state,
        workers=options.workers,
    )


def _play(traffic: Traffic, seconds: float | None, err: Console) -> bool:
    """Run the traffic to its end or to Ctrl-C / SIGTERM; True if interrupted.

    Inside the event loop SIGTERM cancels the traffic, as asyncio.run does
    for Ctrl-C: a KeyboardInterrupt raised from a signal handler could land
    inside the loop's own machinery and leave tasks half torn down.
    """
    previous = signal.getsignal(signal.SIGTERM)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            with _progress(err) as tick:
                await traffic.run(seconds, tick)
        finally:
            loop.remove_signal_handler(signal.SIGTERM)  # resets it to SIG_DFL
            signal.signal(signal.SIGTERM, previous)

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return True
    return False


def _read_totals(state: Path) -> tuple[Totals, int]:
    """(arm -> (pulls, reward sum) of the demo's experiment, live replicas) in the store."""
    backend = open_backend(f"file:{state}")
    try:
        doc = summary(backend.read(), time.time())
    except StateError as exc:
        raise DemoError(f"the state in {state} is unreadable: {exc}") from None
    finally:
        backend.close()
    arms = doc["experiments"].get(EXPERIMENT, {}).get("arms", {})
    totals = {arm: (s["pulls"], s["reward_sum"]) for arm, s in arms.items()}
    return totals, int(doc["replicas"]["live"])


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Meanwhile SIGTERM is Ctrl-C: a polite kill still stops the server and its workers."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _progress(err: Console) -> Iterator[Callable[[Tally], None] | None]:
    """A live line on a terminal: visitors, conversions, and the last second's shares."""
    if not err.is_terminal:
        yield None
        return
    seen: Counter[str] = Counter()
    with Live(Text(""), console=err, auto_refresh=False, transient=True) as live:

        def tick(tally: Tally) -> None:
            new = tally.arms - seen
            seen.update(new)
            count = sum(new.values())
            shares = "  ".join(f"{arm} {new[arm] / count:.0%}" for arm in TRUE_RATES)
            line = f"{tally.visitors:,} visitors, {tally.conversions:,} conversions"
            live.update(Text(f"{line}; now: {shares}" if count else line), refresh=True)

        yield tick
