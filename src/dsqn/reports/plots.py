"""Figures of many run directories: learning curves, training curves, firing rates, energy.

Every function takes what `dsqn.reports.runs.resolve_run_dirs` takes (a root searched recursively,
a run directory, or a list of either). The ``*_figures`` functions return matplotlib Figures by name
(for notebooks: display or restyle them); the ``plot_*`` functions save them as PNG files and
return the paths. Figures are made without pyplot, so importing this module leaves matplotlib's
backend as it was and no figure stays open in pyplot's registry. Run directories of the same
game and algorithm are pooled: each (run directory, seed) is one curve, and a figure draws the
mean over curves at each x value with a band that is either the min-max range over seeds
(``band="minmax"``, the default) or the mean ± one sample standard deviation (``band="std"``);
the legend says which.

- Learning curves (the paper's figures 7 and 8): ``evaluations.csv``'s ``return_mean`` (the
  evaluation score) and ``average_max_q`` (the paper's average max Q: per episode the maximum
  over greedy steps of ``max_a Q``, averaged over episodes) against agent steps or frames.
- Training curves: ``metrics.csv``'s ``episode_return`` (raw full-game return of the games
  completed since the previous log point) against agent steps or frames.
- Firing rate per layer: from ``energy.json`` where present, otherwise ``metrics.csv``'s
  ``firing_rate_<layer>`` columns averaged over the last 10% of each seed's log points (the
  trained policy, acting with exploration).
- Energy per action: SNN, ANN and conversion-based SNN from ``energy.json``, log scale.
- Performance profiles (Agarwal et al. 2021): the fraction of (seed, game) human-normalised
  scores above each threshold, with 95% stratified-bootstrap bands (:mod:`dsqn.reports.aggregates`).
- Sweep runs: each sweep point is an algorithm of its own (``"dsqn [network.tau=1.5]"``, see
  `dsqn.reports.runs.point_label`), so learning and training curves draw one curve per point with
  a band over its seeds, the points of one sweep in shades of one colour map; the firing-rate
  and energy bar charts draw one bar per point (from its agents' rows and ``energy.json``
  entries); the sensitivity figure draws the final policy's score against each swept value,
  with standard-error bars.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dsqn.reports import aggregates
from dsqn.reports.results import PROTOCOL_TITLES, collect
from dsqn.reports.runs import (
    ALGORITHM_ORDER,
    algorithm_sort_key,
    game_sort_key,
    parse_label,
    point_energies,
    point_label,
    read_identity,
    read_sweep,
    resolve_run_dirs,
    sweep_points,
)
from dsqn.reports.tables import human_normalized_matrix, sensitivity_groups, sensitivity_table
from dsqn.rundir import files as rd

__all__ = [
    "BANDS",
    "X_AXES",
    "X_UNITS",
    "Curve",
    "AggregatedCurve",
    "read_curves",
    "aggregate",
    "learning_curve_figures",
    "training_curve_figures",
    "firing_rate_figures",
    "energy_figures",
    "performance_profile_figure",
    "sensitivity_figures",
    "plot_learning_curves",
    "plot_training_curves",
    "plot_firing_rates",
    "plot_energy",
    "save_figures",
    "write_all_plots",
]

BANDS: tuple[str, ...] = ("minmax", "std")
"""Band around the mean over seeds: min-max range, or mean ± one sample standard deviation."""

X_AXES: tuple[str, ...] = ("agent_steps", "frames")
"""x-axis units: agent steps (decisions), or emulator frames = agent steps x frame skip."""

FIRING_RATE_TAIL = 0.1
"""Fraction of each seed's last log points whose ``firing_rate_<layer>`` values are averaged."""

_BAND_LABELS = {"minmax": "band: min-max over seeds", "std": "band: ±1 std over seeds"}
_ENERGY_KINDS = (("snn", "SNN"), ("ann", "ANN"), ("converted_snn", "converted SNN"))


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


def _check_choice(name: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


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
    for run_dir in resolve_run_dirs(run_dirs_or_root, required=("config.json", file_name)):
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
    _check_choice("band", band, BANDS)
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


# ----------------------------------------------------------------------------- drawing


def _color(algorithm: str) -> tuple[float, ...]:
    """A fixed color per algorithm, so that every figure matches."""
    index = algorithm_sort_key(algorithm)[0]
    if index < len(ALGORITHM_ORDER):
        return matplotlib.colormaps["tab10"](index)
    # Stable across runs (unlike hash()), and apart from the tab10 colours of known algorithms.
    return matplotlib.colormaps["Dark2"](sum(map(ord, algorithm)) % 8)


def _colors(algorithms: Iterable[str]) -> dict[str, tuple[float, ...]]:
    """`_color` of each algorithm, except the points of a sweep: shades of viridis in the order
    of their values, so that a sweep reads as a progression."""
    algorithms = sorted(set(algorithms), key=algorithm_sort_key)
    points: dict[str, list[str]] = {}
    for label in algorithms:
        name, point = parse_label(label)
        if point:
            points.setdefault(name, []).append(label)
    colors = {label: _color(label) for label in algorithms}
    for labels in points.values():
        colors.update(zip(labels, _shades(len(labels)), strict=True))
    return colors


def _shades(n: int) -> list[tuple[float, ...]]:
    """n colours of viridis, dark to light (its yellow end left out, too pale on white)."""
    return [matplotlib.colormaps["viridis"](0.9 * i / max(n - 1, 1)) for i in range(n)]


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _x_scale(x: str, suite: str) -> float:
    _check_choice("x", x, X_AXES)
    if x == "agent_steps":
        return 1.0
    try:
        return float(rd.frames_per_agent_step(suite))
    except ValueError as e:
        raise ValueError(f"{e} (or plot against x='agent_steps')") from None


X_UNITS: tuple[tuple[float, str], ...] = ((1e6, "millions"), (1e3, "thousands"), (1.0, ""))
"""x-axis units, largest first: the largest not above the axis's largest value is used."""


def _x_unit(curves: Sequence[Curve], x: str) -> tuple[float, str]:
    """The unit of the x axis, from the range of the values plotted: ``(divisor, name)``."""
    largest = max(
        (c.agent_steps.max(initial=0.0) * _x_scale(x, c.suite) for c in curves), default=0
    )
    return next(((d, name) for d, name in X_UNITS if largest >= d), X_UNITS[-1])


def _x_label(x: str, unit: str) -> str:
    what = "agent steps" if x == "agent_steps" else "emulator frames"
    return f"{what} ({unit})" if unit else what


def _by_game_algorithm(curves: Sequence[Curve]) -> dict[str, dict[str, list[Curve]]]:
    grouped: dict[str, dict[str, list[Curve]]] = {}
    for c in curves:
        grouped.setdefault(c.game, {}).setdefault(c.algorithm, []).append(c)
    return {
        game: {a: grouped[game][a] for a in sorted(grouped[game], key=algorithm_sort_key)}
        for game in sorted(grouped, key=game_sort_key)
    }


def _draw_curves(
    ax: Axes,
    by_algorithm: dict[str, list[Curve]],
    x: str,
    band: str,
    smoothing: int,
    band_label: bool,
    x_divisor: float,
) -> None:
    colors = _colors(by_algorithm)
    for algorithm, curves in by_algorithm.items():
        agg = aggregate(curves, band, smoothing)
        xs = agg.agent_steps * _x_scale(x, curves[0].suite) / x_divisor
        color = colors[algorithm]
        seeds = f"{len(curves)} seed{'s' if len(curves) > 1 else ''}"
        ax.plot(xs, agg.mean, color=color, lw=1.2, label=f"{algorithm} ({seeds})")
        ax.fill_between(xs, agg.low, agg.high, color=color, alpha=0.2, lw=0)
    if band_label:
        ax.plot([], [], " ", label=_BAND_LABELS[band])
    ax.grid(alpha=0.3)


def _grid_shape(n: int) -> tuple[int, int]:
    columns = min(n, 4) if n < 9 else 5 if n < 21 else 6
    return math.ceil(n / columns), columns


def save_figures(figures: dict[str, Figure], out_dir: str | os.PathLike) -> list[Path]:
    """Saves each figure as ``<out_dir>/<name>.png``; returns the paths."""
    paths = []
    for name, fig in figures.items():
        path = Path(out_dir) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    return paths


def _curve_figures(
    curves: Sequence[Curve],
    stem: str,
    y_label: str,
    x: str,
    band: str,
    smoothing: int,
) -> dict[str, Figure]:
    """One figure per game with algorithms overlaid, then one grid of all games."""
    grouped = _by_game_algorithm(curves)
    if not grouped:
        return {}
    smoothing_note = f", rolling mean over {smoothing} log points" if smoothing > 1 else ""
    figures = {}
    for game, by_algorithm in grouped.items():
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        divisor, unit = _x_unit([c for cs in by_algorithm.values() for c in cs], x)
        _draw_curves(ax, by_algorithm, x, band, smoothing, band_label=True, x_divisor=divisor)
        ax.set(title=f"{game}{smoothing_note}", xlabel=_x_label(x, unit), ylabel=y_label)
        ax.legend(fontsize="small")
        figures[f"{stem}_{_safe_name(game)}"] = fig
    rows, columns = _grid_shape(len(grouped))
    legend_inches = 0.6
    height = 2.8 * rows + legend_inches
    fig = Figure(figsize=(3.6 * columns, height))
    axes = fig.subplots(rows, columns, squeeze=False)
    divisor, unit = _x_unit(curves, x)
    for ax, (game, by_algorithm) in zip(axes.flat, grouped.items(), strict=False):
        _draw_curves(ax, by_algorithm, x, band, smoothing, band_label=False, x_divisor=divisor)
        ax.set_title(game, fontsize="medium")
        ax.tick_params(labelsize="small")
    for ax in axes.flat[len(grouped) :]:
        ax.axis("off")
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label.split(" (")[0], handle)
    handles[_BAND_LABELS[band]] = Line2D([], [], ls="")
    fig.supxlabel(_x_label(x, unit))
    fig.supylabel(y_label + smoothing_note)
    fig.tight_layout(rect=(0, 0, 1, 1 - legend_inches / height))
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=min(len(handles), 6))
    figures[f"{stem}_all_games"] = fig
    return figures


_LEARNING_METRICS = {
    "return_mean": "evaluation score",
    "average_max_q": "average max Q (per-episode max over greedy steps)",
    "average_mean_max_q": "mean over steps of max Q",
}
"""``evaluations.csv`` columns a learning curve can show -> y-axis label."""


def learning_curve_figures(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    metric: str = "return_mean",
    x: str = "agent_steps",
    band: str = "minmax",
) -> dict[str, Figure]:
    """Evaluation curves from ``evaluations.csv`` (the paper's figures 7 and 8).

    Args:
      run_dirs_or_root: see `dsqn.reports.runs.resolve_run_dirs`.
      metric: ``"return_mean"`` (evaluation score), ``"average_max_q"`` (the paper's average
        max Q) or ``"average_mean_max_q"`` (the mean over episodes of each episode's mean max Q).
      x: ``"agent_steps"`` or ``"frames"``, in millions, thousands or ones, whichever suits
        the range plotted (:data:`X_UNITS`).
      band: ``"minmax"`` or ``"std"`` over seeds.

    Returns:
      ``learning_<metric>_<game>`` per game, then ``learning_<metric>_all_games`` (a grid).
    """
    _check_choice("metric", metric, tuple(_LEARNING_METRICS))
    _check_choice("x", x, X_AXES)
    y_label = _LEARNING_METRICS[metric]
    curves = read_curves(run_dirs_or_root, "evaluations.csv", metric)
    return _curve_figures(curves, f"learning_{metric}", y_label, x, band, 1)


def plot_learning_curves(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    metric: str = "return_mean",
    x: str = "agent_steps",
    band: str = "minmax",
) -> list[Path]:
    """`learning_curve_figures` saved as PNG files in ``out_dir``; returns the paths."""
    return save_figures(learning_curve_figures(run_dirs_or_root, metric, x, band), out_dir)


def training_curve_figures(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    x: str = "agent_steps",
    band: str = "minmax",
    smoothing: int = 1,
) -> dict[str, Figure]:
    """Training episode return from ``metrics.csv`` per game, algorithms overlaid.

    Args:
      run_dirs_or_root: see `dsqn.reports.runs.resolve_run_dirs`.
      x: ``"agent_steps"`` or ``"frames"``, in millions, thousands or ones, whichever suits
        the range plotted (:data:`X_UNITS`).
      band: ``"minmax"`` or ``"std"`` over seeds.
      smoothing: trailing rolling-mean window in log points (1 = raw; stated on the figure).

    Returns:
      ``training_return_<game>`` per game, then ``training_return_all_games`` (a grid).
    """
    _check_choice("x", x, X_AXES)
    curves = read_curves(run_dirs_or_root, "metrics.csv", "episode_return")
    y_label = "training episode return (raw)"
    return _curve_figures(curves, "training_return", y_label, x, band, smoothing)


def plot_training_curves(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    x: str = "agent_steps",
    band: str = "minmax",
    smoothing: int = 1,
) -> list[Path]:
    """`training_curve_figures` saved as PNG files in ``out_dir``; returns the paths."""
    return save_figures(training_curve_figures(run_dirs_or_root, x, band, smoothing), out_dir)


# ----------------------------------------------------------------------------- bars


def _firing_rates_from_energy(energy: dict) -> dict[str, float]:
    layers = energy.get("layers")
    rates = {}
    for name, stats in (layers if isinstance(layers, dict) else {}).items():
        rate = stats.get("firing_rate") if isinstance(stats, dict) else None
        if isinstance(rate, int | float) and math.isfinite(rate):
            rates[name] = float(rate)
    return rates


def _firing_rates_from_metrics(
    path: Path, point: Mapping[str, float] | None = None
) -> dict[str, list[float]]:
    """Layer -> one value per agent (a seed, and in a sweep run a sweep point: the columns
    before ``agent_steps``): the mean over that agent's last 10% of log points. ``point``
    (swept column -> value) keeps only one sweep point's agents."""
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


class _BarSource(NamedTuple):
    """What the bar charts read of one run directory, or of one point of a sweep run.

    Attributes:
      run_dir: the run directory.
      values: the sweep point (swept config path -> value); empty without a sweep.
      energies: the ``energy.json`` objects that stand for these agents: the whole file, or a
        sweep point's ``per_seed`` entries (`dsqn.reports.runs.point_energies`); empty when the
        run has no ``energy.json``.
    """

    run_dir: Path
    values: dict[str, float]
    energies: tuple[dict, ...]


def _bar_runs(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
) -> dict[str, dict[str, list[_BarSource]]]:
    """Game -> algorithm -> its sources (run directories with a ``config.json``; a sweep run
    gives one source per point, under the point's label, as in the tables and curves)."""
    grouped: dict[str, dict[str, list[_BarSource]]] = {}
    for run_dir in resolve_run_dirs(run_dirs_or_root, required=("config.json",)):
        name, game, _ = read_identity(run_dir)
        energy = rd.read_energy(run_dir)
        seeds = rd.read_config_data(run_dir).get("run", {}).get("seeds", [])
        for values in sweep_points(read_sweep(run_dir)):
            source = _BarSource(run_dir, values, point_energies(energy, values, seeds))
            grouped.setdefault(game, {}).setdefault(point_label(name, values), []).append(source)
    return {
        game: {a: grouped[game][a] for a in sorted(grouped[game], key=algorithm_sort_key)}
        for game in sorted(grouped, key=game_sort_key)
    }


def _grouped_bars(
    ax: Axes,
    groups: Sequence[str],
    series: dict[str, list[float | None]],
    colors: dict[str, tuple[float, ...]],
) -> None:
    """Bars of each series side by side within each group; None draws no bar."""
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        present = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if present:
            ax.bar(*zip(*present, strict=True), width=width, label=label, color=colors[label])
    ax.set_xticks(range(len(groups)), groups)
    ax.grid(axis="y", alpha=0.3)


def firing_rate_figures(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
) -> dict[str, Figure]:
    """Per game, a bar chart of the mean firing rate per layer, one bar per algorithm.

    A run's rates come from its ``energy.json`` (evaluation games at the run's evaluation
    epsilon, as measured by ``dsqn energy``) when present, otherwise from ``metrics.csv``'s
    ``firing_rate_<layer>`` columns (acting during training; see the module docstring); the
    legend names the source. Rates are averaged over the run directories and seeds of an
    algorithm; each point of a sweep run is an algorithm of its own. Games without any rate
    get no figure.

    Returns:
      ``firing_rates_<game>`` per game.
    """
    figures = {}
    for game, by_algorithm in _bar_runs(run_dirs_or_root).items():
        rates: dict[str, dict[str, float]] = {}
        for algorithm, bar_sources in by_algorithm.items():
            values: dict[str, list[float]] = {}
            sources = set()
            for source in bar_sources:
                metrics_path = source.run_dir / rd.METRICS
                from_energy = [r for e in source.energies if (r := _firing_rates_from_energy(e))]
                if from_energy:
                    sources.add("energy.json")
                    for rates_ in from_energy:
                        for layer, rate in rates_.items():
                            values.setdefault(layer, []).append(rate)
                elif metrics_path.is_file():
                    from_metrics = _firing_rates_from_metrics(metrics_path, source.values)
                    if from_metrics:
                        sources.add("training metrics")
                    for layer, seed_rates in from_metrics.items():
                        values.setdefault(layer, []).extend(seed_rates)
            if values:
                label = f"{algorithm} ({', '.join(sorted(sources))})"
                rates[label] = {layer: float(np.mean(v)) for layer, v in values.items()}
        if not rates:
            continue
        layers: list[str] = []
        for by_layer in rates.values():
            layers += [layer for layer in by_layer if layer not in layers]
        series = {
            label: [by_layer.get(layer) for layer in layers] for label, by_layer in rates.items()
        }
        colors = {label: _color(label.split(" (")[0]) for label in rates}
        fig = Figure(figsize=(1.2 + 1.3 * len(layers), 3.8))
        ax = fig.subplots()
        _grouped_bars(ax, layers, series, colors)
        ax.set(title=f"{game}: firing rate per layer", ylabel="spikes per neuron per time step")
        ax.legend(fontsize="small")
        figures[f"firing_rates_{_safe_name(game)}"] = fig
    return figures


def plot_firing_rates(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
) -> list[Path]:
    """`firing_rate_figures` saved as PNG files in ``out_dir``; returns the paths."""
    return save_figures(firing_rate_figures(run_dirs_or_root), out_dir)


def energy_figures(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
) -> dict[str, Figure]:
    """Per game, energy per action (nJ, log scale) of SNN, ANN and converted SNN per algorithm.

    Values come from ``energy.json``'s ``energy_per_action_nj``, averaged over the algorithm's
    run directories (for a sweep point, over its agents' entries); a missing or null value
    draws no bar. Games without any ``energy.json`` get no figure.

    Returns:
      ``energy_<game>`` per game.
    """
    figures = {}
    for game, by_algorithm in _bar_runs(run_dirs_or_root).items():
        algorithms, series = [], {label: [] for _, label in _ENERGY_KINDS}
        for algorithm, bar_sources in by_algorithm.items():
            energies = [e for source in bar_sources for e in source.energies]
            per_action = [e.get("energy_per_action_nj") for e in energies if e]
            per_action = [p for p in per_action if isinstance(p, dict)]
            if not per_action:
                continue
            algorithms.append(algorithm)
            for key, label in _ENERGY_KINDS:
                values = [
                    float(p[key])
                    for p in per_action
                    if isinstance(p.get(key), int | float) and p[key] > 0
                ]
                series[label].append(float(np.mean(values)) if values else None)
        if not algorithms:
            continue
        series = {label: v for label, v in series.items() if any(x is not None for x in v)}
        cmap = matplotlib.colormaps["Set2"]
        colors = {label: cmap(i) for i, (_, label) in enumerate(_ENERGY_KINDS)}
        fig = Figure(figsize=(1.5 + 1.6 * len(algorithms), 3.8))
        ax = fig.subplots()
        _grouped_bars(ax, algorithms, series, colors)
        ax.set_yscale("log")
        smallest = min(v for values in series.values() for v in values if v is not None)
        ax.set_ylim(bottom=smallest / 3)
        ax.set(title=f"{game}: energy per action", ylabel="nJ per action (log scale)")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        figures[f"energy_{_safe_name(game)}"] = fig
    return figures


def plot_energy(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
) -> list[Path]:
    """`energy_figures` saved as PNG files in ``out_dir``; returns the paths."""
    return save_figures(energy_figures(run_dirs_or_root), out_dir)


def performance_profile_figure(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    protocol: str = "best",
    reps: int = 2_000,
) -> Figure | None:
    """Performance profiles (Agarwal et al. 2021) of every algorithm under ``protocol``: the
    fraction of its (seed, game) human-normalised scores above each threshold tau, with a 95%
    stratified-bootstrap band. Algorithms whose games have different seed counts are left out
    (see `dsqn.reports.tables.aggregate_table`). None when no algorithm is on a game with reference
    scores (run directories need an ``evaluation.json``)."""
    results = collect(run_dirs_or_root)
    matrices = {}
    for algorithm in results.algorithms:
        try:
            found = human_normalized_matrix(results, algorithm, protocol)
        except ValueError:
            continue
        if found is not None:
            matrices[algorithm] = found
    if not matrices:
        return None
    highest = max(float(m.max()) for _, m in matrices.values())
    taus = np.linspace(0.0, max(highest, 1.0) * 1.05, 101)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for algorithm, (games, matrix) in matrices.items():
        fraction, low, high = aggregates.performance_profile(matrix, taus, reps=reps)
        color = _color(algorithm)
        label = f"{algorithm} ({len(games)} games x {matrix.shape[0]} seeds)"
        ax.plot(taus, fraction, color=color, lw=1.5, label=label)
        ax.fill_between(taus, low, high, color=color, alpha=0.2, lw=0)
    ax.set(
        title=f"Performance profile: {PROTOCOL_TITLES[protocol]}",
        xlabel=r"human-normalised score $\tau$",
        ylabel=r"fraction of runs with score > $\tau$",
        ylim=(0, 1.02),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


LOG_SCALE_SPAN = 10.0
"""A sensitivity figure's x axis is logarithmic when its (positive) values span more than this
factor, as learning rates and Adam's epsilon do."""


def _log_x(values: Sequence[float]) -> bool:
    return min(values) > 0 and max(values) / min(values) > LOG_SCALE_SPAN


def sensitivity_figures(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    protocol: str = "final",
) -> dict[str, Figure]:
    """The score of `protocol` against each swept value (`dsqn.reports.tables.sensitivity_table`).

    One figure per game, algorithm and swept field: the mean over seeds of each sweep point's
    score, with error bars of one standard error (``s / sqrt(n)``; none with one seed). With
    several swept fields, one line per combination of the other fields' values. The x axis is
    logarithmic when the values span more than :data:`LOG_SCALE_SPAN`.

    Returns:
      ``sensitivity_<protocol>_<game>_<algorithm>_<field>``; none without a sweep run (run
      directories need an ``evaluation.json``).
    """
    _check_choice("protocol", protocol, tuple(PROTOCOL_TITLES))
    figures = {}
    groups = sensitivity_groups(sensitivity_table(collect(run_dirs_or_root)))
    for (game, algorithm, fields), rows in groups.items():
        for i, field in enumerate(fields):
            lines: dict[str, list[tuple[float, float, float]]] = {}
            for row in rows:
                mean = getattr(row, f"{protocol}_mean")
                if mean is None:
                    continue
                others = [
                    f"{f}={v:g}" for f, v in zip(fields, row.values, strict=True) if f != field
                ]
                se = getattr(row, f"{protocol}_se")
                lines.setdefault(", ".join(others) or algorithm, []).append(
                    (row.values[i], mean, 0.0 if se is None else se)
                )
            if not lines:
                continue
            fig = Figure(figsize=(5, 3.6))
            ax = fig.subplots()
            colors = _shades(len(lines)) if len(lines) > 1 else [_color(algorithm)]
            for color, (label, points) in zip(colors, lines.items(), strict=True):
                xs, means, ses = np.array(sorted(points)).T
                ax.errorbar(xs, means, yerr=ses, color=color, marker="o", capsize=3, label=label)
            xs = sorted({x for points in lines.values() for x, _, _ in points})
            if _log_x(xs):
                ax.set_xscale("log")
                ax.minorticks_off()
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.set(
                title=f"{game}: {algorithm}, {PROTOCOL_TITLES[protocol].split(',')[0]}",
                xlabel=field + (" (log scale)" if _log_x(xs) else ""),
                ylabel="evaluation score (± 1 SE over seeds)",
            )
            if len(lines) > 1:
                ax.legend(fontsize="small")
            ax.grid(alpha=0.3)
            name = f"sensitivity_{protocol}_{_safe_name(game)}_{_safe_name(algorithm)}_{field}"
            figures[name] = fig
    return figures


def write_all_plots(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    x: str = "agent_steps",
    band: str = "minmax",
) -> list[Path]:
    """Every figure this module makes, for the runs that have the files each one needs.

    Returns:
      All PNG paths written.

    Raises:
      FileNotFoundError: no run directory with a ``config.json`` was found.
    """
    run_dirs = resolve_run_dirs(run_dirs_or_root, required=("config.json",))
    paths: list[Path] = []
    for file_name, plot in (
        (
            "evaluations.csv",
            lambda: plot_learning_curves(run_dirs, out_dir, "return_mean", x, band),
        ),
        (
            "evaluations.csv",
            lambda: plot_learning_curves(run_dirs, out_dir, "average_max_q", x, band),
        ),
        ("metrics.csv", lambda: plot_training_curves(run_dirs, out_dir, x, band)),
    ):
        if any((d / file_name).is_file() for d in run_dirs):
            paths += plot()
    paths += plot_firing_rates(run_dirs, out_dir)
    paths += plot_energy(run_dirs, out_dir)
    scored = [d for d in run_dirs if (d / "evaluation.json").is_file()]
    for protocol in PROTOCOL_TITLES if scored else ():
        figure = performance_profile_figure(scored, protocol)
        if figure is not None:
            paths += save_figures({f"performance_profile_{protocol}": figure}, out_dir)
        paths += save_figures(sensitivity_figures(scored, protocol), out_dir)
    return paths
