"""mabware: multi-armed-bandit experiments inside any Python web app."""

from mabware import policies
from mabware.allocation import Allocation
from mabware.asgi import MabwareMiddleware
from mabware.assignments import Assignment, Assignments
from mabware.engine import Engine
from mabware.exceptions import ConfigError, MabwareError, PolicyError, RewardError
from mabware.experiment import Experiment
from mabware.guardrails import Guardrails, Trip
from mabware.statistics import Statistics
from mabware.wsgi import MabwareWSGIMiddleware

__all__ = [
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

__version__ = "0.1.0"
