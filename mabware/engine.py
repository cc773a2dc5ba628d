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
import time
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from mabware import assign
from mabware._engine_settings import check_experiments, check_routes
from mabware._plans import Plan, Plans
from mabware._ratelimit import OncePerInterval
from mabware._request_facts import DEFAULT_BOT_PATTERN, BotTest, cookie_value, is_secure
from mabware.assignments import Assignment, Assignments
from mabware.cookies import CookieCodec, CookieEntry, CookieState
from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.history import History
from mabware.rewards import RewardGate
from mabware.store import Store, open_store
from mabware.summary import ExperimentSummary

logger = logging.getLogger("mabware.engine")

# Counted events (engine.events.counts keys; metrics expose them).
COOKIE_REJECTED = "cookie_rejected"  # suffixed ":<reason>"
COOKIE_ROTATED = "cookie_rotated"
COOKIE_DROPPED = "cookie_dropped"
BOT = "bot"
NO_CONSENT = "no_consent"
DUPLICATE_REWARD = "duplicate_reward"


class _Known:
    """A cookie string already authenticated, with what it was served."""

    __slots__ = ("arms", "entries", "generation", "issued", "served")

    def __init__(
        self,
        arms: dict[str, Assignment],
        entries: dict[str, CookieEntry],
        issued: int,
        served: tuple[tuple[str, int], ...],
        generation: int,
    ) -> None:
        self.arms = arms
        self.entries = entries
        self.issued = issued
        self.served = served
        self.generation = generation


class Engine:
    """Assigns arms, reads and writes the cookie, records pulls and rewards.

    Args:
        experiments: the experiments to run (unique names).
        secret_keys: cookie keys, newest first: the first encrypts, all
            decrypt (see ``mabware.cookies``). ``mabware keygen`` makes one.
        store: a store URL (``memory:``, ``file:PATH``) or a ``Store``.
        sync_interval: seconds between two syncs with a shared store.
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
        sync_interval: float = 1.0,
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
        check_experiments(experiments)
        self.experiments: Mapping[str, Experiment] = {e.name: e for e in experiments}
        codec_options: dict[str, Any] = {} if max_age is None else {"max_age": max_age}
        self.codec = CookieCodec(secret_keys, name=cookie_name, clock=clock, **codec_options)
        self._cookie_prefix = cookie_name + "="
        self.store = open_store(store, experiments, sync_interval=sync_interval)
        self.reward_routes = check_routes(rewards or {}, self.experiments)
        #: True for the user agents ``bot_pattern`` matches
        self.is_bot = BotTest(bot_pattern)
        self.trusted_proxies = frozenset(trusted_proxies)
        self.rewards = RewardGate(self.experiments, strict=strict)
        self._cache: dict[str, _Known] = {}
        self._cache_size = cache_size
        self._clock = clock
        self.events = OncePerInterval(logger)
        #: called as ``(experiment, arm index)`` after each counted assignment
        #: (a pull), on the request path: keep them cheap (``mabware.metrics``)
        self.pull_listeners: list[Callable[[str, int], None]] = []
        #: called as ``(experiment, arm index, value)`` after each stored reward
        self.reward_listeners: list[Callable[[str, int, float], None]] = []
        self.plans = Plans(
            experiments,
            self.store,
            self.events,
            recompute_interval=recompute_interval,
            refresh_interval=refresh_interval,
            seed=seed,
        )
        self._plans = self.plans.by_name
        self._random = random.Random(seed)
        if seed is None:
            _reseed_after_fork(self)

    def _reseed(self, seed: int) -> None:
        self._random = random.Random(seed)
        self.plans.reseed(seed)

    def __repr__(self) -> str:
        return f"<Engine {len(self._plans)} experiments, {self.store!r}, {self.codec!r}>"

    # -- request facts -------------------------------------------------------

    def is_secure(self, scheme: str, client: str | None, forwarded_proto: str | None) -> bool:
        """Whether the visitor reached us over https (the cookie's ``Secure``).

        ``X-Forwarded-Proto`` counts only from a configured trusted proxy;
        anyone else could send it.
        """
        return is_secure(scheme, client, forwarded_proto, self.trusted_proxies)

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
            cause = NO_CONSENT if not consent else BOT
            self.events(cause, "default arms, not counted", logging.DEBUG)
            return self._uncounted(secure, path)
        plans = self.plans
        plans.refresh(now)
        token = cookie_value(cookie_header, self._cookie_prefix)
        if token is not None:
            known = self._cache.get(token)
            if (
                known is not None
                and known.generation == plans.generation
                and now - known.issued <= self.codec.max_age
            ):  # the hot path: a returning visitor whose arms all still stand
                return Assignments(
                    known.arms,
                    known.entries,  # shared: a reward replaces the dict, never edits it
                    issued=known.issued,
                    changed=False,
                    counted=True,
                    secure=secure,
                    path=path,
                    reward=self._reward,
                    served=known.served,
                )
        state, changed = self._read_cookie(token)
        entries = dict(state.entries) if state is not None else {}
        arms: dict[str, Assignment] = {}
        served: list[tuple[str, int]] = []
        for name, plan in self._plans.items():
            exp = plan.experiment
            if not exp.enabled:
                arms[name] = plan.default
                continue
            entry = entries.get(name)
            if (
                entry is None
                or entry.version != exp.version
                or entry.arm not in plan.arm_index
                or entry.arm in plan.off
            ):
                entry = self._assign(plan, unit_id, now)
                entries[name] = entry
                changed = True
            arms[name] = Assignment(name, entry.arm, exp.payloads[entry.arm], entry.decision)
            served.append((name, plan.arm_index[entry.arm]))
        issued = state.issued if state is not None else int(now)
        if token is not None and not changed and self._cache_size:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # cheap, and the hot set refills in a moment
            self._cache[token] = _Known(arms, entries, issued, tuple(served), plans.generation)
        return Assignments(
            arms,
            entries,
            issued=issued,
            changed=changed,
            counted=True,
            secure=secure,
            path=path,
            reward=self._reward,
            served=tuple(served),
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
        token, _kept, dropped = self.codec.fit(
            state, known=self._plans, secure=visit.secure, trusted=True
        )
        if dropped:
            self.events(COOKIE_DROPPED, f"{dropped} assignment(s) dropped to fit the cookie")
        visit.changed = False
        return self.codec.header(token, secure=visit.secure)

    def finish(self, visit: Assignments, status: int, latency: float) -> None:
        """After the response: count its outcome per assigned arm (arm SLOs)."""
        if visit.served:
            self.store.add_responses(visit.served, error=status >= 500, latency=latency)

    # -- internals -----------------------------------------------------------

    def _uncounted(self, secure: bool, path: str) -> Assignments:
        arms = {name: plan.default for name, plan in self._plans.items()}
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

    def _read_cookie(self, token: str | None) -> tuple[CookieState | None, bool]:
        """The visitor's cookie state and whether it must be rewritten."""
        if token is None:
            return None, True
        decoded = self.codec.decode(token)
        if decoded.state is None:
            self.events(f"{COOKIE_REJECTED}:{decoded.reason}", "cookie ignored", logging.INFO)
            return None, True
        if decoded.rotated:
            self.events(COOKIE_ROTATED, "cookie re-issued under the newest key", logging.DEBUG)
        return decoded.state, decoded.rotated

    def _assign(self, plan: Plan, unit_id: str | None, now: float) -> CookieEntry:
        exp = plan.experiment
        table = plan.allocation.cumulative
        try:
            if unit_id is not None:
                index = assign.assign_unit(table, exp.name, exp.version, unit_id)
            else:
                index = assign.sample(table, self._random)
        except ConfigError as exc:  # e.g. a unit id that is not a str: fall back to sampling
            self.events("bad_unit_id", f"unit id not usable: {exc}")
            index = assign.sample(table, self._random)
        self.store.add_pull(exp.name, index, now)
        for listener in self.pull_listeners:
            listener(exp.name, index)
        return CookieEntry(
            exp.arm_names[index], exp.version, self._random.getrandbits(63), int(now)
        )

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
        propensity = plan.allocation.probabilities[index]
        self.store.add_reward(experiment, index, reward, propensity or None, self._clock())
        if once:
            visit.entries = {**visit.entries, experiment: entry._replace(rewarded=True)}
            visit.changed = True
        for listener in self.reward_listeners:
            listener(experiment, index, reward)
        return True

    # -- reading ----------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """What this process knows, as plain data (JSON-able); see ``Plans.report``."""
        return self.plans.report(self._clock())

    def summaries(self, now: float | None = None) -> list[ExperimentSummary]:
        """Every experiment's numbers for people (``mabware.summary``); ``now``: the clock."""
        return self.plans.summaries(self._clock() if now is None else now)

    @property
    def history(self) -> History:
        """This process's allocation history (``mabware.history``), for the dashboard."""
        return self.plans.history

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start background work (the store's sync loop)."""
        self.store.start()

    def close(self) -> None:
        """Stop background work and flush the store."""
        self.store.close()


def _reseed_after_fork(engine: Engine) -> None:
    """Give each forked worker its own random streams (gunicorn --preload)."""
    ref = weakref.ref(engine)

    def reseed() -> None:
        alive = ref()
        if alive is not None:
            alive._reseed(int.from_bytes(os.urandom(8), "big"))

    os.register_at_fork(after_in_child=reseed)
