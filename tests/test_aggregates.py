"""dsqn.reports.aggregates against closed forms, scipy's trimmed mean, and a population of known
IQM."""

import numpy as np
import pytest
import scipy.stats

from dsqn.reports import aggregates as A


def test_iqm_closed_form_and_scipy():
    scores = np.arange(100.0).reshape(10, 10)
    assert A.iqm(scores) == pytest.approx(np.mean(np.arange(25, 75)))  # 49.5
    rng = np.random.default_rng(0)
    for shape in [(3, 5), (5, 17), (2, 1), (7, 3)]:
        x = rng.normal(size=shape)
        assert A.iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None))
    batch = rng.normal(size=(4, 3, 5))
    np.testing.assert_allclose(A.iqm(batch), [A.iqm(b) for b in batch])


def test_optimality_gap_median_and_mean_closed_forms():
    scores = np.array([[0.5, 2.0, 0.2], [1.0, 0.0, 0.4]])  # runs x games
    # min(score, 1) = .5 1 .2 1 0 .4: mean .5167, gap .4833
    assert A.optimality_gap(scores) == pytest.approx(1 - 3.1 / 6)
    assert A.optimality_gap(scores, gamma=0.5) == pytest.approx(0.5 - 2.1 / 6)
    assert A.mean_of_means(scores) == pytest.approx((0.75 + 1.0 + 0.3) / 3)
    assert A.median_of_means(scores) == pytest.approx(0.75)


def test_stratified_bootstrap_resamples_runs_within_each_game():
    scores = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]])
    samples = A.stratified_bootstrap(scores, reps=500, seed=3)
    assert samples.shape == (500, 3, 2)
    assert set(np.unique(samples[:, :, 0])) == {0.0, 1.0, 2.0}
    assert set(np.unique(samples[:, :, 1])) == {10.0, 11.0, 12.0}
    # Games are resampled independently: the two columns do not always pick the same run.
    assert np.any(samples[:, :, 0] + 10 != samples[:, :, 1])


def test_intervals_of_a_population_with_known_iqm():
    """Runs drawn from U(0, 1) on every game: the population IQM is 0.5 and the optimality
    gap (gamma = 1) is 0.5; the 95% intervals of 10 runs x 20 games cover them."""
    scores = np.random.default_rng(1).uniform(size=(10, 20))
    iqm = A.interval_estimate(scores, A.iqm, reps=5_000)
    assert iqm.low < 0.5 < iqm.high and iqm.high - iqm.low < 0.15
    gap = A.interval_estimate(scores, A.optimality_gap, reps=5_000)
    assert gap.low < 0.5 < gap.high
    # A shifted population moves the interval by the shift exactly.
    shifted = A.interval_estimate(scores + 3.0, A.iqm, reps=5_000)
    assert shifted.value == pytest.approx(iqm.value + 3.0)
    assert shifted.low == pytest.approx(iqm.low + 3.0) and shifted.high == pytest.approx(
        iqm.high + 3.0
    )


def test_identical_runs_give_a_degenerate_interval():
    scores = np.tile(np.array([[0.2, 0.9, 1.5]]), (4, 1))
    for metric in A.METRICS.values():
        value, low, high = A.interval_estimate(scores, metric, reps=200)
        assert low == pytest.approx(value) and high == pytest.approx(value)


def test_performance_profile_fractions():
    scores = np.array([[0.0, 0.5], [1.0, 2.0]])
    taus = np.array([-1.0, 0.25, 0.75, 1.5, 3.0])
    fraction, low, high = A.performance_profile(scores, taus, reps=300)
    np.testing.assert_allclose(fraction, [1.0, 0.75, 0.5, 0.25, 0.0])
    assert np.all(low <= fraction) and np.all(fraction <= high)
    assert low[0] == high[0] == 1.0 and low[-1] == high[-1] == 0.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same number of runs"):
        A.score_matrix([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"\[runs, games\]"):
        A.stratified_bootstrap(np.zeros(3), reps=10)
    with pytest.raises(ValueError, match="confidence"):
        A.interval_estimate(np.zeros((2, 2)), A.iqm, confidence=95)
    np.testing.assert_array_equal(A.score_matrix([[1, 2, 3], [4, 5, 6]]), [[1, 4], [2, 5], [3, 6]])
