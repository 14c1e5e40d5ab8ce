"""``dsqn convert``: a trained DQN run directory converted into a spiking run directory.

The conversion method (Tan, Patel & Kozma 2021: robust normalisation, IF neurons, the readout)
is :mod:`dsqn.models.conversion`; this module applies it to every seed of a run:

1. **Normalisation and held-out data** (:func:`collect_normalization_obs`): observations visited
   by the trained DQN playing with epsilon 0.05 on evaluation-protocol environments whose env
   seeds no training or evaluation pool uses; held-out data on other games.
2. **Per seed**: layer scales at the percentile, normalised parameters, and the matching rate of
   greedy actions with the ANN on the held-out data.
3. **Evaluation**: every seed's converted SNN plays the run's evaluation protocol; the ANN plays
   the same games with the same exploration draws (a paired comparison).
4. **The converted run directory**: ``config.json`` (the DQN's config named ``converted-snn``,
   with a ``conversion`` section), ``evaluation.json`` (training runs' schema) and
   ``conversion.json`` (scales, matching rates, scores, spike statistics and energy per seed).
   :func:`dsqn.load_agent` rebuilds the converted agents from it.

:func:`sweep` repeats the conversion over simulation lengths and percentiles.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dsqn.analyses.energy import energy_estimate, layer_geometry, spike_statistics
from dsqn.envs import ENV_SEED_STRIDE, make_run_pool
from dsqn.envs.seeding import MAX_TRAINING_SEED
from dsqn.learning.evaluation import EvalResult, Evaluator
from dsqn.learning.evaluation_stats import seed_summary
from dsqn.models.conversion import (
    NORMALIZATION_EPSILON,
    converted_network,
    layer_order,
    layer_scales,
    matching_rate,
    normalize_params,
)
from dsqn.rundir import files as rd
from dsqn.rundir.loading import Agent, load_agents, stack_params
from dsqn.runtime import prng
from dsqn.runtime.precision import matmul_precision

__all__ = [
    "ConversionOptions",
    "CONVERTED_NAME",
    "collect_normalization_obs",
    "convert_run",
    "sweep",
]

CONVERTED_NAME = "converted-snn"
"""The ``name`` of a converted run directory's config (the report's algorithm)."""

# ----------------------------------------------------------------------------- normalisation data


def _collection_env(agent: Agent, num_envs: int, held_out: bool) -> Any:
    """An evaluation-protocol pool whose env seeds no training or evaluation pool uses.

    Training seed ``s`` owns the env-seed blocks ``2s`` (train) and ``2s + 1`` (eval) of
    ``ENV_SEED_STRIDE`` seeds each (:mod:`dsqn.envs.seeding`); pools use their low indices. The
    upper half of block ``2 * seed`` holds normalisation data, that of ``2 * seed + 1`` held-out
    data, so neither replays a game of training or of the evaluation protocol.
    """
    seed = agent.seed
    if not 0 <= seed <= MAX_TRAINING_SEED:
        raise ValueError(f"seed must lie in [0, {MAX_TRAINING_SEED}], got {seed!r}")
    if not 1 <= num_envs <= ENV_SEED_STRIDE // 2:
        raise ValueError(f"num_envs must lie in [1, {ENV_SEED_STRIDE // 2}], got {num_envs!r}")
    block = 2 * seed + int(held_out)
    env_seeds = [block * ENV_SEED_STRIDE + ENV_SEED_STRIDE // 2 + j for j in range(num_envs)]
    return make_run_pool(agent.config, env_seeds, train=False)


def collect_normalization_obs(
    agent: Agent,
    num_frames: int = 15_000,
    epsilon: float = NORMALIZATION_EPSILON,
    *,
    num_envs: int = 16,
    held_out: bool = False,
) -> np.ndarray:
    """Observations visited by ``agent`` acting epsilon-greedily.

    ``num_envs`` evaluation-protocol environments (full games, raw rewards) play in parallel;
    every observation the agent acts on is recorded, step-major, until ``num_frames`` are
    collected. Terminal observations count (they were visited); envpool's reset steps are never
    recorded twice. Env seeds and the action randomness (the ``NORMALIZATION_DATA`` or
    ``HELD_OUT_DATA`` stream of :mod:`dsqn.runtime.prng`) depend on the agent's seed and
    ``held_out``: held-out data never shares a game with normalisation data.

    Returns:
      ``[num_frames, *obs_shape]`` in the env's dtype (Atari uint8 ``[N, 4, 84, 84]``).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames!r}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
    env = _collection_env(agent, num_envs, held_out)
    stream = prng.Stream.HELD_OUT_DATA if held_out else prng.Stream.NORMALIZATION_DATA
    key = prng.stream_key(agent.seed, stream)
    obs, _ = env.reset()
    frames = []
    for _ in range(math.ceil(num_frames / num_envs)):
        frames.append(np.asarray(obs))
        key, act_key = jax.random.split(key)
        obs, *_ = env.step(np.asarray(agent.act(obs, key=act_key, epsilon=epsilon)))
    env.close()
    return np.concatenate(frames)[:num_frames]


# ----------------------------------------------------------------------------- one conversion


class _Source:
    """A DQN run's checkpoint with its data and ANN evaluations, cached across conversions."""

    def __init__(self, run_dir: str | Path, checkpoint: str):
        if rd.conversion_settings(run_dir) is not None:
            raise ValueError(f"{run_dir} is a converted run; convert the DQN run it came from")
        self.agents = load_agents(run_dir, checkpoint)
        self.config = self.agents[0].config
        if self.agents[0].values:
            raise ValueError(
                f"{run_dir} is a sweep run ({', '.join(self.agents[0].values)}); conversion "
                "keeps one record per seed: convert a run of one point of the sweep"
            )
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
        self.run_dir = Path(run_dir).resolve()
        self.checkpoint = str(checkpoint)
        self.network = self.agents[0].network
        self.seeds = [a.seed for a in self.agents]
        self._obs: dict[tuple[int, int, bool], np.ndarray] = {}
        self._ann_eval: dict[int, EvalResult] = {}
        self._snn_evaluators: dict[tuple[int, int], Evaluator] = {}

    def obs(self, i: int, frames: int, held_out: bool) -> np.ndarray:
        key = (i, frames, held_out)
        if key not in self._obs:
            self._obs[key] = collect_normalization_obs(self.agents[i], frames, held_out=held_out)
        return self._obs[key]

    def ann_evaluation(self, episodes: int) -> EvalResult:
        if episodes not in self._ann_eval:
            evaluator = Evaluator(self.config, self.network, self.seeds, episodes=episodes)
            params = stack_params([a.params for a in self.agents])
            self._ann_eval[episodes] = evaluator(params, _eval_keys(self.seeds))
        return self._ann_eval[episodes]

    def snn_evaluator(self, snn: Any, episodes: int) -> Evaluator:
        """An evaluator of ``snn`` that counts spikes, shared by conversions of the same T."""
        key = (snn.time_steps, episodes)
        if key not in self._snn_evaluators:
            self._snn_evaluators[key] = Evaluator(
                self.config, snn, self.seeds, episodes=episodes, collect_spikes=True
            )
        return self._snn_evaluators[key]


def _eval_keys(seeds: Sequence[int]) -> Any:
    # The ANN and the SNN share them: the same games and exploration draws (a paired comparison).
    return prng.stream_keys(seeds, prng.Stream.CONVERSION_EVAL)


def _check_out_dir(out_dir: Path) -> None:
    if (out_dir / rd.CONFIG).exists() and rd.conversion_settings(out_dir) is None:
        raise FileExistsError(
            f"{out_dir} holds another kind of run (its config.json has no 'conversion'); "
            "choose a new directory"
        )


def _normalize_seeds(
    source: _Source, snn: Any, settings: dict[str, Any], batch_size: int
) -> tuple[list[dict[str, float]], list[Any], list[float]]:
    """Per seed: the layer scales, the normalised parameters and the matching rate."""
    scales, normalized, matches = [], [], []
    for i, ann in enumerate(source.agents):
        data = source.obs(i, settings["normalization_frames"], False)
        seed_scales = layer_scales(
            ann.network,
            ann.params,
            data,
            settings["percentile"],
            output_scale=settings["output_scale"],
        )
        params = normalize_params(ann.params, seed_scales, settings["layers"])
        held_out = source.obs(i, settings["matching_frames"], True)
        matches.append(
            matching_rate(ann.network, ann.params, snn, params, held_out, batch_size=batch_size)
        )
        scales.append(seed_scales)
        normalized.append(params)
    return scales, normalized, matches


def _evaluation(source: _Source, result: EvalResult, evaluator: Evaluator) -> dict[str, Any]:
    """The converted run's ``evaluation.json``. The converted policy is scored under the protocol
    of the checkpoint it was made from, so that reports compare it like for like (best with
    best, final with final); the other protocol is null."""
    protocol = "best" if source.checkpoint == "best" else "final"
    per_seed = {}
    for i, ann in enumerate(source.agents):
        per_seed[str(ann.seed)] = {
            "final": None,
            "best": None,
            protocol: seed_summary(result, i, ann.agent_steps),
        }
    return rd.evaluation_record(
        source.config,
        name=CONVERTED_NAME,
        agent_steps=max(a.agent_steps for a in source.agents),
        episodes=evaluator.episodes,
        epsilon=evaluator.epsilon,
        per_seed=per_seed,
    )


def _conversion_seeds(
    source: _Source,
    snn: Any,
    result: EvalResult,
    scales: list[dict[str, float]],
    matches: list[float],
    episodes: int,
) -> dict[str, Any]:
    """``conversion.json``'s ``per_seed``: scales, matching rate, scores of the SNN and of the
    ANN on the same games, spike statistics and energy per action."""
    ann_result = source.ann_evaluation(episodes)
    geometry = layer_geometry(snn, jnp.zeros((1, *source.agents[0].spaces.observation_shape)))
    scores = ("mean", "std", "scores", "lengths")
    per_seed = {}
    for i, ann in enumerate(source.agents):
        snn_summary = seed_summary(result, i, ann.agent_steps)
        ann_summary = seed_summary(ann_result, i, ann.agent_steps)
        sums = {k: np.asarray(v[i]) for k, v in result.spike_sums.items()}
        stats = spike_statistics(geometry, sums, float(result.steps[i]), snn.time_steps)
        per_seed[str(ann.seed)] = {
            "agent_steps": ann.agent_steps,
            "scales": scales[i],
            "matching_rate": matches[i],
            "firing_rates": {k: v["firing_rate"] for k, v in stats["layers"].items()},
            "snn": {k: snn_summary[k] for k in scores},
            "ann": {k: ann_summary[k] for k in scores},
            "spike_statistics": stats,
            **energy_estimate(stats),
        }
    return per_seed


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversionOptions:
    """The settings of a conversion (:func:`convert_run`, :func:`sweep`, ``dsqn convert``).

    Every field is given by keyword; the defaults are the paper's (Tan et al. 2021) and those of
    ``dsqn convert``.
    """

    time_steps: int = 500
    """Simulation length T of the converted SNN: time steps per action."""
    percentile: float = 99.9
    """Robust normalisation: each layer's scale is this percentile of its activations."""
    output_scale: str = "percentile"
    """The output layer's rule (:data:`dsqn.models.conversion.OUTPUT_SCALES`): ``"percentile"``
    (the paper's), or ``"abs_percentile"`` (the percentile of ``|Q|``, when Q is mostly < 0)."""
    normalization_frames: int = 15_000
    """Observations per seed of the DQN playing with epsilon 0.05 that the scales are taken on."""
    matching_frames: int | None = None
    """Held-out observations per seed for the matching rate (None: ``normalization_frames``)."""
    checkpoint: str = "best"
    """The DQN run's checkpoint that is converted: ``best``, ``final`` or an agent step."""
    episodes: int | None = None
    """Evaluation games per seed of the SNN and of the ANN (None: the run's ``eval.episodes``)."""
    batch_size: int = 32
    """Observations per SNN forward pass for the matching rate (memory grows as T x this)."""
    command: list[str] | None = None
    """The command line recorded in the converted run's ``config.json`` (``meta``)."""


def _convert(source: _Source, out_dir: str | Path, options: ConversionOptions) -> dict[str, Any]:
    """One conversion of every seed of ``source`` into the run directory ``out_dir``, its
    programs at the run's ``run.matmul_precision``."""
    with matmul_precision(source.config.run.matmul_precision):
        return _convert_at_precision(source, out_dir, options)


def _convert_at_precision(
    source: _Source, out_dir: str | Path, options: ConversionOptions
) -> dict[str, Any]:
    time_steps, batch_size = options.time_steps, options.batch_size
    normalization_frames = options.normalization_frames
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    snn = converted_network(source.network, time_steps=time_steps)
    settings = {
        "source_run": str(source.run_dir),
        "checkpoint": source.checkpoint,
        "time_steps": int(time_steps),
        "percentile": float(options.percentile),
        "output_scale": options.output_scale,
        "normalization_frames": int(normalization_frames),
        "matching_frames": int(options.matching_frames or normalization_frames),
        "normalization_epsilon": NORMALIZATION_EPSILON,
        "layers": list(layer_order(source.network)),
    }
    scales, normalized, matches = _normalize_seeds(source, snn, settings, batch_size)
    episodes = source.config.eval.episodes if options.episodes is None else options.episodes
    evaluator = source.snn_evaluator(snn, episodes)
    result = evaluator(stack_params(normalized), _eval_keys(source.seeds))
    per_seed = _conversion_seeds(source, snn, result, scales, matches, episodes)
    conversion = {
        **settings,
        "episodes": evaluator.episodes,
        "epsilon": evaluator.epsilon,
        "per_seed": per_seed,
        "summary": {
            "snn_mean": float(np.mean([v["snn"]["mean"] for v in per_seed.values()])),
            "ann_mean": float(np.mean([v["ann"]["mean"] for v in per_seed.values()])),
            "matching_rate_mean": float(np.mean(matches)),
            "seeds": len(source.seeds),
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    rd.write_config(
        out_dir,
        source.config,
        command=options.command,
        spaces=source.agents[0].spaces,
        name=CONVERTED_NAME,
        conversion=settings,
    )
    rd.write_evaluation(out_dir, _evaluation(source, result, evaluator))
    rd.write_conversion(out_dir, conversion)
    return {**conversion, "run_dir": str(out_dir)}


def convert_run(
    dqn_run_dir: str | Path,
    out_dir: str | Path,
    options: ConversionOptions = ConversionOptions(),
) -> dict[str, Any]:
    """Converts every seed of a DQN run and writes the converted run directory ``out_dir``.

    Per seed (settings from ``options``, :class:`ConversionOptions`): normalisation data
    (``normalization_frames`` observations of the DQN playing with epsilon 0.05), layer scales at
    ``percentile``, normalised parameters, and the matching rate on ``matching_frames`` held-out
    observations collected the same way on other games. Every seed's SNN then plays ``episodes``
    games under the run's evaluation protocol, and the ANN plays the same games with the same
    exploration draws for comparison.

    Writes into ``out_dir``: ``config.json`` (the DQN's config with ``name`` ``"converted-snn"``,
    a top-level ``"conversion"`` section of the settings, and ``meta``), ``evaluation.json``
    (training runs' schema; per seed the converted SNN's evaluation stands under ``best`` when it
    was converted from the best checkpoint and under ``final`` otherwise, the other is null, so
    that reports compare it like for like) and ``conversion.json`` (per seed: scales, matching
    rate, firing rate per layer, SNN and ANN scores, spike statistics and energy per action).

    Returns:
      The ``conversion.json`` object plus ``"run_dir"``.
    """
    return _convert(_Source(dqn_run_dir, options.checkpoint), out_dir, options)


# ----------------------------------------------------------------------------- sweep


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
    options: ConversionOptions = ConversionOptions(),
) -> dict[str, Any]:
    """One :func:`convert_run` per (T, percentile) into ``out_root/T<t>-p<p>/``.

    Every conversion takes its settings from ``options`` with ``time_steps`` and ``percentile``
    replaced by the point's. The checkpoint, the normalisation and held-out data and the ANN's
    evaluation are computed once and shared. Writes ``out_root/sweep.json`` (one row per
    combination: T, percentile, run directory, SNN and ANN mean scores, matching rate) and
    ``out_root/sweep.md`` (score and matching rate, rows T, columns percentile).

    Returns:
      The ``sweep.json`` object.
    """
    if not time_steps or not percentiles:
        raise ValueError(
            f"time_steps and percentiles must be non-empty, got {time_steps!r}, {percentiles!r}"
        )
    out_root = Path(out_root)
    source = _Source(dqn_run_dir, options.checkpoint)
    rows = []
    for t in time_steps:
        for p in percentiles:
            run_dir = out_root / f"T{t}-p{p:g}"
            point = dataclasses.replace(options, time_steps=int(t), percentile=float(p))
            summary = _convert(source, run_dir, point)["summary"]
            rows.append(
                {"time_steps": int(t), "percentile": float(p), "run_dir": str(run_dir), **summary}
            )
    result = {"source_run": str(source.run_dir), "checkpoint": options.checkpoint, "runs": rows}
    out_root.mkdir(parents=True, exist_ok=True)
    rd.write_json(out_root / rd.SWEEP, result)
    rd.write_text(out_root / rd.SWEEP_MARKDOWN, _sweep_markdown(rows, str(source.run_dir)))
    return result
