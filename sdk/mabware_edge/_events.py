"""Counting failures by cause and logging each cause at most once a minute.

A failure on the request path (a bad reward, a refused snapshot, an
unreachable server) must be visible without flooding the log: each one is
counted in a ``Counter`` the app can read or export, and logged the first
time its cause is seen in a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

logger = logging.getLogger("mabware_edge")

LOG_INTERVAL = 60.0


class Events:
    """One family of events: ``counts[cause]`` and a rate-limited log line.

    Args:
        counts: the counter to add to (the client exposes it).
        level: the log level of the lines.
        clock: monotonic seconds, for the once-a-minute rule.
    """

    def __init__(
        self,
        counts: Counter[str],
        *,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counts = counts
        self.level = level
        self._clock = clock
        self._logged: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, cause: str, message: str) -> None:
        """Count ``cause``; log ``message`` unless the cause was logged in the last minute."""
        now = self._clock()
        with self._lock:
            self.counts[cause] += 1
            last = self._logged.get(cause)
            if last is not None and now - last < LOG_INTERVAL:
                return
            self._logged[cause] = now
        logger.log(self.level, "%s", message)

    def reset_lock(self) -> None:
        """A new lock, in a child after fork (another thread may have held this one)."""
        self._lock = threading.Lock()
