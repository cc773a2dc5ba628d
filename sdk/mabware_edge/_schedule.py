"""When to refresh the snapshot and push the totals, and who does it.

Three modes, one schedule:

* ``"thread"`` (default): one daemon thread refreshes every
  ``refresh_interval`` and pushes every ``push_interval`` (each jittered by
  up to 10%, so a fleet started together does not call in step), earlier
  when ``push_after`` counts are waiting.
* ``"lazy"``, for runtimes that freeze or forbid long-lived threads: no
  thread waits. A ``decide`` or ``reward`` that finds work due starts one
  short-lived thread for it and returns at once; where threads cannot be
  started at all, work waits for the app's ``maybe_refresh()``.
* ``"manual"``: only the app's ``refresh()``, ``push()`` or
  ``maybe_refresh()`` calls do anything (a simulator, a batch job).

Failures back off exponentially with jitter, from the interval up to 60 s.

``threading`` is imported by the first thread started: a manual client (a
batch job, a cold start that only decides) never needs it.
"""

from __future__ import annotations

import os
from _thread import allocate_lock, get_ident  # threading.Lock itself, and the thread's id
from collections.abc import Callable
from typing import TYPE_CHECKING

from mabware_edge._events import logger
from mabware_edge._feed import Feed

if TYPE_CHECKING:
    import threading

    from mabware_edge._push import Pusher

MODES = ("thread", "lazy", "manual")
BACKOFF_CAP = 60.0
_POLL = 1.0  # the thread looks at least this often: an injected clock may jump


def backoff(failures: int, interval: float) -> float:
    """Seconds to wait after ``failures`` failures in a row (jittered, at most 60)."""
    return min(BACKOFF_CAP, interval * 2.0 ** (failures - 1)) * _uniform(0.5, 1.0)


def jittered(interval: float) -> float:
    return interval * _uniform(0.9, 1.1)


def _uniform(low: float, high: float) -> float:
    """``random.uniform(low, high)``, from ``os.urandom``.

    A few draws a minute need no ``random`` module (a cold start need not import
    it), and no generator state that forked workers could share and so jitter in step.
    """
    return low + (high - low) * (int.from_bytes(os.urandom(7), "big") >> 3) * 2.0**-53


class Scheduler:
    """The refresh and push timetable and the thread (or worker) that keeps it.

    Args:
        mode: ``"thread"``, ``"lazy"`` or ``"manual"`` (module docstring).
        feed: refreshed by ``feed.fetch()``.
        pusher: pushes, or None without a push URL.
        clock: the client's clock.
        refresh_interval: seconds between refreshes.
        push_interval: seconds between pushes.
    """

    def __init__(
        self,
        mode: str,
        feed: Feed,
        pusher: Pusher | None,
        clock: Callable[[], float],
        refresh_interval: float,
        push_interval: float,
    ) -> None:
        self.mode, self.feed, self.pusher, self.clock = mode, feed, pusher, clock
        self.refresh_interval, self.push_interval = refresh_interval, push_interval
        now = clock()
        # the first refresh at once; none ever without a URL (cache file and load() only)
        self.next_refresh = now if feed.url is not None else float("inf")
        self.next_push = now + jittered(push_interval)
        self.refresh_failures = self.push_failures = 0
        #: clock time from which a call should ``kick``; inf unless lazy
        self.due = float("inf")
        self._threads = mode == "lazy"  # may short-lived threads be started?
        if self._threads:
            # now, not in the decide() whose kick starts the first worker
            import threading  # noqa: F401
        self._new_sync_objects()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._set_due()

    def _new_sync_objects(self) -> None:
        self._wake: threading.Event | None = None  # the thread's alarm: start() makes it
        self._busy = allocate_lock()  # one tick at a time
        self._worker: threading.Thread | None = None

    # -- the timetable ------------------------------------------------------------

    def refreshed(self, ok: bool, now: float) -> None:
        if self.feed.url is None:
            return
        self.refresh_failures = 0 if ok else self.refresh_failures + 1
        wait = self.refresh_interval
        self.next_refresh = now + (jittered(wait) if ok else backoff(self.refresh_failures, wait))
        self._set_due()

    def pushed(self, ok: bool, now: float) -> None:
        self.push_failures = 0 if ok else self.push_failures + 1
        if not ok:
            self.next_push = now + backoff(self.push_failures, self.push_interval)
        elif self.pusher is not None and self.pusher.due():
            self.next_push = now  # a resent body went through: the news since goes next
        else:
            self.next_push = now + jittered(self.push_interval)
        self._set_due()

    def _set_due(self) -> None:
        if self.mode == "lazy" and self._threads and not self._stopped:
            pushing = self.next_push if self.pusher is not None else float("inf")
            self.due = min(self.next_refresh, pushing)

    def _push_wanted(self, now: float) -> bool:
        p = self.pusher
        if p is None:
            return False
        return now >= self.next_push or p.ledger.changes >= p.ledger.push_at

    def tick(self, now: float) -> None:
        """Do what is due: refresh, push, or both (on the caller's thread)."""
        with self._busy:
            if now >= self.next_refresh:
                self.refreshed(self.feed.fetch(), now)
            if self.pusher is not None and self._push_wanted(now):
                self.pushed(self.pusher.push(now), now)

    def refresh_now(self, now: float) -> bool:
        """Refresh at once, whatever the timetable says (``EdgeClient.refresh``)."""
        with self._busy:
            ok = self.feed.fetch()
            self.refreshed(ok, now)
            return ok

    def push_now(self, now: float) -> bool:
        """Push at once, whatever the timetable says (``EdgeClient.push``, ``close``)."""
        if self.pusher is None:
            return False
        with self._busy:
            ok = self.pusher.push(now)
            self.pushed(ok, now)
            return ok

    # -- who does the work --------------------------------------------------------

    def kick(self) -> None:
        """Work may be due: wake the thread, or (lazy) start a short-lived one."""
        if self.mode == "thread":
            wake = self._wake
            if wake is not None:
                wake.set()
        elif self.mode == "lazy" and self._threads and not self._busy.locked():
            import threading  # imported by __init__ already: a lookup

            self.due = float("inf")  # one worker at a time; the worker sets it again
            worker = threading.Thread(target=self._work, name="mabware-edge-lazy", daemon=True)
            try:
                worker.start()
            except RuntimeError:  # no threads here: the app's maybe_refresh() does it
                self._threads = False
                return
            self._worker = worker

    def _work(self) -> None:
        try:
            self.tick(self.clock())
        except Exception:  # pragma: no cover - fetch and push count their own failures
            logger().exception("mabware-edge: refresh or push failed")
        finally:
            self._set_due()

    def start(self) -> None:
        """Start the thread (thread mode); idempotent."""
        if self.mode != "thread" or self._thread is not None or self._stopped:
            return
        import threading  # see the module docstring

        wake = self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(wake,), name="mabware-edge", daemon=True
        )
        self._thread.start()

    def _run(self, wake: threading.Event) -> None:
        while not self._stopped:
            try:
                self.tick(self.clock())
            except Exception:  # pragma: no cover - as in _work
                logger().exception("mabware-edge: refresh or push failed")
            pushing = self.next_push if self.pusher is not None else float("inf")
            delay = min(self.next_refresh, pushing) - self.clock()
            wake.wait(min(max(delay, 0.0), _POLL))
            wake.clear()

    def stop(self, timeout: float) -> None:
        """Stop the thread and wait for a running worker; idempotent."""
        self._stopped = True
        self.due = float("inf")
        if self._wake is not None:
            self._wake.set()
        for thread in (self._thread, self._worker):
            if thread is not None and thread.ident != get_ident():  # not from the thread itself
                thread.join(timeout)
        self._thread = self._worker = None

    def forked(self) -> None:
        """In a child after fork: fresh locks, and the thread again if it ran."""
        running = self._thread is not None and not self._stopped
        self._new_sync_objects()
        self._thread = None
        if running:
            self.start()
