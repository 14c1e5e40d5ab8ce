"""The report's figures written as PNG files (``dsqn report``): `write_all_plots`, and a
``plot_*`` writer per kind of figure.

The figures themselves are matplotlib Figures returned by name, for notebooks (display or
restyle them), from the modules that draw them:

- :mod:`dsqn.reports.curve_figures`: learning curves (the paper's figures 7 and 8) and training
  curves, the mean over seeds with a band;
- :mod:`dsqn.reports.bar_figures`: firing rate per layer and energy per action;
- :mod:`dsqn.reports.score_figures`: performance profiles (Agarwal et al. 2021) and, for sweep
  runs, the score against each swept value.

Every function takes what `dsqn.reports.runs.resolve_run_dirs` takes (a root searched
recursively, a run directory, or a list of either). Figures are made without pyplot, so
importing this module leaves matplotlib's backend as it was and no figure stays open in
pyplot's registry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure

from dsqn.reports.bar_figures import energy_figures, firing_rate_figures
from dsqn.reports.curve_figures import learning_curve_figures, training_curve_figures
from dsqn.reports.results import PROTOCOL_TITLES
from dsqn.reports.runs import resolve_run_dirs
from dsqn.reports.score_figures import performance_profile_figure, sensitivity_figures
from dsqn.rundir import files as rd

__all__ = [
    "save_figures",
    "plot_learning_curves",
    "plot_training_curves",
    "plot_firing_rates",
    "plot_energy",
    "write_all_plots",
]


def save_figures(figures: dict[str, Figure], out_dir: str | os.PathLike) -> list[Path]:
    """Saves each figure as ``<out_dir>/<name>.png``; returns the paths."""
    paths = []
    for name, fig in figures.items():
        path = Path(out_dir) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    return paths


def plot_learning_curves(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    metric: str = "return_mean",
    x: str = "agent_steps",
    band: str = "minmax",
) -> list[Path]:
    """`learning_curve_figures` saved as PNG files in ``out_dir``; returns the paths."""
    return save_figures(learning_curve_figures(run_dirs_or_root, metric, x, band), out_dir)


def plot_training_curves(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    x: str = "agent_steps",
    band: str = "minmax",
    smoothing: int = 1,
) -> list[Path]:
    """`training_curve_figures` saved as PNG files in ``out_dir``; returns the paths."""
    return save_figures(training_curve_figures(run_dirs_or_root, x, band, smoothing), out_dir)


def plot_firing_rates(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
) -> list[Path]:
    """`firing_rate_figures` saved as PNG files in ``out_dir``; returns the paths."""
    return save_figures(firing_rate_figures(run_dirs_or_root), out_dir)


def plot_energy(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
) -> list[Path]:
    """`energy_figures` saved as PNG files in ``out_dir``; returns the paths."""
    return save_figures(energy_figures(run_dirs_or_root), out_dir)


def write_all_plots(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    x: str = "agent_steps",
    band: str = "minmax",
) -> list[Path]:
    """Every figure of the report, for the runs that have the files each one needs.

    Returns:
      All PNG paths written.

    Raises:
      FileNotFoundError: no run directory with a ``config.json`` was found.
    """
    run_dirs = resolve_run_dirs(run_dirs_or_root, required=(rd.CONFIG,))
    paths: list[Path] = []
    for file_name, plot in (
        (
            rd.EVALUATIONS_CSV,
            lambda: plot_learning_curves(run_dirs, out_dir, "return_mean", x, band),
        ),
        (
            rd.EVALUATIONS_CSV,
            lambda: plot_learning_curves(run_dirs, out_dir, "average_max_q", x, band),
        ),
        (rd.METRICS, lambda: plot_training_curves(run_dirs, out_dir, x, band)),
    ):
        if any((d / file_name).is_file() for d in run_dirs):
            paths += plot()
    paths += plot_firing_rates(run_dirs, out_dir)
    paths += plot_energy(run_dirs, out_dir)
    scored = [d for d in run_dirs if (d / rd.EVALUATION).is_file()]
    for protocol in PROTOCOL_TITLES if scored else ():
        figure = performance_profile_figure(scored, protocol)
        if figure is not None:
            paths += save_figures({f"performance_profile_{protocol}": figure}, out_dir)
        paths += save_figures(sensitivity_figures(scored, protocol), out_dir)
    return paths
