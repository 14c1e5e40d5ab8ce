"""The MinAtar Q-networks: Young & Tian's layers, the spiking counterpart, the presets' choice."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn import config
from dsqn.learning import agent
from dsqn.models.networks import MinAtarDQN, MinAtarDSQN


def _obs(batch: int, channels: int, seed: int = 0) -> jax.Array:
    return jax.random.bernoulli(jax.random.key(seed), 0.1, (batch, 10, 10, channels))


@pytest.mark.parametrize("channels, actions", [(4, 3), (10, 6)])
def test_young_and_tian_layers_and_a_shared_parameter_tree(channels, actions):
    obs = _obs(2, channels)
    dqn = MinAtarDQN(actions)
    params = dqn.init(jax.random.key(0), obs)["params"]
    shapes = jax.tree.map(lambda x: x.shape, params)
    # conv 16 3x3 stride 1 without padding: 10x10 -> 8x8, 1024 features into 128 units.
    assert shapes == {
        "conv1": {"kernel": (3, 3, channels, 16), "bias": (16,)},
        "fc1": {"kernel": (1024, 128), "bias": (128,)},
        "fc2": {"kernel": (128, actions), "bias": (actions,)},
    }
    assert dqn.apply({"params": params}, obs).shape == (2, actions)
    dsqn = MinAtarDSQN(actions, time_steps=4)
    spiking = dsqn.init(jax.random.key(0), obs)["params"]
    assert jax.tree.map(lambda x: x.shape, spiking) == shapes
    q = dsqn.apply({"params": params}, obs)
    assert q.shape == (2, actions) and q.dtype == jnp.float32


def test_the_spiking_forward_by_hand():
    """conv1 once, LIF over T steps, fc1 over T, LIF, rate readout into fc2: recomputed here
    with numpy from the parameters (hard reset to 0, tau 2, V_th 1, decay_input)."""
    obs = _obs(3, 4, seed=1)
    net = MinAtarDSQN(3, time_steps=5, v_threshold=0.1)
    params = net.init(jax.random.key(3), obs)["params"]
    x = np.asarray(obs, np.float64)
    k, b = (np.asarray(params["conv1"][n], np.float64) for n in ("kernel", "bias"))
    conv = np.zeros((3, 8, 8, 16))
    for i in range(8):
        for j in range(8):
            conv[:, i, j] = np.einsum("bhwc,hwcf->bf", x[:, i : i + 3, j : j + 3], k) + b

    def lif(currents):  # currents [T, ...]
        v, out = np.zeros(currents.shape[1:]), []
        for c in currents:
            h = v + (c - v) / 2.0
            s = (h >= 0.1).astype(np.float64)
            v = h * (1 - s)
            out.append(s)
        return np.stack(out)

    s1 = lif(np.broadcast_to(conv, (5, *conv.shape))).reshape(5, 3, -1)
    w1, b1 = (np.asarray(params["fc1"][n], np.float64) for n in ("kernel", "bias"))
    s2 = lif(s1 @ w1 + b1)
    w2, b2 = (np.asarray(params["fc2"][n], np.float64) for n in ("kernel", "bias"))
    expected = s2.mean(0) @ w2 + b2
    assert s1.mean() > 0.01 and s2.mean() > 0.01  # the check sees spikes
    np.testing.assert_allclose(net.apply({"params": params}, obs), expected, rtol=1e-5, atol=1e-5)


def test_presets_choose_the_minatar_networks_and_start_silent_at_the_papers_threshold():
    obs = _obs(64, 4, seed=2)
    for name, cls in (("minatar-dqn", MinAtarDQN), ("minatar-dsqn", MinAtarDSQN)):
        net = agent.make_network(config.preset(name).network, 3, (10, 10, 4))
        assert type(net) is cls
    dsqn = config.preset("minatar-dsqn").network
    assert dsqn.time_steps == 8 and dsqn.v_threshold == 1.0
    net = agent.make_network(dsqn, 3, (10, 10, 4))
    params = net.init(jax.random.key(0), obs)["params"]
    _, state = net.apply({"params": params}, obs, mutable=["intermediates"])
    rates = {k: float(jnp.mean(v[0])) / 8 for k, v in state["intermediates"].items()}
    assert set(rates) == {"spikes_conv1", "spikes_fc1"}
    assert rates["spikes_fc1"] == 0.0 and rates["spikes_conv1"] < 1e-3  # silent (README)
    low = net.clone(v_threshold=0.1)
    _, state = low.apply({"params": params}, obs, mutable=["intermediates"])
    assert all(float(jnp.mean(v[0])) / 8 > 0.01 for v in state["intermediates"].values())
