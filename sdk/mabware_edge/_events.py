"""Counting failures by cause and logging each cause at most once a minute.

A failure on the request path (a bad reward, a refused snapshot, an
unreachable server) must be visible without flooding the log: each one is
counted in a ``Counter`` the app can read or export, and logged the first
time its cause is seen in a minute.

``logging`` is imported by the first line logged, not with the SDK: it
would add several milliseconds to every cold start, and a healthy process
may never log at all.
"""

from __future__ import annotations

import time
from _thread import allocate_lock  # threading.Lock itself, without importing threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

LOG_INTERVAL = 60.0
# logging's level numbers (fixed since Python 2), so that choosing one needs no import
DEBUG, INFO, WARNING = 10, 20, 30

_logger: logging.Logger | None = None


def logger() -> logging.Logger:
    """The ``mabware_edge`` logger, set up on first use.

    It gets a ``NullHandler``, as a library's logger should: an app that
    configures no logging sees nothing (not Python's last-resort stderr).
    Two threads racing here may add two; a second NullHandler is harmless.
    """
    global _logger
    if _logger is None:
        import logging

        found = logging.getLogger("mabware_edge")
        found.addHandler(logging.NullHandler())
        _logger = found
    return _logger


class Events:
    """One family of events: ``counts[cause]`` and a rate-limited log line.

    Args:
        counts: the counter to add to (the client exposes it).
        level: the log level of the lines (a ``logging`` level).
        clock: monotonic seconds, for the once-a-minute rule.
    """

    def __init__(
        self,
        counts: Counter[str],
        *,
        level: int = WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counts = counts
        self.level = level
        self._clock = clock
        self._logged: dict[str, float] = {}
        self._lock = allocate_lock()

    def __call__(self, cause: str, message: str) -> None:
        """Count ``cause``; log ``message`` unless the cause was logged in the last minute."""
        now = self._clock()
        with self._lock:
            self.counts[cause] += 1
            last = self._logged.get(cause)
            if last is not None and now - last < LOG_INTERVAL:
                return
            self._logged[cause] = now
        logger().log(self.level, "%s", message)

    def reset_lock(self) -> None:
        """A new lock, in a child after fork (another thread may have held this one)."""
        self._lock = allocate_lock()
