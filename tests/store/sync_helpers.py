"""Helpers for the sync-layer tests; ``bench/sync_faults.py`` imports them too.

The fault helpers take their repetition counts as arguments: the tests call
them with CI-sized counts (``CI``), the bench with the long ones.
Child processes are forked (``multiprocessing`` "fork" context), so a
child runs a plain function of this module with the parent's imports
already done, and dies by a real SIGKILL where a test needs it to.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings

from mabware.statistics import Buckets, Statistics
from mabware.store.file import FileBackend
from mabware.store.merge import (
    SUMS,
    Key,
    Replica,
    SharedState,
    Tally,
    combined,
    compact,
    merge,
    pack,
    unpack,
)

FORK = multiprocessing.get_context("fork")
#: the steps of FileBackend's atomic write, in order
STEPS = ("temp_written", "temp_synced", "renamed", "dir_synced")
#: generous bound for liveness checks (a process must finish, not be fast)
LIVENESS = 20.0
KEY: Key = ("headline", 1)
ARMS = ("a", "b", "c")


@dataclass(frozen=True)
class Counts:
    """How many times each fault scenario runs."""

    machine_examples: int
    machine_steps: int
    crashes_per_step: int
    processes: int
    merges: int
    lock_kills: int


#: CI sizes: the whole tests/store suite stays well under a minute on 2 cores
CI = Counts(
    machine_examples=50,
    machine_steps=30,
    crashes_per_step=10,
    processes=8,
    merges=100,
    lock_kills=2,
)
#: the issue's long counts (bench/sync_faults.py)
LONG = Counts(
    machine_examples=500,
    machine_steps=50,
    crashes_per_step=250,
    processes=16,
    merges=1000,
    lock_kills=50,
)


def machine_settings(examples: int, steps: int) -> settings:
    """The loaded hypothesis profile (deadline, health checks) with these sizes."""
    return settings(
        settings.default,
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# -- building and comparing states ------------------------------------------------


def stats(
    pulls: Sequence[float],
    rewards: Sequence[float] | None = None,
    *,
    buckets: tuple[int, Sequence[Sequence[float]], Sequence[Sequence[float]]] | None = None,
) -> Statistics:
    """Statistics whose every sum is filled (responses = pulls, errors = rewards)."""
    p = np.asarray(pulls, dtype=np.float64)
    r = np.zeros_like(p) if rewards is None else np.asarray(rewards, dtype=np.float64)
    hist = np.zeros((p.size, 12))
    hist[:, 0] = p
    recent = None
    if buckets is not None:
        newest, bp, br = buckets
        recent = Buckets(newest, np.asarray(bp, dtype=np.float64), np.asarray(br, dtype=np.float64))
    return Statistics(p, r, r.copy(), r.copy(), p.copy(), r.copy(), hist, recent)


def tally(
    arms: Sequence[str], pulls: Sequence[float], rewards: Sequence[float] | None = None
) -> Tally:
    return Tally(tuple(arms), stats(pulls, rewards))


def canonical(state: SharedState) -> Any:
    """Plain, comparable data for a state (float bytes compare exactly)."""

    def tallies(ts: Mapping[Key, Tally]) -> dict[Key, Any]:
        return {key: t.to_wire() for key, t in ts.items()}

    return (
        {rid: (r.seq, r.seen, tallies(r.tallies)) for rid, r in state.replicas.items()},
        tallies(state.retired),
        dict(state.tombstones),
        dict(state.folded_seqs),
    )


def assert_clean(state: SharedState) -> None:
    """Every number in the state is finite and >= 0."""
    every = [t for r in state.replicas.values() for t in r.tallies.values()]
    for t in [*every, *state.retired.values()]:
        s = t.stats
        arrays = [getattr(s, n) for n in SUMS] + [s.latency_hist]
        if s.recent is not None:
            arrays += [s.recent.pulls, s.recent.reward_sum]
        for arr in arrays:
            assert np.isfinite(arr).all(), (t.arms, arr)
            assert (arr >= 0).all(), (t.arms, arr)


def totals(state: SharedState, key: Key = KEY, arms: Sequence[str] = ARMS) -> list[float]:
    return combined(state, key, arms, 0).pulls.tolist()


def temp_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".tmp-*"))


# -- child processes ----------------------------------------------------------------


def fork(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    """Start ``target(*args)`` in a forked child."""
    with warnings.catch_warnings():  # Python >= 3.12 warns when forking with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        child = FORK.Process(target=target, args=args, daemon=True)
        child.start()
    return child


def join(child: multiprocessing.process.BaseProcess, timeout: float = LIVENESS) -> int | None:
    """The child's exit code; a child still running after ``timeout`` is killed (None)."""
    child.join(timeout)
    if child.exitcode is None:
        child.kill()
        child.join()
        return None
    return child.exitcode


def _kill_at(step: str) -> Callable[[str], None]:
    def hook(at: str) -> None:
        if at == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _exchange(path: Path, rid: str, push: Replica, crash_at: Callable[[str], None] | None) -> None:
    FileBackend(path, clock=lambda: push.seen, crash_at=crash_at).exchange(rid, push)


def crash_trials(path: Path, step: str, trials: int) -> None:
    """``trials`` times: a child is SIGKILLed at ``step`` of its write; check the aftermath.

    After each crash the file holds exactly the old state (before the
    rename) or exactly the new one (after), a reader unpacks it, and an
    exchange by another process (a fresh backend, which removes the dead
    writer's temp file) succeeds and keeps what was there.
    """
    now = 1_800_000_000.0
    reader = FileBackend(path, clock=lambda: now)
    reader.exchange("survivor", Replica(1, now, {KEY: tally(ARMS, [1, 0, 0])}))
    landed = STEPS.index(step) >= STEPS.index("renamed")
    for i in range(1, trials + 1):
        before = path.read_bytes()
        push = Replica(i, now, {KEY: tally(ARMS, [i, 2 * i, 0], [i / 2, 0, 0])})
        child = fork(_exchange, path, "crasher", push, _kill_at(step))
        assert join(child) == -signal.SIGKILL, f"{step}: the child was not killed at the hook"
        after = path.read_bytes()
        if landed:
            expected = compact(merge(unpack(before), "crasher", push), now, 3600.0)
            assert after == pack(expected), f"{step}: the file is not exactly the new state"
        else:
            assert after == before, f"{step}: the state changed before the rename"
            assert len(temp_files(path)) == 1, "the dead writer's temp file should be there"
        assert_clean(reader.read())  # a whole, valid state: unpack checks the CRC
        survivor = FileBackend(path, clock=lambda: now)  # another process starts
        assert temp_files(path) == [], "a new backend removes stale temp files"
        state = survivor.exchange(
            "survivor", Replica(i + 1, now, {KEY: tally(ARMS, [i + 1, 0, 0])})
        )
        assert state.replicas["survivor"].seq == i + 1
        if landed:
            assert state.replicas["crasher"].seq == i
            assert totals(state) == [2 * i + 1, 2 * i, 0]
        else:
            assert "crasher" not in state.replicas
            assert totals(state) == [i + 1, 0, 0]
        assert canonical(reader.read()) == canonical(state)


def _hammer(path: Path, rid: str, merges: int, start: Any) -> None:
    """Push cumulative totals ``merges`` times; fail if any replica's seq ever regresses."""
    backend = FileBackend(path)
    pulls, rewards = np.zeros(3), np.zeros(3)
    seen: dict[str, int] = {}
    start.wait()
    for seq in range(1, merges + 1):
        pulls[seq % 3] += 1
        rewards[seq % 3] += 0.25 * (seq % 2)
        state = backend.exchange(rid, Replica(seq, time.time(), {KEY: tally(ARMS, pulls, rewards)}))
        for other, replica in state.replicas.items():
            assert replica.seq >= seen.get(other, 0), f"{other} went back: a lost update"
            seen[other] = replica.seq
        assert state.replicas[rid].seq == seq


def concurrent_merges(path: Path, processes: int, merges: int) -> SharedState:
    """``processes`` children each push ``merges`` times on one file; the exact totals."""
    start = FORK.Event()
    children = [fork(_hammer, path, f"p{i}", merges, start) for i in range(processes)]
    start.set()
    codes = [join(c, timeout=LIVENESS + merges * processes * 0.1) for c in children]
    assert codes == [0] * processes, codes
    state = FileBackend(path).read()
    assert sorted(state.replicas) == sorted(f"p{i}" for i in range(processes))
    assert all(r.seq == merges for r in state.replicas.values())
    per_arm = [sum(1 for s in range(1, merges + 1) if s % 3 == arm) * processes for arm in range(3)]
    total = combined(state, KEY, ARMS, 0)
    assert total.pulls.tolist() == per_arm
    assert total.pulls.sum() == processes * merges
    assert total.reward_sum.sum() == processes * 0.25 * ((merges + 1) // 2)
    return state


def _hold_lock(path: Path, ready: Connection) -> None:
    with FileBackend(path)._locked():
        ready.send("locked")
        time.sleep(3600)


def _sleep_at(step: str, ready: Connection) -> Callable[[str], None]:
    def hook(at: str) -> None:
        if at == step:
            ready.send(at)
            time.sleep(3600)

    return hook


def _exchange_slowly(path: Path, ready: Connection) -> None:
    push = Replica(1, time.time(), {KEY: tally(ARMS, [5, 0, 0])})
    FileBackend(path, crash_at=_sleep_at("temp_written", ready)).exchange("doomed", push)


def lock_is_held(path: Path) -> bool:
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases it if we got it
    return False


def kill_lock_holder(path: Path, *, mid_write: bool, seq: int = 1) -> float:
    """A child holds the lock and is SIGKILLed; seconds until our blocked exchange is through.

    ``mid_write``: the child is inside an exchange, its temp file written;
    otherwise it holds ``FileBackend._locked()`` alone.
    """
    waiter = FileBackend(path)  # made before the crash: it cleans temp files only at start
    theirs, ours = FORK.Pipe()
    child = fork(_exchange_slowly if mid_write else _hold_lock, path, theirs)
    done = threading.Event()
    result: list[SharedState] = []

    def exchange() -> None:
        push = Replica(seq, time.time(), {KEY: tally(ARMS, [0, seq, 0])})
        result.append(waiter.exchange("waiter", push))
        done.set()

    try:
        assert ours.poll(LIVENESS), "the child never took the lock"
        ours.recv()
        assert lock_is_held(path)
        thread = threading.Thread(target=exchange, daemon=True)
        thread.start()
        assert not done.wait(0.2), "an exchange got through while another process held the lock"
    finally:
        killed = time.monotonic()
        child.kill()
    assert done.wait(LIVENESS), "the dead process's lock was never released"
    elapsed = time.monotonic() - killed
    thread.join()
    assert join(child) == -signal.SIGKILL
    state = result[0]
    assert "doomed" not in state.replicas, "the killed exchange never renamed its file"
    assert state.replicas["waiter"].seq == seq
    assert canonical(waiter.read()) == canonical(state)
    assert len(temp_files(path)) == (1 if mid_write else 0)
    FileBackend(path)  # the next process to start removes the dead writer's temp file
    assert temp_files(path) == []
    return elapsed


@contextlib.contextmanager
def lock_held_by_thread(backend: FileBackend) -> Iterator[threading.Event]:
    """A thread of this process sits inside ``backend._locked()`` until the event is set."""
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with backend._locked():
            entered.set()
            release.wait(LIVENESS)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert entered.wait(LIVENESS)
    try:
        yield release
    finally:
        release.set()
        thread.join()
