"""MinAtar (Young & Tian 2019) in pure JAX, behind the pool interface of the envpool suites.

MinAtar's five games (Asterix, Breakout, Freeway, Seaquest, SpaceInvaders) are Atari games
reduced to 10x10 grids of boolean channels. The game logic is pgx's JAX port (``pgx.minatar``,
a fork of the original ``minatar`` package checked state by state against it; this project's
``tests/test_minatar.py`` checks it again, against ``minatar`` 1.0.15). Everything the original
package does by default is kept:

- sticky actions with probability 0.1 (the previous action is repeated),
- difficulty ramping (Asterix, Seaquest, SpaceInvaders speed up over a game),
- each game's minimal action set (``minatar.Environment.minimal_action_set()``: Breakout 3,
  Asterix 5, Freeway 3, Seaquest 6, SpaceInvaders 4 actions),
- no time limit: a game ends only when the game says so (Freeway's own 2,500-step clock
  included). ``max_episode_steps`` is a named cap, ``None`` (the default) for none.
- observations as ``minatar.Environment.state()`` gives them: bool ``[10, 10, C]`` (C = 4, 4, 7,
  10, 6 channels).

:class:`MinAtarPool` is a pool of N such envs with envpool's interface and envpool's auto-reset,
so that training, evaluation, replay and video treat it exactly as an envpool pool: a step whose
env had just finished (``terminated | truncated``) is a *reset step*: its action is ignored, its
reward is 0, and it returns the first observation of a new game. Unlike envpool's, the pool's
state is a JAX value: :meth:`MinAtarPool.xla` returns it as the "handle" that the jitted programs
thread through ``lax.scan`` (``dsqn.envs.stepping.xla_step``), and the whole env step lives in
the one XLA program.

Randomness: env ``i`` draws from its own key, ``PRNGKey(env_seed[i])`` folded with the reset
count of the pool (every :meth:`MinAtarPool.reset` starts new games); each step splits it into the
sticky-action draw, the game's own draw and a reset draw.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dsqn.config.games import MINATAR_GAMES, minatar_game
from dsqn.envs.pool import check_num_envs, pool_options

__all__ = [
    "MINATAR_GAMES",
    "MINATAR_CHANNELS",
    "MINATAR_STICKY_ACTION_PROB",
    "MinAtarPool",
    "MinAtarState",
    "make_minatar",
    "minatar_game",
]

MINATAR_CHANNELS: dict[str, int] = {
    "Asterix": 4,
    "Breakout": 4,
    "Freeway": 7,
    "Seaquest": 10,
    "SpaceInvaders": 6,
}
"""MinAtar game -> observation channels (the original package's ``state_shape()[2]``)."""

MINATAR_STICKY_ACTION_PROB = 0.1
"""The original package's default ``sticky_action_prob``."""

_PGX_MODULES = {
    "Asterix": ("asterix", "MinAtarAsterix"),
    "Breakout": ("breakout", "MinAtarBreakout"),
    "Freeway": ("freeway", "MinAtarFreeway"),
    "Seaquest": ("seaquest", "MinAtarSeaquest"),
    "SpaceInvaders": ("space_invaders", "MinAtarSpaceInvaders"),
}


@functools.cache
def _pgx_env(game: str, sticky_action_prob: float) -> Any:
    import importlib

    module, cls = _PGX_MODULES[game]
    env_cls = getattr(importlib.import_module(f"pgx.minatar.{module}"), cls)
    return env_cls(use_minimal_action_set=True, sticky_action_prob=sticky_action_prob)


class MinAtarState(NamedTuple):
    """The state of a pool of N MinAtar envs (a pytree; leading axes N): the "handle".

    Attributes:
      game: the games' pgx states.
      key: uint32 [N, 2], each env's PRNG key.
      elapsed: int32 [N], agent steps of the current game.
      done: bool [N], the last step ended the game (terminated or truncated): the next step is
        a reset step.
    """

    game: Any
    key: jax.Array
    elapsed: jax.Array
    done: jax.Array


@dataclasses.dataclass(frozen=True)
class Space:
    """The part of a gymnasium space the project reads: shape, dtype and (discrete) ``n``."""

    shape: tuple[int, ...]
    dtype: np.dtype
    n: int | None = None


class MinAtarPool:
    """N MinAtar envs of one game with envpool's interface (module docstring).

    ``config`` holds ``num_envs``, ``max_episode_steps`` (a large number when there is no cap,
    so that loops bounded by it stay bounded), ``seed``, ``env_seed``, ``sticky_action_prob``
    and ``task``. ``reset()`` / ``step(actions)`` are the Python API (numpy, gymnasium's
    5-tuple); ``xla()`` the in-jit one.
    """

    state_is_handle = True
    """The pool's state is a JAX value, handed to the XLA step as its handle
    (:func:`dsqn.envs.stepping.current_handle`)."""

    def __init__(
        self,
        game: str,
        num_envs: int,
        *,
        seed: int | Sequence[int] = 0,
        sticky_action_prob: float = MINATAR_STICKY_ACTION_PROB,
        max_episode_steps: int | None = None,
    ):
        self.game = minatar_game(game)
        check_num_envs(num_envs)
        if not 0 <= sticky_action_prob <= 1:
            raise ValueError(f"sticky_action_prob must be in [0, 1], got {sticky_action_prob!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps!r}")
        options = pool_options(num_envs, seed)
        self.config = {
            "num_envs": num_envs,
            "seed": options["seed"],
            "env_seed": options["env_seed"],
            "sticky_action_prob": float(sticky_action_prob),
            "max_episode_steps": np.iinfo(np.int32).max - 1
            if max_episode_steps is None
            else int(max_episode_steps),
            "episode_cap": max_episode_steps,
            "task": f"{self.game}-MinAtar",
        }
        self.observation_space, self.action_space = self.spaces(self.game)
        self._seed_keys = jax.vmap(jax.random.PRNGKey)(
            jnp.asarray(self.config["env_seed"], jnp.uint32)
        )
        self._resets = 0
        self._xla_step, self._step, self._init = _programs(
            self.game, float(sticky_action_prob), max_episode_steps
        )
        self.state = self._init(self._seed_keys, 0)

    @staticmethod
    def spaces(game: str) -> tuple[Space, Space]:
        """The observation space (bool ``[10, 10, C]``) and the action space (the minimal
        action set) of ``game``, without building a pool."""
        game = minatar_game(game)
        observation = Space((10, 10, MINATAR_CHANNELS[game]), np.dtype(np.bool_))
        actions = _pgx_env(game, MINATAR_STICKY_ACTION_PROB).num_actions
        return observation, Space((), np.dtype(np.int64), int(actions))

    def xla(self) -> tuple[MinAtarState, None, None, Any]:
        """``(handle, None, None, step)`` as envpool's ``xla()``: the handle is the pool's
        current state (read it after :meth:`reset`), ``step(handle, actions)`` is pure."""
        return self.state, None, None, self._xla_step

    def reset(self) -> tuple[np.ndarray, dict]:
        """New games in every env (a fresh draw each call): ``(obs, info)``."""
        self._resets += 1
        self.state = self._init(self._seed_keys, self._resets)
        return np.asarray(self.state.game.observation), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """One step on the host (gymnasium's 5-tuple of numpy arrays)."""
        actions = jnp.asarray(np.asarray(actions, np.int32))
        self.state, out = self._step(self.state, actions)
        obs, reward, terminated, truncated, info = jax.device_get(out)
        arrays = (np.asarray(x) for x in (obs, reward, terminated, truncated))
        return (*arrays, info)

    def close(self) -> None:
        """Nothing to release (envpool's pools have threads; this has none)."""


@functools.cache
def _programs(game: str, sticky_action_prob: float, cap: int | None):
    """``(step, jitted step, jitted initial state)`` of a game's pools, shared by every pool
    of the same game, sticky-action probability and cap (one compilation each)."""
    env = _pgx_env(game, sticky_action_prob)
    step = functools.partial(_step, env, cap)
    return step, jax.jit(step), jax.jit(functools.partial(_initial_state, env))


def _initial_state(env: Any, seed_keys: jax.Array, resets: int | jax.Array) -> MinAtarState:
    """New games in every env: the keys are the env seeds' keys folded with ``resets``."""
    keys = jax.vmap(lambda k: jax.random.fold_in(k, resets))(seed_keys)
    keys, init_keys = _split(keys)
    game = jax.vmap(env.init)(init_keys)
    n = keys.shape[0]
    return MinAtarState(game, keys, jnp.zeros(n, jnp.int32), jnp.zeros(n, bool))


def _step(
    env: Any, cap: int | None, state: MinAtarState, actions: jax.Array
) -> tuple[MinAtarState, tuple[jax.Array, jax.Array, jax.Array, jax.Array, dict]]:
    """One step of every env; envpool's auto-reset for envs whose last step ended a game."""
    keys, step_keys = _split(state.key)
    keys, reset_keys = _split(keys)
    stepped = jax.vmap(env.step)(state.game, actions.astype(jnp.int32), step_keys)
    fresh = jax.vmap(env.init)(reset_keys)
    reset = state.done
    game = jax.tree.map(lambda f, s: _where(reset, f, s), fresh, stepped)
    reward = jnp.where(reset, 0.0, stepped.rewards[:, 0]).astype(jnp.float32)
    terminated = ~reset & stepped.terminated
    elapsed = jnp.where(reset, 0, state.elapsed + 1).astype(jnp.int32)
    truncated = jnp.zeros_like(terminated)
    if cap is not None:
        truncated = ~terminated & ~reset & (elapsed >= cap)
    new = MinAtarState(game, keys, elapsed, terminated | truncated)
    return new, (game.observation, reward, terminated, truncated, {})


def _split(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    pairs = jax.vmap(jax.random.split)(keys)
    return pairs[:, 0], pairs[:, 1]


def _where(mask: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """``a`` where ``mask`` [N] else ``b``, broadcast over the trailing axes."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


def make_minatar(
    game: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] = 0,
    sticky_action_prob: float = MINATAR_STICKY_ACTION_PROB,
    max_episode_steps: int | None = None,
) -> MinAtarPool:
    """A pool of ``num_envs`` MinAtar envs of ``game`` (one of :data:`MINATAR_GAMES`).

    Args:
      game: the game (``"Breakout"``, case-insensitive; ``"Breakout-MinAtar"`` also works).
      num_envs: envs in the pool, positive.
      seed: an int (env i gets ``seed + i``) or one seed per env.
      sticky_action_prob: probability of repeating the previous action (original: 0.1).
      max_episode_steps: a cap in agent steps (truncation), or ``None``: none (original).
    """
    return MinAtarPool(
        game,
        num_envs,
        seed=seed,
        sticky_action_prob=sticky_action_prob,
        max_episode_steps=max_episode_steps,
    )
