"""dsqn.reports.aggregates against rliable (Agarwal et al. 2021's own library) and arch's bootstrap.

The same score matrices go to both sides: three algorithms, several games, 3 or 5 runs, with
per-run and per-game effects, tied scores, negative normalised scores, scores on both sides of
the optimality-gap threshold, and a run count whose 25% trim is fractional.

- Point estimates (IQM, optimality gap at gamma = 1 and gamma = 0.5, median and mean) equal
  ``rliable.metrics``' to float tolerance.
- Intervals, given the same resamples, are equal: the tests draw run indices exactly as the
  reference does (rliable: ``np.random.choice(R, (R, G))`` per replicate from NumPy's global
  RandomState; arch: per replicate and game, ``Generator.integers(R, size=R)``) and hand that
  stream to dsqn.reports.aggregates in place of its own generator. This checks how a resample picks
  runs within each game, the statistics on the resamples and the percentile interval.
- Intervals from each side's own random numbers agree within Monte Carlo error (bound derived
  in ``_assert_same_quantile``). This checks dsqn's own resampling: a bootstrap that picked
  whole runs across games, or pooled all scores, would give visibly other intervals here.

rliable is not in the test extra: every rliable release (1.0.7 to 1.2.0, and its master)
requires ``arch<8``, and arch 7 does not import with pandas 3 (``arch.univariate.base`` calls
pandas' private ``deprecate_kwarg`` with its pandas-2 signature). Install it beside the test
extra with ``pip install --no-deps rliable==1.2.0`` to run the rliable tests; arch 8 (test
extra) runs the arch tests.
"""

import contextlib
import inspect

import numpy as np
import pytest
import scipy.stats

from dsqn.reports import aggregates as A

RLIABLE = "rliable, not in the test extra: pip install --no-deps rliable==1.2.0"

GAMMA = 0.5
"""A non-default optimality-gap threshold: some scores lie below it and some above."""

DSQN_STATISTICS = (A.iqm, A.optimality_gap, lambda s: A.optimality_gap(s, GAMMA))
DSQN_STATISTICS += (A.median_of_means, A.mean_of_means)
NAMES = ("iqm", "optimality gap", f"optimality gap at {GAMMA}", "median", "mean")


def _algorithms() -> dict[str, np.ndarray]:
    """Normalised scores ``[runs, games]`` of three algorithms on the same 7 games."""
    rng = np.random.default_rng(24)
    game = np.array([-0.6, -0.1, 0.2, 0.5, 0.9, 1.4, 3.0])

    def scores(runs: int, skill: float) -> np.ndarray:
        # A run (seed) effect shared by all games makes games within a run correlated, the
        # case in which resampling runs per game differs from resampling whole runs.
        run = rng.normal(0.0, 0.5, size=(runs, 1))
        noisy = skill * game + run + rng.normal(0.0, 0.3, size=(runs, game.size))
        return np.round(noisy, 1)  # one decimal: tied scores

    algorithms = {"a": scores(5, 1.0), "b": scores(5, 0.6), "c": scores(3, 1.2)}
    algorithms["a"][:, 2] = 0.4  # a game on which every run scores the same
    for s in algorithms.values():
        pooled = s.ravel()
        assert len(np.unique(pooled)) < pooled.size, "ties"
        assert pooled.min() < 0 and np.any(pooled < GAMMA) and np.any(pooled > 1.0)
        assert 0.25 * pooled.size != int(0.25 * pooled.size), "a fractional 25% trim"
    return algorithms


ALGORITHMS = _algorithms()


def _reference_statistics(metrics):
    """The statistics as rliable's ``metrics`` module computes them, as one 1-D array (the
    form ``get_interval_estimates`` and arch's ``conf_int`` take)."""

    def statistics(scores: np.ndarray) -> np.ndarray:
        return np.array(
            [
                metrics.aggregate_iqm(scores),
                metrics.aggregate_optimality_gap(scores),
                metrics.aggregate_optimality_gap(scores, gamma=GAMMA),
                metrics.aggregate_median(scores),
                metrics.aggregate_mean(scores),
            ]
        )

    return statistics


class _ScipyMetrics:
    """rliable.metrics' definitions (trimmed mean by scipy) for the arch tests, which run
    without rliable."""

    @staticmethod
    def aggregate_iqm(scores):
        return scipy.stats.trim_mean(scores, proportiontocut=0.25, axis=None)

    @staticmethod
    def aggregate_optimality_gap(scores, gamma=1):
        return gamma - np.mean(np.minimum(scores, gamma))

    @staticmethod
    def aggregate_median(scores):
        return np.median(np.mean(scores, axis=0))

    @staticmethod
    def aggregate_mean(scores):
        return np.mean(np.mean(scores, axis=0))


def _rliable_library(monkeypatch):
    """``rliable.library``, its ``StratifiedBootstrap`` made runnable on arch >= 8.

    rliable passes ``random_state=None`` to arch's ``IIDBootstrap``, a keyword arch 8 removed
    (it now takes it for a data array and raises TypeError). rliable's resampling never uses
    it (``StratifiedBootstrap.update_indices`` draws from NumPy's global RandomState), so a
    class placed between the two drops it; rliable's ``update_indices`` and
    ``get_interval_estimates`` and arch's resampling and ``conf_int`` run unchanged.
    """
    library = pytest.importorskip("rliable.library", reason=RLIABLE)
    iid = library.arch_bs.IIDBootstrap
    if "random_state" not in inspect.signature(iid.__init__).parameters:

        class _WithoutRandomState(iid):
            def __init__(self, *args, random_state=None, **kwargs):
                assert random_state is None
                super().__init__(*args, **kwargs)

        class StratifiedBootstrap(library.StratifiedBootstrap, _WithoutRandomState):
            pass

        monkeypatch.setattr(library, "StratifiedBootstrap", StratifiedBootstrap)
    return library


@contextlib.contextmanager
def _global_seed(seed: int):
    """NumPy's global RandomState seeded with ``seed``, and restored afterwards."""
    state = np.random.get_state()  # noqa: NPY002 (rliable draws from the global state)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _rliable_intervals(library, scores: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """``[2, 5]`` lows and highs of rliable's 95% percentile intervals of the statistics."""
    statistics = _reference_statistics(pytest.importorskip("rliable.metrics"))
    with _global_seed(seed):
        points, intervals = library.get_interval_estimates(
            {"x": scores}, statistics, reps=reps, method="percentile"
        )
    np.testing.assert_allclose(points["x"], statistics(scores), rtol=0, atol=0)
    return intervals["x"]


def _arch_intervals(scores: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """``[2, 5]`` lows and highs of 95% percentile intervals from arch's
    ``IndependentSamplesBootstrap`` with each game's runs as a separate sample: per replicate,
    every game's runs are resampled with replacement, independently of the other games."""
    bootstrap = pytest.importorskip("arch.bootstrap", reason="arch (test extra)")
    statistics = _reference_statistics(_ScipyMetrics)
    games = [scores[:, g] for g in range(scores.shape[1])]
    bs = bootstrap.IndependentSamplesBootstrap(*games, seed=seed)
    return bs.conf_int(
        lambda *g: statistics(np.stack(g, axis=1)), reps=reps, method="percentile", size=0.95
    )


class _Draws:
    """Stands in for ``np.random.default_rng(seed)`` inside dsqn.reports.aggregates:
    ``integers(0, R, size=(reps, R, G))`` gives the run indices the reference draws for the same
    seed, in the reference's order (replicate by replicate; ``[rep, i, g]`` the run in slot ``i``
    of game ``g``)."""

    def __init__(self, reference: str, seed: int):
        self.reference = reference
        if reference == "rliable":
            self.legacy = np.random.RandomState(seed)  # what np.random.seed(seed) sets up
        else:
            self.generator = _DEFAULT_RNG(seed)  # arch turns an int seed into default_rng(seed)

    def integers(self, low, high, size):
        reps, runs, games = size
        assert (low, high) == (0, runs), "runs drawn from that game's runs"
        if self.reference == "rliable":  # StratifiedBootstrap.update_indices
            draws = [self.legacy.choice(runs, (runs, games), replace=True) for _ in range(reps)]
            return np.stack(draws)
        rows = np.empty(size, np.int64)  # IndependentSamplesBootstrap.update_indices
        for rep in range(reps):
            for g in range(games):
                rows[rep, :, g] = self.generator.integers(runs, size=runs, dtype=np.int64)
        return rows


_DEFAULT_RNG = np.random.default_rng


def _reference_intervals(reference, monkeypatch, scores, reps, seed):
    if reference == "rliable":
        return _rliable_intervals(_rliable_library(monkeypatch), scores, reps, seed)
    return _arch_intervals(scores, reps, seed)


REFERENCES = ["rliable", "arch"]


def test_point_estimates_equal_rliables():
    metrics = pytest.importorskip("rliable.metrics", reason=RLIABLE)
    reference = _reference_statistics(metrics)
    for name, scores in ALGORITHMS.items():
        ours = [float(f(scores)) for f in DSQN_STATISTICS]
        for which, a, b in zip(NAMES, ours, reference(scores), strict=True):
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12), (name, which)


@pytest.mark.parametrize("reference", REFERENCES)
def test_intervals_equal_the_references_given_the_same_resamples(reference, monkeypatch):
    reps, seed = 2_000, 7
    for name, scores in ALGORITHMS.items():
        expected = _reference_intervals(reference, monkeypatch, scores, reps, seed)
        with monkeypatch.context() as m:
            m.setattr(np.random, "default_rng", lambda s: _Draws(reference, s))
            got = [A.interval_estimate(scores, f, reps=reps, seed=seed) for f in DSQN_STATISTICS]
        lows_highs = np.array([[i.low for i in got], [i.high for i in got]])
        np.testing.assert_allclose(lows_highs, expected, rtol=1e-12, atol=1e-12, err_msg=name)
        # The intervals are not all degenerate: the comparison has something to compare.
        assert np.all(expected[1, [0, 3, 4]] > expected[0, [0, 3, 4]])


def test_performance_profile_equals_rliables_given_the_same_resamples(monkeypatch):
    library = _rliable_library(monkeypatch)
    taus = np.round(np.linspace(-1.0, 3.5, 46), 1)  # on the scores' 0.1 grid: score == tau
    reps, seed = 500, 3
    for name, scores in ALGORITHMS.items():
        with _global_seed(seed):
            profiles, cis = library.create_performance_profile({name: scores}, taus, reps=reps)
        with monkeypatch.context() as m:
            m.setattr(np.random, "default_rng", lambda s: _Draws("rliable", s))
            fraction, low, high = A.performance_profile(scores, taus, reps=reps, seed=seed)
        np.testing.assert_allclose(fraction, profiles[name], rtol=0, atol=1e-12)
        np.testing.assert_allclose(low, cis[name][0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(high, cis[name][1], rtol=0, atol=1e-12)


def _assert_same_quantile(replicates: np.ndarray, q: float, theirs: float, what) -> None:
    """``theirs``, the ``q`` quantile of B replicates of the reference's bootstrap, is within
    Monte Carlo error of the same quantile of ``replicates`` (B replicates of ours).

    If both bootstraps have the same distribution F, ``theirs`` sits at level ``q +
    N(0, q(1-q)/B)`` of F (sample quantile), and our empirical CDF at it has a further
    independent error of the same variance; so its rank among our replicates is ``Bq`` give or
    take ``sqrt(2 B q (1-q))``. The test allows 5 of those. It holds for any F, ties
    (discrete bootstrap distributions) included, since it compares ranks, not values.
    """
    b = replicates.size
    spread = 5 * np.sqrt(2 * b * q * (1 - q))
    ordered = np.sort(replicates)
    lo = ordered[max(int(np.floor(q * (b - 1) - spread)), 0)]
    hi = ordered[min(int(np.ceil(q * (b - 1) + spread)), b - 1)]
    assert lo - 1e-12 <= theirs <= hi + 1e-12, (what, theirs, (lo, hi))


@pytest.mark.parametrize("reference", REFERENCES)
def test_intervals_agree_with_the_references_within_monte_carlo_error(reference, monkeypatch):
    reps = 20_000
    for name, scores in ALGORITHMS.items():
        expected = _reference_intervals(reference, monkeypatch, scores, reps, seed=11)
        resamples = A.stratified_bootstrap(scores, reps, seed=5)
        for i, (which, f) in enumerate(zip(NAMES, DSQN_STATISTICS, strict=True)):
            replicates = f(resamples)
            ours = A.interval_estimate(scores, f, reps=reps, seed=5)
            percentiles = np.percentile(replicates, [2.5, 97.5])
            np.testing.assert_allclose([ours.low, ours.high], percentiles, rtol=1e-12)
            _assert_same_quantile(replicates, 0.025, expected[0, i], (name, which, "low"))
            _assert_same_quantile(replicates, 0.975, expected[1, i], (name, which, "high"))
