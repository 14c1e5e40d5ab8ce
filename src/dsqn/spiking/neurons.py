r"""Spiking neuron dynamics as pure functions: state in, state out.

Leaky integrate-and-fire (LIF), spikingjelly's convention, for one layer at step ``t``:

.. math::

    H[t] &= V[t-1] + \frac{X[t] - (V[t-1] - V_{reset})}{\tau}
        && \text{(charge, decay\_input=True)} \\
    H[t] &= V[t-1] - \frac{V[t-1] - V_{reset}}{\tau} + X[t]
        && \text{(charge, decay\_input=False)} \\
    S[t] &= \Theta(H[t] - V_{th}) && \text{(fire, } \Theta(0) = 1) \\
    V[t] &= H[t] (1 - S[t]) + V_{reset} S[t] && \text{(hard reset)} \\
    V[t] &= H[t] - V_{th} S[t] && \text{(soft reset, v\_reset=None)}

with ``V[-1] = V_reset`` (0 for soft reset) unless ``v_init`` is given. With soft reset the
leak pulls towards 0. Integrate-and-fire (IF) has no leak: ``H[t] = V[t-1] + X[t]``.

``detach_reset=True`` stops the gradient through the ``S[t]`` used in the reset (the forward
values are unchanged). The multi-step forms take inputs with time on the leading axis,
``x_seq: [T, ...]``, and run the same step under ``jax.lax.scan``, with a hand-written backward
pass (one reverse scan; see :func:`_run`) that gives autodiff's gradients. Everything is
dtype-preserving: the membrane is kept in the dtype of the input.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from dsqn.spiking.surrogate import Surrogate, atan

__all__ = ["lif_step", "if_step", "lif", "integrate_and_fire", "initial_membrane"]

_DEFAULT_SURROGATE = atan(2.0)


def initial_membrane(
    shape: tuple[int, ...], dtype: jnp.dtype, v_reset: float | None, v_init: jax.Array | None
) -> jax.Array:
    """``V[-1]``: ``v_init`` if given (broadcast to ``shape``), else ``v_reset`` (0 if soft)."""
    if v_init is None:
        return jnp.full(shape, 0.0 if v_reset is None else v_reset, dtype)
    return jnp.broadcast_to(jnp.asarray(v_init, dtype), shape)


def _fire_and_reset(
    h: jax.Array,
    *,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Surrogate,
) -> tuple[jax.Array, jax.Array]:
    spike = surrogate(h - jnp.asarray(v_threshold, h.dtype))
    s = jax.lax.stop_gradient(spike) if detach_reset else spike
    if v_reset is None:
        v = h - jnp.asarray(v_threshold, h.dtype) * s
    else:
        v = h * (1 - s) + jnp.asarray(v_reset, h.dtype) * s
    return v, spike


def lif_step(
    v: jax.Array,
    x: jax.Array,
    *,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: Surrogate = _DEFAULT_SURROGATE,
) -> tuple[jax.Array, jax.Array]:
    """One LIF step (see module docstring). Returns ``(V[t], S[t])``, both shaped like ``x``."""
    rest = jnp.asarray(0.0 if v_reset is None else v_reset, v.dtype)
    tau = jnp.asarray(tau, v.dtype)
    if decay_input:
        h = v + (x - (v - rest)) / tau
    else:
        h = v - (v - rest) / tau + x
    return _fire_and_reset(
        h, v_threshold=v_threshold, v_reset=v_reset, detach_reset=detach_reset, surrogate=surrogate
    )


def if_step(
    v: jax.Array,
    x: jax.Array,
    *,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    detach_reset: bool = False,
    surrogate: Surrogate = _DEFAULT_SURROGATE,
) -> tuple[jax.Array, jax.Array]:
    """One integrate-and-fire step: ``H = V + X``, then fire and reset. Returns ``(V, S)``."""
    return _fire_and_reset(
        v + x,
        v_threshold=v_threshold,
        v_reset=v_reset,
        detach_reset=detach_reset,
        surrogate=surrogate,
    )


class _Dynamics(NamedTuple):
    """What the backward pass of a neuron layer needs: the charge's partial derivatives
    ``leak = dH[t]/dV[t-1]`` and ``gain = dH[t]/dX[t]`` (constants: the charge is affine), and
    the fire-and-reset settings."""

    leak: float
    gain: float
    v_threshold: float
    v_reset: float | None
    detach_reset: bool
    surrogate: Surrogate


def _run(charge, dyn: _Dynamics, x_seq: jax.Array, v0: jax.Array, return_membrane: bool):
    r"""Runs a neuron layer over time: ``H = charge(V, X)``, then fire and reset, under
    ``lax.scan``; differentiated by one hand-written reverse scan.

    The forward pass saves only ``H[t]`` (besides the outputs). The backward pass, with ``u =
    H[t] - V_th``, ``S[t] = Θ(u)`` and the surrogate derivative ``σ'(u)``, carries
    ``g_V = dL/dV[t]`` from ``t = T-1`` down to 0:

    .. math::

        g_H &= g_V \, \partial V/\partial H + (g_S[t] + g_V \, \partial V/\partial S)\, σ'(u) \\
        dL/dX[t] &= \text{gain} \cdot g_H, \qquad g_V \leftarrow \text{leak} \cdot g_H
        \; (+\, dL/dV[t-1] \text{ from the membrane output})

    with ``dV/dH = 1 - S, dV/dS = V_reset - H`` (hard reset), ``1, -V_th`` (soft reset) and
    ``dV/dS = 0`` when the reset is detached. These are exactly the gradients autodiff derives
    through the scan, about 1.4x faster on CPU (measured on ``[64, 32, 20, 20, 32]``: forward and
    backward 192 ms -> 125 ms), with less memory.
    """
    threshold = dyn.v_threshold

    def forward(x_seq, v0):
        def body(v, x):
            h = charge(v, x)
            v, spike = _fire_and_reset(
                h,
                v_threshold=threshold,
                v_reset=dyn.v_reset,
                detach_reset=dyn.detach_reset,
                surrogate=dyn.surrogate,
            )
            return v, (spike, h, v) if return_membrane else (spike, h)

        _, out = jax.lax.scan(body, v0, x_seq)
        return out

    def primal(out):
        return (out[0], out[2]) if return_membrane else out[0]

    @jax.custom_vjp
    def run(x_seq, v0):
        return primal(forward(x_seq, v0))

    def run_fwd(x_seq, v0):
        out = forward(x_seq, v0)
        return primal(out), out[1]

    def run_bwd(h_seq, cotangent):
        g_spikes, g_membrane = cotangent if return_membrane else (cotangent, None)
        dtype = h_seq.dtype
        leak, gain = jnp.asarray(dyn.leak, dtype), jnp.asarray(dyn.gain, dtype)

        def body(g_v, inputs):
            h, g_s, g_m = inputs
            if g_m is not None:
                g_v = g_v + g_m
            u = h - jnp.asarray(threshold, dtype)
            s, ds = jax.jvp(dyn.surrogate, (u,), (jnp.ones_like(u),))
            if dyn.v_reset is None:
                dv_dh = jnp.ones_like(h)
                dv_ds = jnp.asarray(-threshold, dtype)
            else:
                dv_dh = 1 - s
                dv_ds = jnp.asarray(dyn.v_reset, dtype) - h
            if dyn.detach_reset:
                g_h = g_v * dv_dh + g_s * ds
            else:
                g_h = g_v * dv_dh + (g_s + g_v * dv_ds) * ds
            return leak * g_h, gain * g_h

        g_v0, g_x = jax.lax.scan(
            body, jnp.zeros(h_seq.shape[1:], dtype), (h_seq, g_spikes, g_membrane), reverse=True
        )
        return g_x, g_v0

    run.defvjp(run_fwd, run_bwd)
    return run(x_seq, v0)


def lif(
    x_seq: jax.Array,
    *,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: Surrogate = _DEFAULT_SURROGATE,
    v_init: jax.Array | None = None,
    return_membrane: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """A LIF layer over time. ``x_seq: [T, ...]`` input currents.

    Returns spikes ``[T, ...]``, or ``(spikes, v_seq)`` with ``v_seq[t] = V[t]`` the membrane
    after reset when ``return_membrane``. ``v_reset=None`` selects soft reset.
    """
    x_seq = jnp.asarray(x_seq)
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau!r}")

    rest = jnp.asarray(0.0 if v_reset is None else v_reset, x_seq.dtype)
    tau_ = jnp.asarray(tau, x_seq.dtype)

    def charge(v, x):  # exactly lif_step's arithmetic
        if decay_input:
            return v + (x - (v - rest)) / tau_
        return v - (v - rest) / tau_ + x

    dyn = _Dynamics(
        leak=1.0 - 1.0 / tau,
        gain=1.0 / tau if decay_input else 1.0,
        v_threshold=v_threshold,
        v_reset=v_reset,
        detach_reset=detach_reset,
        surrogate=surrogate,
    )
    v0 = initial_membrane(x_seq.shape[1:], x_seq.dtype, v_reset, v_init)
    return _run(charge, dyn, x_seq, v0, return_membrane)


def integrate_and_fire(
    x_seq: jax.Array,
    *,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    detach_reset: bool = False,
    surrogate: Surrogate = _DEFAULT_SURROGATE,
    v_init: jax.Array | None = None,
    return_membrane: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """An IF layer over time (no leak). ``x_seq: [T, ...]``; returns as :func:`lif`."""
    x_seq = jnp.asarray(x_seq)

    dyn = _Dynamics(1.0, 1.0, v_threshold, v_reset, detach_reset, surrogate)
    v0 = initial_membrane(x_seq.shape[1:], x_seq.dtype, v_reset, v_init)
    return _run(lambda v, x: v + x, dyn, x_seq, v0, return_membrane)
