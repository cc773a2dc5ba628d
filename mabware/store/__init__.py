"""Where a process keeps its statistics, and how processes learn together.

A ``Store`` holds this process's counters (its replica, DESIGN.md "Data
model") and, for the shared backends, the merged global state it last
pulled. The engine reads ``statistics()`` to recompute allocations and
writes pulls, rewards and responses; it never waits on a backend.

``open_store(url, experiments)`` picks the backend from a URL:

* ``memory:`` one process, nothing shared (tests, single-worker apps).
* ``file:PATH`` many processes on one host (``mabware.store.file``): the
  embedded default.
* ``http://HOST`` / ``https://HOST`` the standalone server's sync endpoint
  (``mabware.store.http``; needs the ``server`` extra).
* ``redis://HOST`` many hosts on an existing Redis (``mabware.store.redis``;
  needs the ``redis`` extra).

Shared backends sync through ``mabware.store.shared.SharedStore``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.store.file import FileBackend
from mabware.store.local import Store
from mabware.store.shared import SharedStore

__all__ = ["SharedStore", "Store", "open_store"]


Factory = Callable[[str, str, Sequence[Experiment], float], Store]


def _file(url: str, rest: str, experiments: Sequence[Experiment], interval: float) -> Store:
    if not rest:
        raise ConfigError("file: store needs a path, e.g. 'file:./mabware.state'")
    return SharedStore(experiments, FileBackend(rest), scheme="file", sync_interval=interval)


def _http(url: str, rest: str, experiments: Sequence[Experiment], interval: float) -> Store:
    try:  # httpx is an extra: import it only for the stores that need it
        from mabware.store.http import HttpBackend
    except ImportError as exc:
        raise ConfigError(
            f"{url!r} needs httpx: pip install 'mabware[server]'", original_error=exc
        ) from exc
    scheme = url.partition(":")[0].lower()
    return SharedStore(experiments, HttpBackend(url), scheme=scheme, sync_interval=interval)


def _redis(url: str, rest: str, experiments: Sequence[Experiment], interval: float) -> Store:
    try:
        from mabware.store.redis import RedisBackend
    except ImportError as exc:
        raise ConfigError(
            f"{url!r} needs redis-py: pip install 'mabware[redis]'", original_error=exc
        ) from exc
    return SharedStore(experiments, RedisBackend(url), scheme="redis", sync_interval=interval)


_SCHEMES: dict[str, Factory] = {
    "memory": lambda _url, _rest, experiments, _interval: Store(experiments),
    "file": _file,
    "http": _http,
    "https": _http,
    "redis": _redis,
    "rediss": _redis,
}


def open_store(
    url: str | Store, experiments: Sequence[Experiment], *, sync_interval: float = 1.0
) -> Store:
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
    if not (isinstance(sync_interval, int | float) and sync_interval > 0):
        raise ConfigError(f"sync_interval must be a number of seconds > 0, got {sync_interval!r}")
    return factory(url, rest, experiments, float(sync_interval))
