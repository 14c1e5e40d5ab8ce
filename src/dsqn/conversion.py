r"""ANN-to-SNN conversion of a trained ReLU DQN (Tan, Patel & Kozma, AAAI 2021).

The paper's conversion-based spiking baseline (docs: PAPER_PROTOCOL section 5):

1. **Normalisation data**: about 15,000 observations visited by the trained DQN playing with
   epsilon 0.05 on evaluation-protocol environments (:func:`collect_normalization_obs`).
2. **Layer-wise robust normalisation** (:func:`layer_scales`, :func:`normalize_params`): for every
   conv/dense layer ``l`` in network order, including the output layer, ``lambda_l`` is the
   ``p``-th percentile (p = 99.9) of ALL of that layer's pre-activation outputs (before the ReLU;
   every neuron, every observation, negative values included) on the data, and

   .. math::  W_l \leftarrow W_l \, \lambda_{l-1} / \lambda_l, \qquad
              b_l \leftarrow b_l / \lambda_l, \qquad \lambda_0 = 1

   so that the normalised ReLU network computes ``a_l / lambda_l`` at every layer (ReLU commutes
   with positive scaling) and its activations mostly lie in [0, 1], the range of a spike rate.
3. **Spiking network** (:class:`ConvertedSNN`, :class:`ConvertedMLPSNN`, same parameter tree as
   :class:`dsqn.networks.DQN` / :class:`dsqn.networks.MLPDQN`): every layer, the output layer
   included, drives integrate-and-fire neurons with threshold ``V_th = 1``, reset by subtraction
   and no leak, ``V[-1] = 0``:

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

:func:`convert_run` converts every seed of a DQN run directory, evaluates the spiking networks
with the run's protocol and writes a run directory of its own (``name`` ``"converted-snn"``);
:func:`sweep` repeats it over simulation lengths and percentiles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dsqn import agent, spiking
from dsqn.checkpoint import save_json
from dsqn.config import Config, to_dict
from dsqn.envs.seeding import ENV_SEED_STRIDE, MAX_TRAINING_SEED
from dsqn.evaluate import EvalResult, make_pool, max_q_summary
from dsqn.networks import ATARI_OBS_SHAPE, DQN, MLPDQN
from dsqn.precision import matmul_precision

__all__ = [
    "CONVERTED_NAME",
    "V_THRESHOLD",
    "ConvertedSNN",
    "ConvertedMLPSNN",
    "converted_network",
    "layer_order",
    "collect_normalization_obs",
    "layer_scales",
    "normalize_params",
    "greedy_actions",
    "matching_rate",
    "convert_run",
    "load_converted",
    "sweep",
]

CONVERTED_NAME = "converted-snn"
"""The ``name`` of a converted run directory's config (the report's algorithm)."""

V_THRESHOLD = 1.0
"""Firing threshold of every converted neuron; the normalisation maps activations onto it."""

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

    Takes the parameters of :class:`dsqn.networks.DQN` after :func:`normalize_params` (layers
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


class ConvertedMLPSNN(_ConvertedNetwork):
    """The converted MLP. ``obs: float [B, D] -> Q float32 [B, A]``.

    Takes the parameters of :class:`dsqn.networks.MLPDQN` after :func:`normalize_params`
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
    """The spiking counterpart of a ReLU ``DQN`` or ``MLPDQN`` (same parameter tree)."""
    if isinstance(network, DQN):
        return ConvertedSNN(network.num_actions, time_steps=time_steps)
    if isinstance(network, MLPDQN):
        return ConvertedMLPSNN(
            network.num_actions, time_steps=time_steps, hidden_sizes=tuple(network.hidden_sizes)
        )
    raise TypeError(
        f"only ReLU networks can be converted (DQN or MLPDQN), got {type(network).__name__}"
    )


def layer_order(network: nn.Module) -> tuple[str, ...]:
    """The weight layers of a ReLU network or its converted counterpart, input to output."""
    if isinstance(network, DQN | ConvertedSNN):
        return ("conv1", "conv2", "conv3", "fc1", "fc2")
    if isinstance(network, MLPDQN | ConvertedMLPSNN):
        return (*(f"fc{i + 1}" for i in range(len(network.hidden_sizes))), "out")
    raise TypeError(
        "expected DQN, MLPDQN, ConvertedSNN or ConvertedMLPSNN, got " + type(network).__name__
    )


# ----------------------------------------------------------------------------- normalisation data


def _collection_env(config: Config, num_envs: int, seed: int, held_out: bool) -> Any:
    """An evaluation-protocol pool whose env seeds no training or evaluation pool uses.

    Training seed ``s`` owns the env-seed blocks ``2s`` (train) and ``2s + 1`` (eval) of
    ``ENV_SEED_STRIDE`` seeds each (:mod:`dsqn.envs.seeding`); pools use their low indices. The
    upper half of block ``2 * seed`` holds normalisation data, that of ``2 * seed + 1`` held-out
    data, so neither replays a game of training or of the evaluation protocol.
    """
    if not 0 <= seed <= MAX_TRAINING_SEED:
        raise ValueError(f"seed must lie in [0, {MAX_TRAINING_SEED}], got {seed!r}")
    if not 1 <= num_envs <= ENV_SEED_STRIDE // 2:
        raise ValueError(f"num_envs must lie in [1, {ENV_SEED_STRIDE // 2}], got {num_envs!r}")
    block = 2 * seed + int(held_out)
    env_seeds = [block * ENV_SEED_STRIDE + ENV_SEED_STRIDE // 2 + j for j in range(num_envs)]
    return make_pool(config, env_seeds, train=False)


def collect_normalization_obs(
    config: Config,
    network: nn.Module,
    params: Any,
    num_frames: int = 15_000,
    epsilon: float = 0.05,
    seed: int = 0,
    *,
    num_envs: int = 16,
    held_out: bool = False,
) -> np.ndarray:
    """Observations visited by ``network`` (one seed's ``params``) acting epsilon-greedily.

    ``num_envs`` evaluation-protocol environments (full games, raw rewards) play in parallel;
    every observation the agent acts on is recorded, step-major, until ``num_frames`` are
    collected. Terminal observations count (they were visited); envpool's reset steps are never
    recorded twice. Env seeds and the action randomness depend on ``seed`` and ``held_out`` (see
    :func:`_collection_env`): held-out data never shares a game with normalisation data.

    Returns:
      ``[num_frames, *obs_shape]`` in the env's dtype (Atari uint8 ``[N, 4, 84, 84]``).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames!r}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
    env = _collection_env(config, num_envs, seed, held_out)
    act = jax.jit(lambda p, o, k: agent.select_actions(k, network.apply({"params": p}, o), epsilon))
    key = jax.random.fold_in(jax.random.key(seed), 5_000_011 + int(held_out))
    obs, _ = env.reset()
    frames = []
    for _ in range(math.ceil(num_frames / num_envs)):
        frames.append(np.asarray(obs))
        key, act_key = jax.random.split(key)
        actions = np.asarray(act(params, obs, act_key))
        obs, *_ = env.step(actions)
    env.close()
    return np.concatenate(frames)[:num_frames]


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


# ----------------------------------------------------------------------------- run directories


def _seed_params(params: Any, i: int) -> Any:
    return jax.tree.map(lambda x: x[i], params)


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _eval_keys(seeds: Sequence[int]) -> jax.Array:
    # Keys distinct from training's, ``dsqn evaluate``'s and ``dsqn energy``'s; the ANN and the
    # SNN share them (same games, same exploration draws: a paired comparison).
    return jnp.stack([jax.random.fold_in(jax.random.key(s), 4_000_037) for s in seeds])


def _episode_summary(result: EvalResult, i: int, steps: int):
    scores = result.returns[i].astype(float)
    return {
        "agent_steps": int(steps),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "scores": scores.tolist(),
        "lengths": result.lengths[i].astype(int).tolist(),
        **max_q_summary(result, i),
    }


class _Source:
    """A DQN run's checkpoint with its data and ANN evaluations, cached across conversions."""

    def __init__(self, run_dir: str | Path, checkpoint: str):
        from dsqn.evaluation_cli import load_params

        self.run_dir = Path(run_dir).resolve()
        self.checkpoint = str(checkpoint)
        self.config, self.exp, self.params, self.agent_steps = load_params(run_dir, checkpoint)
        if self.config.network.kind != "dqn":
            raise ValueError(
                f"{run_dir} holds a {self.config.network.kind!r} network; only ReLU networks "
                "(network.kind 'dqn') can be converted"
            )
        if self.config.network.head != "linear":
            raise ValueError(
                f"{run_dir} has the {self.config.network.head!r} output head; conversion "
                "(Tan et al. 2021) is defined for a linear output layer (network.head 'linear')"
            )
        self.seeds = list(self.config.run.seeds)
        self._obs: dict[tuple[int, int, bool], np.ndarray] = {}
        self._ann_eval: dict[int, Any] = {}
        self._snn_evaluators: dict[tuple[int, int], Any] = {}

    def obs(self, i: int, frames: int, held_out: bool) -> np.ndarray:
        key = (i, frames, held_out)
        if key not in self._obs:
            self._obs[key] = collect_normalization_obs(
                self.config,
                self.exp.network,
                _seed_params(self.params, i),
                frames,
                epsilon=0.05,
                seed=self.seeds[i],
                held_out=held_out,
            )
        return self._obs[key]

    def ann_evaluation(self, episodes: int) -> Any:
        from dsqn.evaluate import Evaluator

        if episodes not in self._ann_eval:
            evaluator = Evaluator(self.config, self.exp.network, self.seeds, episodes=episodes)
            self._ann_eval[episodes] = evaluator(self.params, _eval_keys(self.seeds))
        return self._ann_eval[episodes]

    def snn_evaluator(self, snn: _ConvertedNetwork, episodes: int) -> Any:
        """An evaluator of ``snn`` that counts spikes, shared by conversions of the same T."""
        from dsqn.evaluate import Evaluator

        key = (snn.time_steps, episodes)
        if key not in self._snn_evaluators:
            self._snn_evaluators[key] = Evaluator(
                self.config, snn, self.seeds, episodes=episodes, collect_spikes=True
            )
        return self._snn_evaluators[key]


def _run_config(source: _Source, settings: dict[str, Any], command: list[str] | None):
    from dsqn.runner import run_metadata

    data = to_dict(source.config)
    data["name"] = CONVERTED_NAME
    data["conversion"] = settings
    data["meta"] = run_metadata(command)
    return data


def _check_out_dir(out_dir: Path) -> None:
    config_path = out_dir / "config.json"
    if config_path.exists() and "conversion" not in json.loads(config_path.read_text()):
        raise FileExistsError(
            f"{out_dir} holds another kind of run (its config.json has no 'conversion'); "
            "choose a new directory"
        )


def _convert(
    source: _Source,
    out_dir: str | Path,
    *,
    time_steps: int,
    percentile: float,
    normalization_frames: int,
    matching_frames: int,
    episodes: int | None,
    batch_size: int,
    command: list[str] | None,
    output_scale: str = "percentile",
) -> dict[str, Any]:
    from dsqn.energy import energy_estimate, layer_geometry, spike_statistics
    from dsqn.runner import evaluation_summary
    from dsqn.train import frames_per_agent_step

    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    config, ann = source.config, source.exp.network
    snn = converted_network(ann, time_steps=time_steps)
    layers = layer_order(ann)
    episodes = config.eval.episodes if episodes is None else episodes

    scales, normalized, matches = [], [], []
    for i in range(len(source.seeds)):
        ann_params = _seed_params(source.params, i)
        seed_scales = layer_scales(
            ann,
            ann_params,
            source.obs(i, normalization_frames, False),
            percentile,
            output_scale=output_scale,
        )
        seed_params = normalize_params(ann_params, seed_scales, layers)
        held_out = source.obs(i, matching_frames, True)
        matches.append(
            matching_rate(ann, ann_params, snn, seed_params, held_out, batch_size=batch_size)
        )
        scales.append(seed_scales)
        normalized.append(seed_params)

    evaluator = source.snn_evaluator(snn, episodes)
    result = evaluator(_stack(normalized), _eval_keys(source.seeds))
    ann_result = source.ann_evaluation(episodes)
    geometry = layer_geometry(snn, jnp.zeros((1, *source.exp.obs_shape), jnp.float32))

    per_seed, conversion_seeds = {}, {}
    for i, seed in enumerate(source.seeds):
        steps = source.agent_steps[i]
        final = _episode_summary(result, i, steps)
        ann_summary = _episode_summary(ann_result, i, steps)
        # The converted policy is scored under the protocol of the checkpoint it was made from,
        # so that reports compare it like for like (best with best, final with final).
        protocol = "best" if source.checkpoint == "best" else "final"
        per_seed[str(seed)] = {"final": None, "best": None, protocol: final}
        sums = {k: np.asarray(v[i]) for k, v in result.spike_sums.items()}
        stats = spike_statistics(geometry, sums, float(result.steps[i]), time_steps)
        conversion_seeds[str(seed)] = {
            "agent_steps": steps,
            "scales": scales[i],
            "matching_rate": matches[i],
            "firing_rates": {k: v["firing_rate"] for k, v in stats["layers"].items()},
            "snn": {k: final[k] for k in ("mean", "std", "scores", "lengths")},
            "ann": {k: ann_summary[k] for k in ("mean", "std", "scores", "lengths")},
            "spike_statistics": stats,
            **energy_estimate(stats),
        }

    settings = {
        "source_run": str(source.run_dir),
        "checkpoint": source.checkpoint,
        "time_steps": int(time_steps),
        "percentile": float(percentile),
        "output_scale": output_scale,
        "normalization_frames": int(normalization_frames),
        "matching_frames": int(matching_frames),
        "normalization_epsilon": 0.05,
        "layers": list(layers),
    }
    top_steps = max(source.agent_steps)
    evaluation = {
        "name": CONVERTED_NAME,
        "game": config.env.game,
        "suite": config.env.suite,
        "protocol": config.env.protocol,
        "agent_steps": top_steps,
        "frames": top_steps * frames_per_agent_step(config),
        "episodes": evaluator.episodes,
        "epsilon": evaluator.epsilon,
        "per_seed": per_seed,
        "summary": {
            "final": evaluation_summary(per_seed, "final"),
            "best": evaluation_summary(per_seed, "best"),
        },
    }
    snn_means = [v["snn"]["mean"] for v in conversion_seeds.values()]
    ann_means = [v["ann"]["mean"] for v in conversion_seeds.values()]
    conversion = {
        **settings,
        "episodes": evaluator.episodes,
        "epsilon": evaluator.epsilon,
        "per_seed": conversion_seeds,
        "summary": {
            "snn_mean": float(np.mean(snn_means)),
            "ann_mean": float(np.mean(ann_means)),
            "matching_rate_mean": float(np.mean(matches)),
            "seeds": len(source.seeds),
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_json(out_dir / "config.json", _run_config(source, settings, command))
    save_json(out_dir / "evaluation.json", evaluation)
    save_json(out_dir / "conversion.json", conversion)
    return {**conversion, "run_dir": str(out_dir)}


def convert_run(
    dqn_run_dir: str | Path,
    out_dir: str | Path,
    *,
    time_steps: int = 500,
    percentile: float = 99.9,
    normalization_frames: int = 15_000,
    checkpoint: str = "best",
    episodes: int | None = None,
    matching_frames: int | None = None,
    batch_size: int = 32,
    command: list[str] | None = None,
    output_scale: str = "percentile",
) -> dict[str, Any]:
    """Converts every seed of a DQN run and writes the converted run directory ``out_dir``.

    Per seed: normalisation data (``normalization_frames`` observations of the DQN playing with
    epsilon 0.05), layer scales at ``percentile``, normalised parameters, and the matching rate on
    ``matching_frames`` held-out observations (default: as many as for normalisation) collected
    the same way on other games. Every seed's SNN then plays ``episodes`` games (default: the
    run's ``eval.episodes``) under the run's evaluation protocol, and the ANN plays the same games
    with the same exploration draws for comparison. ``batch_size`` bounds the observations per SNN
    forward pass when measuring the matching rate (memory grows as ``T * batch_size``).
    ``output_scale`` is the output layer's rule (:data:`OUTPUT_SCALES`; the paper's by default).

    Writes into ``out_dir``: ``config.json`` (the DQN's config with ``name`` ``"converted-snn"``,
    a top-level ``"conversion"`` section of the settings, and ``meta``), ``evaluation.json``
    (training runs' schema; per seed the converted SNN's evaluation stands under ``best`` when it
    was converted from the best checkpoint and under ``final`` otherwise, the other is null, so
    that reports compare it like for like) and ``conversion.json`` (per seed: scales, matching rate,
    firing rate per layer, SNN and ANN scores, spike statistics and energy per action).

    Returns:
      The ``conversion.json`` object plus ``"run_dir"``.
    """
    source = _Source(dqn_run_dir, checkpoint)
    with matmul_precision(source.config.run.matmul_precision):
        return _convert(
            source,
            out_dir,
            time_steps=time_steps,
            percentile=percentile,
            normalization_frames=normalization_frames,
            matching_frames=matching_frames or normalization_frames,
            episodes=episodes,
            batch_size=batch_size,
            command=command,
            output_scale=output_scale,
        )


def load_converted(run_dir: str | Path) -> tuple[Config, _ConvertedNetwork, Any, list[int]]:
    """``(config, snn, params [S, ...], agent_steps [S])`` of a converted run directory.

    The source run's checkpoint is loaded again and normalised with the scales stored in
    ``conversion.json``; ``config`` is the source run's.
    """
    from dsqn.evaluation_cli import load_params

    run_dir = Path(run_dir)
    settings = json.loads((run_dir / "config.json").read_text()).get("conversion")
    if settings is None:
        raise ValueError(f"{run_dir} is not a converted run: its config.json has no 'conversion'")
    per_seed = json.loads((run_dir / "conversion.json").read_text())["per_seed"]
    config, exp, params, steps = load_params(settings["source_run"], settings["checkpoint"])
    layers = layer_order(exp.network)
    normalized = [
        normalize_params(_seed_params(params, i), per_seed[str(seed)]["scales"], layers)
        for i, seed in enumerate(config.run.seeds)
    ]
    snn = converted_network(exp.network, time_steps=int(settings["time_steps"]))
    return config, snn, _stack(normalized), steps


def _sweep_markdown(rows: list[dict[str, Any]], source: str) -> str:
    ts = sorted({r["time_steps"] for r in rows})
    ps = sorted({r["percentile"] for r in rows})
    cell = {(r["time_steps"], r["percentile"]): r for r in rows}
    header = "| T \\ percentile | " + " | ".join(f"{p:g}" for p in ps) + " |"
    rule = "|---|" + "---:|" * len(ps)
    lines = [
        f"# Conversion sweep of {source}",
        "",
        f"ANN (same episodes): {rows[0]['ann_mean']:.2f}. Cells: converted SNN score (mean over "
        "seeds) / matching rate (held-out states where the SNN's greedy action equals the ANN's).",
        "",
        header,
        rule,
    ]
    for t in ts:
        cells = [
            f"{cell[t, p]['snn_mean']:.2f} / {100 * cell[t, p]['matching_rate_mean']:.1f}%"
            for p in ps
        ]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep(
    dqn_run_dir: str | Path,
    out_root: str | Path,
    *,
    time_steps: Sequence[int] = (100, 250, 500),
    percentiles: Sequence[float] = (99.0, 99.9, 99.99, 100.0),
    normalization_frames: int = 15_000,
    checkpoint: str = "best",
    episodes: int | None = None,
    matching_frames: int | None = None,
    batch_size: int = 32,
    command: list[str] | None = None,
    output_scale: str = "percentile",
) -> dict[str, Any]:
    """One :func:`convert_run` per (T, percentile) into ``out_root/T<t>-p<p>/``.

    The checkpoint, the normalisation and held-out data and the ANN's evaluation are computed once
    and shared. Writes ``out_root/sweep.json`` (one row per combination: T, percentile, run
    directory, SNN and ANN mean scores, matching rate) and ``out_root/sweep.md`` (score and
    matching rate, rows T, columns percentile).

    Returns:
      The ``sweep.json`` object.
    """
    if not time_steps or not percentiles:
        raise ValueError(
            f"time_steps and percentiles must be non-empty, got {time_steps!r}, {percentiles!r}"
        )
    out_root = Path(out_root)
    source = _Source(dqn_run_dir, checkpoint)
    rows = []
    with matmul_precision(source.config.run.matmul_precision):
        for t in time_steps:
            for p in percentiles:
                run_dir = out_root / f"T{t}-p{p:g}"
                out = _convert(
                    source,
                    run_dir,
                    time_steps=int(t),
                    percentile=float(p),
                    normalization_frames=normalization_frames,
                    matching_frames=matching_frames or normalization_frames,
                    episodes=episodes,
                    batch_size=batch_size,
                    command=command,
                    output_scale=output_scale,
                )
                rows.append(
                    {
                        "time_steps": int(t),
                        "percentile": float(p),
                        "run_dir": str(run_dir),
                        **out["summary"],
                    }
                )
    result = {"source_run": str(source.run_dir), "checkpoint": checkpoint, "runs": rows}
    out_root.mkdir(parents=True, exist_ok=True)
    save_json(out_root / "sweep.json", result)
    (out_root / "sweep.md").write_text(_sweep_markdown(rows, str(source.run_dir)))
    return result
