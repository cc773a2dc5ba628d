"""The server's experiments: their settings, shared by every server worker.

The statistics of an experiment live in the store (merged per replica);
its *settings* (arms, policy, default arm, reward range, version, arms an
operator switched off) live here, beside the store, so that every worker
of ``mabware serve --workers N`` serves the same experiments:

* ``file:PATH``: a JSON document at ``PATH.experiments.json``, changed
  under an ``flock`` on ``PATH.experiments.lock`` and written atomically
  (temp file, fsync, rename, directory fsync) like the state itself. A
  worker notices a change by the file's identity (inode, size, mtime), one
  ``stat`` per request.
* ``redis://HOST``: a JSON document in the key ``mabware:experiments``,
  changed in a WATCH / MULTI transaction (retried when another worker
  changed it meanwhile). Workers look at it at most every 0.25 s (one
  Redis round trip), and at once when a request names an experiment they
  do not know.
* ``memory:``: a dict in this process (one worker).

Every change is a read-modify-write under the lock, so two workers that
create experiments at the same moment both land.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mabware.experiment import Experiment
from mabware.store._durable import beside, locked, read_revision, revision, write_atomically

#: registry document format
FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """One experiment as the server runs it.

    Attributes:
        experiment: the settings (its ``version`` rises with every reset).
        strategy: the policy name as the client spelled it (echoed back, as
            the MAB E-Commerce Optimizer does).
        strategy_params: the policy settings as the client gave them.
        disabled_arms: arms an operator switched off.
        created: when it was created (server clock, seconds).
    """

    experiment: Experiment
    strategy: str
    strategy_params: Mapping[str, Any] = field(default_factory=dict)
    disabled_arms: frozenset[str] = frozenset()
    created: float = 0.0

    def to_doc(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "experiment": self.experiment.to_dict(),
            "strategy": self.strategy,
            "strategy_params": dict(self.strategy_params),
            "disabled_arms": sorted(self.disabled_arms),
            "created": self.created,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Entry:
        """The inverse of ``to_doc`` (ConfigError from ``Experiment.from_dict``)."""
        return cls(
            Experiment.from_dict(doc["experiment"]),
            doc["strategy"],
            dict(doc.get("strategy_params", {})),
            frozenset(doc.get("disabled_arms", ())),
            float(doc.get("created", 0.0)),
        )


Entries = dict[str, Entry]
Change = Callable[[Entries], Entries]


class Registry(Protocol):
    """Where the server's experiment settings live."""

    def revision(self) -> object:
        """A token that changes whenever the entries change (cheap: called per request)."""
        ...

    def load(self) -> tuple[object, Entries]:
        """The entries and the revision they belong to."""
        ...

    def update(self, change: Change) -> tuple[object, Entries]:
        """Apply ``change`` atomically (it may raise: then nothing changes)."""
        ...


class MemoryRegistry:
    """The entries in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: Entries = {}
        self._revision = 0

    def revision(self) -> object:
        return self._revision

    def load(self) -> tuple[object, Entries]:
        with self._lock:
            return self._revision, dict(self._entries)

    def update(self, change: Change) -> tuple[object, Entries]:
        with self._lock:
            self._entries = change(dict(self._entries))
            self._revision += 1
            return self._revision, dict(self._entries)


class FileRegistry:
    """The entries in a JSON file beside the state file."""

    def __init__(self, state_path: str | os.PathLike[str]) -> None:
        self.path = beside(state_path, ".experiments.json")
        self.lock_path = beside(state_path, ".experiments.lock")

    def __repr__(self) -> str:
        return f"FileRegistry({str(self.path)!r})"

    def revision(self) -> object:
        return revision(self.path)

    def load(self) -> tuple[object, Entries]:
        # The rename makes every read whole, and the pair belongs together
        found, data = read_revision(self.path)
        return (found, {}) if data is None else (found, _entries(json.loads(data)))

    def update(self, change: Change) -> tuple[object, Entries]:
        with locked(self.lock_path):
            _, entries = self.load()
            entries = change(entries)
            data = json.dumps(_document(entries), indent=1).encode()
            temp = self.path.with_name(
                f"{self.path.name}.tmp-{os.getpid()}-{threading.get_ident()}"
            )
            write_atomically(self.path, data, temp)
            return self.load()


def _entries(doc: Any) -> Entries:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a mabware experiments document (format 1)")
    out: Entries = {}
    for item in doc["experiments"]:
        entry = Entry.from_doc(item)
        out[entry.experiment.name] = entry
    return out


class RedisRegistry:
    """The entries in one Redis key (``{key_prefix}:experiments``).

    Args:
        client: a redis-py client (the store backend's own connection pool).
        key_prefix: the store's key prefix.
        recheck: seconds a seen revision is trusted before Redis is asked again.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        client: Any,
        *,
        key_prefix: str = "mabware",
        recheck: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self.key = f"{key_prefix}:experiments"
        self._recheck = recheck
        self._clock = clock
        self._seen: tuple[float, object] = (-float("inf"), None)

    def __repr__(self) -> str:
        return f"RedisRegistry({self.key!r})"

    def revision(self) -> object:
        at, revision = self._seen
        now = self._clock()
        if now - at >= self._recheck:
            revision, _ = self.load()
        return revision

    def load(self) -> tuple[object, Entries]:
        raw = self._redis.get(self.key)
        revision, entries = (None, {}) if raw is None else _revisioned(json.loads(raw))
        self._seen = (self._clock(), revision)
        return revision, entries

    def update(self, change: Change) -> tuple[object, Entries]:
        import redis  # the redis extra is installed: the client exists

        while True:
            with self._redis.pipeline() as pipe:
                try:
                    pipe.watch(self.key)
                    raw = pipe.get(self.key)
                    revision, entries = (0, {}) if raw is None else _revisioned(json.loads(raw))
                    entries = change(entries)
                    doc = _document(entries)
                    doc["revision"] = int(revision or 0) + 1  # type: ignore[call-overload]
                    pipe.multi()
                    pipe.set(self.key, json.dumps(doc))
                    pipe.execute()
                except redis.WatchError:
                    continue  # another worker changed it between our read and write
            return self.load()


def _revisioned(doc: Any) -> tuple[object, Entries]:
    return doc.get("revision"), _entries(doc)


def _document(entries: Entries) -> dict[str, Any]:
    return {"format": FORMAT, "experiments": [e.to_doc() for e in entries.values()]}


def open_registry(store_url: str, backend: object = None) -> Registry:
    """The registry beside the store ``store_url`` names.

    ``backend`` is the store's backend: the Redis registry shares its client.
    """
    scheme, _, rest = store_url.partition(":")
    if scheme.lower() == "file" and rest:
        return FileRegistry(rest)
    if scheme.lower() in ("redis", "rediss"):
        client = getattr(backend, "client", None)
        if client is None:
            raise ValueError("a Redis registry needs the RedisBackend's client")
        return RedisRegistry(client, key_prefix=getattr(backend, "key_prefix", "mabware"))
    return MemoryRegistry()
