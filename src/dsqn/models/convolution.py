r"""VALID convolutions that are fast to differentiate on CPU (:func:`valid_conv`).

The Q-networks' convolutions (:mod:`dsqn.models.networks`) run the same forward convolution as XLA,
but:

- their gradients are computed by matrix products in space-to-depth form instead of XLA's
  transposed convolutions. The results equal XLA's up to float rounding. They are about twice
  as fast on CPU, where those transposes dominate a DSQN update, and about nine times as fast
  inside loops: XLA:CPU runs its convolution transposes far slower inside a ``lax.scan`` or
  ``lax.cond`` body, where every training update runs (measured: four DQN updates in a scan,
  928 ms vs 108 ms);
- on CPU, large batches (the time-merged ``T*B`` batch of a DSQN's conv2 and conv3) run in
  blocks of :data:`CPU_CONV_BLOCK` samples, forward and backward: identical forward results,
  about twice as fast forward and three times backward.

GPUs get the single convolution; the matmul gradients apply everywhere.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["CPU_CONV_BLOCK", "valid_conv"]

_NHWC = lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1), ("NHWC", "HWIO", "NHWC"))


def _space_to_depth(x: jax.Array, s: int) -> jax.Array:
    """``[N, s*H, s*W, C] -> [N, H, W, s*s*C]`` (channels ordered row offset, column offset, c)."""
    n, h, w, c = x.shape
    x = x.reshape(n, h // s, s, w // s, s, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h // s, w // s, s * s * c)


def _depth_to_space(x: jax.Array, s: int) -> jax.Array:
    """The inverse of :func:`_space_to_depth`."""
    n, h, w, c = x.shape
    x = x.reshape(n, h, w, s, s, c // (s * s)).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h * s, w * s, c // (s * s))


def _fit(x: jax.Array, height: int, width: int) -> jax.Array:
    """Crops or zero-pads the spatial axes of ``[N, H, W, C]`` at their ends to the given size."""
    x = x[:, :height, :width]
    pad = ((0, 0, 0), (0, height - x.shape[1], 0), (0, width - x.shape[2], 0), (0, 0, 0))
    return lax.pad(x, jnp.zeros((), x.dtype), pad)


def _stride_one_form(
    x: jax.Array, w: jax.Array, s: int, out_hw: tuple[int, int]
) -> tuple[jax.Array, jax.Array]:
    """Rewrites a stride-``s`` VALID convolution as a stride-1 one (space-to-depth).

    The kernel is zero-padded to a multiple of ``s`` and the input cropped or zero-padded to the
    extent that kernel reads; the added rows and columns only meet zero weights. Returns the
    input ``[N, Ho+K-1, Wo+K-1, s*s*C]`` and kernel ``[K, K, s*s*C, F]``, ``K = ceil(k/s)``.
    """
    k, f = w.shape[0], w.shape[-1]
    ks = math.ceil(k / s)
    w = jnp.pad(w, ((0, ks * s - k), (0, ks * s - k), (0, 0), (0, 0)))
    w = w.reshape(ks, s, ks, s, -1, f).transpose(0, 2, 1, 3, 4, 5).reshape(ks, ks, -1, f)
    x = _fit(x, s * (out_hw[0] + ks - 1), s * (out_hw[1] + ks - 1))
    return _space_to_depth(x, s), w


CPU_CONV_BLOCK = 32
"""On CPU, convolutions over more than ``4 * CPU_CONV_BLOCK`` samples run in blocks of this size."""


def _runs_in_blocks(n: int) -> bool:
    """Whether a batch of ``n`` samples is split into blocks (on CPU, above 4 blocks)."""
    return jax.default_backend() == "cpu" and n > 4 * CPU_CONV_BLOCK


def _to_blocks(a: jax.Array) -> jax.Array:
    """``[N, ...] -> [ceil(N / CPU_CONV_BLOCK), CPU_CONV_BLOCK, ...]``, padded with zeros."""
    blocks = -(-a.shape[0] // CPU_CONV_BLOCK)
    a = jnp.pad(a, ((0, blocks * CPU_CONV_BLOCK - a.shape[0]),) + ((0, 0),) * (a.ndim - 1))
    return a.reshape(blocks, CPU_CONV_BLOCK, *a.shape[1:])


def _from_blocks(a: jax.Array, n: int) -> jax.Array:
    """The inverse of :func:`_to_blocks` for a batch of ``n`` samples (padding dropped)."""
    return a.reshape(-1, *a.shape[2:])[:n]


def _blocked_conv(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    """A VALID NHWC convolution; on CPU, large batches run block by block (``lax.map``).

    XLA:CPU's convolution slows down superlinearly with the batch beyond about a hundred
    20x20x32 samples (measured: conv2 takes 9.9 ms at batch 128 and 40 ms at batch 256), while
    blocks of 32 keep the per-sample cost flat: the time-merged batch ``T*B`` of a DSQN forward
    runs about twice as fast in blocks. Results are identical (each sample is convolved alone
    either way). GPUs get the single convolution.
    """

    def conv(xb):
        return lax.conv_general_dilated(xb, w, (stride, stride), "VALID", dimension_numbers=_NHWC)

    if not _runs_in_blocks(x.shape[0]):
        return conv(x)
    return _from_blocks(lax.map(conv, _to_blocks(x)), x.shape[0])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_matmul_grad(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    return _blocked_conv(x, w, stride)


def _conv_matmul_grad_fwd(x, w, stride):
    return _conv_matmul_grad(x, w, stride), (x, w)


def _conv_matmul_grad_bwd(stride, residuals, dy):
    """The gradients of :func:`_blocked_conv`; on CPU, large batches run block by block.

    As for the forward pass, XLA:CPU is much faster on blocks of ``CPU_CONV_BLOCK`` samples
    (measured at ``T*B = 2048``: conv2's gradients 677 ms -> 211 ms, conv3's 418 ms -> 158 ms):
    a ``lax.scan`` over blocks gives each block's input gradient and accumulates the kernel
    gradient. Equal to the one-shot gradients up to the float rounding of that sum.
    """
    x, w = residuals
    if not _runs_in_blocks(x.shape[0]):
        return _conv_grads(stride, x, w, dy)

    def block(dw, xy):
        dx, dw_block = _conv_grads(stride, xy[0], w, xy[1])
        return dw + dw_block, dx

    # Zero padding rows of dy add nothing to dw; their dx rows are dropped.
    dw, dx = lax.scan(block, jnp.zeros(w.shape, jnp.float32), (_to_blocks(x), _to_blocks(dy)))
    return _from_blocks(dx, x.shape[0]), dw.astype(w.dtype)


def _conv_grads(stride: int, x: jax.Array, w: jax.Array, dy: jax.Array):
    """``(dx, dw)`` of a VALID convolution by matrix products.

    In stride-1 form a K x K convolution is a sum of K*K shifted matrix products, so its
    gradients are too: one product per tap for the kernel, one for all taps for the input.
    """
    n, ho, wo, f = dy.shape
    xs, ws = _stride_one_form(x, w, stride, (ho, wo))
    ks, cs = ws.shape[0], ws.shape[2]
    acc = dict(preferred_element_type=jnp.float32)
    dws = jnp.stack(
        [
            jnp.einsum("nhwc,nhwf->cf", xs[:, a : a + ho, b : b + wo], dy, **acc)
            for a in range(ks)
            for b in range(ks)
        ]
    ).reshape(ks, ks, cs, f)
    dtaps = jnp.einsum("nhwf,abcf->nhwabc", dy, ws, **acc)
    dxs = sum(
        jnp.pad(dtaps[:, :, :, a, b], ((0, 0), (a, ks - 1 - a), (b, ks - 1 - b), (0, 0)))
        for a in range(ks)
        for b in range(ks)
    )
    k = w.shape[0]
    dw = _depth_to_space_kernel(dws, stride)[:k, :k]
    dx = _fit(_depth_to_space(dxs, stride), x.shape[1], x.shape[2])
    return dx.astype(x.dtype), dw.astype(w.dtype)


def _depth_to_space_kernel(ws: jax.Array, s: int) -> jax.Array:
    """The inverse of the kernel rewrite of :func:`_stride_one_form` (before its padding)."""
    ks, _, cs, f = ws.shape
    w = ws.reshape(ks, ks, s, s, cs // (s * s), f).transpose(0, 2, 1, 3, 4, 5)
    return w.reshape(ks * s, ks * s, cs // (s * s), f)


_conv_matmul_grad.defvjp(_conv_matmul_grad_fwd, _conv_matmul_grad_bwd)


def valid_conv(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: lax.ConvDimensionNumbers | None = None,
    feature_group_count: int = 1,
    precision: lax.PrecisionLike = None,
) -> jax.Array:
    """``lax.conv_general_dilated`` for the convolutions of this module, with matmul gradients.

    The forward pass is the same XLA convolution; the backward pass computes the kernel and
    input gradients as matrix products in space-to-depth form instead of XLA's transposed
    convolutions, which XLA:CPU runs several times below its matmul throughput. Only the case
    used here is supported: NHWC inputs, HWIO square kernels, equal strides, VALID padding, no
    dilation, no feature groups, default precision.
    """
    strides = tuple(window_strides)
    unpadded = padding == "VALID" or all(tuple(p) == (0, 0) for p in padding)
    plain = all(d == 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    square = rhs.shape[0] == rhs.shape[1] and len(set(strides)) == 1
    layout = dimension_numbers in (None, _NHWC, ("NHWC", "HWIO", "NHWC"))
    if not (unpadded and plain and square and layout and feature_group_count == 1):
        raise ValueError(
            "valid_conv supports NHWC/HWIO square kernels, equal strides, VALID padding, no "
            f"dilation and no groups; got strides={strides}, padding={padding!r}, "
            f"lhs_dilation={lhs_dilation}, rhs_dilation={rhs_dilation}, "
            f"kernel {rhs.shape}, feature_group_count={feature_group_count}"
        )
    if precision is not None:
        raise ValueError(f"valid_conv uses the default precision, got precision={precision!r}")
    return _conv_matmul_grad(lhs, rhs, strides[0])
