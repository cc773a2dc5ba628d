"""The public surface is curated: __all__ is sorted and exactly what we export."""

from __future__ import annotations

import mabware
from mabware import policies

EXPECTED = [
    "Allocation",
    "Assignment",
    "Assignments",
    "ConfigError",
    "Engine",
    "Experiment",
    "Guardrails",
    "MabwareError",
    "MabwareMiddleware",
    "MabwareWSGIMiddleware",
    "PolicyError",
    "RewardError",
    "Statistics",
    "Trip",
    "policies",
]


def test_all_is_sorted_and_exact():
    assert mabware.__all__ == EXPECTED
    assert sorted(mabware.__all__) == mabware.__all__


def test_every_exported_name_resolves():
    for name in mabware.__all__:
        assert getattr(mabware, name) is not None


def test_no_stray_public_names():
    public = {n for n in vars(mabware) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(mabware, n)).__name__ == "module"}
    assert public - modules - set(mabware.__all__) == set()


def test_policies_all_is_sorted():
    assert sorted(policies.__all__) == policies.__all__
