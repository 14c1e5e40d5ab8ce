"""Atari environments from envpool under a named protocol, every option explicit.

Protocols (`PROTOCOLS[name]["train" | "eval"]` are the exact envpool options):

- ``paper`` (Liu et al. 2022, the OpenAI Baselines wrappers): no sticky actions, minimal action
  set, 1..30 no-op frames at reset, FIRE at reset in games that have it, action repeat 4 with a
  max-pool over the last two frames, 84x84 grayscale (INTER_AREA), 4 stacked frames, at most
  18,000 agent steps (72,000 frames) per game. Training adds episodic life (a life loss ends the
  training episode) and reward sign-clipping; evaluation plays full games with raw rewards.
- ``machado`` (Machado et al. 2018): as ``paper`` but sticky actions with probability 0.25, no
  episodic life in training either, at most 27,000 agent steps (108,000 frames), reward clipping in
  training only. The full 18-action set is available through the override
  ``full_action_space=True``.

Observations are uint8 `[N, 4, 84, 84]` (stack first). Units: `max_episode_steps` counts agent
steps (each `frame_skip` = 4 emulator frames); envpool does not count its auto-reset steps.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from typing import Any

from envpool.registration import registry

from dsqn.config.games import PAPER_GAMES
from dsqn.envs.pool import make_pool, pool_options

_COMMON: dict[str, Any] = {
    "full_action_space": False,
    "noop_max": 30,
    "use_fire_reset": True,
    "frame_skip": 4,
    "img_height": 84,
    "img_width": 84,
    "gray_scale": True,
    "use_inter_area_resize": True,
    "stack_num": 4,
    "zero_discount_on_life_loss": False,
    "mode": -1,
    "difficulty": -1,
}

PROTOCOLS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "train": {
            **_COMMON,
            "repeat_action_probability": 0.0,
            "max_episode_steps": 18000,
            "episodic_life": True,
            "reward_clip": True,
        },
        "eval": {
            **_COMMON,
            "repeat_action_probability": 0.0,
            "max_episode_steps": 18000,
            "episodic_life": False,
            "reward_clip": False,
        },
    },
    "machado": {
        "train": {
            **_COMMON,
            "repeat_action_probability": 0.25,
            "max_episode_steps": 27000,
            "episodic_life": False,
            "reward_clip": True,
        },
        "eval": {
            **_COMMON,
            "repeat_action_probability": 0.25,
            "max_episode_steps": 27000,
            "episodic_life": False,
            "reward_clip": False,
        },
    },
}
"""Protocol name -> {"train": envpool options, "eval": envpool options} (game-independent)."""


@functools.cache
def atari_ids() -> tuple[str, ...]:
    """All envpool Atari ids of the installed envpool, e.g. ("Adventure-v5", ...)."""
    return tuple(tid for tid, spec in registry.specs.items() if spec[0] == "envpool.atari")


def atari_id(game: str) -> str:
    """The envpool id of `game`.

    Args:
      game: one of the 17 paper games by short name ("Pong") or envpool id ("Pong-v5"), or any
        other envpool Atari game by exact id ("Seaquest-v5").

    Raises:
      ValueError: unknown game; the message lists the 17 paper games and suggests the nearest name.
    """
    if game in PAPER_GAMES:
        return f"{game}-v5"
    if game in atari_ids():
        return game
    names = PAPER_GAMES + atari_ids()
    nearest = difflib.get_close_matches(game, names, n=1, cutoff=0.0)
    raise ValueError(
        f"unknown Atari game {game!r}: expected one of the paper's 17 games "
        f"{', '.join(PAPER_GAMES)} (short name or '-v5' id) or another envpool Atari id; "
        f"did you mean {nearest[0]!r}?"
    )


def protocol_options(protocol: str, train: bool) -> dict[str, Any]:
    """A copy of the envpool options of `protocol` for training (`train=True`) or evaluation.

    Raises:
      ValueError: unknown protocol name (the message lists the valid ones).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {sorted(PROTOCOLS)}")
    return dict(PROTOCOLS[protocol]["train" if train else "eval"])


def make_atari(
    game: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] = 0,
    protocol: str = "paper",
    train: bool = True,
    **overrides: Any,
) -> Any:
    """Create an envpool Atari pool (gymnasium API) under a protocol.

    Args:
      game: see `atari_id`.
      num_envs: number of parallel envs, positive.
      seed: int (env i gets `seed + i`) or one seed per env (see `dsqn.envs.pool_env_seeds`).
      protocol: "paper" or "machado" (see `PROTOCOLS`).
      train: training options (True) or evaluation options (False) of the protocol.
      **overrides: any single envpool option, e.g. `max_episode_steps=100`; unknown names raise
        ValueError listing the valid ones.

    Returns:
      The envpool env object; `env.config` holds every option. Observations uint8 [N, 4, 84, 84].
    """
    task_id = atari_id(game)
    options = {**pool_options(num_envs, seed), **protocol_options(protocol, train)}
    options["task"] = registry.specs[task_id][2]["task"]
    if overrides.get("noop_max", 1) < 1:
        # envpool draws the no-op count from [1, noop_max]; 0 is an invalid range there.
        raise ValueError(f"noop_max must be >= 1, got {overrides['noop_max']}")
    return make_pool(task_id, options, overrides)
