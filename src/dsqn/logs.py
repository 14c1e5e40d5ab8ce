"""Run-directory logging: metrics.csv / evaluations.csv rows, TensorBoard scalars, progress.

CSV files are appended row by row (flushed) so that a killed run keeps its log; on resume the
rows after the restored checkpoint are dropped so that the log never holds work that was lost.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["CsvLog", "TensorBoard", "Progress", "in_notebook", "truncate_csv"]


def _format(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


class CsvLog:
    """Appends dict rows to a CSV file with a fixed header (written once)."""

    def __init__(self, path: Path, columns: list[str]):
        self.path = Path(path)
        self.columns = columns
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="")  # noqa: SIM115 - kept open for the run
        self._writer = csv.DictWriter(self._file, fieldnames=columns, extrasaction="ignore")
        if new:
            self._writer.writeheader()
            self._file.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: _format(row.get(k)) for k in self.columns})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def truncate_csv(path: Path, max_agent_steps: int) -> None:
    """Drops rows whose ``agent_steps`` exceed ``max_agent_steps`` (used on resume)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        columns = list(rows[0].keys()) if rows else None
    if columns is None:
        return
    kept = [r for r in rows if int(float(r["agent_steps"])) <= max_agent_steps]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(kept)
    tmp.replace(path)


class TensorBoard:
    """Scalars tagged ``seed_<s>/<name>`` at x = agent steps."""

    def __init__(self, directory: Path, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self._writer = SummaryWriter(str(directory), purge_step=purge_step)

    def write(self, seed: int, agent_steps: int, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)) and not (
                isinstance(value, float) and math.isnan(value)
            ):
                self._writer.add_scalar(f"seed_{seed}/{name}", value, agent_steps)

    def close(self) -> None:
        self._writer.close()


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
