"""Evidence of learning at CI size: a short CartPole run scores clearly above a random policy."""

import json

import numpy as np

from dsqn.cli import main


def test_short_cartpole_dqn_run_beats_random_clearly(tmp_path):
    run = tmp_path / "run"
    args = [
        "train", "cartpole-dqn", "--run-dir", str(run), "--seeds", "0",
        "--run.total_agent_steps", "12000",
        "--run.checkpoint_period_agent_steps", "12000",
        "--eval.period_agent_steps", "4000",
        "--eval.episodes", "10",
        "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    final = json.loads((run / "evaluation.json").read_text())["per_seed"]["0"]["final"]
    # A uniformly random policy, evaluated the same way on the same evaluation pool.
    assert main(["evaluate", str(run), "--checkpoint", "latest", "--epsilon", "1.0"]) == 0
    random = json.loads((run / "evaluations" / "latest.json").read_text())["per_seed"]["0"]
    assert random["mean"] < 40  # CartPole's random policy lasts about 22 steps
    assert final["mean"] > 3 * random["mean"], (final["mean"], random["mean"])
    assert np.mean(final["scores"]) == final["mean"]
