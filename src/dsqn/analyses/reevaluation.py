"""Re-evaluating a checkpoint of a run (``dsqn evaluate RUN_DIR``).

The checkpoint's agents (:func:`dsqn.load_agents`) play the run's evaluation protocol on fresh
games, with the ``EVALUATE`` stream of :mod:`dsqn.runtime.prng` (distinct from training's
evaluations); the result goes to ``RUN_DIR/evaluations/<checkpoint>.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsqn.learning.evaluation import agents_evaluator
from dsqn.learning.evaluation_stats import seed_summaries
from dsqn.rundir import files as rd
from dsqn.rundir.loading import load_agents, stack_params
from dsqn.runtime import prng

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(
    run_dir: str | Path,
    *,
    checkpoint: str = "best",
    episodes: int | None = None,
    epsilon: float | None = None,
) -> dict[str, Any]:
    """Evaluates a checkpoint of every seed with the run's protocol (``episodes`` and
    ``epsilon`` default to the run's); writes and returns the results.

    Returns:
      The ``evaluations/<checkpoint>.json`` object (per seed: agent steps, mean, std, scores,
      lengths, average_max_q, average_mean_max_q) plus ``"path"``.
    """
    agents = load_agents(run_dir, checkpoint)
    seeds = [a.seed for a in agents]
    evaluator = agents_evaluator(agents, episodes=episodes, epsilon=epsilon)
    keys = prng.stream_keys(seeds, prng.Stream.EVALUATE)
    result = evaluator(stack_params([a.params for a in agents]), keys)
    record = rd.checkpoint_evaluation_record(
        str(checkpoint),
        episodes=evaluator.episodes,
        epsilon=evaluator.epsilon,
        per_seed=seed_summaries(
            result, [a.spec.key for a in agents], [a.agent_steps for a in agents]
        ),
    )
    path = rd.write_checkpoint_evaluation(run_dir, record)
    return {**record, "path": str(path)}
