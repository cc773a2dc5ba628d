"""Where a process keeps its statistics, and how processes learn together.

A ``Store`` holds this process's counters (its replica, DESIGN.md "Data
model") and, for the shared backends, the merged global state it last
pulled. The engine reads ``statistics()`` to recompute allocations and
writes pulls, rewards and responses; it never waits on a backend.

``open_store(url, experiments)`` picks the backend from a URL:

* ``memory:`` one process, nothing shared (tests, single-worker apps).

The file, HTTP and Redis backends arrive with the sync layer and plug in
behind the same class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.store.local import Store

__all__ = ["Store", "open_store"]

_SCHEMES: dict[str, Callable[[str, Sequence[Experiment]], Store]] = {
    "memory": lambda _rest, experiments: Store(experiments),
}


def open_store(url: str | Store, experiments: Sequence[Experiment]) -> Store:
    """The store a URL names; ConfigError for an unknown or malformed URL."""
    if isinstance(url, Store):
        return url
    if not isinstance(url, str) or ":" not in url:
        raise ConfigError(
            f"store must be a URL such as 'memory:' or 'file:./mabware.state', got {url!r}",
            payload=url,
        )
    scheme, _, rest = url.partition(":")
    factory = _SCHEMES.get(scheme.lower())
    if factory is None:
        raise ConfigError(
            f"unknown store scheme {scheme!r} in {url!r}; supported: "
            + ", ".join(f"'{s}:'" for s in sorted(_SCHEMES)),
            payload=url,
        )
    return factory(rest, experiments)
