"""Run-directory logging: metrics.csv / evaluations.csv rows, trackers, progress.

Trackers receive the same values as the CSV files: :class:`TensorBoard` (always; scalars, and
the config as hyperparameters) and :class:`WandbLog` (``dsqn train --track wandb``: metrics,
config and evaluation results in a Weights & Biases run, online or offline).

CSV files are appended row by row, each row whole or not at all (:class:`CsvLog`), so that a
killed run keeps its log and a full disk leaves no half row; on resume the rows after the
restored checkpoint are dropped so that the log never holds work that was lost.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "CsvLog",
    "TensorBoard",
    "WandbLog",
    "Trackers",
    "flatten",
    "Progress",
    "in_notebook",
    "truncate_csv",
]


def _format(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


class CsvLog:
    """Appends dict rows to a CSV file with a fixed header (written once).

    Each row goes to the file in one piece, straight to the OS (no buffer): a reader sees whole
    rows, and a row that cannot be written whole (a full disk, a quota) is cut off again before
    the OSError is raised, so the file never holds half a row.
    """

    def __init__(self, path: Path, columns: list[str]):
        self.path = Path(path)
        self.columns = columns
        new = not self.path.exists() or self.path.stat().st_size == 0
        # 0666 less the umask, as open() gives.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        if new:
            self._append(self._line(columns))

    @staticmethod
    def _line(values: list[Any]) -> bytes:
        text = io.StringIO()
        csv.writer(text).writerow(values)  # the excel dialect: "\r\n" ends a row
        return text.getvalue().encode()

    def _append(self, data: bytes) -> None:
        start = os.fstat(self._fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            os.ftruncate(self._fd, start)  # drop the part that was written
            raise

    def write(self, row: dict[str, Any]) -> None:
        self._append(self._line([_format(row.get(k)) for k in self.columns]))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _whole_lines(text: str) -> str:
    """``text`` without a last line that has no line end (a row cut off by a kill)."""
    return text if text.endswith("\n") else text[: text.rfind("\n") + 1]


def truncate_csv(path: Path, max_agent_steps: int) -> None:
    """Drops rows whose ``agent_steps`` exceed ``max_agent_steps`` and a last row left half
    written (used on resume); the file is replaced atomically."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(io.StringIO(_whole_lines(f.read()))))
        columns = list(rows[0].keys()) if rows else None
    if columns is None:
        return
    kept = [r for r in rows if int(float(r["agent_steps"])) <= max_agent_steps]
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _is_number(value: Any) -> bool:
    """A finite or infinite real number, NumPy scalars included (NaN marks a missing value)."""
    return isinstance(value, numbers.Real) and not math.isnan(value)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys: ``{"network": {"tau": 2}} -> {"network.tau":
    2}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def agent_tag(agent: int | str) -> str:
    """The tag prefix of an agent, given by its ``per_seed`` key
    (:attr:`dsqn.config.sweep.AgentSpec.key`): ``seed_<s>``, or the key itself in a sweep
    (``network.tau=1.5,seed=0``)."""
    key = str(agent)
    return f"seed_{key}" if key.lstrip("-").isdigit() else key


def _evaluation_values(evaluation: dict[str, Any]) -> dict[str, float]:
    """The numbers of an evaluation.json: ``<protocol>/mean`` over seeds and
    ``<agent tag>/<protocol>/<mean|std|agent_steps>`` per agent (:func:`agent_tag`)."""
    values = {}
    for protocol, summary in evaluation.get("summary", {}).items():
        values.update({f"{protocol}/{k}": v for k, v in summary.items() if _is_number(v)})
    for seed, by_protocol in evaluation.get("per_seed", {}).items():
        for protocol, entry in by_protocol.items():
            for key in ("mean", "std", "agent_steps", "selection_mean"):
                if isinstance(entry, dict) and _is_number(entry.get(key)):
                    values[f"{agent_tag(seed)}/{protocol}/{key}"] = entry[key]
    return values


class TensorBoard:
    """Scalars tagged ``seed_<s>/<name>`` at x = agent steps; the config as hyperparameters.

    tensorboardX writes the event file from a thread of its own, which dies on a failed write
    (a full disk), after which every further write and ``close`` would block forever on its
    queue. The thread's record writer is therefore wrapped so that it keeps going and keeps
    the first OSError, which the next call here raises in the caller's thread.
    """

    def __init__(self, directory: Path, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self._writer = SummaryWriter(str(directory), purge_step=purge_step)
        self.error: OSError | None = None
        events = getattr(self._writer._get_file_writer(), "event_writer", None)
        records = getattr(events, "_ev_writer", None)  # what the writer thread writes with
        for method in ("write_event", "flush"):
            if hasattr(records, method):
                setattr(records, method, self._keeping_errors(getattr(records, method)))

    def _keeping_errors(self, method):
        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except OSError as e:
                if self.error is None:
                    self.error = e
                return None
            except ValueError:  # a closed file, after a failed write closed the writer
                if self.error is None:
                    raise
                return None

        return call

    def _check(self) -> None:
        """Raise the first failed write of the writer thread, if any."""
        if self.error is not None:
            raise OSError(
                self.error.errno, f"writing TensorBoard events failed: {self.error.strerror}"
            )

    def write(self, seed: int | str, agent_steps: int, values: dict[str, Any]) -> None:
        self._check()
        for name, value in values.items():
            if _is_number(value):
                self._writer.add_scalar(f"{agent_tag(seed)}/{name}", float(value), agent_steps)

    def record_config(self, config: dict[str, Any], seeds: list[int | str]) -> None:
        """The config (``dsqn.config.to_dict``) as hyperparameters (TensorBoard's HParams tab),
        each seed's evaluation score as their metric; lists and None are written as text."""
        from tensorboardX.summary import hparams

        values = {
            k: v if isinstance(v, int | float | str | bool) else str(v)
            for k, v in flatten(config).items()
        }
        self._check()
        metrics = {f"{agent_tag(s)}/eval/return_mean": None for s in seeds}
        writer = self._writer._get_file_writer()
        for summary in hparams(values, metrics):
            writer.add_summary(summary)

    def record_evaluation(self, evaluation: dict[str, Any]) -> None:
        """The final results (evaluation.json) as scalars ``evaluation/...`` at its step."""
        self._check()
        for name, value in _evaluation_values(evaluation).items():
            self._writer.add_scalar(f"evaluation/{name}", value, evaluation["agent_steps"])

    def close(self) -> None:
        self._writer.close()
        self._check()


class WandbLog:
    """A Weights & Biases run: the CSV values as ``seed_<s>/<name>`` against ``agent_steps``,
    the config (and run metadata) as its config, evaluation.json's numbers in its summary.

    Set ``WANDB_MODE=offline`` to write the run under ``RUN_DIR/wandb/`` without a network
    (``wandb sync`` uploads it later). A resumed run continues the same W&B run (``run_id``).
    """

    def __init__(self, run_dir: Path, project: str, run_id: str | None = None):
        try:
            import wandb
        except ImportError:
            raise ModuleNotFoundError(
                "--track wandb needs the wandb package: pip install -e '.[wandb]'", name="wandb"
            ) from None
        self.run = wandb.init(
            project=project,
            dir=str(run_dir),
            id=run_id or secrets.token_hex(6),
            name=Path(run_dir).name,
            resume="allow",
            settings=wandb.Settings(console="off"),
        )
        self.run.define_metric("agent_steps")
        self.run.define_metric("*", step_metric="agent_steps")

    @property
    def run_id(self) -> str:
        return self.run.id

    def write(self, seed: int | str, agent_steps: int, values: dict[str, Any]) -> None:
        row = {f"{agent_tag(seed)}/{k}": float(v) for k, v in values.items() if _is_number(v)}
        self.run.log({"agent_steps": agent_steps, **row})

    def record_config(self, config: dict[str, Any], seeds: list[int | str]) -> None:
        del seeds  # every logged metric is already per seed
        self.run.config.update(config, allow_val_change=True)

    def record_evaluation(self, evaluation: dict[str, Any]) -> None:
        self.run.summary.update(_evaluation_values(evaluation))
        self.run.summary["evaluation"] = evaluation

    def close(self) -> None:
        self.run.finish()


class Trackers:
    """Sends every call to each tracker (TensorBoard, optionally W&B)."""

    def __init__(self, trackers: list[Any]):
        self.trackers = trackers

    def write(self, seed: int | str, agent_steps: int, values: dict[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.write(seed, agent_steps, values)

    def record_config(self, config: dict[str, Any], seeds: list[int | str]) -> None:
        for tracker in self.trackers:
            tracker.record_config(config, seeds)

    def record_evaluation(self, evaluation: dict[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.record_evaluation(evaluation)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where stderr is not a terminal)."""
    shell = sys.modules.get("IPython")
    ipython = shell.get_ipython() if shell is not None else None
    return type(ipython).__name__ == "ZMQInteractiveShell"


class Progress:
    """A progress bar on a terminal or in a Jupyter notebook (``tqdm.auto``: a widget where
    ipywidgets is installed, text otherwise), plain log lines elsewhere (files, CI logs)."""

    def __init__(self, total: int, initial: int, enabled: bool = True):
        self.total, self.done = total, initial
        self._start_time, self._start_steps = time.monotonic(), initial
        self._bar = None
        self._enabled = enabled
        if enabled and (sys.stderr.isatty() or in_notebook()):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, agent_steps: int, sps: float, message: str) -> None:
        advanced, self.done = agent_steps - self.done, agent_steps
        if self._bar is not None:
            self._bar.update(advanced)
            self._bar.set_postfix_str(message)
        elif self._enabled:
            elapsed = time.monotonic() - self._start_time
            rate = (agent_steps - self._start_steps) / max(elapsed, 1e-9)
            eta = (self.total - agent_steps) / max(rate, 1e-9)
            print(
                f"[dsqn] agent_steps {agent_steps}/{self.total} | {sps:.0f} SPS | "
                f"ETA {eta / 60:.1f} min | {message}",
                flush=True,
            )

    def write(self, line: str, *, always: bool = False) -> None:
        """Prints a line (above the bar on a terminal); ``always`` even when disabled."""
        if self._bar is not None:
            self._bar.write(line)
        elif self._enabled or always:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
