r"""Aggregate scores over games and seeds, with stratified bootstrap confidence intervals.

The definitions of Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice" (NeurIPS), as its library rliable computes them, on a score matrix
``scores[r, g]`` of normalised scores (run, i.e. seed, ``r`` of ``R``; game ``g`` of ``G``):

- interquartile mean ``IQM``: the mean of the middle 50% of all ``R * G`` scores (the 25%
  trimmed mean: ``floor(0.25 * R * G)`` scores cut from each end of the sorted scores, as
  ``scipy.stats.trim_mean(scores, 0.25, axis=None)``);
- ``median``: the median over games of the per-game mean over runs; ``mean``: their mean;
- optimality gap: ``gamma - mean(min(scores, gamma))`` (``gamma = 1``: human level), how far
  the runs fall short of ``gamma`` on average; lower is better;
- performance profile: ``P(score > tau)`` over all runs and games, for each threshold ``tau``
  (the run-score distribution).

Confidence intervals are percentile intervals of the stratified bootstrap: each replicate
resamples, for every game separately, ``R`` runs with replacement from that game's runs, and
recomputes the statistic (rliable's ``StratifiedBootstrap``; 95% intervals from 50,000
replicates by default, as rliable). With few runs, intervals are wide: that is their point.
``tests/test_aggregates_reference.py`` gives rliable, and arch's bootstrap, the same scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "METRICS",
    "Interval",
    "iqm",
    "optimality_gap",
    "median_of_means",
    "mean_of_means",
    "score_matrix",
    "stratified_bootstrap",
    "interval_estimate",
    "performance_profile",
]

Metric = Callable[[np.ndarray], np.ndarray]
"""``scores [..., R, G] -> statistic [...]``: a statistic over the last two axes."""


class Interval(NamedTuple):
    """A point estimate with its bootstrap confidence interval."""

    value: float
    low: float
    high: float


def _pooled(scores: np.ndarray) -> np.ndarray:
    """``[..., R, G] -> [..., R * G]``."""
    return scores.reshape(*scores.shape[:-2], -1)


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean of ``scores [..., R, G]`` over runs and games together."""
    pooled = np.sort(_pooled(np.asarray(scores, np.float64)), axis=-1)
    n = pooled.shape[-1]
    cut = int(0.25 * n)
    return pooled[..., cut : n - cut].mean(axis=-1)


def optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``gamma - mean(min(scores, gamma))`` over runs and games of ``scores [..., R, G]``."""
    return gamma - np.minimum(_pooled(np.asarray(scores, np.float64)), gamma).mean(axis=-1)


def median_of_means(scores: np.ndarray) -> np.ndarray:
    """Median over games of the mean over runs of ``scores [..., R, G]``."""
    return np.median(np.asarray(scores, np.float64).mean(axis=-2), axis=-1)


def mean_of_means(scores: np.ndarray) -> np.ndarray:
    """Mean over games of the mean over runs of ``scores [..., R, G]``."""
    return np.asarray(scores, np.float64).mean(axis=(-2, -1))


METRICS: dict[str, Metric] = {
    "iqm": iqm,
    "median": median_of_means,
    "mean": mean_of_means,
    "optimality_gap": optimality_gap,
}
"""The aggregate statistics by name (optimality gap with gamma = 1)."""


def score_matrix(per_game: Sequence[Sequence[float]]) -> np.ndarray:
    """``[R, G]`` from one sequence of run scores per game.

    Raises:
      ValueError: no game, or games with different numbers of runs (the bootstrap resamples
        ``R`` runs per game; drop runs so that every game has as many).
    """
    counts = sorted({len(runs) for runs in per_game})
    if not per_game or counts[0] == 0:
        raise ValueError("need at least one game with at least one run")
    if len(counts) > 1:
        raise ValueError(f"every game needs the same number of runs, got counts {counts}")
    return np.asarray(per_game, np.float64).T


def stratified_bootstrap(scores: np.ndarray, reps: int, seed: int = 0) -> np.ndarray:
    """``[reps, R, G]`` resamples of ``scores [R, G]``: per replicate and game, ``R`` runs
    drawn with replacement from that game's runs."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [runs, games], got shape {scores.shape}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    r, g = scores.shape
    rows = np.random.default_rng(seed).integers(0, r, size=(reps, r, g))
    return scores[rows, np.arange(g)]


def interval_estimate(
    scores: np.ndarray,
    metric: Metric,
    *,
    reps: int = 50_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``metric`` of ``scores [R, G]`` with its stratified-bootstrap percentile interval."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = metric(stratified_bootstrap(scores, reps, seed))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(metric(np.asarray(scores, np.float64))), float(low), float(high))


def performance_profile(
    scores: np.ndarray,
    taus: np.ndarray,
    *,
    reps: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P(score > tau)`` over all runs and games of ``scores [R, G]`` for each ``tau``, with
    stratified-bootstrap percentile intervals: ``(fraction, low, high)``, each ``[len(taus)]``."""
    taus = np.asarray(taus, np.float64)

    def above(s: np.ndarray) -> np.ndarray:
        return (_pooled(s)[..., None, :] > taus[:, None]).mean(axis=-1)

    values = above(stratified_bootstrap(scores, reps, seed))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return above(np.asarray(scores, np.float64)), low, high
