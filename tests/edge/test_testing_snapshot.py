"""``mabware.testing.static_snapshot``: a signed snapshot for tests of code that uses the SDK."""

from __future__ import annotations

import pytest
from mabware_edge import EdgeClient

from mabware import Experiment
from mabware.edge_snapshot import public_key, read
from mabware.exceptions import ConfigError
from mabware.testing import TEST_SIGNING_KEYS, static_snapshot

HEADLINE = Experiment("headline", {"control": "Welcome", "bold": "Sale"}, default_arm="control")


def test_the_sdk_decides_from_a_static_snapshot() -> None:
    edge = EdgeClient(None, public_key=TEST_SIGNING_KEYS["public_key"], refresh="manual")
    assert edge.load(static_snapshot([HEADLINE], allocations={"headline": [0.0, 1.0]}, seq=7))
    d = edge.decide("headline", "user-1")
    assert (d.arm, d.value, d.propensity, d.snapshot_seq, d.reason) == (
        "bold",
        "Sale",
        1.0,
        7,
        "assigned",
    )
    edge.close()


def test_it_verifies_and_defaults_to_the_policy_allocation() -> None:
    snapshot = read(
        static_snapshot([HEADLINE], issued=5.0), public_key(TEST_SIGNING_KEYS["public_key"])
    )
    (published,) = snapshot.experiments
    assert (snapshot.seq, snapshot.issued) == (1, 5.0)
    assert published.allocation == (0.5, 0.5)  # Thompson sampling with no data
    assert published.payloads == ("Welcome", "Sale")


def test_shares_that_are_no_allocation_are_refused() -> None:
    with pytest.raises(ConfigError, match="sum to 1"):
        static_snapshot([HEADLINE], allocations={"headline": [0.5, 0.6]})
