"""Figures of the pooled scores: performance profiles (Agarwal et al. 2021) and, for sweep runs,
the score against each swept value.

- Performance profiles: the fraction of (seed, game) human-normalised scores above each
  threshold, with 95% stratified-bootstrap bands (:mod:`dsqn.reports.aggregates`).
- Sensitivity: the final policy's (or best checkpoint's) score against each swept value, with
  standard-error bars (`dsqn.reports.tables.sensitivity_table`).

Both read run directories with an ``evaluation.json`` (`dsqn.reports.results.collect`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure

from dsqn.reports import aggregates
from dsqn.reports.drawing import algorithm_color, check_choice, safe_name, shades
from dsqn.reports.results import PROTOCOL_TITLES, collect
from dsqn.reports.tables import human_normalized_matrix, sensitivity_groups, sensitivity_table

__all__ = ["LOG_SCALE_SPAN", "performance_profile_figure", "sensitivity_figures"]


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
        color = algorithm_color(algorithm)
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
    check_choice("protocol", protocol, tuple(PROTOCOL_TITLES))
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
            colors = shades(len(lines)) if len(lines) > 1 else [algorithm_color(algorithm)]
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
            name = f"sensitivity_{protocol}_{safe_name(game)}_{safe_name(algorithm)}_{field}"
            figures[name] = fig
    return figures
