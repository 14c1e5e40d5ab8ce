"""Bar charts per game: the firing rate of each layer, and the energy per action of the SNN, the
ANN and the conversion-based SNN, one bar per algorithm (each point of a sweep run is one).

- Firing rate per layer: from ``energy.json`` where present (for a sweep point, its agents'
  entries), otherwise ``metrics.csv``'s ``firing_rate_<layer>`` columns averaged over the last
  10% of each seed's log points (the trained policy, acting with exploration; see
  `dsqn.reports.curves.metrics_firing_rates`).
- Energy per action: SNN, ANN and conversion-based SNN from ``energy.json``, log scale.

Run directories need only a ``config.json``: a run without ``evaluation.json`` still gets bars.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dsqn.reports.curves import metrics_firing_rates
from dsqn.reports.drawing import algorithm_color, safe_name
from dsqn.reports.runs import (
    by_game_and_algorithm,
    point_energies,
    point_label,
    read_identity,
    read_sweep,
    resolve_run_dirs,
    sweep_points,
)
from dsqn.reports.tables import energy_firing_rates
from dsqn.rundir import files as rd

__all__ = ["firing_rate_figures", "energy_figures"]

_ENERGY_KINDS = (("snn", "SNN"), ("ann", "ANN"), ("converted_snn", "converted SNN"))


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
    for run_dir in resolve_run_dirs(run_dirs_or_root, required=(rd.CONFIG,)):
        name, game, _ = read_identity(run_dir)
        energy = rd.read_energy(run_dir)
        seeds = rd.read_config_data(run_dir).get("run", {}).get("seeds", [])
        for values in sweep_points(read_sweep(run_dir)):
            source = _BarSource(run_dir, values, point_energies(energy, values, seeds))
            grouped.setdefault(game, {}).setdefault(point_label(name, values), []).append(source)
    return by_game_and_algorithm(grouped)


def _bar_chart(
    groups: Sequence[str],
    series: dict[str, list[float | None]],
    colors: dict[str, tuple[float, ...]],
    inches: float,
) -> tuple[Figure, Axes]:
    """A figure `inches` wide with the bars of each series side by side within each group;
    None draws no bar."""
    fig = Figure(figsize=(inches, 3.8))
    ax = fig.subplots()
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        present = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if present:
            ax.bar(*zip(*present, strict=True), width=width, label=label, color=colors[label])
    ax.set_xticks(range(len(groups)), groups)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


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
                from_energy = [r for e in source.energies if (r := energy_firing_rates(e))]
                if from_energy:
                    sources.add(rd.ENERGY)
                    for rates_ in from_energy:
                        for layer, rate in rates_.items():
                            values.setdefault(layer, []).append(rate)
                elif metrics_path.is_file():
                    from_metrics = metrics_firing_rates(metrics_path, source.values)
                    if from_metrics:
                        sources.add("training metrics")
                    for layer, seed_rates in from_metrics.items():
                        values.setdefault(layer, []).extend(seed_rates)
            if values:
                label = f"{algorithm} ({', '.join(sorted(sources))})"
                rates[label] = {layer: float(np.mean(v)) for layer, v in values.items()}
        if not rates:
            continue
        layers = list(dict.fromkeys(layer for by_layer in rates.values() for layer in by_layer))
        series = {
            label: [by_layer.get(layer) for layer in layers] for label, by_layer in rates.items()
        }
        colors = {label: algorithm_color(label.split(" (")[0]) for label in rates}
        fig, ax = _bar_chart(layers, series, colors, inches=1.2 + 1.3 * len(layers))
        ax.set(title=f"{game}: firing rate per layer", ylabel="spikes per neuron per time step")
        ax.legend(fontsize="small")
        figures[f"firing_rates_{safe_name(game)}"] = fig
    return figures


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
        fig, ax = _bar_chart(algorithms, series, colors, inches=1.5 + 1.6 * len(algorithms))
        ax.set_yscale("log")
        smallest = min(v for values in series.values() for v in values if v is not None)
        ax.set_ylim(bottom=smallest / 3)
        ax.set(title=f"{game}: energy per action", ylabel="nJ per action (log scale)")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        figures[f"energy_{safe_name(game)}"] = fig
    return figures
