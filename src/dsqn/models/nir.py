r"""Spiking Q-networks to and from NIR, the Neuromorphic Intermediate Representation.

NIR (Pedersen et al., Nat. Commun. 2024; PyPI ``nir``) describes a network as a graph of nodes
(``Affine``, ``Conv2d``, ``Flatten``, ``LIF``, ``IF``, ``LI``, ``I``, ...) whose neurons are
continuous-time ODEs. :func:`to_nir` writes a trained spiking Q-network as such a graph;
:func:`from_nir` runs a graph of the supported nodes on the toolkit's engine
(:mod:`dsqn.spiking`) as a pure function ``apply(params, x) -> outputs [T, ...]``.

**The neuron mapping at dt = 1.** NIR's LIF neuron is

.. math::

    \tau_N \dot v = (v_{leak} - v) + R\, I, \qquad z = \Theta(v - v_{thr}) \; (v > v_{thr}),
    \qquad v \leftarrow v_{reset} \text{ where } z = 1

and its forward-Euler step of length ``dt`` is
``v[t] = v[t-1] + (dt / tau_N) (v_leak - v[t-1] + R I[t])``, then fire, then reset. dsqn's LIF
(:mod:`dsqn.spiking.neurons`, one step per time step) is

.. math::

    H[t] &= V[t-1] + \frac{X[t] - (V[t-1] - V_{reset})}{\tau}  && \text{(decay\_input=True)} \\
    H[t] &= V[t-1] - \frac{V[t-1] - V_{reset}}{\tau} + X[t]    && \text{(decay\_input=False)} \\
    S[t] &= \Theta(H[t] - V_{th}) \; (H \ge V_{th}), \qquad
    V[t] = H[t] (1 - S[t]) + V_{reset} S[t]                     && \text{(hard reset)}

so with ``v = H`` before the reset and ``I = X`` the two are the same recurrence when

=================  ============================  ============================
NIR field           decay_input=True              decay_input=False
=================  ============================  ============================
``tau``             ``tau * dt``                  ``tau * dt``
``r``               ``1``                         ``tau``
``v_leak``          ``V_reset``                   ``V_reset``
``v_reset``         ``V_reset``                   ``V_reset``
``v_threshold``     ``V_th-`` (below)             ``V_th-``
=================  ============================  ============================

(``dt / tau_N = 1 / tau``: the graph's time constants are in the units of ``dt``; the default
``dt = 1`` writes ``tau`` in steps). NIR fires on ``v > v_thr``, dsqn on ``H >= V_th``; the
threshold written is ``V_th-``, the largest float32 below ``V_th``, so that for float32
membranes ``v > V_th-`` holds exactly when ``v >= V_th`` (:func:`nir_threshold`;
:func:`from_nir` inverts it). An IF neuron (``H[t] = V[t-1] + X[t]``) is NIR's ``IF``,
``v[t] = v[t-1] + dt R I[t]``, with ``r = 1 / dt``, the same ``v_threshold`` and ``v_reset``.
PLIF's learned ``1/tau = sigmoid(w)`` and learned thresholds are written as their values, one
per neuron (NIR parameters have the layer's shape). NIR does not define the membrane before the
first step; dsqn's is ``V[-1] = V_reset`` (0 in every preset), and :func:`from_nir` starts there.

**What NIR cannot express is refused** (:class:`NIRExportError`, naming the layer; nothing is
written): a soft reset (``V[t] = H[t] - V_th S[t]``, the ``v_reset=None`` option and the
converted networks of ``dsqn convert``: NIR's ``LIF`` and ``IF`` reset to ``v_reset``), the
ReLU of the ANN DQNs (NIR has no ReLU node), PL-SDQN's layer normalisation of currents
(``network.norm "popnorm"``: NIR has no such node), and a dueling head after a max-membrane
readout (a maximum over time is not a per-step linear map).

**The graph of a DSQN.** ``input -> conv1 -> conv1_lif -> conv2 -> conv2_lif -> conv3 ->
conv3_lif -> flatten -> fc1 -> fc1_lif -> fc2 -> output`` (MinAtar's DSQN: ``conv1 ->
conv1_lif -> flatten -> fc1 -> fc1_lif -> fc2``; MLPs: ``fc1 -> fc1_lif -> ... -> out``). The
input is the observation as the env yields it (Atari: ``[4, 84, 84]`` on the 0-255 scale; the
``1/255`` is folded into conv1's weights), except that MinAtar's channels-last ``[10, 10, C]``
frame of 0s and 1s is read channels-first, ``[C, 10, 10]`` (the reader transposes it). It is
presented unchanged at every one of the T steps (direct encoding: conv1's current is then the
same at every step, as dsqn computes it once). Tensors are channels-first (NIR's
``(C, H, W)``); fc1's columns are permuted from dsqn's channels-last flattening so that the
graph's ``Flatten`` of ``(C, H, W)`` feeds them. The graph's output at step ``t`` is
``y[t]``, and the one step the reader applies is the readout over the T steps, recorded in the
graph's metadata (``dsqn_readout``, ``dsqn_time_steps``):

- ``rate`` (the paper): ``Q = (1/T) sum_t y[t]`` with ``y[t] = W S_fc1[t] + b``, equal by
  linearity to dsqn's ``fc2((1/T) sum_t S_fc1[t])``; a dueling head ``Q = V + A - mean_a A`` is
  the linear map ``D = [I - 1/A | 1]`` folded into the output layer: ``W = D W_fc2``,
  ``b = D b_fc2``; a shared bias is broadcast to every action;
- ``spike_rate``: the output layer drives LIF/IF neurons (``fc2_lif``), ``Q = (1/T) sum_t
  y[t]`` of their spikes (a dueling head is a ``Linear`` node ``D`` after them);
- ``membrane_max | membrane_mean | membrane_last``: the output layer drives a non-firing neuron,
  NIR's ``LI`` (leaky: ``tau`` and ``r`` as above, ``v_leak = 0``) or ``I`` (integrating,
  ``r = 1 / dt``), and ``Q = max_t y[t]``, ``mean_t y[t]`` or ``y[T-1]`` of its membrane.

:func:`decode` applies that step. Floats: the folded conv1 and output weights, and summing the
output over time after the output layer rather than before, change float32 rounding only
(relative differences near 1e-7). Parameters are written in float32, whatever the network's
compute dtype (a bfloat16 network's graph computes in float32).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import nir
import numpy as np

from dsqn import spiking
from dsqn.models import conversion
from dsqn.models.networks import (
    DQN,
    DSQN,
    MLPDQN,
    MLPDSQN,
    NEURON_PARAMETER_PREFIXES,
    MinAtarDQN,
    MinAtarDSQN,
)

__all__ = [
    "READOUTS",
    "NIRExportError",
    "Imported",
    "to_nir",
    "from_nir",
    "decode",
    "nir_threshold",
    "dsqn_threshold",
    "dueling_matrix",
]

READOUTS = ("mean", "max", "last")
"""The reader's step over the T outputs of a graph (metadata ``dsqn_readout``)."""

_NETWORK_READOUTS = {
    "rate": "mean",
    "spike_rate": "mean",
    "membrane_max": "max",
    "membrane_mean": "mean",
    "membrane_last": "last",
}


class NIRExportError(ValueError):
    """A network, or one of its layers, that NIR's nodes cannot express."""


# ----------------------------------------------------------------------------- the mapping


def nir_threshold(v_threshold: Any) -> np.ndarray:
    """dsqn's ``V_th`` (fire on ``H >= V_th``) as NIR's ``v_threshold`` (fire on ``v > v_thr``):
    the largest float32 below it, so that ``v > result`` iff ``v >= V_th`` for float32 ``v``."""
    return np.nextafter(np.asarray(v_threshold, np.float32), np.float32(-np.inf))


def dsqn_threshold(v_threshold: Any) -> np.ndarray:
    """NIR's ``v_threshold`` (fire on ``v > v_thr``) as the engine's ``V_th`` (fire on
    ``H >= V_th``): the smallest float32 above it; the inverse of :func:`nir_threshold`."""
    return np.nextafter(np.asarray(v_threshold, np.float32), np.float32(np.inf))


def _full(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.array(np.broadcast_to(np.asarray(value, np.float32), shape), np.float32)


def _neuron_node(
    kind: str,
    shape: tuple[int, ...],
    *,
    tau: Any,
    v_threshold: Any,
    v_reset: float | None,
    decay_input: bool,
    dt: float,
    layer: str,
) -> nir.NIRNode:
    """The NIR node of one dsqn neuron layer (``kind`` ``"lif"`` or ``"if"``) of NIR shape
    ``shape``; parameters are values broadcast to it (module docstring's table)."""
    if v_reset is None:
        raise NIRExportError(
            f"layer {layer!r}: its neurons reset by subtraction (soft reset, v_reset=None), "
            "which NIR cannot express: NIR's LIF and IF nodes reset the membrane to v_reset"
        )
    threshold = nir_threshold(_full(v_threshold, shape))
    rest = _full(v_reset, shape)
    if kind == "if":
        return nir.IF(r=_full(1.0 / dt, shape), v_threshold=threshold, v_reset=rest)
    tau = _full(tau, shape)
    return nir.LIF(
        tau=(tau * np.float32(dt)).astype(np.float32),
        r=np.ones(shape, np.float32) if decay_input else tau,
        v_leak=rest,
        v_threshold=threshold,
        v_reset=rest,
    )


def _membrane_node(kind: str, shape: tuple[int, ...], *, tau: Any, decay_input: bool, dt: float):
    """The non-firing output neuron of the membrane readouts: ``LI`` (leaky) or ``I``."""
    if kind == "if":
        return nir.I(r=_full(1.0 / dt, shape))
    tau = _full(tau, shape)
    return nir.LI(
        tau=(tau * np.float32(dt)).astype(np.float32),
        r=np.ones(shape, np.float32) if decay_input else tau,
        v_leak=np.zeros(shape, np.float32),
    )


def dueling_matrix(num_actions: int) -> np.ndarray:
    """``D [A, A + 1]`` with ``Q = D o`` for outputs ``o = (A(s, .), V(s))``:
    ``Q = V + A - mean_a A`` (:func:`dsqn.models.networks.dueling_q`)."""
    d = np.eye(num_actions, num_actions + 1) - np.float64(1.0 / num_actions)
    d[:, -1] = 1.0
    return d


# ----------------------------------------------------------------------------- export


@dataclasses.dataclass
class _Builder:
    """Nodes and edges of a sequential graph, in order."""

    nodes: dict[str, nir.NIRNode] = dataclasses.field(default_factory=dict)
    last: str = "input"
    edges: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def add(self, name: str, node: nir.NIRNode) -> None:
        self.nodes[name] = node
        self.edges.append((self.last, name))
        self.last = name


def _array(x: Any) -> np.ndarray:
    return np.asarray(jax.device_get(x), np.float32)


def _tau(network, params: Mapping[str, Any], layer: str) -> Any:
    """The layer's time constant: the network's, or PLIF's learned ``1/sigmoid(w)``."""
    if network.neuron == "plif":
        return _array(spiking.plif_tau(params[NEURON_PARAMETER_PREFIXES[0] + layer]))
    return np.asarray(network.tau, np.float32)


def _threshold(network, params: Mapping[str, Any], layer: str) -> Any:
    if network.learn_threshold:
        return _array(params[NEURON_PARAMETER_PREFIXES[1] + layer])
    return np.asarray(network.v_threshold, np.float32)


def _channels_first(value: Any, hwc: tuple[int, int, int]) -> np.ndarray:
    """A parameter broadcastable to dsqn's channels-last neurons ``(H, W, C)``, as ``(C, H, W)``."""
    return np.transpose(_full(value, hwc), (2, 0, 1))


def _spiking_layer(b: _Builder, network, params, layer: str, shape, hwc=None, *, dt) -> None:
    tau, threshold = _tau(network, params, layer), _threshold(network, params, layer)
    if hwc is not None:
        tau, threshold = _channels_first(tau, hwc), _channels_first(threshold, hwc)
    kind = "if" if network.neuron == "if" else "lif"
    b.add(
        f"{layer}_{kind}",
        _neuron_node(
            kind,
            shape,
            tau=tau,
            v_threshold=threshold,
            v_reset=network.v_reset,
            decay_input=network.decay_input,
            dt=dt,
            layer=layer,
        ),
    )


def _affine(kernel: Any, bias: Any) -> nir.Affine:
    """A flax Dense ``x @ kernel + bias`` (kernel ``[in, out]``) as NIR's ``W x + b``."""
    return nir.Affine(weight=np.ascontiguousarray(_array(kernel).T), bias=_array(bias))


def _output_layer(b: _Builder, network, params, name: str, *, dt: float) -> None:
    """The output layer, the readout's neurons and the head (module docstring)."""
    layer = params[name]
    kernel = np.asarray(_array(layer["kernel"]), np.float64)
    if network.head == "shared_bias":
        bias = np.full(kernel.shape[1], float(_array(params[f"{name}_bias"])))
    else:
        bias = np.asarray(_array(layer["bias"]), np.float64)
    if network.readout == "rate":
        if network.head == "dueling":  # folded: Q = D (W s + b)
            d = dueling_matrix(network.num_actions)
            kernel, bias = kernel @ d.T, d @ bias
        b.add(name, _affine(kernel, bias))
        return
    if network.readout == "membrane_max" and network.head == "dueling":
        raise NIRExportError(
            f"layer {name!r}: a dueling head after the membrane_max readout is refused: the "
            "maximum over time is taken before the dueling map, which is then no per-step "
            "linear node (readouts membrane_mean and membrane_last are exported)"
        )
    b.add(name, _affine(kernel, bias))
    outputs = (kernel.shape[1],)
    kind = "if" if network.neuron == "if" else "lif"
    if network.readout == "spike_rate":
        _spiking_layer(b, network, params, name, outputs, dt=dt)
    else:
        tau = 1.0 if kind == "if" else _tau(network, params, name)
        node = _membrane_node(kind, outputs, tau=tau, decay_input=network.decay_input, dt=dt)
        b.add(f"{name}_{'i' if kind == 'if' else 'li'}", node)
    if network.head == "dueling":
        b.add(f"{name}_dueling", nir.Linear(weight=dueling_matrix(network.num_actions)))


def _conv_node(kernel: Any, bias: Any, stride: int, input_hw: tuple[int, int], scale=1.0):
    """A flax VALID convolution (kernel ``HWIO``) as NIR's ``Conv2d`` (weight ``OIHW``)."""
    weight = np.transpose(_array(kernel), (3, 2, 0, 1)) * np.float32(scale)
    return nir.Conv2d(
        input_shape=input_hw,
        weight=np.ascontiguousarray(weight, np.float32),
        stride=(stride, stride),
        padding=(0, 0),
        dilation=(1, 1),
        groups=1,
        bias=_array(bias),
    )


_DSQN_CONVS = (("conv1", 8, 4), ("conv2", 4, 2), ("conv3", 3, 1))
_MINATAR_CONVS = (("conv1", 3, 1),)


def _conv_graph(
    network, params, convs, input_chw: tuple[int, int, int], dt: float, input_scale: float = 1.0
) -> _Builder:
    """Conv layers (each followed by its neurons), ``Flatten``, ``fc1`` and its neurons, and the
    output layer ``fc2``: the graph of :class:`~dsqn.models.networks.DSQN` and
    :class:`~dsqn.models.networks.MinAtarDSQN`. ``input_scale`` is folded into conv1."""
    b = _Builder()
    channels, hw = input_chw[0], tuple(input_chw[1:])
    for i, (name, size, stride) in enumerate(convs):
        kernel = params[name]["kernel"]
        scale = input_scale if i == 0 else 1.0
        b.add(name, _conv_node(kernel, params[name]["bias"], stride, hw, scale=scale))
        channels, hw = int(kernel.shape[-1]), ((hw[0] - size) // stride + 1,) * 2
        _spiking_layer(b, network, params, name, (channels, *hw), (*hw, channels), dt=dt)
    b.add("flatten", nir.Flatten(input_type={"input": np.array([channels, *hw])}, start_dim=0))
    kernel = _array(params["fc1"]["kernel"])  # rows in dsqn's (H, W, C) order -> (C, H, W)
    kernel = kernel.reshape(*hw, channels, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
    b.add("fc1", _affine(kernel, params["fc1"]["bias"]))
    _spiking_layer(b, network, params, "fc1", (int(kernel.shape[1]),), dt=dt)
    _output_layer(b, network, params, "fc2", dt=dt)
    return b


def _mlp_graph(network: MLPDSQN, params, dt: float) -> _Builder:
    b = _Builder()
    for i in range(1, len(network.hidden_sizes) + 1):
        name = f"fc{i}"
        b.add(name, _affine(params[name]["kernel"], params[name]["bias"]))
        _spiking_layer(b, network, params, name, (int(params[name]["bias"].shape[0]),), dt=dt)
    _output_layer(b, network, params, "out", dt=dt)
    return b


def to_nir(network, params: Mapping[str, Any], *, dt: float = 1.0) -> nir.NIRGraph:
    """The NIR graph of a spiking Q-network (:class:`dsqn.models.networks.DSQN`,
    :class:`~dsqn.models.networks.MinAtarDSQN` or :class:`~dsqn.models.networks.MLPDSQN`) with
    parameters ``params`` (one agent's, the network's
    ``params`` collection); mapping and layout in the module docstring.

    ``dt``: the length of one step in the graph's time unit (``tau`` is written as
    ``tau * dt``; 1 writes it in steps). The graph's metadata records ``dsqn_time_steps`` (T),
    ``dsqn_readout`` (:data:`READOUTS`: the reader's step over the T outputs), ``dt`` and the
    network's class.

    Raises:
      NIRExportError: a network or layer NIR cannot express (named in the message): the ANN
        DQNs (ReLU), the converted networks and every soft reset, PL-SDQN's ``popnorm``, a
        dueling head after a max-membrane readout.
    """
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    if isinstance(network, DQN | MinAtarDQN | MLPDQN):
        first = "fc1" if isinstance(network, MLPDQN) else "conv1"
        raise NIRExportError(
            f"{type(network).__name__}: layer {first!r} is followed by a ReLU, which NIR has no "
            "node for; only spiking networks (DSQN, MinAtarDSQN, MLPDSQN) are exported"
        )
    if isinstance(
        network,
        conversion.ConvertedSNN | conversion.ConvertedMinAtarSNN | conversion.ConvertedMLPSNN,
    ):
        raise NIRExportError(
            f"{type(network).__name__}: layer 'fc1' (every layer) resets its IF neurons by "
            "subtraction (soft reset), which NIR cannot express: NIR's IF node resets the "
            "membrane to v_reset"
        )
    if not isinstance(network, DSQN | MinAtarDSQN | MLPDSQN):
        raise NIRExportError(
            f"cannot export a {type(network).__name__}: valid networks are DSQN, MinAtarDSQN "
            "and MLPDSQN"
        )
    if network.norm != "none":
        first = "fc1" if isinstance(network, MLPDSQN) else "conv1"
        raise NIRExportError(
            f"{type(network).__name__}: layer {first!r} (every spiking layer) normalises its "
            f"currents (network.norm {network.norm!r}: PL-SDQN's layer normalisation), which "
            "NIR has no node for; only networks with norm 'none' are exported"
        )
    if isinstance(network, DSQN):
        shape = (4, 84, 84)
        builder = _conv_graph(network, params, _DSQN_CONVS, shape, dt, input_scale=1 / 255.0)
    elif isinstance(network, MinAtarDSQN):
        shape = (int(params["conv1"]["kernel"].shape[2]), 10, 10)
        builder = _conv_graph(network, params, _MINATAR_CONVS, shape, dt)
    else:
        shape = (int(params["fc1"]["kernel"].shape[0]),)
        builder = _mlp_graph(network, params, dt)
    nodes = dict(builder.nodes)
    nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    last = nodes[builder.last]
    nodes["output"] = nir.Output(output_type={"output": np.array(last.output_type["output"])})
    metadata = {
        "dsqn_time_steps": int(network.time_steps),
        "dsqn_readout": _NETWORK_READOUTS[network.readout],
        "dt": float(dt),
        "dsqn_network": type(network).__name__,
    }
    return nir.NIRGraph(
        nodes=nodes, edges=[*builder.edges, (builder.last, "output")], metadata=metadata
    )


# ----------------------------------------------------------------------------- import


def decode(outputs: jax.Array, readout: str = "mean") -> jax.Array:
    """The reader's step over a graph's outputs ``[T, ...] -> [...]``: their mean, maximum or
    last value (:data:`READOUTS`; a dsqn graph's is in its metadata, ``dsqn_readout``)."""
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; valid: {READOUTS}")
    if readout == "mean":
        return jnp.mean(outputs, axis=0)
    if readout == "max":
        return jnp.max(outputs, axis=0)
    return outputs[-1]


@dataclasses.dataclass(frozen=True)
class Imported:
    """A NIR graph on the dsqn engine.

    Attributes:
      params: the graph's arrays, ``{node: {field: array}}`` (jnp float32).
      apply: ``apply(params, x, time_steps=None, spikes=False)``: ``x`` is a sequence
        ``[T, B, *input_shape]``, or, with ``time_steps=T``, one input ``[B, *input_shape]``
        presented at every step (linear nodes before the first neuron then run once). Returns
        the output node's values ``[T, B, ...]``, and with ``spikes=True`` also
        ``{node: spikes [T, B, ...]}`` of every spiking node. Pure: jit it with ``time_steps``
        and ``spikes`` static, vmap it over ``params`` or ``x``.
      order: the nodes in the order they run.
      input_shape: the shape of one input (NIR's, no batch axis).
      metadata: the graph's metadata (a dsqn graph's readout and T).
    """

    params: dict[str, dict[str, jax.Array]]
    apply: Callable[..., Any]
    order: tuple[str, ...]
    input_shape: tuple[int, ...]
    metadata: dict[str, Any]

    def q(self, x: jax.Array) -> jax.Array:
        """A dsqn graph's Q-values ``[B, A]`` of observations ``[B, *input_shape]``, presented
        for the graph's ``dsqn_time_steps`` steps and decoded by its ``dsqn_readout``."""
        for key in ("dsqn_time_steps", "dsqn_readout"):
            if key not in self.metadata:
                raise ValueError(f"the graph's metadata has no {key!r}: it was not written by dsqn")
        steps = int(np.asarray(self.metadata["dsqn_time_steps"]))
        readout = _text(self.metadata["dsqn_readout"])
        return self._decoded(self.params, jnp.asarray(x, jnp.float32), steps, readout)

    @functools.cached_property
    def _decoded(self):
        return jax.jit(
            lambda p, x, steps, readout: decode(self.apply(p, x, time_steps=steps), readout),
            static_argnums=(2, 3),
        )


def _text(value: Any) -> str:
    value = np.asarray(value).item() if not isinstance(value, str) else value
    return value.decode() if isinstance(value, bytes) else str(value)


_SUPPORTED = ("Input", "Output", "Affine", "Linear", "Scale", "Conv2d", "Flatten", "LIF", "IF",
              "LI", "I")  # fmt: skip


def _order(graph: nir.NIRGraph) -> list[str]:
    """The nodes in topological order (Kahn); refuses cycles (recurrent graphs)."""
    preds = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
    done: list[str] = []
    todo = [n for n in graph.nodes if not preds[n]]
    while todo:
        node = todo.pop(0)
        done.append(node)
        for a, b in graph.edges:
            if a == node and all(p in done for p in preds[b]) and b not in done + todo:
                todo.append(b)
    if len(done) != len(graph.nodes):
        stuck = sorted(set(graph.nodes) - set(done))
        raise ValueError(
            f"the graph has a cycle through {stuck}: recurrent graphs are not supported "
            "(feed-forward graphs of the nodes " + ", ".join(_SUPPORTED) + " are)"
        )
    return done


def _shape_of(types: Mapping[str, Any] | None) -> tuple[int, ...] | None:
    if not types:
        return None
    value = next(iter(types.values()))
    return None if value is None else tuple(int(d) for d in np.ravel(np.asarray(value)))


def _padding(node: nir.Conv2d):
    padding = node.padding
    if isinstance(padding, str):
        return padding.upper()
    p = np.broadcast_to(np.ravel(np.asarray(padding, int)), (2,))
    return [(int(p[0]), int(p[0])), (int(p[1]), int(p[1]))]


def _node_params(name: str, node: nir.NIRNode, dt: float) -> tuple[dict[str, Any], dict]:
    """``(arrays, static options)`` of one node on the engine (inverse mapping of the module
    docstring)."""
    f32 = lambda v: jnp.asarray(np.asarray(v, np.float32))
    kind = type(node).__name__
    if isinstance(node, nir.Affine):
        return {"weight": f32(node.weight), "bias": f32(node.bias)}, {}
    if isinstance(node, nir.Linear):
        return {"weight": f32(node.weight)}, {}
    if isinstance(node, nir.Scale):
        return {"scale": f32(node.scale)}, {}
    if isinstance(node, nir.Conv2d):
        arrays = {"weight": f32(node.weight)}
        if node.bias is not None and np.size(node.bias) > 0:
            arrays["bias"] = f32(node.bias)
        options = dict(
            stride=tuple(int(s) for s in np.broadcast_to(np.ravel(node.stride), (2,))),
            dilation=tuple(int(s) for s in np.broadcast_to(np.ravel(node.dilation), (2,))),
            padding=_padding(node),
            groups=int(node.groups),
        )
        return arrays, options
    if isinstance(node, nir.Flatten):
        return {}, dict(
            start=int(node.start_dim), end=int(node.end_dim), shape=_shape_of(node.input_type)
        )
    if isinstance(node, nir.LIF):
        tau = np.asarray(node.tau, np.float64) / dt  # tau in steps
        r = np.asarray(node.r, np.float32)
        v_leak = np.asarray(node.v_leak, np.float32)
        v_reset = np.asarray(node.v_reset, np.float32)
        # H = V + (v_leak - V + r I) / tau, the engine's leak pulling towards v_reset: with
        # r == tau (dsqn's decay_input=False) the input is I + (v_leak - v_reset) / tau, not
        # divided by tau; otherwise (decay_input) it is r I + v_leak - v_reset.
        no_decay = bool(np.allclose(r, tau, rtol=1e-6, atol=0))
        offset = (v_leak - v_reset) / tau if no_decay else v_leak - v_reset
        arrays = {
            "tau": f32(tau),
            "v_threshold": f32(dsqn_threshold(node.v_threshold)),
            "v_reset": f32(v_reset),
            "gain": f32(np.ones_like(r) if no_decay else r),
            "offset": f32(offset),
        }
        return arrays, dict(decay_input=not no_decay)
    if isinstance(node, nir.IF):
        return {
            "gain": f32(np.asarray(node.r, np.float32) * np.float32(dt)),
            "v_threshold": f32(dsqn_threshold(node.v_threshold)),
            "v_reset": f32(node.v_reset),
        }, {}
    if isinstance(node, nir.LI):
        tau = np.asarray(node.tau, np.float64) / dt
        r = np.asarray(node.r, np.float32)
        no_decay = bool(np.allclose(r, tau, rtol=1e-6, atol=0))
        return {
            "tau": f32(tau),
            "gain": f32(np.ones_like(r) if no_decay else r),
            "v_leak": f32(node.v_leak),
        }, dict(decay_input=not no_decay)
    if isinstance(node, nir.I):
        return {"gain": f32(np.asarray(node.r, np.float32) * np.float32(dt))}, {}
    if isinstance(node, nir.Input | nir.Output):
        return {}, {}
    raise ValueError(
        f"node {name!r} is a {kind}, which from_nir does not run; supported nodes: "
        + ", ".join(_SUPPORTED)
    )


_NEURONS = (nir.LIF, nir.IF, nir.LI, nir.I)


def _lead(value: jax.Array, x: jax.Array) -> jax.Array:
    """``value`` (a node's per-sample array) with leading size-1 axes up to the rank of ``x``."""
    return value.reshape((1,) * (x.ndim - value.ndim) + value.shape)


def _run_node(node, p: dict, opts: dict, x: jax.Array, constant: bool, steps: int | None):
    """One node on ``x`` (``[B, ...]`` if ``constant``, else ``[T, B, ...]``)."""
    if isinstance(node, nir.Affine):
        y = x @ p["weight"].T
        return y + _lead(p["bias"], y)
    if isinstance(node, nir.Linear):
        return x @ p["weight"].T
    if isinstance(node, nir.Scale):
        return x * _lead(p["scale"], x)
    if isinstance(node, nir.Conv2d):
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:])
        y = jax.lax.conv_general_dilated(
            flat,
            p["weight"],
            window_strides=opts["stride"],
            padding=opts["padding"],
            rhs_dilation=opts["dilation"],
            feature_group_count=opts["groups"],
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )
        if "bias" in p:
            y = y + p["bias"].reshape(1, -1, 1, 1)
        return y.reshape(*lead, *y.shape[1:])
    if isinstance(node, nir.Flatten):
        rank = len(opts["shape"]) if opts["shape"] is not None else x.ndim - 1 - (not constant)
        sample = x.shape[x.ndim - rank :]
        start, end = opts["start"] % rank, opts["end"] % rank
        flat = (*sample[:start], int(np.prod(sample[start : end + 1])), *sample[end + 1 :])
        return x.reshape(*x.shape[: x.ndim - rank], *flat)
    time_steps = steps if constant else None
    if isinstance(node, nir.LIF):
        return spiking.lif(
            x * _lead(p["gain"], x) + _lead(p["offset"], x),
            tau=p["tau"],
            v_threshold=p["v_threshold"],
            v_reset=p["v_reset"],
            decay_input=opts["decay_input"],
            time_steps=time_steps,
        )
    if isinstance(node, nir.IF):
        return spiking.integrate_and_fire(
            x * _lead(p["gain"], x),
            v_threshold=p["v_threshold"],
            v_reset=p["v_reset"],
            time_steps=time_steps,
        )
    never = dict(v_threshold=jnp.inf, return_membrane=True, time_steps=time_steps)
    if isinstance(node, nir.LI):  # leaks towards v_leak, from v_leak
        trace = spiking.lif(
            x * _lead(p["gain"], x),
            tau=p["tau"],
            v_reset=p["v_leak"],
            decay_input=opts["decay_input"],
            **never,
        )
        return trace[1]
    if isinstance(node, nir.I):
        return spiking.integrate_and_fire(x * _lead(p["gain"], x), v_reset=0.0, **never)[1]
    return x  # Input, Output


def from_nir(graph: nir.NIRGraph | str, *, dt: float | None = None) -> Imported:
    """A NIR graph (or the path of a ``.nir`` file) run on the dsqn engine.

    Supported nodes: ``Input``, ``Output`` (one each), ``Affine``, ``Linear``, ``Scale``,
    ``Conv2d``, ``Flatten``, ``LIF``, ``IF``, ``LI``, ``I``, in any feed-forward graph (a node
    with several inputs sums them). Neurons are the inverse of the module docstring's mapping,
    with NIR's forward-Euler step of length ``dt`` (default: the graph's metadata ``dt``, else
    1): LIF ``H = V + (v_leak - V + r I) dt / tau``, fire where ``H > v_threshold``, reset to
    ``v_reset``; IF ``H = V + dt r I``; LI and I the same without firing (their output is the
    membrane). Every membrane starts at ``v_reset`` (LI: ``v_leak``; I: 0).

    Raises:
      ValueError: a node of another type (named), a cycle, or not one input and one output.
    """
    if isinstance(graph, str) or hasattr(graph, "__fspath__"):
        graph = nir.read(graph)
    metadata = dict(getattr(graph, "metadata", None) or {})
    if dt is None:
        dt = float(np.asarray(metadata.get("dt", 1.0)))
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    order = _order(graph)
    inputs = [n for n in order if isinstance(graph.nodes[n], nir.Input)]
    outputs = [n for n in order if isinstance(graph.nodes[n], nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"from_nir runs graphs of one Input and one Output node; this one has inputs "
            f"{inputs} and outputs {outputs}"
        )
    params, options = {}, {}
    for name in order:
        params[name], options[name] = _node_params(name, graph.nodes[name], dt)
    params = {k: v for k, v in params.items() if v}
    preds = {n: [a for a, b in graph.edges if b == n] for n in order}
    input_shape = _shape_of(graph.nodes[inputs[0]].input_type) or ()
    nodes = dict(graph.nodes)

    def apply(params, x, time_steps: int | None = None, spikes: bool = False):
        constant = time_steps is not None
        if not constant and jnp.ndim(x) < 1:
            raise ValueError("x must be a sequence [T, B, ...] (or pass time_steps=T)")
        values = {}
        trains = {}
        for name in order:
            node = nodes[name]
            if name == inputs[0]:
                x = jnp.asarray(x)
                if not jnp.issubdtype(x.dtype, jnp.floating):  # e.g. uint8 frames
                    x = x.astype(jnp.float32)
                values[name] = (x, constant)
                continue
            parts = [values[p] for p in preds[name]]
            is_const = all(c for _, c in parts)
            total = None
            for value, c in parts:
                if not is_const and c:
                    value = jnp.broadcast_to(value, (time_steps, *value.shape))
                total = value if total is None else total + value
            out = _run_node(node, params.get(name, {}), options[name], total, is_const, time_steps)
            if isinstance(node, _NEURONS):
                is_const = False
                if isinstance(node, nir.LIF | nir.IF):
                    trains[name] = out
            values[name] = (out, is_const)
        result, c = values[outputs[0]]
        if c:
            result = jnp.broadcast_to(result, (time_steps, *result.shape))
        return (result, trains) if spikes else result

    return Imported(params, apply, tuple(order), input_shape, metadata)
