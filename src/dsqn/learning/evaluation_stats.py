"""Statistics of evaluations: per-seed summaries of an evaluation's games and the summary over
seeds, as ``evaluation.json``, ``evaluations/<checkpoint>.json`` and the analyses record them.

Pure functions of the arrays of a :class:`dsqn.learning.evaluation.EvalResult` (or any object
with its score fields, :class:`EvaluationScores`); NumPy only, so the run directory's files
(:mod:`dsqn.rundir.files`) and reports use them without JAX.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "EvaluationScores",
    "average_max_q",
    "max_q_summary",
    "seed_summary",
    "seed_summaries",
    "evaluation_summary",
]


class EvaluationScores(Protocol):
    """What :func:`seed_summary` reads of an evaluation (a
    :class:`dsqn.learning.evaluation.EvalResult`): per seed and episode ``[S, N]``."""

    returns: np.ndarray
    lengths: np.ndarray
    max_q: np.ndarray
    mean_max_q: np.ndarray


def average_max_q(max_q: np.ndarray) -> float:
    """The paper's "average max Q" of one evaluation: the mean over episodes of each episode's
    maximum greedy ``max_a Q`` (``EvalResult.max_q`` of one seed), leaving out the episodes
    without a greedy step; NaN when no episode has one."""
    max_q = np.asarray(max_q, np.float64)
    kept = max_q[~np.isnan(max_q)]
    return float(kept.mean()) if kept.size else float("nan")


def max_q_summary(result: EvaluationScores, i: int) -> dict[str, float]:
    """The Q statistics of seed ``i``'s evaluation: ``average_max_q`` (the paper's,
    :func:`average_max_q`) and ``average_mean_max_q`` (the mean over episodes of each episode's
    mean ``max_a Q``)."""
    return {
        "average_max_q": average_max_q(result.max_q[i]),
        "average_mean_max_q": float(np.mean(result.mean_max_q[i])),
    }


def seed_summary(result: EvaluationScores, i: int, agent_steps: int) -> dict[str, Any]:
    """Seed ``i``'s games of an evaluation: ``{"agent_steps", "mean", "std", "scores",
    "lengths", "average_max_q", "average_mean_max_q"}`` (``std`` over episodes, ddof 0; the Q
    statistics of :func:`max_q_summary`)."""
    scores = np.asarray(result.returns[i], float)
    return {
        "agent_steps": int(agent_steps),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "scores": scores.tolist(),
        "lengths": np.asarray(result.lengths[i]).astype(int).tolist(),
        **max_q_summary(result, i),
    }


def seed_summaries(
    result: EvaluationScores, seeds: Sequence[int | str], agent_steps: Sequence[int]
) -> dict[str, dict[str, Any]]:
    """Every seed's :func:`seed_summary`, keyed by the seed as a string (as in the JSON files;
    in a sweep run, the agent's key, :attr:`dsqn.config.sweep.AgentSpec.key`); ``agent_steps[i]`` is
    the agent step of seed ``seeds[i]``'s parameters."""
    return {
        str(seed): seed_summary(result, i, steps)
        for i, (seed, steps) in enumerate(zip(seeds, agent_steps, strict=True))
    }


def evaluation_summary(per_seed: Mapping[str, Any], protocol: str | None = None) -> dict[str, Any]:
    """Mean and standard deviation (ddof 0) over seeds of each seed's mean score.

    ``per_seed``: seed -> summary (:func:`seed_summary`), or, with ``protocol`` (best | final),
    seed -> {protocol: summary or None}; seeds without a score are left out.
    """
    entries = [v.get(protocol) if protocol else v for v in per_seed.values()]
    means = [e["mean"] for e in entries if e]
    if not means:
        return {"mean": None, "std_over_seeds": None, "seeds": 0}
    return {
        "mean": float(np.mean(means)),
        "std_over_seeds": float(np.std(means)),
        "seeds": len(means),
    }
