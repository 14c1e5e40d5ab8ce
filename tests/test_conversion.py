"""Tests of dsqn.models.conversion (normalisation arithmetic, rate approximation) and
dsqn.analyses.convert_run."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_CARTPOLE_DQN

from dsqn import cli
from dsqn.analyses import convert_run as convert
from dsqn.models import conversion
from dsqn.models.networks import DQN, MLPDQN, MinAtarDQN
from dsqn.reports import runs
from dsqn.rundir.loading import load_agent


@pytest.fixture(scope="module")
def dqn_run(tiny_cartpole_dqn_run):
    return tiny_cartpole_dqn_run


# The tiny CartPole run's settings (400 agent steps, tiny replay), on MinAtar Breakout.
TINY_MINATAR_DQN = [
    "train", "minatar-dqn", "--game", "Breakout",
    *(a for a in TINY_CARTPOLE_DQN[2:] if a != "--network.hidden_sizes" and a != "16"),
]  # fmt: skip


@pytest.fixture(scope="module")
def minatar_dqn_run(tmp_path_factory):
    """A real, tiny `minatar-dqn` Breakout run directory (one seed, 400 agent steps)."""
    run_dir = tmp_path_factory.mktemp("minatar-runs") / "dqn"
    assert cli.main([*TINY_MINATAR_DQN, "--run-dir", str(run_dir)]) == 0
    return run_dir


def _two_layer():
    """MLPDQN(2, (2,)) with hand-set parameters: fc1 (3 -> 2), out (2 -> 2)."""
    net = MLPDQN(2, hidden_sizes=(2,))
    params = {
        "fc1": {
            "kernel": jnp.array([[1.0, -2.0], [3.0, 0.5], [0.0, 1.0]]),
            "bias": jnp.array([0.5, -1.0]),
        },
        "out": {"kernel": jnp.array([[2.0, 1.0], [-1.0, 4.0]]), "bias": jnp.array([1.0, 0.0])},
    }
    return net, params


def _random_mlp(key, hidden=(64, 64), obs_dim=6, actions=4):
    net = MLPDQN(actions, hidden_sizes=hidden)
    params = net.init(key, jnp.zeros((1, obs_dim)))["params"]
    return net, params


def _pre_activations(net, params, obs):
    _, state = net.apply(
        {"params": params}, obs, capture_intermediates=True, mutable=["intermediates"]
    )
    captured = state["intermediates"]
    return {n: np.asarray(captured[n]["__call__"][0]) for n in conversion.layer_order(net)}


def test_normalize_params_arithmetic():
    net, params = _two_layer()
    out = conversion.normalize_params(params, {"fc1": 2.0, "out": 8.0}, ("fc1", "out"))
    np.testing.assert_allclose(out["fc1"]["kernel"], params["fc1"]["kernel"] / 2.0)
    np.testing.assert_allclose(out["fc1"]["bias"], params["fc1"]["bias"] / 2.0)
    np.testing.assert_allclose(out["out"]["kernel"], params["out"]["kernel"] * 2.0 / 8.0)
    np.testing.assert_allclose(out["out"]["bias"], params["out"]["bias"] / 8.0)
    # The normalised network computes a_l / lambda_l at every layer.
    obs = jnp.array([[0.2, 0.7, -0.3], [1.0, 0.0, 0.5]])
    before, after = _pre_activations(net, params, obs), _pre_activations(net, out, obs)
    np.testing.assert_allclose(after["fc1"], before["fc1"] / 2.0, rtol=1e-6)
    np.testing.assert_allclose(after["out"], before["out"] / 8.0, rtol=1e-6)


def test_layer_scales_are_numpy_percentiles_of_pre_activations():
    net, params = _two_layer()
    obs = np.asarray(jax.random.uniform(jax.random.key(0), (37, 3)))
    w1, b1 = np.asarray(params["fc1"]["kernel"]), np.asarray(params["fc1"]["bias"])
    w2, b2 = np.asarray(params["out"]["kernel"]), np.asarray(params["out"]["bias"])
    pre1 = obs @ w1 + b1
    pre2 = np.maximum(pre1, 0) @ w2 + b2
    for q in (50.0, 99.9, 100.0):
        scales = conversion.layer_scales(net, params, obs, q, batch_size=10)
        np.testing.assert_allclose(scales["fc1"], np.percentile(pre1, q), rtol=1e-5)
        np.testing.assert_allclose(scales["out"], np.percentile(pre2, q), rtol=1e-5)


def test_layer_scales_reject_bad_values():
    net, params = _two_layer()
    obs = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="percentile must lie in"):
        conversion.layer_scales(net, params, obs, 0.0)
    dead = {**params, "out": {**params["out"], "bias": jnp.array([-100.0, -100.0])}}
    with pytest.raises(ValueError, match="'out'"):
        conversion.layer_scales(net, dead, obs, 99.9)
    with pytest.raises(ValueError, match="must be > 0"):
        conversion.normalize_params(params, {"fc1": 1.0, "out": -1.0}, ("fc1", "out"))
    with pytest.raises(ValueError, match="unknown output_scale 'max'"):
        conversion.layer_scales(net, params, obs, 99.9, output_scale="max")


def test_output_scale_abs_percentile_handles_negative_q_values():
    """All Q-values negative: the paper's rule fails with a hint at the named option, which
    scales the output layer by the percentile of |Q| and leaves the hidden layers alone."""
    net, params = _two_layer()
    negative = {**params, "out": {**params["out"], "bias": jnp.array([-100.0, -90.0])}}
    obs = np.asarray(jax.random.uniform(jax.random.key(1), (23, 3)))
    with pytest.raises(ValueError, match="abs_percentile"):
        conversion.layer_scales(net, negative, obs, 99.9)
    scales = conversion.layer_scales(net, negative, obs, 99.9, output_scale="abs_percentile")
    pre = _pre_activations(net, negative, jnp.asarray(obs))
    np.testing.assert_allclose(scales["out"], np.percentile(np.abs(pre["out"]), 99.9), rtol=1e-5)
    np.testing.assert_allclose(scales["fc1"], np.percentile(pre["fc1"], 99.9), rtol=1e-5)


def test_converted_networks_share_the_parameter_trees():
    key = jax.random.key(0)
    frames = jnp.zeros((1, 4, 84, 84), jnp.uint8)
    shapes = lambda net, x: jax.tree.map(  # noqa: E731
        jnp.shape, jax.eval_shape(net.init, key, x)["params"]
    )
    dqn = DQN(6)
    snn = conversion.converted_network(dqn, time_steps=3)
    assert isinstance(snn, conversion.ConvertedSNN)
    assert shapes(snn, frames) == shapes(dqn, frames)
    mlp = MLPDQN(2, hidden_sizes=(8, 5))
    vectors = jnp.zeros((1, 4))
    assert shapes(conversion.converted_network(mlp), vectors) == shapes(mlp, vectors)
    _, state = jax.eval_shape(
        lambda: snn.init_with_output(key, frames, mutable=["params", "intermediates"])
    )
    sown = {k: v[0].shape for k, v in state["intermediates"].items()}
    assert sown == {
        "spikes_conv1": (1, 20, 20, 32),
        "spikes_conv2": (1, 9, 9, 64),
        "spikes_conv3": (1, 7, 7, 64),
        "spikes_fc1": (1, 512),
        "spikes_fc2": (1, 6),
    }
    assert conversion.layer_order(snn) == conversion.layer_order(dqn)


def test_the_converted_minatar_network_shares_the_dqns_parameter_tree():
    key = jax.random.key(0)
    obs = jnp.zeros((1, 10, 10, 4), bool)
    dqn = MinAtarDQN(3)
    snn = conversion.converted_network(dqn, time_steps=3)
    assert isinstance(snn, conversion.ConvertedMinAtarSNN)
    shapes = lambda net: jax.tree.map(  # noqa: E731
        jnp.shape, jax.eval_shape(net.init, key, obs)["params"]
    )
    assert shapes(snn) == shapes(dqn)
    _, state = jax.eval_shape(
        lambda: snn.init_with_output(key, obs, mutable=["params", "intermediates"])
    )
    sown = {k: v[0].shape for k, v in state["intermediates"].items()}
    assert sown == {"spikes_conv1": (1, 8, 8, 16), "spikes_fc1": (1, 128), "spikes_fc2": (1, 3)}
    assert conversion.layer_order(snn) == conversion.layer_order(dqn) == ("conv1", "fc1", "fc2")
    with pytest.raises(ValueError, match=r"\[B, 10, 10, C\]"):
        snn.init(key, jnp.zeros((1, 4, 84, 84)))


def _rate_errors(net, params, obs, time_steps=(20, 500)):
    """Mean |spike rate - normalised ReLU activation| per T, and |Q/T - normalised Q|."""
    scales = conversion.layer_scales(net, params, obs, 99.9)
    normalized = conversion.normalize_params(params, scales, conversion.layer_order(net))
    pre = _pre_activations(net, normalized, obs)
    *hidden, output = conversion.layer_order(net)
    errors = {}
    for t in time_steps:
        snn = conversion.converted_network(net, time_steps=t)
        run = jax.jit(lambda x, snn=snn: snn.apply({"params": normalized}, x, mutable=True))
        q, state = run(obs)
        counts = state["intermediates"]
        rate_error = max(
            float(np.mean(np.abs(counts[f"spikes_{n}"][0] / t - np.clip(pre[n], 0, 1))))
            for n in hidden
        )
        q_error = float(np.mean(np.abs(np.asarray(q) / t - pre[output])))
        errors[t] = (rate_error, q_error)
    return errors


def test_spike_rates_approach_normalized_relu_on_a_random_mlp():
    net, params = _random_mlp(jax.random.key(1))
    obs = np.asarray(jax.random.normal(jax.random.key(2), (128, 6)))
    errors = _rate_errors(net, params, obs)
    assert errors[500][0] < errors[20][0] / 5
    assert errors[500][1] < errors[20][1] / 5
    assert errors[500][0] < 0.01


def test_minatar_spike_rates_approach_the_normalized_relu_network():
    """Random MinAtar DQN, binary observations: every layer's rate nears the normalised ReLU
    activation (computed by the DQN itself) as T grows, and Q / T the normalised Q."""
    net = MinAtarDQN(5)
    obs = np.asarray(jax.random.bernoulli(jax.random.key(8), 0.15, (64, 10, 10, 4)))
    params = net.init(jax.random.key(9), obs[:1])["params"]
    errors = _rate_errors(net, params, obs)
    assert errors[500][0] < errors[20][0] / 5
    assert errors[500][1] < errors[20][1] / 5
    assert errors[500][0] < 0.01


def test_output_readout_is_the_integrated_current():
    """Q = spike count + final membrane = sum_t (W_L S_{L-1}[t] + b_L), also for negative Q."""
    net, params = _random_mlp(jax.random.key(3), hidden=(16,), obs_dim=3, actions=2)
    params = {**params, "out": {**params["out"], "bias": jnp.array([-3.0, 2.5])}}
    obs = jax.random.normal(jax.random.key(4), (8, 3))
    t = 40
    snn = conversion.converted_network(net, time_steps=t)
    q, state = jax.jit(lambda x: snn.apply({"params": params}, x, mutable=True))(obs)
    hidden_counts = state["intermediates"]["spikes_fc1"][0]
    expected = hidden_counts @ params["out"]["kernel"] + t * params["out"]["bias"][None]
    np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-4)
    assert float(jnp.min(q)) < 0


def test_greedy_actions_match_the_ann_at_500_steps():
    net, params = _random_mlp(jax.random.key(5))
    data = np.asarray(jax.random.normal(jax.random.key(6), (512, 6)))
    held_out = np.asarray(jax.random.normal(jax.random.key(7), (512, 6)))
    scales = conversion.layer_scales(net, params, data, 99.9)
    normalized = conversion.normalize_params(params, scales, conversion.layer_order(net))
    snn = conversion.converted_network(net, time_steps=500)
    rate = conversion.matching_rate(net, params, snn, normalized, held_out, batch_size=128)
    assert rate >= 0.9


def test_normalization_data_and_rates_of_a_trained_cartpole_dqn(dqn_run):
    agent = load_agent(dqn_run, "best")
    obs = convert.collect_normalization_obs(agent, 150, num_envs=4)
    again = convert.collect_normalization_obs(agent, 150, num_envs=4)
    held = convert.collect_normalization_obs(agent, 150, num_envs=4, held_out=True)
    assert obs.shape == (150, 4) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs, again)
    assert not np.array_equal(obs, held)
    errors = _rate_errors(agent.network, agent.params, obs)
    assert errors[500][0] < errors[20][0] / 5
    assert errors[500][1] < errors[20][1] / 5


def test_convert_run_and_sweep_write_run_directories(dqn_run, tmp_path):
    out = tmp_path / "converted"
    options = convert.ConversionOptions(time_steps=50, normalization_frames=200, episodes=2)
    summary = convert.convert_run(dqn_run, out, options)
    config = json.loads((out / "config.json").read_text())
    assert config["name"] == "converted-snn"
    assert config["env"]["game"] == "CartPole-v1"
    assert config["conversion"]["time_steps"] == 50
    assert config["conversion"]["percentile"] == 99.9
    assert config["conversion"]["normalization_frames"] == 200
    assert config["conversion"]["checkpoint"] == "best"
    assert "meta" in config
    evaluation = json.loads((out / "evaluation.json").read_text())
    seed = evaluation["per_seed"]["0"]
    # Converted from the best checkpoint: scored under the best-checkpoint protocol only.
    assert seed["final"] is None
    assert len(seed["best"]["scores"]) == 2
    assert evaluation["summary"]["final"]["seeds"] == 0
    conv = json.loads((out / "conversion.json").read_text())
    entry = conv["per_seed"]["0"]
    assert set(entry["scales"]) == {"fc1", "out"}
    assert 0.0 <= entry["matching_rate"] <= 1.0
    assert set(entry["firing_rates"]) == {"fc1", "out"}
    assert len(entry["ann"]["scores"]) == 2
    assert summary["summary"]["matching_rate_mean"] == entry["matching_rate"]
    run = runs.load_run(out)
    assert run.algorithm == "converted-snn"
    assert run.seed_scores["final"] == {} and 0 in run.seed_scores["best"]

    # The converted run can be rebuilt from its files (tests/test_trained.py checks its actions).
    assert load_agent(out).network.time_steps == 50

    root = tmp_path / "sweep"
    result = convert.sweep(
        dqn_run,
        root,
        time_steps=(10,),
        percentiles=(99.0, 100.0),
        options=convert.ConversionOptions(normalization_frames=100, episodes=2),
    )
    combinations = [(r["time_steps"], r["percentile"]) for r in result["runs"]]
    assert combinations == [(10, 99.0), (10, 100.0)]
    assert (root / "T10-p99" / "evaluation.json").is_file()
    assert (root / "T10-p100" / "conversion.json").is_file()
    assert json.loads((root / "sweep.json").read_text()) == result
    assert "| T \\ percentile | 99 | 100 |" in (root / "sweep.md").read_text()


def test_a_minatar_dqn_run_converts_and_reloads(minatar_dqn_run, tmp_path):
    out = tmp_path / "converted"
    options = convert.ConversionOptions(time_steps=30, normalization_frames=200, episodes=2)
    summary = convert.convert_run(minatar_dqn_run, out, options)
    config = json.loads((out / "config.json").read_text())
    assert (config["env"]["suite"], config["env"]["game"]) == ("minatar", "Breakout")
    entry = json.loads((out / "conversion.json").read_text())["per_seed"]["0"]
    assert set(entry["scales"]) == set(entry["firing_rates"]) == {"conv1", "fc1", "fc2"}
    assert all(s > 0 for s in entry["scales"].values())
    assert summary["summary"]["matching_rate_mean"] == entry["matching_rate"]
    agent = load_agent(out)
    assert isinstance(agent.network, conversion.ConvertedMinAtarSNN)
    assert agent.network.time_steps == 30
    assert cli.main(["energy", str(out), "--episodes", "2"]) == 0
    energy = json.loads((out / "energy.json").read_text())
    assert 0 <= energy["firing_rate"] <= 1


def test_convert_command_line(dqn_run, tmp_path, capsys):
    out = tmp_path / "cli-converted"
    args = ["convert", str(dqn_run), "--run-dir", str(out), "--time-steps", "20"]
    extra = ["--frames", "100", "--episodes", "2", "--output-scale", "abs_percentile"]
    assert cli.main([*args, *extra]) == 0
    assert "matching_rate_mean" in capsys.readouterr().out
    settings = json.loads((out / "config.json").read_text())["conversion"]
    assert settings["output_scale"] == "abs_percentile"
    assert json.loads((out / "config.json").read_text())["meta"]["command"][:2] == [
        "dsqn",
        "convert",
    ]
    robust = tmp_path / "robust"
    assert cli.main(["robustness", str(dqn_run), str(out), "--out", str(robust), "--episodes", "2",
                     "--noise", "0", "0.1", "--fgsm", "0", "0.05"]) == 0  # fmt: skip
    table = (robust / "robustness.md").read_text()
    assert "converted-snn" in table and "FGSM" in table
    assert cli.main(["energy", str(out), "--episodes", "2"]) == 0
    energy = json.loads((out / "energy.json").read_text())
    assert energy["time_steps"] == 20 and 0 <= energy["firing_rate"] <= 1


def test_conversion_options_are_keyword_only_frozen_and_match_the_command_line():
    options = convert.ConversionOptions()
    assert (options.time_steps, options.percentile, options.output_scale) == (
        500,
        99.9,
        "percentile",
    )
    with pytest.raises(TypeError):
        convert.ConversionOptions(500)  # keyword only
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.time_steps = 10
    # `dsqn convert`'s defaults are the options' defaults.
    args = cli.build_parser().parse_args(["convert", "RUN", "--run-dir", "OUT"])
    assert (args.time_steps, args.percentile, args.output_scale, args.frames) == (
        options.time_steps,
        options.percentile,
        options.output_scale,
        options.normalization_frames,
    )
    assert (args.checkpoint, args.episodes) == (options.checkpoint, options.episodes)
