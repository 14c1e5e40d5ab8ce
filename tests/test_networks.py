"""Q-networks: shapes, options, gradients, conv1-once, sown spike counts, toolkit agreement."""

import itertools

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from jaxprs import loops_and_kernels

from dsqn import spiking
from dsqn.models import convolution
from dsqn.models.conversion import ConvertedMLPSNN, ConvertedSNN
from dsqn.models.convolution import CPU_CONV_BLOCK
from dsqn.models.networks import DQN, DSQN, MLPDQN, MLPDSQN, READOUTS, SPIKE_TRAINS, dueling_q


@pytest.fixture(scope="module")
def atari_obs():
    return jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 4, 84, 84), dtype=np.uint8))


def _init_apply(net, obs):
    params = net.init(jax.random.key(0), obs)
    q, state = net.apply(params, obs, mutable=["intermediates"])
    return params, q, state.get("intermediates", {})


def test_dqn_shapes_and_param_names(atari_obs):
    params, q, _ = _init_apply(DQN(6), atari_obs)
    assert q.shape == (2, 6) and q.dtype == jnp.float32
    shapes = jax.tree.map(jnp.shape, params["params"])
    assert shapes["conv1"]["kernel"] == (8, 8, 4, 32)
    assert shapes["conv2"]["kernel"] == (4, 4, 32, 64)
    assert shapes["conv3"]["kernel"] == (3, 3, 64, 64)
    assert shapes["fc1"]["kernel"] == (3136, 512)
    assert shapes["fc2"]["kernel"] == (512, 6)


def test_dsqn_and_dqn_share_parameter_structure(atari_obs):
    p_ann = DQN(4).init(jax.random.key(0), atari_obs)
    p_snn = DSQN(4, time_steps=2).init(jax.random.key(0), atari_obs)
    assert jax.tree.structure(p_ann) == jax.tree.structure(p_snn)


# Every neuron x reset x readout combination; detach and surrogate alternate across them so that
# each value of each option meets each value of every other option at least once.
OPTION_GRID = [
    (neuron, v_reset, bool(i % 2), ("atan", "sigmoid", "piecewise_quadratic")[i % 3], readout)
    for i, (neuron, v_reset, readout) in enumerate(
        itertools.product(("lif", "if"), (0.0, None), READOUTS)
    )
]


@pytest.mark.parametrize("neuron,v_reset,detach,surrogate,readout", OPTION_GRID)
def test_dsqn_all_options_build_and_run(atari_obs, neuron, v_reset, detach, surrogate, readout):
    net = DSQN(
        3,
        time_steps=3,
        neuron=neuron,
        v_reset=v_reset,
        detach_reset=detach,
        surrogate=surrogate,
        readout=readout,
    )
    _, q, inter = _init_apply(net, atari_obs)
    assert q.shape == (2, 3) and q.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(q)))
    expected = {"spikes_conv1", "spikes_conv2", "spikes_conv3", "spikes_fc1"}
    if readout == "spike_rate":
        expected.add("spikes_fc2")
    assert set(inter) == expected


def test_spike_counts_shapes_and_bounds(atari_obs):
    t = 5
    _, _, inter = _init_apply(DSQN(6, time_steps=t), atari_obs)
    shapes = {k: v[0].shape for k, v in inter.items()}
    assert shapes == {
        "spikes_conv1": (2, 20, 20, 32),
        "spikes_conv2": (2, 9, 9, 64),
        "spikes_conv3": (2, 7, 7, 64),
        "spikes_fc1": (2, 512),
    }
    for (counts,) in inter.values():
        assert float(counts.min()) >= 0 and float(counts.max()) <= t
        np.testing.assert_array_equal(np.asarray(counts), np.round(np.asarray(counts)))


def _firing(params, gain):
    """``params`` with every hidden layer's kernel scaled by ``gain``: a freshly initialised
    DSQN is nearly silent beyond conv1, where a miswired deeper layer would go unnoticed."""
    hidden = ("conv1", "conv2", "conv3", "fc1")
    return {k: dict(v, kernel=v["kernel"] * gain) if k in hidden else v for k, v in params.items()}


def test_dsqn_matches_toolkit_composition(atari_obs):
    """The network equals conv1 once -> lif over T -> time-merged layers -> rate -> fc2, with
    every hidden layer firing."""
    t = 6
    net = DSQN(5, time_steps=t)
    params = _firing(net.init(jax.random.key(1), atari_obs)["params"], 10.0)
    q_net, state = net.apply({"params": params}, atari_obs, mutable=["intermediates"])
    for name, (counts,) in state["intermediates"].items():
        rate = float(counts.mean()) / t
        assert 0.1 < rate < 0.9, f"{name} fires at rate {rate}: the comparison would be blind"
    # The Q-values depend on the observation through the fc1 spikes, not only on fc2's bias.
    assert float(jnp.abs(q_net[0] - q_net[1]).max()) > 0.05

    def conv(x, p, stride):
        y = jax.lax.conv_general_dilated(
            x, p["kernel"], (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y + p["bias"][None, None, None]

    x = jnp.transpose(atari_obs, (0, 2, 3, 1)).astype(jnp.float32) / 255.0
    s = spiking.lif(spiking.direct(conv(x, params["conv1"], 4), t))
    s = spiking.lif(jax.vmap(lambda z: conv(z, params["conv2"], 2))(s))
    s = spiking.lif(jax.vmap(lambda z: conv(z, params["conv3"], 1))(s))
    s = s.reshape(t, 2, -1)
    s = spiking.lif(s @ params["fc1"]["kernel"] + params["fc1"]["bias"][None, None])
    q = spiking.spike_rate(s) @ params["fc2"]["kernel"] + params["fc2"]["bias"][None]
    np.testing.assert_allclose(np.asarray(q_net), np.asarray(q), atol=1e-5)


def _count_convs(jaxpr, inside_loop=False, found=None):
    """(batch size, inside a scan?) of every convolution in a jaxpr, recursively."""
    found = [] if found is None else found
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            found.append((eqn.invars[0].aval.shape[0], inside_loop))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            _count_convs(sub, inside_loop or eqn.primitive.name in ("scan", "while"), found)
    return found


def test_conv1_evaluated_once_and_layers_time_batched(atari_obs):
    t = 7
    net = DSQN(6, time_steps=t)
    params = net.init(jax.random.key(0), atari_obs)
    convs = _count_convs(jax.make_jaxpr(net.apply)(params, atari_obs).jaxpr)
    # conv1 once on batch B; conv2 and conv3 once each on the merged T*B batch; none in a loop.
    assert sorted(convs) == [(2, False), (2 * t, False), (2 * t, False)]


# A freshly initialised DSQN is nearly silent beyond conv1 (learning starts from the surrogate
# gradient alone); a low threshold makes every layer fire so every weight has a gradient.
@pytest.mark.parametrize("net", [DQN(4), DSQN(4, time_steps=4, v_threshold=0.02)])
def test_gradient_reaches_every_parameter(atari_obs, net):
    params = net.init(jax.random.key(0), atari_obs)
    w = jnp.arange(1.0, 5.0)[None]
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, atari_obs) * w))(params)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert float(jnp.abs(g).sum()) > 0, f"no gradient reaches {jax.tree_util.keystr(path)}"


def test_bfloat16_compute_returns_float32(atari_obs):
    net = DSQN(6, time_steps=3, dtype=jnp.bfloat16)
    _, q, _ = _init_apply(net, atari_obs)
    assert q.dtype == jnp.float32


@pytest.mark.parametrize("readout", READOUTS)
def test_mlp_networks(readout):
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
    q = MLPDQN(2).apply(MLPDQN(2).init(jax.random.key(0), obs), obs)
    assert q.shape == (5, 2)
    net = MLPDSQN(2, time_steps=4, hidden_sizes=(16, 8), readout=readout)
    params, q, inter = _init_apply(net, obs)
    assert q.shape == (5, 2) and q.dtype == jnp.float32
    assert {"spikes_fc1", "spikes_fc2"} <= set(inter)
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, obs * 5)))(params)
    assert float(jnp.abs(grads["params"]["fc1"]["kernel"]).sum()) > 0


def test_silent_layers_still_get_surrogate_gradients(atari_obs):
    net = DSQN(4, time_steps=4)
    params = net.init(jax.random.key(0), atari_obs)
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, atari_obs) * jnp.arange(1.0, 5.0)[None]))(
        params
    )
    assert float(jnp.abs(grads["params"]["conv2"]["kernel"]).sum()) > 0


def test_torch_init_bounds(atari_obs):
    params = DQN(4).init(jax.random.key(0), atari_obs)["params"]
    for name, fan_in in [("conv1", 256), ("conv2", 512), ("fc1", 3136), ("fc2", 512)]:
        for leaf in ("kernel", "bias"):
            x = np.asarray(params[name][leaf])
            assert np.abs(x).max() <= fan_in**-0.5
            if x.size >= 32:  # uniform over the whole interval, not a narrower one
                assert np.abs(x).max() > 0.8 * fan_in**-0.5
    lecun = DQN(4, param_init="lecun").init(jax.random.key(0), atari_obs)["params"]
    assert float(jnp.abs(lecun["fc1"]["bias"]).sum()) == 0.0


def test_bad_options_are_rejected(atari_obs):
    with pytest.raises(ValueError, match="readout"):
        DSQN(3, time_steps=2, readout="softmax").init(jax.random.key(0), atari_obs)
    with pytest.raises(ValueError, match="neuron"):
        DSQN(3, time_steps=2, neuron="izhikevich").init(jax.random.key(0), atari_obs)
    with pytest.raises(ValueError, match="time_steps"):
        DSQN(3, time_steps=0).init(jax.random.key(0), atari_obs)
    with pytest.raises(ValueError, match=r"\[B, 4, 84, 84\]"):
        DQN(3).init(jax.random.key(0), jnp.zeros((2, 84, 84, 4), jnp.uint8))


def test_jit_and_vmap_over_seeds(atari_obs):
    net = DSQN(3, time_steps=2)
    keys = jax.random.split(jax.random.key(0), 3)
    params = jax.vmap(lambda k: net.init(k, atari_obs))(keys)
    q = jax.jit(jax.vmap(net.apply, in_axes=(0, None)))(params, atari_obs)
    assert q.shape == (3, 2, 3)
    assert not np.allclose(np.asarray(q[0]), np.asarray(q[1]))


def test_dsqn_gradients_match_plain_convolutions(atari_obs, monkeypatch):
    """The whole network's gradients with the matmul backward equal those of plain convolutions."""
    net = DSQN(4, time_steps=3, v_threshold=0.02)
    params = net.init(jax.random.key(0), atari_obs)
    w = jnp.arange(1.0, 5.0)[None]

    def grads():
        return jax.grad(lambda p: jnp.sum(net.apply(p, atari_obs) * w))(params)

    fast = grads()
    monkeypatch.setattr(convolution, "valid_conv", jax.lax.conv_general_dilated)
    plain = grads()
    for path, g in jax.tree_util.tree_leaves_with_path(fast):
        ref = plain
        for key in path:
            ref = ref[key.key]
        scale = float(jnp.abs(ref).max())
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref), atol=1e-4 * scale + 1e-7)


def test_large_time_merged_batches_run_in_blocks_on_cpu(atari_obs):
    t = 80  # T * B = 160 > 4 blocks: conv2 and conv3 run block by block on CPU
    net = DSQN(6, time_steps=t)
    params = net.init(jax.random.key(0), atari_obs)
    convs = _count_convs(jax.make_jaxpr(net.apply)(params, atari_obs).jaxpr)
    assert (2, False) in convs  # conv1 once, outside any loop
    if jax.default_backend() == "cpu":
        assert sorted(convs) == [(2, False), (CPU_CONV_BLOCK, True), (CPU_CONV_BLOCK, True)]
    q_big = net.apply(params, atari_obs)
    assert q_big.shape == (2, 6) and bool(jnp.all(jnp.isfinite(q_big)))


def test_cpu_convolutions_keep_the_plain_float32_spikes_and_q_values(atari_obs, monkeypatch):
    """The blocked CPU path (T * B = 160) gives the spikes and Q-values of plain XLA
    convolutions, in a network whose every layer fires."""
    net = DSQN(6, time_steps=80, v_threshold=0.05)
    params = net.init(jax.random.key(3), atari_obs)

    def forward():
        return jax.jit(lambda p: net.apply(p, atari_obs, mutable=["intermediates"]))(params)

    q_fast, state_fast = forward()
    monkeypatch.setattr(convolution, "valid_conv", jax.lax.conv_general_dilated)
    q_plain, state_plain = forward()
    np.testing.assert_allclose(np.asarray(q_fast), np.asarray(q_plain), rtol=1e-5, atol=1e-6)
    for name, (plain,) in state_plain["intermediates"].items():
        fast = np.asarray(state_fast["intermediates"][name][0])
        assert float(np.asarray(plain).sum()) > 0, name
        np.testing.assert_array_equal(fast, np.asarray(plain), err_msg=name)


def _scans(jaxpr) -> int:
    """Number of ``scan`` loops in a jaxpr, recursively."""
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == "scan"
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            count += _scans(sub)
    return count


def _toolkit_calls(monkeypatch) -> list[str]:
    """Records every call of the toolkit's public neuron functions."""
    calls = []
    for name in ("lif", "integrate_and_fire", "membrane"):
        original = getattr(spiking, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(spiking, name, counted)
    return calls


SPIKING_NETWORKS = [
    *[(DSQN(3, time_steps=3, readout=r), "atari", 5 if r == "spike_rate" else 4) for r in READOUTS],
    (DSQN(3, time_steps=3, neuron="if", readout="membrane_max"), "atari", 4),
    (DSQN(3, time_steps=3, neuron="plif", learn_threshold=True), "atari", 4),
    (MLPDSQN(2, time_steps=3, hidden_sizes=(8, 8), readout="membrane_last"), "vector", 2),
    (MLPDSQN(2, time_steps=3, hidden_sizes=(8, 8, 8), neuron="if"), "vector", 3),
    (ConvertedSNN(3, time_steps=3), "atari", 5),
    (ConvertedMLPSNN(2, time_steps=3, hidden_sizes=(8, 8)), "vector", 3),
]


@pytest.mark.parametrize("net,obs_kind,neuron_layers", SPIKING_NETWORKS)
def test_networks_run_neuron_dynamics_only_through_the_toolkit(
    atari_obs, monkeypatch, net, obs_kind, neuron_layers
):
    """Every loop of the forward pass is a call of the public toolkit functions: one scan per
    call, and one call per neuron layer (a private loop of neuron dynamics adds a scan)."""
    obs = atari_obs if obs_kind == "atari" else jnp.ones((2, 4))
    params = net.init(jax.random.key(0), obs)
    calls = _toolkit_calls(monkeypatch)
    jaxpr = jax.make_jaxpr(net.apply)(params, obs).jaxpr
    assert len(calls) == neuron_layers + getattr(net, "readout", "").startswith("membrane")
    assert _scans(jaxpr) == len(calls)


def test_plif_learns_one_time_constant_per_layer(atari_obs):
    net = DSQN(4, time_steps=4, neuron="plif", tau=3.0, v_threshold=0.02, learn_threshold=True)
    params = net.init(jax.random.key(0), atari_obs)
    layers = ("conv1", "conv2", "conv3", "fc1")
    for layer in layers:
        w = params["params"][f"plif_w_{layer}"]
        assert w.shape == () and float(spiking.plif_tau(w)) == pytest.approx(3.0)
        assert float(params["params"][f"v_threshold_{layer}"]) == pytest.approx(0.02)
    # The same network with fixed tau = 3 and V_th = 0.02 gives the same Q-values at init.
    fixed = DSQN(4, time_steps=4, tau=3.0, v_threshold=0.02)
    plain = {"params": {k: v for k, v in params["params"].items() if k.startswith(("conv", "fc"))}}
    np.testing.assert_allclose(
        np.asarray(net.apply(params, atari_obs)),
        np.asarray(fixed.apply(plain, atari_obs)),
        rtol=1e-5,
        atol=1e-6,
    )
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, atari_obs) * jnp.arange(1.0, 5.0)[None]))(
        params
    )["params"]
    for layer in layers:
        assert float(jnp.abs(grads[f"plif_w_{layer}"])) > 0, layer
        assert float(jnp.abs(grads[f"v_threshold_{layer}"])) > 0, layer


def test_if_membrane_readout_integrates_the_output_current():
    """With IF neurons, the non-spiking output neuron integrates: V[T-1] = sum_t I[t], i.e.
    Q = W (sum_t S[t]) + T b from the last hidden layer's spike counts."""
    obs = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4)) * 3, jnp.float32)
    t = 5
    net = MLPDSQN(2, time_steps=t, hidden_sizes=(16,), neuron="if", readout="membrane_last")
    params = net.init(jax.random.key(0), obs)
    q, state = net.apply(params, obs, mutable=["intermediates"])
    (counts,) = state["intermediates"]["spikes_fc1"]
    assert float(counts.sum()) > 0
    out = params["params"]["out"]
    expected = counts @ out["kernel"] + t * out["bias"][None]
    np.testing.assert_allclose(np.asarray(q), np.asarray(expected), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- output heads


def test_dueling_q_by_hand():
    outputs = jnp.array([[1.0, 2.0, 6.0, 10.0]])  # advantages 1, 2, 6; value 10
    np.testing.assert_allclose(dueling_q(outputs), [[10 + 1 - 3, 10 + 2 - 3, 10 + 6 - 3]])


def test_dueling_dqn_is_v_plus_a_minus_mean_a(atari_obs):
    """Wang & Ueda's DuelingDQN: fc1 holds two streams of 512 units, fc2 is block-diagonal
    (advantages from the first 512, the value from the last 512); Q = V + A - mean(A),
    recomputed here from the layer's own outputs."""
    net = DQN(5, head="dueling")
    params, q, _ = _init_apply(net, atari_obs)
    p = params["params"]
    assert p["fc1"]["kernel"].shape == (3136, 1024) and p["fc2"]["kernel"].shape == (1024, 6)
    kernel = np.asarray(p["fc2"]["kernel"])
    assert not kernel[512:, :5].any() and not kernel[:512, 5].any()
    assert kernel[:512, :5].all() and kernel[512:, 5].all()
    assert np.abs(kernel).max() <= 512**-0.5  # each stream's PyTorch bound
    _, state = net.apply(
        params, atari_obs, capture_intermediates=lambda m, _: m.name == "fc1", mutable=True
    )
    hidden = jax.nn.relu(state["intermediates"]["fc1"]["__call__"][0])
    outputs = hidden @ p["fc2"]["kernel"] + p["fc2"]["bias"][None]
    advantage, value = outputs[:, :5], outputs[:, 5:]
    np.testing.assert_allclose(q, value + advantage - advantage.mean(1, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("joined", [False, True])
def test_dueling_dqn_output_ignores_cross_stream_weights(atari_obs, joined):
    """The stream mask acts in the forward pass: weights placed in fc2's cross-stream blocks
    change no Q-value (Wang & Ueda's streams), unless ``dueling_joined``."""
    net = DQN(5, head="dueling", dueling_joined=joined)
    params = net.init(jax.random.key(0), atari_obs)
    q = net.apply(params, atari_obs)
    crossed = jax.tree.map(lambda x: x, params)
    kernel = params["params"]["fc2"]["kernel"]
    crossed["params"]["fc2"]["kernel"] = kernel.at[512:, :5].set(0.5).at[:512, 5].set(-0.5)
    moved = np.abs(np.asarray(net.apply(crossed, atari_obs) - q)).max()
    assert (moved > 1e-3) if joined else (moved == 0)


def test_dueling_dsqn_reads_value_and_advantages_from_the_fc1_rate(atari_obs):
    """DSQN's dueling head: one output layer of |A| + 1 on the fc1 spike rate (the sown fc1
    counts / T), Q = V + A - mean(A)."""
    net = DSQN(4, time_steps=3, v_threshold=0.05, head="dueling")
    params, q, inter = _init_apply(net, atari_obs)
    p = params["params"]
    assert p["fc1"]["kernel"].shape == (3136, 512) and p["fc2"]["kernel"].shape == (512, 5)
    rate = inter["spikes_fc1"][0] / 3
    assert rate.any()
    outputs = rate @ p["fc2"]["kernel"] + p["fc2"]["bias"][None]
    expected = outputs[:, -1:] + outputs[:, :4] - outputs[:, :4].mean(1, keepdims=True)
    np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("decoder", ["max", "max_abs", "mean", "last"])
def test_membrane_readouts_decode_the_output_neuron_by_hand(decoder):
    """Chen et al.'s membrane decoders in the network: the output layer's currents ``W S[t] + b``
    of the last hidden layer's spikes drive a non-spiking LIF (tau 2, decay_input)
    ``V[t] = V[t-1] + (X[t] - V[t-1]) / 2``, recomputed here in NumPy, then max, max-abs,
    mean or last over t. The rate readout (Chen et al.'s fr-mlp) is ``W mean_t S[t] + b``."""
    obs = jnp.asarray([[0.3, -1.0, 2.0, 0.5], [1.0, 0.2, -0.4, 0.9]])
    net = MLPDSQN(
        3, time_steps=6, hidden_sizes=(8,), v_threshold=0.3, readout=f"membrane_{decoder}"
    )
    params = net.init(jax.random.key(2), obs)
    q, state = net.apply(params, obs, mutable=[SPIKE_TRAINS])
    spikes = np.asarray(state[SPIKE_TRAINS]["spikes_fc1"][0], np.float64)  # [T, B, 8]
    assert 0 < spikes.mean() < 1
    out = params["params"]["out"]
    currents = spikes @ np.asarray(out["kernel"], np.float64) + np.asarray(out["bias"])
    v, trace = np.zeros(currents.shape[1:]), []
    for x in currents:
        v = v + (x - v) / 2.0
        trace.append(v)
    trace = np.stack(trace)
    high, low = trace.max(0), trace.min(0)
    want = {
        "max": high,
        "max_abs": np.where(np.abs(high) > np.abs(low), high, low),
        "mean": trace.mean(0),
        "last": trace[-1],
    }[decoder]
    np.testing.assert_allclose(np.asarray(q), want, rtol=1e-5, atol=1e-6)
    if decoder == "max_abs":
        assert (np.abs(low) > np.abs(high)).any()  # the case where the minimum wins occurs
    rate = net.clone(readout="rate")
    expected = spikes.mean(0) @ np.asarray(out["kernel"]) + np.asarray(out["bias"])
    np.testing.assert_allclose(np.asarray(rate.apply(params, obs)), expected, rtol=1e-5, atol=1e-6)


def test_popnorm_layer_by_hand():
    """PL-SDQN's PopNorm before a spiking layer, recomputed in NumPy: fc1's currents
    ``z = x W + b`` of each sample normalised over its neurons, ``(z - mean) / sqrt(var + 1e-5)``
    times ``gamma`` plus ``beta`` (initialised to V_th - V_reset and V_reset, here perturbed),
    drive a LIF (tau 2, decay_input, hard reset to 0) for T steps: the same spikes."""
    obs = jnp.asarray([[0.3, -1.0, 2.0, 0.5], [1.0, 0.2, -0.4, 0.9], [-2.0, 0.1, 0.0, 1.5]])
    net = MLPDSQN(2, time_steps=5, hidden_sizes=(16,), v_threshold=0.8, norm="popnorm")
    params = net.init(jax.random.key(3), obs)
    norm = params["params"]["popnorm_fc1"]
    np.testing.assert_array_equal(norm["scale"], np.full(16, 0.8, np.float32))
    np.testing.assert_array_equal(norm["bias"], np.zeros(16, np.float32))
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda x: x, params)
    gamma = 0.8 + 0.3 * rng.normal(size=16)
    beta = 0.2 * rng.normal(size=16)
    params["params"]["popnorm_fc1"] = {"scale": jnp.asarray(gamma), "bias": jnp.asarray(beta)}
    _, state = net.apply(params, obs, mutable=[SPIKE_TRAINS])
    spikes = np.asarray(state[SPIKE_TRAINS]["spikes_fc1"][0])
    fc1 = params["params"]["fc1"]
    z = np.asarray(obs, np.float64) @ np.asarray(fc1["kernel"]) + np.asarray(fc1["bias"])
    y = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + 1e-5) * gamma + beta
    v, want = np.zeros_like(y), []
    for _ in range(5):
        v = v + (y - v) / 2.0
        s = (v >= 0.8).astype(np.float64)
        v = v * (1 - s)
        want.append(s)
    np.testing.assert_array_equal(spikes, np.stack(want))
    assert 0 < spikes.mean() < 1
    without = net.clone(norm="none")
    assert "popnorm_fc1" not in without.init(jax.random.key(3), obs)["params"]
    # In a sweep the threshold is traced: each agent's gamma starts at its own V_th - V_reset.
    thresholds = jnp.array([0.5, 1.25])
    scales = jax.vmap(
        lambda v: net.clone(v_threshold=v).init(jax.random.key(3), obs)["params"]["popnorm_fc1"]
    )(thresholds)["scale"]
    np.testing.assert_array_equal(scales, np.repeat([[0.5], [1.25]], 16, axis=1))


def test_popnorm_in_dsqn_normalises_the_convolutional_layers(atari_obs):
    """As BrainCog's SpikingDQN: PopNorm before conv1-3's neurons (one gamma and beta per neuron,
    starting at V_th - V_reset and V_reset), none before fc1's; PLIF neurons compose."""
    net = DSQN(3, time_steps=2, neuron="plif", v_threshold=1.5, v_reset=-0.5, norm="popnorm")
    p = net.init(jax.random.key(0), atari_obs)["params"]
    shapes = {"conv1": (20, 20, 32), "conv2": (9, 9, 64), "conv3": (7, 7, 64)}
    assert {k for k in p if k.startswith("popnorm_")} == {f"popnorm_{k}" for k in shapes}
    for layer, shape in shapes.items():
        np.testing.assert_array_equal(p[f"popnorm_{layer}"]["scale"], np.full(shape, 2.0))
        np.testing.assert_array_equal(p[f"popnorm_{layer}"]["bias"], np.full(shape, -0.5))
    q = net.apply({"params": p}, atari_obs)
    assert q.shape == (2, 3) and bool(jnp.all(jnp.isfinite(q)))


@pytest.mark.parametrize("net", [DQN(3, head="shared_bias"), MLPDQN(3, head="shared_bias")])
def test_shared_bias_is_one_bias_for_every_action(atari_obs, net):
    obs = atari_obs if isinstance(net, DQN) else jnp.ones((2, 4))
    params = net.init(jax.random.key(0), obs)
    name = "fc2" if isinstance(net, DQN) else "out"
    p = params["params"]
    assert set(p[name]) == {"kernel"} and p[f"{name}_bias"].shape == ()
    q = net.apply(params, obs)
    shifted = jax.tree.map(lambda x: x, params)
    shifted["params"][f"{name}_bias"] = p[f"{name}_bias"] + 1.5
    np.testing.assert_allclose(net.apply(shifted, obs) - q, 1.5, rtol=1e-5)


@pytest.mark.parametrize("readout", READOUTS)
def test_every_readout_takes_every_head(readout):
    obs = jnp.ones((2, 4))
    for head in ("dueling", "shared_bias"):
        net = MLPDSQN(3, time_steps=2, hidden_sizes=(8,), readout=readout, head=head)
        q = net.apply(net.init(jax.random.key(0), obs), obs)
        assert q.shape == (2, 3) and bool(jnp.all(jnp.isfinite(q)))
    with pytest.raises(ValueError, match="unknown head 'softmax'"):
        MLPDQN(3, head="softmax").init(jax.random.key(0), obs)


def _q_spikes_and_gradients(net, obs):
    params = net.init(jax.random.key(0), obs)

    def loss(params):
        q, state = net.apply(params, obs, mutable=["intermediates"])
        return jnp.sum(q * jnp.arange(1.0, q.shape[-1] + 1)[None]), (q, state["intermediates"])

    grads, (q, spikes) = jax.jit(jax.grad(loss, has_aux=True))(params)
    return q, spikes, grads


@pytest.mark.parametrize(
    "net",
    [
        DSQN(3, time_steps=3, v_threshold=0.02, neuron="plif", learn_threshold=True),
        MLPDSQN(
            2,
            time_steps=5,
            hidden_sizes=(8, 8),
            v_threshold=0.2,
            v_reset=None,
            readout="membrane_max",
        ),  # fmt: skip
    ],
    ids=["dsqn-plif", "mlp-membrane"],
)
def test_pallas_neuron_backend_gives_the_scans_q_values_spikes_and_gradients(atari_obs, net):
    """The fused kernels (interpret mode) in a whole network: the same Q-values and spike
    counts to the bit, the same gradients for every parameter (PLIF's time constants and the
    learnt thresholds included) up to float rounding."""
    obs = atari_obs[:1] if isinstance(net, DSQN) else jnp.asarray([[0.3, -1.0, 2.0, 0.5]] * 3)
    fused = net.clone(neuron_backend="pallas")
    layers = 4 if isinstance(net, DSQN) else 3
    jaxpr = jax.make_jaxpr(fused.apply)(fused.init(jax.random.key(0), obs), obs).jaxpr
    assert loops_and_kernels(jaxpr) == (0, layers)  # one kernel per layer, no loop
    q, spikes, grads = _q_spikes_and_gradients(fused, obs)
    ref_q, ref_spikes, ref_grads = _q_spikes_and_gradients(net, obs)
    np.testing.assert_array_equal(np.asarray(q), np.asarray(ref_q))
    jax.tree.map(np.testing.assert_array_equal, spikes, ref_spikes)
    assert all(float(jnp.sum(c[0])) > 0 for c in spikes.values())  # every layer fires
    flat, ref_flat = jax.tree.leaves_with_path(grads), jax.tree.leaves(ref_grads)
    for (path, g), ref in zip(flat, ref_flat, strict=True):
        scale = float(jnp.abs(ref).max())
        assert scale > 0, jax.tree_util.keystr(path)
        np.testing.assert_allclose(
            np.asarray(g), np.asarray(ref), atol=1e-5 * scale, err_msg=jax.tree_util.keystr(path)
        )


def test_unknown_neuron_backend_is_rejected(atari_obs):
    with pytest.raises(ValueError, match=r"neuron_backend 'cuda'.*\('scan', 'pallas'\)"):
        DSQN(3, time_steps=2, neuron_backend="cuda").init(jax.random.key(0), atari_obs)
