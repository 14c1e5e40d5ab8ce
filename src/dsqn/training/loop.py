"""The steps of a training run (:class:`TrainingRun`): start or resume, chunks, logs,
evaluations, checkpoints, the final evaluation. :func:`dsqn.training.launch.run_training` sets a
run up (config, run directory, lock, experiment, stop signals) and takes these steps.

One run = one directory (docs/run_directory.md). The loop runs jitted chunks of
``run.log_period_agent_steps`` agent steps (see :mod:`dsqn.training.chunk`) and between chunks

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
  checkpoint remains),
- stops with an error naming the file, the space it needed and the resume command if a write
  fails (a full disk, a quota: :class:`dsqn.rundir.files.WriteFailed`, the message of
  :mod:`dsqn.training.write_failures`); what was saved before stays whole (the previous
  checkpoint, whole CSV rows).

Every write first checks that the process still holds the run directory's lock
(:mod:`dsqn.rundir.lock`).

At the end, the final policy and each seed's best parameters are both evaluated on fresh games
and written to ``evaluation.json``.

Resume (``dsqn train --resume RUN_DIR``) restores the latest checkpoint: parameters, target
parameters, optimizer states, counters, PRNG keys and (by default) the replay buffers. envpool's
emulator state cannot be saved, so every environment starts a new game on resume; the episode in
progress when the run stopped is lost, and the replay marks the cut so that no transition spans
it. Log rows written after the checkpoint are dropped; a pending evaluation runs first. A latest
checkpoint that does not read back (truncated or garbled files) is moved aside with a warning
(``<step>.corrupt-<n>``, never deleted) and the run resumes from the newest valid one.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dsqn.config import Config, sweep, to_dict
from dsqn.learning import agent, replay
from dsqn.learning.evaluation import EvalResult, Evaluator
from dsqn.learning.evaluation_stats import max_q_summary, seed_summary
from dsqn.rundir import files as rd
from dsqn.rundir.checkpoints import (
    Checkpointer,
    CheckpointError,
    CheckpointWriteError,
    CorruptCheckpoint,
)
from dsqn.rundir.loading import saved_state, saved_state_template
from dsqn.rundir.lock import RunLock
from dsqn.runtime import prng
from dsqn.runtime.distributed import any_process, fetch, gather_rows, is_primary, process_rows
from dsqn.training import memory_budget
from dsqn.training.chunk import Carry, Experiment
from dsqn.training.logs import CsvLog, Progress, TensorBoard, Trackers, WandbLog, truncate_csv
from dsqn.training.write_failures import tree_bytes, write_failure_message

__all__ = [
    "METRIC_COLUMNS",
    "EVAL_COLUMNS",
    "TRACKERS",
    "env_spaces",
    "evaluation_crossed",
    "run_length",
    "checkpoint_template",
    "TrainingDiverged",
    "RunResult",
    "TrainingRun",
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


def run_length(config: Config) -> int:
    """Agent steps of the whole run: ``run.total_agent_steps`` of the schedule, plus the warm-up
    when the schedule does not count it (:func:`dsqn.learning.agent.schedule_offset`)."""
    return config.run.total_agent_steps + agent.schedule_offset(config.learner)


def evaluation_crossed(config: Config, before: int, after: int) -> bool:
    """Whether a multiple of ``eval.period_agent_steps`` of the schedule step lies in
    ``(before, after]`` (agent steps). Without ``learner.schedule_counts_warmup`` the schedule
    starts at the end of the warm-up, which is itself an evaluation point (the authors evaluate
    at training step 0)."""
    offset, period = agent.schedule_offset(config.learner), config.eval.period_agent_steps
    return (after - offset) // period > (before - offset) // period


def env_spaces(exp: Experiment) -> rd.Spaces:
    """The env's observation shape and dtype and number of actions, recorded in the run's
    config.json so that its agents load without an env."""
    return rd.Spaces(exp.obs_shape, str(exp.obs_dtype), exp.num_actions)


def checkpoint_template(exp: Experiment) -> dict[str, Any]:
    """Shapes and dtypes of the saved state (everything but the replay) of ``exp``'s runs; with
    a mesh, the train states carry their by-seed sharding and the counters are replicated."""
    template = saved_state_template(exp.config, exp.network, env_spaces(exp))
    counters = {k: v for k, v in template.items() if k != "train"}
    return {"train": exp.placed(template["train"]), **exp.placed(counters, per_seed=False)}


class TrainingDiverged(RuntimeError):
    """A loss or Q-value became NaN or infinite."""


class RunResult(dict):
    """What :func:`dsqn.training.launch.run_training` returns: ``run_dir``, ``status``
    (finished | interrupted), ``agent_steps`` and, when finished, the ``evaluation`` dict written
    to evaluation.json."""


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


TRACKERS: tuple[str, ...] = ("wandb",)
"""Optional experiment trackers beside TensorBoard (``dsqn train --track``)."""


def _trackers(
    run_dir: Path, purge_step: int | None, track: str | None, project: str
) -> tuple[Trackers, dict[str, Any]]:
    """TensorBoard and the requested tracker, and what config.json's meta records of them (the
    W&B run id, so that a resumed run continues the same W&B run)."""
    trackers: list[Any] = [TensorBoard(run_dir / rd.TENSORBOARD, purge_step=purge_step)]
    if track is None:
        return Trackers(trackers), {}
    if track not in TRACKERS:
        raise ValueError(f"unknown tracker {track!r}; valid: {', '.join(TRACKERS)}")
    previous = rd.read_config_data(run_dir).get("meta", {}) if rd.is_run_dir(run_dir) else {}
    run_id = previous.get("wandb", {}).get("id")
    wandb_log = WandbLog(run_dir, project, run_id)
    trackers.append(wandb_log)
    return Trackers(trackers), {"wandb": {"project": project, "id": wandb_log.run_id}}


class TrainingRun:
    """One training process over one run directory: its steps, in the order a run takes them."""

    def __init__(
        self,
        config: Config,
        run_dir: Path,
        exp: Experiment,
        progress: bool,
        command: list[str] | None = None,
        *,
        tracking: tuple[str | None, str] = (None, "dsqn"),
        budgets: list[memory_budget.Budget] | None = None,
        lock: RunLock | None = None,
    ):
        self.config, self.run_dir, self.exp = config, run_dir, exp
        self.lock = lock
        self.command, self.tracking, self.budgets = command, tracking, budgets
        # One agent per (sweep point, seed); without a sweep, one per seed.
        self.agents = list(exp.agents)
        self.seeds = [a.seed for a in self.agents]
        # This process's agents: with several processes each evaluates its own, then they share.
        self.local_agents = list(exp.local_agents)
        self.local_seeds = [a.seed for a in self.local_agents]
        self.progress = progress
        # Only process 0 writes files (with several processes every one computes the same rows).
        self.primary = is_primary()
        self.checkpointer = Checkpointer(
            rd.checkpoint_dir(run_dir), max_to_keep=config.run.keep_checkpoints
        )
        self.metrics_log = self.eval_log = self.tb = _NoLog()
        self.bar: Progress | None = None
        self._evaluator: Evaluator | None = None
        self._update_best = jax.jit(
            functools.partial(_update_best, ties_to_later=config.eval.best_ties == "later")
        )
        self._chunks: dict[int, Any] = {}
        self.last_save = time.monotonic()
        self.last_save_seconds: float | None = None

    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = Evaluator(self.config, self.exp.network, self.local_agents)
        return self._evaluator

    # --------------------------------------------------------------- start and stop

    def start(self, resume: bool) -> tuple[Carry, np.ndarray]:
        """The carry and completed-episode counts [S] to start from (restored on resume, which
        also drops the log rows after the checkpoint and runs an evaluation the stopped run left
        pending), then config.json and the open logs."""
        pending = False
        if resume:
            if self.primary:  # leftovers of killed saves: safe to tidy under the lock
                self.checkpointer.tidy()
            if self.checkpointer.latest_step() is None:
                raise CheckpointError(f"cannot resume {self.run_dir}: it has no checkpoint yet")
            carry, episodes, pending = self.restore_valid()
            start = int(carry.agent_steps)
            if self.primary:
                with self.writing(f"the logs ({rd.METRICS}, {rd.EVALUATIONS_CSV})", 0):
                    truncate_csv(self.run_dir / rd.METRICS, start)
                    # A pending evaluation may have written its row before the run was killed.
                    last = start - 1 if pending else start
                    truncate_csv(self.run_dir / rd.EVALUATIONS_CSV, last)
        else:
            carry, episodes, start = self.exp.init_carry(), np.zeros(len(self.seeds), np.int64), 0
        if self.primary:
            with self.writing(f"{rd.CONFIG} and the logs", 0):
                tracked = self.open_logs(start, resume)
                data = rd.write_config(
                    self.run_dir,
                    self.config,
                    command=self.command,
                    spaces=env_spaces(self.exp),
                    extra_meta=tracked,
                )
                self.tb.record_config(data, [a.key for a in self.agents])
        total = run_length(self.config)
        self.bar = Progress(total, start, enabled=self.progress and self.primary)
        if pending:
            carry = self.periodic_evaluation(carry)
        return carry, episodes

    def open_logs(self, start: int, resume: bool) -> dict[str, Any]:
        """The CSV logs, TensorBoard and the requested tracker; returns what config.json's meta
        records of the tracker."""
        swept = sweep.columns(self.config)
        columns = _with_sweep(METRIC_COLUMNS, swept)
        columns += [f"firing_rate_{k}" for k in self.exp.layer_neurons]
        self.metrics_log = CsvLog(self.run_dir / rd.METRICS, columns)
        self.eval_log = CsvLog(self.run_dir / rd.EVALUATIONS_CSV, _with_sweep(EVAL_COLUMNS, swept))
        self.tb, tracked = _trackers(self.run_dir, start if resume else None, *self.tracking)
        return tracked

    def close(self, *, quiet: bool = False) -> None:
        """Close the checkpointer and the logs; with ``quiet`` (the run is already failing)
        their errors are dropped, so that the first error is the one reported."""
        for item in (self.checkpointer, self.metrics_log, self.eval_log, self.tb, self.bar):
            if item is None:
                continue
            try:
                item.close()
            except Exception:
                if not quiet:
                    raise

    # --------------------------------------------------------------- writes

    @contextlib.contextmanager
    def writing(self, what: str, needed: int):
        """Writes of ``what`` (``needed``: the bytes of a checkpoint's arrays, 0 for a log
        row): first checks that this process still holds the lock; an OSError or a failed
        checkpoint save becomes a WriteFailed that says what failed, the space needed and free,
        what is safe, and how to resume."""
        if self.lock is not None:
            self.lock.verify()
        try:
            yield
        except (OSError, CheckpointWriteError) as e:
            raise rd.WriteFailed(
                write_failure_message(self.run_dir, self.checkpointer, what, needed, e)
            ) from e

    # --------------------------------------------------------------- the loop

    def train(
        self, carry: Carry, episodes: np.ndarray, stop_requested: Callable[[], bool]
    ) -> tuple[Carry, str]:
        """Chunks until the budget is spent (``finished``) or ``stop_requested()`` (a signal
        arrived: ``interrupted``, after a checkpoint); after each chunk: logs, evaluation,
        progress, checkpoint. A stop skips the evaluation due after its chunk: the checkpoint
        records it as pending, and the resumed run does it."""
        total = run_length(self.config)
        while int(carry.agent_steps) < total:
            previous = int(carry.agent_steps)
            carry, rows = self.chunk(carry, episodes)
            step = int(carry.agent_steps)
            stopping = any_process(stop_requested())
            evaluation_due = evaluation_crossed(self.config, previous, step) or step >= total
            if evaluation_due and not stopping:
                carry = self.periodic_evaluation(carry)
            self.show_progress(step, rows)
            stopping = stopping or any_process(stop_requested())
            if stopping or self.checkpoint_due(step):
                self.save(carry, episodes, evaluation_pending=evaluation_due and stopping)
            if stopping:
                return carry, "interrupted"
        return carry, "finished"

    def chunk(self, carry: Carry, episodes: np.ndarray) -> tuple[Carry, list[dict[str, Any]]]:
        """One jitted chunk of up to ``run.log_period_agent_steps`` agent steps; its metrics rows
        are logged and ``episodes`` [S] counts the games completed in it."""
        e = self.config.env.envs_per_seed
        steps = min(self.config.run.log_period_agent_steps, self.remaining(carry))
        iterations = max(steps // e, 1)
        if iterations not in self._chunks:
            self._chunks[iterations] = self.compile_chunk(iterations, carry)
        t0 = time.monotonic()
        carry, metrics = self._chunks[iterations](carry)
        metrics = jax.device_get(metrics)
        sps = iterations * e / max(time.monotonic() - t0, 1e-9)
        step = int(carry.agent_steps)
        _check_finite(metrics, self.agents, step)
        episodes += metrics["episodes"].astype(np.int64)
        rows = self.metric_rows(metrics, carry, sps, episodes)
        swept = sweep.columns(self.config)
        with self.writing(f"the metrics at {step} agent steps ({rd.METRICS})", 0):
            for spec, row in zip(self.agents, rows, strict=True):
                self.metrics_log.write(row)
                values = {k: v for k, v in row.items() if k not in ("seed", "agent_steps", *swept)}
                self.tb.write(spec.key, step, values)
        return carry, rows

    def compile_chunk(self, iterations: int, carry: Carry):
        """The chunk of ``iterations``, compiled ahead of its first run so that its scratch
        memory is checked first (:mod:`dsqn.training.memory_budget`)."""
        compiled = self.exp.chunk_fn(iterations).lower(carry).compile()
        analysis = compiled.memory_analysis()
        if analysis is not None and self.budgets is not None:
            scratch = analysis.temp_size_in_bytes
            memory_budget.check(self.budgets, scratch, refuse=self.config.run.check_memory)
        return compiled

    def show_progress(self, step: int, rows: list[dict[str, Any]]) -> None:
        recent = [r["episode_return"] for r in rows if r["episode_return"] is not None]
        self.bar.update(step, rows[0]["sps"], "returns " + " ".join(f"{x:.1f}" for x in recent))

    def remaining(self, carry: Carry) -> int:
        return run_length(self.config) - int(carry.agent_steps)

    def finish(self, carry: Carry, status: str) -> RunResult:
        """A finished run evaluates its final policy and best parameters into evaluation.json;
        an interrupted one says how to resume."""
        step = int(carry.agent_steps)
        result = RunResult(run_dir=str(self.run_dir), status=status, agent_steps=step)
        if status != "finished":
            self.bar.write(
                f"[dsqn] stopped at {step} agent steps; checkpoint saved in "
                f"{self.last_save_seconds:.1f} s. Resume with: dsqn train --resume {self.run_dir}",
                always=True,
            )
            return result
        evaluation = self.final_evaluation(carry)
        if self.primary:
            with self.writing(rd.EVALUATION, 0):
                rd.write_evaluation(self.run_dir, evaluation)
                self.tb.record_evaluation(evaluation)
        result["evaluation"] = evaluation
        self.bar.write(_final_message(evaluation, self.run_dir), always=True)
        return result

    # --------------------------------------------------------------- checkpoints

    def save(self, carry: Carry, episodes: np.ndarray, *, evaluation_pending: bool = False) -> None:
        """Save the latest checkpoint; ``evaluation_pending``: the evaluation due at this step
        was skipped (a stop signal) and runs first on resume."""
        start = time.monotonic()
        step = int(carry.agent_steps)
        episodes = self.exp.replicated(np.asarray(episodes, np.int32))
        state = saved_state(carry.train, carry.agent_steps, episodes)
        replay_state = carry.replay if self.config.run.save_replay else None
        needed = tree_bytes(state, replay_state)
        with self.writing(f"the checkpoint at {step} agent steps", needed):
            self.checkpointer.save(
                step,
                state,
                replay=replay_state,
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

    def restore_valid(self) -> tuple[Carry, np.ndarray, bool]:
        """:meth:`restore` of the newest checkpoint that reads back: each newer one that does
        not (truncated or garbled files) is moved aside, with a warning naming it."""
        set_aside = []
        while True:
            try:
                return self.restore()
            except CorruptCheckpoint as e:
                if jax.process_count() > 1:  # the processes would have to agree on the move
                    raise CheckpointError(
                        f"{e}\nWith several processes the run does not set a checkpoint aside "
                        f"itself: move {self.checkpointer.directory / str(e.step)} aside (rename "
                        f"it to {e.step}.corrupt), then resume again"
                    ) from e
                aside = self.checkpointer.set_aside(e.step)
                set_aside.append(str(aside))
                _warn(
                    f"[dsqn] warning: checkpoint {e.step} does not read back, moved it to "
                    f"{aside} (kept for inspection): {e}"
                )
                if self.checkpointer.latest_step() is None:
                    raise CheckpointError(
                        f"cannot resume {self.run_dir}: no valid checkpoint is left (moved "
                        f"aside as unreadable: {', '.join(set_aside)})"
                    ) from e
                _warn(
                    f"[dsqn] resuming from the newest valid checkpoint, "
                    f"{self.checkpointer.latest_step()} agent steps"
                )

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
            ignore_config_fields=rd.RESUMABLE_FIELDS,
            absent_config_fields=rd.ADDED_FIELDS,
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

    def evaluate(self, params, agent_steps: int, stream: prng.Stream) -> EvalResult:
        """Every seed's evaluation: this process plays its own seeds' games, then the results
        are shared (a seed's games do not depend on which other seeds share the pool)."""
        params = jax.tree.map(process_rows, params)
        keys = prng.stream_keys(self.local_seeds, stream, agent_steps)
        result = self.evaluator(params, keys)
        returns, lengths, max_q, mean_max_q, steps = gather_rows(
            (result.returns, result.lengths, result.max_q, result.mean_max_q, result.steps)
        )
        return result._replace(
            returns=returns, lengths=lengths, max_q=max_q, mean_max_q=mean_max_q, steps=steps
        )

    def periodic_evaluation(self, carry: Carry) -> Carry:
        """Evaluates every seed into evaluations.csv, keeps each seed's best parameters, and
        prints each seed's score beside its best so far."""
        step = int(carry.agent_steps)
        result = self.evaluate(carry.train.params, step, prng.Stream.PERIODIC_EVAL)
        with self.writing(f"the evaluation at {step} agent steps ({rd.EVALUATIONS_CSV})", 0):
            for i, spec in enumerate(self.agents):
                row = _evaluation_row(result, i, spec, step)
                self.eval_log.write(row)
                scalars = {
                    "eval/return_mean": row["return_mean"],
                    "eval/average_max_q": row["average_max_q"],
                }
                self.tb.write(spec.key, step, scalars)
        means = result.returns.mean(axis=1)
        train = self._update_best(
            carry.train, self.exp.replicated(means.astype(np.float32)), carry.agent_steps
        )
        best, best_steps = fetch((train.best_return, train.best_agent_steps))
        self.bar.write(_evaluation_line(step, result.returns, self.agents, best, best_steps))
        return carry._replace(train=train)

    def final_evaluation(self, carry: Carry) -> dict[str, Any]:
        """The final policy and each seed's best parameters, each on fresh games."""
        step = int(carry.agent_steps)
        final = self.evaluate(carry.train.params, step, prng.Stream.FINAL_EVAL)
        best = self.evaluate(carry.train.best_params, step, prng.Stream.BEST_EVAL)
        best_steps, best_means = fetch((carry.train.best_agent_steps, carry.train.best_return))
        per_seed = {}
        for i, spec in enumerate(self.agents):
            entry = {"final": seed_summary(final, i, step), "best": None}
            if best_steps[i] >= 0:
                entry["best"] = seed_summary(best, i, int(best_steps[i]))
                entry["best"]["selection_mean"] = float(best_means[i])
            if spec.values:  # a sweep's agents: keyed by their values and seed
                entry |= {"seed": spec.seed, "values": dict(spec.values)}
            per_seed[spec.key] = entry
        record = rd.evaluation_record(
            self.config,
            name=self.config.name,
            agent_steps=step,
            episodes=self.evaluator.episodes,
            epsilon=self.evaluator.epsilon,
            per_seed=per_seed,
        )
        swept = sweep.axes(self.config)
        if swept:
            record["sweep"] = {path: list(values) for path, values in swept}
        return record

    # --------------------------------------------------------------- metrics

    def metric_rows(self, metrics: dict[str, np.ndarray], carry: Carry, sps: float, episodes_total):
        step = int(carry.agent_steps)
        eps = float(agent.epsilon_at(self.config.learner, step))
        rows = []
        t = self.config.network.time_steps
        e = self.exp.envs_per_seed
        updates = fetch(carry.train.updates)
        for i, spec in enumerate(self.agents):
            n_ep, n_up = metrics["episodes"][i], metrics["updates"][i]
            row = {
                "seed": spec.seed,
                **dict(spec.values),
                "agent_steps": step,
                "frames": step * rd.frames_per_agent_step(self.config.env.suite),
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


def _warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _with_sweep(columns: list[str], swept: list[str]) -> list[str]:
    """``columns`` with the swept fields' columns after ``seed``."""
    at = columns.index("seed") + 1
    return [*columns[:at], *swept, *columns[at:]]


def _evaluation_row(result: EvalResult, i: int, spec: sweep.AgentSpec, step: int) -> dict[str, Any]:
    """Agent ``i``'s row of evaluations.csv."""
    returns = result.returns[i]
    return {
        "seed": spec.seed,
        **dict(spec.values),
        "agent_steps": step,
        "episodes": returns.shape[0],
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_min": float(returns.min()),
        "return_max": float(returns.max()),
        "length_mean": float(result.lengths[i].mean()),
        **max_q_summary(result, i),
    }


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


def _check_finite(metrics: dict[str, np.ndarray], agents: list[sweep.AgentSpec], step: int) -> None:
    bad = [
        spec.label
        for i, spec in enumerate(agents)
        if not (math.isfinite(metrics["loss"][i]) and math.isfinite(metrics["q"][i]))
    ]
    if bad:
        raise TrainingDiverged(
            f"loss or Q became NaN/inf for {'; '.join(bad)} in the chunk ending at agent step "
            f"{step}; nothing was saved for this chunk, the last good checkpoint remains. "
            "Try a smaller learner.learning_rate or learner.max_grad_norm."
        )


def _evaluation_line(step: int, returns: np.ndarray, agents, best, best_steps) -> str:
    """The line an evaluation prints: each agent's score in this evaluation (``returns [S, N]``
    averaged over episodes) beside its best so far and the step of that best."""
    separator = "; " if any(spec.values for spec in agents) else ", "  # labels hold ", "
    scores = separator.join(
        f"{spec.label}: {mean:.1f} (best so far {b:.1f}, at {t})"
        for spec, mean, b, t in zip(agents, returns.mean(axis=1), best, best_steps, strict=True)
    )
    return f"[dsqn] evaluation at {step} agent steps ({returns.shape[1]} episodes): {scores}"


def _final_message(evaluation: dict[str, Any], run_dir: Path) -> str:
    s = evaluation["summary"]
    best = s["best"]["mean"]
    selections = [v["best"]["selection_mean"] for v in evaluation["per_seed"].values() if v["best"]]
    best_text = (
        "n/a (no evaluation)"
        if best is None
        else f"{best:.2f} (selected during training at {np.mean(selections):.2f})"
    )
    return (
        f"[dsqn] finished {evaluation['agent_steps']} agent steps. Mean score over "
        f"{s['final']['seeds']} seed(s) on fresh games ({evaluation['episodes']} episodes "
        f"each): final policy {s['final']['mean']:.2f}, best checkpoint {best_text}.\n"
        f"[dsqn] results in {run_dir}/ ({rd.EVALUATION}, {rd.METRICS}, {rd.EVALUATIONS_CSV}, "
        f"{rd.TENSORBOARD}/, {rd.CHECKPOINTS}/)"
    )
