"""Bandit policies: sufficient statistics in, an allocation out.

Every policy is a frozen dataclass of validated settings with
``allocate(stats, live, rng)``, ``params()``, ``buckets_needed`` and the class
attributes ``name`` and ``requires_bounded_rewards`` (see ``Policy``). They
are pure numpy: no web, clock or store. ``POLICIES`` maps each canonical name
to its class; ``from_name``, ``to_dict`` and ``from_dict`` build and
serialise them.

=====================  ======================  ==============================
name                   class                   idea
=====================  ======================  ==============================
thompson               ThompsonSampling        P(best) under Beta/Normal posteriors
ucb1                   UCB1                    highest upper confidence bound
kl-ucb                 KLUCB                   KL upper confidence bound
epsilon-greedy         EpsilonGreedy           uniform epsilon, rest to the best
softmax                Softmax                 exp(mean / temperature)
exp3                   EXP3                    exponential weights, adversarial
discounted-thompson    DiscountedThompson      Thompson on discounted buckets
sw-ucb                 SlidingWindowUCB        UCB1 on a window of buckets
glr-thompson           GLRThompson             Thompson since the last detected change
glr-kl-ucb             GLRKLUCB                KL-UCB++ since the last detected change
=====================  ======================  ==============================
"""

from __future__ import annotations

from mabware.policies._base import Policy, needs_bounded_rewards
from mabware.policies._registry import POLICIES, from_dict, from_name, to_dict
from mabware.policies.discounted_thompson import DiscountedThompson
from mabware.policies.epsilon_greedy import EpsilonGreedy
from mabware.policies.exp3 import EXP3
from mabware.policies.glr_kl_ucb import GLRKLUCB
from mabware.policies.glr_thompson import GLRThompson
from mabware.policies.kl_ucb import KLUCB
from mabware.policies.sliding_window_ucb import SlidingWindowUCB
from mabware.policies.softmax import Softmax
from mabware.policies.thompson import ThompsonSampling
from mabware.policies.ucb import UCB1

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_public_api.py asserts
    "DiscountedThompson",
    "EXP3",
    "EpsilonGreedy",
    "GLRKLUCB",
    "GLRThompson",
    "KLUCB",
    "POLICIES",
    "Policy",
    "SlidingWindowUCB",
    "Softmax",
    "ThompsonSampling",
    "UCB1",
    "from_dict",
    "from_name",
    "needs_bounded_rewards",
    "to_dict",
]
