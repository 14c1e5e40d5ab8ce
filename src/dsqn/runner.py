"""The outer loop of a training run: run directory, evaluation, checkpoints, resume, signals.

One run = one directory (docs/run_directory.md). The loop runs jitted chunks of
``run.log_period_agent_steps`` agent steps (see :mod:`dsqn.train`) and between chunks

- writes a ``metrics.csv`` row per seed (and TensorBoard scalars) and updates the progress line,
- every ``eval.period_agent_steps`` evaluates every seed (the paper: 30 full games at epsilon
  0.05) into ``evaluations.csv`` and keeps each seed's best parameters in its train state,
- every ``run.checkpoint_period_agent_steps`` (and, if set, every
  ``run.checkpoint_period_minutes`` of wall-clock time) saves the latest checkpoint (train
  states, replay unless ``run.save_replay`` is off, counters, the resolved config),
- stops on SIGINT/SIGTERM at the end of the current chunk: an evaluation due there is left for
  the resumed run (the checkpoint records it as pending), the checkpoint is written, and the
  process exits; a preempted job therefore needs one chunk and one save of lead time,
- stops with an error if a loss or Q-value becomes NaN/inf (nothing is saved; the last good
  checkpoint remains).

At the end, the final policy and each seed's best parameters are both evaluated on fresh games
and written to ``evaluation.json``.

Resume (``dsqn train --resume RUN_DIR``) restores the latest checkpoint: parameters, target
parameters, optimizer states, counters, PRNG keys and (by default) the replay buffers. envpool's
emulator state cannot be saved, so every environment starts a new game on resume; the episode in
progress when the run stopped is lost, and the replay marks the cut so that no transition spans
it. Log rows written after the checkpoint are dropped; a pending evaluation runs first.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import dsqn
from dsqn import agent, memory, replay
from dsqn.checkpoint import Checkpointer, CheckpointError, save_json
from dsqn.config import Config, apply_overrides, from_dict, to_dict, validate
from dsqn.distributed import any_process, fetch, gather_rows, is_primary, process_rows
from dsqn.evaluate import EvalResult, Evaluator, max_q_summary
from dsqn.logs import CsvLog, Progress, TensorBoard, Trackers, WandbLog, truncate_csv
from dsqn.train import Carry, Experiment, frames_per_agent_step, make_train
from dsqn.versions import environment

__all__ = [
    "RESUMABLE_FIELDS",
    "run_metadata",
    "checkpoint_template",
    "TrainingDiverged",
    "RunResult",
    "default_run_dir",
    "run_training",
    "load_run_config",
    "evaluation_summary",
    "evaluation_crossed",
    "run_length",
]

METRIC_COLUMNS = [
    "seed",
    "agent_steps",
    "frames",
    "episodes",
    "episode_return",
    "episode_length",
    "loss",
    "q_mean",
    "epsilon",
    "updates",
    "sps",
]
EVAL_COLUMNS = [
    "seed",
    "agent_steps",
    "episodes",
    "return_mean",
    "return_std",
    "return_min",
    "return_max",
    "length_mean",
    "average_max_q",
    "average_mean_max_q",
]


# Config fields that may change between a run and its resumption (they do not shape the state).
RESUMABLE_FIELDS = (
    "run.total_agent_steps",
    "run.checkpoint_period_agent_steps",
    "run.checkpoint_period_minutes",
    "run.check_memory",
    "run.keep_checkpoints",
    "run.shard_seeds",
    "env.stepping",
)


def run_length(config: Config) -> int:
    """Agent steps of the whole run: ``run.total_agent_steps`` of the schedule, plus the warm-up
    when the schedule does not count it (:func:`dsqn.agent.schedule_offset`)."""
    return config.run.total_agent_steps + agent.schedule_offset(config.learner)


def evaluation_crossed(config: Config, before: int, after: int) -> bool:
    """Whether a multiple of ``eval.period_agent_steps`` of the schedule step lies in
    ``(before, after]`` (agent steps). Without ``learner.schedule_counts_warmup`` the schedule
    starts at the end of the warm-up, which is itself an evaluation point (the authors evaluate
    at training step 0)."""
    offset, period = agent.schedule_offset(config.learner), config.eval.period_agent_steps
    return (after - offset) // period > (before - offset) // period


def checkpoint_template(exp: Experiment) -> dict[str, Any]:
    """Shapes and dtypes of the saved state (everything but the replay) of ``exp``'s runs; with
    a mesh, the train states carry their by-seed sharding and the counters are replicated."""
    template = jax.eval_shape(
        lambda: {
            "train": exp.init_train_states(),
            "agent_steps": jnp.zeros((), jnp.int32),
            "episodes": jnp.zeros((exp.num_seeds,), jnp.int32),
        }
    )
    counters = {k: v for k, v in template.items() if k != "train"}
    return {"train": exp.placed(template["train"]), **exp.placed(counters, per_seed=False)}


class TrainingDiverged(RuntimeError):
    """A loss or Q-value became NaN or infinite."""


class RunResult(dict):
    """What :func:`run_training` returns: ``run_dir``, ``status`` (finished | interrupted),
    ``agent_steps`` and, when finished, the ``evaluation`` dict written to evaluation.json."""


def default_run_dir(config: Config) -> Path:
    """``runs/<game>/<name>-<timestamp>`` under the current directory."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / config.env.game.removesuffix("-v5") / f"{config.name}-{stamp}"


def load_run_config(run_dir: Path) -> Config:
    """The resolved config stored in ``run_dir/config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: {path} does not exist")
    data = json.loads(path.read_text())
    data.pop("meta", None)
    return from_dict(data)


def _eval_key(seed: int, agent_steps: int, purpose: int) -> jax.Array:
    """Evaluation randomness of one seed: a function of (seed, agent steps, purpose) only."""
    key = jax.random.fold_in(jax.random.key(seed), 1 + purpose)
    return jax.random.fold_in(key, agent_steps)


def _eval_keys(seeds, agent_steps: int, purpose: int) -> jax.Array:
    return jnp.stack([_eval_key(s, agent_steps, purpose) for s in seeds])


def _per_seed_summary(result: EvalResult, i: int, agent_steps: int) -> dict[str, Any]:
    scores = result.returns[i].astype(float)
    return {
        "agent_steps": int(agent_steps),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "scores": scores.tolist(),
        "lengths": result.lengths[i].astype(int).tolist(),
        **max_q_summary(result, i),
    }


def evaluation_summary(per_seed: dict[str, dict[str, Any]], protocol: str) -> dict[str, Any]:
    """Mean over seeds of each seed's mean score under ``protocol`` (final | best)."""
    means = [v[protocol]["mean"] for v in per_seed.values() if v.get(protocol)]
    if not means:
        return {"mean": None, "std_over_seeds": None, "seeds": 0}
    return {
        "mean": float(np.mean(means)),
        "std_over_seeds": float(np.std(means)),
        "seeds": len(means),
    }


class _Stop:
    """Records SIGINT/SIGTERM so that the loop can checkpoint and exit between chunks."""

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay as they are
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"\n[dsqn] {signal.Signals(signum).name} received: finishing the current chunk, "
            "writing a checkpoint, then stopping (send again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _Run:
    """State of one training process over one run directory."""

    def __init__(self, config: Config, run_dir: Path, exp: Experiment, progress: bool):
        self.config, self.run_dir, self.exp = config, run_dir, exp
        self.seeds = list(config.run.seeds)
        # This process's seeds: with several processes each evaluates its own, then they share.
        self.local_seeds = list(exp.local_seeds)
        self.progress_enabled = progress
        self.checkpointer = Checkpointer(
            run_dir / "checkpoints", max_to_keep=config.run.keep_checkpoints
        )
        self._evaluator: Evaluator | None = None
        self.last_save = time.monotonic()
        self.last_save_seconds: float | None = None
        self._update_best = jax.jit(
            functools.partial(_update_best, ties_to_later=config.eval.best_ties == "later")
        )

    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = Evaluator(self.config, self.exp.network, self.local_seeds)
        return self._evaluator

    # --------------------------------------------------------------- checkpoints

    def save(self, carry: Carry, episodes: np.ndarray, *, evaluation_pending: bool = False) -> None:
        """Save the latest checkpoint; ``evaluation_pending``: the evaluation due at this step
        was skipped (a stop signal) and runs first on resume."""
        start = time.monotonic()
        step = int(carry.agent_steps)
        state = {
            "train": carry.train,
            "agent_steps": carry.agent_steps,
            "episodes": self.exp.replicated(np.asarray(episodes, np.int32)),
        }
        self.checkpointer.save(
            step,
            state,
            replay=carry.replay if self.config.run.save_replay else None,
            metadata={
                "config": to_dict(self.config),
                "agent_steps": step,
                "evaluation_pending": evaluation_pending,
            },
        )
        self.last_save = time.monotonic()
        self.last_save_seconds = self.last_save - start

    def checkpoint_due(self, step: int) -> bool:
        """A checkpoint is due at ``step`` by agent steps, at the end, or by wall-clock time
        (decided by all processes together)."""
        run = self.config.run
        if step % run.checkpoint_period_agent_steps == 0 or step >= run_length(self.config):
            return True
        minutes = run.checkpoint_period_minutes
        late = minutes is not None and time.monotonic() - self.last_save >= 60 * minutes
        return any_process(late)

    def restore(self, step: int | None = None) -> tuple[Carry, np.ndarray, bool]:
        """The carry, the completed-episode counts [S] and whether an evaluation is pending, of
        a checkpoint (latest by default)."""
        want_replay = self.config.run.save_replay
        replay_template = (
            self.exp.placed(jax.eval_shape(self.exp.init_replay)) if want_replay else None
        )
        restored = self.checkpointer.restore(
            step,
            state_template=checkpoint_template(self.exp),
            replay_template=replay_template,
            expected_config=to_dict(self.config),
            ignore_config_fields=RESUMABLE_FIELDS,
        )
        replay_state = restored.replay
        if replay_state is None:
            replay_state = self.exp.init_replay()
        else:
            replay_state = jax.jit(jax.vmap(replay.mark_interrupted))(replay_state)
        steps = int(restored.state["agent_steps"])
        carry = self.exp.start_envs(restored.state["train"], replay_state, agent_steps=steps)
        pending = bool(restored.metadata.get("evaluation_pending", False))
        return carry, np.asarray(restored.state["episodes"], np.int64), pending

    # --------------------------------------------------------------- evaluation

    def evaluate(self, params, agent_steps: int, purpose: int) -> EvalResult:
        """Every seed's evaluation: this process plays its own seeds' games, then the results
        are shared (a seed's games do not depend on which other seeds share the pool)."""
        params = jax.tree.map(process_rows, params)
        result = self.evaluator(params, _eval_keys(self.local_seeds, agent_steps, purpose))
        returns, lengths, max_q, mean_max_q, steps = gather_rows(
            (result.returns, result.lengths, result.max_q, result.mean_max_q, result.steps)
        )
        return result._replace(
            returns=returns, lengths=lengths, max_q=max_q, mean_max_q=mean_max_q, steps=steps
        )

    def periodic_evaluation(self, carry: Carry, log: CsvLog, tb: Trackers) -> Carry:
        step = int(carry.agent_steps)
        result = self.evaluate(carry.train.params, step, purpose=0)
        means = result.returns.mean(axis=1)
        for i, seed in enumerate(self.seeds):
            row = {
                "seed": seed,
                "agent_steps": step,
                "episodes": result.returns.shape[1],
                "return_mean": float(means[i]),
                "return_std": float(result.returns[i].std()),
                "return_min": float(result.returns[i].min()),
                "return_max": float(result.returns[i].max()),
                "length_mean": float(result.lengths[i].mean()),
                **max_q_summary(result, i),
            }
            log.write(row)
            tb.write(
                seed,
                step,
                {
                    "eval/return_mean": row["return_mean"],
                    "eval/average_max_q": row["average_max_q"],
                },
            )
        means = self.exp.replicated(means.astype(np.float32))
        train = self._update_best(carry.train, means, carry.agent_steps)
        return carry._replace(train=train)

    def final_evaluation(self, carry: Carry) -> dict[str, Any]:
        step = int(carry.agent_steps)
        final = self.evaluate(carry.train.params, step, purpose=1)
        best = self.evaluate(carry.train.best_params, step, purpose=2)
        per_seed = {}
        best_steps, best_means = fetch((carry.train.best_agent_steps, carry.train.best_return))
        for i, seed in enumerate(self.seeds):
            entry = {"final": _per_seed_summary(final, i, step)}
            if best_steps[i] >= 0:
                entry["best"] = _per_seed_summary(best, i, int(best_steps[i]))
                entry["best"]["selection_mean"] = float(best_means[i])
            else:
                entry["best"] = None
            per_seed[str(seed)] = entry
        cfg = self.config
        return {
            "name": cfg.name,
            "game": cfg.env.game,
            "suite": cfg.env.suite,
            "protocol": cfg.env.protocol,
            "agent_steps": step,
            "frames": step * frames_per_agent_step(cfg),
            "episodes": self.evaluator.episodes,
            "epsilon": self.evaluator.epsilon,
            "per_seed": per_seed,
            "summary": {
                "final": evaluation_summary(per_seed, "final"),
                "best": evaluation_summary(per_seed, "best"),
            },
        }

    # --------------------------------------------------------------- metrics

    def metric_rows(self, metrics: dict[str, np.ndarray], carry: Carry, sps: float, episodes_total):
        step = int(carry.agent_steps)
        eps = float(agent.epsilon_at(self.config.learner, step))
        rows = []
        t = self.config.network.time_steps
        e = self.exp.envs_per_seed
        updates = fetch(carry.train.updates)
        for i, seed in enumerate(self.seeds):
            n_ep, n_up = metrics["episodes"][i], metrics["updates"][i]
            row = {
                "seed": seed,
                "agent_steps": step,
                "frames": step * frames_per_agent_step(self.config),
                "episodes": int(episodes_total[i]),
                "episode_return": metrics["episode_return"][i] / n_ep if n_ep else None,
                "episode_length": metrics["episode_length"][i] / n_ep if n_ep else None,
                "loss": metrics["loss"][i] / n_up if n_up else None,
                "q_mean": metrics["q"][i] / n_up if n_up else None,
                "epsilon": eps,
                "updates": int(updates[i]),
                "sps": sps,
            }
            forwards = metrics["acting_forwards"][i]
            for layer, neurons in self.exp.layer_neurons.items():
                total = metrics[f"spikes_{layer}"][i]
                denom = forwards * e * t * neurons
                row[f"firing_rate_{layer}"] = float(total / denom) if forwards else None
            rows.append(row)
        return rows


def _update_best(
    train: agent.TrainState, means: jax.Array, agent_steps: jax.Array, *, ties_to_later: bool
):
    """Per seed: if this evaluation's mean beats the best so far (or equals it, with
    ``ties_to_later``), keep these parameters."""
    better = means >= train.best_return if ties_to_later else means > train.best_return

    def pick(new, old):
        mask = better.reshape(better.shape + (1,) * (new.ndim - 1))
        return jnp.where(mask, new, old)

    return train._replace(
        best_params=jax.tree.map(pick, train.params, train.best_params),
        best_return=jnp.where(better, means, train.best_return),
        best_agent_steps=jnp.where(better, agent_steps, train.best_agent_steps),
    )


def run_metadata(command: list[str] | None) -> dict[str, Any]:
    """The ``meta`` section of a run's config.json: versions, devices, time, command line, and
    the whole software environment (:func:`dsqn.versions.environment`)."""
    return {
        "dsqn_version": dsqn.__version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "environment": environment(),
    }


def _write_config(run_dir: Path, config: Config, meta: dict[str, Any]) -> None:
    save_json(run_dir / "config.json", {**to_dict(config), "meta": meta})


TRACKERS: tuple[str, ...] = ("wandb",)
"""Optional experiment trackers beside TensorBoard (``dsqn train --track``)."""


def _trackers(
    run_dir: Path, purge_step: int | None, track: str | None, project: str
) -> tuple[Trackers, dict[str, Any]]:
    """TensorBoard and the requested tracker, and what config.json's meta records of them (the
    W&B run id, so that a resumed run continues the same W&B run)."""
    trackers: list[Any] = [TensorBoard(run_dir / "tensorboard", purge_step=purge_step)]
    if track is None:
        return Trackers(trackers), {}
    if track not in TRACKERS:
        raise ValueError(f"unknown tracker {track!r}; valid: {', '.join(TRACKERS)}")
    previous = {}
    if (run_dir / "config.json").is_file():
        previous = json.loads((run_dir / "config.json").read_text()).get("meta", {})
    run_id = previous.get("wandb", {}).get("id")
    wandb_log = WandbLog(run_dir, project, run_id)
    trackers.append(wandb_log)
    return Trackers(trackers), {"wandb": {"project": project, "id": wandb_log.run_id}}


def run_training(
    config: Config | None = None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    command: list[str] | None = None,
    track: str | None = None,
    wandb_project: str = "dsqn",
) -> RunResult:
    """Trains ``config`` in ``run_dir`` (or resumes the run there) and returns a RunResult.

    Args:
      config: the run's config (ignored when resuming: the run's own config.json is used).
      run_dir: the run directory; a fresh run refuses a directory that already has checkpoints.
      resume: continue the run in ``run_dir`` from its latest checkpoint.
      overrides: on resume, dotted-path fields to change (only ``run.total_agent_steps`` and
        other ``run.*`` bookkeeping fields that do not change the state are sensible).
      progress: show a progress bar / log lines.
      command: the command line, stored in config.json.
      track: ``"wandb"`` to log to Weights & Biases too (:class:`dsqn.logs.WandbLog`).
      wandb_project: the W&B project.
    """
    # Installed first: a stop signal while the run starts (envs, compilation) is honoured at
    # the end of the first chunk, as one that comes later.
    with _Stop() as stop:
        tracking = (track, wandb_project)
        return _train(config, run_dir, resume, overrides, progress, command, tracking, stop)


def _train(
    config: Config | None,
    run_dir: str | Path | None,
    resume: bool,
    overrides: dict[str, Any] | None,
    progress: bool,
    command: list[str] | None,
    tracking: tuple[str | None, str],
    stop: _Stop,
) -> RunResult:
    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run directory")
        run_dir = Path(run_dir)
        config = apply_overrides(load_run_config(run_dir), overrides or {})
    else:
        if config is None:
            raise ValueError("a fresh run needs a config")
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
        if (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
            raise FileExistsError(
                f"{run_dir} already holds a run with checkpoints; resume it with "
                f"`dsqn train --resume {run_dir}` or choose another --run-dir"
            )
    validate(config)
    primary = is_primary()
    exp = make_train(config)  # rejects what validate cannot see (the game) before any write
    budgets = memory.budget(exp)
    memory.check(budgets, refuse=config.run.check_memory)
    run_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(config, run_dir, exp, progress)

    if resume:
        if run.checkpointer.latest_step() is None:
            raise CheckpointError(f"cannot resume {run_dir}: it has no checkpoint yet")
        carry, episodes_total, evaluation_pending = run.restore()
        start = int(carry.agent_steps)
        if primary:
            truncate_csv(run_dir / "metrics.csv", start)
            # A pending evaluation may have written its row before the run was killed.
            truncate_csv(run_dir / "evaluations.csv", start - 1 if evaluation_pending else start)
    else:
        carry = exp.init_carry()
        episodes_total = np.zeros(len(config.run.seeds), np.int64)
        start = 0
        evaluation_pending = False
    columns = METRIC_COLUMNS + [f"firing_rate_{k}" for k in exp.layer_neurons]
    # Only process 0 writes files (with several processes every one computes the same rows).
    if primary:
        tb, tracked = _trackers(run_dir, start if resume else None, *tracking)
        meta = {**run_metadata(command), **tracked}
        _write_config(run_dir, config, meta)
        tb.record_config({**to_dict(config), "meta": meta}, run.seeds)
        metrics_log = CsvLog(run_dir / "metrics.csv", columns)
        eval_log = CsvLog(run_dir / "evaluations.csv", EVAL_COLUMNS)
    else:
        metrics_log = eval_log = tb = _NoLog()
    total = run_length(config)
    bar = Progress(total, start, enabled=progress and primary)
    chunk_steps = config.run.log_period_agent_steps
    e = config.env.envs_per_seed
    chunks: dict[int, Any] = {}
    status = "finished"

    def evaluate(carry: Carry) -> Carry:
        carry = run.periodic_evaluation(carry, eval_log, tb)
        best = fetch(carry.train.best_return)
        bar.write(
            f"[dsqn] evaluation at {int(carry.agent_steps)} agent steps: "
            + ", ".join(f"seed {s}: best {b:.1f}" for s, b in zip(run.seeds, best, strict=True))
        )
        return carry

    try:
        if evaluation_pending:
            carry = evaluate(carry)
        while int(carry.agent_steps) < total:
            steps_now = min(chunk_steps, total - int(carry.agent_steps))
            iterations = max(steps_now // e, 1)
            if iterations not in chunks:
                # Compiled ahead of its first run, so that its scratch memory is checked first.
                compiled = exp.chunk_fn(iterations).lower(carry).compile()
                analysis = compiled.memory_analysis()
                if analysis is not None:
                    scratch = analysis.temp_size_in_bytes
                    memory.check(budgets, scratch, refuse=config.run.check_memory)
                chunks[iterations] = compiled
            t0 = time.monotonic()
            previous = int(carry.agent_steps)
            carry, metrics = chunks[iterations](carry)
            metrics = jax.device_get(metrics)
            sps = iterations * e / max(time.monotonic() - t0, 1e-9)
            step = int(carry.agent_steps)
            _check_finite(metrics, run.seeds, step)
            episodes_total += metrics["episodes"].astype(np.int64)
            rows = run.metric_rows(metrics, carry, sps, episodes_total)
            for row in rows:
                metrics_log.write(row)
                tb.write(
                    row["seed"],
                    step,
                    {k: v for k, v in row.items() if k not in ("seed", "agent_steps")},
                )
            # A stop signal skips the evaluation due here: the resumed run does it.
            stopping = any_process(stop.signal is not None)
            evaluation_due = evaluation_crossed(config, previous, step) or step >= total
            skipped = evaluation_due and stopping
            if evaluation_due and not stopping:
                carry = evaluate(carry)
            recent = [r["episode_return"] for r in rows if r["episode_return"] is not None]
            bar.update(step, sps, "returns " + " ".join(f"{x:.1f}" for x in recent))
            stopping = stopping or any_process(stop.signal is not None)
            if stopping or run.checkpoint_due(step):
                run.save(carry, episodes_total, evaluation_pending=skipped)
            if stopping:
                status = "interrupted"
                break
        result = RunResult(run_dir=str(run_dir), status=status, agent_steps=int(carry.agent_steps))
        if status == "finished":
            evaluation = run.final_evaluation(carry)
            if primary:
                save_json(run_dir / "evaluation.json", evaluation)
                tb.record_evaluation(evaluation)
            result["evaluation"] = evaluation
            bar.write(_final_message(evaluation, run_dir), always=True)
        else:
            bar.write(
                f"[dsqn] stopped at {int(carry.agent_steps)} agent steps; checkpoint saved in "
                f"{run.last_save_seconds:.1f} s. Resume with: dsqn train --resume {run_dir}",
                always=True,
            )
        return result
    finally:
        run.checkpointer.close()
        metrics_log.close()
        eval_log.close()
        tb.close()
        bar.close()


class _NoLog:
    """Stands in for the logs on processes other than process 0."""

    def write(self, *args, **kwargs) -> None:
        pass

    def record_config(self, *args, **kwargs) -> None:
        pass

    def record_evaluation(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _check_finite(metrics: dict[str, np.ndarray], seeds: list[int], step: int) -> None:
    bad = [
        seed
        for i, seed in enumerate(seeds)
        if not (math.isfinite(metrics["loss"][i]) and math.isfinite(metrics["q"][i]))
    ]
    if bad:
        raise TrainingDiverged(
            f"loss or Q became NaN/inf for seed(s) {bad} in the chunk ending at agent step "
            f"{step}; nothing was saved for this chunk, the last good checkpoint remains. "
            "Try a smaller learner.learning_rate or learner.max_grad_norm."
        )


def _final_message(evaluation: dict[str, Any], run_dir: Path) -> str:
    s = evaluation["summary"]
    best = s["best"]["mean"]
    best_text = "n/a" if best is None else f"{best:.2f}"
    return (
        f"[dsqn] finished {evaluation['agent_steps']} agent steps. Mean score over "
        f"{s['final']['seeds']} seed(s): final policy {s['final']['mean']:.2f}, "
        f"best checkpoint {best_text} ({evaluation['episodes']} episodes each).\n"
        f"[dsqn] results in {run_dir}/ (evaluation.json, metrics.csv, evaluations.csv, "
        "tensorboard/, checkpoints/)"
    )
