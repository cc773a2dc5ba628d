"""Visitors for the demo shop: a bounded, paced load from loopback only.

Each new visitor is a fresh cookie jar: it loads the product page, reads
the variant it was shown (the shop's ``X-Demo-Arm`` header), and decides
once, with that variant's hidden conversion rate, whether it will buy.
Most buyers buy at once (``POST /buy``); some (``DEFERRED_SHARE``) think it
over and come back to buy a few seconds later (``RETURN_DELAY`` on
average), and their purchase must credit the variant of their first
visit. Besides them, a share of visits (``RETURN_SHARE``) is a recent
visitor browsing again with their cookie. Every returning visitor must be
shown the variant they saw first (``Tally.switched`` counts the times they
were not). Because the decision to buy is made once per visitor, every
assignment is rewarded with probability exactly its arm's true rate, so
the store's mean reward of an arm estimates that rate; for that, when a
timed run ends, no new visitor arrives but the buyers still thinking it
over come back at once.

Load is bounded two ways: at most ``concurrency`` visits in flight, and
visits start no faster than ``rate`` per second. A pacer hands out start
times ``1 / rate`` apart and never lets a stall be made up with a burst.
Requests go only to the URL given, and only to a loopback address (a
``ValueError`` otherwise): this is a demo's audience, not a load tester to
point at someone else's site.

The random draws (who returns, who buys) come from one seeded generator,
so a seed fixes each visitor's luck; which arm a visitor gets is the
shop's decision and varies from run to run.
"""

from __future__ import annotations

import asyncio
import heapq
import ipaddress
import itertools
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import NoReturn

import httpx

__all__ = ["DEFERRED_SHARE", "RETURN_DELAY", "RETURN_SHARE", "TRUE_RATES", "Tally", "Traffic"]

#: The hidden conversion rate of each variant of the shop's ``offer`` experiment.
#: The best is clearly best (as a sale page often is), so a 30 s run learns it
#: with certainty for all practical purposes (see tests/demo/test_demo.py).
TRUE_RATES: Mapping[str, float] = {"plain": 0.03, "shipping": 0.05, "sale": 0.12}
#: share of visits made by a returning visitor (once there are any)
RETURN_SHARE = 0.2
#: share of buyers who buy on a later visit rather than at once
DEFERRED_SHARE = 0.25
#: mean seconds a deferred buyer takes to come back (exponentially distributed)
RETURN_DELAY = 3.0
#: returning visitors are drawn from this many most recent new visitors
POOL_SIZE = 2000
#: a browser-like agent: the shop's bot test must not take visitors for bots
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) mabware-demo-visitor/1.0"


@dataclass
class Tally:
    """What the visitors did and saw; updated live, read by the progress line.

    Attributes:
        visitors: new visitors who got the product page (one pull each).
        returns: visits by returning visitors.
        conversions: purchases the shop stored (``X-Demo-Rewarded: 1``).
        refused: purchases the shop answered but did not store (expect 0).
        errors: requests that failed or answered an unexpected status.
        switched: returning visits shown another variant than before (expect 0).
        arms: new visitors per variant.
        bought: stored purchases per variant.
        pids: answers per shop worker process.
        last_error: the most recent error, in words.
    """

    visitors: int = 0
    returns: int = 0
    conversions: int = 0
    refused: int = 0
    errors: int = 0
    switched: int = 0
    arms: Counter[str] = field(default_factory=Counter)
    bought: Counter[str] = field(default_factory=Counter)
    pids: Counter[int] = field(default_factory=Counter)
    last_error: str | None = None


@dataclass
class _Visitor:
    cookie: str
    arm: str
    buys_later: bool


class _VisitError(Exception):
    """A visit went wrong; already counted in the tally."""


class Traffic:
    """Plays visitors against the shop at ``url``.

    Args:
        url: the shop's base URL, on a loopback address.
        rate: target visits a second, new and returning.
        seed: seeds every draw the visitors make.
        concurrency: at most this many visits in flight.
        rates: hidden conversion rate per variant (default ``TRUE_RATES``).
        tally: where to count (a fresh ``Tally`` by default), so a caller
            keeps what was counted even when the run is interrupted.
    """

    def __init__(
        self,
        url: str,
        *,
        rate: float,
        seed: int,
        concurrency: int = 32,
        rates: Mapping[str, float] = TRUE_RATES,
        tally: Tally | None = None,
    ) -> None:
        if not rate > 0 or concurrency < 1:
            raise ValueError(f"need rate > 0 and concurrency >= 1, got {rate}, {concurrency}")
        if not _loopback(url):
            raise ValueError(f"visitors only visit loopback addresses, not {url!r}")
        self.url = url
        self.rate = rate
        self.rates = dict(rates)
        self.concurrency = concurrency
        self.tally = tally if tally is not None else Tally()
        self._random = random.Random(seed)
        self._pool: list[_Visitor] = []
        self._arrivals = 0
        self._due: list[tuple[float, int, _Visitor]] = []  # deferred buyers: a heap by time
        self._order = itertools.count()  # breaks ties in the heap
        self._next = 0.0

    async def run(
        self, seconds: float | None = None, on_tick: Callable[[Tally], None] | None = None
    ) -> Tally:
        """Play visitors for ``seconds`` (None: until cancelled); the tally.

        Visits in flight when time is up are finished, so the tally is
        exact. ``on_tick`` is called with the tally once a second.
        """
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        self._next = loop.time()
        # No keep-alive: every request opens a connection, as distinct visitors
        # do, so the kernel spreads them over the workers sharing the socket.
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=self.url,
            limits=limits,
            timeout=30.0,
            headers={"User-Agent": USER_AGENT},
            cookies=_NoCookies(),
        ) as client:
            ticker = asyncio.create_task(self._tick(on_tick)) if on_tick else None
            browsers = [
                asyncio.create_task(self._browse(client, deadline)) for _ in range(self.concurrency)
            ]
            try:
                await asyncio.gather(*browsers)
            finally:
                for task in [*browsers, *([ticker] if ticker else [])]:
                    task.cancel()
                await asyncio.gather(
                    *browsers, *([ticker] if ticker else []), return_exceptions=True
                )
        return self.tally

    async def _tick(self, on_tick: Callable[[Tally], None] | None) -> None:
        while on_tick is not None:
            await asyncio.sleep(1.0)
            on_tick(self.tally)

    async def _browse(self, client: httpx.AsyncClient, deadline: float | None) -> None:
        """One browser: visit after visit, each in its turn from the pacer."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            start = max(self._next, now)  # a stall is not made up with a burst
            self._next = start + 1.0 / self.rate
            await asyncio.sleep(start - now)
            closing = deadline is not None and start >= deadline
            try:
                buyer = self._buyer(start, closing)
                if buyer is not None:
                    await self._come_back(client, buyer)
                elif closing:
                    return
                elif self._pool and self._random.random() < RETURN_SHARE:
                    await self._come_back(client, self._random.choice(self._pool))
                else:
                    await self._arrive(client, start)
            except _VisitError:
                pass

    def _buyer(self, now: float, closing: bool) -> _Visitor | None:
        """A deferred buyer due back by ``now`` (any of them when ``closing``), or None."""
        while self._due and (closing or self._due[0][0] <= now):
            visitor = heapq.heappop(self._due)[2]
            if visitor.buys_later:  # a random return may have bought already
                return visitor
        return None

    async def _arrive(self, client: httpx.AsyncClient, now: float) -> None:
        luck = self._random.random()  # drawn before the arm is known: the same luck for any arm
        later = self._random.random() < DEFERRED_SHARE
        delay = self._random.expovariate(1.0 / RETURN_DELAY)
        page = await self._request(client, "GET", "/", None)
        arm = page.headers.get("x-demo-arm", "")
        cookie = _cookie(page)
        if arm not in self.rates or cookie is None:
            self._fail(f"GET / answered arm {arm!r}, cookie {cookie is not None}")
        tally = self.tally
        tally.visitors += 1
        tally.arms[arm] += 1
        visitor = _Visitor(cookie, arm, buys_later=False)
        if luck < self.rates[arm]:
            if later:
                visitor.buys_later = True
                heapq.heappush(self._due, (now + delay, next(self._order), visitor))
            else:
                await self._buy(client, visitor)
        self._remember(visitor)

    async def _come_back(self, client: httpx.AsyncClient, visitor: _Visitor) -> None:
        buy, visitor.buys_later = visitor.buys_later, False  # claimed: nobody else buys for it
        page = await self._request(client, "GET", "/", visitor.cookie)
        self.tally.returns += 1
        if page.headers.get("x-demo-arm") != visitor.arm:
            self.tally.switched += 1
        visitor.cookie = _cookie(page) or visitor.cookie
        if buy:
            await self._buy(client, visitor)

    async def _buy(self, client: httpx.AsyncClient, visitor: _Visitor) -> None:
        answer = await self._request(client, "POST", "/buy", visitor.cookie)
        visitor.cookie = _cookie(answer) or visitor.cookie  # the reward flag rewrites it
        if answer.headers.get("x-demo-rewarded") == "1":
            self.tally.conversions += 1
            self.tally.bought[visitor.arm] += 1
        else:
            self.tally.refused += 1

    async def _request(
        self, client: httpx.AsyncClient, method: str, path: str, cookie: str | None
    ) -> httpx.Response:
        # The cookie goes in a header (per-request cookies= is deprecated in httpx).
        headers = {"Cookie": cookie} if cookie else {}
        try:
            response = await client.request(method, path, headers=headers)
        except httpx.HTTPError as exc:
            self._fail(f"{method} {path}: {type(exc).__name__}: {exc}")
        pid = response.headers.get("x-demo-pid", "")
        if pid.isdigit():
            self.tally.pids[int(pid)] += 1
        if response.status_code != 200:
            self._fail(f"{method} {path} answered {response.status_code}")
        return response

    def _fail(self, why: str) -> NoReturn:
        self.tally.errors += 1
        self.tally.last_error = why
        raise _VisitError(why)

    def _remember(self, visitor: _Visitor) -> None:
        if len(self._pool) < POOL_SIZE:
            self._pool.append(visitor)
        else:  # the oldest goes: returning visitors are recent ones
            self._pool[self._arrivals % POOL_SIZE] = visitor
        self._arrivals += 1


def _loopback(url: str) -> bool:
    host = httpx.URL(url).host
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoCookies(CookieJar):
    """A jar that keeps nothing: each visitor carries its own cookie in a header.

    The client is shared by every visitor; its usual jar would hand one
    visitor's cookie to the next.
    """

    def __init__(self) -> None:
        super().__init__(DefaultCookiePolicy(allowed_domains=[]))


def _cookie(response: httpx.Response) -> str | None:
    """``name=value`` of the response's Set-Cookie, as a browser would send it back."""
    header = response.headers.get("set-cookie")
    if header is None:
        return None
    pair = header.split(";", 1)[0].strip()
    return pair if "=" in pair else None
