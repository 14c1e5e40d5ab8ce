"""The report as Markdown: each table of :mod:`dsqn.reports.tables` as a Markdown table, and
`report_markdown`, the whole ``report.md`` with its definitions.

Missing values are never invented: a value that does not exist shows as "—" (`MISSING`).
"""

from __future__ import annotations

from collections.abc import Sequence

from dsqn.reports import aggregates
from dsqn.reports.results import PROTOCOL_TITLES, Results, ScoreCell
from dsqn.reports.tables import (
    AGGREGATE_REPS,
    AggregateRow,
    EnergyRow,
    HumanNormalizedRow,
    PairRow,
    PairSummary,
    SensitivityRow,
    aggregate_table,
    energy_layers,
    energy_table,
    human_normalized_table,
    pair_tables,
    sensitivity_groups,
    sensitivity_table,
)
from dsqn.rundir.files import PROTOCOLS

__all__ = [
    "MISSING",
    "scores_markdown",
    "pairs_markdown",
    "human_normalized_markdown",
    "aggregates_markdown",
    "energy_markdown",
    "sensitivity_markdown",
    "report_markdown",
]

MISSING = "—"
"""What a Markdown table shows for a value that does not exist (CSV leaves the field empty)."""


# ----------------------------------------------------------------------------- cells and tables


def _count(n: int, one: str, many: str) -> str:
    """``"1 game"``, ``"2 games"``."""
    return f"{n} {one if n == 1 else many}"


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return MISSING if value is None else f"{value:{spec}}{suffix}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _mean_spread_text(mean: float | None, spread: float | None, seeds: int) -> str:
    """``"mean ± spread (seeds)"``, without the spread where it is None; "—" without a mean."""
    if mean is None:
        return MISSING
    plus_minus = "" if spread is None else f" ± {spread:.1f}"
    return f"{mean:.1f}{plus_minus} ({seeds})"


def _score_text(cell: ScoreCell | None) -> str:
    return MISSING if cell is None else _mean_spread_text(cell.mean, cell.std, cell.n_seeds)


def scores_markdown(results: Results, protocol: str) -> str:
    """Games x algorithms table of ``mean ± std (seeds)`` under one protocol."""
    rows = [
        [game] + [_score_text(results.cell(game, a, protocol)) for a in results.algorithms]
        for game in results.games
    ]
    return _table(["game", *results.algorithms], rows)


def pairs_markdown(rows: Sequence[PairRow]) -> str:
    """Per-game table of one pair under one protocol (`dsqn.reports.tables.compare_pair`'s rows)."""
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


def energy_markdown(rows: Sequence[EnergyRow]) -> str:
    """Game x algorithm table of firing rates, spikes and energy per action."""
    if not rows:
        return "No run has an energy.json."
    layers = energy_layers(rows)
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


def sensitivity_markdown(rows: Sequence[SensitivityRow]) -> str:
    """Per game, algorithm and swept fields, a table of the sweep points' ``mean ± SE (n)``
    under the final and best protocols."""
    parts = []
    for (game, algorithm, fields), group in sensitivity_groups(rows).items():
        body = [
            [
                *(f"{v:g}" for v in r.values),
                _mean_spread_text(r.final_mean, r.final_se, r.final_seeds),
                _mean_spread_text(r.best_mean, r.best_se, r.best_seeds),
            ]
            for r in group
        ]
        parts += [
            f"### {game}: {algorithm}, swept {', '.join(fields)}",
            _table([*fields, "final policy", "best checkpoint"], body),
        ]
    return "\n\n".join(parts)


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
  score of the game's reference (Atari: no-op starts; MinAtar: measured in the original
  package). It equals the ratio of human-normalised scores,
  and is shown only where B beats random. Averages over games count only the games where the
  percentage is defined (their number is given); the median is less sensitive to a denominator
  barely above random.
- **Mean-HNS ratio** = 100 × (mean over games of A's human-normalised score) / (the same for
  B), over the games with reference scores where both have a score.
- **Better / equal / worse** (A relative to B): equal when |mean_A − mean_B| ≤ {k} × SE,
  SE = sqrt(s_A²/n_A + s_B²/n_B) the standard error of the difference of the seed means;
  exact equality when either side has a single seed.
- **Human-normalised score (HNS)** = (score − random) / (reference − random), shown in %.
  On Atari the reference is human play (100% = human). MinAtar games (`<game>-MinAtar`) have
  no human scores: their reference is Young & Tian 2019's DQN after 5M frames, read off their
  published figure (`dsqn.config.games.MINATAR_DQN_SCORES`). The mean is inflated by games
  with a small reference-random gap (VideoPinball); the median is the more robust summary. Rows
  covering different games are not comparable.
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
  1 − mean(min(score, 1)) (how far below the reference on average; lower is better). Intervals
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
      results: from `dsqn.reports.results.collect`.
      pairs, equal_within_se: see `dsqn.reports.tables.pair_tables`.
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
    for summary, rows in pair_tables(results, pairs, equal_within_se):
        summaries.append(summary)
        heading = f"## {summary.numerator} vs {summary.denominator}"
        parts += [f"{heading}: {PROTOCOL_TITLES[summary.protocol]}", pairs_markdown(rows)]
    if summaries:
        parts += ["## Pair summary", _pair_summary_markdown(summaries)]
    parts += [
        "## Human-normalised scores",
        human_normalized_markdown(human_normalized_table(results)),
    ]
    parts += [
        "## Aggregates over games (Agarwal et al. 2021)",
        "Normalised scores (100% = human on Atari, Young & Tian's DQN after 5M frames on "
        "MinAtar; see Definitions) of every seed on every game with reference scores; point "
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
