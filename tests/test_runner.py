"""End-to-end runs of the real entry point (`dsqn` CLI) at CPU size: files, resume, signals,
bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dsqn.cli import main, parse_field_overrides, split_field_arguments

TINY_CARTPOLE = [
    "--seeds", "0", "1",
    "--run.total_agent_steps", "1200",
    "--run.log_period_agent_steps", "400",
    "--run.checkpoint_period_agent_steps", "400",
    "--eval.period_agent_steps", "400",
    "--eval.episodes", "3",
    "--eval.max_episode_agent_steps", "60",
    "--learner.warmup_agent_steps", "200",
    "--learner.replay_capacity_transitions", "4000",
    "--network.hidden_sizes", "16",
    "--no-progress",
]  # fmt: skip


def read_csv(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def test_cli_argument_splitting():
    ordinary, fields = split_field_arguments(
        ["train", "dsqn", "--run-dir", "a.b", "--network.time_steps", "8", "--run.seeds", "0", "1"]
    )
    assert ordinary == ["train", "dsqn", "--run-dir", "a.b"]
    assert parse_field_overrides(fields) == {"network.time_steps": "8", "run.seeds": "0 1"}
    assert parse_field_overrides(["--eval.episodes=5"]) == {"eval.episodes": "5"}


def test_train_writes_the_run_directory_and_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "cartpole-dqn", "--run-dir", str(run), *TINY_CARTPOLE]) == 0
    for name in ("config.json", "metrics.csv", "evaluations.csv", "evaluation.json"):
        assert (run / name).exists(), name
    assert any((run / "tensorboard").iterdir())
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == [
        "1200",
        "800",
    ]
    config = json.loads((run / "config.json").read_text())
    assert config["name"] == "cartpole-dqn" and config["run"]["seeds"] == [0, 1]
    assert config["meta"]["command"][:3] == ["dsqn", "train", "cartpole-dqn"]

    rows = read_csv(run / "metrics.csv")
    assert [(r["seed"], r["agent_steps"]) for r in rows[:2]] == [("0", "400"), ("1", "400")]
    assert len(rows) == 6
    evals = read_csv(run / "evaluations.csv")
    assert len(evals) == 6 and {r["agent_steps"] for r in evals} == {"400", "800", "1200"}
    assert all(float(r["average_max_q"]) >= float(r["average_mean_max_q"]) - 1e-5 for r in evals)

    ev = json.loads((run / "evaluation.json").read_text())
    assert set(ev["per_seed"]) == {"0", "1"}
    for seed, entry in ev["per_seed"].items():
        assert len(entry["final"]["scores"]) == 3
        assert len(entry["best"]["scores"]) == 3
        # The best checkpoint is the first evaluation with the highest mean, of this seed.
        means = [
            (float(r["return_mean"]), int(r["agent_steps"])) for r in evals if r["seed"] == seed
        ]
        best_mean = max(m for m, _ in means)
        assert entry["best"]["selection_mean"] == pytest.approx(best_mean, rel=1e-5)
        assert entry["best"]["agent_steps"] == min(s for m, s in means if m == best_mean)
    assert ev["summary"]["final"]["seeds"] == 2
    out = capsys.readouterr().out
    assert "best checkpoint" in out and str(run) in out

    # Resume with a longer budget continues from the latest checkpoint, without repeating rows.
    assert (
        main(["train", "--resume", str(run), "--run.total_agent_steps", "1600", "--no-progress"])
        == 0
    )
    rows = read_csv(run / "metrics.csv")
    steps = [int(r["agent_steps"]) for r in rows]
    assert steps == sorted(steps) and steps[-1] == 1600 and len(rows) == 8
    # Episode counts carry over across the resume.
    assert int(rows[-1]["episodes"]) > int(rows[-3]["episodes"])
    assert json.loads((run / "evaluation.json").read_text())["agent_steps"] == 1600

    # Re-evaluation of any checkpoint.
    assert main(["evaluate", str(run), "--checkpoint", "latest", "--episodes", "2"]) == 0
    latest = json.loads((run / "evaluations" / "latest.json").read_text())
    assert len(latest["per_seed"]["0"]["scores"]) == 2
    assert main(["evaluate", str(run), "--checkpoint", "1200", "--episodes", "2"]) == 0
    assert main(["evaluate", str(run), "--checkpoint", "999", "--episodes", "2"]) == 2
    assert "1200" in capsys.readouterr().err  # lists the available steps


def test_fresh_run_refuses_existing_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "cartpole-dqn", "--run-dir", str(run), *TINY_CARTPOLE]
    args[args.index("1200")] = "400"
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "nope"], "valid presets"),
        (["train", "dsqn", "--network.tau", "-1"], "network.tau"),
        (["train", "dsqn", "--network.time_steps", "0"], "network.time_steps"),
        (["train", "dsqn", "--run.total_agent_steps", "-5"], "run.total_agent_steps"),
        (
            [
                "train",
                "dsqn",
                "--learner.batch_size",
                "64",
                "--learner.replay_capacity_transitions",
                "32",
            ],
            "batch_size",
        ),
        (["train", "dsqn", "--network.timesteps", "8"], "network.time_steps"),
        (["train", "dsqn", "--game", "Pongg"], "Pong"),
        (["train", "cartpole-dqn", "--game", "CartPole-v9"], "CartPole-v1"),
        (["train", "dsqn", "--env.protocol", "sticky"], "machado"),
        (["train", "--resume", "/nonexistent/run"], "config.json"),
    ],
)
def test_bad_input_gets_a_clear_error(args, needle, tmp_path, capsys):
    code = main([*args, "--run-dir", str(tmp_path / "r")] if args[1] != "--resume" else args)
    assert code == 2
    assert needle in capsys.readouterr().err


def test_corrupt_checkpoint_gets_a_clear_error(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "cartpole-dqn", "--run-dir", str(run), *TINY_CARTPOLE]
    args[args.index("1200")] = "400"
    assert main(args) == 0
    step_dir = run / "checkpoints" / "400"
    for f in step_dir.rglob("*"):
        if f.is_file() and f.stat().st_size > 200 and "state" in str(f):
            f.write_bytes(b"garbage" * 10)
    capsys.readouterr()
    assert (
        main(["train", "--resume", str(run), "--run.total_agent_steps", "800", "--no-progress"])
        == 2
    )
    err = capsys.readouterr().err
    assert "400" in err and "Traceback" not in err


def test_sigterm_checkpoints_and_the_run_resumes(tmp_path):
    """A run stopped by SIGTERM writes a checkpoint, exits cleanly, and resumes to the end."""
    run = tmp_path / "run"
    args = list(TINY_CARTPOLE)
    args[args.index("1200")] = "200000"
    args[args.index("--run.checkpoint_period_agent_steps") + 1] = "100000"
    env = dict(os.environ, PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "dsqn.cli", "train", "cartpole-dqn", "--run-dir", str(run), *args]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    metrics = run / "metrics.csv"
    deadline = time.time() + 240
    while time.time() < deadline and (not metrics.exists() or len(read_csv(metrics)) < 4):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 130, out
    assert "Resume with" in out
    steps = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and steps[-1] < 200000 and steps[-1] % 400 == 0
    rows = read_csv(metrics)
    assert int(rows[-1]["agent_steps"]) == steps[-1]
    end = steps[-1] + 400
    assert (
        main(["train", "--resume", str(run), "--run.total_agent_steps", str(end), "--no-progress"])
        == 0
    )
    assert json.loads((run / "evaluation.json").read_text())["agent_steps"] == end


def test_killed_run_loses_only_work_after_its_checkpoint(tmp_path):
    """SIGKILL: nothing is written at the kill; resume starts from the last checkpoint."""
    run = tmp_path / "run"
    args = list(TINY_CARTPOLE)
    args[args.index("1200")] = "200000"
    env = dict(os.environ, PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "dsqn.cli", "train", "cartpole-dqn", "--run-dir", str(run), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    ckpts = run / "checkpoints"
    while time.time() < deadline and not (
        ckpts.exists() and len([p for p in ckpts.iterdir() if p.name.isdigit()]) >= 2
    ):
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    steps = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    last = steps[-1]
    end = last + 400
    assert (
        main(["train", "--resume", str(run), "--run.total_agent_steps", str(end), "--no-progress"])
        == 0
    )
    rows = read_csv(run / "metrics.csv")
    steps_logged = [int(r["agent_steps"]) for r in rows]
    assert steps_logged == sorted(steps_logged)
    assert np.unique(steps_logged).tolist() == list(range(400, end + 1, 400))


@pytest.mark.slow
def test_tiny_atari_run_end_to_end_and_resume(tmp_path):
    run = tmp_path / "atari"
    args = [
        "train", "dsqn", "--game", "Pong", "--run-dir", str(run), "--seeds", "0",
        "--network.time_steps", "2",
        "--run.total_agent_steps", "240",
        "--run.log_period_agent_steps", "120",
        "--run.checkpoint_period_agent_steps", "120",
        "--eval.period_agent_steps", "120",
        "--eval.episodes", "2",
        "--eval.max_episode_agent_steps", "40",
        "--env.max_episode_agent_steps", "100",
        "--learner.warmup_agent_steps", "100",
        "--learner.batch_size", "8",
        "--learner.replay_capacity_transitions", "500",
        "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["game"] == "Pong" and ev["frames"] == 240 * 4
    assert len(ev["per_seed"]["0"]["final"]["scores"]) == 2
    rows = read_csv(run / "metrics.csv")
    assert {"firing_rate_conv1", "firing_rate_fc1"} <= set(rows[0])
    assert rows[-1]["firing_rate_conv1"] != ""
    assert (
        main(["train", "--resume", str(run), "--run.total_agent_steps", "360", "--no-progress"])
        == 0
    )
    assert json.loads((run / "evaluation.json").read_text())["agent_steps"] == 360
