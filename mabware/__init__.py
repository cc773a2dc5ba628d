"""mabware: multi-armed-bandit experiments inside any Python web app."""

from mabware import policies
from mabware.allocation import Allocation
from mabware.exceptions import ConfigError, MabwareError, PolicyError, RewardError
from mabware.experiment import Experiment
from mabware.guardrails import Guardrails, Trip
from mabware.statistics import Statistics

__all__ = [
    "Allocation",
    "ConfigError",
    "Experiment",
    "Guardrails",
    "MabwareError",
    "PolicyError",
    "RewardError",
    "Statistics",
    "Trip",
    "policies",
]

__version__ = "0.1.0"
