"""The env pools of a run's config: its protocol, episode caps and env seeds.

Training and evaluation both build their pools here: the training protocol (episodic life,
reward clipping on Atari) or the evaluation protocol (full games, raw rewards), each with its
episode cap, on the env seeds of :func:`dsqn.envs.seeding.pool_env_seeds`.
"""

from __future__ import annotations

from typing import Any

from dsqn.config import Config
from dsqn.envs.atari import make_atari
from dsqn.envs.classic import make_classic
from dsqn.envs.minatar import make_minatar
from dsqn.envs.seeding import agent_env_seeds

__all__ = ["make_run_pool", "make_seed_pool"]


def make_run_pool(config: Config, env_seeds: list[int], *, train: bool) -> Any:
    """The pool for ``config`` with one env per seed in ``env_seeds``: the training or
    evaluation protocol, and the matching episode cap (``eval.max_episode_agent_steps`` falls
    back to ``env.max_episode_agent_steps``, then to the protocol's)."""
    cap = config.env.max_episode_agent_steps if train else config.eval.max_episode_agent_steps
    cap = cap if cap is not None else config.env.max_episode_agent_steps
    overrides = {} if cap is None else {"max_episode_steps": cap}
    if config.env.suite == "minatar":
        return make_minatar(config.env.game, len(env_seeds), seed=env_seeds, max_episode_steps=cap)
    if config.env.suite == "atari":
        return make_atari(
            config.env.game,
            len(env_seeds),
            seed=env_seeds,
            protocol=config.env.protocol,
            train=train,
            **overrides,
        )
    return make_classic(config.env.game, len(env_seeds), seed=env_seeds, **overrides)


def make_seed_pool(config: Config, envs_per_seed: int, seeds: list[int], *, train: bool) -> Any:
    """The pool of ``len(seeds) * envs_per_seed`` envs, seed-major, in the training or
    evaluation stream of env seeds (:func:`dsqn.envs.seeding.agent_env_seeds`: one seed per
    agent, repeated for agents of a sweep that share it)."""
    stream = "train" if train else "eval"
    return make_run_pool(config, agent_env_seeds(seeds, envs_per_seed, stream=stream), train=train)
