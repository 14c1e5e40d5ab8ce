"""Re-evaluating a checkpoint of a run (``dsqn evaluate RUN_DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from dsqn.checkpoint import Checkpointer, CheckpointError, save_json
from dsqn.config import to_dict
from dsqn.evaluate import Evaluator, max_q_summary
from dsqn.runner import RESUMABLE_FIELDS, checkpoint_template, load_run_config
from dsqn.train import make_train

__all__ = ["load_params", "evaluate_checkpoint"]


def load_params(run_dir: str | Path, checkpoint: str = "best"):
    """``(config, experiment, params [S, ...], agent_steps [S])`` of a run's checkpoint.

    ``checkpoint``: ``best`` (each seed's best-evaluated parameters, stored in the latest
    checkpoint), ``latest``, or an agent step that has a checkpoint.
    """
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    exp = make_train(config)
    ckpt = Checkpointer(run_dir / "checkpoints", max_to_keep=None)
    try:
        if checkpoint in ("best", "latest"):
            step = None
        else:
            try:
                step = int(checkpoint)
            except ValueError:
                raise CheckpointError(
                    f"--checkpoint {checkpoint!r} is not valid: use best, latest or one of the "
                    f"saved agent steps {ckpt.all_steps()}"
                ) from None
        restored = ckpt.restore(
            step,
            state_template=checkpoint_template(exp),
            expected_config=to_dict(config),
            ignore_config_fields=RESUMABLE_FIELDS,
        )
    finally:
        ckpt.close()
    train = restored.state["train"]
    saved_step = int(restored.state["agent_steps"])
    if checkpoint == "best":
        if int(jnp.min(train.best_agent_steps)) < 0:
            raise CheckpointError(
                f"{run_dir}: no evaluation has happened yet, so there is no best checkpoint; "
                "use --checkpoint latest"
            )
        return config, exp, train.best_params, [int(s) for s in train.best_agent_steps]
    return config, exp, train.params, [saved_step] * len(config.run.seeds)


def evaluate_checkpoint(
    run_dir: str | Path,
    *,
    checkpoint: str = "best",
    episodes: int | None = None,
    epsilon: float | None = None,
) -> dict[str, Any]:
    """Evaluates a checkpoint with the run's protocol; writes and returns the results.

    Results go to ``RUN_DIR/evaluations/<checkpoint>.json`` (per seed: mean, std, scores).
    """
    config, exp, params, steps = load_params(run_dir, checkpoint)
    seeds = list(config.run.seeds)
    evaluator = Evaluator(config, exp.network, seeds, episodes=episodes, epsilon=epsilon)
    # Keys distinct from those of the evaluations made during training.
    keys = jnp.stack([jax.random.fold_in(jax.random.key(s), 1_000_003) for s in seeds])
    result = evaluator(params, keys)
    per_seed = {
        str(seed): {
            "agent_steps": steps[i],
            "mean": float(result.returns[i].mean()),
            "std": float(result.returns[i].std()),
            "scores": result.returns[i].astype(float).tolist(),
            "lengths": result.lengths[i].astype(int).tolist(),
            **max_q_summary(result, i),
        }
        for i, seed in enumerate(seeds)
    }
    path = Path(run_dir) / "evaluations" / f"{checkpoint}.json"
    path.parent.mkdir(exist_ok=True)
    out = {
        "checkpoint": checkpoint,
        "episodes": evaluator.episodes,
        "epsilon": evaluator.epsilon,
        "per_seed": per_seed,
    }
    save_json(path, out)
    return {**out, "path": str(path)}
