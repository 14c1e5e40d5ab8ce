"""dsqn.training.chunk: the jitted multi-seed chunk on real envpool CartPole (and a tiny Atari
chunk)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from processes import python

from dsqn import config as C
from dsqn.training.chunk import _multiples_in, make_train


def small(preset="cartpole-dqn", **overrides):
    base = {
        "run.seeds": "0 1",
        "env.envs_per_seed": "2",
        "learner.warmup_agent_steps": "200",
        "learner.batch_size": "16",
        "learner.update_period_agent_steps": "4",
        "learner.target_update_period_agent_steps": "100",
        "learner.replay_capacity_transitions": "2000",
        "network.hidden_sizes": "16",
        "network.time_steps": "4",
    }
    base.update(overrides)
    return C.apply_overrides(C.preset(preset), base)


def run_chunks(config, iterations, chunks=1):
    exp = make_train(config)
    carry = exp.init_carry()
    chunk = exp.chunk_fn(iterations)
    out = []
    for _ in range(chunks):
        carry, metrics = chunk(carry)
        out.append(jax.device_get(metrics))
    return exp, carry, out


def test_multiples_in():
    assert int(_multiples_in(jnp.int32(0), jnp.int32(4), 4)) == 1
    assert int(_multiples_in(jnp.int32(4), jnp.int32(8), 4)) == 1
    assert int(_multiples_in(jnp.int32(1), jnp.int32(3), 4)) == 0
    assert int(_multiples_in(jnp.int32(0), jnp.int32(16), 4)) == 4
    assert int(_multiples_in(jnp.int32(50), jnp.int32(40), 4)) == 0


def test_schedule_counts_updates_and_syncs():
    # 2 envs per seed: 2 agent steps per iteration; 300 iterations = 600 agent steps.
    exp, carry, (m,) = run_chunks(small(), 300)
    assert int(carry.agent_steps) == 600
    # Updates at agent steps 204, 208, ..., 600 (after the 200-step warm-up): 100 of them.
    np.testing.assert_array_equal(np.asarray(carry.train.updates), [100, 100])
    np.testing.assert_array_equal(m["updates"], [100, 100])
    # The last sync was at agent step 600: target equals online parameters.
    same = jax.tree.map(
        lambda a, b: bool(jnp.all(a == b)), carry.train.params, carry.train.target_params
    )
    assert all(jax.tree.leaves(same))


def test_schedule_from_the_end_of_the_warm_up():
    """The paper's schedule (the warm-up not counted) shifts updates and target syncs by the
    warm-up: with a 150-step warm-up, 600 agent steps hold updates at schedule steps 4, ...,
    448 (112) and a last sync at schedule step 400 (agent step 550); counting the warm-up,
    updates at agent steps 152, ..., 600 (113) and a sync at 600."""
    overrides = {"learner.warmup_agent_steps": "150"}
    _, paper, _ = run_chunks(small(**overrides, **{"learner.schedule_counts_warmup": "false"}), 300)
    _, counted, _ = run_chunks(small(**overrides), 300)
    np.testing.assert_array_equal(np.asarray(paper.train.updates), [112, 112])
    np.testing.assert_array_equal(np.asarray(counted.train.updates), [113, 113])

    def synced(carry):
        same = jax.tree.map(
            lambda a, b: bool(jnp.all(a == b)), carry.train.params, carry.train.target_params
        )
        return all(jax.tree.leaves(same))

    assert synced(counted) and not synced(paper)


def test_target_lags_between_syncs():
    exp, carry, _ = run_chunks(small(), 260)  # 520 steps: last sync at 500, updates since
    same = jax.tree.map(
        lambda a, b: bool(jnp.all(a == b)), carry.train.params, carry.train.target_params
    )
    assert not all(jax.tree.leaves(same))


def test_seeds_differ_in_init_exploration_and_envs():
    exp, carry, (m,) = run_chunks(small(), 300)
    p = carry.train.params
    first = jax.tree.leaves(p)[0]
    assert not np.allclose(np.asarray(first[0]), np.asarray(first[1]))
    init = exp.init_train_states()
    k = jax.tree.leaves(init.params)[0]
    assert not np.allclose(np.asarray(k[0]), np.asarray(k[1]))
    # Different env seeds and exploration: the replays hold different observations.
    obs = np.asarray(carry.replay.obs)
    assert not np.array_equal(obs[0], obs[1])
    assert m["episodes"][0] > 0 and m["episodes"][1] > 0


@pytest.mark.slow
def test_determinism_same_config_same_metrics():
    _, c1, m1 = run_chunks(small(), 150, chunks=2)
    _, c2, m2 = run_chunks(small(), 150, chunks=2)
    for a, b in zip(m1, m2, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    leaves = zip(jax.tree.leaves(c1.train.params), jax.tree.leaves(c2.train.params), strict=True)
    for a, b in leaves:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_xla_and_callback_stepping_train_and_evaluate_identically():
    """env.stepping "xla" and "callback" step the same envpool pool: identical runs on CPU."""
    from dsqn.learning.evaluation import Evaluator

    runs = []
    for stepping in ("xla", "callback"):
        cfg = small(**{"env.stepping": stepping, "eval.max_episode_agent_steps": "50"})
        exp, carry, metrics = run_chunks(cfg, 150)
        # The callback step's handle is a placeholder; envpool's XLA handle is larger.
        assert (exp.stepper().handle.shape == (1,)) == (stepping == "callback")
        evaluator = Evaluator(cfg, exp.network, list(cfg.run.seeds), episodes=2)
        keys = jnp.stack([jax.random.key(s) for s in cfg.run.seeds])
        runs.append((carry, metrics, evaluator(carry.train.params, keys)))
    (c1, m1, e1), (c2, m2, e2) = runs
    for a, b in zip(m1, m2, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert m1[-1]["updates"][0] > 0 and m1[-1]["episodes"].sum() > 0
    train1, train2 = (c.train._replace(key=jax.random.key_data(c.train.key)) for c in (c1, c2))
    for a, b in zip(jax.tree.leaves(train1), jax.tree.leaves(train2), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(e1.returns, e2.returns)
    np.testing.assert_array_equal(e1.lengths, e2.lengths)


def test_a_seed_trains_the_same_alone_or_in_a_group():
    """Seeds share nothing but the schedule: seed 1 alone equals seed 1 next to seed 0."""
    _, alone, (m_alone,) = run_chunks(small(**{"run.seeds": "1"}), 200)
    _, group, (m_group,) = run_chunks(small(**{"run.seeds": "0 1"}), 200)
    np.testing.assert_allclose(m_alone["episode_return"][0], m_group["episode_return"][1])
    np.testing.assert_allclose(m_alone["loss"][0], m_group["loss"][1], rtol=1e-4)


def test_prioritized_replay_inside_the_chunk():
    """Prioritized replay in the jitted, seed-vmapped chunk: each seed's sampled transitions
    get priorities from its own TD errors, and updates run as with uniform replay."""
    cfg = small(**{"learner.replay_sampling": "proportional"})
    exp, carry, (m,) = run_chunks(cfg, 150)
    np.testing.assert_array_equal(np.asarray(carry.train.updates), [25, 25])
    assert np.all(np.isfinite(m["loss"]))
    priority = np.asarray(carry.replay.priority)  # [S, L, E]
    written = priority[:, :150] > 0
    assert written.all()
    # Sampled transitions left the initial maximum (1.0); the seeds' priorities differ.
    assert np.any(priority[0, :150] != 1.0) and np.any(priority[1, :150] != 1.0)
    assert not np.array_equal(priority[0], priority[1])


def test_the_chunk_weights_by_the_scheduled_importance_exponent():
    """The chunk's updates use beta(t) of the schedule: starting at beta 1 or at beta 0 (annealed
    over the run's 50,000 steps, so about 0 here) trains differently; a fixed exponent would
    give both runs the same parameters."""
    runs = []
    for start in ("1.0", "0.0"):
        cfg = small(
            **{
                "learner.replay_sampling": "proportional",
                "learner.importance_exponent_start": start,
                "run.seeds": "0",
            }
        )
        _, carry, (m,) = run_chunks(cfg, 150)
        assert int(carry.train.updates[0]) == 25
        runs.append(carry.train.params)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), *runs)
    assert max(jax.tree.leaves(moved)) > 1e-4


def test_the_chunk_explores_with_the_configured_epsilon():
    """After the warm-up, with no update yet (the parameters are the initial ones), the chunk's
    stored actions are its own network's greedy ones at epsilon 0, while at epsilon about 1
    (a sweep's other agent: 1 -> 0 over 8,000 steps) about half of them (2 actions) are not."""
    cfg = small(
        **{
            "learner.warmup_agent_steps": "20",
            "learner.update_period_agent_steps": "100000",
            "learner.epsilon_end": "0.0",
            "run.seeds": "0",
            "sweep.learner_epsilon_start": "0 1",
        }
    )
    exp, carry, _ = run_chunks(cfg, 60)  # 2 envs: iterations 10-59 act after the warm-up
    assert np.asarray(carry.train.updates).tolist() == [0, 0]
    obs = np.asarray(carry.replay.obs)[:, 10:60].reshape(2, -1, 4)
    actions = np.asarray(carry.replay.action)[:, 10:60].reshape(2, -1)
    shares = {}
    for i, spec in enumerate(exp.agents):
        params = jax.tree.map(lambda x, i=i: x[i], carry.train.params)
        q = exp.network.apply({"params": params}, jnp.asarray(obs[i]))
        shares[dict(spec.values)["learner.epsilon_start"]] = np.mean(q.argmax(-1) == actions[i])
    assert shares[0.0] == 1.0 and shares[1.0] < 0.8


def test_spiking_chunk_reports_spike_counts():
    exp, carry, (m,) = run_chunks(small("cartpole-dsqn"), 150)
    assert set(exp.layer_neurons) == {"fc1"}
    assert exp.layer_neurons["fc1"] == 16
    assert m["acting_forwards"][0] == 150 - 100  # no forward pass during the 200-step warm-up
    rate = m["spikes_fc1"] / (m["acting_forwards"] * 2 * 4 * 16)
    assert np.all((rate >= 0) & (rate <= 1))


@pytest.mark.slow
def test_tiny_atari_chunk_runs():
    cfg = C.apply_overrides(
        C.preset("dsqn"),
        {
            "env.game": "Pong",
            "network.time_steps": "2",
            "learner.warmup_agent_steps": "40",
            "learner.batch_size": "4",
            "learner.replay_capacity_transitions": "200",
            "env.max_episode_agent_steps": "30",
        },
    )
    exp, carry, (m,) = run_chunks(cfg, 60)
    assert int(carry.agent_steps) == 60
    assert int(carry.train.updates[0]) == 5  # agent steps 44, 48, 52, 56, 60
    assert set(exp.layer_neurons) == {"conv1", "conv2", "conv3", "fc1"}
    assert m["episodes"][0] >= 1  # the 30-step cap truncates
    assert int(carry.replay.unrepresentable[0]) == 0


SHARDED_RUN = """
import json, sys
import jax, numpy as np
from dsqn import config as C
from dsqn.training.chunk import make_train
cfg = C.apply_overrides(C.preset("cartpole-dsqn"), {
    "run.seeds": "0 1", "env.envs_per_seed": "2", "learner.warmup_agent_steps": "100",
    "learner.batch_size": "16", "learner.replay_capacity_transitions": "1000",
    "network.hidden_sizes": "16", "network.time_steps": "4"})
exp = make_train(cfg)
carry = exp.init_carry()
chunk = exp.chunk_fn(100)
for _ in range(2):
    carry, m = chunk(carry)
m = jax.device_get(m)
sharding = jax.tree.leaves(carry.train.params)[0].sharding
print(json.dumps({"devices": len(jax.local_devices()), "mesh": exp.mesh is not None,
                  "spec": str(getattr(sharding, "spec", None)),
                  "metrics": {k: np.asarray(v).tolist() for k, v in m.items()}}))
"""


def _run_with_devices(n: int) -> dict:
    flags = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
    out = python(SHARDED_RUN, env=flags, timeout=600, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_seed_axis_sharded_over_two_devices_matches_one_device():
    one, two = _run_with_devices(1), _run_with_devices(2)
    assert not one["mesh"] and two["mesh"] and two["devices"] == 2
    assert "'seed'" in two["spec"]
    assert one["metrics"].keys() == two["metrics"].keys()
    for k in one["metrics"]:
        np.testing.assert_allclose(one["metrics"][k], two["metrics"][k], rtol=1e-5, err_msg=k)


SEED_MESHES = """
import json
from dsqn import config as C
from dsqn.training.chunk import seed_mesh

cfg = C.apply_overrides(C.preset("cartpole-dqn"), {"run.seeds": "0 1 2"})
try:
    seed_mesh(cfg)
    error = None
except C.ConfigError as e:
    error = str(e)
unsharded = seed_mesh(C.apply_overrides(cfg, {"run.shard_seeds": "false"}))
even = seed_mesh(C.apply_overrides(cfg, {"run.seeds": "0 1"}))
print(json.dumps({"error": error, "unsharded": unsharded is None, "even": even.devices.size}))
"""


def test_seeds_must_divide_over_devices():
    """On two (forced) CPU devices, three seeds are refused with the figures and the way out;
    two seeds get a two-device mesh; unsharded seeds need no mesh."""
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = json.loads(python(SEED_MESHES, env=flags, timeout=300, check=True).stdout)
    assert "3 seeds" in out["error"] and "2 devices" in out["error"]
    assert "--run.shard_seeds false" in out["error"]
    assert out["unsharded"] and out["even"] == 2
