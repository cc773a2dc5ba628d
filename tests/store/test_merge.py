"""The merge of replica totals: a state machine of replicas, and its algebra.

``MergeMachine`` plays processes that record, push, lose pushes (or only
their replies), see pushes duplicated and replayed late, crash, fall
silent and get retired, and come back and rebase. After every step the
merged totals must be exactly what landed (acknowledged, or landed with
its reply lost): never a count twice, never one lost but what a crashed
process had not pushed. ``bench/sync_faults.py`` runs it
with the long counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)
from sync_helpers import CI, assert_clean, canonical, machine_settings, stats, tally

from mabware.statistics import Counters
from mabware.store.merge import (
    Key,
    PackedTallies,
    Replica,
    RetiredReplicaError,
    SharedState,
    Tally,
    add,
    combined,
    combined_many,
    compact,
    merge,
    pack,
    unpack,
)

RETENTION = 10.0
START = 1_000.0
BUCKET = 5.0  # seconds per time bucket of the "layout" experiment
DEPTH = 3
#: the current configuration: experiment key -> arms in order
CONFIG: dict[Key, tuple[str, ...]] = {("headline", 1): ("a", "b", "c"), ("layout", 2): ("x", "y")}
#: what a process may know of "headline": an older config, the current one, reordered
HEADLINE_ARMS = [("a", "b"), ("a", "b", "c"), ("c", "a", "b")]


@dataclass
class Process:
    """One process and what the model expects of it."""

    rid: str
    arms: dict[Key, tuple[str, ...]]
    counters: dict[Key, Counters]
    seq: int = 0
    acked: dict[Key, Any] = field(default_factory=dict)  # key -> Statistics last acknowledged
    #: key -> Statistics of the push the state holds of this incarnation (acknowledged or not)
    landed: dict[Key, Any] = field(default_factory=dict)
    #: seq -> key -> Statistics of every push of this incarnation that landed
    attempts: dict[int, dict[Key, Any]] = field(default_factory=dict)
    #: key -> arm -> [pulls, rewards]: acknowledged under retired incarnations, and all recorded
    base: dict[Key, dict[str, list[float]]] = field(default_factory=dict)
    recorded: dict[Key, dict[str, list[float]]] = field(default_factory=dict)
    crashed: bool = False

    def tallies(self, now: float) -> dict[Key, Tally]:
        bucket = int(now // BUCKET)
        return {
            key: Tally(self.arms[key], c.snapshot(bucket if c.n_buckets else None))
            for key, c in self.counters.items()
        }


def _zero() -> dict[Key, dict[str, list[float]]]:
    return {key: {arm: [0.0, 0.0] for arm in arms} for key, arms in CONFIG.items()}


class MergeMachine(RuleBasedStateMachine):
    """Processes pushing cumulative totals into one shared state through ``merge``."""

    processes = Bundle("processes")

    def __init__(self) -> None:
        super().__init__()
        self.state = SharedState()
        self.now = START
        self.procs: list[Process] = []
        self.delivered: list[tuple[str, Replica]] = []  # every push that reached the state
        self.max_seq: dict[str, int] = {}
        self.ids = 0

    def _new_id(self) -> str:
        self.ids += 1
        return f"r{self.ids}"

    # -- rules ------------------------------------------------------------------

    def _spawn(self, headline: tuple[str, ...]) -> Process:
        arms = {("headline", 1): headline, ("layout", 2): CONFIG[("layout", 2)]}
        counters = {
            ("headline", 1): Counters(len(headline)),
            ("layout", 2): Counters(2, n_buckets=DEPTH),
        }
        proc = Process(self._new_id(), arms, counters, base=_zero(), recorded=_zero())
        self.procs.append(proc)
        return proc

    @initialize(target=processes, headline=st.sampled_from(HEADLINE_ARMS))
    def first(self, headline: tuple[str, ...]) -> Process:
        return self._spawn(headline)

    @initialize(target=processes, headline=st.sampled_from(HEADLINE_ARMS))
    def second(self, headline: tuple[str, ...]) -> Process:
        return self._spawn(headline)

    @precondition(lambda self: len(self.procs) < 6)
    @rule(target=processes, headline=st.sampled_from(HEADLINE_ARMS))
    def spawn(self, headline: tuple[str, ...]) -> Process:
        return self._spawn(headline)

    @rule(
        proc=processes,
        key=st.sampled_from(sorted(CONFIG)),
        arm=st.integers(0, 2),
        pulls=st.integers(1, 4),
        quarters=st.integers(0, 4),
    )
    def record(self, proc: Process, key: Key, arm: int, pulls: int, quarters: int) -> None:
        if proc.crashed:
            return
        arm %= len(proc.arms[key])
        name = proc.arms[key][arm]
        counters = proc.counters[key]
        bucket = int(self.now // BUCKET) if counters.n_buckets else None
        for _ in range(pulls):
            counters.add_pull(arm, bucket)
        reward = quarters / 4  # multiples of 1/4 add up exactly in floating point
        counters.add_reward(arm, reward, 0.5, bucket)
        counters.add_response_in(arm, error=quarters == 0, bucket=1, count=pulls)
        proc.recorded[key][name][0] += pulls
        proc.recorded[key][name][1] += reward

    @rule(proc=processes, lost=st.sampled_from(["nothing", "nothing", "request", "reply"]))
    def push(self, proc: Process, lost: str) -> None:
        """Push cumulative totals with seq + 1; the backend merges, then compacts.

        A lost request never arrives: only the seq moves on. A lost reply
        arrives and is merged, but the process never learns it was.
        """
        if proc.crashed:
            return
        proc.seq += 1
        if lost == "request":
            return
        push = Replica(proc.seq, self.now, proc.tallies(self.now))
        try:
            state = merge(self.state, proc.rid, push)
        except RetiredReplicaError as exc:
            self._rebase(proc, exc.folded_seq)  # and push again at once, as SharedStore does
            self.push(proc, lost="nothing")
            return
        self.state = self._compacted(state)
        self.delivered.append((proc.rid, push))
        stats = {key: t.stats for key, t in push.tallies.items()}
        proc.landed = proc.attempts[push.seq] = stats
        if lost == "nothing":
            proc.acked = stats

    def _rebase(self, proc: Process, folded_seq: int | None) -> None:
        """What SharedStore does: a new id, counting only what came after the folded push."""
        assert proc.rid in self.state.tombstones
        assert folded_seq == max(proc.attempts)  # the last push of it that landed
        event("rebased after retirement")
        if proc.landed is not proc.acked:
            event("rebased with a landed push unacknowledged")
        counted = proc.attempts[folded_seq]
        for key, folded in counted.items():
            proc.counters[key].subtract(folded)
            for i, name in enumerate(proc.arms[key]):
                proc.base[key][name][0] += folded.pulls[i]
                proc.base[key][name][1] += folded.reward_sum[i]
        proc.rid, proc.seq, proc.acked, proc.landed = self._new_id(), 0, {}, {}
        proc.attempts = {}

    def _compacted(self, state: SharedState) -> SharedState:
        out = compact(state, self.now, RETENTION)
        if len(out.tombstones) > len(state.tombstones):
            event("retired by compaction")
        return out

    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        """The network duplicates or replays a push that was delivered before."""
        if not self.delivered:
            return
        rid, push = data.draw(st.sampled_from(self.delivered[-3:] + self.delivered[:3]))
        before = canonical(self.state)
        try:
            self.state = merge(self.state, rid, push)
        except RetiredReplicaError:
            event("replays refused (retired)")
        assert canonical(self.state) == before

    @precondition(lambda self: self.now - START < 25 * RETENTION)
    @rule(proc=processes)
    def pause(self, proc: Process) -> None:
        """``proc`` is silent past the retention while the others keep syncing."""
        self.now += RETENTION + 1
        for other in self.procs:
            if other is not proc:
                self.push(other, lost="nothing")
        self.state = self._compacted(self.state)

    @precondition(lambda self: sum(not p.crashed for p in self.procs) >= 2)
    @rule(proc=consumes(processes))
    def crash(self, proc: Process) -> None:
        proc.crashed = True  # it stays in self.procs: what it pushed still counts

    # the run stays shorter than 30 retentions, so tombstones outlive it
    @precondition(lambda self: self.now - START < 25 * RETENTION)
    @rule(seconds=st.sampled_from([1.0, 4.0, RETENTION + 1]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def compact(self) -> None:
        self.state = self._compacted(self.state)

    # -- invariants --------------------------------------------------------------

    def _recorded(self, key: Key) -> dict[str, list[float]]:
        """Everything any process ever counted (crashed ones included)."""
        out = {arm: [0.0, 0.0] for arm in CONFIG[key]}
        for proc in self.procs:
            for name, (pulls, rewards) in proc.recorded[key].items():
                out[name][0] += pulls
                out[name][1] += rewards
        return out

    def _held(self, key: Key, latest: str) -> dict[str, list[float]]:
        """What the retired incarnations landed, plus each process's ``latest`` push."""
        out = {arm: [0.0, 0.0] for arm in CONFIG[key]}
        for proc in self.procs:
            for name, (pulls, rewards) in proc.base[key].items():
                out[name][0] += pulls
                out[name][1] += rewards
            pushed = getattr(proc, latest)
            if key in pushed:
                for i, name in enumerate(proc.arms[key]):
                    out[name][0] += pushed[key].pulls[i]
                    out[name][1] += pushed[key].reward_sum[i]
        return out

    @invariant()
    def totals_are_what_landed(self) -> None:
        for key, arms in CONFIG.items():
            total = combined(self.state, key, arms, DEPTH if key == ("layout", 2) else 0)
            acked = self._held(key, "acked")  # what the processes were told the state holds
            landed = self._held(key, "landed")
            recorded = self._recorded(key)
            for i, arm in enumerate(arms):
                pulls, rewards = float(total.pulls[i]), float(total.reward_sum[i])
                # the bounds: nothing lost but unpushed counts, nothing twice
                assert acked[arm][0] <= pulls <= recorded[arm][0]
                assert acked[arm][1] <= rewards <= recorded[arm][1]
                # and, since every push that landed is in: exactly their sums
                assert (pulls, rewards) == (landed[arm][0], landed[arm][1]), (key, arm)
            # every sum merges alike (responses were recorded with the pulls)
            assert total.responses.tolist() == total.pulls.tolist()
            assert total.latency_hist[:, 1].tolist() == total.pulls.tolist()
            if total.recent is not None:  # the buckets hold no more than the totals
                assert (total.recent.pulls.sum(axis=0) <= total.pulls).all()

    @invariant()
    def no_seq_regresses_and_no_replica_vanishes(self) -> None:
        for rid, replica in self.state.replicas.items():
            assert replica.seq >= self.max_seq.get(rid, 0)
            assert rid not in self.state.tombstones
            self.max_seq[rid] = replica.seq
        for rid in self.max_seq:
            assert rid in self.state.replicas or rid in self.state.tombstones
        for proc in self.procs:
            mine = self.state.replicas.get(proc.rid)
            if mine is not None:  # the state holds its last push that landed
                assert mine.seq == max(proc.attempts) <= proc.seq
                assert mine.tallies[("headline", 1)].stats.pulls.tolist() == (
                    proc.landed[("headline", 1)].pulls.tolist()
                )

    @invariant()
    def every_number_is_finite_and_the_state_survives_packing(self) -> None:
        assert_clean(self.state)
        for key, arms in CONFIG.items():
            total = combined(self.state, key, arms, DEPTH)
            for name in ("pulls", "reward_sum", "reward_sq_sum", "ipw_gain_sum", "errors"):
                arr = getattr(total, name)
                assert np.isfinite(arr).all()
                assert (arr >= 0).all()
        assert canonical(unpack(pack(self.state))) == canonical(self.state)


TestMergeMachine = MergeMachine.TestCase
TestMergeMachine.settings = machine_settings(CI.machine_examples, CI.machine_steps)


# -- the algebra of merge ----------------------------------------------------------

RIDS = ["r0", "r1", "r2"]


@st.composite
def pushes(draw: st.DrawFn) -> list[tuple[str, Replica]]:
    """Pushes with unique (replica, seq); a push's content is a function of them."""
    ids = draw(
        st.lists(
            st.tuples(st.sampled_from(RIDS), st.integers(0, 8)),
            min_size=1,
            max_size=10,
            unique=True,
        )
    )
    out = []
    for rid, seq in ids:
        pulls = draw(st.lists(st.integers(0, 50), min_size=3, max_size=3))
        out.append((rid, Replica(seq, float(seq), {("headline", 1): tally("abc", pulls)})))
    return out


@given(data=st.data(), batch=pushes())
def test_merging_in_any_order_keeps_the_highest_seq_per_replica(
    data: st.DataObject, batch: list[tuple[str, Replica]]
) -> None:
    def merged(order: list[tuple[str, Replica]]) -> SharedState:
        state = SharedState()
        for rid, push in order:
            state = merge(state, rid, push)
        return state

    shuffled = data.draw(st.permutations(batch))
    latest: dict[str, Replica] = {}
    for rid, push in batch:
        if rid not in latest or push.seq > latest[rid].seq:
            latest[rid] = push
    assert canonical(merged(batch)) == canonical(merged(shuffled))
    assert canonical(merged(batch)) == canonical(SharedState(latest))
    # in two halves, then the halves again: associativity of the fold
    half = len(shuffled) // 2
    assert canonical(merged(shuffled[half:] + shuffled[:half] + batch)) == canonical(
        SharedState(latest)
    )


@given(batch=pushes())
def test_merging_a_push_twice_changes_nothing(batch: list[tuple[str, Replica]]) -> None:
    state = SharedState()
    for rid, push in batch:
        once = merge(state, rid, push)
        assert canonical(merge(once, rid, push)) == canonical(once)
        state = once


def test_a_lower_or_equal_seq_never_overwrites() -> None:
    state = merge(SharedState(), "r", Replica(5, 0.0, {("headline", 1): tally("ab", [5, 5])}))
    for seq in (5, 4, 0):
        later = merge(state, "r", Replica(seq, 1.0, {("headline", 1): tally("ab", [9, 9])}))
        assert later is state


def test_a_retired_replica_is_refused_and_its_tombstone_outlives_thirty_retentions() -> None:
    state = merge(SharedState(), "r", Replica(1, 0.0, {("headline", 1): tally("ab", [2, 1])}))
    state = compact(state, 11.0, 10.0)
    assert not state.replicas
    assert state.tombstones == {"r": 11.0}
    assert state.folded_seqs == {"r": 1}
    with pytest.raises(RetiredReplicaError) as caught:
        merge(state, "r", Replica(2, 11.0, {}))
    assert caught.value.payload == "r"
    assert caught.value.folded_seq == 1  # the push the retired totals hold
    assert compact(state, 11.0 + 300.0, 10.0).tombstones == {"r": 11.0}
    assert compact(state, 11.0 + 300.0, 10.0).folded_seqs == {"r": 1}
    assert compact(state, 11.0 + 301.0, 10.0).tombstones == {}
    assert compact(state, 11.0 + 301.0, 10.0).folded_seqs == {}
    assert combined(state, ("headline", 1), "ab", 0).pulls.tolist() == [2, 1]


# -- alignment: arms by name, buckets by index --------------------------------------


def test_arms_align_by_name_whatever_each_replica_knows() -> None:
    key = ("headline", 1)
    state = SharedState()
    for rid, arms, pulls in [
        ("old", ("a", "b"), [1, 2]),  # started before arm c existed
        ("new", ("a", "b", "c"), [10, 20, 30]),
        ("odd", ("c", "a", "b"), [100, 200, 300]),
    ]:
        state = merge(state, rid, Replica(1, 0.0, {key: tally(arms, pulls)}))
    assert combined(state, key, ("a", "b", "c"), 0).pulls.tolist() == [211, 322, 130]
    assert combined(state, key, ("b", "a"), 0).pulls.tolist() == [322, 211]  # c left out
    assert combined(state, key, ("a", "b", "c", "d"), 0).pulls.tolist() == [211, 322, 130, 0]
    assert combined(state, key, ("a", "b", "c"), 0, exclude="new").pulls.tolist() == [201, 302, 100]
    retired = compact(state, 100.0, 10.0).retired[key]  # folded: the arms united, by name
    assert dict(zip(retired.arms, retired.stats.pulls.tolist(), strict=True)) == {
        "a": 211,
        "b": 322,
        "c": 130,
    }


def test_buckets_align_across_replicas_with_different_newest_buckets() -> None:
    key = ("layout", 1)
    a_rows = [[1, 0], [2, 0], [3, 0]]  # buckets 100, 99, 98
    b_rows = [[0, 10], [0, 20], [0, 30]]  # buckets 102, 101, 100
    a = Tally(("x", "y"), stats([6, 0], [6, 0], buckets=(100, a_rows, a_rows)))
    b = Tally(("x", "y"), stats([0, 60], [0, 30], buckets=(102, b_rows, b_rows)))
    state = merge(
        merge(SharedState(), "a", Replica(1, 0.0, {key: a})), "b", Replica(1, 0.0, {key: b})
    )
    for depth, rows in [
        (3, [[0, 10], [0, 20], [1, 30]]),
        (5, [[0, 10], [0, 20], [1, 30], [2, 0], [3, 0]]),
        (1, [[0, 10]]),
    ]:
        total = combined(state, key, ("x", "y"), depth)
        assert total.recent is not None
        assert total.recent.newest == 102
        assert total.recent.pulls.tolist() == rows
    assert combined(state, key, ("x", "y"), 0).recent is None
    summed = add(a, b)  # what compaction does: the deeper of the two, aligned
    assert summed.stats.recent is not None
    assert summed.stats.recent.newest == 102
    assert summed.stats.recent.pulls.tolist() == [[0, 10], [0, 20], [1, 30]]
    assert canonical(unpack(pack(state))) == canonical(state)
    # a replica without buckets still adds its totals
    plain = merge(state, "c", Replica(1, 0.0, {key: tally(("y", "x"), [5, 7])}))
    total = combined(plain, key, ("x", "y"), 3)
    assert total.pulls.tolist() == [13, 65]
    assert total.recent is not None
    assert total.recent.pulls.tolist() == [[0, 10], [0, 20], [1, 30]]


# -- many experiments at once: whole blocks where the layout allows -------------------------

WANTED = [(("headline", 1), ("a", "b", "c"), 0), (("layout", 2), ("x", "y"), 3)]


@settings(max_examples=30)
@given(data=st.data())
def test_combined_many_is_combined_of_each_whatever_path_it_takes(data: st.DataObject) -> None:
    """Replicas of this configuration add a block at once; others, and retired, one by one."""
    counts = st.lists(st.integers(0, 50), min_size=3, max_size=3)

    def timed(arms: tuple[str, ...]) -> Tally:
        n = len(arms)
        rows = [data.draw(counts)[:n] for _ in range(data.draw(st.integers(1, 4)))]
        newest = data.draw(st.integers(98, 102))
        return Tally(arms, stats(data.draw(counts)[:n], None, buckets=(newest, rows, rows)))

    def configured() -> PackedTallies:
        return PackedTallies.of(
            {("headline", 1): tally("abc", data.draw(counts)), ("layout", 2): timed(("x", "y"))}
        )

    live = data.draw(st.integers(0, 3))
    replicas = {f"now{i}": Replica(1, 0.0, configured()) for i in range(live)}
    replicas["older"] = Replica(1, 0.0, {("headline", 1): tally("ba", data.draw(counts)[:2])})
    odd = {("layout", 2): timed(("y", "x")), ("gone", 1): timed(("z",))}
    replicas["odd"] = Replica(1, 0.0, odd)
    state = SharedState(replicas, {("headline", 1): tally("cab", data.draw(counts))})
    exclude = data.draw(st.sampled_from([None, "older", "now0"]))
    many = combined_many(state, WANTED, exclude=exclude)
    assert len(many) == len(WANTED)
    for (key, arms, depth), total in zip(WANTED, many, strict=True):
        one = combined(state, key, arms, depth, exclude=exclude)
        # and as plain dicts, no packed block anywhere
        plain = SharedState(
            {rid: Replica(1, 0.0, dict(r.tallies)) for rid, r in replicas.items()}, state.retired
        )
        alone = combined(plain, key, arms, depth, exclude=exclude)
        for name in ("pulls", "reward_sum", "responses", "errors"):
            assert (
                getattr(total, name).tolist()
                == getattr(one, name).tolist()
                == (getattr(alone, name).tolist())
            )
        assert total.latency_hist.tolist() == alone.latency_hist.tolist()
        # the sums are what each arm's tallies hold, by name
        expected = [
            sum(
                float(t.stats.pulls[t.arms.index(arm)])
                for rid, r in [*replicas.items(), ("retired", Replica(0, 0.0, state.retired))]
                if rid != exclude and key in r.tallies
                for t in [r.tallies[key]]
                if arm in t.arms
            )
            for arm in arms
        ]
        assert total.pulls.tolist() == expected
        if depth:
            assert total.recent is not None
            assert alone.recent is not None
            assert total.recent.newest == alone.recent.newest
            assert total.recent.pulls.tolist() == alone.recent.pulls.tolist()
        else:
            assert total.recent is None
