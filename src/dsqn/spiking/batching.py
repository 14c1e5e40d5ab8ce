"""Time-batched layers: a stateless layer applied to every time step at once.

A spiking network's synaptic layers (convolutions, dense layers) have no state across time: only
the neurons do. So ``[T, B, ...]`` inputs can be merged into one batch of ``T*B`` samples, the layer
run once, and the result split again; only the elementwise neuron dynamics are scanned over time.
This is spikingjelly's "multi-step" mode (``SeqToANNContainer``), and the reason a DSQN forward pass
costs a few large convolutions rather than T small ones.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

__all__ = ["over_time"]


def over_time(layer: Callable[[jax.Array], jax.Array], x_seq: jax.Array) -> jax.Array:
    """Applies ``layer`` (``[N, ...] -> [N, ...]``) to all steps: ``[T, B, ...] -> [T, B, ...]``."""
    t, b = x_seq.shape[:2]
    y = layer(x_seq.reshape(t * b, *x_seq.shape[2:]))
    return y.reshape(t, b, *y.shape[1:])
