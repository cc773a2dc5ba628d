"""The sans-IO core every middleware and adapter shares.

Request facts go in (the Cookie header, whether the request is secure, the
user agent, the path, an optional unit id, consent) and come out as an
``Assignments`` mapping for the handler and, when the visitor's cookie
changed, one Set-Cookie header value. Nothing here reads a socket or a
framework object, so ASGI, WSGI and every framework behave identically.

The life of a request::

    visit = engine.begin(cookie_header, secure=..., user_agent=..., path=...)
    ... handler reads visit["headline"].arm, calls visit.reward(...) ...
    set_cookie = engine.respond(visit, status)      # at response start
    engine.finish(visit, status, latency)           # after the body

Returning visitors are the hot path: a cookie string already authenticated
once is found in a small cache (expiry still checked), an unchanged cookie
costs no Set-Cookie, and assignment is plain Python over the allocation's
precomputed cumulative table.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from mabware import assign
from mabware._ratelimit import OncePerInterval
from mabware.allocation import Allocation
from mabware.assignments import Assignment, Assignments
from mabware.cookies import CookieCodec, CookieEntry, CookieState
from mabware.exceptions import ConfigError, RewardError
from mabware.experiment import Experiment
from mabware.guardrails import CAP
from mabware.rewards import RewardGate
from mabware.store import Store, open_store

logger = logging.getLogger("mabware.engine")

#: User agents of crawlers, link previewers and uptime monitors (case-insensitive).
DEFAULT_BOT_PATTERN = (
    r"bot\b|bot/|crawl|spider|slurp|mediapartners|facebookexternalhit|bingpreview|"
    r"embedly|lighthouse|pingdom|uptimerobot"
)
_MAX_DECISION = 2**63

# Counted events (engine.events.counts keys; metrics expose them).
COOKIE_REJECTED = "cookie_rejected"  # suffixed ":<reason>"
COOKIE_ROTATED = "cookie_rotated"
COOKIE_DROPPED = "cookie_dropped"
BOT = "bot"
NO_CONSENT = "no_consent"
DUPLICATE_REWARD = "duplicate_reward"
TRIP = "trip"  # suffixed ":<reason>"


class _Plan:
    """One experiment's precomputed serving state."""

    __slots__ = ("allocation", "arm_index", "changes_seen", "computed_at", "experiment", "off")

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.arm_index = {name: i for i, name in enumerate(experiment.arm_names)}
        self.allocation: Allocation | None = None
        self.off: frozenset[str] = frozenset()  # arms disabled by a guardrail
        self.changes_seen = -1
        self.computed_at = -float("inf")


class Engine:
    """Assigns arms, reads and writes the cookie, records pulls and rewards.

    Args:
        experiments: the experiments to run (unique names).
        secret_keys: cookie keys, newest first: the first encrypts, all
            decrypt (see ``mabware.cookies``). ``mabware keygen`` makes one.
        store: a store URL (``memory:``) or a ``Store``.
        cookie_name: the cookie's name.
        max_age: cookie lifetime in seconds (at most 400 days).
        rewards: declarative reward routes, ``{"/checkout/done":
            {"headline": 1.0}}``: a request to that path that gets a
            response below 400 rewards those experiments.
        bot_pattern: regular expression (searched case-insensitively in
            the user agent) of visitors that get default arms uncounted;
            None turns bot detection off.
        trusted_proxies: client addresses whose ``X-Forwarded-Proto`` is
            believed when deciding the cookie's ``Secure`` attribute.
        strict: raise ``RewardError`` for bad rewards instead of dropping
            them (``engine.rewards.rejected`` counts the dropped ones).
        recompute_interval: seconds between allocation recomputes while
            statistics change (the allocation is also refreshed every
            ``refresh_interval`` seconds for time-based guardrails).
        refresh_interval: seconds after which an allocation is recomputed
            even if nothing was recorded.
        cache_size: authenticated cookie strings remembered (0: none).
        clock: wall-clock seconds; injectable for tests.
        seed: seeds the process's random generators (tests); None draws
            from the OS and reseeds after fork.
    """

    def __init__(
        self,
        experiments: Sequence[Experiment],
        *,
        secret_keys: Sequence[str | bytes],
        store: str | Store = "memory:",
        cookie_name: str = "mabware",
        max_age: int | None = None,
        rewards: Mapping[str, Mapping[str, float]] | None = None,
        bot_pattern: str | None = DEFAULT_BOT_PATTERN,
        trusted_proxies: Collection[str] = (),
        strict: bool = False,
        recompute_interval: float = 0.05,
        refresh_interval: float = 10.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        if isinstance(experiments, Experiment) or not isinstance(experiments, Sequence):
            raise ConfigError(
                f"experiments must be a list of mabware.Experiment objects, got {experiments!r}"
            )
        self._plans = _plans(experiments)
        self.experiments: Mapping[str, Experiment] = {e.name: e for e in experiments}
        codec_options: dict[str, Any] = {} if max_age is None else {"max_age": max_age}
        self.codec = CookieCodec(secret_keys, name=cookie_name, clock=clock, **codec_options)
        self.store = open_store(store, experiments)
        self.reward_routes = _check_routes(rewards or {}, self.experiments)
        self._bot = re.compile(bot_pattern, re.IGNORECASE).search if bot_pattern else None
        self._bot_cache: dict[str, bool] = {}
        self.trusted_proxies = frozenset(trusted_proxies)
        self.rewards = RewardGate(self.experiments, strict=strict)
        self.recompute_interval = recompute_interval
        self.refresh_interval = refresh_interval
        self._cache: dict[str, CookieState] = {}
        self._cache_size = cache_size
        self._clock = clock
        self._recompute_lock = threading.Lock()
        self.events = OncePerInterval(logger)
        self._seed(seed)
        if seed is None:
            _reseed_after_fork(self)

    def _seed(self, seed: int | None) -> None:
        self._random = random.Random(seed)
        self._np_random = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"<Engine {len(self._plans)} experiments, {self.store!r}, {self.codec!r}>"

    # -- request facts -------------------------------------------------------

    def is_secure(self, scheme: str, client: str | None, forwarded_proto: str | None) -> bool:
        """Whether the visitor reached us over https (the cookie's ``Secure``).

        ``X-Forwarded-Proto`` counts only from a configured trusted proxy;
        anyone else could send it.
        """
        if scheme in ("https", "wss"):
            return True
        if forwarded_proto and client in self.trusted_proxies:
            return forwarded_proto.split(",")[0].strip().lower() == "https"
        return False

    def is_bot(self, user_agent: str) -> bool:
        """True when ``bot_pattern`` matches the user agent."""
        if self._bot is None or not user_agent:
            return False
        known = self._bot_cache.get(user_agent)
        if known is None:
            known = self._bot(user_agent) is not None
            if len(self._bot_cache) >= 1024:
                self._bot_cache.clear()
            self._bot_cache[user_agent] = known
        return known

    # -- the request path ----------------------------------------------------

    def begin(
        self,
        cookie_header: str | None,
        *,
        secure: bool = False,
        user_agent: str = "",
        path: str = "/",
        unit_id: str | None = None,
        consent: bool = True,
    ) -> Assignments:
        """Assign every experiment for one request. Never raises.

        Args:
            cookie_header: the request's ``Cookie`` header (all of it), or None.
            secure: the request came over https (see ``is_secure``).
            user_agent: the ``User-Agent`` header.
            path: the request path (for reward routes).
            unit_id: the app's stable id for the visitor (a logged-in
                user), which makes new assignments deterministic.
            consent: False serves default arms, uncounted, with no cookie.
        """
        try:
            return self._begin(cookie_header, secure, user_agent, path, unit_id, consent)
        except Exception as exc:  # a bug here must not cost the visitor the page
            self.events("engine_error", f"serving default arms: {type(exc).__name__}: {exc}")
            return self._uncounted(secure, path)

    def _begin(
        self,
        cookie_header: str | None,
        secure: bool,
        user_agent: str,
        path: str,
        unit_id: str | None,
        consent: bool,
    ) -> Assignments:
        now = self._clock()
        if not consent or self.is_bot(user_agent):
            self.events(
                NO_CONSENT if not consent else BOT, "default arms, not counted", logging.DEBUG
            )
            return self._uncounted(secure, path)
        token = _cookie_value(cookie_header, self.codec.name)
        state, changed = self._read_cookie(token, now)
        entries = dict(state.entries) if state is not None else {}
        arms: dict[str, Assignment] = {}
        for name, plan in self._plans.items():
            exp = plan.experiment
            if not exp.enabled:
                arms[name] = Assignment(name, exp.default_arm or "", _payload(exp), 0, False)
                continue
            allocation = self._allocation(plan, now)
            entry = entries.get(name)
            if (
                entry is None
                or entry.version != exp.version
                or entry.arm not in plan.arm_index
                or entry.arm in plan.off
            ):
                entry = self._assign(plan, allocation, unit_id, now)
                entries[name] = entry
                changed = True
            arms[name] = Assignment(name, entry.arm, exp.payloads[entry.arm], entry.decision)
        issued = state.issued if state is not None else int(now)
        return Assignments(
            arms,
            entries,
            issued=issued,
            changed=changed,
            counted=True,
            secure=secure,
            path=path,
            reward=self._reward,
        )

    def respond(self, visit: Assignments, status: int) -> str | None:
        """At response start: apply reward routes and ``reward_on_success``
        rewards (status below 400); return the Set-Cookie value, if any.

        Never raises: a failure costs the visitor a cookie update, not the page.
        """
        try:
            return self._respond(visit, status)
        except Exception as exc:
            self.events("engine_error", f"cookie not updated: {type(exc).__name__}: {exc}")
            return None

    def call_hook(self, name: str, hook: Callable[[Any], Any], request: Any, default: Any) -> Any:
        """Run a user hook (``unit_id``, ``consent``) on the request; ``default`` if it raises."""
        try:
            return hook(request)
        except Exception as exc:
            self.events(f"hook_error:{name}", f"{name} hook raised {type(exc).__name__}: {exc}")
            return default

    def _respond(self, visit: Assignments, status: int) -> str | None:
        if not visit.counted:
            return None
        if status < 400:
            for experiment, value in (*self.reward_routes.get(visit.path, ()), *visit.pending):
                self._reward(visit, experiment, value)
        if not visit.changed:
            return None
        state = CookieState(issued=visit.issued, entries=visit.entries)
        token, _kept, dropped = self.codec.fit(state, known=self._plans, secure=visit.secure)
        if dropped:
            self.events(COOKIE_DROPPED, f"{dropped} assignment(s) dropped to fit the cookie")
        visit.changed = False
        return self.codec.header(token, secure=visit.secure)

    def finish(self, visit: Assignments, status: int, latency: float) -> None:
        """After the response: count its outcome per assigned arm (arm SLOs)."""
        if not visit.counted:
            return
        error = status >= 500
        for name, assignment in visit.items():
            if assignment.counted:
                arm = self._plans[name].arm_index[assignment.arm]
                self.store.add_response(name, arm, error=error, latency=latency)

    # -- internals -----------------------------------------------------------

    def _uncounted(self, secure: bool, path: str) -> Assignments:
        arms = {
            name: Assignment(name, p.experiment.default_arm or "", _payload(p.experiment), 0, False)
            for name, p in self._plans.items()
        }
        return Assignments(
            arms,
            {},
            issued=0,
            changed=False,
            counted=False,
            secure=secure,
            path=path,
            reward=self._reward,
        )

    def _read_cookie(self, token: str | None, now: float) -> tuple[CookieState | None, bool]:
        """The visitor's cookie state and whether it must be rewritten."""
        if token is None:
            return None, True
        cached = self._cache.get(token)
        if cached is not None and now - cached.issued <= self.codec.max_age:
            return cached, False
        decoded = self.codec.decode(token)
        if decoded.state is None:
            self.events(f"{COOKIE_REJECTED}:{decoded.reason}", "cookie ignored", logging.INFO)
            return None, True
        if decoded.rotated:
            self.events(COOKIE_ROTATED, "cookie re-issued under the newest key", logging.DEBUG)
            return decoded.state, True
        if self._cache_size:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # cheap, and the hot set refills in a moment
            self._cache[token] = decoded.state
        return decoded.state, False

    def _assign(
        self, plan: _Plan, allocation: Allocation, unit_id: str | None, now: float
    ) -> CookieEntry:
        exp = plan.experiment
        table = allocation.cumulative
        try:
            if unit_id is not None:
                index = assign.assign_unit(table, exp.name, exp.version, unit_id)
            else:
                index = assign.sample(table, self._random)
        except ConfigError as exc:  # e.g. a unit id that is not a str: fall back to sampling
            self.events("bad_unit_id", f"unit id not usable: {exc}")
            index = assign.sample(table, self._random)
        self.store.add_pull(exp.name, index, now)
        return CookieEntry(
            arm=exp.arm_names[index],
            version=exp.version,
            decision=self._random.getrandbits(63),
            assigned=int(now),
        )

    def _allocation(self, plan: _Plan, now: float) -> Allocation:
        """The plan's allocation, recomputed when due (by one thread at a time)."""
        age = now - plan.computed_at
        changes = self.store.changes
        due = age >= self.refresh_interval or (
            changes != plan.changes_seen and age >= self.recompute_interval
        )
        if (due or plan.allocation is None) and self._recompute_lock.acquire(
            blocking=plan.allocation is None
        ):
            try:
                self._recompute(plan, now, changes)
            finally:
                self._recompute_lock.release()
        assert plan.allocation is not None
        return plan.allocation

    def _recompute(self, plan: _Plan, now: float, changes: int) -> None:
        exp = plan.experiment
        stats = self.store.statistics(exp.name, now)
        allocation = exp.decide(stats, self._np_random, state_age=self.store.state_age(now))
        before = {(t.reason, t.arm) for t in plan.allocation.trips} if plan.allocation else set()
        for trip in allocation.trips:  # count and log a trip when it starts, not every recompute
            if (trip.reason, trip.arm) not in before:
                self.events(f"{TRIP}:{trip.reason}", f"{exp.name}: {trip.detail}", logging.INFO)
        plan.off = frozenset(
            t.arm for t in allocation.trips if t.arm is not None and t.reason != CAP
        )
        plan.allocation = allocation
        plan.changes_seen = changes
        plan.computed_at = now

    def _reward(self, visit: Assignments, experiment: str, value: object) -> bool:
        if not visit.counted:
            return False
        assignment = visit.get(experiment)
        checked = self.rewards.check(experiment, assignment.arm if assignment else "", value)
        entry = visit.entries.get(experiment)
        if checked is None or assignment is None or not assignment.counted or entry is None:
            return False
        index, reward = checked
        plan = self._plans[experiment]
        once = plan.experiment.reward_mode == "once"
        if once and entry.rewarded:
            self.events(DUPLICATE_REWARD, "second reward for one assignment ignored", logging.DEBUG)
            return False
        allocation = plan.allocation
        propensity = allocation.probabilities[index] if allocation is not None else None
        self.store.add_reward(experiment, index, reward, propensity or None, self._clock())
        if once:
            visit.entries[experiment] = CookieEntry(
                entry.arm, entry.version, entry.decision, entry.assigned, True
            )
            visit.changed = True
        return True

    # -- reading ----------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """What this process knows, as plain data (JSON-able).

        ``{"experiments": {name: {"version", "arms": {arm: {"pulls",
        "reward_sum", "share"}}, "trips": [...]}}}``; ``share`` is the
        current allocation (what new visitors are assigned by).
        """
        now = self._clock()
        experiments: dict[str, Any] = {}
        for name, plan in self._plans.items():
            stats = self.store.statistics(name, now)
            allocation = self._allocation(plan, now)
            experiments[name] = {
                "version": plan.experiment.version,
                "arms": {
                    arm: {
                        "pulls": float(stats.pulls[i]),
                        "reward_sum": float(stats.reward_sum[i]),
                        "share": allocation.probabilities[i],
                    }
                    for i, arm in enumerate(plan.experiment.arm_names)
                },
                "trips": [
                    {"reason": t.reason, "arm": t.arm, "detail": t.detail} for t in allocation.trips
                ],
            }
        return {"experiments": experiments}

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start background work (the store's sync loop)."""
        self.store.start()

    def close(self) -> None:
        """Stop background work and flush the store."""
        self.store.close()


def _plans(experiments: Sequence[Experiment]) -> dict[str, _Plan]:
    plans: dict[str, _Plan] = {}
    for exp in experiments:
        if not isinstance(exp, Experiment):
            raise ConfigError(f"experiments must be mabware.Experiment objects, got {exp!r}")
        if exp.name in plans:
            raise ConfigError(f"two experiments are named {exp.name!r}; names must be unique")
        plans[exp.name] = _Plan(exp)
    if not plans:
        raise ConfigError("experiments is empty: give at least one mabware.Experiment")
    return plans


def _check_routes(
    routes: Mapping[str, Mapping[str, float]], experiments: Mapping[str, Experiment]
) -> dict[str, tuple[tuple[str, float], ...]]:
    """Validate reward routes at start-up: known experiments, values in range."""
    checked: dict[str, tuple[tuple[str, float], ...]] = {}
    for path, targets in routes.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"reward route paths must start with '/', got {path!r}")
        pairs = []
        for name, value in dict(targets).items():
            if name not in experiments:
                raise ConfigError(
                    f"reward route {path!r} names unknown experiment {name!r}; "
                    f"experiments are {sorted(experiments)}"
                )
            try:
                pairs.append((name, experiments[name].check_reward(value)))
            except RewardError as exc:
                raise ConfigError(f"reward route {path!r}: {exc}") from exc
        checked[path] = tuple(pairs)
    return checked


def _payload(exp: Experiment) -> object:
    return exp.payloads[exp.default_arm or exp.arm_names[0]]


def _cookie_value(header: str | None, name: str) -> str | None:
    """Our cookie's value in a ``Cookie`` header, or None."""
    if not header:
        return None
    for chunk in header.split(";"):
        key, sep, value = chunk.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]  # our tokens need no quoting, but a proxy may add it
            return value
    return None


def _reseed_after_fork(engine: Engine) -> None:
    """Give each forked worker its own random streams (gunicorn --preload)."""
    ref = weakref.ref(engine)

    def reseed() -> None:
        alive = ref()
        if alive is not None:
            alive._seed(int.from_bytes(os.urandom(8), "big"))

    os.register_at_fork(after_in_child=reseed)
