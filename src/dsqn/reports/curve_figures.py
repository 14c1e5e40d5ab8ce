"""Curve figures: learning curves (evaluation score and average max Q from ``evaluations.csv``,
the paper's figures 7 and 8) and training curves (``metrics.csv``'s episode return), per game and
in one grid of all games, against agent steps or emulator frames.

- Learning curves: ``evaluations.csv``'s ``return_mean`` (the evaluation score) and
  ``average_max_q`` (the paper's average max Q: per episode the maximum over greedy steps of
  ``max_a Q``, averaged over episodes).
- Training curves: ``metrics.csv``'s ``episode_return`` (raw full-game return of the games
  completed since the previous log point).

Each algorithm is one line, the mean over its seeds with a band (see
:mod:`dsqn.reports.curves`); the legend says which band. The points of a sweep are drawn in
shades of one colour map.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dsqn.reports.curves import Curve, aggregate, read_curves
from dsqn.reports.drawing import algorithm_colors, check_choice, safe_name
from dsqn.reports.runs import by_game_and_algorithm
from dsqn.rundir import files as rd

__all__ = ["X_AXES", "X_UNITS", "learning_curve_figures", "training_curve_figures"]

X_AXES: tuple[str, ...] = ("agent_steps", "frames")
"""x-axis units: agent steps (decisions), or emulator frames = agent steps x frame skip."""

_BAND_LABELS = {"minmax": "band: min-max over seeds", "std": "band: ±1 std over seeds"}


def _x_scale(x: str, suite: str) -> float:
    check_choice("x", x, X_AXES)
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
    return by_game_and_algorithm(grouped)


def _draw_curves(
    ax: Axes,
    by_algorithm: dict[str, list[Curve]],
    x: str,
    band: str,
    smoothing: int,
    band_label: bool,
    x_divisor: float,
) -> None:
    colors = algorithm_colors(by_algorithm)
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
        figures[f"{stem}_{safe_name(game)}"] = fig
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
    check_choice("metric", metric, tuple(_LEARNING_METRICS))
    check_choice("x", x, X_AXES)
    y_label = _LEARNING_METRICS[metric]
    curves = read_curves(run_dirs_or_root, rd.EVALUATIONS_CSV, metric)
    return _curve_figures(curves, f"learning_{metric}", y_label, x, band, 1)


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
    check_choice("x", x, X_AXES)
    curves = read_curves(run_dirs_or_root, rd.METRICS, "episode_return")
    y_label = "training episode return (raw)"
    return _curve_figures(curves, "training_return", y_label, x, band, smoothing)
