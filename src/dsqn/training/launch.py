"""``dsqn train``'s entry point, :func:`run_training`: a fresh or resumed run set up, then run.

Setting up:

- the validated config (a resumed run's own, with the overrides) and the run directory
  (``runs/<game>/<name>-<timestamp>`` by default);
- the directory's lock (:mod:`dsqn.rundir.lock`), held from before anything changes to the run's
  end: a second ``dsqn train`` on the directory is refused, a dead holder's lock taken over;
- a fresh run refuses a directory that already has checkpoints;
- the experiment (:func:`dsqn.training.chunk.make_train`, which rejects an unknown game before
  any directory is created) and its memory check (:mod:`dsqn.training.memory_budget`);
- SIGINT/SIGTERM recorded from the start, so that the run stops at the end of a chunk.

Then the run's steps (:class:`dsqn.training.loop.TrainingRun`): start or restore, the loop of
chunks, the final evaluation, the logs closed.
"""

from __future__ import annotations

import contextlib
import datetime
import signal
import sys
from pathlib import Path
from typing import Any

from dsqn.config import Config, apply_overrides, validate
from dsqn.rundir import files as rd
from dsqn.rundir.lock import RunLock
from dsqn.runtime.distributed import is_primary
from dsqn.training import memory_budget
from dsqn.training.chunk import make_train
from dsqn.training.loop import RunResult, TrainingRun

__all__ = ["default_run_dir", "run_training"]


def default_run_dir(config: Config) -> Path:
    """``runs/<game>/<name>-<timestamp>`` under the current directory."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / config.env.game.removesuffix("-v5") / f"{config.name}-{stamp}"


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


def _prepare(
    config: Config | None,
    run_dir: str | Path | None,
    resume: bool,
    overrides: dict[str, Any] | None,
) -> tuple[Config, Path]:
    """The validated config and the run directory: a resumed run's own config with
    ``overrides``; a fresh run refuses a directory that already has checkpoints."""
    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run directory")
        run_dir = Path(run_dir)
        config = apply_overrides(rd.read_config(run_dir), overrides or {})
    else:
        if config is None:
            raise ValueError("a fresh run needs a config")
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    validate(config)
    return config, run_dir


def _refuse_a_run_with_checkpoints(run_dir: Path) -> None:
    """A fresh run refuses a directory that already has checkpoints (checked under the lock,
    so that a live run's directory is refused by the lock, naming its holder)."""
    if rd.checkpoint_dir(run_dir).exists() and any(rd.checkpoint_dir(run_dir).iterdir()):
        raise FileExistsError(
            f"{run_dir} already holds a run with checkpoints; resume it with "
            f"`dsqn train --resume {run_dir}` or choose another --run-dir"
        )


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
      track: ``"wandb"`` to log to Weights & Biases too (:class:`dsqn.training.logs.WandbLog`).
      wandb_project: the W&B project.
    """
    # Installed first: a stop signal while the run starts (envs, compilation) is honoured at
    # the end of the first chunk, as one that comes later.
    with _Stop() as stop, contextlib.ExitStack() as held:
        config, run_dir = _prepare(config, run_dir, resume, overrides)
        lock = RunLock(run_dir, enabled=is_primary())
        # An existing directory is locked before anything else; a new one once the game is
        # known to exist (make_train), so that a typo creates no directory.
        locked = run_dir.is_dir()
        if locked:
            _take(held, lock)
        if not resume:
            _refuse_a_run_with_checkpoints(run_dir)
        exp = make_train(config)  # rejects what validate cannot see (the game) before any write
        budgets = memory_budget.budget(exp)
        memory_budget.check(budgets, refuse=config.run.check_memory)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not locked:
            _take(held, lock)
        tracking = (track, wandb_project)
        run = TrainingRun(
            config, run_dir, exp, progress, command, tracking=tracking, budgets=budgets, lock=lock
        )
        try:
            carry, episodes = run.start(resume)
            carry, status = run.train(carry, episodes, lambda: stop.signal is not None)
            result = run.finish(carry, status)
        except BaseException:
            run.close(quiet=True)
            raise
        with run.writing("the last log records (closing the logs)", 0):
            run.close()
        return result


def _take(held: contextlib.ExitStack, lock: RunLock) -> None:
    """Hold ``lock`` until ``held`` closes; a lock file that cannot be written (a full disk)
    stops the run before it changes anything."""
    try:
        held.enter_context(lock)
    except OSError as e:
        raise rd.WriteFailed(
            f"creating the lock file {lock.path} failed: {type(e).__name__}: {e}\n"
            "  Nothing was changed. Free space (or raise the quota), then run the command again"
            f" (to continue the run: dsqn train --resume {lock.run_dir})"
        ) from e
