"""Intervals, the two-way bootstrap and the multiplicity corrections, against values
computed by hand or by enumeration."""
import itertools
import os.path as osp
import sys

import numpy as np
import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', '..', 'tools'))
from replication.significance import (benjamini_hochberg, holm,  # noqa: E402
                                      inflate_seed_deviations, minimal_detectable_difference,
                                      paired_comparison,
                                      seed_interval, two_way_bootstrap, verdict)


def test_seed_interval_is_the_student_t_interval():
    iv = seed_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2 dof) = 4.302653: half-width 4.302653 / sqrt(3)
    assert iv.mean == 2.0 and iv.n == 3
    assert iv.half_width == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    single = seed_interval([5.0])
    assert single.low is None and single.half_width is None


def test_holm_by_hand():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06,
    # the step-down keeps adjusted p monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # 2 x 0.5 = 1.0; 1 x 0.9 is raised to 1.0 by the step-down (monotone)
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([0.2]) == pytest.approx([0.2])


def test_benjamini_hochberg_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04; m p / rank: 0.02, 0.02, 0.04, 0.04 (already monotone)
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # a larger p at a later rank lowers the earlier q-values: 3 x 0.02 / 1 = 0.06, but 3 x 0.03 / 3
    assert benjamini_hochberg([0.02, 0.029, 0.03]) == pytest.approx([0.03, 0.03, 0.03])


def test_minimal_detectable_difference_by_hand():
    # z(0.975) + z(0.80) = 1.959964 + 0.841621
    assert minimal_detectable_difference(1.0) == pytest.approx(2.801585, rel=1e-6)
    assert minimal_detectable_difference(2.0, alpha=0.01, power=0.5) == pytest.approx(2 * 2.575829,
                                                                                      rel=1e-6)


def test_two_way_bootstrap_matches_the_enumerated_distribution():
    # 2 seeds x 2 videos: each factor is drawn as (2, 0), (1, 1), (1, 1) or (0, 2) times;
    # the 16 equally likely combinations give the exact bootstrap distribution
    diff = np.array([[4.0, 0.0], [1.0, -3.0]])
    draws = [np.array(c) for c in ((2, 0), (1, 1), (1, 1), (0, 2))]
    exact = np.array([r @ diff @ c / 4 for r, c in itertools.product(draws, draws)])
    boot = two_way_bootstrap(diff, num_bootstrap=40000, seed=3)
    assert set(np.round(boot, 9)) <= set(np.round(exact, 9))
    assert boot.mean() == pytest.approx(exact.mean(), abs=0.03)
    assert boot.var() == pytest.approx(exact.var(), rel=0.03)


def test_a_clear_difference_is_supported_and_its_reverse_contradicted():
    rng = np.random.default_rng(0)
    b = (rng.random((5, 1000)) < 0.5).astype(float)  # B right on about half the videos
    a = np.ones_like(b)
    comp = paired_comparison(a, b, num_bootstrap=2000)
    assert 45 < comp.delta < 55 and comp.low > 40
    assert comp.p == pytest.approx(2 / 2001)  # no resample on the other side of 0
    assert verdict(comp, comp.p, +1) == 'supported' and verdict(comp, comp.p, -1) == 'contradicted'
    # the same comparison, corrected for 100 claims: 100 x 0.001 is no longer below 0.05
    assert verdict(comp, 100 * comp.p) == 'not resolvable'


def test_identical_predictions_resolve_nothing():
    a = (np.random.default_rng(1).random((3, 200)) < 0.4).astype(float)
    comp = paired_comparison(a, a.copy(), num_bootstrap=500)
    assert comp.delta == 0 and comp.low == comp.high == 0 and comp.p == 1.0 and comp.se == 0
    assert verdict(comp, comp.p) == 'not resolvable'


def test_a_difference_that_one_seed_reverses_is_not_resolvable():
    # two seeds favour A by 10 points, the third favours B by 10: 1000 videos make the
    # difference look certain if the seeds are pooled, but drawing the third seed three
    # times (probability 1/27 > 2.5%) gives -10: the interval spans 0
    n = 1000
    a = np.zeros((3, n))
    b = np.zeros((3, n))
    a[0, :100] = a[1, :100] = 1
    b[2, :100] = 1
    comp = paired_comparison(a, b, num_bootstrap=4000)
    assert comp.delta == pytest.approx(10 / 3)
    assert comp.low < 0 < comp.high and comp.p > 0.05
    assert comp.seed_interval.low < 0 < comp.seed_interval.high
    assert verdict(comp, comp.p) == 'not resolvable'


def test_averages_of_draws_are_compared_like_single_predictions():
    a = np.full((2, 50), 2 / 3)  # e.g. 2 of 3 random draws right on every video
    b = np.zeros((2, 50))
    comp = paired_comparison(a, b, num_bootstrap=200)
    assert comp.delta == pytest.approx(200 / 3) and comp.low == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match='one shape'):
        paired_comparison(a, b[:, :10])
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        paired_comparison(a + 1, b)


def test_seed_variance_is_not_understated_by_resampling_few_seeds():
    # rows constant per seed: 0, 3, 6 points; the t standard error is sd / sqrt(3) = 3 / sqrt(3)
    diff = np.repeat(np.array([[0.0], [3.0], [6.0]]), 50, axis=1)
    inflated = inflate_seed_deviations(diff)
    assert inflated[:, 0] == pytest.approx([3 - 3 * np.sqrt(1.5), 3, 3 + 3 * np.sqrt(1.5)])
    boot = two_way_bootstrap(inflated, num_bootstrap=40000, seed=1)
    assert boot.mean() == pytest.approx(3.0, abs=0.05)
    assert boot.std() == pytest.approx(3 / np.sqrt(3), rel=0.03)
    # plain resampling would give sqrt(2 / 3) of it
    assert two_way_bootstrap(diff, num_bootstrap=40000, seed=1).std() == pytest.approx(
        np.sqrt(2 / 3) * 3 / np.sqrt(3), rel=0.03)
