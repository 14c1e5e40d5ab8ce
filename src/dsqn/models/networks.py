r"""Q-networks (flax.linen): the Nature-DQN topology with ReLU or spiking hidden layers.

Atari networks take observations exactly as envpool yields them, uint8 ``[B, 4, 84, 84]``, scale
them by 1/255 and return float32 Q-values ``[B, num_actions]``. Topology (Mnih et al. 2015), no
padding, layers named identically in every variant so parameters are interchangeable::

    conv1 (4->32, 8x8, stride 4) -> conv2 (32->64, 4x4, stride 2) -> conv3 (64->64, 3x3, stride 1)
    -> fc1 (3136->512) -> fc2 (512->|A|)

:class:`DQN` puts a ReLU after every hidden layer. :class:`DSQN` (Liu et al. 2022) puts a
spiking neuron layer there instead and runs ``T = time_steps`` simulation steps. Every neuron
layer is a call of the toolkit's public functions (:func:`dsqn.spiking.lif`,
:func:`dsqn.spiking.integrate_and_fire`, :func:`dsqn.spiking.membrane`): the networks have no
neuron dynamics of their own.

- direct input encoding: the analog frame is the input at every step; conv1 is linear, so
  ``conv1(x)`` is computed ONCE and fed to the first neuron layer at all T steps
  (``spiking.lif(conv1(x), time_steps=T)``);
- conv2, conv3 and fc1 run on all T steps at once (:func:`dsqn.spiking.over_time`: time merged
  into the batch axis, one convolution of batch ``T*B``); only the elementwise neuron dynamics
  are scanned over time;
- every convolution differentiates by matrix products and runs in blocks on CPU
  (:func:`dsqn.models.convolution.valid_conv`; same values, faster gradients);
- neurons (:data:`NEURONS`): ``"lif"`` (the paper), ``"if"`` (no leak, an ablation) or
  ``"plif"``, the Parametric LIF of Fang et al. 2021: each neuron layer learns one scalar ``w``
  (parameter ``plif_w_<layer>``) with ``1/tau = sigmoid(w)``, initialised so that ``tau`` is the
  configured one; ``learn_threshold`` likewise learns one ``V_th`` per layer
  (``v_threshold_<layer>``);
- readout ``"rate"`` (the paper): ``Q = fc2((1/T) sum_t S_fc1[t])``. Ablations: ``"spike_rate"``
  (fc2 is a spiking layer too, ``Q = (1/T) sum_t S_fc2[t]``) and ``"membrane_max" |
  "membrane_max_abs" | "membrane_mean" | "membrane_last"`` (fc2 drives a non-spiking output
  neuron of the same kind, leaky for LIF/PLIF and integrating for IF, decoded by the max, the
  largest-magnitude, the mean or the last membrane potential: Chen et al. 2022's "max-mem",
  "max-abs-mem", "mean-mem" and "last-mem", equations in :mod:`dsqn.spiking.readout`). Chen et
  al.'s "fr-mlp" decoder is ``"rate"`` itself.

Normalisation (:data:`NORMS`): ``"none"`` (the paper) or ``"popnorm"``, the potential-based
layer normalisation of PL-SDQN (Sun et al. 2022, BrainCog's ``PopNorm``): a layer's input
currents ``x`` (per sample, over all its neurons) are normalised before its neurons charge,

    y = (x - mean(x)) / sqrt(var(x) + 1e-5) * gamma + beta,

with one ``gamma`` and ``beta`` per neuron (parameters ``popnorm_<layer>``), initialised to
``V_th - V_reset`` and ``V_reset`` (``V_reset = 0`` for soft reset): normalised currents start
spread over the range between reset and threshold. As in their ``SpikingDQN``, the Atari
networks normalise the three convolutional spiking layers and not ``fc1``; the MLP normalises
every hidden layer.

The neuron parameters (``tau``, ``v_threshold``, ``surrogate_alpha``) are values: they may be
traced, so that a network can be built inside ``jax.vmap`` over them (a hyperparameter sweep in
one program).

Output heads (:data:`HEADS`, every network): ``"linear"`` (the paper: one output per action),
``"dueling"`` (Wang et al. 2016, "Dueling Network Architectures"; Wang & Ueda 2022's
``--dueling``): the output layer gives the advantages ``A(s, .)`` and a value ``V(s)``, and
``Q = V + A - mean_a A`` (:func:`dueling_q`); ``"shared_bias"`` (van Hasselt et al. 2016's tuned
Double DQN): one bias shared by all actions (parameter ``<output>_bias``). In :class:`DQN` the
dueling streams are those of Wang & Ueda's ``DuelingDQN``: ``fc1`` holds both streams' 512 units
(1024) and ``fc2`` is block-diagonal (advantages from the first 512, the value from the last
512) for the whole run: its kernel is used times the stream mask, so the cross-stream weights
get no gradient and stay zero, as their gradient hook keeps them (``dueling_joined``, a
deviation, trains them too: they only start at zero). In the spiking networks (and the MLPs)
the value and the advantages are read out from the same last hidden layer: ``fc2`` has
``|A| + 1`` outputs, decoded by the configured readout (the rate readout:
``fc2((1/T) sum_t S_fc1[t])``), so that the spiking layers and their spike counts stay the
paper's.

Spike counts summed over time, per sample and neuron, are sown into the ``intermediates``
collection as ``spikes_conv1``, ``spikes_conv2``, ``spikes_conv3``, ``spikes_fc1`` (and
``spikes_fc2`` for the spiking readout), so that firing rates and synaptic operations can be
measured by ``apply(..., mutable=["intermediates"])`` without changing the network. The whole
spike trains ``[T, B, ...]``, under the same names, go to the :data:`SPIKE_TRAINS` collection
when it is mutable (``apply(..., mutable=[SPIKE_TRAINS])``; nothing is kept otherwise): the
rasters of the videos and notebooks are the network's own spikes.

:class:`MLPDQN` and :class:`MLPDSQN` are the same constructions over dense layers for vector
observations (``float [B, D]``), with layers ``fc1 .. fcN`` hidden and ``out`` as output.

:class:`MinAtarDQN` is Young & Tian 2019's MinAtar network (``examples/dqn.py`` of the
``minatar`` package): observations bool ``[B, 10, 10, C]`` as the original package's
``state()``, ``conv1`` (C->16, 3x3, stride 1, no padding) -> ``fc1`` (1024->128) -> ``fc2``
(128->|A|), ReLU after each hidden layer. :class:`MinAtarDSQN` is its spiking counterpart, built
as :class:`DSQN` is: ``conv1(x)`` computed once and fed to a neuron layer at all T steps (direct
encoding), ``fc1`` over all T steps at once, then the configured readout into ``fc2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dsqn import spiking
from dsqn.models import convolution

__all__ = [
    "DQN",
    "DSQN",
    "MLPDQN",
    "MLPDSQN",
    "MinAtarDQN",
    "MinAtarDSQN",
    "MINATAR_HIDDEN",
    "is_minatar_obs_shape",
    "NEURONS",
    "READOUTS",
    "HEADS",
    "NORMS",
    "INITS",
    "dueling_q",
    "ATARI_OBS_SHAPE",
    "SPIKE_TRAINS",
    "NEURON_PARAMETER_PREFIXES",
    "is_neuron_parameter",
]

ATARI_OBS_SHAPE = (4, 84, 84)
MINATAR_HIDDEN = 128
"""Young & Tian 2019's MinAtar network: 16 3x3 filters, then a dense layer of 128 units."""
MINATAR_FILTERS = 16


def is_minatar_obs_shape(shape: Sequence[int]) -> bool:
    """Whether one observation of ``shape`` is a MinAtar grid ``[10, 10, C]``."""
    return len(shape) == 3 and tuple(shape[:2]) == (10, 10)


def _minatar_input(obs: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """bool ``[B, 10, 10, C]`` -> ``[B, 10, 10, C]`` in ``dtype`` (0 or 1)."""
    if obs.ndim != 4 or not is_minatar_obs_shape(obs.shape[1:]):
        raise ValueError(f"MinAtar observations must be [B, 10, 10, C], got shape {obs.shape}")
    return obs.astype(dtype)


NEURONS = ("lif", "if", "plif")
SPIKE_TRAINS = "spike_trains"
"""The flax collection of every spiking layer's spikes over time, ``[T, B, ...]``."""
READOUTS = (
    "rate",
    "spike_rate",
    "membrane_max",
    "membrane_max_abs",
    "membrane_mean",
    "membrane_last",
)
HEADS = ("linear", "dueling", "shared_bias")
NORMS = ("none", "popnorm")
POPNORM_EPSILON = 1e-5  # torch.nn.functional.layer_norm's default, as Sun et al.'s PopNorm
NEURON_PARAMETER_PREFIXES = ("plif_w_", "v_threshold_")
"""Name prefixes of the learnable neuron parameters: PLIF's ``w`` and learned thresholds, one
scalar per spiking layer."""
DUELING_STREAM_WIDTH = 512  # each stream of the dueling DQN (Wang et al. 2016)


def is_neuron_parameter(name: str) -> bool:
    """Whether the parameter called ``name`` (a leaf's key) is a learnable neuron parameter."""
    return name.startswith(NEURON_PARAMETER_PREFIXES)


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


def _conv(
    features: int,
    kernel: int,
    stride: int,
    name: str,
    dtype: jnp.dtype,
    init: str,
    in_ch: int,
) -> nn.Conv:
    """A VALID convolution, differentiated by matrix products (:func:`convolution.valid_conv`)."""
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding="VALID",
        name=name,
        dtype=dtype,
        conv_general_dilated=convolution.valid_conv,
        **_initializers(init, kernel * kernel * in_ch),
    )


def _dense(features: int, name: str, dtype: jnp.dtype, init: str, fan_in: int) -> nn.Dense:
    return nn.Dense(features, name=name, dtype=dtype, **_initializers(init, fan_in))


def dueling_q(outputs: jax.Array) -> jax.Array:
    """``[B, A + 1]`` advantages and value -> Q ``[B, A]``: ``Q = V + A - mean_a A`` (Wang et al.
    2016, eq. 9; Wang & Ueda's ``DuelingOutput``)."""
    advantage, value = outputs[..., :-1], outputs[..., -1:]
    return value + advantage - jnp.mean(advantage, axis=-1, keepdims=True)


def dueling_stream_mask(num_actions: int, width: int, dtype=jnp.float32) -> jax.Array:
    """The ``[2 width, A + 1]`` mask of the dueling DQN's output kernel: 1 where a stream feeds
    its own outputs (rows ``:width`` -> the advantages, rows ``width:`` -> the value), 0 on the
    two blocks that would join the streams (Wang & Ueda's ``grad_mask``)."""
    mask = jnp.zeros((2 * width, num_actions + 1), dtype)
    return mask.at[:width, :-1].set(1).at[width:, -1].set(1)


def _block_diagonal(kernel_init, num_actions: int, width: int):
    """A kernel ``[2 width, A + 1]`` drawn by ``kernel_init`` with the blocks that join the two
    streams zeroed (:func:`dueling_stream_mask`)."""

    def init(key, shape, dtype=jnp.float32):
        return kernel_init(key, shape, dtype) * dueling_stream_mask(num_actions, width, dtype)

    return init


class _StreamDense(nn.Module):
    """The dueling DQN's output layer ``y = x (W * M) + b`` with ``M`` the stream mask
    (:func:`dueling_stream_mask`): the advantages see only the first stream, the value only the
    second. Since ``dy/dW = x^T dy * M``, the cross-stream weights get a zero gradient, and
    from their zero initialisation they stay exactly zero under Adam and global-norm clipping:
    Wang & Ueda's gradient hook (``grad_mask * grad`` on ``fc[2].weight``) for the whole run.
    With ``joined`` the kernel is used whole (``M = 1``; the cross blocks only start at zero)."""

    num_actions: int
    width: int
    kernel_init: Any
    bias_init: Any
    joined: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (2 * self.width, self.num_actions + 1)
        kernel = self.param("kernel", self.kernel_init, shape, jnp.float32)
        bias = self.param("bias", self.bias_init, (self.num_actions + 1,), jnp.float32)
        if not self.joined:
            kernel = kernel * dueling_stream_mask(self.num_actions, self.width)
        y = x @ kernel.astype(self.dtype)
        return y + bias.astype(self.dtype).reshape((1,) * (y.ndim - 1) + (-1,))


def _output_layer(
    module: nn.Module,
    head: str,
    num_actions: int,
    name: str,
    dtype: jnp.dtype,
    init: str,
    fan_in: int,
    *,
    dueling_streams: bool = False,
    dueling_joined: bool = False,
):
    """The output layer for ``head`` (:data:`HEADS`): features -> ``[.., A]`` outputs, or
    ``[.., A + 1]`` (advantages, then the value) for ``"dueling"``; ``dueling_streams``: the
    input holds two streams of ``DUELING_STREAM_WIDTH`` units (the dueling DQN), kept apart
    (:class:`_StreamDense`) unless ``dueling_joined``."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; valid: {HEADS}")
    if head == "linear":
        return _dense(num_actions, name, dtype, init, fan_in)
    if head == "dueling":
        if not dueling_streams:
            return _dense(num_actions + 1, name, dtype, init, fan_in)
        options = _initializers(init, DUELING_STREAM_WIDTH)
        kernel = options.get("kernel_init", nn.initializers.lecun_normal())
        return _StreamDense(
            num_actions,
            DUELING_STREAM_WIDTH,
            _block_diagonal(kernel, num_actions, DUELING_STREAM_WIDTH),
            options.get("bias_init", nn.initializers.zeros),
            joined=dueling_joined,
            name=name,
            dtype=dtype,
        )
    options = _initializers(init, fan_in)
    bias_init = options.pop("bias_init", nn.initializers.zeros)
    dense = nn.Dense(num_actions, use_bias=False, name=name, dtype=dtype, **options)
    bias = module.param(f"{name}_bias", bias_init, ())
    return lambda x: dense(x) + bias.astype(dtype)


def _q(head: str, outputs: jax.Array) -> jax.Array:
    """Q-values ``[B, A]`` in float32 from the output layer's outputs."""
    q = dueling_q(outputs) if head == "dueling" else outputs
    return q.astype(jnp.float32)


class DQN(nn.Module):
    """The Nature DQN with ReLU hidden layers. ``obs: uint8 [B, 4, 84, 84] -> Q [B, A]``.

    ``head`` (:data:`HEADS`): ``"dueling"`` widens ``fc1`` to two streams of 512 units (module
    docstring); ``dueling_joined`` trains ``fc2``'s cross-stream weights too (a deviation)."""

    num_actions: int
    param_init: str = "torch"
    head: str = "linear"
    dueling_joined: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        d, i = self.dtype, self.param_init
        x = _atari_input(obs, d)
        x = nn.relu(_conv(32, 8, 4, "conv1", d, i, 4)(x))
        x = nn.relu(_conv(64, 4, 2, "conv2", d, i, 32)(x))
        x = nn.relu(_conv(64, 3, 1, "conv3", d, i, 64)(x))
        x = x.reshape(x.shape[0], -1)
        streams = self.head == "dueling"
        hidden = 2 * DUELING_STREAM_WIDTH if streams else 512
        x = nn.relu(_dense(hidden, "fc1", d, i, 3136)(x))
        out = _output_layer(
            self,
            self.head,
            self.num_actions,
            "fc2",
            d,
            i,
            hidden,
            dueling_streams=streams,
            dueling_joined=self.dueling_joined,
        )
        return _q(self.head, out(x))


class MinAtarDQN(nn.Module):
    """Young & Tian 2019's MinAtar DQN. ``obs: bool [B, 10, 10, C] -> Q [B, A]`` (module
    docstring)."""

    num_actions: int
    param_init: str = "torch"
    head: str = "linear"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        d, i = self.dtype, self.param_init
        x = _minatar_input(obs, d)
        x = nn.relu(_conv(MINATAR_FILTERS, 3, 1, "conv1", d, i, x.shape[-1])(x))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(_dense(MINATAR_HIDDEN, "fc1", d, i, x.shape[-1])(x))
        out = _output_layer(self, self.head, self.num_actions, "fc2", d, i, MINATAR_HIDDEN)
        return _q(self.head, out(x))


class MLPDQN(nn.Module):
    """A ReLU MLP Q-network for vector observations. ``obs: float [B, D] -> Q [B, A]``."""

    num_actions: int
    hidden_sizes: Sequence[int] = (128, 128)
    param_init: str = "torch"
    head: str = "linear"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(self.dtype)
        for i, width in enumerate(self.hidden_sizes):
            x = nn.relu(_dense(width, f"fc{i + 1}", self.dtype, self.param_init, x.shape[-1])(x))
        out = _output_layer(
            self, self.head, self.num_actions, "out", self.dtype, self.param_init, x.shape[-1]
        )
        return _q(self.head, out(x))


def _constant(value: spiking.Param):
    """A flax initialiser that fills with ``value`` (which may be traced)."""

    def init(key, shape, dtype=jnp.float32):
        return jnp.full(shape, value, dtype)

    return init


class _SpikingQNetwork(nn.Module):
    """Neuron options shared by the spiking Q-networks (see :mod:`dsqn.spiking.neurons`).

    Attributes:
      num_actions: number of Q-values.
      time_steps: simulation length T per forward pass.
      neuron: ``"lif"`` (leaky, the paper), ``"if"`` (no leak, an ablation) or ``"plif"``
        (LIF with a learnable ``1/tau = sigmoid(w)`` per layer, Fang et al. 2021).
      tau: LIF membrane time constant; for PLIF, the initial one (must be > 1).
      v_threshold: firing threshold ``V_th``; with ``learn_threshold``, the initial one.
      v_reset: hard-reset potential, or ``None`` for soft reset (subtract ``V_th``).
      decay_input: LIF charge convention (see the equations).
      detach_reset: stop the gradient through the reset.
      surrogate: surrogate derivative name (:data:`dsqn.spiking.SURROGATES`).
      surrogate_alpha: its sharpness.
      readout: how Q is decoded (:data:`READOUTS`).
      learn_threshold: learn one threshold per spiking layer (parameter ``v_threshold_<layer>``).
      head: the output head (:data:`HEADS`); value and advantages share the readout.
      norm: ``"popnorm"`` normalises the input currents of spiking layers (PL-SDQN, module
        docstring); ``"none"`` (the paper) does not.
      neuron_backend: the toolkit engine's backend for every neuron layer
        (:data:`dsqn.spiking.BACKENDS`): ``"scan"`` (the reference) or ``"pallas"`` (one fused
        kernel per layer forward and one backward; same spikes, reverse-mode gradients only).
      param_init: parameter initialisation (:data:`INITS`; ``"torch"`` as the paper's code).
      dtype: compute dtype (parameters stay float32); Q is returned in float32.
    """

    num_actions: int
    time_steps: int = 64
    neuron: str = "lif"
    tau: spiking.Param = 2.0
    v_threshold: spiking.Param = 1.0
    v_reset: float | None = 0.0
    decay_input: bool = True
    detach_reset: bool = False
    surrogate: str = "atan"
    surrogate_alpha: spiking.Param = 2.0
    readout: str = "rate"
    learn_threshold: bool = False
    head: str = "linear"
    norm: str = "none"
    neuron_backend: str = "scan"
    param_init: str = "torch"
    dtype: jnp.dtype = jnp.float32

    def _check_options(self) -> None:
        if self.time_steps < 1:
            raise ValueError(f"time_steps must be >= 1, got {self.time_steps!r}")
        if self.neuron not in NEURONS:
            raise ValueError(f"unknown neuron {self.neuron!r}; valid: {NEURONS}")
        if self.readout not in READOUTS:
            raise ValueError(f"unknown readout {self.readout!r}; valid: {READOUTS}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; valid: {NORMS}")
        if self.neuron_backend not in spiking.BACKENDS:
            raise ValueError(
                f"unknown neuron_backend {self.neuron_backend!r}; valid: {spiking.BACKENDS}"
            )

    def _tau(self, name: str) -> spiking.Param:
        """The layer's time constant: the configured one, or PLIF's ``1/sigmoid(w)``."""
        if self.neuron != "plif":
            return self.tau
        w = self.param(
            NEURON_PARAMETER_PREFIXES[0] + name, _constant(spiking.plif_weight(self.tau)), ()
        )
        return spiking.plif_tau(w)

    def _normalize(self, x: jax.Array, name: str, features: int) -> jax.Array:
        """PL-SDQN's potential-based layer normalisation of a layer's currents ``x`` (``[..., *F]``
        with ``features`` trailing neuron axes), or ``x`` itself without ``norm`` (module
        docstring)."""
        if self.norm == "none":
            return x
        v_reset = 0.0 if self.v_reset is None else self.v_reset
        axes = tuple(range(-features, 0))
        return nn.LayerNorm(
            epsilon=POPNORM_EPSILON,
            dtype=self.dtype,
            use_fast_variance=False,
            reduction_axes=axes,
            feature_axes=axes,
            scale_init=_constant(self.v_threshold - v_reset),
            bias_init=_constant(v_reset),
            name=f"popnorm_{name}",
        )(x)

    def _fire(self, x: jax.Array, name: str, time_steps: int | None = None) -> jax.Array:
        """A spiking neuron layer, through the toolkit: currents ``[T, ...]`` (or one current
        ``[...]`` fed for ``time_steps`` steps) -> spikes ``[T, ...]``; sows the counts."""
        v_threshold = self.v_threshold
        if self.learn_threshold:
            v_threshold = self.param(
                NEURON_PARAMETER_PREFIXES[1] + name, _constant(self.v_threshold), ()
            )
        options = dict(
            v_threshold=v_threshold,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
            surrogate=spiking.get_surrogate(self.surrogate, self.surrogate_alpha),
            time_steps=time_steps,
            backend=self.neuron_backend,
        )
        if self.neuron == "if":
            spikes = spiking.integrate_and_fire(x, **options)
        else:
            spikes = spiking.lif(x, tau=self._tau(name), decay_input=self.decay_input, **options)
        self.sow("intermediates", f"spikes_{name}", jnp.sum(spikes, axis=0, dtype=jnp.float32))
        if not self.is_initializing():  # init would keep the trains among the variables
            self.sow(SPIKE_TRAINS, f"spikes_{name}", spikes)
        return spikes

    def _readout(self, spikes: jax.Array, dense, name: str) -> jax.Array:
        """``[T, B, F]`` spikes of the last hidden layer -> the output layer ``dense``'s decoded
        outputs ``[B, A]`` (``[B, A + 1]`` for the dueling head)."""
        if self.readout == "rate":
            return dense(spiking.spike_rate(spikes))
        currents = spiking.over_time(dense, spikes)
        if self.readout == "spike_rate":
            return spiking.spike_rate(self._fire(currents, name))
        return spiking.membrane(
            currents,
            decoder=self.readout.removeprefix("membrane_"),
            neuron="if" if self.neuron == "if" else "lif",
            tau=1.0 if self.neuron == "if" else self._tau(name),
            decay_input=self.decay_input,
            backend=self.neuron_backend,
        )


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
        x = self._normalize(_conv(32, 8, 4, "conv1", d, i, 4)(x), "conv1", 3)
        s = self._fire(x, "conv1", self.time_steps)
        x = spiking.over_time(_conv(64, 4, 2, "conv2", d, i, 32), s)
        s = self._fire(self._normalize(x, "conv2", 3), "conv2")
        x = spiking.over_time(_conv(64, 3, 1, "conv3", d, i, 64), s)
        s = self._fire(self._normalize(x, "conv3", 3), "conv3")
        s = s.reshape(*s.shape[:2], -1)
        s = self._fire(spiking.over_time(_dense(512, "fc1", d, i, 3136), s), "fc1")
        fc2 = _output_layer(self, self.head, self.num_actions, "fc2", d, i, 512)
        return _q(self.head, self._readout(s, fc2, "fc2"))


class MinAtarDSQN(_SpikingQNetwork):
    """The spiking MinAtar Q-network. ``obs: bool [B, 10, 10, C] -> Q float32 [B, A]``.

    ``conv1`` (C->16, 3x3, stride 1) is computed once and fed to its neuron layer at every one of
    the T steps (direct encoding); ``fc1`` (1024->128) runs on all T steps at once; Q is the
    configured readout into ``fc2`` (the rate readout: ``Q = fc2((1/T) sum_t S_fc1[t])``).
    """

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        self._check_options()
        d, i = self.dtype, self.param_init
        x = _minatar_input(obs, d)
        conv1 = _conv(MINATAR_FILTERS, 3, 1, "conv1", d, i, x.shape[-1])
        # PL-SDQN's normalisation (``norm``) before the conv layer's neurons, as in DSQN
        s = self._fire(self._normalize(conv1(x), "conv1", 3), "conv1", self.time_steps)
        s = s.reshape(*s.shape[:2], -1)
        fc1 = _dense(MINATAR_HIDDEN, "fc1", d, i, s.shape[-1])
        s = self._fire(spiking.over_time(fc1, s), "fc1")
        fc2 = _output_layer(self, self.head, self.num_actions, "fc2", d, i, MINATAR_HIDDEN)
        return _q(self.head, self._readout(s, fc2, "fc2"))


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
        s = self._fire(self._normalize(fc1(x), "fc1", 1), "fc1", self.time_steps)
        for i, width in enumerate(self.hidden_sizes[1:], start=2):
            dense = _dense(width, f"fc{i}", self.dtype, self.param_init, s.shape[-1])
            s = self._fire(self._normalize(spiking.over_time(dense, s), f"fc{i}", 1), f"fc{i}")
        out = _output_layer(
            self, self.head, self.num_actions, "out", self.dtype, self.param_init, s.shape[-1]
        )
        return _q(self.head, self._readout(s, out, "out"))
