"""The fused Pallas backend (interpret mode on CPU) against the scan backend, the reference.

Spikes and membranes must be equal to the bit, gradients equal up to float rounding, on every
option of the engine (the option grid of test_spiking.py, where the scan itself is checked
against an autodiff scan written independently).
"""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from jaxprs import loops_and_kernels
from test_spiking import ENGINE_OPTIONS, _parameters

from dsqn import spiking
from dsqn.spiking import fused

KINDS = ("scalar", "per_neuron", "per_channel")


def _layer(leaky, decay_input, detach, surrogate, backend, **options):
    def run(x, v0, tau, vth, vr):
        common = dict(
            v_threshold=vth, v_reset=vr, v_init=v0, detach_reset=detach, surrogate=surrogate,
            backend=backend, **options,
        )  # fmt: skip
        if leaky:
            return spiking.lif(x, tau=tau, decay_input=decay_input, **common)
        return spiking.integrate_and_fire(x, **common)

    return run


def _values_and_gradients(layer, g, g2, argnums):
    """``(spikes, membranes)`` and the gradients of a loss on spikes and (nonlinearly) on
    membranes, in one jitted program."""

    def loss(*args):
        spikes, membranes = layer(*args)
        return jnp.sum(spikes * g) + jnp.sum(jnp.sin(membranes) * g2), (spikes, membranes)

    return jax.jit(jax.grad(loss, argnums, has_aux=True))


def _counts(fn, *args) -> tuple[int, int]:
    """``(loops, fused kernels)`` that ``fn(*args)`` runs."""
    return loops_and_kernels(jax.make_jaxpr(fn)(*args).jaxpr)


def _assert_close(grads, expected, argnums, rtol):
    for i, a, b in zip(argnums, grads, expected, strict=True):
        scale = float(jnp.abs(b.astype(jnp.float32)).max())
        assert scale > 0, f"argument {i} has no gradient"
        assert a.shape == b.shape and a.dtype == b.dtype, i
        np.testing.assert_allclose(
            np.asarray(a, np.float32), np.asarray(b, np.float32), atol=rtol * scale, err_msg=i
        )


@pytest.mark.parametrize(
    "case", range(len(ENGINE_OPTIONS)), ids=[f"options{i}" for i in range(len(ENGINE_OPTIONS))]
)
def test_fused_equals_scan_on_every_option(case, monkeypatch):
    """Each option row with scalar, per-neuron or per-channel parameters in turn, in blocks of
    16 neurons (35 neurons: three blocks, the last one padded)."""
    monkeypatch.setattr(fused, "BLOCK_SIZE", 16)
    leaky, decay_input, v_reset, detach, surrogate = ENGINE_OPTIONS[case]
    rng = np.random.default_rng(case)
    x = jnp.asarray(rng.normal(size=(12, 5, 7)) * 1.5, jnp.float32)
    g, g2 = (jnp.asarray(rng.normal(size=(12, 5, 7)), jnp.float32) for _ in range(2))
    v_init = jnp.asarray(rng.normal(size=(5, 7)) * 0.3, jnp.float32)
    tau, vth, vr = _parameters(KINDS[case % 3], rng)
    hard = v_reset is not None
    vr = (vr + v_reset) if hard else None
    args = (x, v_init, tau, vth, vr)
    argnums = tuple(i for i in range(5) if (i != 2 or leaky) and (i != 4 or hard))
    programs = {
        backend: _values_and_gradients(
            _layer(leaky, decay_input, detach, surrogate, backend, return_membrane=True),
            g,
            g2,
            argnums,
        )
        for backend in ("scan", "pallas")
    }
    assert _counts(programs["pallas"], *args) == (0, 2)  # one kernel forward, one backward
    run = {backend: program(*args) for backend, program in programs.items()}
    (grads, (spikes, membranes)), (expected, (ref_spikes, ref_membranes)) = (
        run["pallas"],
        run["scan"],
    )
    np.testing.assert_array_equal(np.asarray(spikes), np.asarray(ref_spikes))
    np.testing.assert_array_equal(np.asarray(membranes), np.asarray(ref_membranes))
    assert 0 < float(spikes.mean()) < 1  # both firing and silent steps
    _assert_close(grads, expected, argnums, rtol=2e-5)


@pytest.mark.parametrize("leaky", [True, False])
def test_fused_direct_encoding_sums_the_input_gradient_in_the_kernel(leaky):
    """``time_steps=T``: the same values and gradients as the scan, and the backward kernel
    returns the input's gradient summed over time (no ``[T, ...]`` output)."""
    rng = np.random.default_rng(11)
    c = jnp.asarray(rng.normal(size=(4, 6)) * 1.5, jnp.float32)
    g, g2 = (jnp.asarray(rng.normal(size=(9, 4, 6)), jnp.float32) for _ in range(2))
    v0 = jnp.zeros((4, 6))
    args = (c, v0, jnp.float32(1.7), jnp.float32(0.8), jnp.float32(0.0))
    argnums = (0, 1, 2, 3, 4) if leaky else (0, 1, 3, 4)
    options = dict(return_membrane=True, time_steps=9)
    out = {
        backend: _values_and_gradients(
            _layer(leaky, True, False, spiking.atan(), backend, **options), g, g2, argnums
        )
        for backend in ("scan", "pallas")
    }
    (grads, values), (expected, ref_values) = out["pallas"](*args), out["scan"](*args)
    for a, b in zip(values, ref_values, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _assert_close(grads, expected, argnums, rtol=2e-5)
    jaxpr = jax.make_jaxpr(out["pallas"])(*args).jaxpr
    launches = _pallas_output_shapes(jaxpr)
    assert len(launches) == 2  # one forward kernel, one backward kernel
    backward = launches[-1]
    assert all(len(shape) == 1 for shape in backward), backward  # per neuron, not [T, N]


def _pallas_output_shapes(jaxpr):
    """The output shapes of each fused kernel (the interpreted CPU one of each platform pair)."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "pallas_call":
            found += [[v.aval.shape for v in eqn.outvars]] if eqn.params["interpret"] else []
            continue
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _pallas_output_shapes(sub)
    return found


def test_fused_parameters_trace_vmap_and_differentiate():
    """A vmapped sweep over tau (and the threshold) is one program whose members equal the
    scan's, with the same gradients with respect to tau."""
    x = jnp.asarray(np.random.default_rng(6).uniform(0, 2.5, size=(16, 3, 4)), jnp.float32)
    taus = jnp.array([1.5, 2.0, 4.0])

    def rate(tau, v_threshold, backend):
        spikes = spiking.lif(x, tau=tau, v_threshold=v_threshold, backend=backend)
        return spiking.spike_rate(spikes).mean()

    def sweep(backend):
        value_and_grad = jax.value_and_grad(rate, (0, 1))
        return jax.jit(jax.vmap(value_and_grad, in_axes=(0, 0, None)), static_argnums=2)

    thresholds = jnp.array([0.9, 1.0, 1.1])
    assert _counts(lambda *a: sweep("pallas")(*a, "pallas"), taus, thresholds) == (0, 2)
    (rates, grads), (ref_rates, ref_grads) = (
        sweep(b)(taus, thresholds, b) for b in ("pallas", "scan")
    )
    np.testing.assert_array_equal(np.asarray(rates), np.asarray(ref_rates))
    assert len(set(np.asarray(rates).tolist())) == 3  # the sweep changes the firing
    for a, b in zip(grads, ref_grads, strict=True):
        assert float(jnp.abs(b).min()) > 0
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5)


def test_fused_bfloat16_values_equal_and_gradients_close():
    rng = np.random.default_rng(9)
    x = jnp.asarray(rng.normal(size=(16, 4, 5)) * 1.5, jnp.bfloat16)
    g = jnp.asarray(rng.normal(size=(16, 4, 5)), jnp.bfloat16)

    def loss(x, tau, backend):
        spikes, v = spiking.lif(x, tau=tau, v_reset=None, return_membrane=True, backend=backend)
        return jnp.sum((spikes * g + v * g).astype(jnp.float32)), (spikes, v)

    run = jax.jit(jax.grad(loss, (0, 1), has_aux=True), static_argnums=2)
    assert _counts(lambda *a: run(*a, "pallas"), x, jnp.float32(1.7)) == (0, 2)
    (grads, values), (expected, ref_values) = (
        run(x, jnp.float32(1.7), b) for b in ("pallas", "scan")
    )
    for a, b in zip(values, ref_values, strict=True):
        assert a.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    assert grads[0].dtype == jnp.bfloat16 and grads[1].dtype == jnp.float32
    # The kernel sums the parameter's gradient in float32, the scan in bfloat16.
    _assert_close(grads, expected, (0, 1), rtol=3e-2)


@pytest.mark.parametrize("readout", ["if", "lif"])
def test_fused_membrane_readout_equals_scan(readout):
    x = jnp.asarray(np.random.default_rng(10).normal(size=(9, 3)) * 4, jnp.float32)

    def loss(x, tau, backend):
        v = spiking.membrane(x, neuron=readout, tau=tau, decoder="max", backend=backend)
        return jnp.sum(v**2), v

    run = jax.jit(jax.grad(loss, (0, 1), has_aux=True), static_argnums=2)
    assert _counts(lambda *a: run(*a, "pallas"), x, 2.0) == (0, 2)
    (grads, q), (expected, ref_q) = (run(x, 2.0, b) for b in ("pallas", "scan"))
    np.testing.assert_array_equal(np.asarray(q), np.asarray(ref_q))
    _assert_close(grads[:1], expected[:1], (0,), rtol=1e-6)
    if readout == "lif":
        _assert_close(grads[1:], expected[1:], (1,), rtol=1e-5)


def test_fused_forward_mode_and_bad_backends_raise_clear_errors(monkeypatch):
    x = jnp.ones((4, 3)) * 1.2
    with pytest.raises(TypeError, match="forward-mode autodiff.*custom_vjp"):
        jax.jvp(lambda t: spiking.lif(x, tau=t, backend="pallas"), (2.0,), (1.0,))
    with pytest.raises(ValueError, match=r"unknown neuron backend 'cuda'.*'scan', 'pallas'"):
        spiking.lif(x, backend="cuda")
    with pytest.raises(ValueError, match="unknown neuron backend"):
        spiking.membrane(x, backend="triton")
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    with pytest.raises(ValueError, match="backend='pallas' runs on CPU.*not on 'tpu'"):
        spiking.integrate_and_fire(x, backend="pallas")


def _triton_launches(fn, *args) -> int:
    """How many Triton kernels ``fn`` has once lowered for an NVIDIA GPU (no GPU needed)."""
    text = jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()
    return text.count("__gpu$xla.gpu.triton")


@pytest.mark.parametrize("case", [0, 1, 2, 3, 6])
def test_fused_kernels_lower_to_triton_for_cuda(case):
    """The compiled path (Pallas -> Triton IR) accepts every kernel: each surrogate, hard and
    soft reset, membranes, direct encoding, bfloat16. One kernel forward, one backward."""
    leaky, decay_input, v_reset, detach, surrogate = ENGINE_OPTIONS[case]
    dtype = jnp.bfloat16 if case == 3 else jnp.float32
    x = jnp.ones((64, 6, 100), dtype)
    layer = _layer(leaky, decay_input, detach, surrogate, "pallas", return_membrane=case == 1)
    args = (x, jnp.zeros((6, 100), dtype), 2.0, 1.0, v_reset)

    def loss(x, *rest):
        out = layer(x, *rest)
        return jnp.sum(jnp.stack(out) if case == 1 else out)

    assert _triton_launches(layer, *args) == 1
    assert _triton_launches(jax.grad(loss), *args) == 2
    direct = _layer(leaky, decay_input, detach, surrogate, "pallas", time_steps=64)
    assert _triton_launches(jax.grad(lambda x, *r: jnp.sum(direct(x, *r))), x[0], *args[1:]) == 2
