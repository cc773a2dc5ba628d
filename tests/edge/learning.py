"""The edge SDK learning through the whole loop, in simulated time (a test and ``bench/edge.py``).

One SDK replica decides every visitor from the snapshot it holds; every
simulated second it pushes its totals to a sync backend through mabware's
own push decoder and merge (``POST /sync``'s code, without the socket), the
issuer recomputes the allocation from the merged state, signs a snapshot
and the SDK loads it. Nothing is shortcut: the arm comes from the SDK's
table walk, the statistics from its pushes.

Seeds follow the seed protocol of ``bench/regret.py``: environment ``i`` of
``reference_environments()``, replicate ``s``, rewards from
``seeded_generators(42 + i, s)[0]``; the issuer's policy draws from the
second generator and the SDK's sampler from a ``random.Random`` seeded by it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import msgpack
from mabware_edge import EdgeClient, Response

from mabware import Experiment, policies
from mabware.edge_snapshot import EdgeExperiment, EdgeSnapshot, generate_signing_keys, issue
from mabware.edge_snapshot import next_seq as next_sequence
from mabware.edge_snapshot import private_key as load_private_key
from mabware.server._push_body import decode_push
from mabware.server._state import MemoryBackend
from mabware.simulate import BernoulliEnvironment, run, seeded_generators
from mabware.simulate.reference import reference_environments

ROUNDS = 2000
START = 1_800_000_000.0
ENVIRONMENTS = reference_environments()


class LoopbackSync:
    """A transport whose ``POST`` is ``POST /sync``'s decode and merge, in process."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend

    def get(self, url: str, headers: object, timeout: float) -> Response:
        raise OSError("the simulation loads snapshots itself")

    def post(self, url: str, body: bytes, headers: object, timeout: float) -> Response:
        replica_id, push = decode_push(body)
        self.backend.exchange(replica_id, push)
        return Response(200, {}, msgpack.packb({"seq": push.seq}))


@dataclass
class Issuer:
    """What ``mabware serve`` does each snapshot interval: merge, decide, sign."""

    experiment: Experiment
    backend: MemoryBackend
    rng: object
    seq: int | None = None

    def __post_init__(self) -> None:
        keys = generate_signing_keys()
        self.public_key = keys["public_key"]
        self._key = load_private_key(keys["private_key"])

    def snapshot(self, now: float) -> bytes:
        from mabware.store.merge import combined

        exp = self.experiment
        stats = combined(self.backend.read(), (exp.name, exp.version), exp.arm_names, 0)
        allocation = exp.decide(stats, self.rng)  # type: ignore[arg-type]
        self.seq = next_sequence(self.seq, now)
        edge = EdgeExperiment.of(exp, allocation)
        return issue(EdgeSnapshot(self.seq, now, (edge,)), self._key)


def sdk_regret(env_index: int, replicate: int, per_second: int) -> float:
    """Pseudo-regret of ``ROUNDS`` SDK decisions, ``per_second`` per snapshot interval."""
    rates = ENVIRONMENTS[env_index]
    env_rng, policy_rng = seeded_generators(42 + env_index, replicate)
    env = BernoulliEnvironment(rates, rng=env_rng)
    arms = [f"arm{i}" for i in range(len(rates))]
    experiment = Experiment("sim", arms, policy=policies.ThompsonSampling())
    backend = MemoryBackend(retention=1e9, clock=lambda: now)
    issuer = Issuer(experiment, backend, policy_rng)
    now = START
    edge = EdgeClient(
        None,
        public_key=issuer.public_key,
        push_url="http://loopback/sync",
        refresh="manual",
        stale_after=1e9,
        transport=LoopbackSync(backend),
        clock=lambda: now,
        rng=random.Random(int(policy_rng.integers(2**63))),
    )
    best = max(rates)
    regret = 0.0
    index = {arm: i for i, arm in enumerate(arms)}
    with edge:
        for t in range(ROUNDS):
            if t % per_second == 0:  # a simulated second has passed
                now = START + t / per_second
                assert edge.push() or t == 0
                assert edge.load(issuer.snapshot(now))
            d = edge.decide("sim")
            arm = index[d.arm]  # type: ignore[index]
            regret += best - rates[arm]
            reward = env.pull(arm, t)
            if reward:
                edge.reward(d.decision_id, reward)
    return regret


def single_process_regret(env_index: int, replicate: int, batch: int = 1) -> float:
    """Thompson sampling in one process on the same environment and seeds."""
    rates = ENVIRONMENTS[env_index]
    env_rng, policy_rng = seeded_generators(42 + env_index, replicate)
    result = run(
        policies.ThompsonSampling(),
        BernoulliEnvironment(rates, rng=env_rng),
        ROUNDS,
        batch=batch,
        rng=policy_rng,
    )
    return float(result.final_regret)
