r"""Decoders that turn an output layer's activity over time into Q-values.

- :func:`spike_rate`: ``r = (1/T) sum_t S[t]``. The paper's DSQN feeds the fc1 spike rate to a
  linear layer, ``Q = W (1/T) sum_t S[t] + b``, which equals :func:`spike_rate` followed by a
  dense layer (linearity).
- :func:`membrane`: a non-spiking output neuron that integrates its input current and never
  fires (Chen et al. 2022), leaky (LIF, ``decay_input``)

  .. math::  V[t] = V[t-1] + (X[t] - V[t-1]) / \tau, \qquad V[-1] = 0

  or not (IF: ``V[t] = V[t-1] + X[t]``), decoded (Chen et al. 2022's decoders, as
  spikingjelly's ``NonSpikingLIFNode(decode=...)`` of its DSQN example) as

  - ``"max"`` ("max-mem"): ``Q = max_t V[t]``;
  - ``"max_abs"`` ("max-abs-mem"): the membrane of largest magnitude, with ``M = max_t V[t]``
    and ``m = min_t V[t]``: ``Q = M if |M| > |m| else m`` (a tie goes to ``m``);
  - ``"mean"`` ("mean-mem"): ``Q = (1/T) sum_t V[t]``;
  - ``"last"`` ("last-mem"): ``Q = V[T-1]``.

Chen et al.'s fifth decoder, "fr-mlp", is no membrane: the firing rate of the last hidden layer
into a linear layer, ``Q = W (1/T) sum_t S[t] + b``, which is :func:`spike_rate` followed by a
dense layer (the paper's and dsqn's ``"rate"`` readout of :mod:`dsqn.models.networks`).

The non-spiking neuron is the toolkit's own :func:`~dsqn.spiking.lif` /
:func:`~dsqn.spiking.integrate_and_fire` with an unreachable threshold (``V_th = +inf``: it never
fires, so the hard reset never acts and the surrogate derivative is 0), so it has the same
parameters (``tau`` may be traced or learned) and the same differentiation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dsqn.spiking.neurons import Param, integrate_and_fire, lif

__all__ = [
    "spike_rate",
    "max_abs",
    "membrane_trace",
    "membrane",
    "MEMBRANE_DECODERS",
    "MEMBRANE_NEURONS",
]

MEMBRANE_DECODERS = ("max", "max_abs", "mean", "last")
MEMBRANE_NEURONS = ("lif", "if")


def spike_rate(spikes: jax.Array) -> jax.Array:
    """Mean over the leading time axis: ``[T, ...] -> [...]``."""
    return jnp.mean(spikes, axis=0)


def max_abs(v: jax.Array) -> jax.Array:
    """The value of largest magnitude over the leading time axis, ``[T, ...] -> [...]``:
    ``M if |M| > |m| else m`` with ``M = max_t v[t]``, ``m = min_t v[t]`` (a tie goes to ``m``,
    as spikingjelly's "max-abs-mem")."""
    high, low = jnp.max(v, axis=0), jnp.min(v, axis=0)
    return jnp.where(jnp.abs(high) > jnp.abs(low), high, low)


def membrane_trace(
    x_seq: jax.Array,
    *,
    neuron: str = "lif",
    tau: Param = 2.0,
    decay_input: bool = True,
    v_init: Param = 0.0,
    backend: str = "scan",
) -> jax.Array:
    """Membrane ``V[t]`` of a non-firing LIF or IF neuron driven by ``x_seq: [T, ...]``, run on
    the engine's ``backend`` (``"scan"`` or ``"pallas"``)."""
    if neuron not in MEMBRANE_NEURONS:
        raise ValueError(f"unknown membrane neuron {neuron!r}; valid: {MEMBRANE_NEURONS}")
    never = dict(
        v_threshold=jnp.inf, v_reset=0.0, v_init=v_init, return_membrane=True, backend=backend
    )
    if neuron == "if":
        return integrate_and_fire(x_seq, **never)[1]
    return lif(x_seq, tau=tau, decay_input=decay_input, **never)[1]


def membrane(
    x_seq: jax.Array,
    *,
    decoder: str = "max",
    neuron: str = "lif",
    tau: Param = 2.0,
    decay_input: bool = True,
    v_init: Param = 0.0,
    backend: str = "scan",
) -> jax.Array:
    """Decodes a non-spiking output neuron, ``[T, ...] -> [...]``, by ``decoder``
    (:data:`MEMBRANE_DECODERS`: max, max_abs, mean or last; equations in the module docstring)."""
    if decoder not in MEMBRANE_DECODERS:
        raise ValueError(f"unknown membrane decoder {decoder!r}; valid: {MEMBRANE_DECODERS}")
    v = membrane_trace(
        x_seq, neuron=neuron, tau=tau, decay_input=decay_input, v_init=v_init, backend=backend
    )
    if decoder == "max":
        return jnp.max(v, axis=0)
    if decoder == "max_abs":
        return max_abs(v)
    if decoder == "mean":
        return jnp.mean(v, axis=0)
    return v[-1]
