"""convergence_round, pseudo_regret and summaries."""

from __future__ import annotations

import numpy as np
import pytest

from mabware.simulate import convergence_round, pseudo_regret, summarise
from mabware.simulate.regret import median_or_none


def test_converged_from_the_start_is_round_window():
    assert convergence_round([2] * 300, best=2) == 100


def test_never_converges():
    assert convergence_round([0, 1] * 500, best=1) is None  # 50% of every window
    assert convergence_round([], best=0) is None


def test_too_short_to_have_a_round_at_or_after_the_window():
    assert convergence_round([1] * 100, best=1) is None
    assert convergence_round([1] * 101, best=1) == 100


def test_threshold_is_inclusive_at_exactly_80_of_100():
    # rounds 0..119: 20 misses first, then hits. Window t-99..t holds
    # min(100, t-19) hits; 80 hits first at t = 99, but t must be >= 100.
    choices = [0] * 20 + [1] * 100
    assert convergence_round(choices, best=1) == 100
    choices = [0] * 40 + [1] * 200  # 80 hits first in window ending at t = 119
    assert convergence_round(choices, best=1) == 119


def test_window_slides_old_misses_out():
    choices = [1] * 100 + [0] * 30 + [1] * 100  # round 100 window: 99 hits
    assert convergence_round(choices, best=1) == 100
    late = [0] * 150 + [1] * 100
    assert convergence_round(late, best=1) == 150 + 80 - 1


def test_custom_window_and_threshold():
    assert convergence_round([0, 1, 1, 1, 1], best=1, window=2, threshold=1.0) == 2
    with pytest.raises(ValueError, match="window"):
        convergence_round([1, 1], best=1, window=0)
    with pytest.raises(ValueError, match="threshold"):
        convergence_round([1, 1], best=1, threshold=0.0)


def test_pseudo_regret_stationary_and_per_round():
    means = np.array([0.2, 0.5, 0.9])
    assert pseudo_regret([0, 1, 2, 2], means).tolist() == pytest.approx([0.7, 1.1, 1.1, 1.1])
    table = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])
    assert pseudo_regret([0, 0, 0], table).tolist() == pytest.approx([0.0, 0.0, 0.8])


def test_summarise_and_median_of_converged():
    s = summarise(list(range(11)))
    assert (s.mean, s.median, s.p10, s.p90, s.n) == (5.0, 5.0, 1.0, 9.0, 11)
    assert median_or_none([None, 3, 5, None]) == 4.0
    assert median_or_none([None]) is None
    with pytest.raises(ValueError, match="nothing"):
        summarise([])
