"""dsqn.spiking against hand-computed dynamics and the surrogate formulas."""

import itertools
import math

import jax
import jax.extend.core
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


def reference_layer(x, v0, tau, v_threshold, v_reset, *, leaky, decay_input, detach, surrogate):
    """The layer's equations as a plain ``lax.scan``, differentiated by autodiff: written here,
    independently of the engine. Parameters are broadcast explicitly to the neuron shape."""
    shape = v0.shape
    tau, v_threshold = jnp.broadcast_to(tau, shape), jnp.broadcast_to(v_threshold, shape)
    soft = v_reset is None
    rest = jnp.zeros(shape) if soft else jnp.broadcast_to(v_reset, shape)

    def step(v, x_t):
        if not leaky:
            h = v + x_t
        elif decay_input:
            h = v + (x_t - (v - rest)) / tau
        else:
            h = v - (v - rest) / tau + x_t
        s = surrogate(h - v_threshold)
        s_reset = jax.lax.stop_gradient(s) if detach else s
        v = h - v_threshold * s_reset if soft else h * (1 - s_reset) + rest * s_reset
        return v, (s, v)

    return jax.lax.scan(step, v0, x)[1]


# Each option value meets each other option's values and every surrogate at least once.
ENGINE_OPTIONS = [
    # leaky, decay_input, v_reset, detach, surrogate
    (True, True, 0.0, False, spiking.atan(2.0)),
    (True, False, None, False, spiking.sigmoid(4.0)),
    (True, True, -0.2, True, spiking.piecewise_quadratic(1.0)),
    (True, True, None, True, spiking.fast_sigmoid(5.0)),
    (True, False, 0.3, True, spiking.atan(3.0)),
    (False, True, 0.0, False, spiking.sigmoid(4.0)),
    (False, True, None, True, spiking.atan(2.0)),
    (False, True, -0.1, True, spiking.piecewise_quadratic(1.5)),
    (False, True, None, False, spiking.fast_sigmoid(3.0)),
]


def _parameters(kind, rng):
    """tau, v_threshold, v_reset as scalars, per channel [7] or per neuron [5, 7]."""
    if kind == "scalar":
        return jnp.float32(1.7), jnp.float32(0.9), jnp.float32(0.1)
    shape = (7,) if kind == "per_channel" else (5, 7)
    return (
        jnp.asarray(rng.uniform(1.2, 3.0, shape), jnp.float32),
        jnp.asarray(rng.uniform(0.6, 1.2, shape), jnp.float32),
        jnp.asarray(rng.uniform(-0.3, 0.3, shape), jnp.float32),
    )


@pytest.mark.parametrize(
    "leaky,decay_input,v_reset,detach,surrogate,kind",
    [(*options, kind) for kind in ("scalar", "per_neuron") for options in ENGINE_OPTIONS]
    + [(*options, "per_channel") for options in ENGINE_OPTIONS[:2]],
)
def test_engine_values_and_gradients_equal_autodiff_of_a_plain_scan(
    leaky, decay_input, v_reset, detach, surrogate, kind
):
    """Same spikes and membranes as the plain scan, and the same gradients with respect to the
    input, the initial membrane and every neuron parameter (loss on spikes and, nonlinearly,
    on membranes)."""
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(12, 5, 7)) * 1.5, jnp.float32)
    g, g2 = (jnp.asarray(rng.normal(size=(12, 5, 7)), jnp.float32) for _ in range(2))
    v_init = jnp.asarray(rng.normal(size=(5, 7)) * 0.3, jnp.float32)
    tau, vth, vr = _parameters(kind, rng)
    hard = v_reset is not None
    vr = (vr + v_reset) if hard else None
    options = dict(detach_reset=detach, surrogate=surrogate, return_membrane=True)

    def engine(x, v0, tau, vth, vr):
        if leaky:
            return spiking.lif(
                x, tau=tau, v_threshold=vth, v_reset=vr, decay_input=decay_input, v_init=v0,
                **options,
            )  # fmt: skip
        return spiking.integrate_and_fire(x, v_threshold=vth, v_reset=vr, v_init=v0, **options)

    def reference(x, v0, tau, vth, vr):
        return reference_layer(
            x, v0, tau, vth, vr,
            leaky=leaky, decay_input=decay_input, detach=detach, surrogate=surrogate,
        )  # fmt: skip

    def loss(layer):
        def value(*args):
            spikes, membranes = layer(*args)
            return jnp.sum(spikes * g) + jnp.sum(jnp.sin(membranes) * g2)

        return value

    args = (x, v_init, tau, vth, vr)
    (spikes, membranes), (ref_spikes, ref_membranes) = jax.jit(engine)(*args), reference(*args)
    np.testing.assert_array_equal(np.asarray(spikes), np.asarray(ref_spikes))
    # XLA may round a division by a traced parameter differently in the two programs (1 ulp).
    np.testing.assert_allclose(np.asarray(membranes), np.asarray(ref_membranes), atol=1e-6)
    assert 0 < float(spikes.mean()) < 1  # both firing and silent steps

    argnums = tuple(i for i in range(5) if (i != 2 or leaky) and (i != 4 or hard))
    grads = jax.jit(jax.grad(loss(engine), argnums))(*args)
    expected = jax.jit(jax.grad(loss(reference), argnums))(*args)
    for i, a, b in zip(argnums, grads, expected, strict=True):
        scale = float(jnp.abs(b).max())
        assert scale > 0, f"argument {i} has no gradient"
        assert a.shape == b.shape == args[i].shape
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5 * scale, err_msg=i)
    tangents = [jnp.asarray(rng.normal(size=np.shape(args[i])), jnp.float32) for i in argnums]

    def along(layer):
        def f(*moved):
            full = list(args)
            for i, value in zip(argnums, moved, strict=True):
                full[i] = value
            return loss(layer)(*full)

        return f

    primals = [args[i] for i in argnums]
    jvp = jax.jvp(along(engine), primals, tangents)[1]
    jvp_expected = jax.jvp(along(reference), primals, tangents)[1]
    np.testing.assert_allclose(float(jvp), float(jvp_expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("leaky", [True, False])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_spikes_only_output_has_the_same_gradients(leaky, v_reset):
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(10, 6)) * 1.5, jnp.float32)
    g = jnp.asarray(rng.normal(size=(10, 6)), jnp.float32)
    fn = spiking.lif if leaky else spiking.integrate_and_fire

    def loss(x, membrane):
        out = fn(x, v_reset=v_reset, return_membrane=membrane)
        return jnp.sum((out[0] if membrane else out) * g)

    np.testing.assert_array_equal(
        np.asarray(jax.grad(loss)(x, False)), np.asarray(jax.grad(loss)(x, True))
    )


@pytest.mark.parametrize("leaky", [True, False])
def test_constant_input_equals_a_repeated_input(leaky):
    """``time_steps=T`` with one input equals the input repeated T times, in values and in
    gradients (input, initial membrane, parameters)."""
    rng = np.random.default_rng(5)
    c = jnp.asarray(rng.normal(size=(4, 6)) * 1.5, jnp.float32)
    g = jnp.asarray(rng.normal(size=(9, 4, 6)), jnp.float32)
    fn = spiking.lif if leaky else spiking.integrate_and_fire
    extra = {"tau": 1.7} if leaky else {}

    def loss(c, vth, constant):
        x = c if constant else jnp.broadcast_to(c, (9, *c.shape))
        spikes, v = fn(x, v_threshold=vth, return_membrane=True,
                       time_steps=9 if constant else None, **extra)  # fmt: skip
        return jnp.sum(spikes * g) + jnp.sum(v * g)

    for a, b in zip(
        fn(c, time_steps=9, return_membrane=True),
        fn(jnp.broadcast_to(c, (9, *c.shape)), return_membrane=True),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(
        jax.grad(loss, (0, 1))(c, 0.8, True), jax.grad(loss, (0, 1))(c, 0.8, False), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def _shapes_out_of_reverse_scans(jaxpr):
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan" and eqn.params["reverse"]:
            found += [v.aval.shape for v in eqn.outvars]
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _shapes_out_of_reverse_scans(sub)
    return found


def test_constant_input_gradient_is_summed_inside_the_backward_scan():
    """The direct-encoding backward accumulates the input's gradient over time: no ``[T, ...]``
    array leaves the reverse scan (a repeated input's backward has one)."""
    c = jnp.ones((3, 4)) * 1.3

    def outputs(constant):
        def loss(c):
            x = c if constant else jnp.broadcast_to(c, (16, 3, 4))
            return jnp.sum(spiking.lif(x, time_steps=16 if constant else None))

        return _shapes_out_of_reverse_scans(jax.make_jaxpr(jax.grad(loss))(c).jaxpr)

    assert outputs(constant=True) and all(s[:1] != (16,) for s in outputs(constant=True))
    assert (16, 3, 4) in outputs(constant=False)


def test_parameters_compose_with_jit_vmap_grad_and_jvp():
    x = jnp.asarray(np.random.default_rng(6).uniform(0, 2.5, size=(32, 3)), jnp.float32)
    taus = jnp.array([1.5, 2.0, 4.0])

    def rate(tau, v_threshold=1.0, alpha=2.0):
        spikes = spiking.lif(x, tau=tau, v_threshold=v_threshold, surrogate=spiking.atan(alpha))
        return spiking.spike_rate(spikes).mean()

    looped = np.array([float(rate(float(t))) for t in taus])
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(rate))(taus)), looped)
    np.testing.assert_array_equal(float(jax.jit(rate)(2.0)), looped[1])
    assert len(set(looped.tolist())) == 3  # the sweep changes the firing
    # Per-channel tau, vmapped: each channel fires as a neuron of its own tau.
    settings = jnp.stack([taus, taus[::-1]])
    per_channel = jax.vmap(lambda t: spiking.lif(x, tau=t).mean(0))(settings)
    for r, c in itertools.product(range(2), range(3)):
        alone = spiking.lif(x[:, c], tau=float(settings[r, c])).mean()
        assert float(per_channel[r, c]) == float(alone)
    # Threshold and surrogate sharpness may be traced too.
    jax.jit(jax.vmap(lambda v: rate(2.0, v_threshold=v)))(jnp.array([0.5, 1.0]))
    alphas = jnp.array([1.0, 2.0, 5.0])
    grads = jax.vmap(jax.grad(lambda t, a: rate(t, alpha=a)), in_axes=(None, 0))(2.0, alphas)
    assert len(set(np.asarray(grads).tolist())) == 3  # alpha shapes the surrogate gradient
    # Reverse and forward mode agree, with respect to every parameter.
    for argnum in range(3):
        args = (2.0, 0.9, 2.0)
        grad = jax.grad(rate, argnum)(*args)
        tangents = tuple(1.0 if i == argnum else 0.0 for i in range(3))
        jvp = jax.jvp(rate, args, tangents)[1]
        np.testing.assert_allclose(float(jvp), float(grad), rtol=1e-5, err_msg=argnum)
    assert float(jax.grad(rate)(2.0)) != 0.0


def test_concrete_parameters_are_validated_and_traced_ones_are_not():
    x = jnp.ones((4, 3))
    with pytest.raises(ValueError, match="tau must be > 0"):
        spiking.lif(x, tau=0.0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        spiking.lif(x, tau=jnp.array([1.0, -2.0, 3.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\).*neuron shape \(3,\)"):
        spiking.lif(x, v_threshold=jnp.ones(2))
    with pytest.raises(ValueError, match="time_steps"):
        spiking.lif(x, time_steps=0)
    with pytest.raises(ValueError, match="surrogate alpha"):
        spiking.atan(-1.0)
    # Traced values cannot be checked before they exist: documented, not an error.
    assert jax.jit(lambda t: spiking.lif(x, tau=t))(-1.0).shape == (4, 3)


def test_plif_forward_and_gradient_match_a_hand_computation():
    """One PLIF neuron, w = 0 (tau = 2), inputs 0.5, 0.5, 3.0, hard reset to 0, loss = sum_t V[t].

    By hand: H = 0.25, 0.375, 1.6875; only the last step fires (V = 0 there), so V = 0.25,
    0.375, 0. Differentiating V[t] = H (1 - S) + 0 S with dS = sigma'(H - 1) dH (atan, alpha 2:
    sigma'(u) = 1 / (1 + (pi u)^2)) gives dV = (1 - S - H sigma'(H - 1)) dH at every step, and
    dH[t]/dtau = (1 - 1/tau) dV[t-1]/dtau - (x[t] - V[t-1]) / tau^2. Finally
    dtau/dw = -sigmoid'(0) / sigmoid(0)^2 = -1.
    """
    x = jnp.array([0.5, 0.5, 3.0])

    def loss(w):
        return jnp.sum(spiking.lif(x, tau=spiking.plif_tau(w), return_membrane=True)[1])

    spikes, v = spiking.lif(x, tau=spiking.plif_tau(0.0), return_membrane=True)
    np.testing.assert_array_equal(np.asarray(spikes), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(np.asarray(v), [0.25, 0.375, 0.0])

    def sigma(u):
        return 1 / (1 + (math.pi * u) ** 2)

    tau, h, s, v_prev = 2.0, [0.25, 0.375, 1.6875], [0, 0, 1], [0.0, 0.25, 0.375]
    dv, total = 0.0, 0.0
    for t in range(3):
        dh = (1 - 1 / tau) * dv - (float(x[t]) - v_prev[t]) / tau**2
        dv = (1 - s[t] - h[t] * sigma(h[t] - 1)) * dh
        total += dv
    np.testing.assert_allclose(float(jax.grad(loss)(0.0)), -1.0 * total, rtol=1e-5)
    assert abs(total) > 0.01
    assert float(spiking.plif_tau(spiking.plif_weight(3.0))) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="tau > 1"):
        spiking.plif_weight(1.0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_preserved(dtype):
    x = jnp.asarray(np.random.default_rng(8).uniform(0, 3, (8, 3)), dtype)
    for fn in (spiking.lif, spiking.integrate_and_fire):
        s, v = fn(x, return_membrane=True)
        assert s.dtype == dtype and v.dtype == dtype
        assert jax.grad(lambda x, fn=fn: fn(x).astype(jnp.float32).sum())(x).dtype == dtype
        assert fn(x[0], time_steps=4).dtype == dtype
    # float32 parameters keep their dtype in their gradients; the computation is in x's dtype.
    g_tau, g_vth = jax.grad(
        lambda t, v: spiking.lif(x, tau=t, v_threshold=v).astype(jnp.float32).sum(), (0, 1)
    )(jnp.float32(2.0), jnp.ones(3, jnp.float32))
    assert g_tau.dtype == g_vth.dtype == jnp.float32 and float(jnp.abs(g_vth).sum()) > 0
    assert spiking.membrane(x).dtype == dtype
    assert spiking.atan()(x).dtype == dtype


def test_bfloat16_spikes_equal_a_bfloat16_reference():
    rng = np.random.default_rng(9)
    x = jnp.asarray(rng.normal(size=(16, 4, 5)) * 1.5, jnp.bfloat16)
    v0 = jnp.zeros((4, 5), jnp.bfloat16)
    out = spiking.lif(x, tau=2.0, return_membrane=True)
    ref = reference_layer(
        x, v0, jnp.bfloat16(2.0), jnp.bfloat16(1.0), jnp.bfloat16(0.0),
        leaky=True, decay_input=True, detach=False, surrogate=spiking.atan(),
    )  # fmt: skip
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def test_readouts():
    spikes = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(np.asarray(spiking.spike_rate(spikes)), [0.75, 0.75])
    x = jnp.array([2.0, 0.0, 0.0])  # V: 1.0, 0.5, 0.25 with tau = 2
    np.testing.assert_allclose(np.asarray(spiking.membrane_trace(x)), [1.0, 0.5, 0.25])
    # An IF output neuron integrates: V[t] = V[t-1] + X[t], never firing whatever its input.
    np.testing.assert_allclose(
        np.asarray(spiking.membrane_trace(jnp.array([2.0, 3.0, -1.0]), neuron="if")),
        [2.0, 5.0, 4.0],
    )
    assert float(spiking.membrane(x, decoder="max")) == 1.0
    assert float(spiking.membrane(x, decoder="last")) == 0.25
    np.testing.assert_allclose(float(spiking.membrane(x, decoder="mean")), 1.75 / 3)
    # max-abs-mem: the membrane of largest magnitude (IF: V = -2, 1, -4 -> -4; V = 3, 2, 2.5
    # -> 3); on a tie |max| = |min| the minimum (V = 2, -2, -1 -> -2).
    for currents, want in (([-2.0, 3.0, -5.0], -4.0), ([3.0, -1.0, 0.5], 3.0), ([2, -4, 1], -2)):
        got = spiking.membrane(jnp.array(currents, jnp.float32), decoder="max_abs", neuron="if")
        assert float(got) == want
    v = jnp.array([[0.5, -3.0], [-2.0, 1.0], [1.5, 2.0]])  # [T, 2]: per neuron
    np.testing.assert_array_equal(np.asarray(spiking.max_abs(v)), [-2.0, -3.0])
    with pytest.raises(ValueError, match="decoder"):
        spiking.membrane(x, decoder="min")
    with pytest.raises(ValueError, match="membrane neuron"):
        spiking.membrane(x, neuron="plif")


def test_membrane_readout_gradients_equal_a_plain_leaky_integrator():
    rng = np.random.default_rng(10)
    x = jnp.asarray(rng.normal(size=(9, 3)) * 4, jnp.float32)

    def plain(x, tau):
        def step(v, x_t):
            v = v + (x_t - v) / tau
            return v, v

        return jax.lax.scan(step, jnp.zeros(3), x)[1]

    def loss(trace):
        return lambda x, tau: jnp.sum(jnp.max(trace(x, tau), axis=0) ** 2)

    def engine(x, tau):
        return spiking.membrane_trace(x, tau=tau)

    np.testing.assert_allclose(np.asarray(engine(x, 2.0)), np.asarray(plain(x, 2.0)), rtol=1e-6)
    for a, b in zip(
        jax.grad(loss(engine), (0, 1))(x, 2.0), jax.grad(loss(plain), (0, 1))(x, 2.0), strict=True
    ):
        assert bool(jnp.all(jnp.isfinite(a)))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


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
