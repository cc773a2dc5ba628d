"""``EdgeClient``: mabware's decisions from a signed snapshot, learning pushed back.

The client holds the last good snapshot (fetched, or from the cache file at
start), decides locally with the middleware's hash (spec
``mabware.assign.v1``) and cookie (``mabware.cookie.v1``), and counts this
process's pulls and rewards, which it pushes to ``POST /sync`` as one
replica. A decision never raises and never waits on the network. Past
``stale_after`` seconds from the snapshot's issue time every experiment
gets its default arm, and nothing is learned from it.

Counters (``collections.Counter``, read them or export them):
``decisions`` by reason, ``rejected`` snapshots by reason (``signature``,
``spec``, ``format``, ``malformed``, ``rollback``), ``dropped`` rewards by
reason (``unknown_experiment``, ``unknown_arm``, ``unknown_decision``,
``bad_value``, ``duplicate``), ``cookie_rejected`` by the cookie spec's
reasons, and ``errors`` by cause (``refresh:network``, ``refresh:http_503``,
``push:network``, ``push:http_401``, ``push:retired``, ``cache:write``,
``bad_unit_id``, ``decide``, ...). Each cause is logged at most once a
minute on the ``mabware_edge`` logger.
"""

from __future__ import annotations

import atexit
import math
import os
import time
from _thread import allocate_lock  # threading.Lock itself, without importing threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mabware_edge._decide import Decider, RandomSource
from mabware_edge._decision import MAX_AGE_LIMIT, REASONS, Cookie, Decision
from mabware_edge._events import INFO, Events
from mabware_edge._feed import Feed, compile_view
from mabware_edge._ledger import Ledger
from mabware_edge._rewards import RewardDesk
from mabware_edge._schedule import MODES, Scheduler
from mabware_edge._snapshot import Snapshot
from mabware_edge._snapshot import public_key as load_public_key
from mabware_edge._transport import Transport, UrllibTransport

if TYPE_CHECKING:
    from mabware_edge._cookie import CookieCodec
    from mabware_edge._push import Pusher

# Two more stdlib classes taken from the C modules that define them, each
# with its whole behaviour: the Python wrappers around them would cost a cold
# start ~0.7 ms apiece, for features the client never uses.
try:
    # random.Random's base class, where random() and getrandbits() live; it is
    # seeded from os.urandom just the same (random.py's _sha512, bisect: not needed)
    from _random import Random
except ImportError:  # pragma: no cover - an interpreter without CPython's module
    from random import Random  # type: ignore[assignment]
try:
    from _weakref import ref  # weakref.ref is this class; weakref.py adds the rest
except ImportError:  # pragma: no cover - as above
    from weakref import ref


class EdgeClient(Decider):
    """Decide from a signed snapshot; push pulls and rewards to the sync server.

    Args:
        snapshot_url: ``GET`` URL of the signed snapshot (``.../edge/snapshot``
            or a file on any static host); None: the cache file and ``load`` only.
        public_key: the issuer's Ed25519 public key, as ``mabware keygen
            --signing`` prints it (url-safe base64), 32 raw bytes, or a key.
        read_token: bearer token for the snapshot, if it needs one.
        push_url: the server's ``POST /sync`` URL; None: nothing is pushed.
        push_token: bearer token for pushes.
        cache_path: where the last good snapshot is kept for a cold start.
        refresh: ``"thread"`` (default), ``"lazy"`` or ``"manual"``; see
            ``mabware_edge._schedule``: lazy starts a short-lived thread
            when work is due, manual leaves it to ``maybe_refresh()``.
        refresh_interval: seconds between snapshot fetches (jittered).
        stale_after: seconds after a snapshot's issue time from which every
            experiment gets its default arm (``reason="stale"``).
        push_interval: seconds between pushes (jittered).
        push_after: counts (pulls and rewards) after which a push is due early.
        defaults: experiment -> arm to give while there is no snapshot at all.
        secret_keys: the middleware's cookie keys, newest first (for cookies).
        cookie_name: the middleware's cookie name.
        cookie_max_age: the middleware's cookie lifetime, seconds.
        strict: ``reward`` raises ValueError instead of dropping a bad reward.
        timeout: seconds allowed to each HTTP request.
        decision_window: decisions remembered for ``reward(decision_id)``
            and ``once`` de-duplication: at least the last this many (at most twice).
        transport: how HTTP is done (``UrllibTransport`` by default).
        clock: unix seconds now.
        rng: what samples decisions without a unit id (``random()``).

    Raises:
        ValueError: a setting is invalid; the message says which.
    """

    def __init__(
        self,
        snapshot_url: str | None,
        *,
        public_key: str | bytes | Ed25519PublicKey,
        read_token: str | None = None,
        push_url: str | None = None,
        push_token: str | None = None,
        cache_path: str | os.PathLike[str] | None = None,
        refresh: str = "thread",
        refresh_interval: float = 10.0,
        stale_after: float = 600.0,
        push_interval: float = 10.0,
        push_after: int = 10_000,
        defaults: Mapping[str, str] | None = None,
        secret_keys: Sequence[str | bytes] | None = None,
        cookie_name: str = "mabware",
        cookie_max_age: int = MAX_AGE_LIMIT,
        strict: bool = False,
        timeout: float = 5.0,
        decision_window: int = 100_000,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        rng: RandomSource | None = None,
    ) -> None:
        if refresh not in MODES:
            raise ValueError(f"refresh must be one of {MODES}, got {refresh!r}")
        for name, number in (
            ("refresh_interval", refresh_interval),
            ("stale_after", stale_after),
            ("push_interval", push_interval),
            ("timeout", timeout),
        ):
            if not isinstance(number, int | float) or not 0 < number < math.inf:
                raise ValueError(f"{name} must be a number of seconds > 0, got {number!r}")
        for name, count in (("push_after", push_after), ("decision_window", decision_window)):
            if type(count) is not int or count < 1:
                raise ValueError(f"{name} must be an int >= 1, got {count!r}")
        key = load_public_key(public_key)
        self._counts = dict.fromkeys(REASONS, 0)
        self.rejected: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.cookie_rejected: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._errors = Events(self.errors)
        self._stale_log = Events(Counter())
        self._cookie_log = Events(self.cookie_rejected, level=INFO)
        self._clock = clock
        self._stale_after = float(stale_after)
        self._defaults = dict(defaults or {})
        self._own_rng = rng is None
        self._rng: RandomSource = rng if rng is not None else Random()
        self._ids = Random()  # decision ids: never the app's rng, never seeded twice
        self._codec: CookieCodec | None = None
        if secret_keys is not None:  # the codec, its ciphers and the cookie code: only now
            from mabware_edge import _cookie_io  # noqa: F401 - here, not in the first request
            from mabware_edge._cookie import CookieCodec

            self._codec = CookieCodec(
                secret_keys, name=cookie_name, max_age=cookie_max_age, clock=clock
            )
        self._ledger = Ledger(decision_window)
        transport = transport if transport is not None else UrllibTransport()
        path = os.fspath(cache_path) if cache_path is not None else None
        self._feed = Feed(
            snapshot_url,
            key,
            read_token,
            transport,
            timeout,
            path,
            self._ledger,
            Events(self.rejected),
            self._errors,
        )
        self._pusher: Pusher | None = None
        if push_url:
            from mabware_edge._push import Pusher  # not imported by a client that never pushes

            self._pusher = Pusher(
                push_url, push_token, transport, timeout, self._ledger, push_after, self._errors
            )
        self._desk = RewardDesk(Events(self.dropped), strict)
        self._timeout = timeout
        self._feed.load_cache()
        self._schedule = Scheduler(
            refresh, self._feed, self._pusher, clock, refresh_interval, push_interval
        )
        self._closed = False
        self._exit = _at_exit(self)
        _after_fork(self)
        self._schedule.start()

    def __repr__(self) -> str:
        view = self._feed.view
        seq = view.seq if view is not None else None
        return f"EdgeClient({self._feed.url!r}, snapshot_seq={seq}, mode={self._schedule.mode!r})"

    def __enter__(self) -> EdgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ----------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot decisions are made from, or None before the first good one."""
        view = self._feed.view
        return view.snapshot if view is not None else None

    @property
    def replica_id(self) -> str | None:
        """The id this process pushes under (new after fork and after retirement)."""
        return self._pusher.replica_id if self._pusher is not None else None

    # -- rewards ----------------------------------------------------------------------

    def reward(
        self, decision: int | str | Decision, value: object = 1.0, *, arm: str | None = None
    ) -> bool:
        """Count a reward: for a decision (its id, or itself), or for an experiment's arm.

        ``reward(d.decision_id, 1.0)`` uses the decision's propensity and, in
        ``once`` mode, counts one reward per decision (over the last
        ``decision_window`` decisions). ``reward("headline", arm="bold",
        value=1.0)`` rewards the arm under the current allocation.

        Returns:
            True if counted. False if dropped: an unknown decision,
            experiment or arm, a value that is not a finite number in the
            experiment's ``reward_range``, or a second ``once`` reward.

        Raises:
            ValueError: with ``strict=True``, instead of dropping (not for duplicates).
        """
        now = self._clock()
        counted = self._desk.reward(self._ledger, self._feed.view, decision, value, arm, now)
        if now >= self._schedule.due or self._ledger.changes >= self._ledger.push_at:
            self._schedule.kick()
        return counted

    # -- cookies ----------------------------------------------------------------------

    def read_cookie(self, header: str | bytes | None) -> Cookie:
        """The visitor's cookie from a ``Cookie`` request header (or the bare value).

        Never raises for a bad cookie: it is treated as absent (``reason``
        says why, ``cookie_rejected`` counts it).

        Raises:
            ValueError: no ``secret_keys`` were configured.
        """
        codec = self._require_codec()
        from mabware_edge import _cookie_io  # imported by __init__ already: a lookup

        return _cookie_io.read(codec, header, self._feed.view, self._cookie_log, self._ledger)

    def cookie_header(
        self,
        decisions: Iterable[Decision] | Mapping[str, Decision],
        *,
        secure: bool = True,
        cookie: Cookie | None = None,
    ) -> str | None:
        """The ``Set-Cookie`` value storing ``decisions``, or None when nothing changes.

        Entries of ``cookie`` (the one read for this request) that the
        decisions do not replace are kept, also for experiments this process
        does not know, and its issue time too. Only decisions that are
        learned from (``assigned``, ``sampled``, ``cookie``) are stored.

        Raises:
            ValueError: no ``secret_keys`` were configured.
        """
        codec = self._require_codec()
        from mabware_edge import _cookie_io  # as in read_cookie

        items = decisions.values() if isinstance(decisions, Mapping) else decisions
        view, now = self._feed.view, int(self._clock())
        return _cookie_io.header(
            codec, list(items), cookie, view, self._ledger, now, secure, self._errors
        )

    def _require_codec(self) -> CookieCodec:
        if self._codec is None:
            raise ValueError("cookies need secret_keys=[...]: the middleware's cookie keys")
        return self._codec

    # -- the network --------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fetch the snapshot now (blocking, within ``timeout``); True if one good is held."""
        return self._schedule.refresh_now(self._clock())

    def push(self) -> bool:
        """Push the totals now (blocking); True if the server acknowledged them."""
        return self._schedule.push_now(self._clock())

    def maybe_refresh(self) -> None:
        """Refresh and push if due, on this thread (for ``refresh="manual"`` or threadless lazy)."""
        self._schedule.tick(self._clock())

    def load(self, data: bytes) -> bool:
        """Take a snapshot file got some other way; verified like a fetched one."""
        return self._feed.load(data, source="load")

    def close(self) -> None:
        """Stop background work and push what the server does not have yet; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._schedule.stop(self._timeout * 2)
        atexit.unregister(self._exit)
        if self._pusher is not None and self._pusher.due():
            self._schedule.push_now(self._clock())

    def _forked(self) -> None:
        """In a child after fork: a new replica with empty totals, its own locks and thread."""
        old = self._ledger
        self._ledger = Ledger(old.window)
        self._ledger.records, self._ledger.older = old.records, old.older  # rewardable here too
        self._ids = Random()
        if self._own_rng:
            self._rng = Random()
        for events in (self._errors, self._stale_log, self._cookie_log, self._feed.rejected):
            events.reset_lock()
        self._desk.reset_locks()
        feed = self._feed
        feed.ledger = self._ledger
        feed.lock = allocate_lock()
        if feed.view is not None:
            feed.view = compile_view(feed.view.snapshot, self._ledger)
        if self._pusher is not None:
            self._pusher.lock = allocate_lock()
            self._pusher.new_replica(self._ledger)
        if not self._closed:
            self._schedule.forked()


def _at_exit(client: EdgeClient) -> Callable[[], None]:
    weak = ref(client)

    def flush() -> None:
        alive = weak()
        if alive is not None:
            alive.close()

    atexit.register(flush)
    return flush


def _after_fork(client: EdgeClient) -> None:
    weak = ref(client)

    def child() -> None:
        alive = weak()
        if alive is not None:
            alive._forked()

    os.register_at_fork(after_in_child=child)
