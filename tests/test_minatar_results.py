"""experiments/minatar_results.py on run directories written by hand (values known here)."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "experiments" / "minatar_results.py"
_spec = importlib.util.spec_from_file_location("minatar_results", PATH)
results = importlib.util.module_from_spec(_spec)
sys.modules["minatar_results"] = results
_spec.loader.exec_module(results)


def _run(root: Path, name: str, curves: dict[int, list[float]], finished: dict | None = None):
    run = root / "Breakout" / name
    run.mkdir(parents=True)
    config = {
        "name": name,
        "env": {"suite": "minatar", "game": "Breakout"},
        "network": {"kind": "dsqn" if "dsqn" in name else "dqn", "time_steps": 8},
        "run": {"total_agent_steps": 300},
        "learner": {"schedule_counts_warmup": False, "warmup_agent_steps": 100},
    }
    (run / "config.json").write_text(json.dumps(config))
    with (run / "evaluations.csv").open("w") as f:
        f.write("seed,agent_steps,return_mean\n")
        for seed, values in curves.items():
            for i, v in enumerate(values):
                f.write(f"{seed},{100 * (i + 1)},{v}\n")
    with (run / "metrics.csv").open("w") as f:
        f.write("seed,agent_steps,firing_rate_conv1\n")
        for seed in curves:
            f.write(f"{seed},100,0.0\n{seed},200,0.25\n")
    if finished is not None:
        (run / "evaluation.json").write_text(json.dumps({"per_seed": finished}))


def test_tables_normalise_by_the_studys_dqn_and_compare_at_common_steps(tmp_path, capsys):
    dqn_final = {
        str(s): {"final": {"mean": v}, "best": {"mean": v + 1}} for s, v in enumerate([4.4, 8.4])
    }
    _run(tmp_path, "minatar-dqn", {0: [1.0, 2.0, 3.0], 1: [1.0, 4.0, 5.0]}, dqn_final)
    _run(tmp_path, "minatar-dsqn", {0: [0.5, 2.4], 1: [0.5, 4.4]})  # unfinished, at 200
    sys.argv = ["minatar_results", str(tmp_path), "--out", str(tmp_path / "out")]
    results.main()
    rows = list(csv.DictReader((tmp_path / "out" / "per_seed.csv").open()))
    by = {(r["algorithm"], r["seed"]): r for r in rows}
    assert by[("minatar-dqn", "0")]["final"] == "4.4" and by[("minatar-dqn", "1")]["best"] == "9.4"
    assert by[("minatar-dsqn", "1")]["final"] == "4.4"  # the latest evaluation while running
    assert by[("minatar-dsqn", "0")]["finished"] == "False"
    assert float(by[("minatar-dsqn", "0")]["rate_conv1_last"]) == 0.25
    text = (tmp_path / "out" / "results.md").read_text()
    dqn_line = next(line for line in text.splitlines() if "| minatar-dqn |" in line)
    dsqn_line = next(line for line in text.splitlines() if "| minatar-dsqn |" in line)
    # DQN's mean final is 6.4, random 0.416: DSQN's finals 2.4 and 4.4 normalise to
    # (2.4 - 0.416) / (6.4 - 0.416) = 33% and 67%; with two seeds the IQM is their mean, 50%.
    assert "| 100% [" in dqn_line and "| 50% [" in dsqn_line
    assert "200 of 400 (unfinished)" in dsqn_line
    # At 200 agent steps (the most every run reached): DQN 2.0 and 4.0, DSQN 2.4 and 4.4.
    assert "3.00 ± 1.00 at 200" in dqn_line and "3.40 ± 1.00 at 200" in dsqn_line
    assert (tmp_path / "out" / "curves_Breakout.png").stat().st_size > 0
    assert np.isclose(float(by[("minatar-dqn", "0")]["agent_steps"]), 300)


def test_no_run_is_an_error(tmp_path):
    sys.argv = ["minatar_results", str(tmp_path), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        results.main()


def test_sweep_points_and_one_seed_variants_have_their_own_rows(tmp_path):
    _run(tmp_path, "minatar-dsqn", {0: [1.0, 2.0, 3.0], 1: [1.0, 2.0, 5.0]})
    _run(tmp_path, "minatar-dsqn-T4", {0: [0.5, 1.5]})
    run = tmp_path / "Breakout" / "minatar-dsqn-sweep"
    run.mkdir(parents=True)
    config = {
        "name": "minatar-dsqn",
        "env": {"suite": "minatar", "game": "Breakout"},
        "network": {"kind": "dsqn", "time_steps": 8, "tau": 2.0},
        "run": {"total_agent_steps": 300},
        "learner": {"schedule_counts_warmup": False, "warmup_agent_steps": 100},
        "sweep": {"network_tau": [1.5, 4.0]},
    }
    (run / "config.json").write_text(json.dumps(config))
    (run / "evaluations.csv").write_text(
        "seed,network.tau,agent_steps,return_mean\n"
        "0,1.5,100,0.5\n0,4,100,0.7\n0,1.5,200,2.5\n0,4,200,1.0\n"
    )
    per_seed = {
        f"network.tau={tau},seed=0": {
            "seed": 0,
            "values": {"network.tau": float(tau)},
            "final": {"mean": final},
            "best": {"mean": final + 1},
        }
        for tau, final in (("1.5", 2.25), ("4", 1.25))
    }
    (run / "evaluation.json").write_text(json.dumps({"per_seed": per_seed}))
    sys.argv = ["minatar_results", str(tmp_path), "--out", str(tmp_path / "out")]
    results.main()
    rows = list(csv.DictReader((tmp_path / "out" / "per_seed.csv").open()))
    by = {(r["algorithm"], r["seed"]): r for r in rows}
    # Two points of one seed are two agents, never merged; their scores are their own entries.
    assert by[("minatar-dsqn [network.tau=1.5]", "0")]["final"] == "2.25"
    assert by[("minatar-dsqn [network.tau=4]", "0")]["best"] == "2.25"
    assert by[("minatar-dsqn [network.tau=4]", "0")]["tau"] == "4.0"
    assert by[("minatar-dsqn", "0")]["final"] == "3.0" and by[("minatar-dsqn", "0")]["tau"] == ""
    text = (tmp_path / "out" / "results.md").read_text()
    variants = text.split("## Variants on one seed")[1].split("##")[0]
    lines = [line for line in variants.splitlines() if line.startswith("| Breakout")]
    # Seed 0 of the 3-seed cell first, then the one-seed runs.
    assert lines[0].startswith("| Breakout | minatar-dsqn (seed 0) |")
    assert any("| minatar-dsqn-T4 |" in line and "| 1.50 |" in line for line in lines)
    main_table = text.split("## Published")[0]
    assert "minatar-dsqn-T4" not in main_table and "tau=1.5" not in main_table
    # The published reference: Breakout's random 0.416 and Young & Tian's DQN 10.1; DSQN's
    # finals 3.0 and 5.0 normalise to 26.7% and 47.3%: their IQM (two seeds) is the mean, 37%.
    dsqn_line = next(line for line in main_table.splitlines() if "| minatar-dsqn |" in line)
    assert "| 37% [" in dsqn_line
    assert (tmp_path / "out" / "variants_Breakout.png").stat().st_size > 0
    assert "| Breakout | 9.2 | 10.1 |" in text


def _converted(root: Path, per_seed_values: list[tuple[float, float, float, dict]]) -> None:
    """A converted run directory as ``dsqn convert`` writes it (the fields the script reads):
    per seed the DQN's score, the SNN's, the matching rate and the firing rates."""
    run = root / "Breakout" / "converted-snn"
    run.mkdir(parents=True)
    config = {"name": "converted-snn", "env": {"suite": "minatar", "game": "Breakout"}}
    (run / "config.json").write_text(json.dumps(config))
    per_seed = {
        str(seed): {
            "agent_steps": 900_000 + seed,
            "ann": {"mean": ann},
            "snn": {"mean": snn},
            "matching_rate": match,
            "firing_rates": rates,
            "energy_per_action_nj": {"snn": 900.0 + 100 * seed, "ann": 774.0},
        }
        for seed, (ann, snn, match, rates) in enumerate(per_seed_values)
    }
    conversion = {
        "time_steps": 500, "percentile": 99.9, "normalization_frames": 15_000,
        "checkpoint": "best", "episodes": 30, "per_seed": per_seed,
    }  # fmt: skip
    (run / "conversion.json").write_text(json.dumps(conversion))


def test_converted_runs_are_tabled_beside_their_dqn(tmp_path):
    _run(tmp_path, "minatar-dqn", {0: [1.0, 2.0], 1: [1.0, 4.0]})
    rates = [{"conv1": 0.1, "fc1": 0.2, "fc2": 0.3}, {"conv1": 0.3, "fc1": 0.4, "fc2": 0.5}]
    _converted(tmp_path, [(16.0, 12.0, 0.9, rates[0]), (18.0, 15.0, 0.8, rates[1])])
    sys.argv = ["minatar_results", str(tmp_path), "--out", str(tmp_path / "out")]
    results.main()
    rows = list(csv.DictReader((tmp_path / "out" / "conversion.csv").open()))
    assert [(r["seed"], r["snn"], r["ann"]) for r in rows] == [
        ("0", "12.0", "16.0"),
        ("1", "15.0", "18.0"),
    ]
    assert rows[1]["source_agent_steps"] == "900001" and rows[0]["rate_fc1"] == "0.2"
    text = (tmp_path / "out" / "results.md").read_text()
    table = text.split("## ANN-to-SNN conversion")[1].split("##")[0]
    line = next(line for line in table.splitlines() if line.startswith("| Breakout"))
    # Means ± standard errors over the two seeds, by hand: DQN 17 ± 1, SNN 13.5 ± 1.5.
    assert line == (
        "| Breakout | 500 | 99.9 | 15,000 | 2 | 17.00 ± 1.00 | 13.50 ± 1.50 | 0.850 | "
        "0.200 / 0.300 / 0.400 | 950 / 774 |"
    )
    # Converted runs are not training runs: no row of their own in the training tables.
    assert all(r["algorithm"] != "converted-snn" for r in csv.DictReader(
        (tmp_path / "out" / "per_seed.csv").open()
    ))  # fmt: skip


def test_energy_measurements_are_tabled(tmp_path):
    _run(tmp_path, "minatar-dsqn", {0: [1.0, 2.0], 1: [1.0, 4.0]})
    run = tmp_path / "Breakout" / "minatar-dsqn"
    energy = {
        "time_steps": 8, "checkpoint": "best", "seeds": [0, 1], "episodes": 30,
        "firing_rate": 0.12345, "synaptic_ops_per_action": 123456.7,
        "macs_per_action_first_layer": 36864.0,
        "energy_per_action_nj": {"snn": 280.44, "ann": 774.27, "converted_snn": None},
    }  # fmt: skip
    (run / "energy.json").write_text(json.dumps(energy))
    sys.argv = ["minatar_results", str(tmp_path), "--out", str(tmp_path / "out")]
    results.main()
    text = (tmp_path / "out" / "results.md").read_text()
    table = text.split("## Energy per action")[1].split("##")[0]
    assert "| Breakout | minatar-dsqn | 8 | best | 2 | 0.1235 | 123,457 | 36,864 | 280 / 774 |" in (
        table
    )
