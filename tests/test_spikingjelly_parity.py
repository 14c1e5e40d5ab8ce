"""dsqn.spiking against spikingjelly, the reference PyTorch implementation of the same neurons.

Runs where the optional ``torch`` extra is installed (``pip install -e ".[torch]"``); skipped
otherwise. Compares spikes, membranes and surrogate gradients of multi-step LIF layers
(``LIFNode``) and parametric LIF layers (``ParametricLIFNode``, Fang et al. 2021), including the
gradient with respect to PLIF's ``w``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn import spiking

torch = pytest.importorskip("torch")
sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import neuron, surrogate  # noqa: E402

T, SHAPE = 16, (4, 6)


def _inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, *SHAPE)).astype(np.float32) * 1.5
    g = rng.normal(size=(T, *SHAPE)).astype(np.float32)
    return x, g


def _torch_layer(node, x, g):
    """Spikes, membranes and d(sum(spikes * g))/dx of a spikingjelly node in multi-step mode."""
    x_t = torch.tensor(x, requires_grad=True)
    spikes = node(x_t)
    (spikes * torch.tensor(g)).sum().backward()
    return spikes.detach().numpy(), node.v_seq.detach().numpy(), x_t.grad.numpy()


def _ours(x, g, **options):
    def loss(x):
        return jnp.sum(spiking.lif(x, **options) * g)

    spikes, v = spiking.lif(jnp.asarray(x), return_membrane=True, **options)
    return np.asarray(spikes), np.asarray(v), np.asarray(jax.grad(loss)(jnp.asarray(x)))


@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_lif_equals_spikingjelly(v_reset, decay_input, detach_reset):
    x, g = _inputs()
    node = neuron.LIFNode(
        tau=2.0, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset,
        surrogate_function=surrogate.ATan(alpha=2.0), detach_reset=detach_reset,
        step_mode="m", store_v_seq=True,
    )  # fmt: skip
    reference = _torch_layer(node, x, g)
    ours = _ours(x, g, tau=2.0, decay_input=decay_input, v_reset=v_reset, detach_reset=detach_reset)
    np.testing.assert_array_equal(ours[0], reference[0])
    np.testing.assert_allclose(ours[1], reference[1], atol=1e-6)
    np.testing.assert_allclose(ours[2], reference[2], atol=1e-5)
    assert 0 < ours[0].mean() < 1


@pytest.mark.parametrize("init_tau", [2.0, 3.0])
def test_plif_equals_spikingjelly_parametric_lif(init_tau):
    x, g = _inputs()
    node = neuron.ParametricLIFNode(
        init_tau=init_tau, decay_input=True, v_threshold=1.0, v_reset=0.0,
        surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m", store_v_seq=True,
    )  # fmt: skip
    x_t = torch.tensor(x, requires_grad=True)
    spikes_ref = node(x_t)
    (spikes_ref * torch.tensor(g)).sum().backward()
    w = float(node.w.detach())
    assert w == pytest.approx(float(spiking.plif_weight(init_tau)))

    def loss(w, x):
        return jnp.sum(spiking.lif(x, tau=spiking.plif_tau(w)) * g)

    spikes = spiking.lif(jnp.asarray(x), tau=spiking.plif_tau(jnp.float32(w)))
    np.testing.assert_array_equal(np.asarray(spikes), spikes_ref.detach().numpy())
    g_w, g_x = jax.grad(loss, (0, 1))(jnp.float32(w), jnp.asarray(x))
    np.testing.assert_allclose(float(g_w), float(node.w.grad), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(g_x), x_t.grad.numpy(), atol=1e-5)
