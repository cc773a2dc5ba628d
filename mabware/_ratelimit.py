"""Log a failure once per cause per interval, and count every occurrence.

The request path degrades instead of raising (STYLE.md, habit 2), so the
same cause can repeat thousands of times a second; the log gets one line
per cause per ``interval`` and the counter gets all of them.

``listeners`` hear every occurrence as it happens (``mabware.metrics`` turns
them into Prometheus counters); with none attached the cost is one check of
an empty list.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable


class OncePerInterval:
    """Counts events by cause and logs each cause at most once per interval.

    Args:
        logger: where the lines go.
        interval: seconds between two lines for the same cause.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        #: called with the cause on every occurrence, outside the lock; keep them cheap
        self.listeners: list[Callable[[str], None]] = []

    def __call__(self, cause: str, message: str, level: int = logging.WARNING) -> bool:
        """Count ``cause``; log ``message`` if the cause is not muted. True if logged."""
        now = self._clock()
        for listener in self.listeners:
            listener(cause)
        with self._lock:
            self.counts[cause] += 1
            last = self._last.get(cause)
            if last is not None and now - last < self._interval:
                return False
            self._last[cause] = now
        self._logger.log(level, "%s (cause=%s, count=%d)", message, cause, self.counts[cause])
        return True
