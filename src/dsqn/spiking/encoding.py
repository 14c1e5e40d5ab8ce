"""Input encodings: turn an analog input into a ``[T, ...]`` sequence for a spiking network.

- :func:`direct` (the paper's): the analog input is fed unchanged at every step,
  ``X[t] = x`` for ``t = 0..T-1``. A network whose first layer is linear can instead apply that
  layer once and feed its output to the neurons at every step: pass it with ``time_steps=T`` to
  :func:`~dsqn.spiking.lif` or :func:`~dsqn.spiking.integrate_and_fire` (``[...] -> [T, ...]``
  spikes; the input's gradient is summed over time inside the backward scan, never materialised
  as T copies). That is what :class:`dsqn.models.networks.DSQN` does with conv1.
- :func:`poisson`: rate coding, ``X[t] ~ Bernoulli(clip(x, 0, 1))`` independently per step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["direct", "poisson"]


def direct(x: jax.Array, time_steps: int) -> jax.Array:
    """Repeats ``x`` over a new leading time axis: ``[...] -> [T, ...]`` (a broadcast, no copy)."""
    if time_steps < 1:
        raise ValueError(f"time_steps must be >= 1, got {time_steps!r}")
    x = jnp.asarray(x)
    return jnp.broadcast_to(x, (time_steps, *x.shape))


def poisson(key: jax.Array, x: jax.Array, time_steps: int) -> jax.Array:
    """Bernoulli spike trains with per-step probability ``clip(x, 0, 1)``: ``[T, ...]``."""
    if time_steps < 1:
        raise ValueError(f"time_steps must be >= 1, got {time_steps!r}")
    x = jnp.asarray(x)
    p = jnp.clip(x, 0, 1)
    u = jax.random.uniform(key, (time_steps, *x.shape), dtype=x.dtype)
    return (u < p[None]).astype(x.dtype)
