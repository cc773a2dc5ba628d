"""Test doubles for apps that use mabware (STYLE.md, "ship the test doubles").

::

    from mabware.testing import FakeClock, TEST_KEYS, make_engine

    clock = FakeClock()
    engine = make_engine([Experiment("headline", ["a", "b"])], clock=clock)
    visit = engine.begin(None)
    clock.advance(3600)

For code that uses the edge SDK, ``static_snapshot`` signs a snapshot of
your experiments with ``TEST_SIGNING_KEYS``::

    edge = EdgeClient(None, public_key=TEST_SIGNING_KEYS["public_key"], refresh="manual")
    edge.load(static_snapshot([Experiment("headline", ["a", "b"])]))

``TEST_KEYS`` and ``TEST_SIGNING_KEYS`` are public and fixed: never use them
outside tests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mabware.allocation import Allocation
from mabware.assign import cumulative
from mabware.edge_snapshot import EdgeExperiment, EdgeSnapshot, issue, private_key
from mabware.engine import Engine
from mabware.experiment import Experiment

__all__ = ["TEST_KEYS", "TEST_SIGNING_KEYS", "FakeClock", "make_engine", "static_snapshot"]

#: Two fixed cookie keys (url-safe base64 of 32 bytes each), newest first.
TEST_KEYS: tuple[str, str] = (
    "dGVzdC1rZXktb25lLW1hYndhcmUtMDEyMzQ1Njc4OWFi",
    "dGVzdC1rZXktdHdvLW1hYndhcmUtMDEyMzQ1Njc4OWFi",
)

#: A fixed Ed25519 pair for edge snapshots, as ``mabware keygen --signing``
#: prints one (the private key is SHA-256 of "mabware.testing signing key").
TEST_SIGNING_KEYS: Mapping[str, str] = {
    "private_key": "WQFRN87nnJHqbaxx_Bp4hcrXTucAjp_j-Q0NSriFSfI",
    "public_key": "N3lEYCPappDHCPqUU57sxoCqbMK3V1uKn4o1oV5QR3w",
}


class FakeClock:
    """A wall clock that moves only when told to.

    Args:
        now: the starting time, unix seconds.
    """

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


def make_engine(experiments: Sequence[Experiment], **options: Any) -> Engine:
    """An ``Engine`` on the ``memory:`` store with ``TEST_KEYS``, strict, seeded.

    Any ``Engine`` setting can be overridden by keyword.
    """
    settings: dict[str, Any] = {
        "secret_keys": list(TEST_KEYS),
        "store": "memory:",
        "strict": True,
        "seed": 0,
        "recompute_interval": 0.0,
    }
    settings.update(options)
    return Engine(experiments, **settings)


def static_snapshot(
    experiments: Sequence[Experiment],
    *,
    allocations: Mapping[str, Sequence[float]] | None = None,
    seq: int = 1,
    issued: float | None = None,
) -> bytes:
    """A signed edge snapshot of ``experiments`` under ``TEST_SIGNING_KEYS``.

    Args:
        experiments: what the snapshot publishes.
        allocations: experiment name -> the shares to publish (in arm order);
            the others get their policy's allocation with no data (uniform
            for Thompson sampling).
        seq: the snapshot's sequence (a client refuses a lower one).
        issued: its issue time (unix seconds; default now): an old one is
            stale for a client with ``stale_after``.
    """
    rng = np.random.default_rng(0)
    published = []
    for experiment in experiments:
        allocation = experiment.decide(experiment.counters().snapshot(0), rng)
        shares = (allocations or {}).get(experiment.name)
        if shares is not None:
            probabilities = tuple(float(p) for p in shares)
            allocation = Allocation(
                experiment.name,
                experiment.version,
                experiment.arm_names,
                probabilities,
                cumulative(probabilities),  # checks them: finite, >= 0, summing to 1
            )
        published.append(EdgeExperiment.of(experiment, allocation))
    snapshot = EdgeSnapshot(seq, time.time() if issued is None else issued, tuple(published))
    return issue(snapshot, private_key(TEST_SIGNING_KEYS["private_key"]))
