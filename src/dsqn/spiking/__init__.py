"""dsqn.spiking: a pure-JAX toolkit for spiking layers (no flax, no hidden state).

Arrays are time-first, ``[T, ...]``. Every function is jit/vmap/grad-safe and keeps the dtype
of its input. See :mod:`dsqn.spiking.neurons` for the equations.

>>> import jax.numpy as jnp
>>> from dsqn import spiking
>>> spikes = spiking.lif(jnp.ones((8, 3)), tau=2.0, v_threshold=1.0)
"""

from dsqn.spiking.encoding import direct, poisson
from dsqn.spiking.neurons import (
    if_step,
    initial_membrane,
    integrate_and_fire,
    lif,
    lif_step,
)
from dsqn.spiking.readout import MEMBRANE_DECODERS, membrane, membrane_trace, spike_rate
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
    "MEMBRANE_DECODERS",
    "SURROGATES",
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
    "membrane",
    "membrane_trace",
    "piecewise_quadratic",
    "poisson",
    "sigmoid",
    "spike_rate",
]
