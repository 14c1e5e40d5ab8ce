"""Tests of the tables of dsqn.reports (runs, results, tables, markdown, report) on synthetic run
directories with hand-computed expectations.

The run directories below are synthetic fixtures: they follow docs/run_directory.md file by file,
but their numbers are chosen to make the expected tables easy to compute by hand.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from dsqn.reports import report
from dsqn.reports.markdown import MISSING, energy_markdown, report_markdown
from dsqn.reports.results import collect
from dsqn.reports.runs import load_run, load_runs, parse_label
from dsqn.reports.tables import (
    aggregate_table,
    compare_pair,
    energy_table,
    human_normalized_table,
    sensitivity_table,
    summarize_pair,
)
from dsqn.training.loop import METRIC_COLUMNS

# (game, algorithm) -> seed -> (best score, final score)
SCORES = {
    ("Pong", "dqn"): {0: (10.0, -8.0), 1: (14.0, -12.0)},
    ("Pong", "dsqn"): {0: (-5.0, -6.0), 1: (-3.0, -4.0)},
    ("Breakout", "dqn"): {0: (20.0, 10.0), 1: (30.0, 20.0)},
    ("Breakout", "dsqn"): {0: (40.0, 16.0), 1: (50.0, 14.0)},
    ("Boxing", "dqn"): {0: (6.1, 5.0)},
    ("Pong", "dsqn-if"): {3: (12.0, -10.0)},
}

ENERGY_FULL = {
    "layers": {
        "conv1": {"firing_rate": 0.1, "spikes_per_action": 100.0, "synaptic_ops_per_action": 1e4},
        "conv2": {"firing_rate": 0.2, "spikes_per_action": 50.0, "synaptic_ops_per_action": 5e3},
        "conv3": {"firing_rate": 0.3, "spikes_per_action": 20.0, "synaptic_ops_per_action": 2e3},
        "fc1": {"firing_rate": 0.4, "spikes_per_action": 10.0, "synaptic_ops_per_action": 1e3},
    },
    "spikes_per_action": 180.0,
    "firing_rate": 0.25,
    "synaptic_ops_per_action": 1.8e4,
    "macs_per_action_first_layer": 3.3e6,
    "energy_per_action_nj": {"snn": 1000.0, "ann": 40000.0, "converted_snn": 5000.0},
    "pj_per_ac": 0.9,
    "pj_per_mac": 4.6,
}
ENERGY_PARTIAL = {"firing_rate": 0.5, "energy_per_action_nj": {"snn": 2000.0, "ann": 40000.0}}


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def make_run(
    run_dir: Path,
    game: str,
    algorithm: str,
    seed_scores: dict[int, tuple[float, float]],
    energy: dict | None = None,
    spiking: bool = True,
    suite: str = "atari",
) -> Path:
    """A synthetic run directory with every file of docs/run_directory.md except checkpoints.

    Curves rise linearly to the seed's final score over 4 evaluations of 250,000 agent steps.
    """
    run_dir.mkdir(parents=True)
    config = {
        "name": algorithm,
        "env": {"suite": suite, "game": game, "protocol": "paper"},
        "run": {"seeds": sorted(seed_scores)},
        "meta": {"dsqn_version": "0.1.0", "command": "synthetic fixture"},
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    per_seed = {
        str(seed): {
            "final": {"agent_steps": 1_000_000, "mean": final, "std": 1.0, "average_max_q": 1.0},
            "best": {
                "agent_steps": 750_000,
                "selection_mean": best + 1.0,
                "mean": best,
                "std": 1.0,
                "average_max_q": 1.0,
            },
        }
        for seed, (best, final) in seed_scores.items()
    }
    evaluation = {"name": algorithm, "game": game, "suite": suite, "per_seed": per_seed}
    (run_dir / "evaluation.json").write_text(json.dumps(evaluation))
    steps = [250_000, 500_000, 750_000, 1_000_000]
    _write_csv(
        run_dir / "evaluations.csv",
        [
            "seed",
            "agent_steps",
            "episodes",
            "return_mean",
            "return_std",
            "return_min",
            "return_max",
            "length_mean",
            "average_max_q",
            "average_mean_max_q",
        ],
        [
            [
                seed,
                s,
                30,
                final * (i + 1) / 4,
                1.0,
                final - 1,
                final + 1,
                500.0,
                0.6 * (i + 1),
                0.5 * (i + 1),
            ]
            for seed, (_, final) in seed_scores.items()
            for i, s in enumerate(steps)
        ],
    )
    layers = ["conv1", "conv2", "conv3", "fc1"] if spiking else []
    header = METRIC_COLUMNS + [f"firing_rate_{layer}" for layer in layers]
    rows = []
    for seed, (_, final) in seed_scores.items():
        for i in range(10):
            step = (i + 1) * 100_000
            episode_return = "" if i == 0 else final * i / 9
            rates = [0.1 * (j + 1) + 0.01 * i for j in range(len(layers))]
            rows.append(
                [seed, step, 4 * step, i, episode_return, 100, 0.1, 1.0, 0.1, step // 4, 1000.0]
                + rates
            )
    _write_csv(run_dir / "metrics.csv", header, rows)
    if energy is not None:
        (run_dir / "energy.json").write_text(json.dumps(energy))
    return run_dir


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The synthetic grid; Pong/dsqn's two seeds live in two run directories to test pooling."""
    root = tmp_path / "runs"
    for (game, algorithm), scores in SCORES.items():
        spiking = algorithm != "dqn"
        if (game, algorithm) == ("Pong", "dsqn"):
            make_run(root / game / "dsqn", game, algorithm, {0: scores[0]}, ENERGY_FULL)
            make_run(root / game / "dsqn-more-seeds", game, algorithm, {1: scores[1]})
        else:
            energy = ENERGY_PARTIAL if (game, algorithm) == ("Breakout", "dsqn") else None
            make_run(root / game / algorithm, game, algorithm, scores, energy, spiking)
    # A run in progress (no evaluation.json) is not part of the tables.
    unfinished = root / "Pong" / "cdqn"
    unfinished.mkdir(parents=True)
    (unfinished / "config.json").write_text(json.dumps({"name": "cdqn", "env": {"game": "Pong"}}))
    return root


def test_collect_pools_seeds_and_orders(root: Path) -> None:
    results = collect(root)
    assert len(results.runs) == 7
    assert results.games == ("Boxing", "Breakout", "Pong")
    assert results.algorithms == ("dqn", "dsqn", "dsqn-if")
    cell = results.cell("Pong", "dsqn", "best")
    assert cell.seeds == (0, 1)
    assert cell.mean == pytest.approx(-4.0)
    assert cell.std == pytest.approx(math.sqrt(2.0))
    assert results.cell("Pong", "dqn", "final").mean == pytest.approx(-10.0)
    assert results.cell("Pong", "dqn", "best").std == pytest.approx(math.sqrt(8.0))
    assert results.cell("Boxing", "dqn", "best").std is None
    assert results.cell("Boxing", "dsqn", "best") is None


def test_envpool_id_is_the_same_game(tmp_path: Path) -> None:
    make_run(tmp_path / "a", "Pong-v5", "dqn", {0: (1.0, 1.0)})
    make_run(tmp_path / "b", "Pong", "dqn", {1: (3.0, 3.0)})
    cell = collect(tmp_path).cell("Pong", "dqn", "best")
    assert cell.n_seeds == 2 and cell.mean == pytest.approx(2.0)


def test_duplicate_seed_is_an_error(root: Path) -> None:
    make_run(root / "Pong" / "dqn-again", "Pong", "dqn", {0: (1.0, 1.0)})
    with pytest.raises(ValueError, match="seed 0 of Pong/dqn appears in two run directories"):
        collect(root)


def test_no_runs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no run directory"):
        collect(tmp_path)


def test_pair_best_protocol(root: Path) -> None:
    results = collect(root)
    rows = compare_pair(results, "dsqn", "dqn", "best")
    by_game = {r.game: r for r in rows}
    assert list(by_game) == ["Breakout", "Pong"]
    assert by_game["Pong"].paper_percent == pytest.approx(-4.0 / 12.0 * 100)
    assert by_game["Breakout"].paper_percent == pytest.approx(45.0 / 25.0 * 100)
    assert by_game["Pong"].relative_to_random_percent == pytest.approx(100 * 16.7 / 32.7)
    assert by_game["Breakout"].relative_to_random_percent == pytest.approx(100 * 43.3 / 23.3)
    # SE of the difference: sqrt(8/2 + 2/2) on Pong, sqrt(50/2 + 50/2) on Breakout.
    assert by_game["Pong"].tolerance == pytest.approx(math.sqrt(5.0))
    assert by_game["Breakout"].tolerance == pytest.approx(math.sqrt(50.0))
    assert [by_game[g].verdict for g in ("Pong", "Breakout")] == ["worse", "better"]

    summary = summarize_pair(results, "dsqn", "dqn", "best", rows)
    assert summary.games == 2
    assert summary.paper_percent_mean == pytest.approx((-400 / 12 + 180) / 2)
    assert summary.paper_percent_games == 2
    relative = [100 * 16.7 / 32.7, 100 * 43.3 / 23.3]
    assert summary.relative_to_random_percent_mean == pytest.approx(sum(relative) / 2)
    assert summary.relative_to_random_percent_median == pytest.approx(sum(relative) / 2)
    hns_dsqn = (16.7 / 35.3 + 43.3 / 28.8) / 2
    hns_dqn = (32.7 / 35.3 + 23.3 / 28.8) / 2
    assert summary.human_normalized_mean_percent == pytest.approx(100 * hns_dsqn / hns_dqn)
    assert (summary.better, summary.equal, summary.worse) == (1, 0, 1)


def test_pair_final_protocol_negative_denominator(root: Path) -> None:
    results = collect(root)
    rows = compare_pair(results, "dsqn", "dqn", "final")
    by_game = {r.game: r for r in rows}
    # DQN's Pong score is -10: the paper's ratio is undefined, relative-to-random is not.
    assert by_game["Pong"].paper_percent is None
    assert by_game["Pong"].relative_to_random_percent == pytest.approx(100 * 15.7 / 10.7)
    assert by_game["Pong"].verdict == "better"
    assert by_game["Breakout"].paper_percent == pytest.approx(100.0)
    assert by_game["Breakout"].verdict == "equal"
    summary = summarize_pair(results, "dsqn", "dqn", "final", rows)
    assert summary.paper_percent_mean == pytest.approx(100.0)
    assert summary.paper_percent_games == 1
    assert summary.relative_to_random_games == 2
    assert (summary.better, summary.equal, summary.worse) == (1, 1, 0)


def test_single_seed_means_exact_equality(root: Path) -> None:
    results = collect(root)
    (row,) = compare_pair(results, "dsqn-if", "dqn", "best")
    assert row.tolerance == 0.0 and row.verdict == "equal"
    (row,) = compare_pair(results, "dsqn-if", "dqn", "final")
    assert row.tolerance == 0.0 and row.verdict == "equal"
    (row,) = compare_pair(results, "dsqn", "dsqn-if", "final")
    assert row.verdict == "better"


def test_equal_within_more_standard_errors(root: Path) -> None:
    results = collect(root)
    rows = compare_pair(results, "dsqn", "dqn", "best", equal_within_se=3.0)
    assert {r.game: r.verdict for r in rows} == {"Breakout": "equal", "Pong": "worse"}


def test_bad_arguments_name_the_value(root: Path) -> None:
    results = collect(root)
    with pytest.raises(ValueError, match="unknown protocol 'last'; valid: best, final"):
        compare_pair(results, "dsqn", "dqn", "last")
    with pytest.raises(ValueError, match="-1"):
        compare_pair(results, "dsqn", "dqn", "best", equal_within_se=-1)


def test_human_normalized_table(root: Path) -> None:
    rows = {(r.algorithm, r.protocol): r for r in human_normalized_table(collect(root))}
    dqn = rows[("dqn", "best")]
    assert dqn.games == ("Boxing", "Breakout", "Pong")
    values = [6.0 / 12.0, 23.3 / 28.8, 32.7 / 35.3]
    assert dqn.mean == pytest.approx(sum(values) / 3)
    assert dqn.median == pytest.approx(23.3 / 28.8)
    dsqn = rows[("dsqn", "final")]
    assert dsqn.mean == pytest.approx((15.7 / 35.3 + 13.3 / 28.8) / 2)


def test_energy_table(root: Path) -> None:
    rows = {(r.game, r.algorithm): r for r in energy_table(collect(root))}
    assert set(rows) == {("Pong", "dsqn"), ("Breakout", "dsqn")}
    full = rows[("Pong", "dsqn")]
    assert full.layer_firing_rates == {"conv1": 0.1, "conv2": 0.2, "conv3": 0.3, "fc1": 0.4}
    assert full.spikes_per_action == 180.0
    assert full.ann_over_snn == pytest.approx(40.0)
    assert full.converted_nj == 5000.0
    partial = rows[("Breakout", "dsqn")]
    assert partial.layer_firing_rates == {}
    assert partial.spikes_per_action is None and partial.converted_nj is None
    assert partial.ann_over_snn == pytest.approx(20.0)
    text = energy_markdown(list(rows.values()))
    breakout_line = next(line for line in text.splitlines() if line.startswith("| Breakout"))
    assert breakout_line.count(MISSING) == 6


def test_markdown(root: Path) -> None:
    text = report_markdown(collect(root))
    assert "| Pong | 12.0 ± 2.8 (2) | -4.0 ± 1.4 (2) | 12.0 (1) |" in text
    assert "| Boxing | 6.1 (1) | — | — |" in text
    assert "| Pong | -5.0 | -10.0 | — | 146.7% | better |" in text
    assert "| dsqn vs dqn | best | 2 | 73.3% (2) |" in text
    assert "1 / 0 / 1" in text and "1 / 1 / 0" in text
    assert "## Energy and firing rates" in text
    assert "Relative to random %" in text and "Paper %" in text
    # Pairs whose algorithms were not run are left out.
    assert "cdsqn vs cdqn" not in text


def test_markdown_counts_in_words(root: Path) -> None:
    one = report_markdown(collect(root / "Pong" / "dsqn"))
    assert "1 run directory, 1 game, algorithms: dsqn." in one
    assert "7 run directories, 3 games," in report_markdown(collect(root))


def test_write_report_csvs_parse(root: Path, tmp_path: Path) -> None:
    paths = report.write_report(root, tmp_path / "out")
    assert set(paths) == {
        "report",
        "scores",
        "pairs",
        "pair_summary",
        "human_normalized",
        "aggregates",
        "energy",
    }

    def read(name: str) -> list[dict[str, str]]:
        with paths[name].open(newline="") as f:
            return list(csv.DictReader(f))

    scores = read("scores")
    assert len(scores) == 2 * 6  # 6 game x algorithm cells, 2 protocols
    pong = next(r for r in scores if r["game"] == "Pong" and r["algorithm"] == "dsqn")
    assert pong["protocol"] == "best" and float(pong["mean"]) == -4.0
    assert pong["seeds"] == "0;1" and pong["seed_scores"] == "-5.0;-3.0"
    boxing = next(r for r in scores if r["game"] == "Boxing")
    assert boxing["std"] == ""
    pairs = read("pairs")
    assert len(pairs) == 4
    pong_final = next(r for r in pairs if r["game"] == "Pong" and r["protocol"] == "final")
    assert pong_final["paper_percent"] == "" and pong_final["verdict"] == "better"
    summary = read("pair_summary")
    assert [(r["protocol"], r["better"], r["equal"], r["worse"]) for r in summary] == [
        ("best", "1", "0", "1"),
        ("final", "1", "1", "0"),
    ]
    energy = {r["game"]: r for r in read("energy")}
    assert energy["Pong"]["firing_rate_conv1"] == "0.1"
    assert energy["Breakout"]["firing_rate_conv1"] == ""


def test_custom_pairs(root: Path, tmp_path: Path) -> None:
    paths = report.write_report(root, tmp_path / "out", pairs=[("dsqn-if", "dsqn")])
    with paths["pair_summary"].open(newline="") as f:
        (best, final) = list(csv.DictReader(f))
    assert (best["numerator"], best["denominator"], best["games"]) == ("dsqn-if", "dsqn", "1")


def test_malformed_files_are_named(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", "Pong", "dqn", {0: (1.0, 1.0)})
    (run / "evaluation.json").write_text("{not json")
    with pytest.raises(ValueError, match="evaluation.json is not valid JSON"):
        collect(tmp_path)
    (run / "evaluation.json").write_text("{}")
    with pytest.raises(ValueError, match="lacks the 'per_seed' object"):
        collect(tmp_path)


def _hns(game: str, score: float) -> float:
    random_score, human_score = {"Pong": (-20.7, 14.6), "Breakout": (1.7, 30.5)}[game]
    return (score - random_score) / (human_score - random_score)


def test_minatar_runs_are_normalised_by_the_published_dqn(tmp_path: Path) -> None:
    # Young & Tian's DQN (5M frames) and the random policy: Breakout 10.1 and 0.416, Space
    # Invaders 43.5 and 4.095.
    for game, scores in (("Breakout", (5.258, 10.1)), ("SpaceInvaders", (23.7975, 43.5))):
        seeds = {s: (v, v) for s, v in enumerate(scores)}
        make_run(tmp_path / game, game, "minatar-dsqn", seeds, suite="minatar")
    results = collect(tmp_path)
    assert results.games == ("Breakout-MinAtar", "SpaceInvaders-MinAtar")
    cell = results.cell("Breakout-MinAtar", "minatar-dsqn", "final")
    # seed mean (5.258 + 10.1) / 2 = 7.679 -> (7.679 - 0.416) / 9.684 = 0.75
    assert cell.human_normalized == pytest.approx(0.75)
    (row,) = [r for r in human_normalized_table(results) if r.protocol == "final"]
    assert row.mean == pytest.approx(0.75)
    rows, left_out = aggregate_table(results, reps=500)
    final = next(r for r in rows if r.protocol == "final")
    assert final.games == ("Breakout-MinAtar", "SpaceInvaders-MinAtar") and not left_out
    # Scores 0.5 and 1.0 on each game: the IQM of {0.5, 0.5, 1, 1} is 0.75.
    assert final.iqm.value == pytest.approx(0.75)
    assert "Young & Tian 2019's DQN" in report_markdown(results)


def test_aggregates_iqm_with_intervals_and_left_out_algorithms(root: Path) -> None:
    rows, left_out = aggregate_table(collect(root), reps=2000)
    dsqn = next(r for r in rows if (r.algorithm, r.protocol) == ("dsqn", "best"))
    assert dsqn.games == ("Breakout", "Pong") and dsqn.seeds == 2
    # Four seed x game scores: the IQM drops the lowest and highest, averages the other two.
    values = sorted(
        [_hns("Pong", -5.0), _hns("Pong", -3.0), _hns("Breakout", 40), _hns("Breakout", 50)]
    )
    assert dsqn.iqm.value == pytest.approx((values[1] + values[2]) / 2)
    assert dsqn.mean.value == pytest.approx((_hns("Pong", -4.0) + _hns("Breakout", 45.0)) / 2)
    assert dsqn.optimality_gap.value == pytest.approx(1 - (values[0] + values[1] + 1 + 1) / 4)
    for name in ("iqm", "median", "mean", "optimality_gap"):
        interval = getattr(dsqn, name)
        assert interval.low <= interval.value <= interval.high
    assert dsqn.iqm.low < dsqn.iqm.high  # two different seeds per game: a real interval
    # One seed on one game: every bootstrap replicate is the same score.
    single = next(r for r in rows if (r.algorithm, r.protocol) == ("dsqn-if", "best"))
    assert single.iqm.low == single.iqm.value == single.iqm.high
    # dqn has two seeds on Pong and Breakout but one on Boxing: left out, with the reason.
    assert not any(r.algorithm == "dqn" for r in rows)
    assert any("dqn (best)" in reason and "'Boxing': 1" in reason for reason in left_out)
    text = report_markdown(collect(root))
    assert "## Aggregates over games (Agarwal et al. 2021)" in text and "Left out: dqn" in text


def _markdown_rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1]
    lines = [line for line in section.split("\n\n", 3)[1:3] if line.startswith("|")][0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines.splitlines()[2:]]


def test_data_frames_match_the_markdown_tables(root: Path) -> None:
    results = collect(root)
    text = report_markdown(results)
    tables = report.frames(root)
    scores = tables["scores_best"]
    for row in _markdown_rows(text, "## Scores: best"):
        game, cells = row[0], row[1:]
        for algorithm, cell in zip(results.algorithms, cells, strict=True):
            mean, std, seeds = scores.loc[game, algorithm]
            if math.isnan(mean):
                assert cell == MISSING
                continue
            spread = "" if math.isnan(std) else f" ± {std:.1f}"
            assert cell == f"{mean:.1f}{spread} ({int(seeds)})"
    hns = tables["human_normalized"]
    for row in _markdown_rows(text, "## Human-normalised scores"):
        match = hns[(hns.algorithm == row[0]) & (hns.protocol == row[1])].iloc[0]
        assert row[2:] == [
            str(len(match.games)),
            f"{100 * match['mean']:.1f}%",
            f"{100 * match['median']:.1f}%",
        ]
    agg = tables["aggregates"]
    agg_rows = _markdown_rows(text, "## Aggregates over games")
    assert len(agg_rows) == len(agg) > 0
    for row in agg_rows:
        match = agg[(agg.algorithm == row[0]) & (agg.protocol == row[1])].iloc[0]
        for name, cell in zip(("iqm", "median", "mean", "optimality_gap"), row[4:], strict=True):
            low, high = match[f"{name}_low"], match[f"{name}_high"]
            assert cell == f"{100 * match[name]:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
    pairs = tables["pairs"]
    assert len(pairs) == 4 and set(pairs.columns) >= {"game", "verdict", "paper_percent"}
    assert set(tables["energy"].game) == {row.game for row in energy_table(results)}


# ----------------------------------------------------------------------------- sweep runs

SWEEP_FIELDS = (
    "network_tau",
    "network_v_threshold",
    "network_surrogate_alpha",
    "learner_learning_rate",
    "learner_adam_eps",
    "learner_neuron_learning_rate_scale",
    "learner_discount",
    "learner_epsilon_start",
    "learner_epsilon_mid",
    "learner_epsilon_end",
)
"""The fields of config.json's ``sweep`` section, in its order."""

# (tau,) -> seed -> (best score, final score); None: no score under that protocol.
TAU_SCORES: dict[tuple[float, ...], dict[int, tuple[float | None, float | None]]] = {
    (1.5,): {0: (11.0, 10.0), 1: (12.0, 20.0), 2: (13.0, 30.0)},
    (2.0,): {0: (0.0, 5.0), 1: (0.0, 5.0), 2: (3.0, 5.0)},
    (16.0,): {0: (-2.0, 0.0), 1: (-6.0, 6.0), 2: (None, 12.0)},
}


def _protocol_entry(score: float | None, agent_steps: int) -> dict | None:
    if score is None:
        return None
    return {"agent_steps": agent_steps, "mean": score, "std": 1.0, "average_max_q": 1.0}


def make_sweep_run(
    run_dir: Path,
    game: str,
    name: str,
    sweep: dict[str, list[float]],
    scores: dict[tuple[float, ...], dict[int, tuple[float | None, float | None]]],
    energy: dict | None = None,
) -> Path:
    """A synthetic sweep run directory in docs/run_directory.md's format: the sweep section with
    every field, per-agent keys in evaluation.json, one column per swept field after ``seed`` in
    both CSV files. `sweep` maps sweep fields (``network_tau``) to values; `scores` maps each
    point (its values in sweep order) to seed -> (best, final). With an empty `sweep`, a run
    without a sweep whose config still has the section (every list empty)."""
    run_dir.mkdir(parents=True)
    paths = [field.replace("_", ".", 1) for field in sweep]
    seeds = sorted({seed for by_seed in scores.values() for seed in by_seed})
    config = {
        "name": name,
        "env": {"suite": "atari", "game": game, "protocol": "paper"},
        "run": {"seeds": seeds},
        "sweep": {field: sweep.get(field, []) for field in SWEEP_FIELDS},
        "meta": {"dsqn_version": "0.1.0", "command": "synthetic fixture"},
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    per_seed = {}
    for point, by_seed in scores.items():
        text = [f"{p}={v:g}" for p, v in zip(paths, point, strict=True)]
        for seed, (best, final) in by_seed.items():
            entry = {
                "final": _protocol_entry(final, 1_000_000),
                "best": _protocol_entry(best, 750_000),
            }
            if sweep:
                entry |= {"seed": seed, "values": dict(zip(paths, point, strict=True))}
            per_seed[",".join([*text, f"seed={seed}"]) if sweep else str(seed)] = entry
    evaluation = {"name": name, "game": game, "suite": "atari", "per_seed": per_seed}
    if sweep:
        evaluation["sweep"] = dict(zip(paths, sweep.values(), strict=True))
    (run_dir / "evaluation.json").write_text(json.dumps(evaluation))
    steps = [250_000, 500_000, 750_000, 1_000_000]
    _write_csv(
        run_dir / "evaluations.csv",
        ["seed", *paths, "agent_steps", "episodes", "return_mean", "return_std", "return_min"]
        + ["return_max", "length_mean", "average_max_q", "average_mean_max_q"],
        [
            [seed, *map(float, point), s, 30, final * (i + 1) / 4, 1.0, final - 1, final + 1]
            + [500.0, 0.6 * (i + 1), 0.5 * (i + 1)]
            for point, by_seed in scores.items()
            for seed, (_, final) in by_seed.items()
            for i, s in enumerate(steps)
        ],
    )
    layers = ["conv1", "conv2", "conv3", "fc1"]
    header = [METRIC_COLUMNS[0], *paths, *METRIC_COLUMNS[1:]]
    header += [f"firing_rate_{layer}" for layer in layers]
    rows = []
    for n, (point, by_seed) in enumerate(scores.items()):
        for seed, (_, final) in by_seed.items():
            for i in range(10):
                step = (i + 1) * 100_000
                # Each point's conv1 rate: 0.1 * (point index + 1), constant over log points.
                rates = [0.1 * (n + 1)] + [0.5] * (len(layers) - 1)
                rows.append(
                    [seed, *map(float, point), step, 4 * step, i, final * i / 9, 100, 0.1]
                    + [1.0, 0.1, step // 4, 1000.0, *rates]
                )
    _write_csv(run_dir / "metrics.csv", header, rows)
    if energy is not None:
        (run_dir / "energy.json").write_text(json.dumps(energy))
    return run_dir


TAU_LABELS = ("dsqn [network.tau=1.5]", "dsqn [network.tau=2]", "dsqn [network.tau=16]")


@pytest.fixture
def sweep_root(tmp_path: Path) -> Path:
    """A tau sweep on Pong beside a plain dsqn run (its config has the sweep section, every list
    empty) and an old dqn run (no sweep section at all)."""
    root = tmp_path / "runs"
    make_sweep_run(root / "tau", "Pong", "dsqn", {"network_tau": [1.5, 2.0, 16.0]}, TAU_SCORES)
    make_sweep_run(root / "plain", "Pong", "dsqn", {}, {(): {0: (1.0, 1.0), 1: (3.0, 3.0)}})
    make_run(root / "old", "Pong", "dqn", {0: (2.0, 2.0)})
    return root


def test_sweep_points_are_algorithms(sweep_root: Path) -> None:
    results = collect(sweep_root)
    # The points follow their algorithm by value (16 after 2, not between 1.5 and 2).
    assert results.algorithms == ("dqn", "dsqn", *TAU_LABELS)
    runs = load_runs(sweep_root / "tau")
    assert [r.algorithm for r in runs] == list(TAU_LABELS)
    assert runs[2].values == {"network.tau": 16.0} and runs[2].name == "dsqn"
    assert runs[0].sweep == {"network.tau": (1.5, 2.0, 16.0)}
    tau16 = results.cell("Pong", TAU_LABELS[2], "best")
    assert tau16.seeds == (0, 1) and tau16.mean == pytest.approx(-4.0)
    assert tau16.std == pytest.approx(math.sqrt(8.0))
    assert results.cell("Pong", TAU_LABELS[2], "final").seeds == (0, 1, 2)
    # The plain run and the old run keep their names and integer seeds.
    assert results.cell("Pong", "dsqn", "best").seeds == (0, 1)
    assert results.cell("Pong", "dqn", "best").mean == 2.0
    assert load_run(sweep_root / "plain").values == {}
    with pytest.raises(ValueError, match="sweep run of 3 points; load_runs"):
        load_run(sweep_root / "tau")


def test_sweep_points_in_every_table(sweep_root: Path) -> None:
    results = collect(sweep_root)
    rows = compare_pair(results, TAU_LABELS[0], "dsqn", "final")
    assert [(r.numerator_mean, r.denominator_mean) for r in rows] == [(20.0, 2.0)]
    assert rows[0].paper_percent == pytest.approx(1000.0)
    hns = {(r.algorithm, r.protocol): r for r in human_normalized_table(results)}
    assert hns[(TAU_LABELS[1], "final")].mean == pytest.approx((5.0 + 20.7) / 35.3)
    text = report_markdown(results)
    assert "3 run directories, 1 game, algorithms: dqn, dsqn, " + ", ".join(TAU_LABELS) in text
    final_row = "| Pong | 2.0 (1) | 2.0 ± 1.4 (2) | 20.0 ± 10.0 (3) | 5.0 ± 0.0 (3) | 6.0 ± 6.0 (3)"
    assert final_row in text.split("## Scores: final", 1)[1]
    scores = report.frames(sweep_root)["scores_final"]
    assert scores.loc["Pong", (TAU_LABELS[0], "mean")] == 20.0


def test_sensitivity_table_by_hand(sweep_root: Path) -> None:
    rows = sensitivity_table(collect(sweep_root))
    assert [(r.game, r.algorithm, r.fields, r.values) for r in rows] == [
        ("Pong", "dsqn", ("network.tau",), (1.5,)),
        ("Pong", "dsqn", ("network.tau",), (2.0,)),
        ("Pong", "dsqn", ("network.tau",), (16.0,)),
    ]
    expected = [
        # final mean, SE, n; best mean, SE, n
        (20.0, 10.0 / math.sqrt(3), 3, 12.0, 1.0 / math.sqrt(3), 3),
        (5.0, 0.0, 3, 1.0, 1.0, 3),
        (6.0, 2.0 * math.sqrt(3), 3, -4.0, 2.0, 2),
    ]
    for row, (fm, fse, fn, bm, bse, bn) in zip(rows, expected, strict=True):
        assert (row.final_mean, row.final_seeds, row.best_mean, row.best_seeds) == (fm, fn, bm, bn)
        assert row.final_se == pytest.approx(fse) and row.best_se == pytest.approx(bse)
    text = report_markdown(collect(sweep_root))
    section = text.split("## Sensitivity to the swept hyperparameters", 1)[1]
    assert "### Pong: dsqn, swept network.tau" in section
    assert "| 1.5 | 20.0 ± 5.8 (3) | 12.0 ± 0.6 (3) |" in section
    assert "| 16 | 6.0 ± 3.5 (3) | -4.0 ± 2.0 (2) |" in section
    assert "SE = s / sqrt(n)" in text


def test_sensitivity_csv_and_frame(sweep_root: Path, tmp_path: Path) -> None:
    paths = report.write_report(sweep_root, tmp_path / "out")
    with paths["sensitivity"].open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "game",
        "algorithm",
        "network.tau",
        "final_mean",
        "final_se",
        "final_seeds",
        "best_mean",
        "best_se",
        "best_seeds",
        "label",
    ]
    assert [r["network.tau"] for r in rows] == ["1.5", "2.0", "16.0"]
    assert float(rows[2]["best_se"]) == pytest.approx(2.0) and rows[2]["best_seeds"] == "2"
    assert rows[0]["label"] == TAU_LABELS[0]
    frame = report.frames(sweep_root)["sensitivity"]
    assert list(frame["final_mean"]) == [20.0, 5.0, 6.0]
    assert list(frame.columns) == list(rows[0])


def test_no_sweep_no_sensitivity(root: Path, tmp_path: Path) -> None:
    assert sensitivity_table(collect(root)) == []
    assert "Sensitivity" not in report_markdown(collect(root))
    assert "sensitivity" not in report.write_report(root, tmp_path / "out")
    assert report.frames(root)["sensitivity"].empty


def test_two_swept_fields(tmp_path: Path) -> None:
    sweep = {"network_tau": [2.0, 4.0], "learner_learning_rate": [1e-4, 3e-4]}
    scores = {
        (2.0, 1e-4): {0: (1.0, 1.0)},
        (2.0, 3e-4): {0: (2.0, 2.0)},
        (4.0, 1e-4): {0: (3.0, 3.0)},
        (4.0, 3e-4): {0: (4.0, 4.0)},
    }
    make_sweep_run(tmp_path / "grid", "Pong", "dsqn", sweep, scores)
    results = collect(tmp_path)
    assert results.algorithms[1] == "dsqn [network.tau=2, learner.learning_rate=0.0003]"
    assert parse_label(results.algorithms[1]) == (
        "dsqn",
        (("network.tau", 2.0), ("learner.learning_rate", 3e-4)),
    )
    rows = sensitivity_table(results)
    assert [r.values for r in rows] == list(scores)
    assert all(r.fields == ("network.tau", "learner.learning_rate") for r in rows)
    assert [r.final_se for r in rows] == [None] * 4  # one seed: no standard error
    section = report_markdown(results).split("## Sensitivity", 1)[1]
    assert "| network.tau | learner.learning_rate | final policy | best checkpoint |" in section
    assert "| 4 | 0.0003 | 4.0 (1) | 4.0 (1) |" in section
    with report.write_sensitivity_csv(tmp_path / "s.csv", rows).open(newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["network.tau"], r["learner.learning_rate"]) for r in table] == [
        ("2.0", "0.0001"),
        ("2.0", "0.0003"),
        ("4.0", "0.0001"),
        ("4.0", "0.0003"),
    ]
    assert [r["final_se"] for r in table] == [""] * 4


def test_sweep_runs_pool_points_and_refuse_duplicate_agents(sweep_root: Path) -> None:
    more = {(16.0,): {5: (10.0, 10.0)}, (32.0,): {0: (7.0, 7.0)}}
    make_sweep_run(sweep_root / "tau-more", "Pong", "dsqn", {"network_tau": [16.0, 32.0]}, more)
    results = collect(sweep_root)
    assert results.cell("Pong", TAU_LABELS[2], "final").seeds == (0, 1, 2, 5)
    assert results.algorithms[-1] == "dsqn [network.tau=32]"
    values = [r.values for r in sensitivity_table(results)]
    assert values == [(1.5,), (2.0,), (16.0,), (32.0,)]
    again = {(1.5,): {0: (1.0, 1.0)}}
    make_sweep_run(sweep_root / "tau-again", "Pong", "dsqn", {"network_tau": [1.5]}, again)
    with pytest.raises(ValueError, match=r"seed 0 of Pong/dsqn \[network.tau=1.5\] appears in two"):
        collect(sweep_root)


def _rewrite_per_seed(run_dir: Path, edit) -> None:
    path = run_dir / "evaluation.json"
    evaluation = json.loads(path.read_text())
    edit(evaluation["per_seed"])
    path.write_text(json.dumps(evaluation))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda ps: ps["network.tau=2,seed=1"].pop("seed"),
            "entry 'network.tau=2,seed=1' of a sweep run lacks an integer 'seed'",
        ),
        (
            lambda ps: ps.update({"0": ps.pop("network.tau=2,seed=0")}),
            None,  # moved under an integer key, the entry still names its agent: accepted
        ),
        (
            lambda ps: ps.update({"1": {"best": None, "final": None}}),
            "entry '1' of a sweep run lacks an integer 'seed'",
        ),
        (
            lambda ps: ps["network.tau=2,seed=1"].update(values={"network.v_threshold": 1.0}),
            r"'network.tau=2,seed=1' has 'values' .*; the sweep's fields are network.tau",
        ),
        (
            lambda ps: ps["network.tau=2,seed=1"].update(values={"network.tau": 3.0}),
            r"has network.tau=3.0, not a value of the sweep \(1.5, 2, 16\)",
        ),
        (
            lambda ps: ps.update(copy=dict(ps["network.tau=2,seed=1"])),
            "per_seed holds agent 'copy' twice",
        ),
    ],
)
def test_bad_sweep_entries_are_named(tmp_path: Path, edit, message: str | None) -> None:
    sweep = {"network_tau": [1.5, 2.0, 16.0]}
    run = make_sweep_run(tmp_path / "tau", "Pong", "dsqn", sweep, TAU_SCORES)
    _rewrite_per_seed(run, edit)
    if message is None:
        assert collect(tmp_path).cell("Pong", TAU_LABELS[1], "final").n_seeds == 3
        return
    with pytest.raises(ValueError, match=message) as error:
        collect(tmp_path)
    assert str(run / "evaluation.json") in str(error.value)


def test_agent_keys_without_a_sweep_are_named(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", "Pong", "dqn", {0: (1.0, 1.0)})
    _rewrite_per_seed(run, lambda ps: ps.update({"network.tau=2,seed=0": ps.pop("0")}))
    with pytest.raises(ValueError, match="per_seed key 'network.tau=2,seed=0' is not an integer"):
        collect(tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config | {"sweep": {"network_tau": "2"}}))
    with pytest.raises(ValueError, match="config.json: sweep field 'network_tau' is '2', not a"):
        collect(tmp_path)


def test_sweep_energy_per_point(tmp_path: Path) -> None:
    scores = {(1.5,): {0: (1.0, 1.0), 1: (1.0, 1.0)}, (2.0,): {0: (1.0, 1.0)}}
    per_seed = {
        "network.tau=1.5,seed=0": {"firing_rate": 0.1, "energy_per_action_nj": {"snn": 10.0}},
        "network.tau=1.5,seed=1": {"firing_rate": 0.3, "energy_per_action_nj": {"snn": 30.0}},
        "network.tau=2,seed=0": {"firing_rate": 0.6, "energy_per_action_nj": {"snn": 60.0}},
    }
    energy = {"firing_rate": 0.5, "per_seed": per_seed}
    make_sweep_run(tmp_path / "a", "Pong", "dsqn", {"network_tau": [1.5, 2.0]}, scores, energy)
    rows = {r.algorithm: r for r in energy_table(collect(tmp_path))}
    assert rows["dsqn [network.tau=1.5]"].firing_rate == pytest.approx(0.2)
    assert rows["dsqn [network.tau=1.5]"].snn_nj == pytest.approx(20.0)
    assert rows["dsqn [network.tau=1.5]"].runs == 2
    assert rows["dsqn [network.tau=2]"].firing_rate == pytest.approx(0.6)
    # Keyed by seed alone, the entries name no point: no energy row, and no error.
    energy["per_seed"] = {"0": per_seed["network.tau=2,seed=0"]}
    (tmp_path / "a" / "energy.json").write_text(json.dumps(energy))
    assert energy_table(collect(tmp_path)) == []
