"""dsqn.learning.evaluation: the evaluation protocol on a real envpool CartPole pool."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn import config as C
from dsqn.envs import make_seed_pool
from dsqn.learning.evaluation import Evaluator, MaxQ, accumulate_max_q
from dsqn.learning.evaluation_stats import average_max_q
from dsqn.models.networks import MLPDQN, MLPDSQN


@pytest.fixture(scope="module")
def setup():
    cfg = C.apply_overrides(
        C.preset("cartpole-dqn"),
        {"run.seeds": "0 1", "eval.max_episode_agent_steps": "60", "eval.episodes": "6"},
    )
    net = MLPDQN(2, hidden_sizes=(8,))
    keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
    params = jax.vmap(lambda k: net.init(k, jnp.zeros((1, 4)))["params"])(keys)
    return cfg, net, params


def test_every_episode_is_one_full_game_within_the_cap(setup):
    cfg, net, params = setup
    ev = Evaluator(cfg, net, [0, 1])
    out = ev(params, jnp.stack([jax.random.key(5), jax.random.key(6)]))
    assert out.returns.shape == (2, 6) and out.lengths.shape == (2, 6)
    assert np.all(out.lengths >= 1) and np.all(out.lengths <= 60)
    np.testing.assert_array_equal(out.returns, out.lengths)  # CartPole: +1 per step
    np.testing.assert_array_equal(out.steps, out.lengths.sum(axis=1))
    assert out.spike_sums is None and out.max_q.shape == out.mean_max_q.shape == (2, 6)


def test_random_policy_scores_like_random_cartpole(setup):
    cfg, net, params = setup
    cfg = C.apply_overrides(cfg, {"eval.max_episode_agent_steps": "500", "eval.episodes": "40"})
    ev = Evaluator(cfg, net, [0, 1], epsilon=1.0)
    out = ev(params, jnp.stack([jax.random.key(1), jax.random.key(2)]))
    assert 15 < out.returns.mean() < 30  # a uniformly random CartPole policy lasts ~22 steps


def test_fresh_games_per_call_and_reproducible_per_pool(setup):
    """Each call plays new games (the pool's envs continue their seeds); a new evaluator with
    the same seeds replays the same sequence; an identity transform changes nothing."""
    cfg, net, params = setup
    keys = jnp.stack([jax.random.key(3), jax.random.key(4)])
    first, second = (
        Evaluator(cfg, net, [0, 1], epsilon=0.5),
        Evaluator(cfg, net, [0, 1], epsilon=0.5),
    )
    a1, a2 = first(params, keys), first(params, keys)
    assert not np.array_equal(a1.returns, a2.returns)
    identity = lambda apply_fn, p, obs, size, key: obs  # noqa: E731
    b1 = second(params, keys, transform=identity, size=0.3)
    np.testing.assert_array_equal(a1.returns, b1.returns)
    flip = lambda apply_fn, p, obs, size, key: -obs  # noqa: E731
    b2 = second(params, keys, transform=flip)
    assert not np.array_equal(a2.mean_max_q, b2.mean_max_q)


def test_spike_sums_of_a_spiking_network(setup):
    cfg, _, _ = setup
    net = MLPDSQN(2, time_steps=4, hidden_sizes=(8,), v_threshold=0.05)
    params = jax.vmap(lambda k: net.init(k, jnp.zeros((1, 4)))["params"])(
        jnp.stack([jax.random.key(0), jax.random.key(1)])
    )
    out = Evaluator(cfg, net, [0, 1], collect_spikes=True)(
        params, jnp.stack([jax.random.key(0), jax.random.key(1)])
    )
    assert set(out.spike_sums) == {"fc1"} and out.spike_sums["fc1"].shape == (2, 8)
    # At most T spikes per neuron per counted step.
    assert np.all(out.spike_sums["fc1"] <= 4 * out.steps[:, None])
    assert out.spike_sums["fc1"].sum() > 0


def test_eval_pool_uses_eval_protocol_and_its_own_seeds():
    cfg = C.apply_overrides(C.preset("dsqn"), {"env.game": "Pong"})
    train = make_seed_pool(cfg, 2, [0], train=True)
    ev = make_seed_pool(cfg, 2, [0], train=False)
    assert train.config["episodic_life"] and not ev.config["episodic_life"]
    assert train.config["reward_clip"] and not ev.config["reward_clip"]
    assert ev.config["max_episode_steps"] == 18_000
    assert set(train.config["env_seed"]).isdisjoint(ev.config["env_seed"])


def test_a_seed_plays_the_same_games_alone_or_with_others(setup):
    """Seed 1's evaluations, call after call, do not depend on seed 0 being evaluated alongside
    (its pool is not stepped past its own games, whatever seed 0's games last)."""
    cfg, net, params = setup
    together, alone = (
        Evaluator(cfg, net, [0, 1], epsilon=0.5),
        Evaluator(cfg, net, [1], epsilon=0.5),
    )
    params_1 = jax.tree.map(lambda x: x[1:], params)
    for call in range(3):
        keys = jnp.stack([jax.random.key(10 + call), jax.random.key(20 + call)])
        both = together(params, keys)
        one = alone(params_1, keys[1:])
        np.testing.assert_array_equal(both.returns[1:], one.returns, err_msg=f"call {call}")
        np.testing.assert_allclose(both.max_q[1:], one.max_q, rtol=1e-6)
        np.testing.assert_allclose(both.mean_max_q[1:], one.mean_max_q, rtol=1e-6)


def test_max_q_statistics_of_a_hand_made_episode():
    """The paper's statistic: per episode the max over GREEDY steps of max_a Q (a step whose
    action was drawn at random is skipped even if the draw was the greedy action); steps after
    the episode ended count in neither statistic."""
    # Two episodes side by side (env 0, env 1), four steps.
    q = np.array(
        [
            [[1.0, 3.0], [0.0, -1.0]],
            [[5.0, 0.0], [-4.0, -2.0]],
            [[2.0, 2.5], [-3.0, -3.0]],
            [[100.0, 0.0], [-0.5, -9.0]],
        ],
        np.float32,
    )
    explored = np.array([[0, 1], [1, 1], [0, 1], [0, 1]], bool)
    counted = np.array([[1, 1], [1, 1], [1, 1], [0, 1]], bool)
    stats = MaxQ(jnp.zeros(2), jnp.full(2, -jnp.inf))
    for t in range(4):
        stats = accumulate_max_q(stats, q[t], explored[t], counted[t])
    # env 0: greedy steps 0 and 2 -> max(3, 2.5); mean over its 3 steps of (3, 5, 2.5).
    # env 1: every action random -> no greedy step.
    np.testing.assert_allclose(stats.greedy_max, [3.0, -np.inf])
    np.testing.assert_allclose(np.asarray(stats.step_sum) / [3, 4], [3.5, (0 - 2 - 3 - 0.5) / 4])
    assert average_max_q(np.array([3.0, np.nan, 5.0])) == 4.0
    assert np.isnan(average_max_q(np.array([np.nan, np.nan])))


def test_max_q_of_real_games(setup):
    """With a constant Q-function both statistics equal its largest value; at epsilon 1 no step
    is greedy, so the paper's statistic is undefined (NaN) while the step mean is not."""
    cfg, net, params = setup
    const = jax.tree.map(jnp.zeros_like, params)
    const["out"]["bias"] = jnp.array([[0.5, 2.0], [-1.0, -3.0]])
    keys = jnp.stack([jax.random.key(7), jax.random.key(8)])
    out = Evaluator(cfg, net, [0, 1], epsilon=0.3)(const, keys)
    np.testing.assert_allclose(out.max_q, [[2.0] * 6, [-1.0] * 6])
    np.testing.assert_allclose(out.mean_max_q, out.max_q, rtol=1e-6)
    greedy = Evaluator(cfg, net, [0, 1], epsilon=0.0)(params, keys)
    assert np.all(greedy.max_q >= greedy.mean_max_q - 1e-6)
    assert np.any(greedy.max_q > greedy.mean_max_q + 1e-4)
    random = Evaluator(cfg, net, [0, 1], epsilon=1.0)(params, keys)
    assert np.all(np.isnan(random.max_q)) and np.all(np.isfinite(random.mean_max_q))


@pytest.mark.parametrize("epsilon", [0.0, 1.0])
def test_an_evaluator_without_an_epsilon_plays_the_configured_one(setup, epsilon):
    """Training-time evaluations and conversion build their Evaluator without an epsilon: it
    plays eval.epsilon. At 1 every action is drawn at random (no greedy step: the paper's max Q
    is NaN); at 0 every action is greedy."""
    cfg, net, params = setup
    cfg = C.apply_overrides(cfg, {"eval.epsilon": str(epsilon)})
    ev = Evaluator(cfg, net, [0, 1])
    assert ev.epsilon == epsilon
    out = ev(params, jnp.stack([jax.random.key(1), jax.random.key(2)]))
    assert np.all(np.isnan(out.max_q)) == (epsilon == 1.0)
    assert np.all(np.isfinite(out.max_q)) == (epsilon == 0.0)
