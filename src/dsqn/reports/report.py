"""Aggregation of many run directories into the paper's tables (Markdown and CSV).

Input is a set of run directories (docs/run_directory.md), given one by one or found under a root
directory by their ``config.json`` + ``evaluation.json``. A run's algorithm is its config's
``name`` (the preset: dqn, dsqn, dsqn-if, converted-snn, ...) and its game is ``env.game``
(``"Pong-v5"`` is read as ``"Pong"``). Run directories holding the same (game, algorithm) pool
their seeds; the same seed twice is an error, since it would count one result twice.

A sweep run (a config with a non-empty ``sweep`` section) holds one algorithm per sweep point,
labelled with the point's values, e.g. ``"dsqn [network.tau=1.5]"`` (`point_label`): every
table treats each point as an algorithm of its own, with its seeds pooled, and a sensitivity
table gives each point's final and best score, mean and standard error over seeds.

Tables, each under both protocols, ``best`` (the best checkpoint re-evaluated on fresh episodes:
the paper's, optimistic) and ``final`` (the policy at the end of training):

1. Scores: per game and algorithm, mean and sample standard deviation (ddof 1) over seeds of the
   per-seed 30-episode mean, with the number of seeds.
2. Pairs (e.g. DSQN vs DQN), per game: the paper's percentage ``100 * A / B``, defined only
   where B's score is positive, and the relative-to-random percentage
   ``100 * (A - random) / (B - random)`` (identical to the ratio of human-normalised scores),
   defined only where B beats random. Averages over games of both.
3. Better / equal / worse counts, with "equal" meaning ``|mean_A - mean_B| <= k * SE`` where
   ``SE = sqrt(s_A^2 / n_A + s_B^2 / n_B)`` is the standard error of the difference of the seed
   means (k = 1 by default), and exact equality when either side has a single seed.
4. Human-normalised score per algorithm: mean and median over games.
5. Aggregates over games (Agarwal et al. 2021, see :mod:`dsqn.reports.aggregates`): interquartile
   mean, median, mean and optimality gap of the human-normalised scores of every seed on every game
   with reference scores, each with a 95% stratified-bootstrap confidence interval.
6. Energy and firing rates from ``energy.json`` where present.
7. Sensitivity (sweep runs only): per game, algorithm and swept fields, one row per sweep point
   with the mean, standard error ``s / sqrt(n)`` and number n of seeds of both protocols.

Every table is also a pandas DataFrame (:func:`frames`, and ``*_frame`` per table) for notebooks.

Missing values are never invented: Markdown shows "—", CSV leaves the field empty.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dsqn.config.games import PAPER_GAMES, REFERENCE_SCORES, canonical_game
from dsqn.reports import aggregates
from dsqn.rundir import files as rd
from dsqn.rundir.files import PROTOCOLS

__all__ = [
    "PROTOCOLS",
    "ALGORITHM_ORDER",
    "DEFAULT_PAIRS",
    "MISSING",
    "Run",
    "ScoreCell",
    "Results",
    "PairRow",
    "PairSummary",
    "HumanNormalizedRow",
    "AggregateRow",
    "EnergyRow",
    "SensitivityRow",
    "sweep_path",
    "point_label",
    "agent_key",
    "parse_label",
    "read_sweep",
    "sweep_points",
    "point_energies",
    "game_sort_key",
    "algorithm_sort_key",
    "find_run_dirs",
    "resolve_run_dirs",
    "read_identity",
    "load_run",
    "load_runs",
    "collect",
    "score_table",
    "compare_pair",
    "summarize_pair",
    "human_normalized_table",
    "human_normalized_matrix",
    "aggregate_table",
    "aggregates_markdown",
    "write_aggregates_csv",
    "scores_frame",
    "rows_frame",
    "frames",
    "energy_table",
    "sensitivity_table",
    "sensitivity_groups",
    "sensitivity_markdown",
    "write_sensitivity_csv",
    "sensitivity_frame",
    "scores_markdown",
    "pairs_markdown",
    "human_normalized_markdown",
    "energy_markdown",
    "report_markdown",
    "write_scores_csv",
    "write_pairs_csv",
    "write_pair_summary_csv",
    "write_human_normalized_csv",
    "write_energy_csv",
    "write_report",
]

PROTOCOL_TITLES: dict[str, str] = {
    "best": "best checkpoint, re-evaluated (the paper's protocol; optimistic)",
    "final": "final policy",
}

ALGORITHM_ORDER: tuple[str, ...] = (
    "dqn",
    "dsqn",
    "dsqn-spike-readout",
    "dsqn-if",
    "dsqn-maxmem",
    "converted-snn",
    "double-dqn",
    "double-dsqn",
    "cdqn",
    "cdsqn",
)
"""Column order of the tables; other algorithms follow alphabetically."""

DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("dsqn", "dqn"),
    ("double-dsqn", "double-dqn"),
    ("cdsqn", "cdqn"),
    ("dsqn", "converted-snn"),
)
"""(numerator, denominator) pairs compared by default, each only when both were run."""

MISSING = "—"
"""What a Markdown table shows for a value that does not exist (CSV leaves the field empty)."""

RUN_FILES: tuple[str, ...] = (rd.CONFIG, rd.EVALUATION)


# ----------------------------------------------------------------------------- loading


@dataclasses.dataclass(frozen=True)
class Run:
    """What the report reads from one run directory, or from one sweep point of a sweep run.

    Attributes:
      run_dir: the directory.
      algorithm: the config's ``name``; for a sweep point, `point_label` of the name and values.
      game: ``env.game`` without an envpool ``-v5`` suffix.
      suite: ``env.suite`` (``"atari"`` or ``"classic"``).
      seed_scores: protocol -> seed -> that seed's evaluation mean (raw full-game score).
      energies: what ``energy.json`` says of these agents: the whole file, or for a sweep point
        its agents' ``per_seed`` entries (keyed by `agent_key`); empty when there is none.
      name: the config's ``name``.
      values: swept config path -> this point's value; empty for a run without a sweep.
      sweep: swept config path -> every value of the run's sweep (see `read_sweep`).
    """

    run_dir: Path
    algorithm: str
    game: str
    suite: str
    seed_scores: dict[str, dict[int, float]]
    energies: tuple[dict[str, Any], ...]
    name: str
    values: dict[str, float] = dataclasses.field(default_factory=dict)
    sweep: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------- sweeps


def sweep_path(field: str) -> str:
    """The config path of a ``sweep`` section field: its first ``_`` becomes ``.``
    (``network_tau`` -> ``network.tau``)."""
    section, underscore, name = field.partition("_")
    if not (section and underscore and name):
        raise ValueError(f"sweep field {field!r} is not <section>_<field>, e.g. network_tau")
    return f"{section}.{name}"


def _point_text(values: Mapping[str, float]) -> list[str]:
    return [f"{path}={value:g}" for path, value in values.items()]


def point_label(name: str, values: Mapping[str, float]) -> str:
    """The algorithm label of a sweep point, ``"dsqn [network.tau=1.5, learner.adam_eps=0.01]"``
    (values as ``f"{v:g}"``, in sweep order); just `name` without swept values."""
    return f"{name} [{', '.join(_point_text(values))}]" if values else name


def agent_key(values: Mapping[str, float], seed: int) -> str:
    """The ``per_seed`` key of a sweep run's agent: ``"network.tau=1.5,seed=0"``."""
    return ",".join([*_point_text(values), f"seed={seed}"])


def parse_label(label: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    """The inverse of `point_label`: ``(name, ((path, value), ...))``; a label that is not a
    sweep point's is its own name with no values."""
    name, bracket, rest = label.partition(" [")
    if not bracket or not rest.endswith("]"):
        return label, ()
    point = []
    for item in rest[:-1].split(", "):
        path, equals, value = item.partition("=")
        try:
            point.append((path, float(value)))
        except ValueError:
            return label, ()
        if not equals:
            return label, ()
    return name, tuple(point)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sweep(config: dict[str, Any], path: Path) -> dict[str, tuple[float, ...]]:
    section = config.get("sweep")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: 'sweep' is {section!r}, not an object of value lists")
    swept = {}
    for field, values in section.items():
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise ValueError(f"{path}: sweep field {field!r} is {values!r}, not a list of numbers")
        if values:
            swept[sweep_path(field)] = tuple(float(v) for v in values)
    return swept


def read_sweep(run_dir: str | os.PathLike) -> dict[str, tuple[float, ...]]:
    """Swept config path -> its values, in the order of ``config.json``'s ``sweep`` section (the
    order of agent keys and CSV columns); empty for a run without a sweep (or an old run whose
    config has no ``sweep`` section)."""
    return _sweep(rd.read_config_data(run_dir), Path(run_dir) / rd.CONFIG)


def sweep_points(sweep: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The Cartesian product of the swept values, first field outermost; one empty point
    without a sweep."""
    return [dict(zip(sweep, point, strict=True)) for point in itertools.product(*sweep.values())]


def _is_run_dir(path: Path, required: Sequence[str]) -> bool:
    return all((path / name).is_file() for name in required)


def find_run_dirs(root: str | os.PathLike, required: Sequence[str] = RUN_FILES) -> list[Path]:
    """Run directories under `root` (itself included): directories holding all `required` files.

    Returns:
      Sorted paths; empty when there are none.

    Raises:
      FileNotFoundError: `root` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"run root {str(root)!r} is not a directory")
    found = []
    for directory, subdirectories, _ in os.walk(root):
        if _is_run_dir(Path(directory), required):
            found.append(Path(directory))
            # A run directory holds no other run; its checkpoints can hold many files.
            subdirectories.clear()
    return sorted(found)


def resolve_run_dirs(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    required: Sequence[str] = RUN_FILES,
) -> list[Path]:
    """Run directories named by a root, a run directory, or a list of either (searched below).

    Raises:
      FileNotFoundError: a path is not a directory, or no run directory was found.
    """
    if isinstance(run_dirs_or_root, str | os.PathLike):
        paths = [Path(run_dirs_or_root)]
    else:
        paths = [Path(p) for p in run_dirs_or_root]
    found: list[Path] = []
    for path in paths:
        found.extend(find_run_dirs(path, required))
    if not found:
        raise FileNotFoundError(
            f"no run directory (a directory holding {' + '.join(required)}) under "
            f"{', '.join(str(p) for p in paths)}"
        )
    return sorted(set(found))


def _config_identity(config: dict[str, Any], path: Path) -> tuple[str, str, str]:
    env = config.get("env")
    if not isinstance(config.get("name"), str) or not isinstance(env, dict) or "game" not in env:
        raise ValueError(f"{path} lacks 'name' or 'env.game' (see docs/run_directory.md)")
    suite = str(env.get("suite", "atari"))
    return config["name"], canonical_game(str(env["game"]), suite), suite


def _protocol_scores(by_protocol: Any) -> dict[str, float]:
    """Protocol -> mean of one ``per_seed`` entry, for the protocols it has a score of."""
    scores = {}
    for protocol in PROTOCOLS:
        entry = by_protocol.get(protocol) if isinstance(by_protocol, dict) else None
        if isinstance(entry, dict) and entry.get("mean") is not None:
            scores[protocol] = float(entry["mean"])
    return scores


def _point_of(
    key: str, entry: Any, sweep: Mapping[str, Sequence[float]], path: Path
) -> tuple[tuple[float, ...], int]:
    """``(values in sweep order, seed)`` of a sweep run's ``per_seed`` entry."""
    seed = entry.get("seed") if isinstance(entry, dict) else None
    values = entry.get("values") if isinstance(entry, dict) else None
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(
            f"{path}: per_seed entry {key!r} of a sweep run lacks an integer 'seed' "
            "(see docs/run_directory.md)"
        )
    if not isinstance(values, dict) or set(values) != set(sweep):
        raise ValueError(
            f"{path}: per_seed entry {key!r} has 'values' {values!r}; the sweep's fields are "
            f"{', '.join(sweep)}"
        )
    point = tuple(values[p] for p in sweep)
    for p, value in zip(sweep, point, strict=True):
        if not _is_number(value) or float(value) not in sweep[p]:
            raise ValueError(
                f"{path}: per_seed entry {key!r} has {p}={value!r}, not a value of the sweep "
                f"({', '.join(f'{v:g}' for v in sweep[p])})"
            )
    return tuple(float(v) for v in point), seed


def _seed_scores(
    evaluation: dict[str, Any], path: Path, sweep: Mapping[str, Sequence[float]]
) -> dict[tuple[float, ...], dict[str, dict[int, float]]]:
    """Sweep point (values in sweep order; ``()`` without a sweep) -> protocol -> seed -> score."""
    per_seed = evaluation.get("per_seed")
    if not isinstance(per_seed, dict):
        raise ValueError(f"{path} lacks the 'per_seed' object (see docs/run_directory.md)")
    scores: dict[tuple[float, ...], dict[str, dict[int, float]]] = {
        tuple(point.values()): {p: {} for p in PROTOCOLS} for point in sweep_points(sweep)
    }
    seen: set[tuple[tuple[float, ...], int]] = set()
    for key, entry in per_seed.items():
        if sweep:
            point, seed = _point_of(key, entry, sweep, path)
            if (point, seed) in seen:
                raise ValueError(f"{path}: per_seed holds agent {key!r} twice")
            seen.add((point, seed))
        elif key.lstrip("-").isdigit():
            point, seed = (), int(key)
        else:
            raise ValueError(f"{path}: per_seed key {key!r} is not an integer seed")
        for protocol, score in _protocol_scores(entry).items():
            scores[point][protocol][seed] = score
    return scores


def point_energies(
    energy: dict[str, Any] | None, values: Mapping[str, float], seeds: Iterable[int]
) -> tuple[dict[str, Any], ...]:
    """The ``energy.json`` objects that stand for a point's agents: for a sweep point, its
    entries of ``per_seed`` (keyed by `agent_key`; the file's top level averages every agent of
    the sweep, so it stands for no single point); without swept values, the whole file."""
    if not values:
        return () if energy is None else (energy,)
    per_seed = energy.get("per_seed") if isinstance(energy, dict) else None
    if not isinstance(per_seed, dict):
        return ()
    entries = (per_seed.get(agent_key(values, seed)) for seed in seeds)
    return tuple(e for e in entries if isinstance(e, dict))


def read_identity(run_dir: str | os.PathLike) -> tuple[str, str, str]:
    """(algorithm, game, suite) of a run directory, from its ``config.json``."""
    return _config_identity(rd.read_config_data(run_dir), Path(run_dir) / rd.CONFIG)


def load_runs(run_dir: str | os.PathLike) -> tuple[Run, ...]:
    """Reads one run directory's ``config.json``, ``evaluation.json`` and ``energy.json``:
    one `Run`, or for a sweep run one per sweep point (in sweep order, first field outermost).

    Raises:
      ValueError: a file breaks docs/run_directory.md (the message names it).
    """
    run_dir = Path(run_dir)
    config = rd.read_config_data(run_dir)
    name, game, suite = _config_identity(config, run_dir / rd.CONFIG)
    sweep = _sweep(config, run_dir / rd.CONFIG)
    scores = _seed_scores(rd.read_evaluation(run_dir), run_dir / rd.EVALUATION, sweep)
    energy = rd.read_energy(run_dir)
    runs = []
    for point, seed_scores in scores.items():
        values = dict(zip(sweep, point, strict=True))
        seeds = sorted({s for by_seed in seed_scores.values() for s in by_seed})
        energies = point_energies(energy, values, seeds)
        runs.append(
            Run(
                run_dir=run_dir,
                algorithm=point_label(name, values),
                game=game,
                suite=suite,
                seed_scores=seed_scores,
                energies=energies,
                name=name,
                values=values,
                sweep=sweep,
            )
        )
    return tuple(runs)


def load_run(run_dir: str | os.PathLike) -> Run:
    """The `Run` of a run directory without a sweep (see `load_runs`).

    Raises:
      ValueError: it is a sweep run (several algorithms: use `load_runs`), or a file breaks
        docs/run_directory.md.
    """
    runs = load_runs(run_dir)
    if len(runs) != 1:
        raise ValueError(
            f"{run_dir} is a sweep run of {len(runs)} points; load_runs reads one Run per point"
        )
    return runs[0]


# ----------------------------------------------------------------------------- pooled scores


@dataclasses.dataclass(frozen=True)
class ScoreCell:
    """One game x algorithm x protocol: the per-seed scores pooled over run directories."""

    game: str
    algorithm: str
    protocol: str
    seeds: tuple[int, ...]
    scores: tuple[float, ...]

    @property
    def n_seeds(self) -> int:
        """Number of seeds."""
        return len(self.scores)

    @property
    def mean(self) -> float:
        """Mean over seeds."""
        return statistics.fmean(self.scores)

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (ddof 1); None with a single seed."""
        return statistics.stdev(self.scores) if self.n_seeds > 1 else None

    @property
    def standard_error(self) -> float | None:
        """Standard error of the mean over seeds, ``std / sqrt(n)``; None with a single seed."""
        return None if self.std is None else self.std / math.sqrt(self.n_seeds)

    @property
    def human_normalized(self) -> float | None:
        """Human-normalised seed mean; None for a game without reference scores."""
        if self.game not in REFERENCE_SCORES:
            return None
        random_score, human_score = REFERENCE_SCORES[self.game]
        return (self.mean - random_score) / (human_score - random_score)


def game_sort_key(game: str) -> tuple[int, str]:
    """Sort key: the paper's 17 games in its order, then other games alphabetically."""
    return (PAPER_GAMES.index(game) if game in PAPER_GAMES else len(PAPER_GAMES), game)


def algorithm_sort_key(algorithm: str) -> tuple[int, str, tuple[tuple[str, float], ...]]:
    """Sort key: `ALGORITHM_ORDER`, then other algorithms alphabetically; a sweep's points
    (`point_label`) follow their algorithm, by their values in sweep order."""
    name, point = parse_label(algorithm)
    order = ALGORITHM_ORDER
    return (order.index(name) if name in order else len(order), name, point)


@dataclasses.dataclass(frozen=True)
class Results:
    """All runs of a report and their pooled score cells.

    Attributes:
      runs: the loaded runs (a sweep run gives one per sweep point, see `load_runs`).
      cells: (game, algorithm, protocol) -> pooled cell, only where at least one seed has a score.
      games: games with at least one run, paper order first, then alphabetical.
      algorithms: algorithms with at least one run, in `ALGORITHM_ORDER`, then alphabetical.
    """

    runs: tuple[Run, ...]
    cells: dict[tuple[str, str, str], ScoreCell]
    games: tuple[str, ...]
    algorithms: tuple[str, ...]

    def cell(self, game: str, algorithm: str, protocol: str) -> ScoreCell | None:
        """The pooled cell, or None when no seed has that score."""
        return self.cells.get((game, algorithm, protocol))


def collect(run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike]) -> Results:
    """Loads run directories (see `resolve_run_dirs`) and pools their seeds per game x algorithm.

    Raises:
      FileNotFoundError: no run directory was found.
      ValueError: a file breaks docs/run_directory.md, or two run directories hold the same seed
        of the same game and algorithm.
    """
    runs = tuple(run for d in resolve_run_dirs(run_dirs_or_root) for run in load_runs(d))
    pooled: dict[tuple[str, str, str], dict[int, tuple[float, Path]]] = {}
    for run in runs:
        for protocol, by_seed in run.seed_scores.items():
            cell = pooled.setdefault((run.game, run.algorithm, protocol), {})
            for seed, score in by_seed.items():
                if seed in cell:
                    raise ValueError(
                        f"seed {seed} of {run.game}/{run.algorithm} appears in two run "
                        f"directories, {cell[seed][1]} and {run.run_dir}; keep one of them"
                    )
                cell[seed] = (score, run.run_dir)
    cells = {
        key: ScoreCell(
            *key,
            seeds=tuple(sorted(by_seed)),
            scores=tuple(by_seed[s][0] for s in sorted(by_seed)),
        )
        for key, by_seed in pooled.items()
        if by_seed
    }
    return Results(
        runs=runs,
        cells=cells,
        games=tuple(sorted({r.game for r in runs}, key=game_sort_key)),
        algorithms=tuple(sorted({r.algorithm for r in runs}, key=algorithm_sort_key)),
    )


def score_table(results: Results) -> list[ScoreCell]:
    """Every pooled cell, ordered by protocol, game, then algorithm."""
    return [
        cell
        for protocol in PROTOCOLS
        for game in results.games
        for algorithm in results.algorithms
        if (cell := results.cell(game, algorithm, protocol)) is not None
    ]


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
      results: from `collect`.
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
        if game in REFERENCE_SCORES and b.mean > REFERENCE_SCORES[game][0]:
            random_score = REFERENCE_SCORES[game][0]
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


def _mean_or_none(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


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


def _present_pairs(
    results: Results, pairs: Sequence[tuple[str, str]] | None
) -> list[tuple[str, str]]:
    if pairs is None:
        pairs = DEFAULT_PAIRS
    return [(a, b) for a, b in pairs if a in results.algorithms and b in results.algorithms]


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
        if game in REFERENCE_SCORES
        and (cell := results.cell(game, algorithm, protocol)) is not None
    ]
    if not cells:
        return None
    per_game = []
    for cell in cells:
        random_score, human_score = REFERENCE_SCORES[cell.game]
        per_game.append([(x - random_score) / (human_score - random_score) for x in cell.scores])
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


def _interval_text(interval: aggregates.Interval) -> str:
    return f"{100 * interval.value:.1f}% [{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def aggregates_markdown(rows: Sequence[AggregateRow], left_out: Sequence[str] = ()) -> str:
    """Algorithm x protocol table of IQM, median, mean and optimality gap with 95% intervals."""
    if not rows and not left_out:
        return "No run is on a game with reference scores."
    header = ["algorithm", "protocol", "games", "seeds", "IQM", "median", "mean", "optimality gap"]
    body = [
        [
            r.algorithm,
            r.protocol,
            str(len(r.games)),
            str(r.seeds),
            *(_interval_text(getattr(r, m)) for m in aggregates.METRICS),
        ]
        for r in rows
    ]
    notes = [f"Left out: {reason}." for reason in left_out]
    return "\n\n".join([_table(header, body), *notes]) if rows else "\n\n".join(notes)


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


def _pooled(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _pooled_value(energies: Sequence[dict[str, Any]], *keys: str) -> float | None:
    return _pooled(_number(_dig(e, *keys)) for e in energies)


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
            layer_names: list[str] = []
            for energy in energies:
                layers = _dig(energy, "layers")
                for name in layers if isinstance(layers, dict) else ():
                    if name not in layer_names:
                        layer_names.append(name)
            layer_rates = {
                name: rate
                for name in layer_names
                if (rate := _pooled_value(energies, "layers", name, "firing_rate")) is not None
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
      label: the point's algorithm label in the other tables (`point_label`).
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


def _mean_se_text(mean: float | None, se: float | None, seeds: int) -> str:
    if mean is None:
        return MISSING
    spread = "" if se is None else f" ± {se:.1f}"
    return f"{mean:.1f}{spread} ({seeds})"


def sensitivity_markdown(rows: Sequence[SensitivityRow]) -> str:
    """Per game, algorithm and swept fields, a table of the sweep points' ``mean ± SE (n)``
    under the final and best protocols."""
    parts = []
    for (game, algorithm, fields), group in sensitivity_groups(rows).items():
        body = [
            [
                *(f"{v:g}" for v in r.values),
                _mean_se_text(r.final_mean, r.final_se, r.final_seeds),
                _mean_se_text(r.best_mean, r.best_se, r.best_seeds),
            ]
            for r in group
        ]
        parts += [
            f"### {game}: {algorithm}, swept {', '.join(fields)}",
            _table([*fields, "final policy", "best checkpoint"], body),
        ]
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- Markdown


def _count(n: int, one: str, many: str) -> str:
    """``"1 game"``, ``"2 games"``."""
    return f"{n} {one if n == 1 else many}"


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return MISSING if value is None else f"{value:{spec}}{suffix}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _score_text(cell: ScoreCell | None) -> str:
    if cell is None:
        return MISSING
    spread = "" if cell.std is None else f" ± {cell.std:.1f}"
    return f"{cell.mean:.1f}{spread} ({cell.n_seeds})"


def scores_markdown(results: Results, protocol: str) -> str:
    """Games x algorithms table of ``mean ± std (seeds)`` under one protocol."""
    rows = [
        [game] + [_score_text(results.cell(game, a, protocol)) for a in results.algorithms]
        for game in results.games
    ]
    return _table(["game", *results.algorithms], rows)


def pairs_markdown(rows: Sequence[PairRow]) -> str:
    """Per-game table of one pair under one protocol (`compare_pair`'s rows)."""
    if not rows:
        return "No game has scores for both algorithms."
    a, b = rows[0].numerator, rows[0].denominator
    header = ["game", a, b, f"{a}/{b} (paper %)", "relative to random %", "verdict"]
    body = [
        [
            r.game,
            f"{r.numerator_mean:.1f}",
            f"{r.denominator_mean:.1f}",
            _fmt(r.paper_percent, ".1f", "%"),
            _fmt(r.relative_to_random_percent, ".1f", "%"),
            r.verdict,
        ]
        for r in rows
    ]
    return _table(header, body)


def _pair_summary_markdown(summaries: Sequence[PairSummary]) -> str:
    header = [
        "A vs B",
        "protocol",
        "games",
        "mean paper % (games)",
        "relative to random %: mean / median (games)",
        "mean-HNS ratio",
        "better / equal / worse",
    ]
    body = [
        [
            f"{s.numerator} vs {s.denominator}",
            s.protocol,
            str(s.games),
            f"{_fmt(s.paper_percent_mean, '.1f', '%')} ({s.paper_percent_games})",
            f"{_fmt(s.relative_to_random_percent_mean, '.1f', '%')} / "
            f"{_fmt(s.relative_to_random_percent_median, '.1f', '%')} "
            f"({s.relative_to_random_games})",
            _fmt(s.human_normalized_mean_percent, ".1f", "%"),
            f"{s.better} / {s.equal} / {s.worse}",
        ]
        for s in summaries
    ]
    return _table(header, body)


def human_normalized_markdown(rows: Sequence[HumanNormalizedRow]) -> str:
    """Algorithm x protocol table of mean and median human-normalised score (in %)."""
    if not rows:
        return "No run is on a game with reference scores."
    body = [
        [
            r.algorithm,
            r.protocol,
            str(len(r.games)),
            f"{100 * r.mean:.1f}%",
            f"{100 * r.median:.1f}%",
        ]
        for r in rows
    ]
    return _table(["algorithm", "protocol", "games", "mean HNS", "median HNS"], body)


def _layer_names(rows: Sequence[EnergyRow]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [n for n in row.layer_firing_rates if n not in names]
    return names


def energy_markdown(rows: Sequence[EnergyRow]) -> str:
    """Game x algorithm table of firing rates, spikes and energy per action."""
    if not rows:
        return "No run has an energy.json."
    layers = _layer_names(rows)
    header = [
        "game",
        "algorithm",
        *(f"rate {n}" for n in layers),
        "mean rate",
        "spikes / action",
        "SNN nJ / action",
        "ANN nJ / action",
        "converted nJ / action",
        "ANN / SNN",
    ]
    body = [
        [
            r.game,
            r.algorithm,
            *(_fmt(r.layer_firing_rates.get(n), ".4f") for n in layers),
            _fmt(r.firing_rate, ".4f"),
            _fmt(r.spikes_per_action, ",.0f"),
            _fmt(r.snn_nj, ",.1f"),
            _fmt(r.ann_nj, ",.1f"),
            _fmt(r.converted_nj, ",.1f"),
            _fmt(r.ann_over_snn, ".2f", "×"),
        ]
        for r in rows
    ]
    return _table(header, body)


_DEFINITIONS = """\
## Definitions

- **Protocols.** *best*: the checkpoint with the highest evaluation mean during training,
  re-evaluated on fresh episodes (the paper's protocol; optimistic, since the checkpoint was
  selected on evaluation scores). *final*: the policy at the end of training. Every score is the
  mean raw (unclipped) full-game return of one seed's evaluation episodes.
- **Score cells** read `mean ± std (n)`: mean and sample standard deviation (ddof 1) over n
  seeds of the per-seed evaluation means. With one seed there is no std.
- **Paper %** = 100 × A / B per game, as in the paper. It is shown only where B's score is
  positive: with a negative or zero denominator the ratio's sign and size mean nothing (on Pong,
  -10 against -20 reads as 50% although A is better).
- **Relative to random %** = 100 × (A − random) / (B − random) per game, with the random
  score of the game's reference (no-op starts). It equals the ratio of human-normalised scores,
  and is shown only where B beats random. Averages over games count only the games where the
  percentage is defined (their number is given); the median is less sensitive to a denominator
  barely above random.
- **Mean-HNS ratio** = 100 × (mean over games of A's human-normalised score) / (the same for
  B), over the games with reference scores where both have a score.
- **Better / equal / worse** (A relative to B): equal when |mean_A − mean_B| ≤ {k} × SE,
  SE = sqrt(s_A²/n_A + s_B²/n_B) the standard error of the difference of the seed means;
  exact equality when either side has a single seed.
- **Human-normalised score (HNS)** = (score − random) / (human − random), shown in %
  (100% = human). The mean is inflated by games with a small human-random gap (VideoPinball);
  the median is the more robust summary. Rows covering different games are not comparable.
- **Energy** (from `energy.json`): firing rate = spikes per neuron per time step; spikes per
  action summed over all spiking layers and the T time steps; energy per action in nJ as
  computed by `dsqn energy` with the costs it records (`pj_per_ac`, `pj_per_mac`; customarily
  0.9 pJ per accumulate and 4.6 pJ per multiply-accumulate, Horowitz 2014, 45 nm): the SNN pays
  MACs for its analog first layer and accumulates for synaptic operations, the ANN pays MACs
  throughout. ANN / SNN > 1 means the spiking network uses less energy.
- **Aggregates** (Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
  Statistical Precipice"; computed as their library rliable does): over the human-normalised
  scores of all seeds on all games, the interquartile mean (IQM: the mean of the middle 50%),
  the median and mean over games of the per-game seed mean, and the optimality gap
  1 − mean(min(score, 1)) (how far below human level on average; lower is better). Intervals
  are 95% percentile intervals of the stratified bootstrap (seeds resampled within each game).
  An algorithm needs as many seeds on every game to be aggregated.
- "—" marks a value that does not exist (no run, one seed, or undefined ratio).
"""

_SWEEP_DEFINITIONS = """\
- **Sweep points.** A sweep run trains every combination of its swept values with every seed;
  each combination is an algorithm of its own in the tables, labelled by its values
  (`dsqn [network.tau=1.5]`), its seeds pooled. **Sensitivity** cells read `mean ± SE (n)`:
  SE = s / sqrt(n) is the standard error of the mean over the n seeds (s the sample standard
  deviation); with one seed there is no SE.
"""


def report_markdown(
    results: Results,
    pairs: Sequence[tuple[str, str]] | None = None,
    equal_within_se: float = 1.0,
) -> str:
    """The whole report as one Markdown document.

    Args:
      results: from `collect`.
      pairs: (numerator, denominator) pairs; None for `DEFAULT_PAIRS`. Pairs whose algorithms
        were not both run are left out.
      equal_within_se: k of the better / equal / worse tolerance (see `compare_pair`).
    """
    n_runs = len({run.run_dir for run in results.runs})
    parts = [
        "# Results",
        f"{_count(n_runs, 'run directory', 'run directories')}, "
        f"{_count(len(results.games), 'game', 'games')}, "
        f"algorithms: {', '.join(results.algorithms)}.",
    ]
    for protocol in PROTOCOLS:
        parts += [
            f"## Scores: {PROTOCOL_TITLES[protocol]}",
            "Mean ± std over seeds (number of seeds).",
            scores_markdown(results, protocol),
        ]
    summaries = []
    for a, b in _present_pairs(results, pairs):
        for protocol in PROTOCOLS:
            rows = compare_pair(results, a, b, protocol, equal_within_se)
            summaries.append(summarize_pair(results, a, b, protocol, rows))
            parts += [f"## {a} vs {b}: {PROTOCOL_TITLES[protocol]}", pairs_markdown(rows)]
    if summaries:
        parts += ["## Pair summary", _pair_summary_markdown(summaries)]
    parts += [
        "## Human-normalised scores",
        human_normalized_markdown(human_normalized_table(results)),
    ]
    parts += [
        "## Aggregates over games (Agarwal et al. 2021)",
        "Human-normalised scores of every seed on every game with reference scores; point "
        f"estimate [95% stratified-bootstrap interval, {AGGREGATE_REPS:,} replicates].",
        aggregates_markdown(*aggregate_table(results)),
    ]
    energy = energy_table(results)
    if energy:
        parts += ["## Energy and firing rates", energy_markdown(energy)]
    sensitivity = sensitivity_table(results)
    if sensitivity:
        parts += [
            "## Sensitivity to the swept hyperparameters",
            "Per sweep point: mean ± standard error over seeds (number of seeds).",
            sensitivity_markdown(sensitivity),
        ]
    definitions = _DEFINITIONS.replace("{k}", f"{equal_within_se:g}")
    parts.append(definitions + (_SWEEP_DEFINITIONS if sensitivity else ""))
    return "\n\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- CSV


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([_csv_value(v) for v in row] for row in rows)
    return path


def write_scores_csv(path: str | os.PathLike, cells: Sequence[ScoreCell]) -> Path:
    """One row per game x algorithm x protocol; seeds and scores ``;``-separated."""
    header = [
        "game",
        "algorithm",
        "protocol",
        "n_seeds",
        "mean",
        "std",
        "human_normalized",
        "seeds",
        "seed_scores",
    ]
    rows = [
        [
            c.game,
            c.algorithm,
            c.protocol,
            c.n_seeds,
            c.mean,
            c.std,
            c.human_normalized,
            ";".join(map(str, c.seeds)),
            ";".join(map(repr, c.scores)),
        ]
        for c in cells
    ]
    return _write_csv(Path(path), header, rows)


def write_pairs_csv(path: str | os.PathLike, rows: Sequence[PairRow]) -> Path:
    """One row per pair x protocol x game (`PairRow` fields)."""
    header = [f.name for f in dataclasses.fields(PairRow)]
    return _write_csv(Path(path), header, [dataclasses.astuple(r) for r in rows])


def write_pair_summary_csv(path: str | os.PathLike, summaries: Sequence[PairSummary]) -> Path:
    """One row per pair x protocol (`PairSummary` fields)."""
    header = [f.name for f in dataclasses.fields(PairSummary)]
    return _write_csv(Path(path), header, [dataclasses.astuple(s) for s in summaries])


def write_human_normalized_csv(path: str | os.PathLike, rows: Sequence[HumanNormalizedRow]) -> Path:
    """One row per algorithm x protocol; HNS as fractions (1.0 = human), games ``;``-separated."""
    header = ["algorithm", "protocol", "n_games", "mean", "median", "games"]
    body = [
        [r.algorithm, r.protocol, len(r.games), r.mean, r.median, ";".join(r.games)] for r in rows
    ]
    return _write_csv(Path(path), header, body)


def write_energy_csv(path: str | os.PathLike, rows: Sequence[EnergyRow]) -> Path:
    """One row per game x algorithm; one ``firing_rate_<layer>`` column per layer."""
    layers = _layer_names(rows)
    header = [
        "game",
        "algorithm",
        "runs",
        *(f"firing_rate_{n}" for n in layers),
        "firing_rate",
        "spikes_per_action",
        "synaptic_ops_per_action",
        "snn_nj",
        "ann_nj",
        "converted_nj",
        "ann_over_snn",
    ]
    body = [
        [
            r.game,
            r.algorithm,
            r.runs,
            *(r.layer_firing_rates.get(n) for n in layers),
            r.firing_rate,
            r.spikes_per_action,
            r.synaptic_ops_per_action,
            r.snn_nj,
            r.ann_nj,
            r.converted_nj,
            r.ann_over_snn,
        ]
        for r in rows
    ]
    return _write_csv(Path(path), header, body)


def write_aggregates_csv(path: str | os.PathLike, rows: Sequence[AggregateRow]) -> Path:
    """One row per algorithm x protocol; each statistic with ``_low`` and ``_high`` columns
    (human-normalised, 1.0 = human); games ``;``-separated."""
    metrics = list(aggregates.METRICS)
    header = ["algorithm", "protocol", "n_games", "seeds"]
    header += [f"{m}{end}" for m in metrics for end in ("", "_low", "_high")] + ["games"]
    body = [
        [r.algorithm, r.protocol, len(r.games), r.seeds]
        + [v for m in metrics for v in getattr(r, m)]
        + [";".join(r.games)]
        for r in rows
    ]
    return _write_csv(Path(path), header, body)


def _sensitivity_records(rows: Sequence[SensitivityRow]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the sensitivity CSV: one column per swept field of any row (empty
    where a row's sweep lacks it)."""
    fields: list[str] = []
    for row in rows:
        fields += [f for f in row.fields if f not in fields]
    scores = [f"{p}_{s}" for p in ("final", "best") for s in ("mean", "se", "seeds")]
    header = ["game", "algorithm", *fields, *scores, "label"]
    body = [
        [
            r.game,
            r.algorithm,
            *(dict(zip(r.fields, r.values, strict=True)).get(f) for f in fields),
            *(getattr(r, s) for s in scores),
            r.label,
        ]
        for r in rows
    ]
    return header, body


def write_sensitivity_csv(path: str | os.PathLike, rows: Sequence[SensitivityRow]) -> Path:
    """One row per sweep point: game, algorithm, one column per swept field, then mean,
    standard error and seeds of both protocols, and the point's label."""
    return _write_csv(Path(path), *_sensitivity_records(rows))


# ----------------------------------------------------------------------------- DataFrames


def scores_frame(results: Results, protocol: str):
    """The scores table of one protocol as a DataFrame: index ``game``, columns
    ``(algorithm, "mean" | "std" | "seeds")``; NaN where the Markdown table shows "—"."""
    import pandas as pd

    columns = pd.MultiIndex.from_product(
        [results.algorithms, ["mean", "std", "seeds"]], names=["algorithm", None]
    )
    data = []
    for game in results.games:
        row = []
        for algorithm in results.algorithms:
            cell = results.cell(game, algorithm, protocol)
            row += [math.nan] * 3 if cell is None else [cell.mean, cell.std, cell.n_seeds]
        data.append(row)
    frame = pd.DataFrame(data, index=pd.Index(results.games, name="game"), columns=columns)
    return frame.astype("float64")


def rows_frame(rows: Sequence[Any]):
    """A DataFrame with one row per dataclass row (`PairRow`, `PairSummary`,
    `HumanNormalizedRow`, `AggregateRow`, `EnergyRow`) and one column per field; an
    `aggregates.Interval` field becomes three columns (``<field>``, ``_low``, ``_high``)."""
    import pandas as pd

    records = []
    for row in rows:
        record: dict[str, Any] = {}
        for f in dataclasses.fields(row):
            value = getattr(row, f.name)
            if isinstance(value, aggregates.Interval):
                record.update({f.name: value.value, f"{f.name}_low": value.low})
                record[f"{f.name}_high"] = value.high
            else:
                record[f.name] = value
        records.append(record)
    return pd.DataFrame.from_records(records)


def sensitivity_frame(rows: Sequence[SensitivityRow]):
    """The sensitivity table as a DataFrame, with the columns of its CSV (NaN where empty)."""
    import pandas as pd

    header, body = _sensitivity_records(rows)
    return pd.DataFrame(body, columns=header)


def frames(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    pairs: Sequence[tuple[str, str]] | None = None,
    equal_within_se: float = 1.0,
) -> dict[str, Any]:
    """Every table of the report as a pandas DataFrame, for notebooks.

    Returns:
      ``scores_best``, ``scores_final`` (see `scores_frame`), ``pairs``, ``pair_summary``,
      ``human_normalized``, ``aggregates`` and ``energy`` (see `rows_frame`), and
      ``sensitivity`` (see `sensitivity_frame`; no rows without a sweep run).
    """
    results = collect(run_dirs_or_root)
    pair_rows, summaries = _pair_rows(results, pairs, equal_within_se)
    out = {f"scores_{p}": scores_frame(results, p) for p in PROTOCOLS}
    out["pairs"] = rows_frame(pair_rows)
    out["pair_summary"] = rows_frame(summaries)
    out["human_normalized"] = rows_frame(human_normalized_table(results))
    out["aggregates"] = rows_frame(aggregate_table(results)[0])
    out["energy"] = rows_frame(energy_table(results))
    out["sensitivity"] = sensitivity_frame(sensitivity_table(results))
    return out


def _pair_rows(
    results: Results, pairs: Sequence[tuple[str, str]] | None, equal_within_se: float
) -> tuple[list[PairRow], list[PairSummary]]:
    pair_rows: list[PairRow] = []
    summaries: list[PairSummary] = []
    for a, b in _present_pairs(results, pairs):
        for protocol in PROTOCOLS:
            rows = compare_pair(results, a, b, protocol, equal_within_se)
            pair_rows += rows
            summaries.append(summarize_pair(results, a, b, protocol, rows))
    return pair_rows, summaries


def write_report(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    pairs: Sequence[tuple[str, str]] | None = None,
    equal_within_se: float = 1.0,
) -> dict[str, Path]:
    """Writes the report of all run directories into `out_dir`.

    Args:
      run_dirs_or_root: a root searched recursively, a run directory, or a list of either.
      out_dir: created if needed.
      pairs: (numerator, denominator) pairs; None for `DEFAULT_PAIRS` (each only when present).
      equal_within_se: k of the better / equal / worse tolerance (see `compare_pair`).

    Returns:
      Name -> path of what was written: ``report`` (report.md), ``scores``, ``pairs``,
      ``pair_summary``, ``human_normalized``, ``aggregates`` and, when some run has an
      ``energy.json``, ``energy``, and when some run is a sweep, ``sensitivity`` (CSV files).
    """
    out_dir = Path(out_dir)
    results = collect(run_dirs_or_root)  # raises before anything is written when none is found
    out_dir.mkdir(parents=True, exist_ok=True)
    pair_rows, summaries = _pair_rows(results, pairs, equal_within_se)
    report_path = out_dir / "report.md"
    report_path.write_text(report_markdown(results, pairs, equal_within_se))
    paths = {
        "report": report_path,
        "scores": write_scores_csv(out_dir / "scores.csv", score_table(results)),
        "pairs": write_pairs_csv(out_dir / "pairs.csv", pair_rows),
        "pair_summary": write_pair_summary_csv(out_dir / "pair_summary.csv", summaries),
        "human_normalized": write_human_normalized_csv(
            out_dir / "human_normalized.csv", human_normalized_table(results)
        ),
        "aggregates": write_aggregates_csv(out_dir / "aggregates.csv", aggregate_table(results)[0]),
    }
    energy = energy_table(results)
    if energy:
        paths["energy"] = write_energy_csv(out_dir / "energy.csv", energy)
    sensitivity = sensitivity_table(results)
    if sensitivity:
        paths["sensitivity"] = write_sensitivity_csv(out_dir / "sensitivity.csv", sensitivity)
    return paths
