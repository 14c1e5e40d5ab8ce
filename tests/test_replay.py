"""Tests of dsqn.replay: exact rebuilding on real envpool rollouts, validity, uniformity, errors.

The key property: driven exactly as the training loop drives it (in-jit XLA step, `reset_step`
from `reset_follows`), every transition the replay considers valid rebuilds obs and next_obs
bit-identical to what envpool handed the agent, with the recorded action, reward and discount;
the set of valid transitions is exactly the expected one; sampling only returns valid ones.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from dsqn import envs, replay

_valid_mask = jax.jit(replay.valid_mask)
_size = jax.jit(replay.size)
_gather = jax.jit(replay.gather)
_sample_indices = jax.jit(replay.sample_indices, static_argnums=2)
_sample = jax.jit(replay.sample, static_argnums=2)

CHUNK = 64  # agent steps per jitted rollout chunk; the replay is checked after every chunk
# Every example rolls out real envs and compiles; shrinking a failure would take many minutes.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def _make_rollout(env: Any) -> tuple[jax.Array, Any]:
    """A jitted chunk of the training loop's env/replay interaction with random actions."""
    num_envs = env.config["num_envs"]
    num_actions = env.action_space.n
    xs = envs.xla_step(env)

    def body(carry, key):
        handle, ts, rep = carry
        action = jax.random.randint(key, (num_envs,), 0, num_actions)
        reset_step = envs.reset_follows(ts)
        handle, next_ts = xs.step(handle, action)
        rep = replay.add(
            rep, ts.obs, action, next_ts.reward, next_ts.terminated, next_ts.truncated, reset_step
        )
        return (handle, next_ts, rep), (ts.obs, action, next_ts, reset_step)

    @jax.jit
    def run(carry, key):
        return jax.lax.scan(body, carry, jax.random.split(key, CHUNK))

    return xs.handle, run


def _expected_slot_steps(num_added: int, slots: int) -> np.ndarray:
    """int [L]: the add index held by each slot after `num_added` adds, -1 if never written."""
    i = np.arange(slots)
    return np.where(i < num_added, i + slots * ((num_added - 1 - i) // slots), -1)


def _check_replay(rep: replay.ReplayState, rec: dict[str, np.ndarray], key: jax.Array) -> None:
    """Check the valid set of `rep` and every valid transition against the recording.

    rec: obs [N + 1, E, ...] (obs[n] acted on at add n, obs[N] the latest observation), and
    action, reward, terminated, truncated, reset_step [N, E].
    """
    num_added = rec["action"].shape[0]
    slots, num_envs = rep.flags.shape
    stack = 1 if rep.last_stack is None else rep.last_stack.shape[1]
    assert int(rep.unrepresentable) == 0

    step_of = _expected_slot_steps(num_added, slots)
    age = step_of - max(num_added - slots, 0)
    lead = stack - 1 if num_added >= slots else 0
    positional = (step_of >= 0) & (step_of + 1 < num_added) & (age >= lead)
    expected = positional[:, None] & ~rec["reset_step"][np.maximum(step_of, 0)]
    mask = np.asarray(_valid_mask(rep))
    np.testing.assert_array_equal(mask, expected)
    assert int(_size(rep)) == expected.sum()

    # Gather every slot (a fixed shape: one compilation per replay shape), check the valid ones.
    all_slots, all_envs = (a.ravel() for a in np.indices((slots, num_envs), dtype=np.int32))
    batch = jax.tree.map(
        lambda x: np.asarray(x).reshape(slots, num_envs, *x.shape[1:])[mask],
        _gather(rep, all_slots, all_envs),
    )
    slot, env = np.nonzero(mask)
    n = step_of[slot]
    assert not rec["reset_step"][n, env].any(), "a transition starts at an auto-reset step"
    np.testing.assert_array_equal(batch.obs, rec["obs"][n, env])
    np.testing.assert_array_equal(batch.next_obs, rec["obs"][n + 1, env])
    np.testing.assert_array_equal(batch.action, rec["action"][n, env])
    np.testing.assert_array_equal(batch.reward, rec["reward"][n, env])
    np.testing.assert_array_equal(batch.discount, 1.0 - rec["terminated"][n, env])

    if expected.any():
        batch_size = min(256, rep.flags.size)
        s_slot, s_env = _sample_indices(rep, key, batch_size)
        assert mask[np.asarray(s_slot), np.asarray(s_env)].all(), "sampled an invalid transition"
        expected_batch = _gather(rep, s_slot, s_env)
        jax.tree.map(np.testing.assert_array_equal, _sample(rep, key, batch_size), expected_batch)


def _run_and_check(env: Any, capacity: int, num_chunks: int, seed: int) -> dict[str, np.ndarray]:
    """Roll out `num_chunks` chunks, checking the replay after each; return the full recording."""
    num_envs = env.config["num_envs"]
    ts = envs.reset(env)
    rep = replay.init(capacity, num_envs, np.asarray(ts.obs[0]), num_actions=env.action_space.n)
    handle, run = _make_rollout(env)
    carry = (handle, ts, rep)
    parts: list[dict[str, np.ndarray]] = []
    keys = jax.random.split(jax.random.key(seed), 2 * num_chunks)
    for c in range(num_chunks):
        carry, (obs, action, next_ts, reset_step) = run(carry, keys[2 * c])
        parts.append(
            {
                "obs": np.asarray(obs),
                "action": np.asarray(action),
                "reward": np.asarray(next_ts.reward),
                "terminated": np.asarray(next_ts.terminated),
                "truncated": np.asarray(next_ts.truncated),
                "game_over": np.asarray(next_ts.game_over),
                "lives": np.asarray(next_ts.lives),
                "reset_step": np.asarray(reset_step),
            }
        )
        rec = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        rec["obs"] = np.concatenate([rec["obs"], np.asarray(carry[1].obs)[None]])
        _check_replay(carry[2], rec, keys[2 * c + 1])
    return rec


@settings(max_examples=6, phases=NO_SHRINK)
@given(
    game=st.sampled_from(["Pong", "Breakout"]),
    protocol=st.sampled_from(["paper", "machado"]),
    num_envs=st.integers(2, 3),
    slots_per_env=st.integers(8, 48),
    max_episode_steps=st.integers(30, 160),
    seed=st.integers(0, 2**16),
)
def test_atari_replay_rebuilds_every_transition_exactly(
    game, protocol, num_envs, slots_per_env, max_episode_steps, seed
):
    env = envs.make_atari(
        game, num_envs, seed=seed, protocol=protocol, max_episode_steps=max_episode_steps
    )
    rec = _run_and_check(env, slots_per_env * num_envs, num_chunks=3, seed=seed)
    assert rec["truncated"].any() or max_episode_steps > 3 * CHUNK


def test_breakout_episodic_life_wraparound_and_every_kind_of_done():
    """A fixed Breakout rollout that exercises life losses, game overs and truncations."""
    env = envs.make_atari("Breakout", 3, seed=11, protocol="paper", max_episode_steps=150)
    rec = _run_and_check(env, capacity=3 * 40, num_chunks=5, seed=3)
    life_loss = rec["terminated"] & ~rec["game_over"]
    assert life_loss.sum() >= 5, "episodic life path not exercised"
    assert (rec["terminated"] & rec["game_over"]).any(), "no game over by losing all lives"
    assert rec["truncated"].any(), "no truncation"
    assert (rec["lives"][life_loss] > 0).all()


@settings(max_examples=4, phases=NO_SHRINK)
@given(
    num_envs=st.integers(1, 4),
    slots_per_env=st.integers(2, 40),
    max_episode_steps=st.integers(5, 60),
    seed=st.integers(0, 2**16),
)
def test_cartpole_replay_rebuilds_every_transition_exactly(
    num_envs, slots_per_env, max_episode_steps, seed
):
    env = envs.make_classic("CartPole-v1", num_envs, seed=seed, max_episode_steps=max_episode_steps)
    rec = _run_and_check(env, slots_per_env * num_envs, num_chunks=2, seed=seed)
    assert rec["obs"].dtype == np.float32


def _synthetic_vector_replay(slots: int, num_envs: int, num_adds: int, seed: int):
    """A vector-obs replay filled with random data, random dones and the matching reset steps."""
    rng = np.random.default_rng(seed)
    rep = replay.init(slots * num_envs, num_envs, np.zeros(3, np.float32), num_actions=5)
    add = jax.jit(replay.add)
    done = np.zeros(num_envs, bool)
    for _ in range(num_adds):
        terminated = rng.random(num_envs) < 0.1
        truncated = ~terminated & (rng.random(num_envs) < 0.05)
        rep = add(
            rep,
            rng.normal(size=(num_envs, 3)).astype(np.float32),
            rng.integers(0, 5, num_envs),
            rng.normal(size=num_envs).astype(np.float32),
            terminated,
            truncated,
            done,
        )
        done = terminated | truncated
    return rep


def test_sampling_is_uniform_over_valid_transitions():
    rep = _synthetic_vector_replay(slots=25, num_envs=4, num_adds=70, seed=0)
    mask = np.asarray(replay.valid_mask(rep))
    num_valid = int(mask.sum())
    assert 0 < num_valid < mask.size  # some slots are invalid: the test has something to exclude

    draw = jax.jit(jax.vmap(replay.sample_indices, in_axes=(None, 0, None)), static_argnums=2)
    slot, env = draw(rep, jax.random.split(jax.random.key(0), 1000), 100)
    counts = np.zeros(mask.shape, np.int64)
    np.add.at(counts, (np.asarray(slot).ravel(), np.asarray(env).ravel()), 1)
    assert counts[~mask].sum() == 0
    observed = counts[mask]
    expected = observed.sum() / num_valid
    chi2 = ((observed - expected) ** 2 / expected).sum()
    dof = num_valid - 1
    # Chi-square with dof degrees of freedom is close to normal(dof, 2 dof) here; 4 sigma.
    assert abs(chi2 - dof) < 4 * np.sqrt(2 * dof), (chi2, dof)


def test_replay_vmaps_over_seeds_and_runs_in_scan():
    num_seeds, num_envs, slots = 3, 2, 6
    obs_example = np.zeros((4, 5, 5), np.uint8)
    rep = jax.vmap(lambda _: replay.init(slots * num_envs, num_envs, obs_example))(
        jnp.arange(num_seeds)
    )

    def body(rep, t):
        frame = jnp.broadcast_to(t.astype(jnp.uint8), (num_seeds, num_envs, 1, 5, 5))
        prev = jnp.broadcast_to(jnp.maximum(t - 1, 0).astype(jnp.uint8), frame.shape)
        obs = jnp.concatenate([prev, prev, prev, frame], axis=2)  # a copies-fill, then shifts
        obs = jnp.where(t == 0, jnp.zeros_like(obs), obs)
        flags = jnp.zeros((num_seeds, num_envs), bool)
        action = jnp.zeros((num_seeds, num_envs), jnp.int32)
        reward = jnp.zeros((num_seeds, num_envs), jnp.float32)
        return jax.vmap(replay.add)(rep, obs, action, reward, flags, flags, flags), None

    rep, _ = jax.lax.scan(body, rep, jnp.arange(2))
    assert rep.head.shape == (num_seeds,)
    np.testing.assert_array_equal(rep.head, 2)
    np.testing.assert_array_equal(jax.vmap(replay.size)(rep), num_envs)
    keys = jax.random.split(jax.random.key(0), num_seeds)
    batch = jax.vmap(functools.partial(replay.sample, batch_size=4))(rep, keys)
    assert batch.obs.shape == (num_seeds, 4, 4, 5, 5)
    np.testing.assert_array_equal(batch.next_obs[:, :, -1], 1)


def test_mark_interrupted_cuts_the_newest_transition():
    rep = _synthetic_vector_replay(slots=6, num_envs=3, num_adds=9, seed=1)
    newest = (int(rep.head) - 1) % 6
    ones = np.ones((3, 3), np.float32)
    no = np.zeros(3, bool)
    step = (ones, np.zeros(3, np.int32), np.zeros(3, np.float32), no, no, no)
    resumed = replay.add(replay.mark_interrupted(rep), *step)
    assert not np.asarray(replay.valid_mask(resumed))[newest].any()
    continued = np.asarray(replay.valid_mask(replay.add(rep, *step)))
    np.testing.assert_array_equal(
        continued[newest], (np.asarray(rep.flags)[newest] & replay.RESET_STEP) == 0
    )
    empty = replay.init(12, 3, np.zeros(3, np.float32))
    jax.tree.map(np.testing.assert_array_equal, replay.mark_interrupted(empty), empty)


def test_atari_transition_memory_at_one_million():
    obs_example = np.zeros((4, 84, 84), np.uint8)
    for capacity in (1_000_000, 100_000):
        shapes = jax.eval_shape(lambda c=capacity: replay.init(c, 8, obs_example, num_actions=18))
        total = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))
        assert total / capacity <= 7300, total / capacity
    assert shapes.obs.shape == (100_000 // 8, 8, 84, 84)
    assert shapes.action.dtype == jnp.uint8


def test_vector_observations_are_stored_whole():
    rep = replay.init(12, 3, np.zeros(4, np.float32))
    assert rep.last_stack is None and rep.obs.shape == (4, 3, 4)


def test_unrepresentable_observations_are_counted():
    rep = replay.init(12, 1, np.zeros((4, 2, 2), np.uint8))
    flags = np.zeros(1, bool)
    zeros = np.zeros(1, np.float32)
    first = np.arange(16, dtype=np.uint8).reshape(1, 4, 2, 2)  # neither copies nor a shift
    rep = replay.add(rep, first, np.zeros(1, np.int32), zeros, flags, flags, flags)
    assert int(rep.unrepresentable) == 1


def test_errors():
    obs = np.zeros((4, 84, 84), np.uint8)
    with pytest.raises(ValueError, match="num_envs"):
        replay.init(100, 0, obs)
    with pytest.raises(ValueError, match="multiple of num_envs=3"):
        replay.init(100, 3, obs)
    with pytest.raises(ValueError, match="capacity=2 .*num_envs=4"):
        replay.init(2, 4, obs)
    with pytest.raises(ValueError, match="at least 5"):
        replay.init(16, 4, obs)
    rep = replay.init(40, 4, obs)
    with pytest.raises(ValueError, match="batch_size=64"):
        replay.sample(rep, jax.random.key(0), 64)
    with pytest.raises(ValueError, match="batch_size=0"):
        replay.sample(rep, jax.random.key(0), 0)
    assert not bool(replay.can_sample(rep, 32))
    assert int(replay.size(rep)) == 0
