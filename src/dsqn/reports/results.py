"""The runs of a report pooled into score cells: `collect` -> `Results`, the input of every table.

Run directories (see :mod:`dsqn.reports.runs`) holding the same (game, algorithm) pool their
seeds; the same seed twice is an error, since it would count one result twice. Each cell holds
one game x algorithm x protocol, under both protocols: ``best`` (the best checkpoint
re-evaluated on fresh episodes: the paper's, optimistic) and ``final`` (the policy at the end of
training).
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from collections.abc import Iterable
from pathlib import Path

from dsqn.config import games
from dsqn.reports.runs import Run, algorithm_sort_key, game_sort_key, load_runs, resolve_run_dirs
from dsqn.rundir.files import PROTOCOLS

__all__ = ["PROTOCOL_TITLES", "ScoreCell", "Results", "collect", "score_table"]

PROTOCOL_TITLES: dict[str, str] = {
    "best": "best checkpoint, re-evaluated (the paper's protocol; optimistic)",
    "final": "final policy",
}
"""What each protocol means, as the headings of tables and titles of figures say it."""


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
        """Normalised seed mean (:func:`dsqn.config.games.normalized_score`: human-normalised on
        Atari, Young & Tian's DQN on MinAtar); None for a game without reference scores."""
        if not games.has_reference(self.game):
            return None
        return games.normalized_score(self.game, self.mean)


@dataclasses.dataclass(frozen=True)
class Results:
    """All runs of a report and their pooled score cells.

    Attributes:
      runs: the loaded runs (a sweep run gives one per sweep point, see `load_runs`).
      cells: (game, algorithm, protocol) -> pooled cell, only where at least one seed has a score.
      games: games with at least one run, paper order first, then alphabetical.
      algorithms: algorithms with at least one run, by `dsqn.reports.runs.algorithm_sort_key`.
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
