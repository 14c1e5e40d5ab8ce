"""The CPU-sized pipeline: two algorithms x two seeds trained by the CLI, then `dsqn report`."""

import csv

import pytest

from dsqn.cli import main

TINY = [
    "--seeds", "0", "1",
    "--run.total_agent_steps", "800",
    "--run.log_period_agent_steps", "400",
    "--run.checkpoint_period_agent_steps", "400",
    "--eval.period_agent_steps", "400",
    "--eval.episodes", "3",
    "--eval.max_episode_agent_steps", "60",
    "--learner.warmup_agent_steps", "200",
    "--learner.replay_capacity_transitions", "2000",
    "--network.hidden_sizes", "16",
    "--network.time_steps", "4",
    "--no-progress",
]  # fmt: skip


@pytest.mark.slow
def test_train_two_algorithms_then_report(tmp_path, capsys):
    root = tmp_path / "runs"
    for preset in ("cartpole-dqn", "cartpole-dsqn"):
        assert main(["train", preset, "--run-dir", str(root / preset), *TINY]) == 0
    out = tmp_path / "report"
    assert main(["report", str(root), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "cartpole-dqn" in report and "cartpole-dsqn" in report
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["algorithm"] for r in rows} >= {"cartpole-dqn", "cartpole-dsqn"}
    figures = list((out / "figures").glob("*.png"))
    assert figures and all(p.stat().st_size > 1000 for p in figures)
