"""dsqn.config.sweep: the agents of a sweep, their values, what cannot be swept, and a sweep trained
end to end from the command line (each agent equal to its solo run)."""

import csv
import dataclasses
import json

import jax
import numpy as np
import pytest

from dsqn import config as C
from dsqn import load_agent
from dsqn.cli import main
from dsqn.config import sweep as S
from dsqn.learning import agent


def _swept(preset: str = "cartpole-dsqn", **values) -> C.Config:
    overrides = {f"sweep.{k}": " ".join(map(str, v)) for k, v in values.items()}
    return C.validate(C.apply_overrides(C.preset(preset), overrides))


def test_agents_are_the_cartesian_product_point_major():
    config = _swept(network_tau=(1.5, 2, 4), learner_learning_rate=(1e-3, 3e-3))
    agents = S.agents(config)
    assert len(agents) == 3 * 2 * 3  # tau x lr x seeds (0, 1, 2)
    assert [a.seed for a in agents[:4]] == [0, 1, 2, 0]
    assert agents[0].values == (("network.tau", 1.5), ("learner.learning_rate", 1e-3))
    assert agents[3].values == (("network.tau", 1.5), ("learner.learning_rate", 3e-3))
    assert agents[-1].values == (("network.tau", 4.0), ("learner.learning_rate", 3e-3))
    assert agents[4].label == "network.tau=1.5, learner.learning_rate=0.003, seed 1"
    assert agents[4].matches({"network.tau": 1.5, "seed": 1})
    assert not agents[4].matches({"network.tau": 2.0})
    hyper = S.hyperparameters(config)
    assert set(hyper) == set(S.SWEEPABLE)
    np.testing.assert_allclose(hyper["network.tau"], np.repeat([1.5, 2, 4], 6))
    np.testing.assert_allclose(
        hyper["learner.learning_rate"], np.tile(np.repeat([1e-3, 3e-3], 3), 3)
    )
    np.testing.assert_allclose(hyper["learner.discount"], np.full(18, 0.99), rtol=1e-7)


def test_without_a_sweep_every_seed_is_one_agent():
    config = C.preset("cartpole-dsqn")
    assert [a.label for a in S.agents(config)] == ["seed 0", "seed 1", "seed 2"]
    assert S.axes(config) == []
    np.testing.assert_allclose(S.hyperparameters(config)["network.tau"], [2.0, 2.0, 2.0])


def test_point_config_is_the_agent_trained_alone():
    config = _swept(network_tau=(1.5, 4))
    alone = S.point_config(config, {"network.tau": 4.0})
    assert alone.network.tau == 4.0 and alone.sweep == C.SweepConfig()
    assert dataclasses.replace(alone, network=config.network) == dataclasses.replace(
        config, sweep=C.SweepConfig()
    )


def test_sweepable_fields_exist_and_are_numeric():
    for path in S.SWEEPABLE:
        section, field = path.split(".")
        assert isinstance(getattr(getattr(C.Config(), section), field), float), path
        assert S.sweep_field(path) == f"sweep.{section}_{field}"


@pytest.mark.parametrize("path", ["network.time_steps", "network.neuron", "learner.batch_size"])
def test_fields_that_shape_the_program_cannot_be_swept(path):
    with pytest.raises(C.ConfigError, match="cannot be swept.*sweepable fields: network.tau"):
        S.sweep_field(path)


@pytest.mark.parametrize(
    "values,needle",
    [
        (dict(network_tau=(2, 2)), "repeated values"),
        (dict(network_tau=(2, -1)), r"sweep value network.tau=-1: network.tau must be > 0"),
        (dict(learner_discount=(0.9, 1.5)), "learner.discount must be in"),
    ],
)
def test_impossible_sweeps_are_rejected(values, needle):
    with pytest.raises(C.ConfigError, match=needle):
        _swept(**values)


@pytest.mark.parametrize(
    "preset,values,needle",
    [
        ("cartpole-dqn", dict(network_tau=(1.5, 4)), "network.kind is 'dqn'"),
        ("cartpole-dsqn", dict(learner_epsilon_mid=(0.1, 0.2)), "epsilon_schedule is 'linear'"),
        (
            "cartpole-dsqn",
            dict(learner_neuron_learning_rate_scale=(0.1, 1.0)),
            "no learnable neuron parameters",
        ),
    ],
)
def test_sweeps_that_change_nothing_are_rejected(preset, values, needle):
    with pytest.raises(C.ConfigError, match=needle):
        _swept(preset, **values)


def test_agent_network_and_learner_take_the_agent_values():
    network = S.agent_network(agent.make_network(C.NetworkConfig(), 2, (4,)), _values(tau=3.0))
    assert network.tau == 3.0 and network.surrogate_alpha == 2.0
    relu = agent.make_network(C.NetworkConfig(kind="dqn"), 2, (4,))
    assert S.agent_network(relu, _values(tau=3.0)) is relu
    learner = S.agent_learner(C.LearnerConfig(), _values(learning_rate=0.5))
    assert learner.learning_rate == 0.5 and learner.discount == np.float32(0.99)


def _values(**changed):
    values = {k: v[0] for k, v in S.hyperparameters(C.preset("cartpole-dsqn")).items()}
    for name, value in changed.items():
        (path,) = [p for p in values if p.endswith("." + name)]
        values[path] = value
    return values


# ----------------------------------------------------------------------------- end to end

TINY = [
    "--run.total_agent_steps", "320",
    "--run.log_period_agent_steps", "160",
    "--run.checkpoint_period_agent_steps", "320",
    "--eval.period_agent_steps", "160",
    "--eval.episodes", "2",
    "--eval.max_episode_agent_steps", "40",
    "--learner.warmup_agent_steps", "100",
    "--learner.replay_capacity_transitions", "1000",
    "--learner.batch_size", "16",
    "--network.hidden_sizes", "16",
    "--network.time_steps", "4",
]  # fmt: skip


@pytest.fixture(scope="module")
def swept_run(tmp_path_factory):
    """``dsqn train cartpole-dsqn --seeds 0 1 --sweep network.tau 1.5 4 --sweep
    learner.learning_rate 1e-3 3e-4``, and the solo run of one of its agents."""
    root = tmp_path_factory.mktemp("sweep")
    sweep_dir, solo_dir = root / "sweep", root / "solo"
    args = ["train", "cartpole-dsqn", "--no-progress", *TINY]
    grid = ["--sweep", "network.tau", "1.5", "4", "--sweep", "learner.learning_rate", "1e-3"]
    grid += ["3e-4"]
    assert main([*args, "--seeds", "0", "1", *grid, "--run-dir", str(sweep_dir)]) == 0
    solo = ["--seeds", "1", "--network.tau", "4", "--learner.learning_rate", "3e-4"]
    assert main([*args, *solo, "--run-dir", str(solo_dir)]) == 0
    return sweep_dir, solo_dir


def test_a_swept_agent_equals_its_solo_run(swept_run):
    sweep_dir, solo_dir = swept_run
    values = {"network.tau": 4.0, "learner.learning_rate": 3e-4}
    for checkpoint in ("final", "best"):
        swept = load_agent(sweep_dir, checkpoint, seed=1, values=values)
        alone = load_agent(solo_dir, checkpoint, seed=1)
        assert swept.values == values and swept.config.network.tau == 4.0
        assert swept.agent_steps == alone.agent_steps
        for a, b in zip(jax.tree.leaves(swept.params), jax.tree.leaves(alone.params), strict=True):
            np.testing.assert_array_equal(a, b)
    key = "network.tau=4,learner.learning_rate=0.0003,seed=1"
    evaluation = json.loads((sweep_dir / "evaluation.json").read_text())["per_seed"]
    alone = json.loads((solo_dir / "evaluation.json").read_text())["per_seed"]["1"]
    assert evaluation[key]["seed"] == 1 and evaluation[key]["values"] == values
    assert evaluation[key]["final"] == alone["final"]
    # The agents differ: another learning rate learns other parameters from the same data.
    other = load_agent(sweep_dir, "final", seed=1, values={**values, "learner.learning_rate": 1e-3})
    assert not np.array_equal(jax.tree.leaves(other.params)[0], jax.tree.leaves(swept.params)[0])


def test_sweep_results_carry_the_values(swept_run):
    sweep_dir, _ = swept_run
    config = json.loads((sweep_dir / "config.json").read_text())
    assert config["sweep"]["network_tau"] == [1.5, 4.0]
    for name in ("metrics.csv", "evaluations.csv"):
        with open(sweep_dir / name) as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0])[:3] == ["seed", "network.tau", "learner.learning_rate"]
        points = {
            (r["seed"], float(r["network.tau"]), float(r["learner.learning_rate"])) for r in rows
        }
        assert len(points) == 8
    evaluation = json.loads((sweep_dir / "evaluation.json").read_text())
    assert len(evaluation["per_seed"]) == 8
    with pytest.raises(ValueError, match="has no agent with network.tau=3"):
        load_agent(sweep_dir, "final", values={"network.tau": 3})
    with pytest.raises(ValueError, match="did not sweep network.v_threshold"):
        load_agent(sweep_dir, "final", values={"network.v_threshold": 1})


def test_cli_rejects_a_field_that_cannot_be_swept(tmp_path, capsys):
    args = ["train", "cartpole-dsqn", "--sweep", "network.time_steps", "4", "8"]
    assert main([*args, "--run-dir", str(tmp_path / "r")]) == 2
    assert "network.time_steps cannot be swept" in capsys.readouterr().err


def test_report_shows_the_sensitivity_to_each_swept_value(swept_run, tmp_path, capsys):
    sweep_dir, solo_dir = swept_run
    assert main(["report", str(sweep_dir), str(solo_dir), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "dsqn [network.tau=4, learner.learning_rate=0.0003]" in text
    assert "Sensitivity to the swept hyperparameters" in text
    with open(tmp_path / "sensitivity.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {float(r["network.tau"]) for r in rows} == {1.5, 4.0}
    figures = {p.name for p in (tmp_path / "figures").glob("sensitivity_*.png")}
    assert any("network.tau" in name for name in figures)
