"""The stored and wire forms (``mabware.store._wire``): exact, validated, format 1 still read."""

from __future__ import annotations

import math
import zlib
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sync_helpers import canonical, stats, tally

from mabware.statistics import LATENCY_BOUNDS
from mabware.store.merge import (
    FORMAT,
    SUMS,
    WIDTH,
    Key,
    PackedTallies,
    Replica,
    SharedState,
    StateError,
    Tally,
    combined,
    compact,
    merge,
    pack,
    replica_from_wire,
    replica_to_wire,
    unpack,
)

F8 = np.float64
KEY: Key = ("headline", 1)


@st.composite
def tallies(draw: st.DrawFn) -> Tally:
    arms = tuple(draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=4, unique=True)))
    n = len(arms)
    counts = st.lists(
        st.floats(0, 1e12, allow_nan=False, allow_infinity=False), min_size=n, max_size=n
    )
    buckets = None
    if draw(st.booleans()):
        depth = draw(st.integers(1, 4))
        rows = [draw(counts) for _ in range(depth)]
        buckets = (draw(st.integers(-(2**40), 2**40)), rows, [draw(counts) for _ in rows])
    return Tally(arms, stats(draw(counts), draw(counts), buckets=buckets))


keys = st.tuples(st.sampled_from(["headline", "layout"]), st.integers(0, 3))
replica_ids = st.text(min_size=1, max_size=8)


@st.composite
def states(draw: st.DrawFn) -> SharedState:
    replicas = draw(
        st.dictionaries(
            replica_ids,
            st.builds(
                Replica,
                st.integers(0, 2**40),
                st.floats(0, 2e9),
                st.dictionaries(keys, tallies(), max_size=2),
            ),
            max_size=3,
        )
    )
    tombstones = draw(st.dictionaries(replica_ids, st.floats(0, 2e9), max_size=3))
    folded = {rid: draw(st.integers(0, 2**40)) for rid in tombstones if draw(st.booleans())}
    retired = draw(st.dictionaries(keys, tallies(), max_size=2))
    return SharedState(replicas, retired, tombstones, folded)


@settings(max_examples=40)
@given(states())
def test_pack_unpack_round_trip(state: SharedState) -> None:
    assert canonical(unpack(pack(state))) == canonical(state)
    again = unpack(pack(unpack(pack(state))))  # through the memo this time
    assert canonical(again) == canonical(state)


@settings(max_examples=40)
@given(state=states(), data=st.data())
def test_a_flipped_byte_or_a_truncation_is_a_state_error(
    state: SharedState, data: st.DataObject
) -> None:
    packed = pack(state)
    where = data.draw(st.integers(0, len(packed) - 1))
    flip = data.draw(st.integers(1, 255))
    damaged = packed[:where] + bytes([packed[where] ^ flip]) + packed[where + 1 :]
    with pytest.raises(StateError):
        unpack(damaged)
    with pytest.raises(StateError):
        unpack(packed[: data.draw(st.integers(0, len(packed) - 1))])
    with pytest.raises(StateError):
        unpack(packed + data.draw(st.binary(min_size=1, max_size=8)))


def test_the_memo_never_mistakes_one_state_for_another() -> None:
    """Two pushes alike but for one number: same id, seq, seen and length."""
    one = SharedState({"r": Replica(1, 5.0, {KEY: tally("ab", [1, 2])})})
    two = SharedState({"r": Replica(1, 5.0, {KEY: tally("ab", [1, 3])})})
    for state in (one, two, one):
        assert combined(unpack(pack(state)), KEY, "ab", 0).pulls.tolist() == (
            combined(state, KEY, "ab", 0).pulls.tolist()
        )


def test_columns_zero_in_every_row_are_left_out() -> None:
    t = tally("ab", [1, 2], [0.5, 0])  # rewards, pulls, responses, latency bucket 0 ...
    wire = replica_to_wire("r", Replica(1, 5.0, {KEY: t}))
    sent = [SUMS.index(n) for n in ("pulls", "reward_sum", "reward_sq_sum", "ipw_gain_sum")]
    sent += [SUMS.index("responses"), SUMS.index("errors"), LATENCY]
    assert wire["columns"] == sum(1 << c for c in sent)
    assert len(wire["sums"]) == 2 * len(sent) * 8
    _, back = replica_from_wire(wire)
    assert back.tallies[KEY].sums.tolist() == t.sums.tolist()
    nothing = replica_to_wire("r", Replica(1, 5.0, {KEY: tally("ab", [0, 0])}))
    assert (nothing["columns"], nothing["sums"]) == (0, b"")
    assert replica_from_wire(nothing)[1].tallies[KEY].sums.tolist() == [[0.0] * WIDTH] * 2


def test_decoded_states_are_read_only() -> None:
    state = unpack(pack(SharedState({"r": Replica(1, 5.0, {KEY: tally("ab", [1, 2])})})))
    tallies = state.replicas["r"].tallies
    assert isinstance(tallies, PackedTallies)
    assert tallies.sums.shape == (2, WIDTH)
    with pytest.raises(ValueError, match="read-only"):
        tallies[KEY].stats.pulls[0] = 9.0


# -- malformed pushes and states -------------------------------------------------------


def _sealed(doc: Any, version: int = FORMAT) -> bytes:
    """A body with a valid header and checksum: only validation can refuse it."""
    body: bytes = msgpack.packb(doc, use_bin_type=True)
    return b"MABW" + bytes([version]) + zlib.crc32(body).to_bytes(4, "big") + body


def _good_push() -> dict[str, Any]:
    return replica_to_wire("r", Replica(1, 0.0, {KEY: tally("ab", [1, 2], [1, 0])}))


def _entry(doc: dict[str, Any]) -> list[Any]:
    entry: list[Any] = doc["tallies"][0]
    return entry


def _tally(doc: dict[str, Any]) -> dict[str, Any]:
    tally: dict[str, Any] = doc["tallies"][0][2]
    return tally


ALL_COLUMNS = (1 << WIDTH) - 1


def _with_sum(doc: dict[str, Any], arm: int, column: int, value: float) -> None:
    """Set one number of the push's sums block (sent whole, every column)."""
    _, replica = replica_from_wire(doc)
    sums = np.array(replica.tallies[KEY].sums)
    sums[arm, column] = value
    doc.update(columns=ALL_COLUMNS, sums=sums.tobytes())


EMPTY = msgpack.packb({"tallies": [], "columns": 0, "sums": b""}, use_bin_type=True)
LATENCY = len(SUMS)  # the first latency column


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _with_sum(d, 1, 0, np.nan), "finite"),
        (lambda d: _with_sum(d, 0, LATENCY + 3, np.inf), "finite"),
        (lambda d: _with_sum(d, 0, 0, -1.0), ">= 0"),  # pulls
        (lambda d: _with_sum(d, 1, 2, -1.0), ">= 0"),  # a sum of squares
        (lambda d: _with_sum(d, 0, 1, -np.inf), "finite"),  # a reward sum: finite
        (lambda d: d.update(columns=ALL_COLUMNS, sums=np.zeros((3, WIDTH)).tobytes()), "shape"),
        (lambda d: d.update(columns=ALL_COLUMNS, sums=np.zeros(2 * WIDTH - 1).tobytes()), "shape"),
        (lambda d: d.update(columns=ALL_COLUMNS), "shape"),  # fewer columns sent than it says
        (lambda d: d.update(columns=-1), "columns"),
        (lambda d: d.update(columns=1 << WIDTH), "columns"),
        (lambda d: d.update(columns=3.0), "columns"),
        (lambda d: d.pop("columns"), "malformed"),
        (lambda d: d.update(sums=b"\x00" * 12), "float64"),
        (lambda d: d.update(sums=[1.0, 2.0]), "float64"),
        (lambda d: _tally(d).update(arms=["a", "a"]), "unique"),
        (lambda d: _tally(d).update(arms="ab"), "list"),
        (lambda d: _tally(d).update(arms=[1, 2]), "unique"),
        (lambda d: _tally(d).update(arms=[]), "unique"),
        (lambda d: _tally(d).pop("arms"), "malformed"),
        (lambda d: _tally(d).update(pulls=np.zeros(2, F8).tobytes()), "pulls"),  # format 1's
        (lambda d: _entry(d).__setitem__(1, "1"), "version"),
        (lambda d: _entry(d).__setitem__(0, 7), "name"),
        (lambda d: _entry(d).__setitem__(2, ["a", "b"]), "map"),
        (lambda d: _entry(d).pop(), "malformed"),
        (lambda d: d["tallies"].append(_entry(d)), "twice"),
        (lambda d: d.update(buckets=[[3, -1, b"", b""]]), "buckets"),
        (lambda d: d.update(buckets=[[3, 10**9, b"", b""]]), "depth must be in"),
        (lambda d: d.update(buckets=[[3.0, 1, b"", b""]]), "buckets"),
        (lambda d: d.update(buckets=[[3, 1, np.zeros(4, F8).tobytes(), b""]]), "rows"),
        (lambda d: d.update(buckets=[[3, 1, np.full(2, -1.0).tobytes(), b""]]), ">= 0"),
        (lambda d: d.update(buckets=[[3, 1, b""]]), "malformed"),
        (lambda d: d.update(buckets=[{"newest": 3}]), "buckets"),
        (lambda d: d.update(buckets=[None, None]), "one entry"),  # one tally, two entries
        (lambda d: d.update(buckets=[3, 1, b"", b""]), "one entry"),
        (lambda d: _tally(d).update(buckets=[3, 1, b"", b""]), "'buckets'"),  # format 1's place
        (lambda d: d.update(seq=-1), "seq"),
        (lambda d: d.update(seq=True), "seq"),
        (lambda d: d.update(seq="1"), "seq"),
        (lambda d: d.update(seen=math.nan), "finite"),
        (lambda d: d.update(replica=""), "replica"),
        (lambda d: d.update(tallies=7), "tallies"),
        (lambda d: d.pop("tallies"), "tallies"),
        (lambda d: d.pop("sums") and d.update(tallies=[["headline", 1]]), "malformed"),
    ],
)
def test_malformed_pushes_and_states_are_refused(change: Any, message: str) -> None:
    doc = _good_push()
    change(doc)
    blob = msgpack.packb(doc, use_bin_type=True)
    with pytest.raises(StateError, match=message):
        replica_from_wire(msgpack.unpackb(blob))
    with pytest.raises(StateError, match=message):
        unpack(_sealed({"replicas": [blob], "retired": EMPTY, "tombstones": {}}))


def _blob(doc: Any) -> bytes:
    out: bytes = msgpack.packb(doc, use_bin_type=True)
    return out


NO_SUMS = _blob({"tallies": [["headline", 1, {"arms": ["a"]}]], "columns": 1})


@pytest.mark.parametrize(
    "doc",
    [
        {"replicas": [], "retired": EMPTY, "tombstones": []},
        {"replicas": [], "retired": EMPTY, "tombstones": {"r": [math.inf, 1]}},
        {"replicas": [], "retired": EMPTY, "tombstones": {"r": ["soon", 1]}},
        {"replicas": [], "retired": EMPTY, "tombstones": {"r": [1.0, -1]}},
        {"replicas": [], "retired": EMPTY, "tombstones": {"r": [1.0, 2.5]}},
        {"replicas": [], "retired": EMPTY, "tombstones": {"r": 1.0}},  # format 1's tombstone
        {"replicas": [], "retired": NO_SUMS, "tombstones": {}},
        {"replicas": [], "retired": {"tallies": [], "columns": 0, "sums": b""}, "tombstones": {}},
        {"replicas": [], "retired": b"\xc1", "tombstones": {}},
        {"replicas": {}, "retired": EMPTY, "tombstones": {}},
        {"replicas": [b"\xc1"], "retired": EMPTY, "tombstones": {}},
        {"replicas": [_blob(_good_push())] * 2, "retired": EMPTY, "tombstones": {}},
        {"replicas": [_good_push()], "retired": EMPTY, "tombstones": {}},  # format 1's replica
        {"replicas": []},
        [1, 2, 3],
        "state",
    ],
)
def test_malformed_states_with_a_valid_checksum_are_refused(doc: Any) -> None:
    with pytest.raises(StateError):
        unpack(_sealed(doc))


@pytest.mark.parametrize(
    "doc",
    [
        {"replicas": [], "retired": [], "tombstones": []},
        {"replicas": [], "retired": [], "tombstones": {"r": math.inf}},
        {"replicas": [], "retired": [], "tombstones": {"r": "soon"}},
        {"replicas": [], "retired": [["headline", 1, {"arms": ["a"]}]], "tombstones": {}},
        {"replicas": {}, "retired": 3, "tombstones": {}},
    ],
)
def test_malformed_format_1_states_are_refused(doc: Any) -> None:
    with pytest.raises(StateError):
        unpack(_sealed(doc, version=1))


def test_another_format_is_refused_by_name() -> None:
    packed = bytearray(pack(SharedState()))
    packed[4] = FORMAT + 1
    with pytest.raises(StateError, match=f"format {FORMAT + 1}"):
        unpack(bytes(packed))


# -- format 1 --------------------------------------------------------------------------


def _format_1_tally(t: Tally) -> dict[str, Any]:
    """A tally as format 1 wrote it: seven arrays, each its own bytes."""
    wire: dict[str, Any] = {"arms": list(t.arms)}
    for name in SUMS:
        wire[name] = np.asarray(getattr(t.stats, name), dtype="<f8").tobytes()
    wire["latency_hist"] = np.ascontiguousarray(t.stats.latency_hist, dtype="<f8").tobytes()
    if t.stats.recent is not None:
        b = t.stats.recent
        wire["buckets"] = [b.newest, b.depth, b.pulls.tobytes(), b.reward_sum.tobytes()]
    return wire


def test_format_1_states_and_pushes_are_still_read() -> None:
    """A state file or a Redis blob written before the upgrade keeps its learning."""
    rows = [[1, 0], [2, 0]]
    timed = Tally(("x", "y"), stats([3, 0], [3, 0], buckets=(7, rows, rows)))
    plain = tally("ab", [5, 6], [1, 2])
    push = {
        "replica": "r",
        "seq": 4,
        "seen": 9.0,
        "tallies": [
            ["layout", 1, _format_1_tally(timed)],
            ["headline", 1, _format_1_tally(plain)],
        ],
    }
    rid, replica = replica_from_wire(msgpack.unpackb(msgpack.packb(push, use_bin_type=True)))
    expected = SharedState(
        {"r": Replica(4, 9.0, {("layout", 1): timed, KEY: plain})},
        {KEY: plain},
        {"old": 5.0},
    )
    assert rid == "r"
    assert canonical(SharedState({rid: replica}))[0] == canonical(expected)[0]
    stored = {
        "replicas": [push],
        "retired": [["headline", 1, _format_1_tally(plain)]],
        "tombstones": {"old": 5.0},
    }
    state = unpack(_sealed(stored, version=1))
    assert canonical(state) == canonical(expected)
    assert state.folded_seqs == {}  # format 1 did not say which push was folded
    assert canonical(unpack(pack(state))) == canonical(expected)  # and it is written as format 2


def test_a_tally_alone_round_trips_and_reads_format_1() -> None:
    t = Tally(("x", "y"), stats([3, 1], [2, 1], buckets=(7, [[1, 0], [2, 1]], [[1, 0], [1, 1]])))
    for wire in (t.to_wire(), _format_1_tally(t)):
        back = Tally.from_wire(msgpack.unpackb(msgpack.packb(wire, use_bin_type=True)))
        assert back.to_wire() == t.to_wire()
    assert t.to_wire()["sums"] == np.asarray(t.sums, dtype="<f8").tobytes()
    assert t.sums.shape == (2, len(SUMS) + len(LATENCY_BOUNDS))


def test_the_folded_seq_survives_the_stored_form() -> None:
    state = merge(SharedState(), "r", Replica(3, 0.0, {KEY: tally("ab", [2, 1])}))
    state = compact(state, 11.0, 10.0)
    assert unpack(pack(state)).folded_seqs == {"r": 3}
    assert unpack(pack(state)).tombstones == {"r": 11.0}


def test_a_known_layout_is_still_checked_exactly() -> None:
    """Decoding remembers layouts it checked; a push equal but for a type is still refused."""
    doc = _good_push()
    replica_from_wire(doc)  # its layout is known from now on
    for version in (True, 1.0):  # both == 1
        bad = _good_push()
        _entry(bad)[1] = version
        with pytest.raises(StateError, match="version"):
            replica_from_wire(bad)
    _tally(doc)["arms"].append("a")  # the caller's list changes after it was decoded
    with pytest.raises(StateError, match="unique"):
        replica_from_wire(doc)


def test_reward_sums_below_zero_are_carried() -> None:
    """A reward range may reach below 0: a replica's reward sum may be negative."""
    doc = _good_push()
    _with_sum(doc, 0, 1, -3.5)
    doc["buckets"] = [[3, 2, np.ones((1, 2)).tobytes(), np.full((1, 2), -2.0).tobytes()]]
    _, replica = replica_from_wire(msgpack.unpackb(msgpack.packb(doc, use_bin_type=True)))
    stats = replica.tallies[KEY].stats
    assert stats.reward_sum[0] == -3.5
    assert stats.recent is not None
    assert stats.recent.reward_sum[0].tolist() == [-2.0, -2.0]
    again = replica_from_wire(replica_to_wire("r", replica))[1]
    assert again.tallies[KEY].stats.reward_sum[0] == -3.5
