"""Construction of envpool pools with every option stated explicitly.

envpool's defaults differ between versions and from the protocols this project reproduces, so the
factories (`make_atari`, `make_classic`) never rely on them: they build a complete option dict
from `pool_options` plus the environment's own options, let the caller override any single option
by name, and check the result against the option names the installed envpool declares.

Seeds: with `seed` an int, env i gets the seed `seed + i` (envpool's own convention); with `seed`
a sequence of one int per env, env i gets `seed[i]`. Either way the per-env seeds are passed
explicitly as envpool's `env_seed` option. See `dsqn.envs.seeding` for the seeds of a pool shared
by several training seeds.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import envpool

# gymnasium warns whenever an envpool space's float64 Box bounds are cast to float32 (harmless),
# also lazily on later accesses of the spaces: filter it for the whole process.
warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")

INT32_MAX = 2**31 - 1

# Options the factories own: the task is the game, the assets path is the installed package's, and
# the gymnasium reset signature is what `dsqn.envs.stepping.reset` reads.
_NOT_OVERRIDABLE = ("num_envs", "seed", "env_seed", "task", "base_path", "gym_reset_return_info")


def check_num_envs(num_envs: int) -> int:
    """Return `num_envs` if it is a positive int, else raise ValueError naming it."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs <= 0:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    return num_envs


def pool_options(num_envs: int, seed: int | Sequence[int]) -> dict[str, Any]:
    """The pool-level envpool options (synchronous stepping of all envs, seeds).

    Args:
      num_envs: number of envs in the pool, positive.
      seed: an int (env i gets `seed + i`) or one int32 seed per env.

    Returns:
      Options num_envs, batch_size (= num_envs: every step returns all envs, which the XLA step
      relies on), num_threads (0: envpool picks), max_num_players, thread_affinity_offset, seed,
      env_seed and gym_reset_return_info. The per-env seeds are always passed explicitly as
      `env_seed` (envpool uses them instead of `seed + i`); `seed` records the first of them.
    """
    check_num_envs(num_envs)
    if isinstance(seed, Sequence) and not isinstance(seed, str):
        env_seed = [int(s) for s in seed]
        if len(env_seed) != num_envs:
            raise ValueError(
                f"seed as a sequence needs one seed per env: got {len(env_seed)} seeds "
                f"for num_envs={num_envs}"
            )
        bad = [s for s in env_seed if not 0 <= s <= INT32_MAX]
        if bad:
            raise ValueError(f"env seeds must lie in [0, {INT32_MAX}], got {bad[:5]}")
        base_seed = env_seed[0]
    else:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int or a sequence of ints, got {seed!r}")
        if not 0 <= seed <= INT32_MAX - num_envs:
            raise ValueError(
                f"seed must lie in [0, {INT32_MAX - num_envs}] so that seed + i fits int32 "
                f"for num_envs={num_envs}, got {seed}"
            )
        base_seed = seed
        env_seed = [seed + i for i in range(num_envs)]
    return {
        "num_envs": num_envs,
        "batch_size": num_envs,
        "num_threads": 0,
        "max_num_players": 1,
        "thread_affinity_offset": -1,
        "seed": base_seed,
        "env_seed": env_seed,
        "gym_reset_return_info": True,
    }


def overridable_options(task_id: str) -> tuple[str, ...]:
    """Names of the envpool options of `task_id` that a caller may override, sorted."""
    fields = envpool.make_spec(task_id).config._fields
    return tuple(sorted(f for f in fields if f not in _NOT_OVERRIDABLE))


def make_pool(task_id: str, options: Mapping[str, Any], overrides: Mapping[str, Any]) -> Any:
    """Create a gymnasium-API envpool with `options` updated by `overrides`.

    Args:
      task_id: an envpool id, e.g. "Pong-v5".
      options: the complete option dict built by a factory.
      overrides: single options to replace; each must be one of `overridable_options(task_id)`.

    Raises:
      ValueError: an override names an unknown or factory-owned option (the message lists the
        valid ones).
    """
    valid = overridable_options(task_id)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown envpool option(s) {unknown} for {task_id}; "
            f"valid overrides: {', '.join(valid)}"
        )
    return envpool.make(task_id, env_type="gymnasium", **{**options, **overrides})
