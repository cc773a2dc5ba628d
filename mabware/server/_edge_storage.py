"""Where the published edge snapshot lives: beside the store, shared by every worker.

One snapshot at a time, the latest, as the signed bytes
``mabware.edge_snapshot.issue`` made (``mabware.server._publisher`` decides
when to issue). Like the experiment registry (``_registry``), it lives
where the store does, so every worker of ``mabware serve --workers N``, and
every host on one Redis, serves the same sequence and allocations:

* ``file:PATH``: the file ``PATH.edge``, replaced under an ``flock`` on
  ``PATH.edge.lock`` and written atomically (temp file, fsync, rename,
  directory fsync). Its revision is the file's identity (inode, size,
  mtime): one ``stat``, which workers make at most every 0.05 s.
* ``redis://HOST``: the hash ``{key_prefix}:edge`` (beside the registry's
  ``{key_prefix}:experiments``), fields ``data`` and ``revision`` (a
  counter), replaced in a WATCH / MULTI transaction and retried when
  another worker replaced it meanwhile. Its revision is one HGET, which
  workers make at most every 0.25 s.
* ``memory:``: in this process.

``replace`` is a read-modify-write under the lock: the caller sees what is
stored and says whether to replace it, so of many workers that find the
snapshot due at once, one issues and the others keep what it wrote.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from mabware.store._durable import beside, locked, read_revision, revision, write_atomically

#: given what is stored (None: nothing), the bytes to store instead, or None to keep it
Make = Callable[[bytes | None], bytes | None]


class EdgeStorage(Protocol):
    """The latest snapshot's bytes, shared by the workers of one store."""

    #: seconds a seen revision is trusted before the storage is asked again
    recheck: float

    def revision(self) -> object:
        """A token that changes whenever the stored bytes do (cheap)."""
        ...

    def load(self) -> tuple[object, bytes | None]:
        """The stored bytes (None: none yet) and their revision."""
        ...

    def replace(self, make: Make) -> tuple[object, bytes | None]:
        """Store what ``make`` returns for the stored bytes, atomically; what is stored then."""
        ...


class MemoryEdgeStorage:
    """The snapshot in this process (``memory:``: one worker)."""

    recheck = 0.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revision = 0
        self._data: bytes | None = None

    def revision(self) -> object:
        return self._revision

    def load(self) -> tuple[object, bytes | None]:
        with self._lock:
            return self._revision, self._data

    def replace(self, make: Make) -> tuple[object, bytes | None]:
        with self._lock:
            data = make(self._data)
            if data is not None:
                self._data = data
                self._revision += 1
            return self._revision, self._data


class FileEdgeStorage:
    """The snapshot in ``PATH.edge`` beside the state file ``PATH``."""

    recheck = 0.05

    def __init__(self, state_path: str | os.PathLike[str]) -> None:
        self.path = beside(state_path, ".edge")
        self.lock_path = beside(state_path, ".edge.lock")

    def __repr__(self) -> str:
        return f"FileEdgeStorage({str(self.path)!r})"

    def revision(self) -> object:
        return revision(self.path)

    def load(self) -> tuple[object, bytes | None]:
        return read_revision(self.path)

    def replace(self, make: Make) -> tuple[object, bytes | None]:
        with locked(self.lock_path):
            revision, stored = self.load()
            data = make(stored)
            if data is None:
                return revision, stored
            temp = self.path.with_name(
                f"{self.path.name}.tmp-{os.getpid()}-{threading.get_ident()}"
            )
            write_atomically(self.path, data, temp)
            return self.load()


class RedisEdgeStorage:
    """The snapshot in the Redis hash ``{key_prefix}:edge``.

    Args:
        client: a redis-py client (the store backend's own connection pool).
        key_prefix: the store's key prefix.
    """

    recheck = 0.25

    def __init__(self, client: Any, *, key_prefix: str = "mabware") -> None:
        self._redis = client
        self.key = f"{key_prefix}:edge"

    def __repr__(self) -> str:
        return f"RedisEdgeStorage({self.key!r})"

    def revision(self) -> object:
        raw = self._redis.hget(self.key, "revision")
        return None if raw is None else int(raw)

    def load(self) -> tuple[object, bytes | None]:
        revision, data = self._redis.hmget(self.key, ["revision", "data"])
        return (None if revision is None else int(revision)), data

    def replace(self, make: Make) -> tuple[object, bytes | None]:
        import redis  # the redis extra is installed: the client exists

        while True:
            with self._redis.pipeline() as pipe:
                try:
                    pipe.watch(self.key)
                    raw, stored = pipe.hmget(self.key, ["revision", "data"])
                    revision = None if raw is None else int(raw)
                    data = make(stored)
                    if data is None:
                        return revision, stored
                    revision = (revision or 0) + 1
                    pipe.multi()
                    pipe.hset(self.key, mapping={"data": data, "revision": revision})
                    pipe.execute()
                    return revision, data
                except redis.WatchError:
                    continue  # another worker replaced it between our read and write


def open_edge_storage(store_url: str, backend: object = None) -> EdgeStorage:
    """The snapshot storage beside the store ``store_url`` names (``open_registry``'s rule).

    ``backend`` is the store's backend: the Redis storage shares its client.
    """
    scheme, _, rest = store_url.partition(":")
    if scheme.lower() == "file" and rest:
        return FileEdgeStorage(rest)
    if scheme.lower() in ("redis", "rediss"):
        client = getattr(backend, "client", None)
        if client is None:
            raise ValueError("a Redis snapshot storage needs the RedisBackend's client")
        return RedisEdgeStorage(client, key_prefix=getattr(backend, "key_prefix", "mabware"))
    return MemoryEdgeStorage()
