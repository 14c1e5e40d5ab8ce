r"""Q-networks (flax.linen): the Nature-DQN topology with ReLU or spiking hidden layers.

Atari networks take observations exactly as envpool yields them, uint8 ``[B, 4, 84, 84]``, scale
them by 1/255 and return float32 Q-values ``[B, num_actions]``. Topology (Mnih et al. 2015), no
padding, layers named identically in every variant so parameters are interchangeable::

    conv1 (4->32, 8x8, stride 4) -> conv2 (32->64, 4x4, stride 2) -> conv3 (64->64, 3x3, stride 1)
    -> fc1 (3136->512) -> fc2 (512->|A|)

:class:`DQN` puts a ReLU after every hidden layer. :class:`DSQN` (Liu et al. 2022) puts a
spiking neuron layer there instead and runs ``T = time_steps`` simulation steps:

- direct input encoding: the analog frame is the input at every step; conv1 is linear, so
  ``conv1(x)`` is computed ONCE and the same current drives the first neuron layer for all T steps;
- conv2, conv3 and fc1 run on all T steps at once (time merged into the batch axis, one
  convolution of batch ``T*B``); only the elementwise neuron dynamics are scanned over time;
- every convolution (of DQN and DSQN) differentiates by matrix products (:func:`valid_conv`):
  same forward convolution, gradients equal to XLA's convolution transposes up to float rounding
  but about twice as fast on CPU, where those transposes dominate a DSQN update, and about nine
  times as fast inside loops (XLA:CPU runs its convolution transposes far slower inside a
  ``lax.scan`` or ``lax.cond`` body, where every training update runs: measured, four DQN
  updates in a scan 928 ms vs 108 ms); on CPU, conv2 and conv3's forward and backward passes run
  the time-merged batch in blocks of 32 samples (identical forward results, about twice as fast
  forward and three times backward);
- readout ``"rate"`` (the paper): ``Q = fc2((1/T) sum_t S_fc1[t])``. Ablations: ``"spike_rate"``
  (fc2 is a spiking layer too, ``Q = (1/T) sum_t S_fc2[t]``) and ``"membrane_max" | "membrane_mean"
  | "membrane_last"`` (fc2 drives a non-spiking leaky neuron decoded by the max, mean or last
  membrane potential; Chen et al. 2022's "max-mem").

Spike counts summed over time, per sample and neuron, are sown into the ``intermediates``
collection as ``spikes_conv1``, ``spikes_conv2``, ``spikes_conv3``, ``spikes_fc1`` (and
``spikes_fc2`` for the spiking readout), so that firing rates and synaptic operations can be
measured by ``apply(..., mutable=["intermediates"])`` without changing the network.

:class:`MLPDQN` and :class:`MLPDSQN` are the same constructions over dense layers for vector
observations (``float [B, D]``), with layers ``fc1 .. fcN`` hidden and ``out`` as output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from dsqn import spiking

__all__ = [
    "DQN",
    "DSQN",
    "MLPDQN",
    "MLPDSQN",
    "NEURONS",
    "READOUTS",
    "INITS",
    "ATARI_OBS_SHAPE",
    "spike_count_names",
    "valid_conv",
]

ATARI_OBS_SHAPE = (4, 84, 84)
NEURONS = ("lif", "if")
READOUTS = ("rate", "spike_rate", "membrane_max", "membrane_mean", "membrane_last")


def _atari_input(obs: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """uint8 ``[B, 4, 84, 84]`` -> ``[B, 84, 84, 4]`` in ``dtype``, scaled to [0, 1]."""
    if obs.ndim != 4 or tuple(obs.shape[1:]) != ATARI_OBS_SHAPE:
        raise ValueError(f"Atari observations must be [B, 4, 84, 84], got shape {obs.shape}")
    return jnp.transpose(obs, (0, 2, 3, 1)).astype(dtype) / 255.0


INITS = ("torch", "lecun")


def _initializers(init: str, fan_in: int) -> dict:
    """Kernel and bias initialisers.

    ``"torch"`` is PyTorch's default for ``nn.Conv2d``/``nn.Linear``, which the paper's code uses:
    weights and biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``. ``"lecun"`` is flax's default
    (LeCun-normal weights, zero biases).
    """
    if init == "lecun":
        return {}
    if init != "torch":
        raise ValueError(f"unknown init {init!r}; valid: {INITS}")
    bound = fan_in**-0.5

    def bias_init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    kernel_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
    return {"kernel_init": kernel_init, "bias_init": bias_init}


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


def _conv(
    features: int,
    kernel: int,
    stride: int,
    name: str,
    dtype: jnp.dtype,
    init: str,
    in_ch: int,
) -> nn.Conv:
    """A VALID convolution, differentiated by matrix products (:func:`valid_conv`)."""
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding="VALID",
        name=name,
        dtype=dtype,
        conv_general_dilated=valid_conv,
        **_initializers(init, kernel * kernel * in_ch),
    )


def _dense(features: int, name: str, dtype: jnp.dtype, init: str, fan_in: int) -> nn.Dense:
    return nn.Dense(features, name=name, dtype=dtype, **_initializers(init, fan_in))


def _over_time(layer: nn.Module, x_seq: jax.Array) -> jax.Array:
    """Applies a stateless layer to every step at once: ``[T, B, ...] -> [T, B, ...]``."""
    t, b = x_seq.shape[:2]
    y = layer(x_seq.reshape(t * b, *x_seq.shape[2:]))
    return y.reshape(t, b, *y.shape[1:])


class DQN(nn.Module):
    """The Nature DQN with ReLU hidden layers. ``obs: uint8 [B, 4, 84, 84] -> Q [B, A]``."""

    num_actions: int
    param_init: str = "torch"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        d, i = self.dtype, self.param_init
        x = _atari_input(obs, d)
        x = nn.relu(_conv(32, 8, 4, "conv1", d, i, 4)(x))
        x = nn.relu(_conv(64, 4, 2, "conv2", d, i, 32)(x))
        x = nn.relu(_conv(64, 3, 1, "conv3", d, i, 64)(x))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(_dense(512, "fc1", d, i, 3136)(x))
        return _dense(self.num_actions, "fc2", d, i, 512)(x).astype(jnp.float32)


class MLPDQN(nn.Module):
    """A ReLU MLP Q-network for vector observations. ``obs: float [B, D] -> Q [B, A]``."""

    num_actions: int
    hidden_sizes: Sequence[int] = (128, 128)
    param_init: str = "torch"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(self.dtype)
        for i, width in enumerate(self.hidden_sizes):
            x = nn.relu(_dense(width, f"fc{i + 1}", self.dtype, self.param_init, x.shape[-1])(x))
        out = _dense(self.num_actions, "out", self.dtype, self.param_init, x.shape[-1])
        return out(x).astype(jnp.float32)


class _SpikingQNetwork(nn.Module):
    """Neuron options shared by the spiking Q-networks (see :mod:`dsqn.spiking.neurons`).

    Attributes:
      num_actions: number of Q-values.
      time_steps: simulation length T per forward pass.
      neuron: ``"lif"`` (leaky, the paper) or ``"if"`` (no leak, an ablation).
      tau: LIF membrane time constant.
      v_threshold: firing threshold ``V_th``.
      v_reset: hard-reset potential, or ``None`` for soft reset (subtract ``V_th``).
      decay_input: LIF charge convention (see the equations).
      detach_reset: stop the gradient through the reset.
      surrogate: surrogate derivative name (:data:`dsqn.spiking.SURROGATES`).
      surrogate_alpha: its sharpness.
      readout: how Q is decoded (:data:`READOUTS`).
      param_init: parameter initialisation (:data:`INITS`; ``"torch"`` as the paper's code).
      dtype: compute dtype (parameters stay float32); Q is returned in float32.
    """

    num_actions: int
    time_steps: int = 64
    neuron: str = "lif"
    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    decay_input: bool = True
    detach_reset: bool = False
    surrogate: str = "atan"
    surrogate_alpha: float = 2.0
    readout: str = "rate"
    param_init: str = "torch"
    dtype: jnp.dtype = jnp.float32

    def _check_options(self) -> None:
        if self.time_steps < 1:
            raise ValueError(f"time_steps must be >= 1, got {self.time_steps!r}")
        if self.neuron not in NEURONS:
            raise ValueError(f"unknown neuron {self.neuron!r}; valid: {NEURONS}")
        if self.readout not in READOUTS:
            raise ValueError(f"unknown readout {self.readout!r}; valid: {READOUTS}")
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau!r}")

    def _step(self, v: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        surrogate = spiking.get_surrogate(self.surrogate, self.surrogate_alpha)
        common = dict(
            v_threshold=self.v_threshold,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
            surrogate=surrogate,
        )
        if self.neuron == "if":
            return spiking.if_step(v, x, **common)
        return spiking.lif_step(v, x, tau=self.tau, decay_input=self.decay_input, **common)

    def _fire(self, x_seq: jax.Array, name: str) -> jax.Array:
        """Neuron layer over time: currents ``[T, ...]`` -> spikes ``[T, ...]``; sows counts."""
        v0 = spiking.initial_membrane(x_seq.shape[1:], x_seq.dtype, self.v_reset, None)
        spikes = jax.lax.scan(lambda v, x: self._step(v, x), v0, x_seq)[1]
        self._sow_counts(spikes, name)
        return spikes

    def _fire_constant(self, x: jax.Array, name: str) -> jax.Array:
        """Neuron layer driven by the same current at all T steps: ``[...] -> [T, ...]``."""
        v0 = spiking.initial_membrane(x.shape, x.dtype, self.v_reset, None)
        spikes = jax.lax.scan(lambda v, _: self._step(v, x), v0, None, self.time_steps)[1]
        self._sow_counts(spikes, name)
        return spikes

    def _sow_counts(self, spikes: jax.Array, name: str) -> None:
        self.sow("intermediates", f"spikes_{name}", jnp.sum(spikes, axis=0, dtype=jnp.float32))

    def _readout(self, spikes: jax.Array, dense: nn.Dense, name: str) -> jax.Array:
        """``[T, B, F]`` spikes of the last hidden layer -> Q ``[B, A]`` via ``dense``."""
        if self.readout == "rate":
            return dense(spiking.spike_rate(spikes))
        currents = _over_time(dense, spikes)
        if self.readout == "spike_rate":
            return spiking.spike_rate(self._fire(currents, name))
        decoder = self.readout.removeprefix("membrane_")
        tau = self.tau if self.neuron == "lif" else 1.0
        return spiking.membrane(currents, decoder=decoder, tau=tau, decay_input=self.decay_input)


class DSQN(_SpikingQNetwork):
    """The Deep Spiking Q-Network. ``obs: uint8 [B, 4, 84, 84] -> Q float32 [B, A]``.

    Defaults are the paper's: T = 64, LIF with tau = 2, V_th = 1, hard reset to 0, reset not
    detached, arctan surrogate with alpha = 2, rate readout into a linear layer.
    """

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        self._check_options()
        d, i = self.dtype, self.param_init
        x = _atari_input(obs, d)
        s = self._fire_constant(_conv(32, 8, 4, "conv1", d, i, 4)(x), "conv1")
        # conv2 and conv3 run on T*B samples: their gradients dominate an update.
        s = self._fire(_over_time(_conv(64, 4, 2, "conv2", d, i, 32), s), "conv2")
        s = self._fire(_over_time(_conv(64, 3, 1, "conv3", d, i, 64), s), "conv3")
        s = s.reshape(*s.shape[:2], -1)
        s = self._fire(_over_time(_dense(512, "fc1", d, i, 3136), s), "fc1")
        fc2 = _dense(self.num_actions, "fc2", d, i, 512)
        return self._readout(s, fc2, "fc2").astype(jnp.float32)


class MLPDSQN(_SpikingQNetwork):
    """A spiking MLP Q-network for vector observations. ``obs: float [B, D] -> Q [B, A]``.

    The first dense layer is computed once (direct encoding); the others run on all T steps at
    once. Hidden layers are ``fc1 .. fcN``, the output layer ``out``.
    """

    hidden_sizes: Sequence[int] = (128, 128)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        self._check_options()
        if not self.hidden_sizes:
            raise ValueError("MLPDSQN needs at least one hidden layer")
        x = obs.astype(self.dtype)
        fc1 = _dense(self.hidden_sizes[0], "fc1", self.dtype, self.param_init, x.shape[-1])
        s = self._fire_constant(fc1(x), "fc1")
        for i, width in enumerate(self.hidden_sizes[1:], start=2):
            dense = _dense(width, f"fc{i}", self.dtype, self.param_init, s.shape[-1])
            s = self._fire(_over_time(dense, s), f"fc{i}")
        out = _dense(self.num_actions, "out", self.dtype, self.param_init, s.shape[-1])
        return self._readout(s, out, "out").astype(jnp.float32)


def spike_count_names(intermediates: dict) -> list[str]:
    """Layer names whose spike counts a forward pass sowed, in network order."""
    return [k.removeprefix("spikes_") for k in intermediates if k.startswith("spikes_")]
