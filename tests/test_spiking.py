"""dsqn.spiking against hand-computed dynamics and the surrogate formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from processes import python

from dsqn import spiking


def lif_reference(x, tau, v_th, v_reset, decay_input=True, leak=True):
    """A plain-Python LIF/IF, written independently of the library."""
    rest = 0.0 if v_reset is None else v_reset
    v = rest
    spikes, vs = [], []
    for xt in x:
        if not leak:
            h = v + xt
        elif decay_input:
            h = v + (xt - (v - rest)) / tau
        else:
            h = v - (v - rest) / tau + xt
        s = 1.0 if h >= v_th else 0.0
        v = (h - v_th * s) if v_reset is None else (h * (1 - s) + v_reset * s)
        spikes.append(s)
        vs.append(v)
    return np.array(spikes), np.array(vs)


@pytest.mark.parametrize("x_value", [0.75, 1.5, 3.0, 10.0])
def test_lif_constant_input_fires_at_closed_form_times(x_value):
    # From V = 0, k steps of constant X give V_k = X (1 - (1 - 1/tau)^k); hard reset restarts
    # the same trajectory, so the neuron fires every k* = min{k : V_k >= V_th} steps.
    tau, v_th, steps = 2.0, 1.0, 40
    k_star = next((k for k in range(1, 100) if x_value * (1 - (1 - 1 / tau) ** k) >= v_th), None)
    spikes = np.asarray(spiking.lif(jnp.full((steps,), x_value), tau=tau, v_threshold=v_th))
    expected = np.zeros(steps)
    if k_star is not None:
        expected[k_star - 1 :: k_star] = 1.0
    np.testing.assert_array_equal(spikes, expected)


def test_lif_below_rheobase_never_fires():
    # The LIF membrane converges to X < V_th: no spike ever.
    assert float(spiking.lif(jnp.full((200,), 0.99)).sum()) == 0.0


@pytest.mark.parametrize("v_reset", [0.0, -0.5, 0.3, None])
@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_matches_reference_on_random_input(v_reset, decay_input):
    x = np.random.default_rng(0).uniform(-0.5, 2.5, size=64).astype(np.float32)
    spikes, v = spiking.lif(
        jnp.asarray(x), tau=2.0, v_reset=v_reset, decay_input=decay_input, return_membrane=True
    )
    ref_s, ref_v = lif_reference(x, 2.0, 1.0, v_reset, decay_input)
    np.testing.assert_array_equal(np.asarray(spikes), ref_s)
    np.testing.assert_allclose(np.asarray(v), ref_v, rtol=1e-5, atol=1e-6)
    assert ref_s.sum() >= 3  # the comparison covers both firing and silent steps


def test_hard_and_soft_reset_differ_as_defined():
    x = jnp.array([1.0, 1.0, 1.0])  # IF: H = 1, then fire
    hard = spiking.integrate_and_fire(x * 1.5, return_membrane=True)[1]
    soft = spiking.integrate_and_fire(x * 1.5, v_reset=None, return_membrane=True)[1]
    # hard: V = 0 after each spike; soft: V = H - 1: 0.5, then 2.0 - 1 = 1.0, then 2.5 - 1 = 1.5
    np.testing.assert_allclose(np.asarray(hard), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(np.asarray(soft), [0.5, 1.0, 1.5])


def test_integrate_and_fire_soft_reset_counts_exactly():
    # With soft reset and 0 < X <= V_th, the cumulative count is floor((t + 1) X / V_th).
    x = 0.25
    spikes = np.asarray(spiking.integrate_and_fire(jnp.full((32,), x), v_reset=None))
    np.testing.assert_array_equal(np.cumsum(spikes), np.floor((np.arange(32) + 1) * x))


def test_if_matches_reference():
    x = np.random.default_rng(1).uniform(-0.2, 0.9, size=50).astype(np.float32)
    s = spiking.integrate_and_fire(jnp.asarray(x), v_threshold=1.0)
    np.testing.assert_array_equal(np.asarray(s), lif_reference(x, 1.0, 1.0, 0.0, leak=False)[0])


def test_v_init_and_threshold_equality_fires():
    # Heaviside(0) = 1: H exactly at threshold fires.
    s = spiking.integrate_and_fire(jnp.array([0.5]), v_init=jnp.array(0.5))
    assert float(s[0]) == 1.0


def test_single_step_forms_compose_to_multi_step():
    x = jnp.asarray(np.random.default_rng(2).uniform(0, 2, size=(10, 3)), jnp.float32)
    v = jnp.zeros(3)
    outs = []
    for t in range(10):
        v, s = spiking.lif_step(v, x[t])
        outs.append(s)
    np.testing.assert_array_equal(np.stack(outs), np.asarray(spiking.lif(x)))


SURROGATE_FORMULAS = {
    "atan": lambda x, a: (a / 2) / (1 + (math.pi / 2 * a * x) ** 2),
    "sigmoid": lambda x, a: a * (1 / (1 + math.exp(-a * x))) * (1 - 1 / (1 + math.exp(-a * x))),
    "piecewise_quadratic": lambda x, a: max(a - a * a * abs(x), 0.0),
    "fast_sigmoid": lambda x, a: 1 / (1 + a * abs(x)) ** 2,
}


@pytest.mark.parametrize("name", sorted(SURROGATE_FORMULAS))
@pytest.mark.parametrize("x", [-1.3, -0.4, -0.1, 0.0, 0.05, 0.3, 2.0])
def test_surrogate_forward_is_heaviside_and_grad_is_formula(name, x):
    alpha = {"atan": 2.0, "sigmoid": 4.0, "piecewise_quadratic": 1.5, "fast_sigmoid": 5.0}[name]
    f = spiking.get_surrogate(name, alpha)
    assert float(f(jnp.float32(x))) == (1.0 if x >= 0 else 0.0)
    np.testing.assert_allclose(
        float(jax.grad(f)(jnp.float32(x))), SURROGATE_FORMULAS[name](x, alpha), rtol=1e-4
    )


def test_surrogate_defaults_and_errors():
    assert spiking.atan() == spiking.Surrogate("atan", 2.0)
    assert spiking.sigmoid().alpha == 4.0
    with pytest.raises(ValueError, match="valid surrogates"):
        spiking.get_surrogate("nope")
    with pytest.raises(ValueError, match="alpha"):
        spiking.atan(0.0)


def test_surrogate_under_jvp_and_vmap():
    f = spiking.atan()
    x = jnp.array([-0.5, 0.0, 0.5])
    primal, tangent = jax.jvp(f, (x,), (jnp.ones(3),))
    np.testing.assert_array_equal(np.asarray(primal), [0, 1, 1])
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(jax.vmap(jax.grad(f))(x)))


def test_detach_reset_changes_gradients_not_values():
    x = jnp.asarray(np.random.default_rng(3).uniform(0, 2, size=(16, 4)), jnp.float32)

    def loss(x, detach):
        return jnp.sum(spiking.lif(x, detach_reset=detach) * jnp.arange(16.0)[:, None])

    np.testing.assert_array_equal(
        np.asarray(spiking.lif(x, detach_reset=True)), np.asarray(spiking.lif(x))
    )
    g_attached, g_detached = jax.grad(loss)(x, False), jax.grad(loss)(x, True)
    assert np.all(np.isfinite(np.asarray(g_attached)))
    assert not np.allclose(np.asarray(g_attached), np.asarray(g_detached))


def _autodiff_layer(kind, return_membrane, v_init, **kw):
    """The layer as a plain ``lax.scan`` of the single-step form, differentiated by autodiff."""
    step = spiking.lif_step if kind == "lif" else spiking.if_step

    def layer(x):
        v0 = spiking.initial_membrane(x.shape[1:], x.dtype, kw.get("v_reset", 0.0), v_init)

        def body(v, xt):
            v, s = step(v, xt, **kw)
            return v, (s, v) if return_membrane else s

        return jax.lax.scan(body, v0, x)[1]

    return layer


@pytest.mark.parametrize("kind", ["lif", "if"])
@pytest.mark.parametrize(
    "v_reset,detach_reset,decay_input,tau",
    [(0.0, False, True, 2.0), (None, False, False, 1.7), (-0.2, True, True, 3.0),
     (None, True, True, 2.0), (0.0, False, False, 1.3)],
)  # fmt: skip
@pytest.mark.parametrize("return_membrane", [False, True])
def test_hand_written_backward_equals_autodiff(
    kind, v_reset, detach_reset, decay_input, tau, return_membrane
):
    """Same spikes and membranes as the single-step scan, and the same gradients with respect
    to the inputs and the initial membrane (loss on spikes and, nonlinearly, on membranes)."""
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(12, 5, 7)) * 1.5, jnp.float32)
    g = jnp.asarray(rng.normal(size=(12, 5, 7)), jnp.float32)
    v_init = jnp.asarray(rng.normal(size=(5, 7)) * 0.3, jnp.float32)
    kw = dict(v_reset=v_reset, detach_reset=detach_reset, v_threshold=0.9)
    kw["surrogate"] = spiking.sigmoid(4.0) if detach_reset else spiking.atan(2.0)
    if kind == "lif":
        kw.update(tau=tau, decay_input=decay_input)
    fast_fn = spiking.lif if kind == "lif" else spiking.integrate_and_fire

    def loss(layer):
        def value(x, v):
            out = layer(x, v)
            if return_membrane:
                return jnp.sum(out[0] * g) + jnp.sum(jnp.sin(out[1]) * g)
            return jnp.sum(out * g)

        return value

    def fast(x, v):
        return fast_fn(x, v_init=v, return_membrane=return_membrane, **kw)

    def slow(x, v):
        return _autodiff_layer(kind, return_membrane, v, **kw)(x)

    for a, b in zip(
        jax.tree.leaves(jax.jit(fast)(x, v_init)),
        jax.tree.leaves(jax.jit(slow)(x, v_init)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    grads_fast = jax.jit(jax.grad(loss(fast), argnums=(0, 1)))(x, v_init)
    grads_slow = jax.jit(jax.grad(loss(slow), argnums=(0, 1)))(x, v_init)
    for a, b in zip(grads_fast, grads_slow, strict=True):
        assert float(jnp.abs(b).max()) > 0
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), atol=1e-6 * float(jnp.abs(b).max())
        )


def test_shapes_jit_vmap_grad_compose():
    x = jnp.ones((3, 8, 5))  # vmapped batch of [T, ...]
    f = jax.jit(jax.vmap(lambda x: spiking.lif(x, tau=3.0)))
    assert f(x).shape == (3, 8, 5)
    g = jax.grad(lambda x: jnp.sum(jax.vmap(spiking.lif)(x)))(x * 0.9)
    assert g.shape == x.shape and float(jnp.abs(g).sum()) > 0
    s, v = spiking.integrate_and_fire(jnp.ones((4, 2, 2)), return_membrane=True)
    assert s.shape == v.shape == (4, 2, 2)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_preserved(dtype):
    x = jnp.ones((8, 3), dtype) * 1.5
    for fn in (spiking.lif, spiking.integrate_and_fire):
        s, v = fn(x, return_membrane=True)
        assert s.dtype == dtype and v.dtype == dtype
        assert jax.grad(lambda x, fn=fn: fn(x).astype(jnp.float32).sum())(x).dtype == dtype
    assert spiking.membrane(x).dtype == dtype
    assert spiking.atan()(x).dtype == dtype


def test_readouts():
    spikes = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(np.asarray(spiking.spike_rate(spikes)), [0.75, 0.75])
    x = jnp.array([2.0, 0.0, 0.0])  # V: 1.0, 0.5, 0.25 with tau = 2
    np.testing.assert_allclose(np.asarray(spiking.membrane_trace(x)), [1.0, 0.5, 0.25])
    assert float(spiking.membrane(x, decoder="max")) == 1.0
    assert float(spiking.membrane(x, decoder="last")) == 0.25
    np.testing.assert_allclose(float(spiking.membrane(x, decoder="mean")), 1.75 / 3)
    with pytest.raises(ValueError, match="decoder"):
        spiking.membrane(x, decoder="min")


def test_encodings():
    x = jnp.array([0.0, 0.5, 1.0])
    d = spiking.direct(x, 5)
    assert d.shape == (5, 3) and bool(jnp.all(d == x[None]))
    p = spiking.poisson(jax.random.key(0), x, 2000)
    np.testing.assert_allclose(np.asarray(p.mean(0)), [0.0, 0.5, 1.0], atol=0.04)
    with pytest.raises(ValueError, match="time_steps"):
        spiking.direct(x, 0)


def test_importing_spiking_does_not_import_flax():
    code = "import sys, dsqn.spiking; assert 'flax' not in sys.modules, 'flax imported'"
    python(code, timeout=120, check=True)
