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
``x_seq: [T, ...]``, and run the single-step form under ``jax.lax.scan``. Everything is
dtype-preserving: the membrane is kept in the dtype of the input.
"""

from __future__ import annotations

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


def _run(step, x_seq: jax.Array, v0: jax.Array, return_membrane: bool):
    def body(v, x):
        v, s = step(v, x)
        return v, (s, v) if return_membrane else s

    _, out = jax.lax.scan(body, v0, x_seq)
    return out


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

    def step(v, x):
        return lif_step(
            v,
            x,
            tau=tau,
            v_threshold=v_threshold,
            v_reset=v_reset,
            decay_input=decay_input,
            detach_reset=detach_reset,
            surrogate=surrogate,
        )

    v0 = initial_membrane(x_seq.shape[1:], x_seq.dtype, v_reset, v_init)
    return _run(step, x_seq, v0, return_membrane)


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

    def step(v, x):
        return if_step(
            v,
            x,
            v_threshold=v_threshold,
            v_reset=v_reset,
            detach_reset=detach_reset,
            surrogate=surrogate,
        )

    v0 = initial_membrane(x_seq.shape[1:], x_seq.dtype, v_reset, v_init)
    return _run(step, x_seq, v0, return_membrane)
