"""Tests of the figures of dsqn.reports (curves, curve_figures, bar_figures, score_figures, plots)
on synthetic run directories (see test_report.make_run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from test_report import ENERGY_FULL, TAU_LABELS, TAU_SCORES, make_run, make_sweep_run

from dsqn.reports import curve_figures, plots
from dsqn.reports.bar_figures import energy_figures, firing_rate_figures
from dsqn.reports.curve_figures import learning_curve_figures
from dsqn.reports.curves import Curve, aggregate, metrics_firing_rates, read_curves
from dsqn.reports.score_figures import performance_profile_figure, sensitivity_figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "Pong" / "dqn", "Pong", "dqn", {0: (1, 10.0), 1: (1, 14.0)}, spiking=False)
    make_run(root / "Pong" / "dsqn", "Pong", "dsqn", {0: (1, 12.0), 1: (1, 20.0)}, ENERGY_FULL)
    make_run(root / "Breakout" / "dsqn", "Breakout", "dsqn", {0: (1, 5.0)})
    return root


def _assert_pngs(paths: list[Path]) -> None:
    assert paths
    for path in paths:
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_read_curves_per_seed(root: Path) -> None:
    curves = read_curves(root, "evaluations.csv", "return_mean")
    assert sorted((c.game, c.algorithm, c.seed) for c in curves) == [
        ("Breakout", "dsqn", 0),
        ("Pong", "dqn", 0),
        ("Pong", "dqn", 1),
        ("Pong", "dsqn", 0),
        ("Pong", "dsqn", 1),
    ]
    curve = next(c for c in curves if (c.game, c.algorithm, c.seed) == ("Pong", "dqn", 1))
    np.testing.assert_allclose(curve.agent_steps, [250_000, 500_000, 750_000, 1_000_000])
    np.testing.assert_allclose(curve.values, [3.5, 7.0, 10.5, 14.0])
    # The first log point has no completed episode: its empty episode_return is left out.
    training = read_curves(root, "metrics.csv", "episode_return")
    assert all(len(c.values) == 9 for c in training)


def test_aggregate_bands_and_ragged_curves() -> None:
    a = Curve("Pong", "dqn", "atari", 0, np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 4.0]))
    b = Curve("Pong", "dqn", "atari", 1, np.array([1.0, 2.0]), np.array([2.0, 6.0]))
    minmax = aggregate([a, b], "minmax")
    np.testing.assert_allclose(minmax.agent_steps, [1, 2, 3])
    np.testing.assert_allclose(minmax.mean, [1, 4, 4])
    np.testing.assert_allclose(minmax.low, [0, 2, 4])
    np.testing.assert_allclose(minmax.high, [2, 6, 4])
    np.testing.assert_array_equal(minmax.counts, [2, 2, 1])
    std = aggregate([a, b], "std")
    np.testing.assert_allclose(std.high - std.mean, [np.sqrt(2), np.sqrt(8), 0])
    smoothed = aggregate([a], "minmax", smoothing=2)
    np.testing.assert_allclose(smoothed.mean, [0, 1, 3])
    with pytest.raises(ValueError, match="unknown band 'sem'; valid: minmax, std"):
        aggregate([a], "sem")


def test_learning_curves(root: Path, tmp_path: Path) -> None:
    paths = plots.plot_learning_curves(root, tmp_path, "return_mean")
    assert [p.name for p in paths] == [
        "learning_return_mean_Breakout.png",
        "learning_return_mean_Pong.png",
        "learning_return_mean_all_games.png",
    ]
    _assert_pngs(paths)
    max_q = plots.plot_learning_curves(root, tmp_path, "average_max_q", x="frames", band="std")
    _assert_pngs(max_q)
    assert max_q[0].name == "learning_average_max_q_Breakout.png"
    with pytest.raises(ValueError, match="unknown metric 'score'"):
        plots.plot_learning_curves(root, tmp_path, "score")


def test_x_axis_unit_follows_the_range() -> None:
    def curve(last_step: float, suite: str = "classic") -> Curve:
        steps = np.array([0.0, last_step])
        return Curve("g", "dqn", suite, 0, steps, np.zeros(2))

    assert curve_figures._x_unit([curve(400)], "agent_steps") == (1.0, "")
    assert curve_figures._x_unit([curve(400), curve(1200)], "agent_steps") == (1e3, "thousands")
    assert curve_figures._x_unit([curve(5e7, "atari")], "agent_steps") == (1e6, "millions")
    assert curve_figures._x_unit([curve(3e5, "atari")], "frames") == (1e6, "millions")
    assert curve_figures._x_label("agent_steps", "thousands") == "agent steps (thousands)"
    assert curve_figures._x_label("frames", "") == "emulator frames"


def test_all_plots(root: Path, tmp_path: Path) -> None:
    paths = plots.write_all_plots(root, tmp_path)
    names = {p.name for p in paths}
    assert {
        "training_return_Pong.png",
        "training_return_all_games.png",
        "firing_rates_Pong.png",
        "firing_rates_Breakout.png",
        "energy_Pong.png",
        "learning_average_max_q_Pong.png",
    } <= names
    # Only Pong/dsqn has an energy.json.
    assert "energy_Breakout.png" not in names
    _assert_pngs(paths)


def test_firing_rates_from_metrics_tail(root: Path) -> None:
    rates = metrics_firing_rates(root / "Breakout" / "dsqn" / "metrics.csv")
    # 10 log points: the last one (10%) has conv1 rate 0.1 + 0.01 * 9.
    assert rates["conv1"] == pytest.approx([0.19])
    assert set(rates) == {"conv1", "conv2", "conv3", "fc1"}


def test_import_keeps_the_backend_and_figures_are_returned(root: Path) -> None:
    import os
    import subprocess
    import sys

    script = (
        "import sys, matplotlib; import dsqn.reports.plots; "
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)"
    )
    env = {**os.environ, "MPLBACKEND": "svg"}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["svg", "False"], out.stderr
    figures = learning_curve_figures(root, "return_mean")
    assert list(figures) == [
        "learning_return_mean_Breakout",
        "learning_return_mean_Pong",
        "learning_return_mean_all_games",
    ]
    assert all(isinstance(f, Figure) for f in figures.values())
    pong = figures["learning_return_mean_Pong"].axes[0]
    assert {line.get_label() for line in pong.get_lines()} >= {"dqn (2 seeds)", "dsqn (2 seeds)"}


def test_performance_profile_figure(root: Path, tmp_path: Path) -> None:
    from dsqn.reports import aggregates
    from dsqn.reports.results import collect
    from dsqn.reports.tables import human_normalized_matrix

    fig = performance_profile_figure(root, "best", reps=200)
    assert isinstance(fig, Figure)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    # dsqn has two seeds on Pong and one on Breakout: left out, as in the report's aggregates.
    assert set(lines) == {"dqn (1 games x 2 seeds)"}
    line = lines["dqn (1 games x 2 seeds)"]
    _, matrix = human_normalized_matrix(collect(root), "dqn", "best")
    expected = (matrix.reshape(-1)[None, :] > line.get_xdata()[:, None]).mean(axis=1)
    np.testing.assert_allclose(line.get_ydata(), expected)
    assert aggregates.performance_profile(matrix, line.get_xdata(), reps=10)[0][0] == 1.0
    names = {p.name for p in plots.write_all_plots(root, tmp_path)}
    assert {"performance_profile_best.png", "performance_profile_final.png"} <= names


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tau sweep (3 values x 3 seeds), a two-field grid, and a plain run, all on Pong."""
    root = tmp_path_factory.mktemp("sweeps")
    make_sweep_run(root / "tau", "Pong", "dsqn", {"network_tau": [1.5, 2.0, 16.0]}, TAU_SCORES)
    grid = {
        (2.0, 1e-4): {0: (1.0, 1.0), 1: (1.0, 3.0)},
        (2.0, 3e-4): {0: (2.0, 2.0)},
        (4.0, 1e-4): {0: (3.0, 3.0)},
        (4.0, 3e-4): {0: (4.0, 4.0)},
    }
    sweep = {"network_tau": [2.0, 4.0], "learner_learning_rate": [1e-4, 3e-4]}
    make_sweep_run(root / "grid", "Pong", "cdsqn", sweep, grid)
    make_run(root / "plain", "Pong", "dqn", {0: (1, 10.0)}, spiking=False)
    return root


def test_read_curves_per_sweep_point(sweep_root: Path) -> None:
    curves = read_curves(sweep_root / "tau", "evaluations.csv", "return_mean")
    assert [(c.algorithm, c.seed) for c in curves] == [
        (label, seed) for label in TAU_LABELS for seed in (0, 1, 2)
    ]
    tau16_seed2 = curves[-1]
    np.testing.assert_allclose(tau16_seed2.values, [3.0, 6.0, 9.0, 12.0])
    training = read_curves(sweep_root / "tau", "metrics.csv", "episode_return")
    assert len(training) == 9 and all(len(c.values) == 10 for c in training)


def test_learning_curves_one_line_per_point(sweep_root: Path) -> None:
    figures = learning_curve_figures(sweep_root, "return_mean")
    pong = figures["learning_return_mean_Pong"].axes[0]
    lines = {line.get_label(): line for line in pong.get_lines()}
    assert [label for label in lines if label.startswith("dsqn")] == [
        f"{label} (3 seeds)" for label in TAU_LABELS
    ]
    # Mean over the 3 seeds of tau=1.5 at the last evaluation: (10 + 20 + 30) / 3.
    assert lines["dsqn [network.tau=1.5] (3 seeds)"].get_ydata()[-1] == pytest.approx(20.0)
    colors = [tuple(lines[f"{label} (3 seeds)"].get_color()) for label in TAU_LABELS]
    assert len(set(colors)) == 3
    assert "cdsqn [network.tau=4, learner.learning_rate=0.0003] (1 seed)" in lines


def test_sweep_missing_column_is_named(tmp_path: Path) -> None:
    run = make_sweep_run(
        tmp_path / "tau", "Pong", "dsqn", {"network_tau": [1.5]}, {(1.5,): {0: (1, 1)}}
    )
    text = (run / "evaluations.csv").read_text().replace("network.tau", "tau")
    (run / "evaluations.csv").write_text(text)
    with pytest.raises(ValueError, match=r"evaluations.csv lacks one of the columns seed, network"):
        read_curves(run, "evaluations.csv", "return_mean")


def test_sensitivity_figures(sweep_root: Path) -> None:
    figures = sensitivity_figures(sweep_root, "final")
    assert list(figures) == [
        "sensitivity_final_Pong_dsqn_network.tau",
        "sensitivity_final_Pong_cdsqn_network.tau",
        "sensitivity_final_Pong_cdsqn_learner.learning_rate",
    ]
    tau = figures["sensitivity_final_Pong_dsqn_network.tau"].axes[0]
    assert tau.get_xscale() == "log"  # 16 / 1.5 > 10
    (container,) = tau.containers  # the errorbar: line, caps, bars
    line, _, (bars,) = container
    np.testing.assert_allclose(line.get_xdata(), [1.5, 2.0, 16.0])
    np.testing.assert_allclose(line.get_ydata(), [20.0, 5.0, 6.0])
    # Error bars: one standard error, s / sqrt(n), either side of each point's mean.
    half_widths = [abs(segment[1, 1] - segment[0, 1]) / 2 for segment in bars.get_segments()]
    np.testing.assert_allclose(half_widths, [10 / np.sqrt(3), 0.0, 2 * np.sqrt(3)])
    grid_tau = figures["sensitivity_final_Pong_cdsqn_network.tau"].axes[0]
    assert grid_tau.get_xscale() == "linear"  # 4 / 2
    lines = {c.get_label(): c.lines[0] for c in grid_tau.containers}
    assert set(lines) == {"learner.learning_rate=0.0001", "learner.learning_rate=0.0003"}
    # tau=2 with the lower rate: seeds 0 and 1 score 1 and 3.
    np.testing.assert_allclose(lines["learner.learning_rate=0.0001"].get_ydata(), [2.0, 3.0])
    rate = figures["sensitivity_final_Pong_cdsqn_learner.learning_rate"].axes[0]
    assert rate.get_xscale() == "linear"  # 3e-4 / 1e-4 = 3
    assert sensitivity_figures(sweep_root / "plain") == {}


def test_all_plots_with_a_sweep(sweep_root: Path, tmp_path: Path) -> None:
    names = {p.name for p in plots.write_all_plots(sweep_root, tmp_path)}
    assert {
        "sensitivity_final_Pong_dsqn_network.tau.png",
        "sensitivity_best_Pong_dsqn_network.tau.png",
        "learning_return_mean_Pong.png",
        "training_return_Pong.png",
    } <= names


def test_firing_rates_from_metrics_per_agent(sweep_root: Path) -> None:
    rates = metrics_firing_rates(sweep_root / "tau" / "metrics.csv")
    # One value per agent (3 points x 3 seeds), each point's conv1 rate 0.1 x its index + 1.
    np.testing.assert_allclose(sorted(rates["conv1"]), [0.1] * 3 + [0.2] * 3 + [0.3] * 3)


def _bars(ax) -> dict[str, list[float]]:
    """Legend label -> the heights of its bars."""
    return {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}


def test_firing_rate_bars_per_sweep_point(sweep_root: Path) -> None:
    pong = firing_rate_figures(sweep_root)["firing_rates_Pong"].axes[0]
    bars = _bars(pong)
    # metrics.csv: each point's conv1 rate is 0.1 x (its index + 1), for all 3 seeds.
    for i, label in enumerate(TAU_LABELS):
        assert bars[f"{label} (training metrics)"][0] == pytest.approx(0.1 * (i + 1))
    assert "dsqn (training metrics)" not in bars


def test_energy_bars_per_sweep_point(tmp_path: Path) -> None:
    scores = {(1.5,): {0: (1.0, 1.0), 1: (1.0, 1.0)}, (2.0,): {0: (1.0, 1.0)}}
    per_seed = {
        "network.tau=1.5,seed=0": {"energy_per_action_nj": {"snn": 10.0}},
        "network.tau=1.5,seed=1": {"energy_per_action_nj": {"snn": 30.0}},
        "network.tau=2,seed=0": {"energy_per_action_nj": {"snn": 60.0}},
    }
    energy = {"energy_per_action_nj": {"snn": 1000.0}, "per_seed": per_seed}
    make_sweep_run(tmp_path / "a", "Pong", "dsqn", {"network_tau": [1.5, 2.0]}, scores, energy)
    ax = energy_figures(tmp_path)["energy_Pong"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "dsqn [network.tau=1.5]",
        "dsqn [network.tau=2]",
    ]
    (snn,) = _bars(ax).values()
    np.testing.assert_allclose(snn, [20.0, 60.0])  # each point's agents, not the file's mean
