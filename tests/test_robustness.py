"""Tests of dsqn.analyses.robustness: perturbations, the perturbed evaluator, the report."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn.analyses import robustness
from dsqn.learning.evaluation import Evaluator
from dsqn.models.networks import DQN, MLPDQN, MLPDSQN
from dsqn.rundir.loading import load_agent


@pytest.fixture(scope="module")
def dqn_run(tiny_cartpole_dqn_run):
    return tiny_cartpole_dqn_run


def _apply(net):
    return lambda p, x: net.apply({"params": p}, x)


def test_gaussian_noise_on_frames_and_vectors():
    key = jax.random.key(0)
    frames = jax.random.randint(key, (3, 4, 84, 84), 0, 256).astype(jnp.uint8)
    noise_fn = jax.jit(robustness.gaussian_noise)
    same = noise_fn(frames, 0.0, key)
    assert same.dtype == jnp.uint8
    np.testing.assert_array_equal(same, frames)
    noisy = noise_fn(frames, 0.05, key)
    assert noisy.dtype == jnp.uint8
    delta = np.asarray(noisy, np.float32) - np.asarray(frames, np.float32)
    interior = (np.asarray(frames) > 60) & (np.asarray(frames) < 195)
    # std 0.05 on the [0, 1] scale is 12.75 grey levels (rounding adds 1/12 of a level^2).
    assert abs(delta[interior].std() - 12.75) < 0.3
    vectors = jnp.zeros((20_000, 3))
    noise = np.asarray(noise_fn(vectors, 0.2, key))
    assert abs(noise.std() - 0.2) < 0.005 and abs(noise.mean()) < 0.005


def test_fgsm_has_max_norm_eps_and_beats_random_signs():
    net = MLPDQN(4, hidden_sizes=(32, 32))
    params = net.init(jax.random.key(0), jnp.zeros((1, 6)))["params"]
    obs = jax.random.normal(jax.random.key(1), (2048, 6))
    eps = 0.05
    attacked = jax.jit(lambda x: robustness.fgsm(_apply(net), params, x, eps))(obs)
    delta = np.abs(np.asarray(attacked - obs))
    np.testing.assert_allclose(delta.max(), eps, rtol=1e-5)
    assert np.all(np.isclose(delta, eps, rtol=1e-4) | (delta == 0))
    signs = jax.random.rademacher(jax.random.key(2), obs.shape, jnp.float32)
    random = obs + eps * signs
    greedy = jax.jit(lambda x: jnp.argmax(net.apply({"params": params}, x), axis=-1))
    loss_fn = jax.jit(lambda x: robustness.greedy_cross_entropy(_apply(net), params, x))
    flips = {
        name: float(jnp.mean(greedy(x) != greedy(obs)))
        for name, x in (("fgsm", attacked), ("random", random))
    }
    loss = {
        name: float(loss_fn(x))
        for name, x in (("clean", obs), ("fgsm", attacked), ("random", random))
    }
    assert flips["fgsm"] > 2 * flips["random"] and flips["fgsm"] > 0.02
    assert loss["fgsm"] - loss["clean"] > 3 * abs(loss["random"] - loss["clean"])


def _random_params(net, obs):
    """Parameters of ``net`` drawn with numpy (flax's init of the Atari DQN is slow on CPU)."""
    shapes = jax.eval_shape(net.init, jax.random.key(0), obs)["params"]
    rng = np.random.default_rng(0)

    def draw(leaf):
        fan_in = np.prod(leaf.shape[:-1]) if len(leaf.shape) > 1 else 1
        return jnp.asarray(rng.normal(0, fan_in**-0.5, leaf.shape), jnp.float32)

    return jax.tree.map(draw, shapes)


def test_fgsm_on_atari_frames_is_a_float_frame_within_eps():
    net = DQN(4)
    frames = jax.random.randint(jax.random.key(0), (2, 4, 84, 84), 0, 256).astype(jnp.uint8)
    params = _random_params(net, frames)
    attacked = jax.jit(lambda f: robustness.fgsm(_apply(net), params, f, 0.01))(frames)
    assert attacked.dtype == jnp.float32 and attacked.shape == frames.shape
    delta = np.abs(np.asarray(attacked) - np.asarray(frames, np.float32))
    np.testing.assert_allclose(delta.max(), 2.55, rtol=1e-5)
    assert float(attacked.min()) >= 0 and float(attacked.max()) <= 255
    # A float frame on [0, 255] is read exactly as the uint8 frame.
    q = jax.jit(_apply(net))
    np.testing.assert_array_equal(q(params, frames), q(params, frames.astype(jnp.float32)))


def test_fgsm_gradient_flows_through_a_spiking_mlp():
    net = MLPDSQN(3, hidden_sizes=(32,), time_steps=8)
    obs = jax.random.normal(jax.random.key(0), (64, 4))
    params = net.init(jax.random.key(1), obs)["params"]
    grad = jax.grad(lambda x: robustness.greedy_cross_entropy(_apply(net), params, x))(obs)
    assert float(jnp.mean(jnp.abs(grad) > 0)) > 0.5
    attacked = robustness.fgsm(_apply(net), params, obs, 0.1)
    np.testing.assert_allclose(np.abs(np.asarray(attacked - obs)).max(), 0.1, rtol=1e-5)


def test_zero_noise_reproduces_the_evaluator(dqn_run):
    agent = load_agent(dqn_run, "best")
    config, network, seeds = agent.config, agent.network, [agent.seed]
    params = jax.tree.map(lambda x: x[None], agent.params)
    keys = jnp.stack([jax.random.key(11)])
    clean = Evaluator(config, network, seeds, episodes=3, epsilon=0.2)(params, keys)
    evaluator = robustness.PerturbedEvaluator(config, network, seeds, episodes=3, epsilon=0.2)
    noisy = evaluator(params, keys, "noise", 0.0)
    np.testing.assert_array_equal(noisy.returns, clean.returns)
    np.testing.assert_array_equal(noisy.lengths, clean.lengths)
    np.testing.assert_allclose(noisy.mean_max_q, clean.mean_max_q, rtol=1e-6)
    np.testing.assert_allclose(noisy.max_q, clean.max_q, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown perturbation"):
        evaluator(params, keys, "blur", 0.1)


def test_robustness_report_end_to_end(dqn_run, tmp_path):
    out = robustness.robustness_report(
        [dqn_run], tmp_path / "rob", noise_stds=(0.0, 0.5), fgsm_eps=(0.0, 0.2), episodes=2
    )
    data = json.loads((tmp_path / "rob" / "robustness.json").read_text())
    assert data["runs"][0]["name"] == "cartpole-dqn"
    rows = {(r["kind"], r["size"]): r for r in data["results"]}
    assert set(rows) == {("noise", 0.0), ("noise", 0.5), ("fgsm", 0.0), ("fgsm", 0.2)}
    assert rows["noise", 0.0]["mean"] == rows["fgsm", 0.0]["mean"]
    assert len(rows["fgsm", 0.2]["per_seed"]["0"]["scores"]) == 2
    table = (tmp_path / "rob" / "robustness.md").read_text()
    assert "| FGSM, ε = 0.2 |" in table and "cartpole-dqn" in table
    assert out["path"].endswith("robustness.json")
    with pytest.raises(ValueError, match="noise sizes must be >= 0"):
        robustness.robustness_report([dqn_run], tmp_path / "bad", noise_stds=(-1.0,))
