"""Pushing: the body's exact totals, resends, retirement, schedule, fork, close and exit."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgpack
from edge_support import NOW, Clock, FakeTransport, client, decode_push, experiment, retired, signed

from mabware_edge import Response

SNAP = signed(10, NOW, [experiment("headline"), experiment("trend", buckets=3)])


def test_body_holds_the_exact_totals() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport, push_token="p-token")
    arms = Counter()
    for i in range(50):
        d = edge.decide("headline", f"user-{i}")
        arms[d.arm] += 1
        if i % 3 == 0:
            assert edge.reward(d, 1.0)
    assert edge.push() is True
    url, body, headers = transport.posts[0]
    assert url == "http://sync.test/sync"
    assert headers["Content-Type"] == "application/msgpack"
    assert headers["Authorization"] == "Bearer p-token"
    wire = decode_push(body)
    assert set(wire) == {"replica", "seq", "seen", "tallies", "columns", "sums", "decoded"}
    assert (wire["replica"], wire["seq"], wire["seen"]) == (edge.replica_id, 1, NOW + 1)
    assert wire["columns"] == 0b1111
    assert wire["tallies"] == [["headline", 1, {"arms": ["control", "bold"]}]]
    sums = wire["decoded"][("headline", 1)]
    assert sums["control"][0] + sums["bold"][0] == 50.0
    assert {arm: sums[arm][0] for arm in arms} == {arm: float(n) for arm, n in arms.items()}
    rewards = {arm: sums[arm][1] for arm in sums}
    assert sum(rewards.values()) == 17.0
    for arm, row in sums.items():
        assert row[2] == row[1]  # 0/1 rewards: the squares are the rewards
        propensity = 0.25 if arm == "control" else 0.75
        assert row[3] == sum(1.0 / propensity for _ in range(int(row[1])))
    assert edge.push() is True  # nothing new: nothing sent
    assert len(transport.posts) == 1


def test_time_buckets_newest_first() -> None:
    transport = FakeTransport()
    clock = Clock(NOW)  # bucket index NOW // 60
    edge = client(SNAP, transport=transport, clock=clock)
    newest = int(NOW // 60)
    edge.decide("trend", "u")  # bucket newest - 2
    clock.advance(120)
    d = edge.decide("trend", "u")  # newest
    assert edge.reward(d, 1.0)
    assert edge.push()
    wire = decode_push(transport.posts[0][1])
    trend = wire["tallies"].index(["trend", 1, {"arms": ["control", "bold"]}])
    buckets = wire["buckets"][trend]
    assert buckets[:2] == [newest + 2, 3]
    pulls = struct.unpack("<6d", buckets[2])
    rewards = struct.unpack("<6d", buckets[3])
    slot = ["control", "bold"].index(d.arm)
    expected_pulls = [0.0] * 6
    expected_pulls[slot] += 1.0  # row 0: newest
    expected_pulls[4 + slot] += 1.0  # row 2: two buckets back
    assert list(pulls) == expected_pulls
    assert rewards[slot] == 1.0
    assert sum(rewards) == 1.0


def test_a_resend_reuses_seq_and_body() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport)
    edge.decide("headline", "u")
    transport.post_answers += [OSError("timed out"), Response(503, {}, b""), Response(429, {}, b"")]
    assert edge.push() is False
    edge.decide("headline", "v")  # counted meanwhile: waits for the next body
    assert edge.push() is False
    assert edge.push() is False
    assert edge.push() is True
    bodies = [body for _, body, _ in transport.posts]
    assert len(bodies) == 4
    assert len(set(bodies)) == 1
    assert decode_push(bodies[0])["seq"] == 1
    assert edge.errors == {"push:network": 1, "push:http_503": 1, "push:http_429": 1}
    assert edge.push() is True  # the news since: a new body
    second = decode_push(transport.posts[-1][1])
    assert second["seq"] == 2
    assert sum(row[0] for row in second["decoded"][("headline", 1)].values()) == 2.0


def test_a_refused_body_is_dropped_and_rebuilt() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport)
    edge.decide("headline", "u")
    transport.post_answers.append(Response(401, {}, b""))
    assert edge.push() is False
    assert edge.errors == {"push:http_401": 1}
    assert edge.push() is True
    assert [decode_push(b)["seq"] for _, b, _ in transport.posts] == [1, 2]


def pulls(body: bytes) -> float:
    return sum(row[0] for row in decode_push(body)["decoded"][("headline", 1)].values())


def test_retired_replica_restarts_without_the_folded_push() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport)
    old_id = edge.replica_id
    for i in range(3):
        edge.decide("headline", f"a{i}")
    assert edge.push()  # seq 1: 3 pulls, acknowledged
    for i in range(4):
        edge.decide("headline", f"b{i}")
    transport.post_answers.append(OSError("reply lost"))  # seq 2 (7 pulls) may have landed
    assert edge.push() is False
    edge.decide("headline", "c")  # 8 pulls in all
    transport.post_answers.append(retired(folded_seq=2))
    assert edge.push() is True  # rebased, and pushed again at once
    assert edge.replica_id != old_id
    assert edge.errors["push:retired"] == 1
    last = decode_push(transport.posts[-1][1])
    assert (last["replica"], last["seq"]) == (edge.replica_id, 1)
    assert pulls(transport.posts[-1][1]) == 1.0  # 8 counted - the 7 the server folded


def test_retired_without_folded_seq_takes_out_the_acknowledged_push() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport)
    for i in range(3):
        edge.decide("headline", f"a{i}")
    assert edge.push()
    for i in range(4):
        edge.decide("headline", f"b{i}")
    transport.post_answers.append(retired(folded_seq=None))
    assert edge.push() is True
    assert pulls(transport.posts[-1][1]) == 4.0


def test_retired_folding_the_acknowledged_push_of_several() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport)
    edge.decide("headline", "a")
    assert edge.push()  # seq 1: 1 pull
    edge.decide("headline", "b")
    transport.post_answers.append(OSError("lost"))
    assert edge.push() is False  # seq 2 in flight: 2 pulls
    transport.post_answers.append(retired(folded_seq=1))  # the server holds seq 1 only
    assert edge.push() is True
    assert pulls(transport.posts[-1][1]) == 1.0


def test_push_schedule_interval_and_threshold() -> None:
    transport = FakeTransport()
    clock = Clock()
    edge = client(SNAP, transport=transport, clock=clock, push_interval=10.0, push_after=5)
    for i in range(4):
        edge.decide("headline", f"u{i}")
    edge.maybe_refresh()
    assert transport.posts == []  # neither due
    edge.decide("headline", "u5")  # the fifth count
    edge.maybe_refresh()
    assert len(transport.posts) == 1
    edge.decide("headline", "u6")
    clock.advance(11.1)
    edge.maybe_refresh()
    assert len(transport.posts) == 2
    clock.advance(11.1)
    edge.maybe_refresh()  # due, but nothing new: nothing sent
    assert len(transport.posts) == 2


def test_offline_backs_off_and_pushes_on_recovery() -> None:
    transport = FakeTransport()
    clock = Clock()
    edge = client(SNAP, transport=transport, clock=clock, push_interval=10.0, push_after=1)
    transport.post_answers += [OSError("down")] * 20
    delays = []
    for _ in range(8):
        edge.decide("headline", "u")
        clock.advance(61.0)
        edge.maybe_refresh()
        delays.append(edge._schedule.next_push - clock.now)
    assert all(0.0 < d <= 60.0 for d in delays)
    assert max(delays) > 20.0  # it grew
    transport.post_answers.clear()
    clock.advance(61.0)
    edge.maybe_refresh()  # the body in flight goes through, and the news after it is due
    edge.maybe_refresh()
    assert pulls(transport.posts[-1][1]) == 8.0


def test_close_pushes_once() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport)
    edge.decide("headline", "u")
    edge.close()
    edge.close()
    assert len(transport.posts) == 1
    assert pulls(transport.posts[0][1]) == 1.0


def test_fork_makes_a_new_replica_with_empty_totals() -> None:
    edge = client(SNAP)
    edge.decide("headline", "u")
    parent_id = edge.replica_id
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running pytest's teardown
        try:
            report = [edge.replica_id, edge._ledger.changes, edge.decide("headline", "u").reason]
            os.write(write, msgpack.packb(report))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child_id, changes, reason = msgpack.unpackb(pipe.read())
    os.waitpid(pid, 0)
    assert child_id != parent_id
    assert len(child_id) == 32
    assert (changes, reason) == (0, "assigned")
    assert edge.replica_id == parent_id


def test_exit_pushes_what_is_left(tmp_path: Path) -> None:
    out = tmp_path / "posts.bin"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from edge_support import FakeTransport, client, SNAP_FOR_EXIT

        class Recording(FakeTransport):
            def post(self, url, body, headers, timeout):
                with open({str(out)!r}, "ab") as f:
                    f.write(body)
                return super().post(url, body, headers, timeout)

        edge = client(SNAP_FOR_EXIT, transport=Recording())
        edge.decide("headline", "u")
        # no close(): atexit does it
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert pulls(out.read_bytes()) == 1.0


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_thread_mode_pushes_early_at_the_threshold() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport, refresh="thread", push_after=3, push_interval=3600.0)
    try:
        edge.decide("headline", "a")
        edge.decide("headline", "b")
        time.sleep(0.05)
        assert transport.posts == []
        edge.decide("headline", "c")  # the third count wakes the thread
        wait_for(lambda: len(transport.posts) == 1)
        assert pulls(transport.posts[0][1]) == 3.0
    finally:
        edge.close()


def test_lazy_mode_pushes_on_a_short_lived_thread() -> None:
    transport = FakeTransport()
    edge = client(SNAP, transport=transport, refresh="lazy", push_after=2, push_interval=3600.0)
    edge.decide("headline", "a")
    edge.decide("headline", "b")  # due: a worker pushes, decide returns at once
    wait_for(lambda: len(transport.posts) == 1)
    assert pulls(transport.posts[0][1]) == 2.0
    edge.close()
    assert len(transport.posts) == 1  # nothing new at close
