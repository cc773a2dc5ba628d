"""Real servers on loopback for the integration tests; ``bench/sync_kill9.py`` imports it.

``Server`` starts a command (gunicorn, uvicorn, ``mabware serve``) from this
directory in its own session, with ``app.py`` importable, its output in a
log file, and stops it the way an operator would (SIGTERM to the master,
which stops its workers gracefully). ``kill9_run`` is the SIGKILL
scenario; its counts are arguments, so the test runs CI-sized counts and
the bench the long ones.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mabware.store.merge import Replica, SharedState, StateError, unpack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: a generous bound for "it must happen", not for "it must be fast"
LIVENESS = 30.0
EXPERIMENT = "headline"
#: every request on its own connection, so the kernel spreads them over the workers
CLOSE = {"Connection": "close"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gunicorn(port: int, workers: int, *, preload: bool = False) -> list[str]:
    argv = [
        "gunicorn", "-w", str(workers), "-k", "uvicorn.workers.UvicornWorker",
        "-b", f"127.0.0.1:{port}", "--graceful-timeout", "20", "--log-level", "warning",
        "--keep-alive", "60",  # pinned_clients' connections must outlive a test's pauses
    ]  # fmt: skip
    return [*argv, "--preload", "app:app"] if preload else [*argv, "app:app"]


def uvicorn(port: int) -> list[str]:
    return ["uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log"]  # fmt: skip


class Server:
    """``python -m <argv>`` started from tests/integration, in its own session.

    Args:
        argv: the module and its arguments (``["gunicorn", ...]``).
        port: the loopback port it binds.
        log: where its stdout and stderr go.
        env: extra environment (``MABWARE_STORE``, ``MABWARE_SYNC_INTERVAL``).
    """

    def __init__(
        self, argv: list[str], port: int, log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        path = os.pathsep.join(filter(None, [str(HERE), str(ROOT), os.environ.get("PYTHONPATH")]))
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *argv],
                cwd=HERE,
                env={**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, probe: str = "/whoami", timeout: float = LIVENESS) -> None:
        """Until ``probe`` answers 200; RuntimeError if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + probe, timeout=2.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url}{probe} did not answer:\n{self.output()}")
            time.sleep(0.05)

    def children(self) -> list[int]:
        """The master's child processes (gunicorn's workers)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except FileNotFoundError:
            return []

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = LIVENESS) -> int:
        """Send ``sig`` to the master only (it stops its workers); its exit code.

        Whatever is still running after ``timeout`` is SIGKILLed, session and all.
        """
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # orphaned workers, if any


@contextlib.contextmanager
def serving(
    argv: list[str], port: int, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """A ``Server`` that is stopped (SIGTERM, then SIGKILL) however the block ends."""
    server = Server(argv, port, log, env)
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.stop()


def app_env(store: str, sync_interval: float = 0.2) -> dict[str, str]:
    return {"MABWARE_STORE": store, "MABWARE_SYNC_INTERVAL": str(sync_interval)}


# -- reading the shared state ---------------------------------------------------------


def totals(replica: Replica | None, experiment: str = EXPERIMENT) -> tuple[float, float]:
    """(pulls, reward sum) of one replica's push, over every arm and version."""
    if replica is None:
        return 0.0, 0.0
    pulls = rewards = 0.0
    for (name, _version), tally in replica.tallies.items():
        if name == experiment:
            pulls += float(tally.stats.pulls.sum())
            rewards += float(tally.stats.reward_sum.sum())
    return pulls, rewards


def global_totals(state: SharedState, experiment: str = EXPERIMENT) -> tuple[float, float]:
    """(pulls, reward sum) over every replica and the retired tallies."""
    pulls = rewards = 0.0
    for replica in state.replicas.values():
        p, r = totals(replica, experiment)
        pulls, rewards = pulls + p, rewards + r
    for (name, _version), tally in state.retired.items():
        if name == experiment:
            pulls += float(tally.stats.pulls.sum())
            rewards += float(tally.stats.reward_sum.sum())
    return pulls, rewards


class StateReader:
    """A thread that unpacks the state file every ``every`` seconds; counts what failed."""

    def __init__(self, path: Path, every: float = 0.02) -> None:
        self.path, self.every = path, every
        self.reads = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                unpack(self.path.read_bytes())
                self.reads += 1
            except FileNotFoundError:
                pass
            except StateError as exc:
                self.failures.append(str(exc))

    def __enter__(self) -> StateReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_for(predicate: Any, timeout: float = LIVENESS, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def read_state(path: Path) -> SharedState:
    try:
        return unpack(path.read_bytes())
    except FileNotFoundError:
        return SharedState()


# -- SIGKILL a worker mid-run -----------------------------------------------------------


@dataclass
class Kill9Result:
    """What one run sent, what the server acknowledged, and what the state file holds."""

    workers: int
    sent: int
    killed_pid: int
    killed_after: int  # rewards sent when the SIGKILL went out
    failed: int  # requests without an answer (the killed worker's, in flight)
    acked: dict[str, int] = field(default_factory=dict)  # replica id -> 200 "ok" answers
    pids: dict[str, int] = field(default_factory=dict)  # replica id -> pid
    state: SharedState = field(default_factory=SharedState)
    reads: int = 0  # state-file reads during the run (all must parse)
    read_failures: list[str] = field(default_factory=list)
    exit_code: int | None = None
    seconds: float = 0.0

    @property
    def survivors(self) -> set[str]:
        return {rid for rid, pid in self.pids.items() if pid != self.killed_pid}

    @property
    def acked_by_survivors(self) -> int:
        return sum(self.acked[rid] for rid in self.survivors)

    def problems(self) -> list[str]:
        """Every violated guarantee, in words; [] when the run was clean.

        Each request is a new visitor (no cookie) whose assignment (one pull)
        and reward (1.0) happen in the worker that answers it, so a 200 names
        the replica that holds both, and the accounting is exact per replica.
        """
        out = []
        if self.read_failures:
            out.append(f"{len(self.read_failures)} state reads failed: {self.read_failures[:3]}")
        if self.exit_code != 0:
            out.append(f"gunicorn exited with {self.exit_code} after SIGTERM")
        for rid in sorted(self.survivors):
            pulls, rewards = totals(self.state.replicas.get(rid))
            if (pulls, rewards) != (self.acked[rid], self.acked[rid]):
                out.append(
                    f"surviving replica {rid[:8]} (pid {self.pids[rid]}): {self.acked[rid]} "
                    f"acknowledged, state has pulls {pulls}, rewards {rewards}"
                )
        others = [r for rid, r in self.state.replicas.items() if rid not in self.survivors]
        killed_rewards = sum(totals(r)[1] for r in others)
        killed_acked = sum(n for rid, n in self.acked.items() if rid not in self.survivors)
        if killed_rewards > killed_acked + self.failed:
            out.append(
                f"the killed worker's replica counts {killed_rewards} rewards; it acknowledged "
                f"{killed_acked} and {self.failed} requests went unanswered"
            )
        _pulls, total = global_totals(self.state)
        if not self.acked_by_survivors <= total <= self.sent:
            out.append(
                f"global reward sum {total} is outside [{self.acked_by_survivors} acknowledged "
                f"by survivors, {self.sent} sent]"
            )
        if len(self.state.replicas) < self.workers + 1:
            out.append(
                f"{len(self.state.replicas)} replica ids in the state; expected at least "
                f"{self.workers + 1} (the replacement worker's is new)"
            )
        return out


def _send_rewards(url: str, count: int, clients: int, on_sent: Any) -> tuple[list[str], int]:
    """``count`` new visitors, each rewarded once; the "ok" answers and the failures."""
    lock = threading.Lock()
    answers: list[str] = []
    failed = 0
    next_index = 0

    def client() -> None:
        nonlocal failed, next_index
        with httpx.Client(base_url=url, headers=CLOSE, timeout=LIVENESS) as http:
            while True:
                with lock:
                    if next_index >= count:
                        return
                    next_index += 1
                    on_sent(next_index)
                http.cookies.clear()  # a new visitor every time
                try:
                    response = http.get("/reward", params={"experiment": EXPERIMENT, "value": 1})
                except httpx.TransportError:
                    with lock:
                        failed += 1
                    continue
                with lock:
                    if response.status_code == 200:
                        answers.append(response.text)
                    else:
                        failed += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, failed


def kill9_run(
    directory: Path, *, workers: int, rewards: int, seed: int, clients: int = 4
) -> Kill9Result:
    """gunicorn + uvicorn workers on a file store; SIGKILL one worker mid-run; SIGTERM at the end.

    The kill goes to a random worker once a random share (20-80%) of the
    rewards has been sent. After the last reward the run waits for the
    replacement worker's first push (every worker pushes at start-up),
    then stops gunicorn gracefully: the workers flush in their lifespan
    shutdown. The state file is read throughout by a second thread.
    """
    rng = random.Random(seed)
    path = directory / "state"
    port = free_port()
    kill_after = rng.randint(rewards // 5, rewards * 4 // 5)
    kill_now = threading.Event()
    started = time.monotonic()
    with (
        serving(gunicorn(port, workers), port, directory / "gunicorn.log", app_env(f"file:{path}"))
        as server,
        StateReader(path) as reader,
    ):  # fmt: skip
        server.wait_ready()
        if not wait_for(lambda: len(read_state(path).replicas) >= workers):
            raise RuntimeError(f"the {workers} workers never all pushed:\n{server.output()}")
        killed: list[int] = []

        def killer() -> None:
            kill_now.wait()
            victims = server.children()
            pid = rng.choice(victims)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        thread = threading.Thread(target=killer)
        thread.start()
        answers, failed = _send_rewards(
            server.url, rewards, clients, lambda n: n == kill_after and kill_now.set()
        )
        kill_now.set()
        thread.join()
        replacement = wait_for(lambda: len(read_state(path).replicas) >= workers + 1)
        exit_code = server.stop()
    result = Kill9Result(
        workers=workers,
        sent=rewards,
        killed_pid=killed[0],
        killed_after=kill_after,
        failed=failed,
        state=read_state(path),
        reads=reader.reads,
        read_failures=reader.failures,
        exit_code=exit_code,
        seconds=time.monotonic() - started,
    )
    for text in answers:
        fields = dict(part.split("=", 1) for part in text.split()[1:])
        rid = fields["replica"]
        result.acked[rid] = result.acked.get(rid, 0) + 1
        result.pids[rid] = int(fields["pid"])
    if not replacement:
        result.read_failures.append("the replacement worker never pushed")
    return result


# -- how fast a reward reaches every worker ---------------------------------------------


def reward_sum(report: Mapping[str, Any], experiment: str = EXPERIMENT) -> float:
    arms = report["experiments"][experiment]["arms"]
    return float(sum(arm["reward_sum"] for arm in arms.values()))


def whoami_all(url: str, workers: int, timeout: float = LIVENESS) -> dict[int, str]:
    """pid -> replica id of every worker, asking /whoami until ``workers`` pids answered."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, headers=CLOSE, timeout=LIVENESS) as http:
        while len(seen) < workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only pids {sorted(seen)} answered /whoami")
            doc = http.get("/whoami").json()
            if seen.setdefault(doc["pid"], doc["replica_id"]) != doc["replica_id"]:
                raise AssertionError(f"pid {doc['pid']} changed its replica id")
    return seen


def pinned_clients(url: str, workers: int, timeout: float = LIVENESS) -> dict[int, httpx.Client]:
    """One keep-alive client per worker: pid -> a client whose one connection that worker accepted.

    Workers share the listening socket and the kernel gives each new
    connection to whichever worker accepts first, so an idle worker can go
    unasked for a second; a connection kept open stays with its worker, so
    polling through these reaches every worker every few milliseconds.
    """
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    pinned: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    deadline = time.monotonic() + timeout
    try:
        while len(pinned) < workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only pids {sorted(pinned)} accepted a connection")
            client = httpx.Client(base_url=url, timeout=LIVENESS, limits=limits)
            pid = client.get("/whoami").json()["pid"]
            (spare.append(client) if pid in pinned else pinned.__setitem__(pid, client))
        moved = {pid for pid, c in pinned.items() if c.get("/whoami").json()["pid"] != pid}
        if moved:
            raise RuntimeError(f"the connections to {sorted(moved)} did not stay open")
    except BaseException:
        for client in pinned.values():
            client.close()
        raise
    finally:
        for client in spare:
            client.close()
    return pinned


@dataclass
class Propagation:
    """One worker seeing one reward: bounds of the delay from the reward request, seconds.

    ``upper``: the first /stats answer from that worker that showed the
    reward was received this long after the reward request was sent.
    ``lower``: the last answer that did not show it was asked for this long
    after (0 if none). The true delay lies between them.
    """

    upper: float
    lower: float


def propagation_delays(
    url: str, workers: int, trials: int, *, timeout: float = 10.0, pause: float = 0.002
) -> list[Propagation]:
    """How long a reward sent to one worker takes to show in every other worker's /stats.

    Each trial waits until every worker reports the same reward sum, sends
    one new visitor's reward on a fresh connection, then polls /stats on
    every worker at once through ``pinned_clients`` (one thread each, a
    ``pause`` between polls) until each shows the sum risen by one.
    One ``Propagation`` per (trial, worker other than the rewarded one).
    """
    pinned = pinned_clients(url, workers)
    out: list[Propagation] = []
    try:
        with httpx.Client(base_url=url, headers=CLOSE, timeout=LIVENESS) as http:
            for _ in range(trials):
                out.extend(_one_propagation(http, pinned, timeout, pause))
    finally:
        for client in pinned.values():
            client.close()
    return out


def _one_propagation(
    http: httpx.Client, pinned: Mapping[int, httpx.Client], timeout: float, pause: float
) -> list[Propagation]:
    sums = _poll_all(pinned, lambda pid, total, sent, received: True, timeout)
    while len(set(sums.values())) != 1:  # a previous reward still on its way
        sums = _poll_all(pinned, lambda pid, total, sent, received: True, timeout)
    before = next(iter(sums.values()))
    http.cookies.clear()  # a new visitor
    began = time.monotonic()
    answer = http.get("/reward", params={"experiment": EXPERIMENT, "value": 1})
    assert answer.status_code == 200, answer.text
    origin = int(dict(p.split("=", 1) for p in answer.text.split()[1:])["pid"])
    lower: dict[int, float] = {}
    upper: dict[int, float] = {}

    def risen(pid: int, total: float, sent: float, received: float) -> bool:
        if total >= before + 1:
            upper[pid] = received - began
            return True
        lower[pid] = max(0.0, sent - began)
        return False

    _poll_all(pinned, risen, timeout, pause)
    return [Propagation(upper[pid], lower.get(pid, 0.0)) for pid in upper if pid != origin]


def _poll_all(
    pinned: Mapping[int, httpx.Client], done: Any, timeout: float, pause: float = 0.0
) -> dict[int, float]:
    """Poll every pinned worker's /stats until ``done(pid, sum, sent, received)``; pid -> sum."""
    sums: dict[int, float] = {}

    errors: list[str] = []

    def poll(pid: int, client: httpx.Client) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                report = client.get("/stats").json()
            except httpx.TransportError as exc:
                errors.append(f"pid {pid}: {exc!r}")
                return
            if report["pid"] != pid:
                errors.append(f"the connection to pid {pid} moved to pid {report['pid']}")
                return
            total = reward_sum(report)
            if done(pid, total, sent, time.monotonic()):
                sums[pid] = total
                return
            time.sleep(pause)
        errors.append(f"pid {pid} did not get there in {timeout} s")

    threads = [threading.Thread(target=poll, args=item, daemon=True) for item in pinned.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return sums
