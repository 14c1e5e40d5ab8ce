"""``dsqn energy RUN_DIR``: a run's checkpoint measured with the energy model and written as
``energy.json`` and ``energy.md``.

Each seed's agent plays evaluation games with spike counting on; the spike statistics and the
energy per action are those of :mod:`dsqn.analyses.energy` (definitions there), per seed and
averaged over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from dsqn.analyses.energy import (
    PJ_PER_AC,
    PJ_PER_MAC,
    LayerInfo,
    energy_estimate,
    layer_geometry,
    spike_statistics,
)
from dsqn.learning.evaluation import agents_evaluator
from dsqn.rundir import files as rd
from dsqn.rundir.loading import Agent, load_agents, stack_params
from dsqn.runtime import prng

__all__ = ["energy_report", "energy_markdown"]


def _mean(values: Sequence[Any]) -> Any:
    """Elementwise mean of equally structured dicts of numbers; None if any value is None."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _mean([v[k] for v in values]) for k in first}
    if any(v is None for v in values):
        return None
    if isinstance(first, int) and not isinstance(first, bool) and len(set(values)) == 1:
        return first
    return float(np.mean(values))


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec)


def energy_markdown(energy: Mapping[str, Any]) -> str:
    """The Markdown tables of an ``energy.json`` object (means over seeds)."""
    lines = [
        f"# Energy per action (checkpoint `{energy['checkpoint']}`, "
        f"{energy['episodes']} episodes per seed, seeds {energy['seeds']})",
        "",
    ]
    if energy["layers"]:
        lines += [
            "| layer | neurons | firing rate (spikes / neuron / time step) | spikes / action "
            "| synaptic ops / action (SOP) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, layer in energy["layers"].items():
            lines.append(
                f"| {name} | {layer['neurons']} | {_fmt(layer['firing_rate'])} "
                f"| {_fmt(layer['spikes_per_action'], '.6g')} "
                f"| {_fmt(layer['synaptic_ops_per_action'], '.6g')} |"
            )
        neurons = sum(layer["neurons"] for layer in energy["layers"].values())
        lines += [
            f"| **all** | {neurons} | {_fmt(energy['firing_rate'])} "
            f"(layer mean {_fmt(energy['firing_rate_layer_mean'])}) "
            f"| {_fmt(energy['spikes_per_action'], '.6g')} "
            f"| {_fmt(energy['synaptic_ops_per_action'], '.6g')} |",
            "",
        ]
    nj = energy["energy_per_action_nj"]
    lines += [
        "| network | MACs / action | SOP / action | energy / action (nJ) |",
        "|---|---:|---:|---:|",
        f"| SNN (first layer analog, once per action) "
        f"| {_fmt(energy['macs_per_action_first_layer'] if nj['snn'] is not None else None, '.6g')}"
        f" | {_fmt(energy['synaptic_ops_per_action'], '.6g')} | {_fmt(nj['snn'])} |",
        f"| ANN (same architecture, ReLU) | {_fmt(energy['macs_per_action_ann'], '.6g')} | 0 "
        f"| {_fmt(nj['ann'])} |",
    ]
    if nj["converted_snn"] is not None:
        lines.append(f"| converted SNN | — | — | {_fmt(nj['converted_snn'])} |")
    lines += [
        "",
        f"ANN / SNN energy ratio: {_fmt(energy['ann_over_snn'])}. "
        f"Assumed {energy['pj_per_ac']} pJ per accumulate (one spike at one synapse) and "
        f"{energy['pj_per_mac']} pJ per multiply-accumulate (45 nm CMOS, Horowitz 2014); "
        f"T = {energy['time_steps']}.",
        "",
    ]
    return "\n".join(lines)


def _geometry_record(geometry: Sequence[LayerInfo]) -> list[dict[str, Any]]:
    """``energy.json``'s ``geometry``: each weight layer's shapes, kernel, MACs and input."""
    return [
        {
            "name": layer.name,
            "kind": layer.kind,
            "input_shape": list(layer.input_shape),
            "output_shape": list(layer.output_shape),
            "kernel": None if layer.kernel is None else list(layer.kernel),
            "stride": None if layer.stride is None else list(layer.stride),
            "macs": layer.macs,
            "fed_by": layer.fed_by,
            "spiking": layer.spiking,
        }
        for layer in geometry
    ]


def _spiking_seeds(
    agents: Sequence[Agent],
    geometry: Sequence[LayerInfo],
    time_steps: int,
    episodes: int,
    epsilon: float,
) -> list[dict[str, Any]]:
    """Per seed: the score and spike statistics of ``episodes`` evaluation games with spike
    counting on (the ``ENERGY`` stream of :mod:`dsqn.runtime.prng`)."""
    seeds = [a.seed for a in agents]
    evaluator = agents_evaluator(agents, episodes=episodes, epsilon=epsilon, collect_spikes=True)
    params = stack_params([a.params for a in agents])
    result = evaluator(params, prng.stream_keys(seeds, prng.Stream.ENERGY))
    out = []
    for i in range(len(agents)):
        sums = {k: np.asarray(v[i]) for k, v in result.spike_sums.items()}
        stats = spike_statistics(geometry, sums, float(result.steps[i]), time_steps)
        out.append({"return_mean": float(result.returns[i].mean()), **stats})
    return out


def energy_report(
    run_dir: str | Path,
    *,
    checkpoint: str = "best",
    episodes: int | None = None,
    epsilon: float | None = None,
    pj_per_ac: float = PJ_PER_AC,
    pj_per_mac: float = PJ_PER_MAC,
) -> dict[str, Any]:
    """Measures spike statistics of a run's checkpoint and writes ``energy.json``/``energy.md``.

    Each seed's agent (:func:`dsqn.load_agents`: a trained or a converted run) plays
    ``episodes`` evaluation games (the run's protocol, epsilon ``epsilon``, defaulting to the
    run's evaluation settings) with spike counting on; statistics and energy are computed per
    seed (``per_seed``) and averaged over seeds (top level). A ReLU network has no spikes: only
    its MACs and ANN energy are reported (SNN fields null) and no games are played.

    Returns:
      The ``energy.json`` object plus ``"path"`` (of ``energy.json``).
    """
    agents = load_agents(run_dir, checkpoint)
    config, network, spaces = agents[0].config, agents[0].network, agents[0].spaces
    obs = jnp.zeros((1, *spaces.observation_shape), spaces.observation_dtype)
    geometry = layer_geometry(network, obs)
    spiking = any(layer.spiking for layer in geometry)
    time_steps = int(network.time_steps) if spiking else 1
    eps = config.eval.epsilon if epsilon is None else epsilon
    n_episodes = config.eval.episodes if episodes is None else episodes
    if spiking:
        measured = _spiking_seeds(agents, geometry, time_steps, n_episodes, eps)
    else:
        measured = [spike_statistics(geometry, {}, 0.0, time_steps) for _ in agents]
    per_seed = {
        a.spec.key: {
            "agent_steps": a.agent_steps,
            **stats,
            **energy_estimate(stats, pj_per_ac=pj_per_ac, pj_per_mac=pj_per_mac),
        }
        for a, stats in zip(agents, measured, strict=True)
    }
    mean = _mean(list(per_seed.values()))
    mean.pop("agent_steps", None)
    mean.pop("return_mean", None)
    energy = {
        **mean,
        "pj_per_ac": pj_per_ac,
        "pj_per_mac": pj_per_mac,
        "episodes": n_episodes,
        "epsilon": eps,
        "checkpoint": str(checkpoint),
        "seeds": [a.seed for a in agents],
        "geometry": _geometry_record(geometry),
        "per_seed": per_seed,
    }
    path = rd.write_json(Path(run_dir) / rd.ENERGY, energy)
    rd.write_text(Path(run_dir) / rd.ENERGY_MARKDOWN, energy_markdown(energy))
    return {**energy, "path": str(path)}
