"""The report's tables as rows (dataclasses), computed from pooled `Results`.

Each table is under both protocols, ``best`` (the best checkpoint re-evaluated on fresh
episodes: the paper's, optimistic) and ``final`` (the policy at the end of training):

1. Scores: per game and algorithm, mean and sample standard deviation (ddof 1) over seeds of the
   per-seed 30-episode mean, with the number of seeds (`dsqn.reports.results.score_table`).
2. Pairs (e.g. DSQN vs DQN), per game: the paper's percentage ``100 * A / B``, defined only
   where B's score is positive, and the relative-to-random percentage
   ``100 * (A - random) / (B - random)`` (identical to the ratio of human-normalised scores),
   defined only where B beats random. Averages over games of both.
3. Better / equal / worse counts, with "equal" meaning ``|mean_A - mean_B| <= k * SE`` where
   ``SE = sqrt(s_A^2 / n_A + s_B^2 / n_B)`` is the standard error of the difference of the seed
   means (k = 1 by default), and exact equality when either side has a single seed.
4. Human-normalised score per algorithm: mean and median over games.
5. Aggregates over games (Agarwal et al. 2021, see :mod:`dsqn.reports.aggregates`): interquartile
   mean, median, mean and optimality gap of the human-normalised scores of every seed on every
   game with reference scores, each with a 95% stratified-bootstrap confidence interval.
6. Energy and firing rates from ``energy.json`` where present.
7. Sensitivity (sweep runs only): per game, algorithm and swept fields, one row per sweep point
   with the mean, standard error ``s / sqrt(n)`` and number n of seeds of both protocols.

Missing values are never invented: a value that does not exist is None.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dsqn.config.games import has_reference, normalized_score, reference_scores
from dsqn.reports import aggregates
from dsqn.reports.results import Results, ScoreCell
from dsqn.reports.runs import algorithm_sort_key, game_sort_key
from dsqn.rundir.files import PROTOCOLS

__all__ = [
    "DEFAULT_PAIRS",
    "AGGREGATE_REPS",
    "PairRow",
    "PairSummary",
    "HumanNormalizedRow",
    "AggregateRow",
    "EnergyRow",
    "SensitivityRow",
    "compare_pair",
    "summarize_pair",
    "pair_tables",
    "human_normalized_table",
    "human_normalized_matrix",
    "aggregate_table",
    "energy_firing_rates",
    "energy_layers",
    "energy_table",
    "sensitivity_table",
    "sensitivity_groups",
]

DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("dsqn", "dqn"),
    ("double-dsqn", "double-dqn"),
    ("cdsqn", "cdqn"),
    ("dsqn", "converted-snn"),
)
"""(numerator, denominator) pairs compared by default, each only when both were run."""


# ----------------------------------------------------------------------------- pairs


@dataclasses.dataclass(frozen=True)
class PairRow:
    """Algorithm A (numerator) against B (denominator) on one game under one protocol.

    Attributes:
      paper_percent: ``100 * A / B``; None unless B > 0 (a ratio of signed scores has no meaning
        when B is negative or zero: on Pong, -10 against -20 would read as 50%).
      relative_to_random_percent: ``100 * (A - random) / (B - random)``, which equals the ratio of
        human-normalised scores; None unless B beats random, or for a game without references.
      difference: ``mean_A - mean_B``.
      tolerance: the margin within which the two count as equal (k standard errors of the
        difference; 0 when either side has a single seed, i.e. exact equality).
      verdict: ``"better"``, ``"equal"`` or ``"worse"`` (A relative to B).
    """

    numerator: str
    denominator: str
    protocol: str
    game: str
    numerator_mean: float
    denominator_mean: float
    paper_percent: float | None
    relative_to_random_percent: float | None
    difference: float
    tolerance: float
    verdict: str


@dataclasses.dataclass(frozen=True)
class PairSummary:
    """One pair and protocol summed up over the games where both algorithms have a score.

    Attributes:
      games: number of games with both.
      paper_percent_mean: mean over games of `PairRow.paper_percent` where defined.
      paper_percent_games: how many games that mean covers.
      relative_to_random_percent_mean / _median: over games where defined.
      relative_to_random_games: how many games those cover.
      human_normalized_mean_percent: ``100 * mean_g HNS_A / mean_g HNS_B`` over games with
        reference scores; None unless B's mean is positive.
      better, equal, worse: verdict counts.
    """

    numerator: str
    denominator: str
    protocol: str
    games: int
    paper_percent_mean: float | None
    paper_percent_games: int
    relative_to_random_percent_mean: float | None
    relative_to_random_percent_median: float | None
    relative_to_random_games: int
    human_normalized_mean_percent: float | None
    better: int
    equal: int
    worse: int


def _tolerance(a: ScoreCell, b: ScoreCell, equal_within_se: float) -> float:
    if a.std is None or b.std is None:
        return 0.0
    return equal_within_se * math.sqrt(a.std**2 / a.n_seeds + b.std**2 / b.n_seeds)


def compare_pair(
    results: Results,
    numerator: str,
    denominator: str,
    protocol: str,
    equal_within_se: float = 1.0,
) -> list[PairRow]:
    """Per-game comparison of two algorithms, over the games where both have a score.

    Args:
      results: from `dsqn.reports.results.collect`.
      numerator: algorithm A, e.g. ``"dsqn"``.
      denominator: algorithm B, e.g. ``"dqn"``.
      protocol: ``"best"`` or ``"final"``.
      equal_within_se: k; A and B are equal when ``|mean_A - mean_B| <= k * SE`` (see
        `PairRow.tolerance`). 0 asks for exact equality.

    Raises:
      ValueError: an unknown protocol or a negative `equal_within_se`.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if equal_within_se < 0:
        raise ValueError(f"equal_within_se must be >= 0, got {equal_within_se}")
    rows = []
    for game in results.games:
        a = results.cell(game, numerator, protocol)
        b = results.cell(game, denominator, protocol)
        if a is None or b is None:
            continue
        relative = None
        pair = reference_scores(game)
        if pair is not None and b.mean > pair[0]:
            random_score = pair[0]
            relative = 100.0 * (a.mean - random_score) / (b.mean - random_score)
        difference = a.mean - b.mean
        tolerance = _tolerance(a, b, equal_within_se)
        if abs(difference) <= tolerance:
            verdict = "equal"
        else:
            verdict = "better" if difference > 0 else "worse"
        rows.append(
            PairRow(
                numerator=numerator,
                denominator=denominator,
                protocol=protocol,
                game=game,
                numerator_mean=a.mean,
                denominator_mean=b.mean,
                paper_percent=100.0 * a.mean / b.mean if b.mean > 0 else None,
                relative_to_random_percent=relative,
                difference=difference,
                tolerance=tolerance,
                verdict=verdict,
            )
        )
    return rows


def _mean_or_none(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def summarize_pair(
    results: Results, numerator: str, denominator: str, protocol: str, rows: Sequence[PairRow]
) -> PairSummary:
    """Averages and verdict counts of `compare_pair`'s rows."""
    paper = [r.paper_percent for r in rows if r.paper_percent is not None]
    relative = [
        r.relative_to_random_percent for r in rows if r.relative_to_random_percent is not None
    ]
    hns_a, hns_b = [], []
    for r in rows:
        a = results.cell(r.game, numerator, protocol)
        b = results.cell(r.game, denominator, protocol)
        if a is not None and b is not None and a.human_normalized is not None:
            hns_a.append(a.human_normalized)
            hns_b.append(b.human_normalized)
    hns_ratio = None
    if hns_b and statistics.fmean(hns_b) > 0:
        hns_ratio = 100.0 * statistics.fmean(hns_a) / statistics.fmean(hns_b)
    verdicts = [r.verdict for r in rows]
    return PairSummary(
        numerator=numerator,
        denominator=denominator,
        protocol=protocol,
        games=len(rows),
        paper_percent_mean=_mean_or_none(paper),
        paper_percent_games=len(paper),
        relative_to_random_percent_mean=_mean_or_none(relative),
        relative_to_random_percent_median=statistics.median(relative) if relative else None,
        relative_to_random_games=len(relative),
        human_normalized_mean_percent=hns_ratio,
        better=verdicts.count("better"),
        equal=verdicts.count("equal"),
        worse=verdicts.count("worse"),
    )


def pair_tables(
    results: Results, pairs: Sequence[tuple[str, str]] | None = None, equal_within_se: float = 1.0
) -> list[tuple[PairSummary, list[PairRow]]]:
    """Every pair under every protocol: its `summarize_pair` and `compare_pair`'s rows.

    Args:
      results: from `dsqn.reports.results.collect`.
      pairs: (numerator, denominator) pairs; None for `DEFAULT_PAIRS`. Pairs whose algorithms
        were not both run are left out.
      equal_within_se: k of the better / equal / worse tolerance (see `compare_pair`).

    Returns:
      One entry per present pair and protocol, pairs in the given order, protocols in
      ``PROTOCOLS`` order within each pair.
    """
    tables = []
    for a, b in DEFAULT_PAIRS if pairs is None else pairs:
        if a not in results.algorithms or b not in results.algorithms:
            continue
        for protocol in PROTOCOLS:
            rows = compare_pair(results, a, b, protocol, equal_within_se)
            tables.append((summarize_pair(results, a, b, protocol, rows), rows))
    return tables


# ----------------------------------------------------------------------------- human-normalised


@dataclasses.dataclass(frozen=True)
class HumanNormalizedRow:
    """Human-normalised score of one algorithm under one protocol, over the games it was run on.

    Attributes:
      games: names of the games with reference scores that it covers (means over different game
        sets are not comparable; compare rows with the same games).
      mean, median: over those games, of the human-normalised seed mean (1.0 = human).
    """

    algorithm: str
    protocol: str
    games: tuple[str, ...]
    mean: float
    median: float


def human_normalized_table(results: Results) -> list[HumanNormalizedRow]:
    """Mean and median human-normalised score per algorithm and protocol."""
    rows = []
    for protocol in PROTOCOLS:
        for algorithm in results.algorithms:
            by_game = {
                game: cell.human_normalized
                for game in results.games
                if (cell := results.cell(game, algorithm, protocol)) is not None
                and cell.human_normalized is not None
            }
            if by_game:
                values = list(by_game.values())
                rows.append(
                    HumanNormalizedRow(
                        algorithm=algorithm,
                        protocol=protocol,
                        games=tuple(by_game),
                        mean=statistics.fmean(values),
                        median=statistics.median(values),
                    )
                )
    return rows


# ----------------------------------------------------------------------------- aggregates

AGGREGATE_REPS = 50_000
"""Bootstrap replicates of the aggregate confidence intervals (rliable's default)."""


def human_normalized_matrix(
    results: Results, algorithm: str, protocol: str
) -> tuple[tuple[str, ...], np.ndarray] | None:
    """``(games, scores [R, G])``: human-normalised score of each seed (row, in seed order) on
    each game with reference scores (column); None when the algorithm has no such game.

    Raises:
      ValueError: the games have different numbers of seeds (see `aggregates.score_matrix`).
    """
    cells = [
        cell
        for game in results.games
        if has_reference(game) and (cell := results.cell(game, algorithm, protocol)) is not None
    ]
    if not cells:
        return None
    per_game = [[normalized_score(cell.game, x) for x in cell.scores] for cell in cells]
    try:
        matrix = aggregates.score_matrix(per_game)
    except ValueError:
        counts = {cell.game: cell.n_seeds for cell in cells}
        raise ValueError(
            f"{algorithm} ({protocol}) has different numbers of seeds per game {counts}: the "
            "stratified bootstrap needs as many seeds on every game"
        ) from None
    return tuple(cell.game for cell in cells), matrix


@dataclasses.dataclass(frozen=True)
class AggregateRow:
    """Aggregates of one algorithm under one protocol over games and seeds.

    Attributes:
      games: the games with reference scores it covers (compare rows with the same games).
      seeds: seeds per game.
      iqm, median, mean, optimality_gap: human-normalised (1.0 = human), each a point estimate
        with its 95% stratified-bootstrap interval (see :mod:`dsqn.reports.aggregates`).
    """

    algorithm: str
    protocol: str
    games: tuple[str, ...]
    seeds: int
    iqm: aggregates.Interval
    median: aggregates.Interval
    mean: aggregates.Interval
    optimality_gap: aggregates.Interval


def aggregate_table(
    results: Results, reps: int = AGGREGATE_REPS, seed: int = 0
) -> tuple[list[AggregateRow], list[str]]:
    """Aggregates per algorithm and protocol, and the reasons why others were left out."""
    rows, left_out = [], []
    for protocol in PROTOCOLS:
        for algorithm in results.algorithms:
            try:
                found = human_normalized_matrix(results, algorithm, protocol)
            except ValueError as err:
                left_out.append(str(err))
                continue
            if found is None:
                continue
            games, matrix = found
            estimates = {
                name: aggregates.interval_estimate(matrix, metric, reps=reps, seed=seed)
                for name, metric in aggregates.METRICS.items()
            }
            rows.append(AggregateRow(algorithm, protocol, games, matrix.shape[0], **estimates))
    return rows, left_out


# ----------------------------------------------------------------------------- energy


@dataclasses.dataclass(frozen=True)
class EnergyRow:
    """Spike statistics and energy per action of one game x algorithm (``energy.json``).

    Values are means over the run directories that have an ``energy.json`` (for a sweep point,
    over its agents' entries); None where no run reports the value.

    Attributes:
      runs: records averaged: run directories, or a sweep point's agents.
      layer_firing_rates: layer -> mean firing rate (spikes per neuron per time step).
      firing_rate: mean over layers.
      spikes_per_action: all layers, summed over the T time steps of one action.
      synaptic_ops_per_action: spikes times fan-out.
      snn_nj, ann_nj, converted_nj: energy per action in nJ of the spiking network, of the ANN
        of the same architecture, and of the conversion-based SNN.
      ann_over_snn: ``ann_nj / snn_nj``; above 1 the spiking network uses less energy.
    """

    game: str
    algorithm: str
    runs: int
    layer_firing_rates: dict[str, float]
    firing_rate: float | None
    spikes_per_action: float | None
    synaptic_ops_per_action: float | None
    snn_nj: float | None
    ann_nj: float | None
    converted_nj: float | None
    ann_over_snn: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _pooled_value(energies: Sequence[dict[str, Any]], *keys: str) -> float | None:
    return _mean_or_none(_number(_dig(e, *keys)) for e in energies)


def energy_firing_rates(energy: Any) -> dict[str, float]:
    """Layer -> firing rate of one ``energy.json`` object (or a sweep agent's entry of it), in
    the file's layer order; layers without a finite rate are left out."""
    layers = _dig(energy, "layers")
    rates = {}
    for name in layers if isinstance(layers, dict) else ():
        if (rate := _number(_dig(layers, name, "firing_rate"))) is not None:
            rates[name] = rate
    return rates


def energy_layers(rows: Sequence[EnergyRow]) -> list[str]:
    """The layers with a firing rate in any of `rows`, in order of first appearance (the
    columns of the energy tables)."""
    return list(dict.fromkeys(name for row in rows for name in row.layer_firing_rates))


def energy_table(results: Results) -> list[EnergyRow]:
    """One row per game x algorithm with at least one ``energy.json``; missing keys give None."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in results.runs:
        if run.energies:
            grouped.setdefault((run.game, run.algorithm), []).extend(run.energies)
    rows = []
    for game in results.games:
        for algorithm in results.algorithms:
            energies = grouped.get((game, algorithm))
            if not energies:
                continue
            per_energy = [energy_firing_rates(e) for e in energies]
            layer_rates = {
                name: statistics.fmean(r[name] for r in per_energy if name in r)
                for name in dict.fromkeys(name for r in per_energy for name in r)
            }
            snn = _pooled_value(energies, "energy_per_action_nj", "snn")
            ann = _pooled_value(energies, "energy_per_action_nj", "ann")
            rows.append(
                EnergyRow(
                    game=game,
                    algorithm=algorithm,
                    runs=len(energies),
                    layer_firing_rates=layer_rates,
                    firing_rate=_pooled_value(energies, "firing_rate"),
                    spikes_per_action=_pooled_value(energies, "spikes_per_action"),
                    synaptic_ops_per_action=_pooled_value(energies, "synaptic_ops_per_action"),
                    snn_nj=snn,
                    ann_nj=ann,
                    converted_nj=_pooled_value(energies, "energy_per_action_nj", "converted_snn"),
                    ann_over_snn=ann / snn if snn and ann is not None else None,
                )
            )
    return rows


# ----------------------------------------------------------------------------- sensitivity


@dataclasses.dataclass(frozen=True)
class SensitivityRow:
    """One sweep point of one game and algorithm, under both protocols.

    Attributes:
      algorithm: the config's ``name`` (the sweep's points are its variants).
      fields: the swept config paths, in sweep order.
      values: the point's value of each field.
      label: the point's algorithm label in the other tables (`dsqn.reports.runs.point_label`).
      final_mean, best_mean: mean over seeds of the per-seed evaluation mean (None: no score).
      final_se, best_se: standard error of that mean, ``s / sqrt(n)`` with s the sample standard
        deviation (ddof 1); None with fewer than two seeds.
      final_seeds, best_seeds: n, the number of seeds.
    """

    game: str
    algorithm: str
    fields: tuple[str, ...]
    values: tuple[float, ...]
    label: str
    final_mean: float | None
    final_se: float | None
    final_seeds: int
    best_mean: float | None
    best_se: float | None
    best_seeds: int


def sensitivity_table(results: Results) -> list[SensitivityRow]:
    """One row per sweep point of every sweep run, grouped by game, algorithm and swept fields
    (sweep runs with the same ones pool their points), points by value; empty without a sweep."""
    labels = {
        (run.game, run.name, tuple(run.values), tuple(run.values.values())): run.algorithm
        for run in results.runs
        if run.sweep
    }

    def order(key: tuple[str, str, tuple[str, ...], tuple[float, ...]]) -> tuple:
        return (game_sort_key(key[0]), algorithm_sort_key(key[1]), *key[2:])

    rows = []
    for key in sorted(labels, key=order):
        game, name, fields, values = key
        scores: dict[str, Any] = {}
        for protocol in PROTOCOLS:
            cell = results.cell(game, labels[key], protocol)
            scores[f"{protocol}_mean"] = None if cell is None else cell.mean
            scores[f"{protocol}_se"] = None if cell is None else cell.standard_error
            scores[f"{protocol}_seeds"] = 0 if cell is None else cell.n_seeds
        rows.append(SensitivityRow(game, name, fields, values, labels[key], **scores))
    return rows


def sensitivity_groups(
    rows: Sequence[SensitivityRow],
) -> dict[tuple[str, str, tuple[str, ...]], list[SensitivityRow]]:
    """(game, algorithm, fields) -> its rows, in `sensitivity_table`'s order."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[SensitivityRow]] = {}
    for row in rows:
        groups.setdefault((row.game, row.algorithm, row.fields), []).append(row)
    return groups
