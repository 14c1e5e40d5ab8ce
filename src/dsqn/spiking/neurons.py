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
values are unchanged).

**Neuron parameters are values.** ``tau``, ``v_threshold`` and a numeric ``v_reset`` may be
Python floats, 0-d arrays or arrays broadcastable to the neuron shape (per neuron, per channel:
``[C]`` for neurons ``[..., C]``), concrete or traced: functions can be jitted with them as
arguments, vmapped over them and differentiated with respect to them (``jax.grad``, ``jax.jvp``),
as with respect to the input and ``v_init``. Their validity (``tau > 0``, shapes) is checked
where they are concrete; traced values are not checked. The options that change the program
(``decay_input``, hard or soft reset, ``detach_reset``, the surrogate's kind, ``time_steps``) are
Python values. Computation runs in the input's dtype (float32 or bfloat16): parameters are cast
to it.

**One engine.** :func:`lif` and :func:`integrate_and_fire` run a whole layer over time with
``x: [T, ...]``, or, with ``time_steps=T``, a layer driven by the same input ``x: [...]`` at
every step (direct encoding: a linear first layer applied once, its output fed T times). Both
are one ``jax.lax.scan`` over the elementwise dynamics, with a hand-written forward-mode rule
(see :func:`_layer_jvp`): one linear scan over the charges ``H[t]`` saved by the forward pass.
Reverse mode (``jax.grad``) is JAX's transpose of that rule: one reverse scan over the same
saved charges, recomputing the surrogate derivative from them, with the parameters' gradients
accumulated over time (and the input's, in direct-encoding mode, so no ``[T, ...]`` copy of its
gradient is formed). :func:`lif_step` and :func:`if_step` are the single-step forms, plain
functions differentiated by autodiff, for users who write their own loops. The leak multiplies
by ``1/tau``, computed once per layer (:mod:`dsqn.spiking.dynamics`).

**Backends.** ``backend="scan"`` (the default) is the scan above, the reference. ``"pallas"``
runs the same equations as one fused kernel per layer forward and one backward
(:mod:`dsqn.spiking.fused`): the same spikes and membranes, gradients equal up to float
rounding, reverse mode only (``jax.jvp`` through it raises JAX's custom_vjp error); on CPU in
Pallas's interpret mode, on NVIDIA GPUs through Triton.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from dsqn.spiking import fused
from dsqn.spiking.dynamics import Options, charge, lif_charge, reset
from dsqn.spiking.surrogate import Surrogate, atan, heaviside

__all__ = [
    "lif_step",
    "if_step",
    "lif",
    "integrate_and_fire",
    "initial_membrane",
    "plif_tau",
    "plif_weight",
    "BACKENDS",
]

_DEFAULT_SURROGATE = atan(2.0)

BACKENDS = ("scan", "pallas")
"""Backends of the engine: ``"scan"`` (the reference) and ``"pallas"`` (fused kernels)."""

Param = float | jax.Array
"""A neuron parameter: a float, or an array broadcastable to the neuron shape; may be traced."""


# ----------------------------------------------------------------------------- parameters


def _concrete(value: Param) -> np.ndarray | None:
    """``value`` as a NumPy array, or ``None`` when it is traced (not known until run time)."""
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _check_positive(name: str, value: Param) -> None:
    concrete = _concrete(value)
    if concrete is not None and not np.all(concrete > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _aligned(name: str, value: Param, shape: tuple[int, ...], dtype: jnp.dtype) -> jax.Array:
    """``value`` cast to ``dtype`` and given the rank of ``shape`` (leading size-1 axes), so that
    it broadcasts against the neurons without rank promotion; rejects shapes that do not."""
    value = jnp.asarray(value)
    compatible = value.ndim <= len(shape) and all(
        p in (1, n) for p, n in zip(value.shape[::-1], shape[::-1], strict=False)
    )
    if not compatible:
        raise ValueError(
            f"{name} has shape {value.shape}, which does not broadcast to the neuron shape {shape}"
            " (use a scalar, a per-neuron array, or trailing axes such as [C] for [..., C])"
        )
    return value.astype(dtype).reshape((1,) * (len(shape) - value.ndim) + value.shape)


def initial_membrane(
    shape: tuple[int, ...], dtype: jnp.dtype, v_reset: Param | None, v_init: Param | None
) -> jax.Array:
    """``V[-1]``: ``v_init`` if given, else ``v_reset`` (0 if soft), broadcast to ``shape``."""
    start = (0.0 if v_reset is None else v_reset) if v_init is None else v_init
    return jnp.broadcast_to(_aligned("v_init", start, shape, dtype), shape)


def plif_tau(w: Param) -> jax.Array:
    r"""The time constant of a Parametric LIF neuron (Fang et al. 2021), ``1/tau = sigmoid(w)``.

    ``w`` is the learnable parameter (spikingjelly's ``ParametricLIFNode``); ``tau`` is then
    always > 1. Pass the result as ``tau`` to :func:`lif` to learn the leak by gradient descent.
    """
    return 1.0 / jax.nn.sigmoid(jnp.asarray(w))


def plif_weight(tau: Param) -> jax.Array:
    """The ``w`` that gives ``tau`` in :func:`plif_tau`: ``w = -log(tau - 1)``; needs tau > 1."""
    concrete = _concrete(tau)
    if concrete is not None and not np.all(concrete > 1):
        raise ValueError(f"a parametric LIF needs tau > 1 (1/tau = sigmoid(w)), got {tau!r}")
    return -jnp.log(jnp.asarray(tau, jnp.float32) - 1.0)


# ----------------------------------------------------------------------------- one step


def _fire_and_reset(h, v_threshold, v_reset, soft: bool, detach_reset: bool, surrogate):
    spike = surrogate(h - v_threshold)
    s = jax.lax.stop_gradient(spike) if detach_reset else spike
    return reset(h, s, v_threshold, v_reset, soft), spike


def lif_step(
    v: jax.Array,
    x: jax.Array,
    *,
    tau: Param = 2.0,
    v_threshold: Param = 1.0,
    v_reset: Param | None = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: Surrogate = _DEFAULT_SURROGATE,
) -> tuple[jax.Array, jax.Array]:
    """One LIF step (see module docstring). Returns ``(V[t], S[t])``, both shaped like ``x``."""
    _check_positive("tau", tau)
    shape, dtype = jnp.shape(v), jnp.result_type(v)
    tau = _aligned("tau", tau, shape, dtype)
    vth = _aligned("v_threshold", v_threshold, shape, dtype)
    rest = _aligned("v_reset", 0.0 if v_reset is None else v_reset, shape, dtype)
    h = lif_charge(v, x, 1 / tau, rest, decay_input)
    return _fire_and_reset(h, vth, rest, v_reset is None, detach_reset, surrogate)


def if_step(
    v: jax.Array,
    x: jax.Array,
    *,
    v_threshold: Param = 1.0,
    v_reset: Param | None = 0.0,
    detach_reset: bool = False,
    surrogate: Surrogate = _DEFAULT_SURROGATE,
) -> tuple[jax.Array, jax.Array]:
    """One integrate-and-fire step: ``H = V + X``, then fire and reset. Returns ``(V, S)``."""
    shape, dtype = jnp.shape(v), jnp.result_type(v)
    vth = _aligned("v_threshold", v_threshold, shape, dtype)
    rest = _aligned("v_reset", 0.0 if v_reset is None else v_reset, shape, dtype)
    return _fire_and_reset(v + x, vth, rest, v_reset is None, detach_reset, surrogate)


# ----------------------------------------------------------------------------- the engine


def _forward(opts: Options, x, v0, tau, vth, rest, save_charges: bool):
    """The layer over time: ``(spikes [T, ...], membranes [T, ...] or None, H or None)``."""
    inv_tau = 1 / tau

    def step(v, x_t):
        h = charge(opts, v, x if opts.time_steps else x_t, inv_tau, rest)
        s = heaviside(h - vth)
        v = reset(h, s, vth, rest, opts.soft)
        return v, (s, v if opts.return_membrane else None, h if save_charges else None)

    xs = None if opts.time_steps else x
    return jax.lax.scan(step, v0, xs, length=opts.time_steps)[1]


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _layer(opts: Options, x, v0, tau, vth, rest, surrogate):
    spikes, membranes, _ = _forward(opts, x, v0, tau, vth, rest, save_charges=False)
    return (spikes, membranes) if opts.return_membrane else spikes


def _is_zero(tangent) -> bool:
    return isinstance(tangent, SymbolicZero)


def _layer_jvp(opts: Options, primals, tangents):
    r"""Forward-mode rule: the forward pass saving ``H[t]``, then one linear scan of tangents.

    With ``u = H[t] - V_th``, ``S = Θ(u)`` and the surrogate derivative ``σ'(u)``, the tangent
    of each step (``d`` marks tangents; terms of inputs that are not differentiated are left
    out) is

    .. math::

        dH &= \text{leak}\, dV[t-1] + \text{gain}\, dX[t]
              + \partial_\tau H \, d\tau + \partial_{V_r} H \, dV_{reset} \\
        dS &= σ'(u) (dH - dV_{th}) \\
        dV[t] &= (1 - S)\, dH + (V_{reset} - H)\, dS + S\, dV_{reset}  && \text{(hard)} \\
        dV[t] &= dH - V_{th}\, dS - S\, dV_{th}                          && \text{(soft)}

    (no ``dS`` term in ``dV`` when the reset is detached), with leak ``= 1 - 1/tau`` and gain
    ``= 1/tau`` (LIF, decay_input; gain 1 otherwise; leak 1 and no tau for IF),
    ``∂H/∂tau = -(H - V[t-1]) / tau`` (decay_input) or ``(V[t-1] - V_reset) / tau^2``, and
    ``∂H/∂V_reset = 1/tau`` (LIF with hard reset). The step is rematerialised (``jax.checkpoint``)
    so that linearising it saves nothing but ``H`` (and ``V[t-1]`` when ``tau`` is
    differentiated): reverse mode, JAX's transpose of this scan, recomputes ``S`` and ``σ'(u)``
    from ``H`` in one reverse scan.
    """
    x, v0, tau, vth, rest, surrogate = primals
    dx, dv0, dtau, dvth, drest, _ = tangents
    spikes, membranes, charges = _forward(opts, x, v0, tau, vth, rest, save_charges=True)
    out = (spikes, membranes) if opts.return_membrane else spikes
    d_tau = opts.leaky and not _is_zero(dtau)
    d_rest = not opts.soft and not _is_zero(drest)
    d_vth = not _is_zero(dvth)
    constant_input = bool(opts.time_steps)
    if opts.leaky:
        leak, gain = 1 - 1 / tau, (1 / tau if opts.decay_input else jnp.ones_like(tau))
    else:
        leak, gain = jnp.ones_like(tau), jnp.ones_like(tau)

    v_prev = None
    if d_tau:  # V[t-1]: the initial membrane, then the reset of each earlier charge
        earlier, th, rs = charges[:-1], vth[None], rest[None]
        v_earlier = reset(earlier, heaviside(earlier - th), th, rs, opts.soft)
        v_prev = jnp.concatenate([v0[None], v_earlier])

    def step(dv, inputs):
        h, dx_t, v_before = inputs
        dh = leak * dv
        if not _is_zero(dx):
            dh = dh + gain * (dx if constant_input else dx_t)
        if d_tau:
            if opts.decay_input:
                dh = dh - (h - v_before) / tau * dtau
            else:
                dh = dh + (v_before - rest) / (tau * tau) * dtau
        if d_rest and opts.leaky:
            dh = dh + drest / tau
        u = h - vth
        s = heaviside(u)
        ds = surrogate.grad(u) * (dh - dvth if d_vth else dh)
        if opts.soft:
            dv = dh if opts.detach_reset else dh - vth * ds
            if d_vth:
                dv = dv - s * dvth
        else:
            dv = dh * (1 - s) if opts.detach_reset else dh * (1 - s) + (rest - h) * ds
            if d_rest:
                dv = dv + s * drest
        return dv, (ds, dv if opts.return_membrane else None)

    dv_init = jnp.zeros_like(v0) if _is_zero(dv0) else dv0
    sequence_dx = None if (constant_input or _is_zero(dx)) else dx
    _, (d_spikes, d_membranes) = jax.lax.scan(
        jax.checkpoint(step), dv_init, (charges, sequence_dx, v_prev)
    )
    d_out = (d_spikes, d_membranes) if opts.return_membrane else d_spikes
    return out, d_out


_layer.defjvp(_layer_jvp, symbolic_zeros=True)


def _run(
    x: jax.Array,
    *,
    leaky: bool,
    tau: Param,
    v_threshold: Param,
    v_reset: Param | None,
    decay_input: bool,
    detach_reset: bool,
    surrogate: Surrogate,
    v_init: Param | None,
    return_membrane: bool,
    time_steps: int | None,
    backend: str,
):
    """Checks and aligns the arguments of :func:`lif` / :func:`integrate_and_fire`, then runs
    the layer on ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown neuron backend {backend!r}; valid: {BACKENDS}")
    x = jnp.asarray(x)
    if time_steps is not None and (not isinstance(time_steps, int) or time_steps < 1):
        raise ValueError(f"time_steps must be a positive int or None, got {time_steps!r}")
    if time_steps is None and x.ndim < 1:
        raise ValueError("x must have a leading time axis [T, ...] (or pass time_steps=T)")
    if leaky:
        _check_positive("tau", tau)
    shape = x.shape if time_steps else x.shape[1:]
    opts = Options(leaky, decay_input, v_reset is None, detach_reset, time_steps, return_membrane)
    return (fused.layer if backend == "pallas" else _layer)(
        opts,
        x,
        initial_membrane(shape, x.dtype, v_reset, v_init),
        _aligned("tau", tau, shape, x.dtype),
        _aligned("v_threshold", v_threshold, shape, x.dtype),
        _aligned("v_reset", 0.0 if v_reset is None else v_reset, shape, x.dtype),
        surrogate,
    )


def lif(
    x: jax.Array,
    *,
    tau: Param = 2.0,
    v_threshold: Param = 1.0,
    v_reset: Param | None = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: Surrogate = _DEFAULT_SURROGATE,
    v_init: Param | None = None,
    return_membrane: bool = False,
    time_steps: int | None = None,
    backend: str = "scan",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """A LIF layer over time (equations in the module docstring).

    Args:
      x: input currents ``[T, ...]``; or, with ``time_steps``, one input ``[...]`` fed
        unchanged at every one of ``time_steps`` steps (direct encoding).
      tau, v_threshold, v_reset: neuron parameters (floats or arrays broadcastable to the
        neuron shape, concrete or traced); ``v_reset=None`` selects soft reset.
      decay_input, detach_reset, surrogate: options (see the module docstring).
      v_init: ``V[-1]`` (default: ``v_reset``, or 0 for soft reset).
      return_membrane: also return ``V[t]``, the membrane after reset.
      time_steps: run with a constant input for this many steps.
      backend: ``"scan"`` (the reference: one ``lax.scan``) or ``"pallas"`` (one fused kernel
        forward and one backward, :mod:`dsqn.spiking.fused`; reverse mode only).

    Returns:
      spikes ``[T, ...]`` in the dtype of ``x``, or ``(spikes, membranes)``.
    """
    return _run(
        x,
        leaky=True,
        tau=tau,
        v_threshold=v_threshold,
        v_reset=v_reset,
        decay_input=decay_input,
        detach_reset=detach_reset,
        surrogate=surrogate,
        v_init=v_init,
        return_membrane=return_membrane,
        time_steps=time_steps,
        backend=backend,
    )


def integrate_and_fire(
    x: jax.Array,
    *,
    v_threshold: Param = 1.0,
    v_reset: Param | None = 0.0,
    detach_reset: bool = False,
    surrogate: Surrogate = _DEFAULT_SURROGATE,
    v_init: Param | None = None,
    return_membrane: bool = False,
    time_steps: int | None = None,
    backend: str = "scan",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """An IF layer over time (no leak: ``H[t] = V[t-1] + X[t]``); arguments as :func:`lif`."""
    return _run(
        x,
        leaky=False,
        tau=1.0,
        v_threshold=v_threshold,
        v_reset=v_reset,
        decay_input=True,
        detach_reset=detach_reset,
        surrogate=surrogate,
        v_init=v_init,
        return_membrane=return_membrane,
        time_steps=time_steps,
        backend=backend,
    )
