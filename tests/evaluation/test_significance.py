"""Intervals over seeds and paired tests, against values computed by hand."""
import numpy as np
import pytest

from mmflux.evaluation.significance import paired_comparison, seed_interval, verdict


def test_seed_interval_is_the_student_t_interval():
    iv = seed_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2 dof) = 4.302653: half-width 4.302653 / sqrt(3)
    assert iv.mean == 2.0 and iv.n == 3
    assert iv.half_width == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    single = seed_interval([5.0])
    assert single.low is None and single.half_width is None


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs():
    # 1 video only A gets right, 9 only B, 10 both: p = 2 * P(X <= 1 | n=10, 1/2) = 2 * 11 / 1024
    a = np.array([[1] * 1 + [0] * 9 + [1] * 10])
    b = np.array([[0] * 1 + [1] * 9 + [1] * 10])
    comp = paired_comparison(a, b)
    assert (comp.a_only, comp.b_only) == (1, 9)
    assert comp.mcnemar_p == pytest.approx(22 / 1024)
    assert comp.delta == pytest.approx(-40.0)


def test_a_clear_difference_is_supported_and_its_reverse_contradicted():
    rng = np.random.default_rng(0)
    b = (rng.random((3, 1000)) < 0.5).astype(float)  # B right on about half the videos
    a = np.ones_like(b)
    comp = paired_comparison(a, b)
    assert 45 < comp.delta < 55 and comp.bootstrap_low > 40 and comp.bootstrap_p < 0.001
    assert verdict(comp, +1) == 'supported' and verdict(comp, -1) == 'contradicted'
    assert verdict(paired_comparison(b, a), +1) == 'contradicted'


def test_identical_predictions_resolve_nothing():
    a = (np.random.default_rng(1).random((3, 200)) < 0.4).astype(float)
    comp = paired_comparison(a, a.copy())
    assert comp.delta == 0 and comp.bootstrap_low == comp.bootstrap_high == 0
    assert comp.bootstrap_p == 1.0 and comp.mcnemar_p == 1.0 and comp.a_only == comp.b_only == 0
    assert verdict(comp) == 'not resolvable'


def test_a_difference_that_one_seed_reverses_is_not_resolvable():
    # two seeds favour A by 10 points, the third favours B by 10: the seed interval spans 0
    n = 1000
    a = np.zeros((3, n))
    b = np.zeros((3, n))
    a[0, :100] = a[1, :100] = 1
    b[2, :100] = 1
    comp = paired_comparison(a, b)
    assert comp.delta == pytest.approx(10 / 3)
    assert comp.seed_interval.low < 0 < comp.seed_interval.high
    assert verdict(comp) == 'not resolvable'


def test_averages_of_draws_are_bootstrapped_but_not_mcnemar_tested():
    a = np.full((2, 50), 2 / 3)  # e.g. 2 of 3 random draws right on every video
    b = np.zeros((2, 50))
    comp = paired_comparison(a, b, mcnemar=False)
    assert comp.mcnemar_p is None and comp.delta == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match='McNemar needs 0/1'):
        paired_comparison(a, b)
    with pytest.raises(ValueError, match='one shape'):
        paired_comparison(a, b[:, :10])
