"""The report of many run directories written out: ``report.md``, CSV files, and DataFrames.

`write_report` (``dsqn report``) writes ``report.md`` (:mod:`dsqn.reports.markdown`) and one CSV
file per table of :mod:`dsqn.reports.tables`; `frames` gives every table as a pandas DataFrame
(``*_frame`` per table) for notebooks. Input is a root searched recursively, a run directory, or
a list of either (see `dsqn.reports.runs.resolve_run_dirs`).

Missing values are never invented: CSV leaves the field empty, a DataFrame holds NaN or None.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dsqn.reports import aggregates
from dsqn.reports.markdown import report_markdown
from dsqn.reports.results import Results, ScoreCell, collect, score_table
from dsqn.reports.tables import (
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
    sensitivity_table,
)
from dsqn.rundir.files import PROTOCOLS

REPORT_MARKDOWN = "report.md"
"""The report's Markdown file in its output directory (beside its CSV files)."""

__all__ = [
    "write_scores_csv",
    "write_pairs_csv",
    "write_pair_summary_csv",
    "write_human_normalized_csv",
    "write_aggregates_csv",
    "write_energy_csv",
    "write_sensitivity_csv",
    "scores_frame",
    "rows_frame",
    "sensitivity_frame",
    "frames",
    "write_report",
]

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
    layers = energy_layers(rows)
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
    fields = list(dict.fromkeys(f for row in rows for f in row.fields))
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
    """`pair_tables` as two tables: every pair row, and the summaries."""
    tables = pair_tables(results, pairs, equal_within_se)
    return [row for _, rows in tables for row in rows], [summary for summary, _ in tables]


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
      pairs, equal_within_se: see `dsqn.reports.tables.pair_tables`.

    Returns:
      Name -> path of what was written: ``report`` (report.md), ``scores``, ``pairs``,
      ``pair_summary``, ``human_normalized``, ``aggregates`` and, when some run has an
      ``energy.json``, ``energy``, and when some run is a sweep, ``sensitivity`` (CSV files).
    """
    out_dir = Path(out_dir)
    results = collect(run_dirs_or_root)  # raises before anything is written when none is found
    out_dir.mkdir(parents=True, exist_ok=True)
    pair_rows, summaries = _pair_rows(results, pairs, equal_within_se)
    report_path = out_dir / REPORT_MARKDOWN
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
