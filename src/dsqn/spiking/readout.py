r"""Decoders that turn an output layer's activity over time into Q-values.

- :func:`spike_rate`: ``r = (1/T) sum_t S[t]``. The paper's DSQN feeds the fc1 spike rate to a
  linear layer, ``Q = W (1/T) sum_t S[t] + b``, which equals :func:`spike_rate` followed by a
  dense layer (linearity).
- :func:`membrane` : a non-spiking leaky output neuron that integrates its input current and
  never fires (Chen et al. 2022),

  .. math::  V[t] = V[t-1] + (X[t] - V[t-1]) / \tau \quad (\text{decay\_input}),
             \qquad V[-1] = 0

  decoded as ``max_t V[t]`` ("max-mem"), ``mean_t V[t]`` or ``V[T-1]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["spike_rate", "membrane_trace", "membrane", "MEMBRANE_DECODERS"]

MEMBRANE_DECODERS = ("max", "mean", "last")


def spike_rate(spikes: jax.Array) -> jax.Array:
    """Mean over the leading time axis: ``[T, ...] -> [...]``."""
    return jnp.mean(spikes, axis=0)


def membrane_trace(
    x_seq: jax.Array, *, tau: float = 2.0, decay_input: bool = True, v_init: float = 0.0
) -> jax.Array:
    """Membrane ``V[t]`` of a non-firing leaky neuron driven by ``x_seq: [T, ...]``."""
    x_seq = jnp.asarray(x_seq)
    tau = jnp.asarray(tau, x_seq.dtype)

    def body(v, x):
        v = v + (x - v) / tau if decay_input else v - v / tau + x
        return v, v

    v0 = jnp.full(x_seq.shape[1:], v_init, x_seq.dtype)
    return jax.lax.scan(body, v0, x_seq)[1]


def membrane(
    x_seq: jax.Array,
    *,
    decoder: str = "max",
    tau: float = 2.0,
    decay_input: bool = True,
    v_init: float = 0.0,
) -> jax.Array:
    """Decodes a non-spiking output neuron, ``[T, ...] -> [...]``, by max, mean or last."""
    if decoder not in MEMBRANE_DECODERS:
        raise ValueError(f"unknown membrane decoder {decoder!r}; valid: {MEMBRANE_DECODERS}")
    v = membrane_trace(x_seq, tau=tau, decay_input=decay_input, v_init=v_init)
    if decoder == "max":
        return jnp.max(v, axis=0)
    if decoder == "mean":
        return jnp.mean(v, axis=0)
    return v[-1]
