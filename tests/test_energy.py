"""Spike statistics and energy estimates (dsqn.analyses.energy) and ``dsqn energy``
(dsqn.analyses.energy_report)."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn import cli, spiking
from dsqn.analyses.energy import conv_fanout, energy_estimate, layer_geometry, spike_statistics
from dsqn.analyses.energy_report import energy_markdown, energy_report
from dsqn.models.networks import DQN, DSQN, MLPDQN, MLPDSQN

ATARI_OBS = jnp.zeros((1, 4, 84, 84), jnp.uint8)


class _TinyConv(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(3, (3, 3), strides=(2, 2), padding="VALID", name="conv1")(x)
        return nn.Dense(2, name="fc1")(x.reshape(x.shape[0], -1))


def test_tiny_conv_fanout_by_hand():
    # 5 wide, kernel 3, stride 2: windows [0, 3) and [2, 5); position 2 lies in both.
    per_axis = np.array([1, 1, 2, 1, 1])
    expected = per_axis[:, None] * per_axis[None, :] * 3
    fanout = conv_fanout((5, 5, 2), (3, 3), (2, 2), 3)
    assert fanout.shape == (5, 5, 2)
    np.testing.assert_array_equal(fanout[..., 0], expected)
    np.testing.assert_array_equal(fanout[..., 1], expected)

    geometry = layer_geometry(_TinyConv(), jnp.zeros((1, 5, 5, 2)))
    conv, fc = geometry
    assert (conv.kind, conv.kernel, conv.stride) == ("conv", (3, 3), (2, 2))
    assert (conv.input_shape, conv.output_shape) == ((5, 5, 2), (2, 2, 3))
    assert conv.macs == 2 * 2 * 3 * 3 * 3 * 2
    np.testing.assert_array_equal(conv.fanout, fanout)
    assert (fc.kind, fc.input_shape, fc.output_shape, fc.macs) == ("dense", (12,), (2,), 24)
    # No spikes are sown: nothing is fed by spikes.
    assert [layer.fed_by for layer in geometry] == [None, None]


def test_atari_conv2_fanout():
    geometry = {layer.name: layer for layer in layer_geometry(DSQN(6, time_steps=2), ATARI_OBS)}
    conv2 = geometry["conv2"]
    assert (conv2.input_shape, conv2.output_shape) == ((20, 20, 32), (9, 9, 64))
    assert (conv2.kernel, conv2.stride) == ((4, 4), (2, 2))
    # Windows [2o, 2o + 4), o = 0..8: edges are covered once, the rest twice.
    per_axis = np.array([1, 1] + [2] * 16 + [1, 1])
    np.testing.assert_array_equal(conv2.fanout[..., 5], np.outer(per_axis, per_axis) * 64)
    assert conv2.fanout[..., 0].sum() == 9 * 9 * 4 * 4 * 64
    assert conv2.fanout.sum() == conv2.macs
    # The fan-out map of each layer matches the spike counts of the layer feeding it.
    for name, layer in geometry.items():
        if layer.fed_by is not None:
            assert layer.fanout.size == geometry[layer.fed_by].neurons, name
    assert [layer.fed_by for layer in geometry.values()] == [None, "conv1", "conv2", "conv3", "fc1"]
    assert [layer.spiking for layer in geometry.values()] == [True] * 4 + [False]


def test_atari_macs():
    expected = {
        "conv1": 20 * 20 * 32 * 8 * 8 * 4,
        "conv2": 9 * 9 * 64 * 4 * 4 * 32,
        "conv3": 7 * 7 * 64 * 3 * 3 * 64,
        "fc1": 3136 * 512,
        "fc2": 512 * 6,
    }
    for network in (DQN(6), DSQN(6, time_steps=2)):
        geometry = layer_geometry(network, ATARI_OBS)
        assert {layer.name: layer.macs for layer in geometry} == expected
        stats = spike_statistics(geometry, {}, 0.0, 1)
        assert stats["macs_per_action_first_layer"] == 3_276_800
        assert stats["macs_per_action_ann"] == 9_346_048
        assert stats["spikes_per_action"] is None and stats["layers"] == {}


def test_mlp_statistics_by_hand():
    t, batch = 6, 3
    # A low threshold so that both layers spike on a handful of samples.
    network = MLPDSQN(3, hidden_sizes=(5, 4), time_steps=t, v_threshold=0.25)
    obs = 3.0 * jax.random.normal(jax.random.key(1), (batch, 4))
    params = network.init(jax.random.key(0), obs)["params"]
    _, state = network.apply({"params": params}, obs, mutable=["intermediates"])
    sown = {k.removeprefix("spikes_"): v[0] for k, v in state["intermediates"].items()}

    # The same dynamics by hand: fc1 once, its current repeated over T, then fc2 per step.
    def dense(p, x):
        return x @ p["kernel"] + p["bias"].reshape((1,) * (x.ndim - 1) + (-1,))

    s1 = spiking.lif(jnp.broadcast_to(dense(params["fc1"], obs), (t, batch, 5)), v_threshold=0.25)
    s2 = spiking.lif(dense(params["fc2"], s1), v_threshold=0.25)
    np.testing.assert_array_equal(sown["fc1"], s1.sum(0))
    np.testing.assert_array_equal(sown["fc2"], s2.sum(0))
    n1, n2 = float(s1.sum()), float(s2.sum())
    assert 0 < n1 < t * batch * 5 and 0 < n2 < t * batch * 4

    geometry = layer_geometry(network, obs)
    assert [layer.name for layer in geometry] == ["fc1", "fc2", "out"]
    sums = {k: np.asarray(v).sum(0) for k, v in sown.items()}
    stats = spike_statistics(geometry, sums, float(batch), t)
    fc1, fc2 = stats["layers"]["fc1"], stats["layers"]["fc2"]
    assert fc1["neurons"] == 5 and fc2["neurons"] == 4
    assert fc1["firing_rate"] == pytest.approx(n1 / (batch * t * 5))
    assert fc2["firing_rate"] == pytest.approx(n2 / (batch * t * 4))
    assert fc1["spikes_per_action"] == pytest.approx(n1 / batch)
    # fc1's spikes reach fc2's 4 units; fc2's spikes reach the |A| = 3 outputs.
    assert fc1["synaptic_ops_per_action"] == pytest.approx(n1 * 4 / batch)
    assert fc2["synaptic_ops_per_action"] == pytest.approx(n2 * 3 / batch)
    assert stats["spikes_per_action"] == pytest.approx((n1 + n2) / batch)
    assert stats["synaptic_ops_per_action"] == pytest.approx((4 * n1 + 3 * n2) / batch)
    assert stats["firing_rate"] == pytest.approx((n1 + n2) / (batch * t * 9))
    assert stats["firing_rate_layer_mean"] == pytest.approx(
        (fc1["firing_rate"] + fc2["firing_rate"]) / 2
    )
    assert stats["macs_per_action_first_layer"] == 4 * 5
    assert stats["macs_per_action_ann"] == 4 * 5 + 5 * 4 + 4 * 3


def test_spiking_readout_output_feeds_nothing():
    network = MLPDSQN(2, hidden_sizes=(3,), time_steps=2, readout="spike_rate")
    geometry = layer_geometry(network, jnp.zeros((1, 4)))
    sums = {"fc1": np.ones(3), "out": np.full(2, 2.0)}
    stats = spike_statistics(geometry, sums, 1.0, 2)
    assert stats["layers"]["fc1"]["synaptic_ops_per_action"] == 3 * 2
    assert stats["layers"]["out"]["synaptic_ops_per_action"] == 0.0
    assert stats["spikes_per_action"] == 7.0


def test_energy_estimate_arithmetic():
    stats = {
        "macs_per_action_first_layer": 100.0,
        "synaptic_ops_per_action": 1000.0,
        "macs_per_action_ann": 500.0,
    }
    converted = {**stats, "synaptic_ops_per_action": 10_000.0}
    out = energy_estimate(stats, converted_stats=converted)
    nj = out["energy_per_action_nj"]
    assert nj["snn"] == pytest.approx((100 * 4.6 + 1000 * 0.9) / 1000)
    assert nj["ann"] == pytest.approx(500 * 4.6 / 1000)
    assert nj["converted_snn"] == pytest.approx((100 * 4.6 + 10_000 * 0.9) / 1000)
    assert out["ann_over_snn"] == pytest.approx(2.3 / 1.36)
    custom = energy_estimate(stats, pj_per_ac=1.0, pj_per_mac=2.0)["energy_per_action_nj"]
    assert custom["snn"] == pytest.approx(1.2) and custom["converted_snn"] is None

    relu = spike_statistics(layer_geometry(MLPDQN(2, (8,)), jnp.zeros((1, 4))), {}, 0.0, 1)
    out = energy_estimate(relu)
    assert out["energy_per_action_nj"]["snn"] is None and out["ann_over_snn"] is None
    assert out["energy_per_action_nj"]["ann"] == pytest.approx((4 * 8 + 8 * 2) * 4.6 / 1000)


def test_energy_report_cartpole(tmp_path):
    run = tmp_path / "run"
    cli.main(
        ["train", "cartpole-dsqn", "--run-dir", str(run), "--seeds", "0"]
        + ["--run.total_agent_steps", "400", "--run.log_period_agent_steps", "200"]
        + ["--run.checkpoint_period_agent_steps", "200", "--eval.period_agent_steps", "200"]
        + ["--eval.episodes", "2", "--eval.max_episode_agent_steps", "30"]
        + ["--learner.warmup_agent_steps", "100", "--learner.replay_capacity_transitions", "1000"]
        + ["--network.hidden_sizes", "16", "--no-progress"]
    )
    out = energy_report(run, episodes=2)
    energy = json.loads((run / "energy.json").read_text())
    assert out["path"] == str(run / "energy.json")
    for key in (
        "layers",
        "spikes_per_action",
        "firing_rate",
        "synaptic_ops_per_action",
        "macs_per_action_first_layer",
        "macs_per_action_ann",
        "energy_per_action_nj",
        "pj_per_ac",
        "pj_per_mac",
        "episodes",
        "checkpoint",
        "per_seed",
    ):
        assert key in energy, key
    assert list(energy["layers"]) == ["fc1"]
    fc1 = energy["layers"]["fc1"]
    assert fc1["neurons"] == 16
    assert 0.0 <= fc1["firing_rate"] <= 1.0 and 0.0 <= energy["firing_rate"] <= 1.0
    assert fc1["synaptic_ops_per_action"] == pytest.approx(fc1["spikes_per_action"] * 2)
    assert energy["macs_per_action_first_layer"] == 4 * 16
    assert energy["macs_per_action_ann"] == 4 * 16 + 16 * 2
    nj = energy["energy_per_action_nj"]
    assert nj["converted_snn"] is None
    assert nj["snn"] == pytest.approx((64 * 4.6 + energy["synaptic_ops_per_action"] * 0.9) / 1000)
    assert nj["ann"] == pytest.approx(96 * 4.6 / 1000)
    assert (energy["pj_per_ac"], energy["pj_per_mac"]) == (0.9, 4.6)
    assert (energy["episodes"], energy["checkpoint"]) == (2, "best")
    assert list(energy["per_seed"]) == ["0"]
    assert energy["per_seed"]["0"]["steps"] > 0
    assert energy["spikes_per_action"] == pytest.approx(
        energy["per_seed"]["0"]["spikes_per_action"]
    )
    markdown = (run / "energy.md").read_text()
    assert "| fc1 | 16 |" in markdown and "energy / action (nJ)" in markdown
    # A run that was never converted shows no converted-SNN row; one with a value does.
    assert "converted SNN" not in markdown
    energy["energy_per_action_nj"]["converted_snn"] = 1.25
    assert "| converted SNN | — | — | 1.25 |" in energy_markdown(energy)
