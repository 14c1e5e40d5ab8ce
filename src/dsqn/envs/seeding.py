"""One env pool shared by several training seeds: env seeds and the seed axis.

envpool's XLA step cannot be vmapped, so training runs ONE pool of `S * E` envs for S training
seeds with E envs each, in seed-major order: pool env `s * E + j` is env j of training seed s.
`split_seeds` / `merge_seeds` reshape between the pool axis `[S * E, ...]` and the seed axis
`[S, E, ...]` around every step.

Env seeds: `pool_env_seeds` gives env j of training seed `seed` in stream `stream` the env seed

    (2 * seed + stream_index) * ENV_SEED_STRIDE + j,     stream_index: train 0, eval 1,

passed to the factories as a per-env seed list (envpool's `env_seed` option). The map is
injective, so no two envs of any training seed, in either stream, share an env seed: training
seeds never overlap, the evaluation pool never replays the training pool's games, and a training
seed's envs are the same whether it runs alone or alongside others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import jax
import numpy as np

T = TypeVar("T")

ENV_SEED_STRIDE = 2**16
"""Env seeds reserved per (training seed, stream): the most envs one training seed may have."""

STREAMS = ("train", "eval")
MAX_TRAINING_SEED = 2**31 // (2 * ENV_SEED_STRIDE) - 1  # the largest env seed is then 2**31 - 1


def pool_env_seeds(seeds: Sequence[int], envs_per_seed: int, *, stream: str = "train") -> list[int]:
    """Per-env seeds of a pool holding `envs_per_seed` envs for each training seed in `seeds`.

    Args:
      seeds: distinct training seeds, each in [0, MAX_TRAINING_SEED].
      envs_per_seed: envs per training seed E, in [1, ENV_SEED_STRIDE].
      stream: "train" or "eval"; the two streams never share env seeds.

    Returns:
      `len(seeds) * E` int32-range env seeds, seed-major (pool env s * E + j is env j of seeds[s]),
      for `make_atari(..., seed=...)` / `make_classic(..., seed=...)`.
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}: expected one of {STREAMS}")
    if not 1 <= envs_per_seed <= ENV_SEED_STRIDE:
        raise ValueError(f"envs_per_seed must lie in [1, {ENV_SEED_STRIDE}], got {envs_per_seed}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one training seed, got an empty sequence")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"training seeds must be distinct, got {seeds}")
    bad = [s for s in seeds if not 0 <= s <= MAX_TRAINING_SEED]
    if bad:
        raise ValueError(f"training seeds must lie in [0, {MAX_TRAINING_SEED}], got {bad}")
    stream_index = STREAMS.index(stream)
    return [
        (2 * s + stream_index) * ENV_SEED_STRIDE + j for s in seeds for j in range(envs_per_seed)
    ]


def agent_env_seeds(
    seeds: Sequence[int], envs_per_seed: int, *, stream: str = "train"
) -> list[int]:
    """:func:`pool_env_seeds` for a pool of agents given by their training seeds, which may
    repeat: the agents of a sweep that share a seed share its env seeds (and so its games), as
    each would have them in a run of its own."""
    distinct = sorted(set(int(s) for s in seeds))
    blocks = np.asarray(pool_env_seeds(distinct, envs_per_seed, stream=stream))
    by_seed = dict(zip(distinct, blocks.reshape(len(distinct), envs_per_seed), strict=True))
    return [int(x) for s in seeds for x in by_seed[int(s)]]


def split_seeds(tree: T, num_seeds: int) -> T:
    """Reshape each leaf of `tree` from the pool axis `[S * E, ...]` to the seed axis `[S, E, ...]`.

    Works on a single array or on a pytree such as a `Timestep`.
    """

    def split(x: jax.Array | np.ndarray) -> jax.Array | np.ndarray:
        if num_seeds <= 0 or x.ndim < 1 or x.shape[0] % num_seeds:
            raise ValueError(
                f"cannot split an array of shape {x.shape} into num_seeds={num_seeds} equal "
                "groups: num_seeds must be positive and divide the leading (pool) axis"
            )
        return x.reshape(num_seeds, x.shape[0] // num_seeds, *x.shape[1:])

    return jax.tree.map(split, tree)


def merge_seeds(tree: T) -> T:
    """Inverse of `split_seeds`: each leaf `[S, E, ...]` back to the pool axis `[S * E, ...]`."""

    def merge(x: jax.Array | np.ndarray) -> jax.Array | np.ndarray:
        if x.ndim < 2:
            raise ValueError(f"merge_seeds needs arrays [S, E, ...], got shape {x.shape}")
        return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])

    return jax.tree.map(merge, tree)
