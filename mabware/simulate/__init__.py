"""Simulation: environments, the runner over the real decision path, regret.

``run(policy, env, rounds)`` plays a policy against an environment through
``Experiment.decide`` -> ``assign.sample`` -> ``Counters``, exactly as
serving does, and returns per-round choices, cumulative pseudo-regret and
the convergence round. ``mabware.simulate.reference`` reproduces another
project's published benchmark for comparison; it is not imported here.
"""

from __future__ import annotations

from mabware.simulate.environments import (
    BernoulliEnvironment,
    Environment,
    GaussianEnvironment,
    Phase,
    PiecewiseEnvironment,
)
from mabware.simulate.regret import Summary, convergence_round, pseudo_regret, summarise
from mabware.simulate.runner import RunResult, run, seeded_generators

__all__ = [
    "BernoulliEnvironment",
    "Environment",
    "GaussianEnvironment",
    "Phase",
    "PiecewiseEnvironment",
    "RunResult",
    "Summary",
    "convergence_round",
    "pseudo_regret",
    "run",
    "seeded_generators",
    "summarise",
]
