"""Stepping an envpool pool inside `jax.jit` / `lax.scan`, and episode statistics.

Account of envpool's auto-reset (verified by tests/test_stepping.py on envpool 1.2.5):

- A step returns `terminated` or `truncated` ("done") for an env: the returned observation is the
  last one of that episode (for a truncation, the observation to bootstrap from).
- The NEXT step call for that env is a *reset step*: envpool ignores the action, returns reward 0
  (raw reward 0), done False, and the first observation of the next episode. It is not an agent
  step: envpool's `elapsed_step` does not advance.
- On a real reset (game over or truncation; every done without episodic life) the 4-frame stack
  is filled with copies of the first frame. Under episodic life a life loss is a done, but the
  reset step only plays 1..30 no-op frames (+ FIRE) without restarting the game and pushes ONE
  new frame: the stack carries on across the life loss, and the game's step count continues.
  Rewards scored during those no-op frames are discarded by envpool.

With `refill_stack` the training loop refills the stack at a life loss as well, as the OpenAI
Baselines wrappers of the paper's authors do.

Hence a step whose input observation was a done observation (`reset_follows(previous)`) must never
become a learning transition: its action had no effect. The training loop passes that flag to
`dsqn.learning.replay.add` as `reset_step`, and to `update_episode_stats`.

`game_over` marks the end of a full game: `truncated`, or `terminated` when the emulator reports
game over (envpool's `info["terminated"]`, which for games with lives is `lives == 0`). A life loss
under episodic life is `terminated` but not `game_over`. Classic control: `terminated | truncated`.

Episode statistics count, per env, the raw (unclipped) return and the agent steps of the current
full game, summed across lives. Every non-reset step counts as one agent step and adds its raw
reward; reset steps count nothing. The length of a completed game therefore equals envpool's
`elapsed_step` at its last step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

# The steppings' names are the config's choice list (env.stepping), defined where validation can
# read them without importing envpool.
from dsqn.config.schema import STEPPINGS


class Timestep(NamedTuple):
    """What one step of an N-env pool returns (a pytree; all leading axes N).

    Attributes:
      obs: observation, as envpool gives it: Atari uint8 [N, 4, 84, 84], classic float32 [N, D].
      reward: float32 [N], the env's reward (sign-clipped when the env's reward_clip is on).
      raw_reward: float32 [N], the unclipped game reward (Atari: envpool's info["reward"]).
      terminated: bool [N], the episode ended (including a life loss under episodic life).
      truncated: bool [N], the episode hit max_episode_steps.
      game_over: bool [N], a full game ended (see the module docstring).
      lives: int32 [N], lives left (0 for classic control and games without lives).
    """

    obs: jax.Array
    reward: jax.Array
    raw_reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    game_over: jax.Array
    lives: jax.Array


class XlaStep(NamedTuple):
    """The XLA step of a pool: `handle, timestep = step(handle, actions)` inside jit.

    Attributes:
      handle: the pool's opaque handle (uint8 array); thread it through the computation.
      step: `(handle, actions int32 [N]) -> (handle, Timestep)`, jittable, usable in lax.scan.
    """

    handle: jax.Array
    step: Callable[[jax.Array, jax.Array], tuple[jax.Array, Timestep]]


def _timestep(
    obs: Any, reward: Any, terminated: Any, truncated: Any, info: dict[str, Any], xp: Any = jnp
) -> Timestep:
    """Assemble a Timestep from the gymnasium-API tuple; ``xp`` is ``jax.numpy`` (also for
    traced arrays) or ``numpy`` (inside host callbacks)."""
    terminated = xp.asarray(terminated, bool)
    truncated = xp.asarray(truncated, bool)
    reward = xp.asarray(reward, xp.float32)
    if "lives" in info:
        raw_reward = xp.asarray(info["reward"], xp.float32)
        lives = xp.asarray(info["lives"], xp.int32)
        game_over = truncated | (terminated & (xp.asarray(info["terminated"]) != 0))
    else:
        raw_reward = reward
        lives = xp.zeros(reward.shape, xp.int32)
        game_over = terminated | truncated
    return Timestep(xp.asarray(obs), reward, raw_reward, terminated, truncated, game_over, lives)


def xla_step(env: Any) -> XlaStep:
    """Wrap `env.xla()` as a pure step usable inside `jax.jit` and `lax.scan`.

    The pool must be reset (see `reset`) before the first step. The step cannot be vmapped: step
    one pool holding every training seed's envs (see `dsqn.envs.seeding`).

    Args:
      env: a pool made by `make_atari` or `make_classic`.

    Returns:
      XlaStep(handle, step) with step(handle, actions int32 [N]) -> (handle, Timestep).
    """
    handle, _, _, env_step = env.xla()
    num_envs = env.config["num_envs"]

    def step(handle: jax.Array, actions: jax.Array) -> tuple[jax.Array, Timestep]:
        chex.assert_shape(actions, (num_envs,))
        handle, (obs, reward, terminated, truncated, info) = env_step(
            handle, actions.astype(jnp.int32)
        )
        return handle, _timestep(obs, reward, terminated, truncated, info)

    return XlaStep(jax.tree.map(jnp.asarray, handle), step)


def current_handle(env: Any, stepping: str, xla: XlaStep) -> Any:
    """The handle that steps ``env`` on from its current state (read it after a reset).

    envpool's handle names the pool and never changes. A pool whose state is a JAX value
    (``state_is_handle``: :class:`dsqn.envs.minatar.MinAtarPool`) hands that state over as the
    handle of its XLA step, new at every reset; with host stepping (``"callback"``) it keeps
    the state itself and the handle is a placeholder.
    """
    if stepping == "xla" and getattr(env, "state_is_handle", False):
        return jax.tree.map(jnp.asarray, env.xla()[0])
    return xla.handle


def _timestep_shapes(env: Any) -> Timestep:
    """Shapes and dtypes of one step of ``env`` (all its envs)."""
    n = env.config["num_envs"]
    space = env.observation_space
    return Timestep(
        obs=jax.ShapeDtypeStruct((n, *space.shape), space.dtype),
        reward=jax.ShapeDtypeStruct((n,), np.float32),
        raw_reward=jax.ShapeDtypeStruct((n,), np.float32),
        terminated=jax.ShapeDtypeStruct((n,), np.bool_),
        truncated=jax.ShapeDtypeStruct((n,), np.bool_),
        game_over=jax.ShapeDtypeStruct((n,), np.bool_),
        lives=jax.ShapeDtypeStruct((n,), np.int32),
    )


def python_step(env: Any, actions: np.ndarray) -> Timestep:
    """One step of ``env`` through envpool's Python API (on the host), as a numpy Timestep."""
    obs, reward, terminated, truncated, info = env.step(np.asarray(actions, np.int32))
    return _timestep(obs, reward, terminated, truncated, info, xp=np)


def host_step(env: Any) -> XlaStep:
    """A step of ``env`` usable inside `jax.jit` and `lax.scan` that calls envpool's Python API
    on the host (``jax.experimental.io_callback``) instead of its XLA custom call.

    Same results as :func:`xla_step` (one pool, the same envpool step); for JAX versions or
    devices where envpool's XLA interface fails. The handle is a placeholder passed through.
    """
    from jax.experimental import io_callback

    num_envs = env.config["num_envs"]
    shapes = _timestep_shapes(env)

    def step(handle: jax.Array, actions: jax.Array) -> tuple[jax.Array, Timestep]:
        chex.assert_shape(actions, (num_envs,))
        ts = io_callback(lambda a: python_step(env, a), shapes, actions.astype(jnp.int32))
        return handle, ts

    return XlaStep(jnp.zeros((1,), jnp.uint8), step)


def make_step(env: Any, stepping: str) -> XlaStep:
    """The in-jit step of ``env``: ``stepping`` is ``"xla"`` (:func:`xla_step`) or
    ``"callback"`` (:func:`host_step`)."""
    if stepping not in STEPPINGS:
        raise ValueError(f"unknown stepping {stepping!r}; valid: {', '.join(STEPPINGS)}")
    return xla_step(env) if stepping == "xla" else host_step(env)


def sharded_host_step(pools: Mapping[int, Any], mesh: jax.sharding.Mesh) -> XlaStep:
    """The step of a pool split into blocks over the devices of a 1-D mesh (sharded programs).

    Block ``d`` of the pool axis (the envs of the seeds placed on ``mesh.devices[d]``) is its own
    envpool pool ``pools[d]``, held by the process that owns that device; each process passes
    only its own blocks. Inside the program, ``jax.shard_map`` hands every device its shard of
    the actions, and ``jax.experimental.io_callback`` steps that device's pool (``env.step``)
    on that device's host. envpool's XLA custom call cannot be used here: every device of a
    sharded program would execute it. The results come back sharded the same way, with the same
    values as :func:`xla_step`'s; the handle is passed through unchanged.
    """
    from jax.experimental import io_callback
    from jax.sharding import PartitionSpec

    (axis,) = mesh.axis_names
    if not pools:
        raise ValueError("sharded_host_step needs this process's pools, got none")
    env = next(iter(pools.values()))
    block = env.config["num_envs"]
    shapes = _timestep_shapes(env)

    def callback(index: np.ndarray, actions: np.ndarray) -> Timestep:
        return python_step(pools[int(index)], actions)

    def local_step(actions: jax.Array) -> Timestep:
        return io_callback(callback, shapes, jax.lax.axis_index(axis), actions)

    spec = PartitionSpec(axis)
    mapped = jax.shard_map(local_step, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)

    def step(handle: jax.Array, actions: jax.Array) -> tuple[jax.Array, Timestep]:
        chex.assert_shape(actions, (block * mesh.devices.size,))
        return handle, mapped(actions.astype(jnp.int32))

    return XlaStep(jnp.zeros((1,), jnp.uint8), step)


def reset(env: Any) -> Timestep:
    """Reset every env of the pool (Python side) and return the initial Timestep.

    Rewards are 0, flags False; `reset_follows` of it is all False, so the first step is an agent
    step.
    """
    obs, info = env.reset()
    flags = np.zeros(env.config["num_envs"], bool)
    return _timestep(obs, np.zeros(env.config["num_envs"], np.float32), flags, flags, info)


def reset_follows(timestep: Timestep) -> jax.Array:
    """bool [N]: the next step call of each env is envpool's auto-reset (action ignored).

    Pass it as `reset_step` of the next step to `dsqn.learning.replay.add` and
    `update_episode_stats`.
    """
    return timestep.terminated | timestep.truncated


def steps_since_reset(count: jax.Array, reset_step: jax.Array) -> jax.Array:
    """int32 [N]: agent steps since each env's last reset step, after one more step.

    ``count`` is the value before the step; ``reset_step`` marks a step that was envpool's
    reset (`reset_follows` of the previous timestep), whose observation holds one new frame
    (the first of a game, or of a life under episodic life): the count restarts at 0.
    """
    return jnp.where(reset_step, 0, count + 1).astype(jnp.int32)


def refill_stack(obs: jax.Array, count: jax.Array) -> jax.Array:
    """The frame stacks as the OpenAI Baselines ``FrameStack`` holds them: filled with copies of
    the first frame at every reset, a life loss under episodic life included.

    envpool refills its stack at a game's reset but carries it across a life loss; the DSQN
    authors' code (Baselines' ``wrap_deepmind(..., frame_stack=True)``) refills it with four
    copies there too. ``obs: uint8 [N, K, H, W]`` as envpool gives it, ``count: [N]`` agent
    steps since the env's last reset step (`steps_since_reset`): frame j of the stack becomes
    frame max(j, K - 1 - count), so that frames from before the reset are replaced by its
    first frame (identity once count >= K - 1, and on envpool's own copy-filled stacks).
    """
    chex.assert_rank(obs, 4)
    stack = obs.shape[1]
    first = jnp.clip(stack - 1 - count, 0, stack - 1)  # [N]: position of the reset's frame
    index = jnp.maximum(jnp.arange(stack)[None, :], first[:, None])  # [N, K]
    return jnp.take_along_axis(obs, index[:, :, None, None], axis=1)


class EpisodeStats(NamedTuple):
    """Per-env statistics of full games in fixed-shape arrays (a pytree; leading axes N).

    Attributes:
      running_return: float32 [N], raw return of the current game so far, summed across lives.
      running_length: int32 [N], agent steps of the current game so far.
      last_return: float32 [N], raw return of the env's last completed game (0 before any).
      last_length: int32 [N], agent steps of the env's last completed game (0 before any).
      num_completed: int32 [N], completed games (game overs, truncations included).
    """

    running_return: jax.Array
    running_length: jax.Array
    last_return: jax.Array
    last_length: jax.Array
    num_completed: jax.Array


def init_episode_stats(num_envs: int) -> EpisodeStats:
    """All-zero EpisodeStats for `num_envs` envs."""
    zeros_f = jnp.zeros((num_envs,), jnp.float32)
    zeros_i = jnp.zeros((num_envs,), jnp.int32)
    return EpisodeStats(zeros_f, zeros_i, zeros_f, zeros_i, zeros_i)


def update_episode_stats(
    stats: EpisodeStats, timestep: Timestep, reset_step: jax.Array
) -> EpisodeStats:
    """Account for one step of every env.

    Args:
      stats: statistics before the step.
      timestep: what the step returned.
      reset_step: bool [N], the step was envpool's auto-reset (`reset_follows` of the previous
        timestep); such a step counts neither a step nor reward.

    Returns:
      Updated statistics: the step's raw reward and one agent step are added to the running game;
      on `game_over` the running game becomes the last completed one and the running sums restart.
    """
    chex.assert_equal_shape([stats.running_return, timestep.reward, reset_step])
    counted = ~reset_step
    ret = stats.running_return + jnp.where(counted, timestep.raw_reward, 0.0)
    length = stats.running_length + counted.astype(jnp.int32)
    done = timestep.game_over & counted
    return EpisodeStats(
        running_return=jnp.where(done, 0.0, ret),
        running_length=jnp.where(done, 0, length),
        last_return=jnp.where(done, ret, stats.last_return),
        last_length=jnp.where(done, length, stats.last_length),
        num_completed=stats.num_completed + done.astype(jnp.int32),
    )
