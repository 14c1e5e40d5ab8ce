"""Vectorised sweeps: hyperparameter axes beside the seed axis, in one program.

A run trains one **agent** per (sweep point, seed): with ``sweep.network_tau = (1.5, 2, 4)``
(``dsqn train ... --sweep network.tau 1.5 2 4``) and seeds 0 1 2 it trains the 3 x 3 = 9 agents
of the Cartesian product, point-major::

    agent 0: tau 1.5, seed 0    agent 3: tau 2, seed 0    agent 6: tau 4, seed 0
    agent 1: tau 1.5, seed 1    ...

as one vmapped (and, over several devices, sharded) axis of one XLA program. An agent's seed
fixes everything random about it (initialisation, exploration, minibatches, env seeds), as in a
run without a sweep: agents that differ only in their swept values see the same games.

Only numeric fields that enter the computation as values can be swept (:data:`SWEEPABLE`).
Fields that shape the program (``network.time_steps``, ``network.hidden_sizes``,
``learner.batch_size``, the replay capacity, ...) or choose code paths (the neuron, the loss,
...) cannot vary within one program: sweep those with one process per value (experiments/).

Every sweepable field is an argument of the training program, a traced per-agent value, whether
or not it is swept: an agent of a sweep runs exactly the program it runs alone, and gives
identical results.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the CLI's parser reads SWEEPABLE without importing JAX
    import flax.linen as nn
    import jax

from dsqn.config import SWEEPABLE, Config, LearnerConfig, SweepConfig, apply_overrides, sweep_field

__all__ = [
    "SWEEPABLE",
    "AgentSpec",
    "columns",
    "agents",
    "axes",
    "sweep_field",
    "hyperparameters",
    "with_values",
    "point_config",
    "agent_network",
    "agent_learner",
    "swept_network_values",
]


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """One agent of a run: its seed and its swept values (empty without a sweep).

    Attributes:
      seed: the training seed.
      values: ``((field, value), ...)`` in the order of ``run.sweep``.
    """

    seed: int
    values: tuple[tuple[str, float], ...] = ()

    @property
    def key(self) -> str:
        """The agent's key in evaluation.json's ``per_seed``: ``"0"``, or
        ``"network.tau=1.5,seed=0"`` in a sweep."""
        if not self.values:
            return str(self.seed)
        return ",".join([*(f"{k}={v:g}" for k, v in self.values), f"seed={self.seed}"])

    @property
    def label(self) -> str:
        """``"seed 0"``, or ``"network.tau=1.5, seed 0"`` in a sweep."""
        return ", ".join([*(f"{k}={v:g}" for k, v in self.values), f"seed {self.seed}"])

    def matches(self, selection: Mapping[str, float]) -> bool:
        """Whether every ``field: value`` of ``selection`` is one of this agent's values
        (``"seed"`` selects the seed)."""
        own = dict(self.values) | {"seed": self.seed}
        return all(k in own and np.isclose(own[k], v) for k, v in selection.items())


def axes(config: Config) -> list[tuple[str, tuple[float, ...]]]:
    """The swept fields and their values, ``[(path, values), ...]``, in the order of
    :data:`SWEEPABLE`; empty without a sweep."""
    return [
        (path, tuple(getattr(config.sweep, path.replace(".", "_", 1))))
        for path in SWEEPABLE
        if getattr(config.sweep, path.replace(".", "_", 1))
    ]


def _points(config: Config) -> list[tuple[tuple[str, float], ...]]:
    """The Cartesian product of the swept values, in order (one empty point without a sweep)."""
    grid = [[(path, float(v)) for v in values] for path, values in axes(config)]
    return [tuple(point) for point in itertools.product(*grid)]


def agents(config: Config) -> tuple[AgentSpec, ...]:
    """Every agent of the run, point-major: for each sweep point, each seed."""
    return tuple(AgentSpec(seed, point) for point in _points(config) for seed in config.run.seeds)


def columns(config: Config) -> list[str]:
    """The swept fields, as the extra columns of metrics.csv and evaluations.csv (after
    ``seed``); empty without a sweep."""
    return [path for path, _ in axes(config)]


def point_config(config: Config, values: Mapping[str, Any]) -> Config:
    """``config`` with ``values`` (``{field: value}``) set and the sweep removed: what one
    agent trains with, as a run of its own."""
    point = apply_overrides(config, dict(values))
    return dataclasses.replace(point, sweep=SweepConfig())


def with_values(config: Config, values: Mapping[str, Any]) -> Config:
    """``config`` with each ``field: value`` of ``values`` set as given (values may be traced
    arrays: this builds the per-agent config inside the vmapped program; no validation)."""
    sections: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        section, field = path.split(".", 1)
        sections.setdefault(section, {})[field] = value
    replaced = {
        name: dataclasses.replace(getattr(config, name), **fields)
        for name, fields in sections.items()
    }
    return dataclasses.replace(config, **replaced)


def hyperparameters(
    config: Config, specs: Sequence[AgentSpec] | None = None
) -> dict[str, np.ndarray]:
    """Every sweepable field's value per agent (of ``specs``; default: every agent of the run),
    ``{field: float32 [A]}``: the swept values, and the config's value for fields not swept."""
    specs = agents(config) if specs is None else specs
    return {
        path: np.array(
            [dict(spec.values).get(path, _field(config, path)) for spec in specs], np.float32
        )
        for path in SWEEPABLE
    }


def _field(config: Config, path: str) -> float:
    section, field = path.split(".", 1)
    return float(getattr(getattr(config, section), field))


NEURON_FIELDS = ("tau", "v_threshold", "surrogate_alpha")
"""The network fields a sweep may vary: attributes of the spiking networks of the same names."""


def agent_network(network: nn.Module, values: Mapping[str, jax.Array]) -> nn.Module:
    """``network`` with one agent's neuron values among ``values`` (``values["network.tau"]``,
    ...; scalars, traced inside the vmapped program); a ReLU network is returned unchanged."""
    fields = {f: values[f"network.{f}"] for f in NEURON_FIELDS if f"network.{f}" in values}
    if not fields or not all(hasattr(network, f) for f in NEURON_FIELDS):
        return network
    return network.clone(**fields)


def swept_network_values(specs: Sequence[AgentSpec]) -> dict[str, np.ndarray]:
    """The swept neuron values of ``specs``, ``{field: float32 [A]}`` (empty without a
    sweep over them): what an evaluation of the agents sets in each one's network."""
    paths = [path for path, _ in specs[0].values if path.startswith("network.")] if specs else []
    return {path: np.array([dict(s.values)[path] for s in specs], np.float32) for path in paths}


def agent_learner(learner: LearnerConfig, values: Mapping[str, jax.Array]) -> LearnerConfig:
    """``learner`` with one agent's values of every sweepable learner field."""
    fields = {
        path.split(".", 1)[1]: value
        for path, value in values.items()
        if path.startswith("learner.")
    }
    return dataclasses.replace(learner, **fields)
