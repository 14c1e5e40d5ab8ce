"""dsqn.models.convolution: the matmul gradients and CPU blocks equal XLA's convolutions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn.models import convolution
from dsqn.models.convolution import CPU_CONV_BLOCK, valid_conv


@pytest.mark.parametrize(
    "size,in_ch,kernel,stride,out_ch",
    [(20, 32, 4, 2, 64), (9, 64, 3, 1, 64), (84, 4, 8, 4, 32), (11, 3, 3, 2, 5), (12, 3, 5, 3, 4)],
)
def test_valid_conv_matches_lax_convolution_and_its_gradients(size, in_ch, kernel, stride, out_ch):
    """The matmul backward equals XLA's convolution transposes (conv2/conv3 shapes and odd ones)."""
    kx, kw, kd = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (3, size, size, in_ch))
    w = jax.random.normal(kw, (kernel, kernel, in_ch, out_ch))

    def plain(x, w):
        return jax.lax.conv_general_dilated(
            x, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    y, plain_vjp = jax.vjp(plain, x, w)
    y_fast, fast_vjp = jax.vjp(lambda x, w: valid_conv(x, w, (stride, stride), "VALID"), x, w)
    np.testing.assert_array_equal(np.asarray(y_fast), np.asarray(y))
    dy = jax.random.normal(kd, y.shape)
    for fast, ref in zip(fast_vjp(dy), plain_vjp(dy), strict=True):
        scale = float(jnp.abs(ref).max())
        np.testing.assert_allclose(np.asarray(fast), np.asarray(ref), atol=1e-5 * scale)


def test_valid_conv_rejects_unsupported_options():
    x, w = jnp.zeros((1, 8, 8, 2)), jnp.zeros((3, 3, 2, 4))
    with pytest.raises(ValueError, match="padding='SAME'"):
        valid_conv(x, w, (1, 1), "SAME")
    with pytest.raises(ValueError, match="rhs_dilation"):
        valid_conv(x, w, (1, 1), "VALID", rhs_dilation=(2, 2))


def test_blocked_conv_equals_one_convolution():
    rng = np.random.default_rng(0)
    n = 4 * CPU_CONV_BLOCK + 7  # above the threshold and not a multiple of the block
    x = jnp.asarray(rng.random((n, 20, 20, 32)) < 0.2, jnp.float32)
    w = jnp.asarray(rng.normal(size=(4, 4, 32, 64)), jnp.float32)
    plain = jax.lax.conv_general_dilated(
        x, w, (2, 2), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    blocked = jax.jit(convolution._blocked_conv, static_argnums=2)(x, w, 2)
    assert blocked.shape == plain.shape
    np.testing.assert_allclose(np.asarray(blocked), np.asarray(plain), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,in_ch,kernel,stride", [(20, 32, 4, 2), (9, 64, 3, 1)])
def test_blocked_gradients_equal_xla_convolution_gradients(size, in_ch, kernel, stride):
    """Above the block threshold (and not a multiple of the block) the backward pass runs block
    by block on CPU; its gradients still equal XLA's convolution transposes."""
    n = 4 * CPU_CONV_BLOCK + 7
    kx, kw, kd = jax.random.split(jax.random.key(1), 3)
    x = (jax.random.uniform(kx, (n, size, size, in_ch)) < 0.2).astype(jnp.float32)
    w = jax.random.normal(kw, (kernel, kernel, in_ch, 64)) * 0.1

    def plain(x, w):
        return jax.lax.conv_general_dilated(
            x, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    y, plain_vjp = jax.vjp(plain, x, w)
    fast_vjp = jax.vjp(lambda x, w: valid_conv(x, w, (stride, stride), "VALID"), x, w)[1]
    dy = jax.random.normal(kd, y.shape)
    for fast, ref in zip(jax.jit(fast_vjp)(dy), plain_vjp(dy), strict=True):
        assert fast.shape == ref.shape
        scale = float(jnp.abs(ref).max())
        np.testing.assert_allclose(np.asarray(fast), np.asarray(ref), atol=1e-5 * scale)
