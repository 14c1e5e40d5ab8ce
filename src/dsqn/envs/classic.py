"""Classic-control environments from envpool, for fast tests and small experiments.

Same interface as `make_atari`: the envpool env object (gymnasium API) with every option explicit.
Observations are float32 `[N, D]`; there are no lives and no reward clipping, so the raw reward
equals the reward. The episode caps are gymnasium's (agent steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dsqn.envs.pool import make_pool, pool_options

CLASSIC_OPTIONS: dict[str, dict[str, Any]] = {
    "CartPole-v1": {"max_episode_steps": 500, "reward_threshold": 475.0},
    "Acrobot-v1": {"max_episode_steps": 500, "reward_threshold": -100.0},
    "MountainCar-v0": {"max_episode_steps": 200, "reward_threshold": -110.0},
}
"""Supported classic-control envpool id -> its envpool options."""

CLASSIC_GAMES: tuple[str, ...] = tuple(CLASSIC_OPTIONS)


def make_classic(
    name: str, num_envs: int, *, seed: int | Sequence[int] = 0, **overrides: Any
) -> Any:
    """Create an envpool classic-control pool (gymnasium API).

    Args:
      name: one of `CLASSIC_GAMES` ("CartPole-v1", "Acrobot-v1", "MountainCar-v0").
      num_envs: number of parallel envs, positive.
      seed: int (env i gets `seed + i`) or one seed per env.
      **overrides: any single envpool option, e.g. `max_episode_steps=50`.

    Returns:
      The envpool env object. Observations float32 [N, D]; discrete actions.
    """
    if name not in CLASSIC_OPTIONS:
        raise ValueError(f"unknown classic-control env {name!r}: expected one of {CLASSIC_GAMES}")
    options = {**pool_options(num_envs, seed), **CLASSIC_OPTIONS[name]}
    return make_pool(name, options, overrides)
