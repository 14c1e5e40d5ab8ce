r"""The equations of one neuron step, shared by every backend of the engine.

Charge (LIF with ``decay_input``, LIF without it, IF), fire and reset, with the symbols of
:mod:`dsqn.spiking.neurons`:

.. math::

    H &= V + (X - (V - V_{reset})) \cdot \tau^{-1}, \qquad
    H = V - (V - V_{reset}) \cdot \tau^{-1} + X, \qquad H = V + X \\
    V' &= H (1 - S) + V_{reset} S \ \text{(hard)}, \qquad V' = H - V_{th} S \ \text{(soft)}

The scan backend (:mod:`dsqn.spiking.neurons`) and the fused kernels
(:mod:`dsqn.spiking.fused`) both build on these functions, operation for operation, so that
their spikes and membranes are the same to the bit. The leak multiplies by ``1/tau``, computed
once per layer, rather than dividing by ``tau`` at every step: XLA rewrites a division by a
broadcast parameter (a scalar or per-channel ``tau``) into that multiplication anyway, and
writing it out makes every parameter shape and every backend round alike.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Options", "lif_charge", "charge", "reset"]


class Options(NamedTuple):
    """The static options of a neuron layer (they shape the program, not its values)."""

    leaky: bool  # LIF (True) or IF
    decay_input: bool
    soft: bool  # soft reset (v_reset=None)
    detach_reset: bool
    time_steps: int | None  # None: x is [T, ...]; an int: x is one input fed at every step
    return_membrane: bool


def lif_charge(v, x, inv_tau, rest, decay_input: bool):
    """LIF charge ``H`` from ``V[t-1] = v``, ``X[t] = x`` and ``inv_tau = 1/tau``."""
    if decay_input:
        return v + (x - (v - rest)) * inv_tau
    return v - (v - rest) * inv_tau + x


def charge(opts: Options, v, x, inv_tau, rest):
    """The charge of the layer's neuron kind (LIF, or IF: ``H = V + X``)."""
    return lif_charge(v, x, inv_tau, rest, opts.decay_input) if opts.leaky else v + x


def reset(h, s, v_threshold, v_reset, soft: bool):
    """``V[t]`` after the spikes ``s``: hard reset to ``v_reset``, or soft (subtract ``V_th``)."""
    if soft:
        return h - v_threshold * s
    return h * (1 - s) + v_reset * s
