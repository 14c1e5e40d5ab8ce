"""dsqn.spiking: a pure-JAX toolkit for spiking layers (no flax, no hidden state).

Arrays are time-first, ``[T, ...]``. Every function is jit/vmap/grad/jvp-safe, keeps the dtype
of its input, and takes its neuron parameters (``tau``, ``v_threshold``, ``v_reset``, the
surrogate's ``alpha``) as values: floats or arrays, concrete or traced. See
:mod:`dsqn.spiking.neurons` for the equations. Every neuron layer of dsqn's own networks runs
through these functions.

>>> import jax, jax.numpy as jnp
>>> from dsqn import spiking
>>> x = jnp.ones((64, 128)) * 1.2                               # [T, ...] input currents
>>> rate = lambda tau: spiking.spike_rate(spiking.lif(x, tau=tau)).mean()
>>> rates = jax.vmap(rate)(jnp.array([1.5, 2.0, 4.0]))          # a sweep over tau, one program
>>> slope = jax.grad(rate)(2.0)                                 # surrogate gradient w.r.t. tau
"""

from dsqn.spiking.batching import over_time
from dsqn.spiking.encoding import direct, poisson
from dsqn.spiking.neurons import (
    BACKENDS,
    Param,
    if_step,
    initial_membrane,
    integrate_and_fire,
    lif,
    lif_step,
    plif_tau,
    plif_weight,
)
from dsqn.spiking.readout import (
    MEMBRANE_DECODERS,
    MEMBRANE_NEURONS,
    max_abs,
    membrane,
    membrane_trace,
    spike_rate,
)
from dsqn.spiking.surrogate import (
    SURROGATES,
    Surrogate,
    atan,
    fast_sigmoid,
    get_surrogate,
    heaviside,
    piecewise_quadratic,
    sigmoid,
)

__all__ = [
    "BACKENDS",
    "MEMBRANE_DECODERS",
    "MEMBRANE_NEURONS",
    "SURROGATES",
    "Param",
    "Surrogate",
    "atan",
    "direct",
    "fast_sigmoid",
    "get_surrogate",
    "heaviside",
    "if_step",
    "initial_membrane",
    "integrate_and_fire",
    "lif",
    "lif_step",
    "max_abs",
    "membrane",
    "membrane_trace",
    "over_time",
    "piecewise_quadratic",
    "plif_tau",
    "plif_weight",
    "poisson",
    "sigmoid",
    "spike_rate",
]
