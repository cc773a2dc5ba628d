"""The pure ASGI middleware, called in-process (real servers: tests/examples)."""

from __future__ import annotations

import asyncio
import base64
import random
from collections import Counter
from typing import Any

import pytest

from mabware import Experiment, MabwareMiddleware
from mabware._plans import Plans
from mabware.cookies import CookieCodec, CookieState
from mabware.testing import TEST_KEYS, FakeClock, make_engine

Message = dict[str, Any]


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app whose body names the arms it was given."""
    arms = scope["mabware"]
    if scope["path"] == "/reward":
        arms.reward("headline", 1.0)
    if scope["path"] == "/boom":
        raise RuntimeError("handler failed")
    body = ",".join(f"{k}={a.arm}" for k, a in sorted(arms.items())).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": body})


def experiments() -> list[Experiment]:
    return [
        Experiment("headline", {"control": "Welcome", "bold": "Big sale"}),
        Experiment("layout", ["grid", "list", "cards"]),
        Experiment("price", ["9", "12", "15"]),
    ]


Response = tuple[int, dict[bytes, list[bytes]], bytes]


async def acall(app: Any, path: str = "/", cookie: str | None = None, **scope: Any) -> Response:
    headers = [(b"user-agent", b"Mozilla/5.0")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode("latin-1")))
    full = {"type": "http", "path": path, "headers": headers, "scheme": "http", **scope}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(full, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    out: dict[bytes, list[bytes]] = {}
    for k, v in start["headers"]:
        out.setdefault(k, []).append(v)
    return start["status"], out, body


def call(app: Any, path: str = "/", cookie: str | None = None, **scope: Any) -> Response:
    return asyncio.run(acall(app, path, cookie, **scope))


def set_cookie(headers: dict[bytes, list[bytes]]) -> str | None:
    values = headers.get(b"set-cookie", [])
    assert len(values) <= 1
    return values[0].decode().split(";", 1)[0] if values else None


def test_first_visit_sets_cookie_and_returning_visitor_keeps_arms() -> None:
    app = MabwareMiddleware(hello, experiments=experiments(), secret_keys=list(TEST_KEYS))
    status, headers, body = call(app)
    assert status == 200
    assert headers[b"x-app"] == [b"1"]
    cookie = set_cookie(headers)
    assert cookie is not None
    assert cookie.startswith("mabware=")
    for _ in range(20):
        _, again, same = call(app, cookie=cookie)
        assert same == body
        assert set_cookie(again) is None


def test_reward_in_a_handler_reaches_the_statistics() -> None:
    engine = make_engine(experiments())
    app = MabwareMiddleware(hello, engine=engine)
    _, headers, _ = call(app)
    _, rewarded, _ = call(app, "/reward", cookie=set_cookie(headers))
    assert set_cookie(rewarded) is not None  # the rewarded flag is written back
    assert engine.store.statistics("headline", 0.0).reward_sum.sum() == 1.0


def test_non_http_scopes_pass_through_untouched() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    mw = MabwareMiddleware(app, experiments=experiments(), secret_keys=list(TEST_KEYS))
    asyncio.run(mw({"type": "websocket", "path": "/ws", "headers": []}, None, None))  # type: ignore[arg-type]
    assert "mabware" not in seen[0]


def test_lifespan_starts_and_closes_the_store() -> None:
    calls: list[str] = []
    engine = make_engine(experiments())
    engine.store.start = lambda: calls.append("start")  # type: ignore[method-assign]
    engine.store.close = lambda: calls.append("close")  # type: ignore[method-assign]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        pass

    asyncio.run(MabwareMiddleware(app, engine=engine)({"type": "lifespan"}, receive, send))
    assert calls == ["start", "close"]


def test_a_failing_handler_is_counted_as_a_server_error() -> None:
    engine = make_engine(experiments())
    app = MabwareMiddleware(hello, engine=engine)
    with pytest.raises(RuntimeError):
        call(app, "/boom")
    assert engine.store.statistics("headline", 0.0).errors.sum() == 1


def test_hooks_that_raise_never_fail_the_request() -> None:
    def broken(scope: Any) -> Any:
        raise KeyError("session")

    engine = make_engine(experiments())
    app = MabwareMiddleware(hello, engine=engine, unit_id=broken, consent=broken)
    status, headers, _ = call(app)
    assert status == 200
    assert set_cookie(headers) is None
    assert engine.events.counts["hook_error:consent"] == 1


def _tamper(token: str, kind: str, rng: random.Random, other_key_id: bytes) -> str | None:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    if kind == "flip":
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        raw = raw[: rng.randrange(len(raw))]
    elif kind == "append":
        raw.append(rng.randrange(256))
    elif kind == "key_id":
        raw[1:5] = other_key_id
    elif kind == "standard_b64":
        standard = base64.b64encode(bytes(raw)).decode()  # '+', '/' or '=' padding
        return standard if standard != token else None  # None: nothing to tamper
    elif kind == "invalid":
        return "invalid"
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def test_ten_thousand_tampered_cookies_are_new_visitors_and_never_fail() -> None:
    """Each response equals the no-cookie response of a twin engine and sets a valid cookie."""
    keys = list(TEST_KEYS)
    other = CookieCodec([keys[1]]).encode  # a valid token under the second key gives its id
    other_key_id = base64.urlsafe_b64decode(other(CookieState(1, {})) + "==")[1:5]
    rng = random.Random(5)
    kinds = ("flip", "truncate", "append", "standard_b64", "key_id", "invalid")
    clock = FakeClock()
    fast = {"clock": clock, "recompute_interval": 60.0}  # the fake clock stands still
    twins = [make_engine(experiments(), strict=False, seed=9, **fast) for _ in range(2)]
    tampered, twin = (MabwareMiddleware(hello, engine=e) for e in twins)
    source = make_engine(experiments(), seed=1, **fast)
    checker = CookieCodec(keys, clock=clock)
    loop = asyncio.new_event_loop()
    responses = []

    async def both(cookie: str) -> tuple[Response, Response]:
        return await acall(tampered, cookie=f"mabware={cookie}"), await acall(twin)

    for i in range(10_000):
        kind = kinds[i % len(kinds)]
        cookie = None
        while cookie is None:
            token = (source.respond(source.begin(None), 200) or "").split(";")[0].split("=", 1)[1]
            cookie = _tamper(token, kind, rng, other_key_id)
        responses.append(loop.run_until_complete(both(cookie)))
    loop.close()
    for (status, headers, body), (expected_status, expected_headers, expected_body) in responses:
        assert (status, body) == (expected_status, expected_body)
        fresh = set_cookie(headers)
        assert fresh is not None
        mine = checker.decode(fresh.split("=", 1)[1])
        theirs = checker.decode((set_cookie(expected_headers) or "").split("=", 1)[1])
        assert mine.state is not None
        assert theirs.state is not None
        assert mine.state.entries == theirs.state.entries
    rejected = Counter(
        {k: v for k, v in tampered.engine.events.counts.items() if k.startswith("cookie_rejected")}
    )
    assert sum(rejected.values()) == 10_000
    # "invalid" and the standard alphabet are malformed; a swapped id is a configured key's
    # (so the tag fails); a flipped bit lands in the version byte, key id or ciphertext
    assert rejected["cookie_rejected:malformed"] >= 2 * (10_000 // 6)
    assert rejected["cookie_rejected:auth"] >= 10_000 // 6
    assert set(rejected) <= {
        f"cookie_rejected:{r}" for r in ("malformed", "auth", "version", "unknown_key")
    }


def test_engine_cost_stays_plain_python_for_returning_visitors() -> None:
    """No numpy work per returning request: the allocation is not recomputed."""
    engine = make_engine(experiments(), recompute_interval=3600.0, refresh_interval=3600.0)
    cookie = (engine.respond(engine.begin(None), 200) or "").split(";")[0]
    calls = Counter[str]()
    original = Plans._recompute

    def counting(self: Plans, *args: Any) -> None:
        calls["recompute"] += 1
        original(self, *args)

    Plans._recompute = counting  # type: ignore[method-assign]
    try:
        for _ in range(100):
            engine.begin(cookie)
    finally:
        Plans._recompute = original  # type: ignore[method-assign]
    assert calls["recompute"] == 0
