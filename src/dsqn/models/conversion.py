r"""ANN-to-SNN conversion of a trained ReLU DQN (Tan, Patel & Kozma, AAAI 2021).

The paper's conversion-based spiking baseline:

1. **Normalisation data**: about 15,000 observations visited by the trained DQN playing with
   epsilon 0.05 (:data:`NORMALIZATION_EPSILON`) on evaluation-protocol environments
   (:func:`dsqn.analyses.convert_run.collect_normalization_obs`).
2. **Layer-wise robust normalisation** (:func:`layer_scales`, :func:`normalize_params`): for every
   conv/dense layer ``l`` in network order, including the output layer, ``lambda_l`` is the
   ``p``-th percentile (p = 99.9) of ALL of that layer's pre-activation outputs (before the ReLU;
   every neuron, every observation, negative values included) on the data, and

   .. math::  W_l \leftarrow W_l \, \lambda_{l-1} / \lambda_l, \qquad
              b_l \leftarrow b_l / \lambda_l, \qquad \lambda_0 = 1

   so that the normalised ReLU network computes ``a_l / lambda_l`` at every layer (ReLU commutes
   with positive scaling) and its activations mostly lie in [0, 1], the range of a spike rate.
3. **Spiking network** (:class:`ConvertedSNN`, :class:`ConvertedMinAtarSNN`,
   :class:`ConvertedMLPSNN`, same parameter tree as :class:`dsqn.models.networks.DQN` /
   :class:`dsqn.models.networks.MinAtarDQN` / :class:`dsqn.models.networks.MLPDQN`): every
   layer, the output layer included, drives integrate-and-fire neurons with threshold
   ``V_th = 1``, reset by subtraction and no leak, ``V[-1] = 0``:

   .. math::  H_l[t] = V_l[t-1] + I_l[t], \quad S_l[t] = \Theta(H_l[t] - 1), \quad
              V_l[t] = H_l[t] - S_l[t]

   with currents ``I_1[t] = W_1 x + b_1`` (the normalised analog observation is injected at
   every step, so the first layer is computed once and repeated) and
   ``I_l[t] = W_l S_{l-1}[t] + b_l`` (biases injected at every step). For ``T`` steps the spike
   rate ``(1/T) sum_t S_l[t]`` approximates ``clip(a_l / lambda_l, 0, 1)``.
4. **Readout**: ``Q = sum_t S_L[t] + V_L[T-1]``, the output spike count over the T steps plus the
   output membrane potential after the last step. With soft reset and no leak this equals the
   integrated output current, ``Q = sum_t I_L[t] = T b_L + W_L sum_t S_{L-1}[t]``, so it is
   ``T`` times the normalised Q-value decoded from the last hidden layer's rates; it is exact for
   negative and above-threshold values, which a spike count alone would clip. The greedy action
   is unaffected by the factor ``T / lambda_L``.

This module is the method: networks, scales and normalisation, matching rate, all pure functions
of a network, its parameters and observations. :mod:`dsqn.analyses.convert_run` (``dsqn convert``)
applies it to every seed of a DQN run directory and writes the converted run directory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dsqn import spiking
from dsqn.models.networks import (
    ATARI_OBS_SHAPE,
    DQN,
    MINATAR_FILTERS,
    MINATAR_HIDDEN,
    MLPDQN,
    MinAtarDQN,
    is_minatar_obs_shape,
)

__all__ = [
    "V_THRESHOLD",
    "NORMALIZATION_EPSILON",
    "ConvertedSNN",
    "ConvertedMinAtarSNN",
    "ConvertedMLPSNN",
    "converted_network",
    "layer_order",
    "layer_scales",
    "normalize_params",
    "greedy_actions",
    "matching_rate",
    "OUTPUT_SCALES",
]

V_THRESHOLD = 1.0
"""Firing threshold of every converted neuron; the normalisation maps activations onto it."""

NORMALIZATION_EPSILON = 0.05
"""Exploration of the trained DQN while it plays the normalisation and held-out data."""

_ATARI_CONVS = (("conv1", 32, 8, 4), ("conv2", 64, 4, 2), ("conv3", 64, 3, 1))


# ----------------------------------------------------------------------------- spiking networks


class _ConvertedNetwork(nn.Module):
    """IF dynamics and readout shared by the converted networks (equations in the module doc).

    Attributes:
      num_actions: number of Q-values.
      time_steps: simulation length T per forward pass (the authors' code: 500).
      surrogate: surrogate derivative of the spike function, used only when differentiating the
        network (e.g. by an FGSM attack; :data:`dsqn.spiking.SURROGATES`). The forward pass is
        exact.
      surrogate_alpha: its sharpness.
      dtype: compute dtype of currents and membranes; Q is returned in float32.
    """

    num_actions: int
    time_steps: int = 500
    surrogate: str = "atan"
    surrogate_alpha: float = 2.0
    dtype: jnp.dtype = jnp.float32

    def _check_options(self) -> None:
        if self.time_steps < 1:
            raise ValueError(f"time_steps must be >= 1, got {self.time_steps!r}")

    def _neurons(self, currents: jax.Array, name: str, **options) -> jax.Array | tuple:
        """An IF layer through the toolkit (threshold 1, reset by subtraction, ``V[-1] = 0``);
        sows the spike counts. ``options`` go to :func:`dsqn.spiking.integrate_and_fire`."""
        out = spiking.integrate_and_fire(
            currents,
            v_threshold=V_THRESHOLD,
            v_reset=None,
            surrogate=spiking.get_surrogate(self.surrogate, self.surrogate_alpha),
            **options,
        )
        spikes = out[0] if options.get("return_membrane") else out
        self.sow("intermediates", f"spikes_{name}", jnp.sum(spikes, axis=0, dtype=jnp.float32))
        return out

    def _fire_constant(self, current: jax.Array, name: str) -> jax.Array:
        """IF layer driven by the same current at every step: ``[B, ...] -> spikes [T, B, ...]``."""
        return self._neurons(current, name, time_steps=self.time_steps)

    def _fire(self, currents: jax.Array, name: str) -> jax.Array:
        """IF layer over time: currents ``[T, B, ...]`` -> spikes ``[T, B, ...]``."""
        return self._neurons(currents, name)

    def _readout(self, currents: jax.Array, name: str) -> jax.Array:
        """Output IF layer: ``Q = sum_t S[t] + V[T-1]`` from currents ``[T, B, A]``."""
        spikes, membranes = self._neurons(currents, name, return_membrane=True)
        return jnp.sum(spikes, axis=0) + membranes[-1]


class ConvertedSNN(_ConvertedNetwork):
    """The converted Nature-DQN. ``obs: [B, 4, 84, 84] -> Q float32 [B, A]``.

    Takes the parameters of :class:`dsqn.models.networks.DQN` after :func:`normalize_params` (layers
    ``conv1, conv2, conv3, fc1, fc2``). Observations are uint8 frames as envpool yields them, or
    floats on the same [0, 255] scale; they are scaled by 1/255 as in the DQN. conv2, conv3, fc1
    and fc2 run on all T steps at once (a batch of ``T*B``); spike counts summed over T are sown
    as ``spikes_conv1 .. spikes_fc2`` (per sample, ``[B, *layer_shape]``).
    """

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        self._check_options()
        if obs.ndim != 4 or tuple(obs.shape[1:]) != ATARI_OBS_SHAPE:
            raise ValueError(f"Atari observations must be [B, 4, 84, 84], got shape {obs.shape}")
        x = jnp.transpose(obs, (0, 2, 3, 1)).astype(self.dtype) / 255.0
        spikes = None
        for name, features, kernel, stride in _ATARI_CONVS:
            conv = nn.Conv(
                features,
                (kernel, kernel),
                strides=(stride, stride),
                padding="VALID",
                name=name,
                dtype=self.dtype,
            )
            if spikes is None:
                spikes = self._fire_constant(conv(x), name)
            else:
                spikes = self._fire(spiking.over_time(conv, spikes), name)
        spikes = spikes.reshape(*spikes.shape[:2], -1)
        spikes = self._fire(
            spiking.over_time(nn.Dense(512, name="fc1", dtype=self.dtype), spikes), "fc1"
        )
        out = nn.Dense(self.num_actions, name="fc2", dtype=self.dtype)
        return self._readout(spiking.over_time(out, spikes), "fc2").astype(jnp.float32)


class ConvertedMinAtarSNN(_ConvertedNetwork):
    """The converted MinAtar DQN (Young & Tian 2019). ``obs: bool [B, 10, 10, C] -> Q float32
    [B, A]``.

    Takes the parameters of :class:`dsqn.models.networks.MinAtarDQN` after
    :func:`normalize_params` (layers ``conv1`` (C -> 16, 3x3, stride 1), ``fc1`` (1024 -> 128),
    ``fc2``). The binary observation is the analog input (0 or 1, as in the DQN); ``fc1`` and
    ``fc2`` run on all T steps at once. Spike counts summed over T are sown as
    ``spikes_conv1, spikes_fc1, spikes_fc2`` (per sample, ``[B, *layer_shape]``).
    """

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        self._check_options()
        if obs.ndim != 4 or not is_minatar_obs_shape(obs.shape[1:]):
            raise ValueError(f"MinAtar observations must be [B, 10, 10, C], got shape {obs.shape}")
        x = obs.astype(self.dtype)
        conv1 = nn.Conv(
            MINATAR_FILTERS, (3, 3), strides=(1, 1), padding="VALID", name="conv1", dtype=self.dtype
        )
        spikes = self._fire_constant(conv1(x), "conv1")
        spikes = spikes.reshape(*spikes.shape[:2], -1)
        fc1 = nn.Dense(MINATAR_HIDDEN, name="fc1", dtype=self.dtype)
        spikes = self._fire(spiking.over_time(fc1, spikes), "fc1")
        out = nn.Dense(self.num_actions, name="fc2", dtype=self.dtype)
        return self._readout(spiking.over_time(out, spikes), "fc2").astype(jnp.float32)


class ConvertedMLPSNN(_ConvertedNetwork):
    """The converted MLP. ``obs: float [B, D] -> Q float32 [B, A]``.

    Takes the parameters of :class:`dsqn.models.networks.MLPDQN` after :func:`normalize_params`
    (layers ``fc1 .. fcN`` and ``out``); spike counts are sown as ``spikes_fc1 .. spikes_out``.
    """

    hidden_sizes: Sequence[int] = (128, 128)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        self._check_options()
        if not self.hidden_sizes:
            raise ValueError("ConvertedMLPSNN needs at least one hidden layer, got hidden_sizes=()")
        x = obs.astype(self.dtype)
        fc1 = nn.Dense(self.hidden_sizes[0], name="fc1", dtype=self.dtype)
        spikes = self._fire_constant(fc1(x), "fc1")
        for i, width in enumerate(self.hidden_sizes[1:], start=2):
            dense = nn.Dense(width, name=f"fc{i}", dtype=self.dtype)
            spikes = self._fire(spiking.over_time(dense, spikes), f"fc{i}")
        out = nn.Dense(self.num_actions, name="out", dtype=self.dtype)
        return self._readout(spiking.over_time(out, spikes), "out").astype(jnp.float32)


def converted_network(network: nn.Module, *, time_steps: int = 500) -> _ConvertedNetwork:
    """The spiking counterpart of a ReLU ``DQN``, ``MinAtarDQN`` or ``MLPDQN`` (same parameter
    tree)."""
    if isinstance(network, DQN):
        return ConvertedSNN(network.num_actions, time_steps=time_steps)
    if isinstance(network, MinAtarDQN):
        return ConvertedMinAtarSNN(network.num_actions, time_steps=time_steps)
    if isinstance(network, MLPDQN):
        return ConvertedMLPSNN(
            network.num_actions, time_steps=time_steps, hidden_sizes=tuple(network.hidden_sizes)
        )
    raise TypeError(
        "only ReLU networks can be converted (DQN, MinAtarDQN or MLPDQN), got "
        + type(network).__name__
    )


def layer_order(network: nn.Module) -> tuple[str, ...]:
    """The weight layers of a ReLU network or its converted counterpart, input to output."""
    if isinstance(network, DQN | ConvertedSNN):
        return ("conv1", "conv2", "conv3", "fc1", "fc2")
    if isinstance(network, MinAtarDQN | ConvertedMinAtarSNN):
        return ("conv1", "fc1", "fc2")
    if isinstance(network, MLPDQN | ConvertedMLPSNN):
        return (*(f"fc{i + 1}" for i in range(len(network.hidden_sizes))), "out")
    raise TypeError(
        "expected DQN, MinAtarDQN, MLPDQN or one of their converted networks, got "
        + type(network).__name__
    )


# ----------------------------------------------------------------------------- normalisation


def _batches(fn: Callable[[jax.Array], Any], x: np.ndarray, batch_size: int) -> Iterator[Any]:
    """``fn`` on consecutive batches of ``x``, the last one padded (one compilation) and trimmed."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    n = x.shape[0]
    for start in range(0, n, batch_size):
        chunk = x[start : start + batch_size]
        size = chunk.shape[0]
        if size < batch_size:
            pad = np.zeros((batch_size - size, *x.shape[1:]), x.dtype)
            chunk = np.concatenate([chunk, pad])
        yield jax.tree.map(lambda y, size=size: np.asarray(y)[:size], fn(chunk))


class _TopPercentile:
    """The exact ``np.percentile`` (linear interpolation) of a stream of ``total`` values.

    Order statistic ``pos = (total - 1) * q / 100`` needs only the ``total - floor(pos)`` largest
    values, so only those are kept (a small fraction of the data for q near 100).
    """

    def __init__(self, total: int, percentile: float):
        self.total = total
        self.pos = (total - 1) * percentile / 100.0
        self.lo = math.floor(self.pos)
        self.keep = total - self.lo
        self.seen = 0
        self.top = np.empty((0,), np.float32)

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float32).ravel()
        self.seen += values.size
        top = np.concatenate([self.top, values])
        if top.size > self.keep:
            top = np.partition(top, top.size - self.keep)[top.size - self.keep :]
        self.top = top

    def value(self) -> float:
        if self.seen != self.total:
            raise ValueError(f"expected {self.total} values, got {self.seen}")
        top = np.sort(self.top)  # top[j] is order statistic lo + j
        hi = min(1, top.size - 1)
        return float(top[0] + (self.pos - self.lo) * (top[hi] - top[0]))


OUTPUT_SCALES = ("percentile", "abs_percentile")
"""How the output layer's scale ``lambda_L`` is taken: ``"percentile"`` (Tan et al.: the same
percentile of its signed outputs as every layer), or ``"abs_percentile"`` (a named deviation:
the percentile of ``|Q|``). The readout is the integrated output current, so any positive
``lambda_L`` leaves the greedy actions unchanged; ``abs_percentile`` exists for networks whose
Q-values are mostly negative (e.g. an early Pong DQN), where the signed percentile is <= 0 and
the paper's method is undefined."""


def layer_scales(
    network: nn.Module,
    params: Any,
    obs: np.ndarray,
    percentile: float = 99.9,
    *,
    batch_size: int = 256,
    output_scale: str = "percentile",
) -> dict[str, float]:
    """``lambda_l``: the ``percentile`` of each layer's pre-activation outputs on ``obs``.

    The ReLU network runs on batches of ``batch_size`` observations; each conv/dense layer's
    output (before its ReLU) is captured, and the percentile is taken over all its values (every
    neuron and observation) exactly as ``np.percentile`` would, while holding only the values above
    it. ``params`` are one seed's; ``obs`` as the network takes them. ``output_scale`` (one of
    :data:`OUTPUT_SCALES`) chooses the output layer's rule.

    Raises:
      ValueError: ``percentile`` outside (0, 100], an unknown ``output_scale``, or a layer whose
        scale is not positive (all of its outputs negative, or nearly so: a larger percentile may
        help; for the output layer, ``output_scale="abs_percentile"``).
    """
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile!r}")
    if output_scale not in OUTPUT_SCALES:
        raise ValueError(f"unknown output_scale {output_scale!r}; valid: {OUTPUT_SCALES}")
    names = layer_order(network)
    obs = np.asarray(obs)
    if obs.shape[0] < 1:
        raise ValueError("layer_scales needs at least one observation, got none")

    def capture(x):
        _, state = network.apply(
            {"params": params},
            x,
            capture_intermediates=lambda m, method: method == "__call__" and m.name in names,
            mutable=["intermediates"],
        )
        return {name: state["intermediates"][name]["__call__"][0] for name in names}

    fn = jax.jit(capture)
    shapes = jax.eval_shape(fn, obs[:1])
    trackers = {
        name: _TopPercentile(obs.shape[0] * math.prod(shapes[name].shape[1:]), percentile)
        for name in names
    }
    absolute = {names[-1]} if output_scale == "abs_percentile" else set()
    for outputs in _batches(fn, obs, batch_size):
        for name in names:
            values = outputs[name]
            trackers[name].add(np.abs(values) if name in absolute else values)
    scales = {name: trackers[name].value() for name in names}
    bad = {name: s for name, s in scales.items() if not s > 0}
    if bad:
        hint = (
            "; the output layer's Q-values are mostly negative: "
            "output_scale='abs_percentile' (dsqn convert --output-scale abs_percentile) "
            "scales it by |Q| instead"
            if names[-1] in bad and not absolute
            else ""
        )
        raise ValueError(
            f"layer scales must be > 0, got {bad} (the {percentile}th percentile of those layers' "
            f"pre-activations); use a larger percentile or more normalisation data{hint}"
        )
    return scales


def normalize_params(
    params: Mapping[str, Any], scales: Mapping[str, float], layer_order: Sequence[str]
) -> dict[str, Any]:
    """``W_l <- W_l * lambda_{l-1} / lambda_l``, ``b_l <- b_l / lambda_l``, ``lambda_0 = 1``.

    ``params``: one network's ``{layer: {"kernel", "bias"}}`` (a leading seed axis is fine:
    scalars broadcast); layers not in ``layer_order`` are copied unchanged.
    """
    missing = [name for name in layer_order if name not in params or name not in scales]
    if missing:
        raise ValueError(
            f"layers {missing} lack parameters or scales; params have {sorted(params)}, "
            f"scales have {sorted(scales)}"
        )
    out = dict(params)
    previous = 1.0
    for name in layer_order:
        scale = float(scales[name])
        if not scale > 0:
            raise ValueError(f"scale of layer {name!r} must be > 0, got {scale!r}")
        layer = params[name]
        out[name] = {
            **layer,
            "kernel": layer["kernel"] * (previous / scale),
            "bias": layer["bias"] / scale,
        }
        previous = scale
    return out


# ----------------------------------------------------------------------------- matching rate


def greedy_actions(
    network: nn.Module, params: Any, obs: np.ndarray, *, batch_size: int = 32
) -> np.ndarray:
    """``argmax_a Q(s, a)`` for every observation, ``int [N]``, in batches of ``batch_size``."""
    fn = jax.jit(lambda x: jnp.argmax(network.apply({"params": params}, x), axis=-1))
    return np.concatenate(list(_batches(fn, np.asarray(obs), batch_size)))


def matching_rate(
    ann: nn.Module,
    ann_params: Any,
    snn: nn.Module,
    snn_params: Any,
    obs: np.ndarray,
    *,
    batch_size: int = 32,
) -> float:
    """Fraction of ``obs`` on which the SNN's greedy action equals the ANN's."""
    a = greedy_actions(ann, ann_params, obs, batch_size=batch_size)
    s = greedy_actions(snn, snn_params, obs, batch_size=batch_size)
    return float(np.mean(a == s))
