"""End-to-end runs of the real entry point (`dsqn` CLI) at CPU size: files, resume, signals,
bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from processes import run as run_process
from processes import spawn

from dsqn import config as C
from dsqn.cli import main, parse_field_overrides, split_field_arguments
from dsqn.learning.agent import TrainState
from dsqn.rundir.checkpoints import CheckpointError
from dsqn.training.loop import _update_best, evaluation_crossed, run_length

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


@pytest.mark.slow
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


def test_evaluation_and_final_lines_name_each_number():
    from pathlib import Path

    from dsqn.config.sweep import AgentSpec
    from dsqn.training.loop import _evaluation_line, _final_message

    returns = np.array([[120.0, 139.2], [10.0, 12.0]])
    agents = [AgentSpec(0), AgentSpec(3)]
    line = _evaluation_line(20000, returns, agents, [171.5, 11.0], [10000, 20000])
    assert line == (
        "[dsqn] evaluation at 20000 agent steps (2 episodes): "
        "seed 0: 129.6 (best so far 171.5, at 10000), seed 3: 11.0 (best so far 11.0, at 20000)"
    )
    swept = [AgentSpec(0, (("network.tau", 1.5),)), AgentSpec(0, (("network.tau", 4.0),))]
    line = _evaluation_line(20000, returns, swept, [171.5, 11.0], [10000, 20000])
    assert line.endswith(
        "network.tau=1.5, seed 0: 129.6 (best so far 171.5, at 10000); "
        "network.tau=4, seed 0: 11.0 (best so far 11.0, at 20000)"
    )
    best = {"mean": 160.0, "selection_mean": 171.5}
    evaluation = {
        "agent_steps": 50000,
        "episodes": 30,
        "per_seed": {"0": {"best": best}},
        "summary": {"final": {"mean": 120.25, "seeds": 1}, "best": {"mean": 160.0}},
    }
    message = _final_message(evaluation, Path("runs/x"))
    assert "final policy 120.25, best checkpoint 160.00 (selected during training at 171.50)" in (
        message
    )


def test_time_based_checkpoints_and_a_fresh_run_refuses_an_existing_run_dir(tmp_path, capsys):
    """With run.checkpoint_period_minutes a checkpoint is written whenever that much time has
    passed, between the ones by agent steps (here: after every chunk)."""
    run = tmp_path / "run"
    args = ["train", "cartpole-dqn", "--run-dir", str(run), *TINY_CARTPOLE]
    args[args.index("--run.checkpoint_period_agent_steps") + 1] = "100000"
    args += ["--run.checkpoint_period_minutes", "1e-6", "--run.keep_checkpoints", "5"]
    assert main(args) == 0
    assert _checkpoints(run) == ([400, 800, 1200], [])
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err


# After a failed read, orbax's background I/O may call back into its already closed event
# loop; Python reports that as an unraisable exception at garbage collection.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_run_without_a_valid_checkpoint_gets_a_clear_error(
    tiny_cartpole_dqn_run, tmp_path, capsys
):
    run = shutil.copytree(tiny_cartpole_dqn_run, tmp_path / "run")
    for step in ("200", "400"):
        _damage(run / "checkpoints" / step, "garble")
    capsys.readouterr()
    resume = ["train", "--resume", str(run), "--run.total_agent_steps", "800", "--no-progress"]
    assert main(resume) == 2
    err = capsys.readouterr().err
    assert "no valid checkpoint is left" in err and "Traceback" not in err
    assert "400.corrupt-" in err and "200.corrupt-" in err


def _damage(step_dir, how: str) -> None:
    """Truncate to half, or overwrite with random bytes, every data file of a checkpoint's
    state (a node lost mid-write, a file system that lost blocks)."""
    rng = np.random.default_rng(0)
    files = [f for f in (step_dir / "state").rglob("*") if f.is_file() and f.parent.name == "d"]
    assert files, f"no data files in {step_dir}"
    for f in files:
        data = f.read_bytes()
        if how == "truncate":
            f.write_bytes(data[: len(data) // 2])
        else:
            f.write_bytes(rng.integers(0, 256, len(data), dtype=np.uint8).tobytes())


# After a failed read, orbax's background I/O may call back into its already closed event
# loop; Python reports that as an unraisable exception at garbage collection.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("how", ["truncate", "garble"])
def test_a_corrupt_latest_checkpoint_is_skipped_on_resume(
    tiny_cartpole_dqn_run, tmp_path, how, capsys
):
    """A copy of a run with checkpoints 200 and 400, 400 damaged. Loading it and `dsqn evaluate`
    name it and list the valid one; the resume moves it aside (kept), warns, and goes on from
    200, logging every point once."""
    from dsqn import load_agent

    run = shutil.copytree(tiny_cartpole_dqn_run, tmp_path / "run")
    _damage(run / "checkpoints" / "400", how)
    with pytest.raises(CheckpointError, match=r"step 400 .*corrupt.*valid checkpoints: \[200\]"):
        load_agent(run, "final")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--checkpoint", "400", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "step 400" in err and "valid checkpoints: [200]" in err and "Traceback" not in err

    resume = ["train", "--resume", str(run), "--run.total_agent_steps", "600", "--no-progress"]
    assert main(resume) == 0
    err = capsys.readouterr().err
    assert "checkpoint 400 does not read back, moved it to" in err
    assert "resuming from the newest valid checkpoint, 200 agent steps" in err
    names = [p.name for p in (run / "checkpoints").iterdir()]
    assert sum(n.startswith("400.corrupt-") for n in names) == 1
    assert _logged_steps(run / "metrics.csv") == [200, 400, 600]
    assert json.loads((run / "evaluation.json").read_text())["agent_steps"] == 600


@pytest.mark.slow
def test_sigterm_stops_at_the_end_of_the_chunk_and_the_resume_evaluates_first(tmp_path):
    """SIGTERM while the run starts: the first chunk ends, the evaluation due there is left
    pending, the checkpoint is written and the process exits 130; the resumed run evaluates at
    that step first, then goes on."""
    run = tmp_path / "run"
    args = list(TINY_CARTPOLE)
    args[args.index("--run.checkpoint_period_agent_steps") + 1] = "100000"
    cmd = [sys.executable, "-m", "dsqn.cli", "train", "cartpole-dqn", "--run-dir", str(run), *args]
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (run / "config.json").exists():  # written once the signal handler is installed
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    assert "checkpoint saved in" in out and "Resume with" in out
    assert _checkpoints(run) == ([400], [])
    assert _logged_steps(run / "metrics.csv") == [400, 400]  # two seeds, one chunk
    assert _logged_steps(run / "evaluations.csv") == []

    resume = ["train", "--resume", str(run), "--run.total_agent_steps", "800", "--no-progress"]
    assert main(resume) == 0
    assert _logged_steps(run / "metrics.csv") == [400, 400, 800, 800]
    assert _logged_steps(run / "evaluations.csv") == [400, 400, 800, 800]
    assert json.loads((run / "evaluation.json").read_text())["agent_steps"] == 800


def _host_tree(tree):
    """``tree`` on the host, typed PRNG keys as their key data."""

    def leaf(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return jax.tree.map(leaf, tree)


def test_restore_gives_back_every_saved_leaf_and_cuts_the_replay(tmp_path):
    """Save then restore through the run's own functions: every leaf of the train states
    (parameters, target, optimiser, keys, counters, best) and the counters come back equal; the
    replay comes back equal except that each env's newest slot is marked as a cut, so that the
    first step after the resume does not complete a transition from it."""
    from dsqn import config as C
    from dsqn.learning import replay
    from dsqn.training.chunk import make_train
    from dsqn.training.loop import TrainingRun

    overrides = {
        "run.seeds": "0 1",
        "network.hidden_sizes": "16",
        "learner.warmup_agent_steps": "100",
        "learner.target_update_period_agent_steps": "200",
        "learner.replay_capacity_transitions": "400",
    }
    cfg = C.validate(C.apply_overrides(C.preset("cartpole-dqn"), overrides))
    exp = make_train(cfg)
    run = TrainingRun(cfg, tmp_path, exp, progress=False)
    # 130 iterations x 4 envs = 520 agent steps: updates, a target sync, a wrapped replay.
    carry, _ = exp.chunk_fn(130)(exp.init_carry())
    saved = _host_tree((carry.train, carry.replay, carry.agent_steps))
    assert saved[1].filled.tolist() == [100, 100] and saved[0].updates.min() > 0
    run.save(carry, np.array([3, 5]))
    restored, episodes, evaluation_pending = run.restore()
    run.checkpointer.close()

    train, rep, steps = _host_tree((restored.train, restored.replay, restored.agent_steps))
    assert jax.tree.structure(train) == jax.tree.structure(saved[0])
    for (path, got), want in zip(
        jax.tree_util.tree_leaves_with_path(train), jax.tree.leaves(saved[0]), strict=True
    ):
        np.testing.assert_array_equal(got, want, err_msg=jax.tree_util.keystr(path))
        assert got.dtype == want.dtype, jax.tree_util.keystr(path)
    assert int(steps) == int(saved[2]) == 520 and episodes.tolist() == [3, 5]
    assert not evaluation_pending
    # Typed keys stay typed keys.
    assert jax.dtypes.issubdtype(restored.train.key.dtype, jax.dtypes.prng_key)

    before = saved[1]
    assert before.head.tolist() == [before.head[0]] * 2  # seeds step in lockstep
    newest = (int(before.head[0]) - 1) % before.flags.shape[1]
    expected_flags = before.flags.copy()
    expected_flags[:, newest] |= replay.RESET_STEP
    for field in replay.ReplayState._fields:
        want = expected_flags if field == "flags" else getattr(before, field)
        np.testing.assert_array_equal(getattr(rep, field), want, err_msg=field)
    # The same transitions are valid; after one more step, the uninterrupted replay would
    # complete a transition from the newest slot, the restored one does not.
    valid = jax.vmap(replay.valid_mask)
    np.testing.assert_array_equal(valid(restored.replay), valid(carry.replay))
    obs = jnp.zeros((2, 4, 4), jnp.float32)
    zeros = jnp.zeros((2, 4), bool)
    args = (obs, jnp.zeros((2, 4), jnp.int32), jnp.zeros((2, 4)), zeros, zeros, zeros)
    cont, resumed = (jax.vmap(replay.add)(r, *args) for r in (carry.replay, restored.replay))
    gained = np.asarray(valid(cont)) & ~np.asarray(valid(resumed))
    assert gained[:, newest].all() and gained.sum() == gained[:, newest].sum()


KILL_RUN = [
    "--seeds", "0",
    "--run.total_agent_steps", "2400",
    "--run.log_period_agent_steps", "400",
    "--run.checkpoint_period_agent_steps", "800",
    "--eval.period_agent_steps", "800",
    "--eval.episodes", "3",
    "--eval.max_episode_agent_steps", "60",
    "--learner.warmup_agent_steps", "200",
    "--learner.replay_capacity_transitions", "4000",
    "--network.hidden_sizes", "16",
]  # fmt: skip


def _complete_lines(path) -> list[list[str]]:
    """The rows of a CSV file being appended to, without a partly written last line."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.splitlines()[1:] if text.endswith("\n") else text.splitlines()[1:-1]
    return [line.split(",") for line in lines]


def _logged_steps(path) -> list[int]:
    return [int(row[1]) for row in _complete_lines(path)]  # agent_steps is the second column


def _checkpoints(run) -> tuple[list[int], list[str]]:
    """Complete checkpoint steps, and the names of unfinished (temporary) step directories."""
    root = run / "checkpoints"
    names = [p.name for p in root.iterdir()] if root.exists() else []
    done = sorted(
        int(n) for n in names if n.isdigit() and (root / n / "commit_success.txt").exists()
    )
    return done, [n for n in names if "tmp" in n]


def _start(run, args, log):
    cmd = [sys.executable, "-m", "dsqn.cli", "train", *args]
    return spawn(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115


def _kill_when(proc, moment, delay: float, timeout: float = 600) -> None:
    """SIGKILL ``proc`` ``delay`` seconds after ``moment()`` first holds."""
    deadline = time.monotonic() + timeout
    while not moment():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before the moment"
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.002)
    time.sleep(delay)
    proc.kill()
    proc.wait()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_only_work_since_the_last_checkpoint(tmp_path):
    """SIGKILL during a chunk, during an evaluation and during a checkpoint write, each after a
    random delay; every resume continues from the last complete checkpoint, and the finished
    run's logs hold every log point exactly once."""
    rng = np.random.default_rng(17)
    run = tmp_path / "run"
    metrics, evals = run / "metrics.csv", run / "evaluations.csv"
    first = ["cartpole-dqn", "--run-dir", str(run), *KILL_RUN]
    resume = ["--resume", str(run)]

    def started_from(log) -> int:
        """The agent steps of the first progress line of a run's output, less one chunk."""
        for line in log.read_text().splitlines():
            if line.startswith("[dsqn] agent_steps "):
                return int(line.split()[2].split("/")[0]) - 400
        raise AssertionError(f"no progress line in {log.read_text()[-2000:]}")

    # 1. During a chunk: the log point at 1200 is written, and neither an evaluation nor a
    # checkpoint is due there, so the next chunk runs. On a loaded machine the poll can miss
    # that chunk (it is short); then the run starts again from scratch, up to 3 times.
    for _ in range(3):
        shutil.rmtree(run, ignore_errors=True)
        proc = _start(run, first, tmp_path / "0.log")
        _kill_when(proc, lambda: 1200 in _logged_steps(metrics), rng.uniform(0.0, 0.02))
        if _logged_steps(metrics)[-1] == 1200:
            break
    assert _logged_steps(metrics)[-1] == 1200, "the chunk finished before the kill, 3 times"
    assert _checkpoints(run)[0] == [800]

    # 2. During an evaluation (the process's first, which compiles): the resumed process has
    # passed 1200 and written the log point at 1600, not yet its evaluation row.
    log = tmp_path / "1.log"
    passed_1200 = lambda: "agent_steps 1200/" in log.read_text()  # noqa: E731
    proc = _start(run, resume, log)
    _kill_when(proc, lambda: passed_1200() and 1600 in _logged_steps(metrics), rng.uniform(0, 0.3))
    assert started_from(tmp_path / "1.log") == 800
    assert 1600 not in _logged_steps(evals), "the evaluation finished before the kill"
    assert _checkpoints(run)[0] == [800]

    # 3. During a checkpoint write: orbax's temporary directory of step 1600 exists.
    proc = _start(run, resume, tmp_path / "2.log")
    writing = lambda: any(n.startswith("1600.") for n in _checkpoints(run)[1])  # noqa: E731
    _kill_when(proc, writing, rng.uniform(0.0, 0.01))
    assert started_from(tmp_path / "2.log") == 800
    done, unfinished = _checkpoints(run)
    assert done == [800] and unfinished, "the checkpoint write finished before the kill"

    # The previous checkpoint is still loadable: the last resume runs to the end from it.
    proc = _start(run, resume, tmp_path / "3.log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "3.log").read_text()[-3000:]
    assert started_from(tmp_path / "3.log") == 800
    assert _logged_steps(metrics) == [400, 800, 1200, 1600, 2000, 2400]
    assert _logged_steps(evals) == [800, 1600, 2400]
    assert _checkpoints(run) == ([1600, 2400], [])
    assert json.loads((run / "evaluation.json").read_text())["agent_steps"] == 2400


def _files(run) -> dict[str, tuple[int, int]]:
    """Every path under ``run`` with its size and modification time (to see that nothing
    changed)."""
    return {
        str(p.relative_to(run)): (p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*")
    }


def _stop(proc) -> None:
    """SIGSTOP ``proc`` and wait until every thread of it has stopped (a signal takes effect
    asynchronously: a thread in a write finishes it first)."""
    os.kill(proc.pid, signal.SIGSTOP)
    tasks = Path(f"/proc/{proc.pid}/task")
    deadline = time.monotonic() + 60
    while not all(_state(t) in "tT" for t in tasks.iterdir()):
        assert time.monotonic() < deadline, "the process did not stop"
        time.sleep(0.01)


def _state(task) -> str:
    """The state letter of a thread (``/proc/<pid>/task/<tid>/stat``): R, S, D, T, ..."""
    try:
        return (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:  # the thread ended
        return "T"


def _wait_for(proc, moment, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not moment():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before the moment"
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.01)


def _without_sps(path) -> list[dict[str, str]]:
    """The rows of a finished CSV log less the timing column."""
    return [{k: v for k, v in row.items() if k != "sps"} for row in read_csv(path)]


def _whole_rows(path) -> list[str]:
    """The lines of a CSV log, checked to be whole rows of the header's width."""
    text = path.read_bytes().decode()
    assert text.endswith("\r\n"), f"{path.name} ends in half a row: {text[-80:]!r}"
    lines = text.splitlines()
    width = len(lines[0].split(","))
    assert all(len(line.split(",")) == width for line in lines), path.name
    return lines


@pytest.mark.slow
def test_a_full_disk_stops_the_run_cleanly_and_the_resume_continues_exactly(
    tiny_cartpole_dqn_run, tmp_path, capsys
):
    """On a real small file system (tmpfs), a copy of a run with checkpoints 200 and 400: a
    checkpoint that does not fit stops the resumed run with a message (what failed, the space
    needed and free, the resume command); the previous checkpoint loads, the CSV logs hold
    whole rows; a full disk at the start stops it before it changes anything; once space is
    freed, the resume continues exactly as a resume of a copy that never lacked space."""
    from tmpfs import fill, small_tmpfs

    from dsqn import load_agent

    resume = ["--run.total_agent_steps", "800", "--no-progress"]
    reference = shutil.copytree(tiny_cartpole_dqn_run, tmp_path / "reference")
    with small_tmpfs(tmp_path / "disk", "64m") as disk:
        run = shutil.copytree(tiny_cartpole_dqn_run, disk / "run")
        size = sum(f.stat().st_size for f in (run / "checkpoints" / "400").rglob("*"))
        # Room for the logs of the next chunk, not for the next checkpoint.
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (shutil.disk_usage(disk).free - size // 2))
        before = {n: (run / n).read_bytes() for n in ("metrics.csv", "evaluations.csv")}
        capsys.readouterr()
        assert main(["train", "--resume", str(run), *resume]) == 2
        err = capsys.readouterr().err
        assert f"writing the checkpoint at 600 agent steps in {run} failed: No space left" in err
        assert "It needs about" in err and "free on that file system" in err
        assert "the previous checkpoint takes" in err
        assert "latest complete checkpoint is 400 agent steps" in err
        assert f"dsqn train --resume {run}" in err and "Traceback" not in err
        done, unfinished = _checkpoints(run)
        # orbax's writes of other items may still create a temporary directory after the
        # failed save removed it; the resume removes it.
        assert done == [200, 400] and all(n.startswith("600.orbax-") for n in unfinished)
        assert load_agent(run, 400).agent_steps == 400
        for name, text in before.items():  # the logs went on to 600, whole rows only
            assert (run / name).read_bytes().startswith(text)
            _whole_rows(run / name)
        assert _logged_steps(run / "metrics.csv") == [200, 400, 600]

        # A disk full to the last block: refused before anything changes.
        fill(disk)
        files = _files(run)
        assert main(["train", "--resume", str(run), *resume]) == 2
        err = capsys.readouterr().err
        assert "No space left" in err and "Nothing was changed" in err and "Traceback" not in err
        assert _files(run) == files

        filler.unlink()
        assert main(["train", "--resume", str(run), *resume]) == 0
        assert main(["train", "--resume", str(reference), *resume]) == 0
        for name in ("metrics.csv", "evaluations.csv"):
            assert _without_sps(run / name) == _without_sps(reference / name), name
            _whole_rows(run / name)
        evaluation = json.loads((run / "evaluation.json").read_text())
        assert evaluation == json.loads((reference / "evaluation.json").read_text())
        assert evaluation["agent_steps"] == 800
        assert _checkpoints(run) == ([600, 800], [])

        # The disk fills while the run logs (no checkpoint due): the metrics or evaluation row
        # that does not fit stops it, and the logs keep whole rows.
        endless = ["--run.total_agent_steps", "1000000", "--no-progress"]
        endless += ["--run.checkpoint_period_agent_steps", "1000000"]
        log = tmp_path / "logging.log"
        proc = _start(run, ["--resume", str(run), *endless], log)
        _wait_for(proc, lambda: _logged_steps(run / "metrics.csv")[-1] > 800)
        fill(disk)
        assert proc.wait(timeout=600) == 2
        out = log.read_text()
        assert "dsqn: error: writing the " in out and "No space left on device" in out
        assert "writing the metrics at" in out or "writing the evaluation at" in out
        _whole_rows(run / "metrics.csv")
        _whole_rows(run / "evaluations.csv")
        assert _checkpoints(run)[0] == [600, 800]


@pytest.mark.slow
def test_one_writer_and_a_sweep_killed_and_resumed_equals_a_run_stopped_there(tmp_path, capsys):
    """A sweep over two learning rates with two seeds (four agents), stopped (SIGSTOP) at a
    random moment after its first checkpoint:
    - a second `dsqn train` on its directory, --resume or fresh, is refused before it changes
      anything, naming the holder; a reader loads a checkpoint meanwhile, taking no lock;
    - SIGKILLed there, then resumed, which takes the dead holder's lock over, it ends bit for
      bit as the same run stopped at that checkpoint and resumed (envpool's games restart on
      every resume, so a run that was never stopped plays other games after that step): the
      same logs, evaluation.json and final parameters of every agent."""
    from dsqn import load_agent, load_agents
    from dsqn.rundir.files import LOCK
    from dsqn.rundir.lock import read_holder

    rng = np.random.default_rng(25)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    args = [*KILL_RUN, "--no-progress"]
    args[args.index("--seeds") + 1 : args.index("--seeds") + 2] = ["0", "1"]
    args[args.index("2400")] = "1600"
    args += ["--sweep", "learner.learning_rate", "1e-3", "3e-4"]
    fresh = ["cartpole-dqn", "--run-dir", str(killed), *args]
    # On a loaded machine the poll can miss the short stretch between the checkpoints at 800
    # and 1600 (the run ends); then the run starts again from scratch, up to 3 times.
    for _ in range(3):
        shutil.rmtree(killed, ignore_errors=True)
        proc = _start(killed, fresh, tmp_path / "k.log")
        _wait_for(proc, lambda: 800 in _checkpoints(killed)[0])
        time.sleep(rng.uniform(0.0, 1.0))
        _stop(proc)
        stopped_at = _checkpoints(killed)[0][-1]
        if stopped_at < 1600:
            break
        proc.kill()
        proc.wait()
    assert stopped_at < 1600, "the run finished before the stop, 3 times"

    files, holder = _files(killed), read_holder(killed / LOCK)
    assert holder.pid == proc.pid
    cli = [sys.executable, "-m", "dsqn.cli", "train"]
    for second in (["--resume", str(killed)], fresh):
        refused = run_process([*cli, *second], timeout=300)
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert "is being trained by another process" in refused.stderr
        assert f"PID {proc.pid} on host {holder.host}, started {holder.started}" in refused.stderr
        assert f"dsqn train --resume {killed}" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert _files(killed) == files  # the refused process changed nothing
    assert load_agent(killed, stopped_at, seed=1, values={"learner.learning_rate": 3e-4})
    assert read_holder(killed / LOCK) == holder

    proc.kill()  # -9 on the stopped process
    proc.wait()
    capsys.readouterr()
    assert main(["train", "--resume", str(killed)]) == 0
    assert f"no process {proc.pid} runs on this host" in capsys.readouterr().err
    assert not (killed / LOCK).exists()

    first = list(args)
    first[first.index("1600")] = str(stopped_at)
    assert main(["train", "cartpole-dqn", "--run-dir", str(reference), *first]) == 0
    assert main(["train", "--resume", str(reference), "--run.total_agent_steps", "1600"]) == 0

    for name in ("metrics.csv", "evaluations.csv"):
        assert _without_sps(killed / name) == _without_sps(reference / name), name
    evaluation = json.loads((killed / "evaluation.json").read_text())
    assert evaluation == json.loads((reference / "evaluation.json").read_text())
    assert len(evaluation["per_seed"]) == 4
    for a, b in zip(load_agents(killed, "final"), load_agents(reference, "final"), strict=True):
        assert (a.seed, a.values) == (b.seed, b.values)
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
            np.testing.assert_array_equal(x, y)


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
    # The paper's schedule starts after the 100-step warm-up: 100 + 240 agent steps in all.
    assert ev["game"] == "Pong" and ev["frames"] == 340 * 4
    assert len(ev["per_seed"]["0"]["final"]["scores"]) == 2
    rows = read_csv(run / "metrics.csv")
    assert {"firing_rate_conv1", "firing_rate_fc1"} <= set(rows[0])
    assert rows[-1]["firing_rate_conv1"] != ""
    assert (
        main(["train", "--resume", str(run), "--run.total_agent_steps", "360", "--no-progress"])
        == 0
    )
    assert json.loads((run / "evaluation.json").read_text())["agent_steps"] == 460


def test_the_schedule_starts_after_the_warm_up_as_the_authors_count():
    """The authors' counter starts after the 50k warm-up: the run lasts 50,000 + 50M agent
    steps and evaluations fall at 50k (training step 0), 300k, ...; counting the warm-up, at
    250k, 500k, ... and the run lasts 50M."""
    paper = C.preset("dsqn")
    assert run_length(paper) == 50_050_000
    assert evaluation_crossed(paper, 40_000, 50_000)
    assert not evaluation_crossed(paper, 50_000, 60_000)
    assert not evaluation_crossed(paper, 240_000, 250_000)
    assert evaluation_crossed(paper, 290_000, 300_000)
    counted = C.apply_overrides(paper, {"learner.schedule_counts_warmup": "true"})
    assert run_length(counted) == 50_000_000
    assert not evaluation_crossed(counted, 40_000, 50_000)
    assert evaluation_crossed(counted, 240_000, 250_000)


def test_best_checkpoint_ties_go_to_the_later_one_as_the_authors():
    """The authors keep a checkpoint when ``max_average_score <= average_score``."""
    train = dict(
        params=jnp.array([1.0, 1.0]),
        best_params=jnp.array([0.0, 0.0]),
        best_return=jnp.array([5.0, 5.0]),
        best_agent_steps=jnp.array([10, 10]),
    )
    state = TrainState(target_params=None, opt_state=None, key=None, updates=None, **train)
    means = jnp.array([5.0, 4.0])
    later = _update_best(state, means, jnp.int32(20), ties_to_later=True)
    np.testing.assert_array_equal(later.best_agent_steps, [20, 10])
    np.testing.assert_array_equal(later.best_params, [1.0, 0.0])
    earlier = _update_best(state, means, jnp.int32(20), ties_to_later=False)
    np.testing.assert_array_equal(earlier.best_agent_steps, [10, 10])


def test_a_failed_write_is_named_by_the_operating_systems_reason():
    from dsqn.training.write_failures import brief, os_cause

    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as e:
            raise RuntimeError("saving failed") from e
    except RuntimeError as e:
        assert os_cause(e) == "No space left on device"
    tensorstore = ValueError("RESOURCE_EXHAUSTED: " + "{spec}" * 500 + ": Disk quota exceeded [28]")
    assert os_cause(tensorstore) == "Disk quota exceeded"
    assert os_cause(ValueError("bad")) is None
    assert len(brief(tensorstore)) < 620 and brief(tensorstore).endswith("exceeded [28]")
