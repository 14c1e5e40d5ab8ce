"""Tests of dsqn.envs.stepping, and of the envpool behaviour its docstring documents.

Verified facts (envpool 1.2.5): info["reward"] is the unclipped reward; the step after a done is
an auto-reset that ignores the action and returns reward 0 and done False; a real reset fills the
stack with copies of one frame; under episodic life the reset after a life loss carries the stack
on and does not restart the game.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn import envs


def _rollout(
    env: Any,
    num_steps: int,
    seed: int,
    choose: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> dict[str, np.ndarray]:
    """Step the pool inside one jitted lax.scan with random actions, as training does.

    Args:
      choose: optional (random actions [N], reset_step [N]) -> actions [N].

    Returns:
      obs [T + 1, N, ...] (obs[t] is what the agent acted on at step t), action, reset_step,
      the Timestep fields of each step's result, and the EpisodeStats after each step, all [T, N].
    """
    num_envs = env.config["num_envs"]
    xs = envs.xla_step(env)
    ts = envs.reset(env)

    def body(carry, key):
        handle, ts, stats = carry
        reset_step = envs.reset_follows(ts)
        action = jax.random.randint(key, (num_envs,), 0, env.action_space.n)
        if choose is not None:
            action = choose(action, reset_step)
        handle, next_ts = xs.step(handle, action)
        stats = envs.update_episode_stats(stats, next_ts, reset_step)
        return (handle, next_ts, stats), (ts.obs, action, reset_step, next_ts, stats)

    run = jax.jit(lambda carry, keys: jax.lax.scan(body, carry, keys))
    carry = (xs.handle, ts, envs.init_episode_stats(num_envs))
    carry, (obs, action, reset_step, next_ts, stats) = run(
        carry, jax.random.split(jax.random.key(seed), num_steps)
    )
    rec = {"action": action, "reset_step": reset_step, **next_ts._asdict()}
    rec.update({f"stats_{k}": v for k, v in stats._asdict().items()})
    rec["obs"] = jnp.concatenate([obs, carry[1].obs[None]])
    return {k: np.asarray(v) for k, v in rec.items()}


def _is_copies(obs: np.ndarray) -> np.ndarray:
    """bool [...]: each stacked observation [..., K, H, W] holds K copies of one frame."""
    return (obs == obs[..., -1:, :, :]).all(axis=(-3, -2, -1))


def _is_shift(obs: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """bool [...]: obs continues prev's stack by one frame."""
    return (obs[..., :-1, :, :] == prev[..., 1:, :, :]).all(axis=(-3, -2, -1))


def test_reset_gives_initial_timestep():
    env = envs.make_atari("Breakout", 2)
    ts = envs.reset(env)
    assert ts.obs.shape == (2, 4, 84, 84) and ts.obs.dtype == jnp.uint8
    assert _is_copies(np.asarray(ts.obs)).all(), "a real reset fills the stack with copies"
    np.testing.assert_array_equal(ts.lives, 5)
    assert not (ts.terminated | ts.truncated | ts.game_over).any()
    assert not envs.reset_follows(ts).any()

    ts = envs.reset(envs.make_classic("CartPole-v1", 3))
    assert ts.obs.shape == (3, 4) and ts.obs.dtype == jnp.float32
    assert ts.reward.dtype == jnp.float32 and ts.lives.dtype == jnp.int32
    np.testing.assert_array_equal(ts.lives, 0)


def test_raw_reward_is_unclipped():
    env = envs.make_atari("SpaceInvaders", 4, seed=1, protocol="paper", train=True)
    rec = _rollout(env, 250, seed=0)
    assert (rec["raw_reward"] > 1).any(), "SpaceInvaders scores 5..30 per alien"
    np.testing.assert_array_equal(rec["reward"], np.sign(rec["raw_reward"]))
    assert rec["reward"].dtype == np.float32 and rec["raw_reward"].dtype == np.float32

    eval_rec = _rollout(envs.make_atari("SpaceInvaders", 4, seed=1, train=False), 250, seed=0)
    np.testing.assert_array_equal(eval_rec["reward"], eval_rec["raw_reward"])
    assert (eval_rec["reward"] > 1).any()


@pytest.mark.parametrize(
    ("protocol", "train"), [("paper", True), ("paper", False), ("machado", True)]
)
def test_auto_reset_account(protocol, train):
    env = envs.make_atari(
        "Breakout", 3, seed=5, protocol=protocol, train=train, max_episode_steps=150
    )
    rec = _rollout(env, 400, seed=1)
    obs, prev = rec["obs"][1:], rec["obs"][:-1]  # obs[t] is the result of step t
    done = rec["terminated"] | rec["truncated"]
    reset = rec["reset_step"]
    np.testing.assert_array_equal(reset[1:], done[:-1])

    # A reset step returns reward 0 and is never itself a done.
    assert reset.sum() >= 3
    assert (rec["reward"][reset] == 0).all() and (rec["raw_reward"][reset] == 0).all()
    assert not done[reset].any()

    # Game over: truncation, or termination with the emulator's game over (lives == 0).
    np.testing.assert_array_equal(
        rec["game_over"], rec["truncated"] | (rec["terminated"] & (rec["lives"] == 0))
    )
    # After a game over the reset fills the stack with copies and restores all lives.
    after_game_over = np.zeros_like(reset)
    after_game_over[1:] = rec["game_over"][:-1]
    assert after_game_over.any()
    assert _is_copies(obs[after_game_over]).all()
    assert (rec["lives"][after_game_over] == 5).all()

    life_loss = rec["terminated"] & ~rec["game_over"]
    after_life_loss = np.zeros_like(reset)
    after_life_loss[1:] = life_loss[:-1]
    if protocol == "paper" and train:
        # Episodic life: the reset step after a life loss continues the stack and the game.
        assert after_life_loss.sum() >= 5
        assert _is_shift(obs[after_life_loss], prev[after_life_loss]).all()
        assert not _is_copies(obs[after_life_loss]).all()
        prev_lives = np.concatenate([np.full((1, 3), 5), rec["lives"][:-1]])
        np.testing.assert_array_equal(rec["lives"][after_life_loss], prev_lives[after_life_loss])
    else:
        assert not life_loss.any(), "without episodic life every termination is a game over"


def test_refill_stack_by_hand():
    """Frames from before the last reset are replaced by the reset's frame."""
    a, b, c, d = (np.full((1, 2, 2), v, np.uint8) for v in (1, 2, 3, 4))
    obs = jnp.asarray(np.concatenate([a, b, c, d])[None].repeat(5, 0))  # [5, 4, 2, 2]
    got = np.asarray(envs.refill_stack(obs, jnp.array([0, 1, 2, 3, 9])))[:, :, 0, 0]
    np.testing.assert_array_equal(
        got, [[4, 4, 4, 4], [3, 3, 3, 4], [2, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]
    )
    count = envs.steps_since_reset(jnp.array([0, 5, 2]), jnp.array([False, True, False]))
    np.testing.assert_array_equal(count, [1, 0, 3])


def test_refilled_stack_is_the_baselines_frame_stack():
    """Under episodic life envpool carries its stack across a life loss; refill_stack turns its
    observations into those of the Baselines FrameStack that the authors' code uses (four
    copies of the first frame at every reset, life losses included), built here independently
    from envpool's newest frames."""
    env = envs.make_atari("Breakout", 3, seed=5, protocol="paper", train=True)
    rec = _rollout(env, 400, seed=1)
    obs, reset = rec["obs"], rec["reset_step"]  # obs[t] acted on at step t
    count = jnp.zeros(3, jnp.int32)
    reference = [list(obs[0, e, -1:].repeat(4, 0)) for e in range(3)]  # a reset: copies
    refilled_any = False
    for t in range(obs.shape[0]):
        agent = np.asarray(envs.refill_stack(jnp.asarray(obs[t]), count))
        np.testing.assert_array_equal(agent, np.stack([np.stack(r) for r in reference]))
        refilled_any |= not np.array_equal(agent, obs[t])
        if t + 1 == obs.shape[0]:
            break
        for e in range(3):
            frame = obs[t + 1, e, -1]
            reference[e] = [frame] * 4 if reset[t, e] else [*reference[e][1:], frame]
        count = envs.steps_since_reset(count, jnp.asarray(reset[t]))
    life_loss = rec["terminated"] & ~rec["game_over"]
    assert life_loss.sum() >= 5 and refilled_any


def test_reset_step_ignores_the_action():
    """Two envs with the same seed, fed different actions only at reset steps, stay identical."""

    def differ_at_reset(action, reset_step):
        same = jnp.broadcast_to(action[0], action.shape)
        return jnp.where(reset_step & (jnp.arange(2) == 1), (same + 1) % 4, same)

    env = envs.make_atari("Breakout", 2, seed=[123, 123], max_episode_steps=40)
    rec = _rollout(env, 200, seed=2, choose=differ_at_reset)
    reset = rec["reset_step"]
    assert reset[:, 1].sum() >= 5
    assert (rec["action"][reset[:, 1], 0] != rec["action"][reset[:, 1], 1]).all()
    np.testing.assert_array_equal(rec["obs"][:, 0], rec["obs"][:, 1])
    np.testing.assert_array_equal(rec["reward"][:, 0], rec["reward"][:, 1])

    # The same two envs diverge when the actions differ at ordinary steps: the test has power.
    def differ_always(action, reset_step):
        del reset_step
        return jnp.stack([action[0], (action[0] + 1) % 4])

    env = envs.make_atari("Breakout", 2, seed=[123, 123], max_episode_steps=40)
    rec = _rollout(env, 40, seed=2, choose=differ_always)
    assert (rec["obs"][:, 0] != rec["obs"][:, 1]).any()


def test_episode_stats_match_envpool_python_api():
    """In-jit statistics equal envpool's own count (elapsed_step) and summed info["reward"]."""
    kwargs = dict(seed=9, protocol="paper", train=True, max_episode_steps=120)
    rec = _rollout(envs.make_atari("Breakout", 3, **kwargs), 500, seed=4)

    env = envs.make_atari("Breakout", 3, **kwargs)
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs, rec["obs"][0])
    game_return = np.zeros(3)
    checked = 0
    for t, action in enumerate(rec["action"]):
        obs, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(obs, rec["obs"][t + 1])  # the XLA and Python APIs agree
        game_return += info["reward"]
        game_over = truncated | (terminated & (info["terminated"] != 0))
        np.testing.assert_array_equal(game_over, rec["game_over"][t])
        for e in np.flatnonzero(game_over):
            assert rec["stats_last_length"][t, e] == info["elapsed_step"][e]
            assert rec["stats_last_return"][t, e] == game_return[e]
            game_return[e] = 0
            checked += 1
    np.testing.assert_array_equal(rec["stats_num_completed"][-1], rec["game_over"].sum(axis=0))
    assert checked >= 3 and (rec["terminated"] & ~rec["game_over"]).any()
    assert rec["stats_last_return"].max() > 0
    # Reset steps are not agent steps: truncated games have exactly max_episode_steps.
    np.testing.assert_array_equal(rec["stats_last_length"][rec["truncated"]], 120)


def test_classic_timestep_and_reset_steps():
    env = envs.make_classic("CartPole-v1", 4, seed=3, max_episode_steps=25)
    rec = _rollout(env, 120, seed=5)
    assert rec["obs"].shape == (121, 4, 4) and rec["obs"].dtype == np.float32
    np.testing.assert_array_equal(rec["raw_reward"], rec["reward"])
    np.testing.assert_array_equal(rec["game_over"], rec["terminated"] | rec["truncated"])
    np.testing.assert_array_equal(rec["lives"], 0)
    assert rec["truncated"].any() and rec["terminated"].any()
    reset = rec["reset_step"]
    assert (rec["reward"][reset] == 0).all() and not rec["game_over"][reset].any()
    np.testing.assert_array_equal(rec["stats_last_length"][rec["truncated"]], 25)


def test_episode_stats_ignore_reset_steps():
    stats = envs.init_episode_stats(2)
    ts = envs.Timestep(
        obs=jnp.zeros((2, 1)),
        reward=jnp.ones(2),
        raw_reward=jnp.array([3.0, 4.0]),
        terminated=jnp.array([False, True]),
        truncated=jnp.zeros(2, bool),
        game_over=jnp.array([False, True]),
        lives=jnp.zeros(2, jnp.int32),
    )
    stats = envs.update_episode_stats(stats, ts, jnp.array([False, False]))
    np.testing.assert_array_equal(stats.running_return, [3.0, 0.0])
    np.testing.assert_array_equal(stats.last_return, [0.0, 4.0])
    np.testing.assert_array_equal(stats.last_length, [0, 1])
    np.testing.assert_array_equal(stats.num_completed, [0, 1])
    stats = envs.update_episode_stats(
        stats, ts._replace(game_over=jnp.ones(2, bool)), jnp.ones(2, bool)
    )
    np.testing.assert_array_equal(stats.running_length, [1, 0])
    np.testing.assert_array_equal(stats.num_completed, [0, 1])


def test_host_steps_match_xla_step():
    """The host-callback step (env.stepping "callback") and the per-device one of sharded
    programs (here on a one-device mesh) return what envpool's XLA step returns."""
    from jax.sharding import Mesh

    from dsqn.envs import host_step, make_classic, reset, sharded_host_step, xla_step

    mesh = Mesh(np.array(jax.devices()[:1]), ("seed",))
    results = []
    for make_step in (xla_step, host_step, lambda env: sharded_host_step({0: env}, mesh)):
        env = make_classic("CartPole-v1", 3, seed=5)
        stepper = make_step(env)
        reset(env)

        def run(handle, actions, stepper=stepper):
            def body(h, a):
                h, ts = stepper.step(h, a)
                return h, ts

            return jax.lax.scan(body, handle, actions)[1]

        actions = jnp.asarray(np.random.default_rng(0).integers(0, 2, (40, 3)), jnp.int32)
        results.append(jax.device_get(jax.jit(run)(stepper.handle, actions)))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
