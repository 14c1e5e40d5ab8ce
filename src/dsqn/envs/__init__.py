"""Environments: envpool factories (Atari protocols, classic control) and the in-jit XLA step.

- `make_atari`, `PROTOCOLS`: Atari games under the paper's (or Machado et al.'s) protocol;
  `PAPER_GAMES`, `REFERENCE_SCORES`, `human_normalized` re-exported from `dsqn.config.games`.
- `make_classic`: CartPole-v1, Acrobot-v1, MountainCar-v0.
- `make_minatar`, `MinAtarPool`: MinAtar's five games in JAX, with envpool's interface and
  auto-reset (`dsqn.envs.minatar`).
- `xla_step`, `host_step`, `make_step`, `reset`, `Timestep`, `reset_follows`, `EpisodeStats`,
  `update_episode_stats`: stepping inside `jax.jit`, with the account of envpool's auto-reset
  in `dsqn.envs.stepping`; `steps_since_reset`, `refill_stack`: the frame stack refilled at a
  life loss, as the Baselines wrappers do.
- `pool_env_seeds`, `split_seeds`, `merge_seeds`: one pool shared by several training seeds.
- `make_run_pool`, `make_seed_pool`: the training and evaluation pools of a run's config.

envpool is published for Linux only: where it cannot be imported, importing this package raises
a ModuleNotFoundError (``name == "envpool"``) that says so and what works there.
"""

import platform as _platform

try:
    import envpool  # noqa: F401
except ImportError as _err:
    raise ModuleNotFoundError(
        f"envpool cannot be imported here ({_err}; {_platform.system()} {_platform.machine()}, "
        f"Python {_platform.python_version()}). dsqn's environments, training and evaluation "
        "need envpool, which is published for Linux (x86_64 and aarch64) only: use a Linux "
        "machine or container for them. Without envpool, the spiking toolkit (dsqn.spiking) "
        "and the Q-networks (dsqn.models.networks) work, as do dsqn.config and the reports of "
        "existing run directories (dsqn report).",
        name="envpool",
    ) from _err

from dsqn.config.games import PAPER_GAMES, REFERENCE_SCORES, human_normalized
from dsqn.envs.atari import PROTOCOLS, atari_id, atari_ids, make_atari, protocol_options
from dsqn.envs.classic import CLASSIC_GAMES, CLASSIC_OPTIONS, make_classic
from dsqn.envs.minatar import MINATAR_CHANNELS, MINATAR_GAMES, MinAtarPool, make_minatar
from dsqn.envs.pool import overridable_options
from dsqn.envs.run_pools import make_run_pool, make_seed_pool
from dsqn.envs.seeding import ENV_SEED_STRIDE, merge_seeds, pool_env_seeds, split_seeds
from dsqn.envs.stepping import (
    STEPPINGS,
    EpisodeStats,
    Timestep,
    XlaStep,
    current_handle,
    host_step,
    init_episode_stats,
    make_step,
    refill_stack,
    reset,
    reset_follows,
    sharded_host_step,
    steps_since_reset,
    update_episode_stats,
    xla_step,
)

__all__ = [
    "CLASSIC_GAMES",
    "CLASSIC_OPTIONS",
    "MINATAR_CHANNELS",
    "MINATAR_GAMES",
    "MinAtarPool",
    "make_minatar",
    "ENV_SEED_STRIDE",
    "PAPER_GAMES",
    "PROTOCOLS",
    "REFERENCE_SCORES",
    "STEPPINGS",
    "EpisodeStats",
    "Timestep",
    "XlaStep",
    "atari_id",
    "atari_ids",
    "host_step",
    "human_normalized",
    "init_episode_stats",
    "make_atari",
    "make_classic",
    "make_run_pool",
    "make_seed_pool",
    "make_step",
    "merge_seeds",
    "overridable_options",
    "pool_env_seeds",
    "protocol_options",
    "reset",
    "refill_stack",
    "reset_follows",
    "steps_since_reset",
    "split_seeds",
    "update_episode_stats",
    "sharded_host_step",
    "xla_step",
    "current_handle",
]
