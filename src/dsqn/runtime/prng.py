"""The PRNG streams of a run, in one table: every random choice derives from the seed.

As in DQN Zoo (the seed's key split once into a train key and an eval key), training seed ``s``
has one root key, ``root = jax.random.key(s)``, and every stream is one key derived from it:

==================  =======================================  ===================================
stream              key                                      draws
==================  =======================================  ===================================
train               ``root``                                 split once into the initial
                                                             parameters' key and the learner's
                                                             key (split every agent step for
                                                             exploration, every update for the
                                                             minibatch)
PERIODIC_EVAL       ``fold_in(fold_in(root, 1), steps)``     training's evaluations
FINAL_EVAL          ``fold_in(fold_in(root, 2), steps)``     the final policy's evaluation
BEST_EVAL           ``fold_in(fold_in(root, 3), steps)``     the best parameters' evaluation
EVALUATE            ``fold_in(root, 1_000_003)``             ``dsqn evaluate``
ENERGY              ``fold_in(root, 2_000_003)``             ``dsqn energy``
ROBUSTNESS          ``fold_in(root, 3_000_017)``             ``dsqn robustness``
CONVERSION_EVAL     ``fold_in(root, 4_000_037)``             ``dsqn convert``: the SNN's and the
                                                             ANN's games (paired)
NORMALIZATION_DATA  ``fold_in(root, 5_000_011)``             conversion's normalisation frames
HELD_OUT_DATA       ``fold_in(root, 5_000_012)``             conversion's held-out frames
==================  =======================================  ===================================

``steps`` is the agent step of the evaluation, so training's evaluations at different steps play
different games.

A video (``dsqn evaluate --video``) explores with NumPy's generator
``numpy.random.default_rng([s, VIDEO])``, its games being played on the host.

Inside an evaluation the stream's key is split once per step into the next key and the step's
action key; a perturbed evaluation (:mod:`dsqn.analyses.robustness`) draws its noise from
``fold_in(action key, PERTURBATION)``. Env seeds are a separate, integer stream
(:mod:`dsqn.envs.seeding`).

Streams are fixed numbers so that every result stays reproducible: a new stream takes a new
number, an existing one never changes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import jax
import jax.numpy as jnp

__all__ = ["Stream", "PERTURBATION", "VIDEO", "root_key", "train_keys", "stream_key", "stream_keys"]


class Stream(enum.IntEnum):
    """The evaluation and analysis streams (see the module docstring's table)."""

    PERIODIC_EVAL = 1
    FINAL_EVAL = 2
    BEST_EVAL = 3
    EVALUATE = 1_000_003
    ENERGY = 2_000_003
    ROBUSTNESS = 3_000_017
    CONVERSION_EVAL = 4_000_037
    NORMALIZATION_DATA = 5_000_011
    HELD_OUT_DATA = 5_000_012


PERTURBATION = 1
"""Folded into an evaluation step's action key for the noise of a perturbed observation."""

VIDEO = 7
"""With the seed, the entropy of the NumPy generator a video's games explore with."""


def root_key(seed: int) -> jax.Array:
    """Training seed ``seed``'s root key, ``jax.random.key(seed)``."""
    return jax.random.key(seed)


def train_keys(seeds: Sequence[int]) -> jax.Array:
    """``[S]`` the train streams of ``seeds`` (their root keys)."""
    return jnp.stack([root_key(s) for s in seeds])


def stream_key(seed: int, stream: Stream, agent_steps: int | None = None) -> jax.Array:
    """Seed ``seed``'s key of ``stream``; training's evaluation streams also fold in the agent
    step of the evaluation (``agent_steps``, required for them, refused for the others)."""
    stream = Stream(stream)
    per_step = stream in (Stream.PERIODIC_EVAL, Stream.FINAL_EVAL, Stream.BEST_EVAL)
    if per_step != (agent_steps is not None):
        need = "needs agent_steps" if per_step else "takes no agent_steps"
        raise ValueError(f"stream {stream.name} {need}, got agent_steps={agent_steps!r}")
    key = jax.random.fold_in(root_key(seed), int(stream))
    return key if agent_steps is None else jax.random.fold_in(key, agent_steps)


def stream_keys(seeds: Sequence[int], stream: Stream, agent_steps: int | None = None) -> jax.Array:
    """``[S]`` the keys of ``stream`` for every seed (see :func:`stream_key`)."""
    return jnp.stack([stream_key(s, stream, agent_steps) for s in seeds])
