r"""Spike statistics and energy per action of a Q-network: the model, pure functions of a network
and its spike counts. ``dsqn energy RUN_DIR`` measures a run with it
(:mod:`dsqn.analyses.energy_report`).

Counts come from the spike counts the networks sow into flax's ``intermediates`` collection
(``spikes_<layer>``: spikes per sample and neuron, summed over the T time steps of one forward
pass), summed by :class:`dsqn.learning.evaluation.Evaluator` over every step of evaluation games
played at the evaluation epsilon (the run's, 0.05 under the paper's protocol): the network runs at
every step, also where the action is then drawn at random. The authors' monitor counts only the
steps whose action the network chose (their ``DsqnAgent.play``); the two differ only in which states
are visited.
Nothing here re-implements the network: layer shapes, kernels and strides are read from the
flax modules while tracing one forward pass.

Definitions, per action (one forward pass of T time steps) and per layer ``l`` with ``N_l``
neurons, ``S_l`` spikes summed over T and over the ``steps`` counted actions:

- firing rate ``r_l = S_l / (steps * T * N_l)`` (spikes per neuron per time step);
- spikes per action ``S_l / steps``;
- synaptic operations per action ``SOP_l = sum_p S_l[p] * fanout_{l+1}[p] / steps``: every spike
  of neuron ``p`` of layer ``l`` reaches ``fanout_{l+1}[p]`` synapses of the layer it feeds. For a
  VALID convolution of stride s and kernel k the fan-out of an input position is
  ``out_channels * n_h * n_w`` with ``n`` the number of output windows covering the position along
  each axis; for a dense layer it is its number of output features.

The last hidden layer feeds the output layer. With the paper's rate readout the output layer is
applied once to the mean rate ``(1/T) sum_t S[t]``; as in the authors' accounting its synaptic
operations are still counted spike by spike: the hidden layer's spikes summed over T times the
fan-out ``|A|``. (For the other readouts the output layer runs on every time step, and the count
is exact.) A spiking output layer (``spike_rate`` readout) feeds nothing.

Totals: spikes per action over all spiking layers (as the authors count); the firing rate both
weighted by neurons, ``sum_l S_l / (steps * T * sum_l N_l)`` (``firing_rate``), and as the
unweighted mean of the layers' rates (``firing_rate_layer_mean``); synaptic operations over all
layers. The first layer receives the analog input (direct encoding); the networks compute it once
per action and reuse its current for all T steps, so its MACs count ONCE, not T times.

Energy (45 nm CMOS, Horowitz 2014, as Liu et al. 2022 estimate it), per action::

    E_snn = MACs_first_layer * pj_per_mac + SOP * pj_per_ac
    E_ann = MACs_all_layers * pj_per_mac

with defaults ``pj_per_ac = 0.9`` pJ and ``pj_per_mac = 4.6`` pJ; reported in nJ.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np

__all__ = [
    "LayerInfo",
    "layer_geometry",
    "conv_fanout",
    "spike_statistics",
    "energy_estimate",
    "PJ_PER_AC",
    "PJ_PER_MAC",
]

PJ_PER_AC = 0.9
"""Energy of one accumulate (one spike at one synapse), pJ (45 nm CMOS, Horowitz 2014)."""
PJ_PER_MAC = 4.6
"""Energy of one multiply-accumulate, pJ (45 nm CMOS, Horowitz 2014)."""


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """One weight layer of a Q-network (per sample).

    Attributes:
      name: the flax module name (``conv1`` .. ``fc2``; MLP: ``fc1`` .. ``out``).
      kind: ``"conv"`` or ``"dense"``.
      input_shape: per-sample input shape (conv: ``(H, W, C)``; dense: ``(F,)``).
      output_shape: per-sample output shape.
      kernel: ``(kh, kw)`` for a conv, None for a dense layer.
      stride: ``(sh, sw)`` for a conv, None for a dense layer.
      macs: multiply-accumulates of one forward pass per sample: conv
        ``out_h * out_w * out_c * kh * kw * in_c``; dense ``in * out``.
      fed_by: the spiking layer whose spikes are this layer's input, None for the first layer
        (analog input) or when the input is not spikes.
      fanout: ``float64 [*input_shape]``, synapses each input position reaches.
      spiking: whether a neuron layer with sown spike counts follows this layer.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel: tuple[int, int] | None
    stride: tuple[int, int] | None
    macs: int
    fed_by: str | None
    fanout: np.ndarray = dataclasses.field(repr=False, compare=False)
    spiking: bool = False

    @property
    def neurons(self) -> int:
        """Output units per sample."""
        return math.prod(self.output_shape)


def _windows_per_position(size: int, kernel: int, stride: int) -> np.ndarray:
    """For a VALID 1-D convolution: how many output windows cover each input position.

    Output ``o`` covers inputs ``[o * stride, o * stride + kernel)``, ``0 <= o < out``,
    ``out = (size - kernel) // stride + 1``.
    """
    out = (size - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} does not fit an input of size {size}")
    counts = np.zeros(size, np.int64)
    for o in range(out):
        counts[o * stride : o * stride + kernel] += 1
    return counts


def conv_fanout(
    input_shape: tuple[int, int, int], kernel: tuple[int, int], stride: tuple[int, int], out_c: int
) -> np.ndarray:
    """Fan-out ``[H, W, C]`` of a VALID 2-D convolution: ``out_c * n_h[h] * n_w[w]``.

    ``n_h[h]`` is the number of output rows whose window covers input row ``h`` (likewise
    ``n_w``); every channel of a position has the same fan-out.
    """
    h, w, c = input_shape
    n_h = _windows_per_position(h, kernel[0], stride[0])
    n_w = _windows_per_position(w, kernel[1], stride[1])
    per_position = (n_h[:, None] * n_w[None, :] * out_c).astype(np.float64)
    return np.broadcast_to(per_position[:, :, None], (h, w, c)).copy()


def _layer_order(name: str) -> tuple[int, int]:
    """Network order: ``conv1..convN``, then ``fc1..fcN``, then ``out``."""
    match = re.fullmatch(r"(conv|fc)(\d+)", name)
    if match:
        return (0 if match.group(1) == "conv" else 1, int(match.group(2)))
    return (2, 0)


def layer_geometry(network: nn.Module, obs_example: jax.Array) -> list[LayerInfo]:
    """The weight layers of ``network`` in order, with shapes, MACs and fan-out maps.

    Shapes, kernels and strides are recorded from the ``nn.Conv``/``nn.Dense`` submodules while
    tracing one abstract forward pass (``jax.eval_shape``; nothing is computed). A layer is
    ``fed_by`` the previous layer when that one's spike counts are sown (``spikes_<name>``).
    ``obs_example``: a batch of observations as the network takes them (any batch size).
    """
    calls: dict[str, dict[str, Any]] = {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and isinstance(module, nn.Conv | nn.Dense):
            if module.name not in calls:
                calls[module.name] = {"module": module, "x": args[0].shape, "y": out.shape}
        return out

    def forward():
        with nn.intercept_methods(record):
            return network.init_with_output(
                jax.random.key(0), obs_example, mutable=["params", "intermediates"]
            )

    _, variables = jax.eval_shape(forward)
    sown = {k.removeprefix("spikes_") for k in variables.get("intermediates", {})}

    layers: list[LayerInfo] = []
    for name in sorted(calls, key=_layer_order):
        module, x_shape, y_shape = calls[name]["module"], calls[name]["x"], calls[name]["y"]
        in_shape, out_shape = tuple(x_shape[1:]), tuple(y_shape[1:])
        prev = layers[-1].name if layers else None
        fed_by = prev if prev in sown else None
        if isinstance(module, nn.Conv):
            if module.padding != "VALID":
                raise ValueError(f"{name}: only VALID padding is supported, got {module.padding}")
            kernel = tuple(int(k) for k in module.kernel_size)
            stride = module.strides or 1
            stride = (stride, stride) if isinstance(stride, int) else tuple(int(s) for s in stride)
            out_h, out_w, out_c = out_shape
            macs = out_h * out_w * out_c * kernel[0] * kernel[1] * in_shape[-1]
            fanout = conv_fanout(in_shape, kernel, stride, out_c)
            layers.append(
                LayerInfo(name, "conv", in_shape, out_shape, kernel, stride, macs, fed_by, fanout)
            )
        else:
            macs = math.prod(in_shape) * out_shape[-1]
            fanout = np.full(in_shape, float(out_shape[-1]))
            layers.append(
                LayerInfo(name, "dense", in_shape, out_shape, None, None, macs, fed_by, fanout)
            )
    return [dataclasses.replace(layer, spiking=layer.name in sown) for layer in layers]


def spike_statistics(
    geometry: Sequence[LayerInfo],
    spike_sums: Mapping[str, Any],
    steps: float,
    time_steps: int,
) -> dict[str, Any]:
    """Per-layer and total spike statistics of one seed (definitions in the module docstring).

    Args:
      geometry: :func:`layer_geometry` of the network.
      spike_sums: ``{layer: [*layer_shape]}`` spike counts summed over T and over ``steps``
        actions (one seed of :attr:`dsqn.learning.evaluation.EvalResult.spike_sums`). Empty for a
        ReLU network: spike fields are then None.
      steps: counted actions (agent steps).
      time_steps: T of the network.

    Returns:
      ``{"layers": {layer: {"neurons", "firing_rate", "spikes_per_action",
      "synaptic_ops_per_action"}}, "spikes_per_action", "firing_rate", "firing_rate_layer_mean",
      "synaptic_ops_per_action", "macs_per_action_first_layer", "macs_per_action_ann", "steps",
      "time_steps"}``; the synaptic operations of a layer are those of ITS spikes into the layer
      it feeds.
    """
    by_name = {layer.name: layer for layer in geometry}
    feeds = {layer.fed_by: layer for layer in geometry if layer.fed_by is not None}
    unknown = set(spike_sums) - set(by_name)
    if unknown:
        raise ValueError(f"spike counts of unknown layers {sorted(unknown)}")
    out: dict[str, Any] = {
        "layers": {},
        "spikes_per_action": None,
        "firing_rate": None,
        "firing_rate_layer_mean": None,
        "synaptic_ops_per_action": None,
        # The first layer sees the analog input; it is computed once per action.
        "macs_per_action_first_layer": float(geometry[0].macs),
        "macs_per_action_ann": float(sum(layer.macs for layer in geometry)),
        "steps": float(steps),
        "time_steps": int(time_steps),
    }
    if not spike_sums:
        return out
    if steps <= 0:
        raise ValueError(f"steps must be > 0, got {steps!r}")
    total_spikes = total_neurons = total_sops = 0.0
    for layer in geometry:
        if layer.name not in spike_sums:
            continue
        counts = np.asarray(spike_sums[layer.name], np.float64)
        if counts.shape != layer.output_shape:
            raise ValueError(f"{layer.name}: spike counts {counts.shape} != {layer.output_shape}")
        spikes = float(counts.sum())
        target = feeds.get(layer.name)
        # Spikes reach the synapses of the layer they feed; an output layer feeds nothing.
        sops = 0.0 if target is None else float(np.sum(counts.reshape(-1) * target.fanout.ravel()))
        out["layers"][layer.name] = {
            "neurons": layer.neurons,
            "firing_rate": spikes / (steps * time_steps * layer.neurons),
            "spikes_per_action": spikes / steps,
            "synaptic_ops_per_action": sops / steps,
        }
        total_spikes += spikes
        total_neurons += layer.neurons
        total_sops += sops
    rates = [v["firing_rate"] for v in out["layers"].values()]
    out["spikes_per_action"] = total_spikes / steps
    out["firing_rate"] = total_spikes / (steps * time_steps * total_neurons)
    out["firing_rate_layer_mean"] = float(np.mean(rates))
    out["synaptic_ops_per_action"] = total_sops / steps
    return out


def _snn_nj(stats: Mapping[str, Any], pj_per_ac: float, pj_per_mac: float) -> float | None:
    sops = stats.get("synaptic_ops_per_action")
    if sops is None:
        return None
    return (stats["macs_per_action_first_layer"] * pj_per_mac + sops * pj_per_ac) / 1000.0


def energy_estimate(
    stats: Mapping[str, Any],
    *,
    pj_per_ac: float = PJ_PER_AC,
    pj_per_mac: float = PJ_PER_MAC,
    converted_stats: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Energy per action in nJ from :func:`spike_statistics` output.

    ``snn = (MACs_first_layer * pj_per_mac + SOP * pj_per_ac) / 1000``,
    ``ann = MACs_all_layers * pj_per_mac / 1000``, ``ann_over_snn = ann / snn`` (above 1 the
    spiking network uses less energy). ``converted_snn`` applies the SNN formula to
    ``converted_stats`` (a conversion-based SNN's statistics, typically T = 500), else None.
    SNN values are None when ``stats`` has no spikes (a ReLU network).

    Returns:
      ``{"energy_per_action_nj": {"snn", "ann", "converted_snn"}, "ann_over_snn"}``.
    """
    snn = _snn_nj(stats, pj_per_ac, pj_per_mac)
    ann = stats["macs_per_action_ann"] * pj_per_mac / 1000.0
    converted = None if converted_stats is None else _snn_nj(converted_stats, pj_per_ac, pj_per_mac)
    return {
        "energy_per_action_nj": {"snn": snn, "ann": ann, "converted_snn": converted},
        "ann_over_snn": ann / snn if snn else None,
    }
