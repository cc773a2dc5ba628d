"""The SDK beside a real ``mabware serve`` that fails: down, tampered, replayed, killed.

Each case runs real processes on loopback (``harness``): the server, the
middleware app under uvicorn, SDK processes (``sdk_child.py``) and, for
tampering, a small HTTP server of the test's own that serves the bytes it
is told to. Waits are ``wait_for`` (until something is true, with a
generous bound), never a sleep that an assertion depends on.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from harness import (
    LIVENESS,
    PUSH,
    READ,
    Server,
    edge_client,
    free_port,
    middleware_app,
    signing_server,
    start_server,
    stop_server,
    wait_for,
)
from kill import child, child_settings, kill_while_pushing, merged_state, replica_totals
from mabware_edge import Decision, EdgeClient
from sdk_child import RecordingTransport, push_totals

from mabware.edge_snapshot import (
    EdgeSnapshot,
    generate_signing_keys,
    issue,
    private_key,
    public_key,
    read,
)

ARMS = ["control", "bold", "banner"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with signing_server(tmp_path, snapshot_interval=0.3) as running:
        yield running


def fetch_snapshot(server: Server) -> bytes:
    answer = httpx.get(f"{server.url}/edge/snapshot", headers=server.headers(READ))
    assert answer.status_code == 200, answer.text
    return answer.content


def seq_of(data: bytes, server: Server) -> int:
    return read(data, public_key(server.public_key)).seq


def newer_snapshot(server: Server, seq: int) -> bytes:
    """The first snapshot the server serves with a seq above ``seq`` (one every 0.3 s)."""
    deadline = time.monotonic() + LIVENESS
    while (data := fetch_snapshot(server)) and seq_of(data, server) <= seq:
        assert time.monotonic() < deadline, "no new snapshot issued"
        time.sleep(0.05)
    return data


# -- 1. the server is down when the client starts ------------------------------------


def test_a_cold_start_with_the_server_down_decides_from_the_cache_file(tmp_path: Path) -> None:
    cache = tmp_path / "headline.snap"
    server = start_server(tmp_path)
    try:
        server.create("headline", ARMS)
        with edge_client(server, cache_path=cache) as warm:
            assert warm.refresh()
            cached = warm.snapshot
        assert cached is not None
        assert cache.exists()
    finally:
        stop_server(server)

    with edge_client(server, cache_path=cache) as cold:  # the same URL, nobody answers
        assert cold.snapshot == cached
        assigned = cold.decide("headline", "user-1")
        sampled = cold.decide("headline")
        assert (assigned.reason, assigned.snapshot_seq) == ("assigned", cached.seq)
        assert (sampled.reason, sampled.snapshot_seq) == ("sampled", cached.seq)
        assert assigned.arm in ARMS
        assert sampled.arm in ARMS
        assert cold.refresh() is False
        assert cold.errors["refresh:network"] == 1
        assert cold.snapshot == cached  # the failed refresh changed nothing
        assert cold.decide("headline", "user-1").arm == assigned.arm


def test_a_cold_start_without_cache_or_server_gives_the_defaults() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    key = generate_signing_keys()["public_key"]
    settings: dict[str, Any] = {"public_key": key, "refresh": "manual", "push_url": None}
    with (
        EdgeClient(f"{nobody}/edge/snapshot", defaults={"headline": "control"}, **settings) as a,
        EdgeClient(f"{nobody}/edge/snapshot", **settings) as b,
    ):
        for edge, arm in ((a, "control"), (b, None)):
            assert edge.refresh() is False
            assert edge.errors["refresh:network"] == 1
            for unit in ("user-1", None):
                d = edge.decide("headline", unit)
                assert (d.arm, d.reason, d.snapshot_seq) == (arm, "no_snapshot", None)
            assert edge.decisions == {"no_snapshot": 2}
            assert edge.snapshot is None


# -- 2. the server goes down later, and comes back ------------------------------------


class Log:
    """Decisions made through it, with the wall clock just before and after each."""

    def __init__(self, edge: EdgeClient) -> None:
        self.edge = edge
        self.made: list[tuple[float, Decision, float]] = []
        self.units = 0

    def decide(self) -> Decision:
        self.units += 1
        before = time.time()
        d = self.edge.decide("headline", f"user-{self.units}")
        self.made.append((before, d, time.time()))
        return d


def test_a_server_down_later_gives_stale_defaults_then_the_client_recovers_alone(
    tmp_path: Path,
) -> None:
    keys = generate_signing_keys()
    server = start_server(tmp_path, snapshot_interval=0.3, keys=keys)
    port = int(server.url.rsplit(":", 1)[1])
    server.create("headline", ARMS)
    transport = RecordingTransport()
    edge = edge_client(
        server,
        refresh="thread",
        refresh_interval=0.2,
        push_interval=0.2,
        stale_after=1.5,
        transport=transport,
    )
    log = Log(edge)
    try:
        assert wait_for(lambda: edge.snapshot is not None)
        for _ in range(50):
            assert log.decide().reason == "assigned"

        stop_server(server)
        down = edge.snapshot
        assert down is not None
        (experiment,) = down.experiments
        default = experiment.arms[experiment.default]
        start = len(log.made)
        # decide until the held snapshot is stale_after old, then 50 more
        assert wait_for(lambda: log.decide().reason == "stale", every=0.01)
        for _ in range(50):
            log.decide()
        while_down = log.made[start:]
        for before, d, after in while_down:
            assert d.snapshot_seq == down.seq
            if after - down.issued < 1.5:
                assert d.reason == "assigned"
            elif before - down.issued > 1.5:
                assert (d.reason, d.arm, d.propensity) == ("stale", default, 1.0)
        reasons = [d.reason for _, d, _ in while_down]
        first_stale = reasons.index("stale")
        assert set(reasons[:first_stale]) <= {"assigned"}
        assert set(reasons[first_stale:]) == {"stale"}  # from then on, every one

        server = start_server(tmp_path, port=port, snapshot_interval=0.3, keys=keys)
        # nobody calls refresh(): the client's thread finds the server again
        assert wait_for(lambda: log.decide().reason == "assigned", every=0.02)
        for _ in range(50):
            assert log.decide().reason == "assigned"
        assert edge.snapshot is not None
        assert edge.snapshot.seq > down.seq
        assert log.made[-1][1].snapshot_seq == edge.snapshot.seq
        # normal, then stale while down and until the client found the server, then normal
        reasons = [d.reason for _, d, _ in log.made]
        assert [reason for reason, _ in itertools.groupby(reasons)] == [
            "assigned",
            "stale",
            "assigned",
        ]
        counted, stale = reasons.count("assigned"), reasons.count("stale")
        assert stale >= 51
        assert {(d.arm, d.propensity) for _, d, _ in log.made if d.reason == "stale"} == {
            (default, 1.0)
        }
        assert edge.decisions == {"assigned": counted, "stale": stale}
        # the pulls pushed are exactly the counted decisions: none of the stale ones
        assert wait_for(lambda: server.totals("headline") == (counted, 0))
        last = push_totals(transport.posts[-1][1], "headline")
        assert sum(last["pulls"].values()) == counted
        assert all(
            sum(push_totals(body, "headline")["pulls"].values()) <= counted
            for _, body, _ in transport.posts
        )
    finally:
        edge.close()
        stop_server(server)


# -- 3. a tampered, foreign or replayed snapshot ------------------------------------


class Handler(BaseHTTPRequestHandler):
    server: Tamperer

    def do_GET(self) -> None:
        body, etag = self.server.answer
        self.server.gets += 1
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/msgpack")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class Tamperer(ThreadingHTTPServer):
    """Serves ``answer`` (body, ETag) at any path: the bytes a man in the middle chooses."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer: tuple[bytes, str] = (b"", '"none"')
        self.gets = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/edge/snapshot"


@contextlib.contextmanager
def tamperer() -> Iterator[Tamperer]:
    proxy = Tamperer()
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()


def test_a_tampered_foreign_or_replayed_snapshot_is_refused_and_the_last_good_kept(
    server: Server,
) -> None:
    server.create("headline", ARMS)
    older = fetch_snapshot(server)
    good = newer_snapshot(server, seq_of(older, server))
    good_seq = seq_of(good, server)

    outer = msgpack.unpackb(good)
    at = good.index(outer["body"]) + len(outer["body"]) // 2
    flipped = good[:at] + bytes([good[at] ^ 0x01]) + good[at + 1 :]
    assert msgpack.unpackb(flipped)["body"] != outer["body"]
    genuine = read(good, public_key(server.public_key))
    forged = issue(
        EdgeSnapshot(good_seq + 1_000, time.time(), genuine.experiments),
        private_key(generate_signing_keys()["private_key"]),
    )

    with tamperer() as proxy, EdgeClient(
        proxy.url, public_key=server.public_key, refresh="manual"
    ) as edge:  # fmt: skip
        proxy.answer = (good, '"good"')
        assert edge.refresh()
        assert edge.snapshot is not None
        assert edge.snapshot.seq == good_seq
        assert edge.decide("headline", "user-1").snapshot_seq == good_seq

        cases = [(flipped, "signature"), (forged, "signature"), (older, "rollback")]
        refused: Counter[str] = Counter()
        for i, (data, reason) in enumerate(cases):
            proxy.answer = (data, f'"case-{i}"')
            gets = proxy.gets
            assert edge.refresh() is False
            assert proxy.gets == gets + 1  # fetched (a 200, no 304), and refused
            refused[reason] += 1
            assert edge.rejected == refused
            assert edge.snapshot.seq == good_seq
            d = edge.decide("headline", f"user-{i}")
            assert (d.reason, d.snapshot_seq) == ("assigned", good_seq)
        assert edge.rejected == {"signature": 2, "rollback": 1}
        assert edge.decisions == {"assigned": 4}


# -- 4. one push delivered four times -----------------------------------------------


def test_one_push_delivered_four_times_is_counted_once(server: Server) -> None:
    server.create("subject", ARMS, reward_mode="every")
    transport = RecordingTransport()
    pulls = rewards = 0.0
    with edge_client(server, transport=transport) as edge:
        assert edge.refresh()
        for i in range(300):
            d = edge.decide("subject", f"user-{i}")
            pulls += 1
            if i % 2:
                assert edge.reward(d, 1.0)
                rewards += 1.0
        assert edge.push()
        assert len(transport.posts) == 1
        url, body, headers = transport.posts[0]
        assert push_totals(body, "subject")["seq"] == 1

        with httpx.Client() as http:
            for _ in range(3):  # the same bytes again, as a retrying proxy would
                answer = http.post(
                    f"{server.url}/sync",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {PUSH}",
                        "Content-Type": "application/msgpack",
                    },
                )
                assert answer.status_code == 200, answer.text
                assert msgpack.unpackb(answer.content) == {"seq": 1}
        assert url == f"{server.url}/sync"
        assert headers["Authorization"] == f"Bearer {PUSH}"

        held = merged_state(server)  # written before each 200: no lag
        assert held.replicas[edge.replica_id].seq == 1
        totals = replica_totals(held, edge.replica_id, "subject")
        assert sum(totals["pulls"].values()) == pulls
        assert sum(totals["rewards"].values()) == rewards

        # one more push after the copies: the server's view that shows it has seen them
        edge.reward("subject", arm="bold", value=1.0)
        rewards += 1.0
        assert edge.push()
    assert wait_for(lambda: server.totals("subject") == (pulls, rewards))


# -- 5. SIGKILL in the middle of pushing -----------------------------------------------


def test_sigkill_while_pushing_loses_only_what_was_not_pushed(
    server: Server, tmp_path: Path
) -> None:
    server.create("headline", ARMS, reward_mode="every")
    for run in range(3):
        # the kill lands anywhere in the push cycle: its moment is not asserted on
        killed = kill_while_pushing(server, "headline", tmp_path / f"pushes-{run}.jsonl")
        assert killed.acked >= 1
        assert killed.held >= killed.acked  # nothing acknowledged is lost
        assert killed.held in killed.logged
        # exactly the totals of push ``held``: nothing partial, nothing doubled
        assert killed.totals == killed.logged[killed.held]


# -- 6. many SDK processes and the middleware, exact totals --------------------------


def test_eight_sdk_processes_and_two_middleware_workers_give_exact_totals(
    server: Server, tmp_path: Path
) -> None:
    per_child, children = 5_000, 8
    server.create("headline", ARMS, reward_mode="every")
    settings = {"EDGE_ARMS": ",".join(ARMS), "EDGE_MODE": "every"}
    with middleware_app(server, tmp_path, workers=2, **settings) as app:
        processes = [
            child(
                "count",
                child_settings(server, "headline", n=per_child, tag=f"child-{i}"),
                stdout=subprocess.PIPE,
            )
            for i in range(children)
        ]
        try:
            visitors, counted = 150, 0
            for v in range(visitors):
                with httpx.Client() as browser:  # a fresh cookie jar: a new visitor
                    assert browser.get(app, params={"user": f"visitor-{v}"}).text in ARMS
                    counted += browser.get(f"{app}/buy").text == "counted"
            reports = [json.loads(p.communicate(timeout=LIVENESS * 2)[0]) for p in processes]
        finally:
            for p in processes:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
        assert [p.returncode for p in processes] == [0] * children
    for report in reports:
        assert report == {"pulls": per_child, "rewards": per_child, "errors": {}}
    assert counted > 0
    # + 1 pull: middleware_app's readiness probe (GET /whoami) is a new visitor too,
    # and the middleware assigns every experiment on every request
    expected = (children * per_child + visitors + 1, children * per_child + counted)
    assert wait_for(lambda: server.totals("headline") == expected), server.totals("headline")
