"""A dead shared backend costs the visitors nothing, and nothing counted is lost.

The app runs under uvicorn (one worker) in three phases:

1. backend up: 100 new visitors; those on ``bold`` are rewarded, so the
   allocation learns to favour ``bold`` (a default-arm fallback would
   serve ``control``, which is how the test tells the two apart);
2. backend down: the ``mabware serve`` process the app syncs with is
   SIGKILLed (``http``), or the state file is replaced by garbage so every
   exchange fails its checksum (``file``). Under a few hundred requests
   from returning and new visitors: no 5xx, returning visitors keep their
   arms, new ones are served from the last known allocation (mostly
   ``bold``), /stats answers and reports ``backend_up`` False;
3. recovery: the server is restarted on the same port with the same state
   file (``http``), or the last good state file is put back (``file``).
   The state then holds exactly what the app counted: one pull per new
   visitor and every acknowledged reward.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .harness import (
    LIVENESS,
    Server,
    app_env,
    free_port,
    global_totals,
    read_state,
    reward_sum,
    serving,
    uvicorn,
    wait_for,
)

SYNC_INTERVAL = 0.2
WARM_VISITORS = 100
OUTAGE_REQUESTS = 300


class Visitors:
    """Browsers with their own cookies, and what the app must have counted for them."""

    def __init__(self, url: str, seed: int) -> None:
        self.http = httpx.Client(base_url=url, timeout=LIVENESS)
        self.rng = random.Random(seed)
        self.cookies: list[str] = []
        self.arms: list[str] = []
        self.rewarded: list[bool] = []
        self.pulls = 0  # requests without a cookie: one assignment each
        self.rewards = 0  # 200 "ok" answers from /reward
        self.statuses: list[int] = []

    def _get(self, path: str, who: int | None, **params: Any) -> httpx.Response:
        self.http.cookies.clear()  # the cookie goes in by hand: one jar, many visitors
        headers = {"Cookie": self.cookies[who]} if who is not None else {}
        response = self.http.get(path, params=params, headers=headers)
        self.statuses.append(response.status_code)
        if who is None:
            self.pulls += 1
        cookie = response.headers.get("set-cookie")
        if cookie is not None and who is not None:
            self.cookies[who] = cookie.split(";", 1)[0]
        return response

    def new(self) -> str:
        """A first visit; the arm it got. ``bold`` visitors are then rewarded."""
        response = self._get("/", None)
        assert response.status_code == 200, response.text
        arm = response.text.split()[0].removeprefix("arm=")
        self.cookies.append(response.headers["set-cookie"].split(";", 1)[0])
        self.arms.append(arm)
        self.rewarded.append(False)
        if arm == "bold":
            self.reward(len(self.arms) - 1)
        return arm

    def returning(self) -> None:
        who = self.rng.randrange(len(self.arms))
        response = self._get("/", who)
        assert response.status_code == 200, response.text
        assert response.text.split()[0] == f"arm={self.arms[who]}", "a returning visitor moved"

    def reward(self, who: int) -> None:
        response = self._get("/reward", who, experiment="headline", value=1)
        if self.rewarded[who]:  # reward_mode "once": a second reward is refused
            assert response.status_code == 409, response.text
        else:
            assert response.status_code == 200, response.text
            self.rewarded[who] = True
            self.rewards += 1

    def stats(self) -> dict[str, Any]:
        response = self.http.get("/stats")
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc


class HttpOutage:
    """The app syncs with ``mabware serve``; the outage is a SIGKILL of that server."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state = directory / "server.state"
        self.port = free_port()
        self.store = f"http://127.0.0.1:{self.port}"
        self.server: Server | None = None

    def up(self) -> None:
        argv = ["mabware", "serve", "--port", str(self.port), "--store", f"file:{self.state}"]
        self.server = Server(argv, self.port, self.directory / "serve.log")
        self.server.wait_ready("/snapshot")

    def down(self) -> None:
        assert self.server is not None
        self.server.stop(signal.SIGKILL)

    def recover(self) -> None:
        self.up()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


class FileOutage:
    """The app syncs through a state file; the outage is garbage in its place."""

    def __init__(self, directory: Path) -> None:
        self.state = directory / "state"
        self.store = f"file:{self.state}"
        self.good = b""

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The lock every FileBackend takes, so no exchange is halfway meanwhile."""
        fd = os.open(f"{self.state}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _replace(self, data: bytes) -> None:
        temp = self.state.with_name("outage.tmp")
        temp.write_bytes(data)
        os.replace(temp, self.state)

    def up(self) -> None:
        pass

    def down(self) -> None:
        with self._locked():
            self.good = self.state.read_bytes()
            self._replace(b"MABW\x01garbage, not a state")

    def recover(self) -> None:
        with self._locked():
            self._replace(self.good)

    def close(self) -> None:
        pass


@pytest.fixture(params=["http", "file"])
def outage(request, tmp_path):
    made = HttpOutage(tmp_path) if request.param == "http" else FileOutage(tmp_path)
    made.up()
    yield made
    made.close()


def bold_share(stats: dict[str, Any]) -> float:
    return float(stats["experiments"]["headline"]["arms"]["bold"]["share"])


def app_totals(stats: dict[str, Any]) -> tuple[float, float]:
    arms = stats["experiments"]["headline"]["arms"]
    return float(sum(a["pulls"] for a in arms.values())), reward_sum(stats)


def test_a_dead_backend_costs_no_request_and_loses_no_count(outage, tmp_path):
    port = free_port()
    env = app_env(outage.store, SYNC_INTERVAL)
    with serving(uvicorn(port), port, tmp_path / "uvicorn.log", env) as app:
        app.wait_ready()
        visitors = Visitors(app.url, seed=7)
        assert wait_for(lambda: visitors.stats()["backend_up"] is True)

        # 1. backend up: the allocation learns that bold wins
        for _ in range(WARM_VISITORS):
            visitors.new()
        assert wait_for(lambda: bold_share(visitors.stats()) > 0.9), visitors.stats()

        # 2. backend down
        outage.down()
        assert wait_for(lambda: visitors.stats()["backend_up"] is False), app.output()
        share = bold_share(visitors.stats())
        new_arms = []
        for i in range(OUTAGE_REQUESTS):
            if i % 3 == 0:
                new_arms.append(visitors.new())
            elif i % 10 == 1:
                visitors.reward(visitors.rng.randrange(len(visitors.arms)))
            else:
                visitors.returning()
        stats = visitors.stats()
        assert stats["backend_up"] is False
        assert stats["sync_errors"] > 0
        assert max(visitors.statuses) < 500
        assert share > 0.9  # the last known allocation favours bold ...
        assert new_arms.count("bold") / len(new_arms) > 0.75, new_arms  # ... and serves it
        assert app_totals(stats) == (visitors.pulls, visitors.rewards)  # it kept counting

        # 3. recovery: the shared state holds exactly what the app counted
        outage.recover()
        expected = (float(visitors.pulls), float(visitors.rewards))
        assert wait_for(
            lambda: (
                global_totals(read_state(outage.state)) == expected
                and visitors.stats()["backend_up"] is True
            )  # the app has the answer, too
        ), (global_totals(read_state(outage.state)), expected)
        assert app_totals(visitors.stats()) == expected
        assert len(read_state(outage.state).replicas) == 1
        visitors.http.close()
    log = app.output()
    assert 1 <= log.count("store unreachable") <= 3, log  # logged once per cause, not per sync
