"""dsqn.agent: exploration schedule, action selection, one update, target sync, network choice."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn import agent, replay
from dsqn.config import LearnerConfig, NetworkConfig
from dsqn.networks import DQN, DSQN, MLPDQN, MLPDSQN


def test_epsilon_schedule_is_the_papers():
    cfg = LearnerConfig()  # warm-up 50k, 1.0 -> 0.1 over 1M agent steps
    eps = lambda t: float(agent.epsilon_at(cfg, t))  # noqa: E731
    assert eps(0) == 1.0 and eps(49_999) == 1.0
    assert eps(500_000) == pytest.approx(0.55)
    assert eps(1_000_000) == pytest.approx(0.1)
    assert eps(40_000_000) == pytest.approx(0.1)


def test_select_actions_greedy_and_random():
    q = jnp.array([[0.0, 2.0, 1.0]] * 2000)
    greedy = agent.select_actions(jax.random.key(0), q, 0.0)
    assert bool(jnp.all(greedy == 1))
    rand = agent.select_actions(jax.random.key(1), q, 1.0)
    counts = np.bincount(np.asarray(rand), minlength=3) / 2000
    np.testing.assert_allclose(counts, [1 / 3] * 3, atol=0.05)
    mixed = agent.select_actions(jax.random.key(2), q, 0.3)
    # greedy with prob 0.7 + 0.3/3
    assert float(jnp.mean(mixed == 1)) == pytest.approx(0.8, abs=0.04)


@pytest.mark.parametrize(
    "kind,shape,cls",
    [
        ("dqn", (4, 84, 84), DQN),
        ("dsqn", (4, 84, 84), DSQN),
        ("dqn", (4,), MLPDQN),
        ("dsqn", (4,), MLPDSQN),
    ],
)
def test_make_network_picks_by_observation(kind, shape, cls):
    net = agent.make_network(NetworkConfig(kind=kind, time_steps=3), 5, shape)
    assert isinstance(net, cls)


def _filled_replay(num=64, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    state = replay.init(num * 2, 1, np.zeros(dim, np.float32), num_actions=2)
    for _ in range(num):
        obs = rng.normal(size=(1, dim))
        state = replay.add(
            state,
            jnp.asarray(obs, jnp.float32),
            jnp.asarray(rng.integers(0, 2, 1), jnp.int32),
            jnp.asarray(3.0 * obs[:, 0] + 1.0, jnp.float32),  # a learnable reward
            jnp.zeros(1, bool),
            jnp.zeros(1, bool),
            jnp.zeros(1, bool),
        )
    return state


@pytest.mark.parametrize("loss", ["dqn", "double", "cdqn"])
def test_update_changes_params_and_counts(loss):
    net = MLPDQN(2, hidden_sizes=(16,))
    cfg = LearnerConfig(loss=loss, batch_size=16, learning_rate=1e-2, max_grad_norm=10.0)
    opt = agent.make_optimizer(cfg)
    state = agent.init_train_state(jax.random.key(0), net, opt, jnp.zeros((1, 4)))
    rep = _filled_replay()
    new, metrics = agent.update(state, rep, network=net, optimizer=opt, config=cfg)
    assert int(new.updates) == 1
    assert set(metrics) == {"loss", "q_mean"} and np.isfinite(float(metrics["loss"]))
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.params, state.params)
    assert all(jax.tree.leaves(changed))
    # The target network does not move with an update; a sync copies the online parameters.
    assert jax.tree.all(
        jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new.target_params, state.target_params)
    )
    synced = agent.sync_target(new)
    assert jax.tree.all(
        jax.tree.map(lambda a, b: bool(jnp.all(a == b)), synced.target_params, new.params)
    )
    # Every update draws a fresh minibatch: the key advances.
    key_data = jax.random.key_data
    assert not np.array_equal(np.asarray(key_data(new.key)), np.asarray(key_data(state.key)))


def test_repeated_updates_fit_a_fixed_replay():
    net = MLPDQN(2, hidden_sizes=(32,))
    cfg = LearnerConfig(batch_size=32, learning_rate=3e-3, discount=0.0)  # pure regression
    opt = agent.make_optimizer(cfg)
    state = agent.init_train_state(jax.random.key(0), net, opt, jnp.zeros((1, 4)))
    rep = _filled_replay()
    step = jax.jit(lambda s: agent.update(s, rep, network=net, optimizer=opt, config=cfg))
    first = None
    for _ in range(400):
        state, m = step(state)
        first = float(m["loss"]) if first is None else first
    assert float(m["loss"]) < 0.2 * first


def test_q_values_and_spikes_per_sample_counts():
    net = MLPDSQN(3, time_steps=4, hidden_sizes=(8,))
    obs = jnp.ones((5, 4)) * 3
    params = net.init(jax.random.key(0), obs)["params"]
    q, counts = agent.q_values_and_spikes(net, params, obs)
    assert q.shape == (5, 3) and set(counts) == {"fc1"} and counts["fc1"].shape == (5,)
    _, none = agent.q_values_and_spikes(
        MLPDQN(3), MLPDQN(3).init(jax.random.key(0), obs)["params"], obs
    )
    assert none == {}
