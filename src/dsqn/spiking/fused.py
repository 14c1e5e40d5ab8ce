r"""The fused backend of the neuron engine: one Pallas kernel runs a layer's whole T-step loop.

``lif(..., backend="pallas")`` and ``integrate_and_fire(..., backend="pallas")`` compute the
equations of :mod:`dsqn.spiking.neurons` with the same step functions
(:mod:`dsqn.spiking.dynamics`), but where the scan backend runs one loop iteration per time step
(at least one kernel launch each on a GPU), this backend runs a layer in one kernel launch
forward and one backward, as spikingjelly's fused CUDA neurons do:

- **forward kernel**: for each block of neurons, ``V = V[-1]``, then for ``t = 0 .. T-1``:
  ``H = charge(V, X[t])``, ``S[t] = Θ(H - V_th)``, ``V = reset(H, S[t])``; it writes the spikes,
  the membranes if asked for and, when the layer is differentiated, the charges ``H[t]``.
- **backward kernel**: one loop over reversed time. With ``u = H[t] - V_th``, the surrogate
  derivative ``σ'(u)``, the cotangents ``\bar S[t]``, ``\bar V[t]`` of the outputs and
  ``\bar V`` carried back from step ``t + 1`` (``\bar V_{T} = 0``):

  .. math::

      \hat V &= \bar V + \bar V[t], \\
      \hat S &= \bar S[t] + (V_{reset} - H) \hat V \ \text{(hard)} \quad
                \text{or} \quad \bar S[t] - V_{th} \hat V \ \text{(soft)}
                \quad (\bar S[t] \text{ alone when the reset is detached}), \\
      \bar H &= (1 - S) \hat V \ \text{(hard)} \ \text{or} \ \hat V \ \text{(soft)}
                \; + \; σ'(u) \hat S, \\
      \bar X[t] &= \text{gain}\, \bar H, \qquad \bar V \leftarrow \text{leak}\, \bar H, \\
      \bar V_{th} &\mathrel{+}= -σ'(u) \hat S \; (- S \hat V \ \text{soft}), \qquad
      \bar V_{reset} \mathrel{+}= S \hat V + \bar H / \tau \ \text{(hard; the last term LIF)}, \\
      \bar\tau &\mathrel{+}= -\bar H (H - V[t-1]) / \tau \ \text{(decay\_input)} \quad
                \text{or} \quad \bar H (V[t-1] - V_{reset}) / \tau^2,

  with leak ``1 - 1/tau`` and gain ``1/tau`` (LIF with decay_input; gain 1 otherwise; leak and
  gain 1 for IF), ``V[t-1]`` recomputed from ``H[t-1]`` (or ``V[-1]``), and the last ``\bar V``
  the cotangent of ``V[-1]``. In direct-encoding mode (``time_steps=T``) ``\bar X`` is summed
  over time inside the kernel. The backward kernel computes in float32 (bfloat16 inputs are
  widened, the input's cotangent rounded back); parameter cotangents are accumulated per neuron,
  then summed to the parameter's shape (scalar, per channel, per neuron).

**Layout.** The neurons are flattened to one axis of ``N`` and padded to a multiple of the block
(:data:`BLOCK_SIZE`, a power of two as Triton needs); parameters are broadcast to ``[N]``. The
grid runs over blocks of neurons, the loop over time runs inside the kernel. ``jax.vmap`` adds a
grid axis (Pallas's batching rule), so sweeps over traced parameters stay one launch.

**Platforms.** On CPU the kernels run in Pallas's interpret mode (for tests: the same
operations as the scan, so the same bits); on NVIDIA GPUs they compile through Triton. The
choice is made when the program is lowered (``jax.lax.platform_dependent``). The kernels never
divide in the forward pass: ``1/tau`` is computed once by XLA outside them, exactly as the scan
computes it (Triton's float32 division, ``div.full.f32``, is approximate). Other accelerators
are not supported: tracing there raises an error.

**Differentiation.** Reverse mode only: the layer is a ``jax.custom_vjp`` because Pallas
kernels cannot be transposed. ``jax.jvp`` (and ``jax.jacfwd``, ``jax.hessian``) through it fail
with JAX's ``TypeError: can't apply forward-mode autodiff (jvp) to a custom_vjp function``; use
``backend="scan"`` for forward mode. The surrogate's ``alpha`` gets a zero gradient, as with the
scan (the spike function does not depend on it).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton

from dsqn.spiking.dynamics import Options, charge, reset
from dsqn.spiking.surrogate import Surrogate, heaviside

__all__ = ["BLOCK_SIZE", "NUM_WARPS", "layer"]

BLOCK_SIZE = 512
"""Neurons per kernel instance (a power of two); smaller layers use one block of their size.
Not tuned: no GPU measurement of this kernel exists yet (``benchmarks/gpu.sh`` makes one)."""

NUM_WARPS = 4
"""Triton warps per kernel instance (GPU only); not tuned either."""


def _check_platform() -> None:
    backend = jax.default_backend()
    if backend not in ("cpu", "gpu"):
        raise ValueError(
            f"backend='pallas' runs on CPU (interpret mode) and NVIDIA GPUs (Triton), not on "
            f"{backend!r}; use backend='scan'"
        )


def _on_each_platform(call, *args):
    """``call(*args, interpret=...)``: interpreted on CPU, compiled by Triton on CUDA."""
    _check_platform()
    return jax.lax.platform_dependent(
        *args,
        cpu=functools.partial(call, interpret=True),
        cuda=functools.partial(call, interpret=False),
    )


class _Layout:
    """Neurons ``shape`` flattened to ``[size]``, padded to ``[padded]``, in blocks."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape
        self.size = math.prod(shape)
        self.block = min(BLOCK_SIZE, pl.next_power_of_2(self.size))
        self.padded = self.block * pl.cdiv(self.size, self.block)

    def flat(self, a: jax.Array, fill: float = 0.0) -> jax.Array:
        """``a`` broadcast to ``[..., *shape]`` (leading axes kept), as ``[..., padded]``."""
        lead = a.shape[: max(a.ndim - len(self.shape), 0)]
        a = jnp.broadcast_to(a, lead + self.shape).reshape(*lead, self.size)
        pad = [(0, 0)] * len(lead) + [(0, self.padded - self.size)]
        return jnp.pad(a, pad, constant_values=fill) if self.padded != self.size else a

    def unflat(self, a: jax.Array) -> jax.Array:
        """The inverse of :meth:`flat`: ``[..., padded] -> [..., *shape]``."""
        return a[..., : self.size].reshape(*a.shape[:-1], *self.shape)

    def spec(self, steps: int | None) -> pl.BlockSpec:
        """Blocks of ``[steps, block]`` (all of time) or of ``[block]``."""
        if steps is None:
            return pl.BlockSpec((self.block,), lambda i: (i,))
        return pl.BlockSpec((steps, self.block), lambda i: (0, i))

    def call(self, kernel, in_steps, out_steps, out_dtypes, interpret: bool):
        """``pallas_call`` over the blocks: inputs/outputs with ``steps`` (or ``None``) each."""
        return pl.pallas_call(
            kernel,
            grid=(self.padded // self.block,),
            in_specs=[self.spec(s) for s in in_steps],
            out_specs=[self.spec(s) for s in out_steps],
            out_shape=[
                jax.ShapeDtypeStruct(((s,) if s else ()) + (self.padded,), d)
                for s, d in zip(out_steps, out_dtypes, strict=True)
            ],
            interpret=interpret,
            compiler_params=None if interpret else pl_triton.CompilerParams(num_warps=NUM_WARPS),
        )


# ----------------------------------------------------------------------------- forward


def _forward_kernel(opts: Options, steps: int, save_charges: bool, *refs):
    x_ref, v0_ref, inv_tau_ref, vth_ref, rest_ref, spikes_ref, *outs = refs
    membranes_ref = outs.pop(0) if opts.return_membrane else None
    charges_ref = outs.pop(0) if save_charges else None
    inv_tau, vth, rest = inv_tau_ref[...], vth_ref[...], rest_ref[...]
    constant = x_ref[...] if opts.time_steps else None

    def step(t, v):
        h = charge(opts, v, constant if opts.time_steps else x_ref[t, :], inv_tau, rest)
        s = heaviside(h - vth)
        v = reset(h, s, vth, rest, opts.soft)
        spikes_ref[t, :] = s
        if membranes_ref is not None:
            membranes_ref[t, :] = v
        if charges_ref is not None:
            charges_ref[t, :] = h
        return v

    jax.lax.fori_loop(0, steps, step, v0_ref[...])


def _forward(opts: Options, x, v0, tau, vth, rest, save_charges: bool):
    """``(spikes, membranes or None, charges or None)``; charges stay flat ``[T, padded]``."""
    layout = _Layout(v0.shape)
    steps = opts.time_steps or x.shape[0]
    outputs = 1 + opts.return_membrane + save_charges
    args = (
        layout.flat(x),
        layout.flat(v0),
        layout.flat(1 / tau, fill=1.0),
        layout.flat(vth, fill=1.0),
        layout.flat(rest),
    )
    in_steps = [None if opts.time_steps else steps] + [None] * 4

    def call(*args, interpret):
        kernel = functools.partial(_forward_kernel, opts, steps, save_charges)
        run = layout.call(kernel, in_steps, [steps] * outputs, [x.dtype] * outputs, interpret)
        return run(*args)

    results = list(_on_each_platform(call, *args))
    spikes = layout.unflat(results.pop(0))
    membranes = layout.unflat(results.pop(0)) if opts.return_membrane else None
    charges = results.pop(0) if save_charges else None
    return spikes, membranes, charges


# ----------------------------------------------------------------------------- backward


def _backward_kernel(opts: Options, steps: int, name: str, *refs):
    """Cotangents of one block over reversed time (equations in the module docstring)."""
    refs = list(refs)
    d_spikes_ref = refs.pop(0)
    d_membranes_ref = refs.pop(0) if opts.return_membrane else None
    h_ref, v0_ref, inv_tau_ref, vth_ref, rest_ref, alpha_ref = refs[:6]
    dx_ref, dv0_ref, dtau_ref, dvth_ref, drest_ref = refs[6:]

    def load(ref, *index):  # the backward pass computes in float32
        return ref[index or ...].astype(jnp.float32)

    v0, inv_tau, vth, rest = load(v0_ref), load(inv_tau_ref), load(vth_ref), load(rest_ref)
    surrogate = Surrogate(name, load(alpha_ref))
    one, zero = jnp.ones_like(inv_tau), jnp.zeros_like(inv_tau)
    leak = 1 - inv_tau if opts.leaky else one
    gain = inv_tau if opts.leaky and opts.decay_input else one

    def step(i, carry):
        t = steps - 1 - i
        dv, dtau, dvth, drest, dx_sum = carry
        h = load(h_ref, t, slice(None))
        u = h - vth
        s = heaviside(u)
        if opts.return_membrane:
            dv = dv + load(d_membranes_ref, t, slice(None))
        ds = load(d_spikes_ref, t, slice(None))
        if opts.soft:
            dh = dv
            ds = ds if opts.detach_reset else ds - vth * dv
            dvth = dvth - s * dv
        else:
            dh = (1 - s) * dv
            ds = ds if opts.detach_reset else ds + (rest - h) * dv
            drest = drest + s * dv
        through_spike = surrogate.grad(u) * ds
        dh = dh + through_spike
        dvth = dvth - through_spike
        if opts.leaky:
            h_before = load(h_ref, jnp.maximum(t - 1, 0), slice(None))
            v_before = reset(h_before, heaviside(h_before - vth), vth, rest, opts.soft)
            v_before = jnp.where(t > 0, v_before, v0)
            if opts.decay_input:
                dtau = dtau - dh * (h - v_before) * inv_tau
            else:
                dtau = dtau + dh * (v_before - rest) * inv_tau * inv_tau
            if not opts.soft:
                drest = drest + dh * inv_tau
        dx = gain * dh
        if opts.time_steps:
            dx_sum = dx_sum + dx
        else:
            dx_ref[t, :] = dx.astype(dx_ref.dtype)
        return leak * dh, dtau, dvth, drest, dx_sum

    dv, dtau, dvth, drest, dx_sum = jax.lax.fori_loop(
        0, steps, step, (zero, zero, zero, zero, zero)
    )
    if opts.time_steps:
        dx_ref[...] = dx_sum.astype(dx_ref.dtype)
    dv0_ref[...] = dv.astype(dv0_ref.dtype)
    dtau_ref[...] = dtau
    dvth_ref[...] = dvth
    drest_ref[...] = drest


def _summed_to(full: jax.Array, like: jax.Array) -> jax.Array:
    """A per-neuron float32 cotangent summed over the axes where the parameter ``like`` has
    size 1 (it was broadcast there), in ``like``'s dtype."""
    axes = tuple(i for i, (a, b) in enumerate(zip(like.shape, full.shape, strict=True)) if a != b)
    return jnp.sum(full, axis=axes, keepdims=True).astype(like.dtype)


def _backward(opts: Options, residuals, cotangents):
    charges, v0, tau, vth, rest, surrogate = residuals
    d_spikes, d_membranes = cotangents if opts.return_membrane else (cotangents, None)
    layout = _Layout(v0.shape)
    steps = charges.shape[0]
    dtype = v0.dtype
    alpha = jnp.asarray(surrogate.alpha, dtype)
    args = [layout.flat(d_spikes)]
    if opts.return_membrane:
        args.append(layout.flat(d_membranes))
    args += [
        charges,
        layout.flat(v0),
        layout.flat(1 / tau, fill=1.0),
        layout.flat(vth, fill=1.0),
        layout.flat(rest),
        layout.flat(alpha, fill=1.0),
    ]
    in_steps = [steps] * (1 + opts.return_membrane) + [steps] + [None] * 5
    out_steps = [None if opts.time_steps else steps] + [None] * 4
    out_dtypes = [dtype, dtype] + [jnp.float32] * 3

    def call(*args, interpret):
        kernel = functools.partial(_backward_kernel, opts, steps, surrogate.name)
        return layout.call(kernel, in_steps, out_steps, out_dtypes, interpret)(*args)

    dx, dv0, dtau, dvth, drest = (layout.unflat(a) for a in _on_each_platform(call, *args))
    no_alpha = jax.tree.map(jnp.zeros_like, surrogate)
    d_tau = _summed_to(dtau, tau) if opts.leaky else jnp.zeros_like(tau)
    d_rest = jnp.zeros_like(rest) if opts.soft else _summed_to(drest, rest)
    return dx, dv0, d_tau, _summed_to(dvth, vth), d_rest, no_alpha


# ----------------------------------------------------------------------------- the layer


def _outputs(opts: Options, spikes, membranes):
    return (spikes, membranes) if opts.return_membrane else spikes


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def layer(opts: Options, x, v0, tau, vth, rest, surrogate: Surrogate):
    """The fused layer: arguments as the scan engine's (parameters aligned to the neurons'
    rank, in ``x``'s dtype); returns spikes, or ``(spikes, membranes)``."""
    spikes, membranes, _ = _forward(opts, x, v0, tau, vth, rest, save_charges=False)
    return _outputs(opts, spikes, membranes)


def _layer_fwd(opts: Options, x, v0, tau, vth, rest, surrogate):
    spikes, membranes, charges = _forward(opts, x, v0, tau, vth, rest, save_charges=True)
    return _outputs(opts, spikes, membranes), (charges, v0, tau, vth, rest, surrogate)


layer.defvjp(_layer_fwd, _backward)
