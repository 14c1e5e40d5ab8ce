"""What the figures read from the runs' CSV logs: per-seed series of ``evaluations.csv`` and
``metrics.csv`` (`read_curves`), their mean with a band over seeds (`aggregate`), and the firing
rates late in training (`metrics_firing_rates`).

Run directories of the same game and algorithm are pooled: each (run directory, seed) is one
curve, and `aggregate` gives the mean over curves at each x value with a band that is either the
min-max range over seeds (``band="minmax"``) or the mean ± one sample standard deviation
(``band="std"``). In a sweep run, each sweep point is an algorithm of its own
(``"dsqn [network.tau=1.5]"``, see `dsqn.reports.runs.point_label`), read from the rows' swept
columns.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from dsqn.reports.drawing import check_choice
from dsqn.reports.runs import (
    algorithm_sort_key,
    point_label,
    read_identity,
    read_sweep,
    resolve_run_dirs,
)
from dsqn.rundir import files as rd

__all__ = [
    "BANDS",
    "FIRING_RATE_TAIL",
    "Curve",
    "AggregatedCurve",
    "read_curves",
    "aggregate",
    "metrics_firing_rates",
]

BANDS: tuple[str, ...] = ("minmax", "std")
"""Band around the mean over seeds: min-max range, or mean ± one sample standard deviation."""

FIRING_RATE_TAIL = 0.1
"""Fraction of each seed's last log points whose ``firing_rate_<layer>`` values are averaged."""


# ----------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True)
class Curve:
    """One seed's series from one run directory.

    Attributes:
      game, algorithm, suite: from the run's ``config.json``; in a sweep run, the algorithm is
        the sweep point's label (`dsqn.reports.runs.point_label`) from the row's swept columns.
      seed: the ``seed`` column.
      agent_steps: [N] x values, in agent steps.
      values: [N] y values (rows with an empty value are left out).
    """

    game: str
    algorithm: str
    suite: str
    seed: int
    agent_steps: np.ndarray
    values: np.ndarray


def _float(text: str | None) -> float:
    return float(text) if text not in (None, "") else math.nan


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_curves(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    file_name: str,
    column: str,
) -> list[Curve]:
    """Per-seed series of `column` against ``agent_steps`` from each run's `file_name`.

    Args:
      run_dirs_or_root: see `dsqn.reports.runs.resolve_run_dirs`; only run directories that have
        `file_name` and ``config.json`` are read.
      file_name: ``"evaluations.csv"`` or ``"metrics.csv"``.
      column: a column of that file, e.g. ``"return_mean"``.

    Returns:
      The curves, one per seed (per agent, i.e. seed and sweep point, in a sweep run); runs
      whose file lacks `column` or has no rows contribute none.

    Raises:
      FileNotFoundError: no run directory has `file_name`.
      ValueError: a file lacks the ``seed`` or ``agent_steps`` column, or a sweep run's file
        lacks a swept field's column.
    """
    curves = []
    for run_dir in resolve_run_dirs(run_dirs_or_root, required=(rd.CONFIG, file_name)):
        algorithm, game, suite = read_identity(run_dir)
        sweep = read_sweep(run_dir)
        rows = _read_rows(run_dir / file_name)
        if not rows or column not in rows[0]:
            # Not every run logs every column (a converted SNN has no training metrics).
            continue
        if not {"seed", "agent_steps", *sweep} <= rows[0].keys():
            raise ValueError(
                f"{run_dir / file_name} lacks one of the columns "
                f"{', '.join(['seed', *sweep, 'agent_steps'])}; it has {', '.join(rows[0])}"
            )
        by_agent: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for row in rows:
            value = _float(row[column])
            if not math.isnan(value):
                label = point_label(algorithm, {p: float(row[p]) for p in sweep})
                agent = (label, int(row["seed"]))
                by_agent.setdefault(agent, []).append((_float(row["agent_steps"]), value))
        for (label, seed), points in sorted(
            by_agent.items(), key=lambda item: (algorithm_sort_key(item[0][0]), item[0][1])
        ):
            points.sort()
            steps, values = zip(*points, strict=True)
            curves.append(Curve(game, label, suite, seed, np.array(steps), np.array(values)))
    return curves


# ----------------------------------------------------------------------------- aggregation


@dataclasses.dataclass(frozen=True)
class AggregatedCurve:
    """Mean over curves at each x value, with a band.

    Attributes:
      agent_steps: [N] the union of the curves' x values.
      mean, low, high: [N] mean and band edges over the curves that have a value there.
      counts: [N] how many curves have a value there.
    """

    agent_steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    counts: np.ndarray


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(values) + 1) - starts)


def aggregate(curves: Sequence[Curve], band: str = "minmax", smoothing: int = 1) -> AggregatedCurve:
    """Mean and band over curves, at every x value any curve has.

    Args:
      curves: the seeds (of one game and algorithm).
      band: ``"minmax"`` or ``"std"`` (sample std, ddof 1; zero width with one curve).
      smoothing: trailing rolling-mean window, in log points, applied to each curve first
        (1 = none).

    Raises:
      ValueError: an unknown band, or smoothing < 1.
    """
    check_choice("band", band, BANDS)
    if smoothing < 1:
        raise ValueError(f"smoothing must be a window of >= 1 log points, got {smoothing}")
    steps = np.unique(np.concatenate([c.agent_steps for c in curves]))
    table = np.full((len(curves), len(steps)), np.nan)
    for i, c in enumerate(curves):
        table[i, np.searchsorted(steps, c.agent_steps)] = _rolling_mean(c.values, smoothing)
    present = ~np.isnan(table)
    counts = present.sum(axis=0)
    mean = np.nanmean(table, axis=0)
    if band == "minmax":
        low, high = np.nanmin(table, axis=0), np.nanmax(table, axis=0)
    else:
        squares = np.where(present, (table - mean) ** 2, 0.0).sum(axis=0)
        std = np.sqrt(squares / np.maximum(counts - 1, 1))
        low, high = mean - std, mean + std
    return AggregatedCurve(steps, mean, low, high, counts)


# ----------------------------------------------------------------------------- late firing rates


def metrics_firing_rates(
    path: Path, point: Mapping[str, float] | None = None
) -> dict[str, list[float]]:
    """The firing rates of a ``metrics.csv`` late in training (acting with exploration).

    Returns:
      Layer -> one value per agent (a seed, and in a sweep run a sweep point: the columns
      before ``agent_steps``): the mean of its ``firing_rate_<layer>`` over that agent's last
      `FIRING_RATE_TAIL` of log points. ``point`` (swept column -> value) keeps only one sweep
      point's agents.
    """
    rows = _read_rows(path)
    if point:
        rows = [r for r in rows if all(np.isclose(_float(r.get(c)), v) for c, v in point.items())]
    header = list(rows[0]) if rows else []
    layers = [c.removeprefix("firing_rate_") for c in header if c.startswith("firing_rate_")]
    identity = header[: header.index("agent_steps")] if "agent_steps" in header else ["seed"]
    per_agent: dict[str, list[float]] = {layer: [] for layer in layers}
    by_agent: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for row in rows:
        by_agent.setdefault(tuple(row[c] for c in identity), []).append(row)
    for agent in sorted(by_agent, key=lambda key: tuple(map(_float, key))):
        agent_rows = sorted(by_agent[agent], key=lambda r: _float(r["agent_steps"]))
        for layer in layers:
            values = [
                v for r in agent_rows if not math.isnan(v := _float(r[f"firing_rate_{layer}"]))
            ]
            if values:
                tail = values[-max(1, math.ceil(FIRING_RATE_TAIL * len(values))) :]
                per_agent[layer].append(float(np.mean(tail)))
    return {layer: values for layer, values in per_agent.items() if values}
