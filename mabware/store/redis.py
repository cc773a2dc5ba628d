"""``redis://HOST``: many hosts learning together through one Redis.

Four keys hold the state of ``mabware.store.merge`` (``mabware`` is the
default ``key_prefix``):

* ``mabware:replicas`` hash, replica id -> the replica's latest push,
  msgpack of ``merge.replica_to_wire``;
* ``mabware:seqs`` hash, replica id -> that push's sequence number;
* ``mabware:tombstones`` hash, replica id -> when it was folded and the seq
  of its push that was (``repr`` of a float, a space, the seq; before
  format 2 the time alone);
* ``mabware:retired`` string, msgpack of the retired tallies.

A merge is one Lua script, atomic like every script in Redis, run with
EVALSHA (redis-py loads it again after a server restart): a tombstoned
replica is refused (``RetiredReplicaError``, with the seq folded); a push whose seq is not
higher than the stored one is kept out; otherwise the blob and seq are
set. The script then returns every replica blob, the retired blob and the
tombstones, and the client decodes them into a ``SharedState``. Floats
travel exactly: Lua never parses a blob (Lua numbers would print with 14
significant digits); the only number it reads is the integer seq, passed
as a decimal string in ARGV, compared with ``tonumber`` (exact below 2**53).

Compaction (folding replicas silent past the retention into the retired
tallies) adds floats, so it runs in the client that notices it is due:
under WATCH on the four keys it reads the state again, computes
``merge.compact``, and in one MULTI/EXEC deletes the folded replicas' blobs
and seqs, writes their tombstones and the new retired blob. If another
client changed any key meanwhile (a folded replica came back to life, say)
EXEC does nothing and the compaction waits for a later exchange: a replica
is never both live and retired. "Silent" compares the replica's own clock
(``seen``, set when it pushed) with the compacting client's, so the hosts'
clocks must agree to well within the retention (NTP does).

Durability is Redis's AOF policy. With ``appendonly yes`` and
``appendfsync always`` Redis writes and fsyncs a merge before it replies,
so an acknowledged merge survives a crash of Redis or of the machine (the
tests SIGKILL the server and restart it on the same directory). With
``appendfsync everysec`` (Redis's default once AOF is on) about the last
second of acknowledged merges may be lost in a crash (two at worst, Redis
documents; usually none when only the Redis process dies, as the write
precedes the reply). Without AOF, everything since the last RDB snapshot
is lost. A compaction is one MULTI/EXEC, whole or absent after a crash.
And a replica that is still running pushes its cumulative totals again:
what Redis lost of it comes back at its next push.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import msgpack
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mabware.exceptions import ConfigError
from mabware.store._stored import decode_replicas, decode_tallies, encode_tallies
from mabware.store.merge import (
    Replica,
    RetiredReplicaError,
    SharedState,
    StateError,
    compact,
    replica_to_wire,
)

#: how long a replica may stay silent before it is folded into the retired totals
DEFAULT_RETENTION = 3600.0
#: seconds to connect and to wait for a reply before the exchange fails
SOCKET_TIMEOUT = 2.0
_MAX_SEQ = 2**53  # Lua compares seqs as doubles

# KEYS: replicas, seqs, tombstones, retired. ARGV: (none: read) or rid, seq, blob.
_SCRIPT = """
if #ARGV == 3 then
  local rid = ARGV[1]
  local tombstone = redis.call('HGET', KEYS[3], rid)
  if tombstone then
    return {'retired', tombstone}
  end
  local stored = redis.call('HGET', KEYS[2], rid)
  if not stored or tonumber(stored) < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], rid, ARGV[3])
    redis.call('HSET', KEYS[2], rid, ARGV[2])
  end
end
return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[4]),
        redis.call('HGETALL', KEYS[3])}
"""


class RedisBackend:
    """The merged state in Redis, merged by one Lua script.

    Args:
        url: ``redis://[:password@]host[:port][/db]`` or ``rediss://`` (TLS).
        key_prefix: the keys are ``{key_prefix}:replicas`` and so on; one
            prefix per deployment sharing a Redis database.
        retention: seconds of silence after which a replica is retired.
        clock: wall-clock seconds (compaction); injectable for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "mabware",
        retention: float = DEFAULT_RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(key_prefix, str) or not key_prefix:
            raise ConfigError(f"key_prefix must be a non-empty string, got {key_prefix!r}")
        if not (isinstance(retention, int | float) and retention > 0):
            raise ConfigError(f"retention must be a number of seconds > 0, got {retention!r}")
        #: the URL with its password masked (the client keeps the real one)
        self.url = _redacted(url)
        self.retention = float(retention)
        self._clock = clock
        self._keys = tuple(
            f"{key_prefix}:{k}" for k in ("replicas", "seqs", "tombstones", "retired")
        )
        try:  # no connection yet: a Redis that is down at start-up is an outage, not a config error
            self._redis = redis.Redis.from_url(
                url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                # one quick retry replaces a pooled connection that died with a restart;
                # SharedStore does the backing off
                retry=Retry(NoBackoff(), 1),
            )
        except ValueError as exc:
            raise ConfigError(
                f"bad Redis URL {_redacted(url)!r}: {exc}", original_error=exc
            ) from exc
        self._script = self._redis.register_script(_SCRIPT)
        #: the prefix of every key (the server keeps its experiment registry beside them)
        self.key_prefix = key_prefix

    @property
    def client(self) -> redis.Redis:
        """The redis-py client (connection pool) this backend uses."""
        return self._redis

    def __repr__(self) -> str:
        return f"RedisBackend({self.url!r})"

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        """Merge ``push`` in one script call; fold silent replicas if due.

        Raises:
            RetiredReplicaError: ``replica_id`` was folded into the retired totals.
            StateError: the push's seq is out of range, or Redis holds a malformed state.
            redis.RedisError: Redis is unreachable or refused the call.
        """
        if not 0 <= push.seq < _MAX_SEQ:
            raise StateError(f"seq {push.seq} is outside [0, 2**53)")
        blob = msgpack.packb(replica_to_wire(replica_id, push), use_bin_type=True)
        reply = self._script(keys=self._keys, args=[replica_id, str(push.seq), blob])
        if reply[0] == b"retired":
            raise RetiredReplicaError(
                f"replica {replica_id} was retired",
                payload=replica_id,
                folded_seq=_tombstone(reply[1])[1],
            )
        state = _state(_pairs(reply[1]), reply[2], _pairs(reply[3]))
        now = self._clock()
        # Never fold the pusher itself (its clock far behind ours): until its
        # next push it would count its acknowledged totals twice.
        if _folds(state, compact(state, now, self.retention)) and now - push.seen <= self.retention:
            return self._compact(now) or state
        return state

    def _compact(self, now: float) -> SharedState | None:
        """Fold silent replicas in one optimistic transaction; None if someone interfered."""
        replicas, seqs, tombstones, retired = self._keys
        with self._redis.pipeline() as pipe:
            try:
                pipe.watch(*self._keys)  # type: ignore[no-untyped-call]  # (redis-py: untyped)
                # from here on, a change to any of the keys voids EXEC
                state = _state(
                    cast("dict[bytes, bytes]", pipe.hgetall(replicas)),
                    cast("bytes | None", pipe.get(retired)),
                    cast("dict[bytes, bytes]", pipe.hgetall(tombstones)),
                )
                folded = compact(state, now, self.retention)
                if not _folds(state, folded):
                    return state  # another client compacted first
                dead = sorted(state.replicas.keys() - folded.replicas.keys())
                forgotten = sorted(state.tombstones.keys() - folded.tombstones.keys())
                pipe.multi()
                if dead:
                    pipe.hdel(replicas, *dead)
                    pipe.hdel(seqs, *dead)
                    pipe.hset(
                        tombstones,
                        mapping={rid: f"{float(now)!r} {folded.folded_seqs[rid]}" for rid in dead},
                    )
                if forgotten:
                    pipe.hdel(tombstones, *forgotten)
                pipe.set(retired, encode_tallies(folded.retired))
                pipe.execute()
            except redis.WatchError:
                return None
        return folded

    def read(self) -> SharedState:
        """The state as one script call sees it, atomically, without pushing."""
        reply = self._script(keys=self._keys, args=[])
        return _state(_pairs(reply[1]), reply[2], _pairs(reply[3]))

    def close(self) -> None:
        """Close the connection pool (a later call opens a new connection)."""
        self._redis.close()


def _folds(state: SharedState, folded: SharedState) -> bool:
    """Whether ``merge.compact`` retired a replica or forgot a tombstone."""
    return (
        folded.replicas.keys() != state.replicas.keys()
        or folded.tombstones.keys() != state.tombstones.keys()
    )


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """HGETALL as a Lua script returns it (field, value, ...) as a dict."""
    items = iter(flat)
    return dict(zip(items, items, strict=True))


def _state(
    replicas: Mapping[bytes, bytes], retired: bytes | None, tombstones: Mapping[bytes, bytes]
) -> SharedState:
    """Decode the stored keys; StateError if anything is malformed."""
    try:
        live = decode_replicas(list(replicas.values()))
        for field, rid in zip(replicas, live, strict=True):
            if rid != field.decode():
                raise StateError(f"replica blob of {rid!r} stored under {field!r}")
        folded = decode_tallies(retired) if retired is not None else {}
        tombs = {rid.decode(): _tombstone(value) for rid, value in tombstones.items()}
    except (AttributeError, TypeError, ValueError) as exc:  # StateError, UnicodeDecodeError too
        if isinstance(exc, StateError):
            raise
        raise StateError(f"malformed state in Redis: {exc!r}") from exc
    return SharedState(
        live,
        folded,
        {rid: at for rid, (at, _) in tombs.items()},
        {rid: seq for rid, (_, seq) in tombs.items() if seq is not None},
    )


def _tombstone(value: bytes) -> tuple[float, int | None]:
    """A tombstone's time and seq folded (None if written before format 2)."""
    at, _, seq = value.decode(errors="replace").partition(" ")
    try:
        folded_at, folded_seq = float(at), int(seq) if seq else None
    except ValueError:
        raise StateError(f"malformed tombstone in Redis: {value!r}") from None
    if not math.isfinite(folded_at):
        raise StateError("tombstone times must be finite")
    return folded_at, folded_seq


def _redacted(url: str) -> str:
    """``url`` with its password (in the userinfo or the query) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    query = "&".join(
        "password=***" if p.lower().startswith("password=") else p
        for p in parts.query.split("&")
        if p
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))
