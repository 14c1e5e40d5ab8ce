"""Tests of dsqn.learning.replay: exact rebuilding on real envpool rollouts, validity, uniformity,
errors.

The key property: driven exactly as the training loop drives it (in-jit XLA step, `reset_step`
from `reset_follows`), every transition the replay considers valid rebuilds obs and next_obs
bit-identical to what envpool handed the agent, with the recorded action, reward and discount;
the set of valid transitions is exactly the expected one; sampling only returns valid ones.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from dsqn import envs
from dsqn.config import LearnerConfig
from dsqn.learning import replay

_valid_mask = jax.jit(replay.valid_mask)
_size = jax.jit(replay.size)
_gather = jax.jit(replay.gather)
_sample_indices = jax.jit(replay.sample_indices, static_argnums=2)
_sample = jax.jit(replay.sample, static_argnums=2)
_sample_proportional = jax.jit(replay.sample_proportional, static_argnums=2)
_update_priorities = jax.jit(replay.update_priorities, static_argnums=4)

# Wang & Ueda's prioritized replay (ConvergentDQN code): every option of a PriorityRule in use.
WANG_UEDA = replay.PriorityRule(
    exponent=0.6,
    epsilon=1e-10,
    initial_max=100.0,
    max_tracking="last_updated",
    floor_of_mean=0.1,
    predecessor_fraction=0.5,
)
CHUNK = 64  # agent steps per jitted rollout chunk; the replay is checked after every chunk
# Every example rolls out real envs and compiles; shrinking a failure would take many minutes.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def _acted_on(ts: envs.Timestep, since: jax.Array, refill: bool) -> jax.Array:
    """The observations the agent acts on: envpool's, or with `refill` the training loop's
    Baselines-style stacks (refilled at a life loss)."""
    return envs.refill_stack(ts.obs, since) if refill else ts.obs


def _make_rollout(env: Any, refill: bool) -> tuple[jax.Array, Any]:
    """A jitted chunk of the training loop's env/replay interaction with random actions."""
    num_envs = env.config["num_envs"]
    num_actions = env.action_space.n
    xs = envs.xla_step(env)

    def body(carry, key):
        handle, ts, rep, since = carry
        action = jax.random.randint(key, (num_envs,), 0, num_actions)
        reset_step = envs.reset_follows(ts)
        obs = _acted_on(ts, since, refill)
        handle, next_ts = xs.step(handle, action)
        rep = replay.add(
            rep, obs, action, next_ts.reward, next_ts.terminated, next_ts.truncated, reset_step
        )
        since = envs.steps_since_reset(since, reset_step)
        return (handle, next_ts, rep, since), (obs, action, next_ts, reset_step)

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
        if rep.priority is not None:
            p_slot, p_env, weights = _sample_proportional(rep, key, batch_size, 0.5)
            p_slot, p_env = np.asarray(p_slot), np.asarray(p_env)
            assert mask[p_slot, p_env].all(), "a prioritized draw picked an invalid transition"
            assert np.all(np.asarray(weights) <= 1.0 + 1e-6)
            batch = _gather(rep, p_slot, p_env)
            n = step_of[p_slot]
            np.testing.assert_array_equal(batch.obs, rec["obs"][n, p_env])
            np.testing.assert_array_equal(batch.next_obs, rec["obs"][n + 1, p_env])


def _run_and_check(
    env: Any,
    capacity: int,
    num_chunks: int,
    seed: int,
    rule: replay.PriorityRule | None = None,
    refill: bool = False,
) -> dict[str, np.ndarray]:
    """Roll out `num_chunks` chunks, checking the replay after each; return the full recording.

    With a priority `rule`, the valid transitions get random priorities after each chunk, so that
    the prioritized draws of the check are far from uniform. With `refill`, the agent acts on
    (and the replay stores) stacks refilled at a life loss, as in training by default."""
    num_envs = env.config["num_envs"]
    ts = envs.reset(env)
    rep = replay.init(
        capacity,
        num_envs,
        np.asarray(ts.obs[0]),
        num_actions=env.action_space.n,
        priority_rule=rule,
    )
    rng = np.random.default_rng(seed)
    handle, run = _make_rollout(env, refill)
    carry = (handle, ts, rep, jnp.zeros(num_envs, jnp.int32))
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
        latest = _acted_on(carry[1], carry[3], refill)
        rec["obs"] = np.concatenate([rec["obs"], np.asarray(latest)[None]])
        if rule is not None:
            slot, env_index = (a.ravel() for a in np.indices(carry[2].flags.shape, np.int32))
            td = rng.exponential(size=slot.shape).astype(np.float32) ** 3
            rep = _update_priorities(carry[2], slot, env_index, td, rule)
            carry = (carry[0], carry[1], rep, carry[3])
        _check_replay(carry[2], rec, keys[2 * c + 1])
    return rec


@pytest.mark.slow
@settings(max_examples=6, phases=NO_SHRINK)
@given(
    game=st.sampled_from(["Pong", "Breakout"]),
    protocol=st.sampled_from(["paper", "machado"]),
    num_envs=st.integers(2, 3),
    slots_per_env=st.integers(8, 48),
    max_episode_steps=st.integers(30, 160),
    seed=st.integers(0, 2**16),
    prioritized=st.booleans(),
    refill=st.booleans(),
)
def test_atari_replay_rebuilds_every_transition_exactly(
    game, protocol, num_envs, slots_per_env, max_episode_steps, seed, prioritized, refill
):
    env = envs.make_atari(
        game, num_envs, seed=seed, protocol=protocol, max_episode_steps=max_episode_steps
    )
    rule = replay.PriorityRule(predecessor_fraction=0.5) if prioritized else None
    rec = _run_and_check(
        env, slots_per_env * num_envs, num_chunks=3, seed=seed, rule=rule, refill=refill
    )
    assert rec["truncated"].any() or max_episode_steps > 3 * CHUNK


def test_breakout_episodic_life_wraparound_and_every_kind_of_done():
    """A fixed Breakout rollout that exercises life losses, game overs and truncations."""
    env = envs.make_atari("Breakout", 3, seed=11, protocol="paper", max_episode_steps=150)
    rec = _run_and_check(env, capacity=3 * 40, num_chunks=5, seed=3, rule=WANG_UEDA, refill=True)
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


def _synthetic_vector_replay(
    slots: int, num_envs: int, num_adds: int, seed: int, rule: replay.PriorityRule | None = None
):
    """A vector-obs replay filled with random data, random dones and the matching reset steps."""
    rng = np.random.default_rng(seed)
    rep = replay.init(
        slots * num_envs, num_envs, np.zeros(3, np.float32), num_actions=5, priority_rule=rule
    )
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


def _chi_square(counts: np.ndarray, probability: np.ndarray) -> tuple[float, int]:
    expected = counts.sum() * probability
    return float(((counts - expected) ** 2 / expected).sum()), len(counts) - 1


def test_proportional_draw_frequencies():
    """Chi-square against mass / sum(mass): single draws are multinomial (two-sided test);
    stratified batches are at least as close (one-sided); mass 0 is never drawn. N = 103 is not
    a square, so the last block is padded."""
    rng = np.random.default_rng(0)
    mass = rng.exponential(size=103).astype(np.float32) ** 2
    mass[rng.random(103) < 0.3] = 0.0
    draw = jax.jit(jax.vmap(replay.proportional_draw, in_axes=(None, 0, None)), static_argnums=2)
    positive = mass > 0
    for batch, keys in ((1, 40_000), (32, 1_000)):
        idx = np.asarray(
            draw(jnp.asarray(mass), jax.random.split(jax.random.key(batch), keys), batch)
        )
        counts = np.bincount(idx.ravel(), minlength=mass.size)
        assert counts[~positive].sum() == 0
        chi2, dof = _chi_square(counts[positive], mass[positive] / mass.sum())
        assert chi2 - dof < 4 * np.sqrt(2 * dof), (batch, chi2, dof)
        if batch == 1:
            assert dof - chi2 < 4 * np.sqrt(2 * dof), (chi2, dof)


def test_prioritized_sampling_follows_updated_priorities():
    """After priorities are set from TD errors, draws are proportional to (|td| + eps)^alpha over
    the valid transitions only, and the weights are (N P(i))^-beta / max_j (N P(j))^-beta."""
    rule = replay.PriorityRule(exponent=0.7, epsilon=0.01)
    rep = _synthetic_vector_replay(slots=25, num_envs=4, num_adds=70, seed=0, rule=rule)
    mask = np.asarray(replay.valid_mask(rep))
    assert 0 < mask.sum() < mask.size
    slot, env = (a.ravel() for a in np.indices(mask.shape, np.int32))
    td = np.random.default_rng(1).normal(size=slot.shape).astype(np.float32) * 3
    rep = replay.update_priorities(rep, slot, env, td, rule)
    mass = ((np.abs(td) + 0.01) ** 0.7).reshape(mask.shape)
    np.testing.assert_allclose(rep.priority, mass, rtol=1e-6)

    draw = jax.jit(
        jax.vmap(replay.sample_proportional, in_axes=(None, 0, None, None)), static_argnums=2
    )
    s_slot, s_env, weights = draw(rep, jax.random.split(jax.random.key(0), 600), 32, 0.4)
    counts = np.zeros(mask.shape, np.int64)
    np.add.at(counts, (np.asarray(s_slot).ravel(), np.asarray(s_env).ravel()), 1)
    assert counts[~mask].sum() == 0
    chi2, dof = _chi_square(counts[mask], mass[mask] / mass[mask].sum())
    assert chi2 - dof < 4 * np.sqrt(2 * dof), (chi2, dof)

    probability = mass / mass[mask].sum()
    n = mask.sum()
    w_all = (n * probability) ** -0.4
    expected = w_all[np.asarray(s_slot), np.asarray(s_env)] / w_all[mask].max()
    np.testing.assert_allclose(weights, expected, rtol=2e-5)


def test_importance_weights_by_hand():
    p = jnp.array([0.1, 0.4, 0.05])
    # (5 * 0.1)^-0.5 = sqrt(2), (5 * 0.4)^-0.5 = 1/sqrt(2), (5 * 0.05)^-0.5 = 2
    np.testing.assert_allclose(replay.importance_weights(p, 5.0, 0.5), [2**0.5, 2**-0.5, 2.0])
    normalized = replay.importance_weights(p, 5.0, 0.5, min_probability=0.05)
    np.testing.assert_allclose(normalized, [2**-0.5, 2**-1.5, 1.0], rtol=1e-6)
    capped = replay.importance_weights(p, 5.0, 0.5, max_weight=1.2)
    np.testing.assert_allclose(capped, [1.2, 2**-0.5, 1.2], rtol=1e-6)
    np.testing.assert_allclose(replay.importance_weights(p, 5.0, 0.0), 1.0)


def test_new_transitions_get_the_maximum_priority():
    add = jax.jit(replay.add)
    step = (
        np.ones((2, 3), np.float32),
        np.zeros(2, np.int32),
        np.zeros(2, np.float32),
        np.zeros(2, bool),
        np.zeros(2, bool),
        np.zeros(2, bool),
    )
    for tracking, after in (("running", 3.0), ("last_updated", 0.5)):
        rule = replay.PriorityRule(
            exponent=1.0, epsilon=1e-9, initial_max=3.0, max_tracking=tracking
        )
        rep = replay.init(10, 2, np.zeros(3, np.float32), priority_rule=rule)
        for _ in range(3):
            rep = add(rep, *step)
        np.testing.assert_allclose(rep.priority[:3], 3.0)  # the initial maximum
        rep = replay.update_priorities(
            rep, jnp.array([0, 1]), jnp.array([1, 0]), jnp.array([0.5, -0.25]), rule
        )
        np.testing.assert_allclose(rep.priority[:2], [[3.0, 0.5], [0.25, 3.0]], rtol=1e-6)
        rep = add(rep, *step)
        # running: max(3, 0.5); last_updated: the largest of the slots' last updates.
        np.testing.assert_allclose(rep.priority[3], after, rtol=1e-6)


def test_priority_floor_and_predecessor():
    """Wang & Ueda's additions: a floor at a fraction of the mean mass, and half the priority
    given to the preceding transition of the same env (never to an auto-reset step)."""
    rule = replay.PriorityRule(
        exponent=1.0, epsilon=1e-9, initial_max=2.0, floor_of_mean=0.1, predecessor_fraction=0.5
    )
    rep = replay.init(12, 1, np.zeros(2, np.float32), priority_rule=rule)
    done = np.zeros(1, bool)
    for terminated in (False, False, True, False, False, False):
        step = (np.ones((1, 2), np.float32), np.zeros(1, np.int32), np.zeros(1, np.float32))
        rep = replay.add(rep, *step, np.array([terminated]), np.zeros(1, bool), done)
        done = np.array([terminated])
    # Slots 0, 1, 2 (terminal) and 4 are transitions; 3 is the auto-reset step, 5 the newest.
    valid = np.asarray(replay.valid_mask(rep))[:6, 0]
    np.testing.assert_array_equal(valid, [1, 1, 1, 0, 1, 0])
    # All masses 2.0 -> floor 0.1 * 2.0 = 0.2. slot 0: |td| 0.001 -> 0.2 (the floor); slot 2:
    # 7.0, and its predecessor, slot 1, raised to 0.5 * 7.0; slot 4: 9.0, its predecessor is
    # the auto-reset step, left at 2.0.
    rep = replay.update_priorities(
        rep, jnp.array([0, 2, 4]), jnp.array([0, 0, 0]), jnp.array([0.001, 7.0, -9.0]), rule
    )
    np.testing.assert_allclose(rep.priority[:6, 0], [0.2, 3.5, 7.0, 2.0, 9.0, 2.0], rtol=1e-5)
    np.testing.assert_allclose(rep.priority_max, 9.0, rtol=1e-6)


def test_priority_updates_vmap_over_seeds():
    """Three seeds' replays updated in one vmapped call equal three separate updates."""
    reps = [
        _synthetic_vector_replay(slots=8, num_envs=2, num_adds=12, seed=s, rule=WANG_UEDA)
        for s in range(3)
    ]
    rng = np.random.default_rng(5)
    slot = rng.integers(0, 8, (3, 6)).astype(np.int32)
    env = rng.integers(0, 2, (3, 6)).astype(np.int32)
    td = rng.normal(size=(3, 6)).astype(np.float32)
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *reps)
    update = jax.jit(
        jax.vmap(replay.update_priorities, in_axes=(0, 0, 0, 0, None)), static_argnums=4
    )
    together = update(stacked, slot, env, td, WANG_UEDA)
    for i, rep in enumerate(reps):
        alone = _update_priorities(rep, slot[i], env[i], td[i], WANG_UEDA)
        for name in ("priority", "priority_max", "priority_last"):
            np.testing.assert_array_equal(getattr(together, name)[i], getattr(alone, name))
    assert not np.array_equal(together.priority[0], together.priority[1])
    keys = jax.random.split(jax.random.key(0), 3)
    sample = jax.vmap(replay.sample_proportional, in_axes=(0, 0, None, None))
    s_slot, s_env, _ = sample(together, keys, 5, 0.4)
    for i in range(3):
        mask = np.asarray(replay.valid_mask(reps[i]))
        assert mask[np.asarray(s_slot[i]), np.asarray(s_env[i])].all()


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


def test_truncation_ends_the_bootstrap_when_asked():
    """By default a truncated transition bootstraps (discount 1); the authors' wrappers report
    the time limit as done, which zeroes it (bootstrap_truncated=False)."""
    rep = _synthetic_vector_replay(slots=25, num_envs=4, num_adds=70, seed=2)
    slot, env = np.nonzero(np.asarray(replay.valid_mask(rep)))
    flags = np.asarray(rep.flags)[slot, env]
    truncated = (flags & replay.TRUNCATED) != 0
    terminated = (flags & replay.TERMINATED) != 0
    assert truncated.any() and terminated.any()
    slot, env = jnp.asarray(slot, jnp.int32), jnp.asarray(env, jnp.int32)
    np.testing.assert_array_equal(replay.gather(rep, slot, env).discount, ~terminated)
    ended = replay.gather(rep, slot, env, bootstrap_truncated=False).discount
    np.testing.assert_array_equal(ended, ~(terminated | truncated))


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


def test_the_priority_rule_is_the_configs_priority_settings():
    """One definition of the priority settings: the rule's fields are the learner config's
    ``priority_*`` fields, with their types and defaults; the rule is hashable (a static argument
    of jit)."""
    settings = {
        f.name.removeprefix("priority_"): (f.type, f.default)
        for f in dataclasses.fields(LearnerConfig)
        if f.name.startswith("priority_")
    }
    rule = {f.name: (f.type, f.default) for f in dataclasses.fields(replay.PriorityRule)}
    assert rule == settings and len(rule) == 6
    assert hash(replay.PriorityRule()) == hash(replay.PriorityRule())
    with pytest.raises(dataclasses.FrozenInstanceError):
        replay.PriorityRule().exponent = 1.0
