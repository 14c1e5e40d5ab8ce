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
import difflib
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the CLI's parser reads SWEEPABLE without importing JAX
    import flax.linen as nn
    import jax

from dsqn.config import (
    Config,
    ConfigError,
    LearnerConfig,
    SweepConfig,
    apply_overrides,
    validate,
)

__all__ = [
    "SWEEPABLE",
    "AgentSpec",
    "columns",
    "agents",
    "axes",
    "check_sweep",
    "sweep_field",
    "hyperparameters",
    "with_values",
    "point_config",
    "agent_network",
    "agent_learner",
    "swept_network_values",
]

SWEEPABLE: tuple[str, ...] = tuple(
    f.name.replace("_", ".", 1) for f in dataclasses.fields(SweepConfig)
)
"""Fields a sweep may vary (``network.tau``, ...): one :class:`~dsqn.config.SweepConfig` field
each (``sweep.network_tau``); numeric values that no array shape or code path depends on."""


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


def sweep_field(path: str) -> str:
    """The :class:`~dsqn.config.SweepConfig` field of a sweepable config field, ``network.tau``
    -> ``sweep.network_tau``; a field that cannot be swept is an error naming those that can."""
    if path not in SWEEPABLE:
        near = difflib.get_close_matches(path, list(SWEEPABLE), n=1, cutoff=0.8)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(
            f"{path} cannot be swept{hint}: a sweep runs all its agents in one program, so it may "
            "only vary numeric values that no array shape or code path depends on (not "
            "network.time_steps, hidden sizes, batch or replay sizes, the neuron, the loss, ...; "
            "sweep those with one run per value, see experiments/); sweepable fields: "
            + ", ".join(SWEEPABLE)
        )
    return "sweep." + path.replace(".", "_", 1)


def axes(config: Config) -> list[tuple[str, tuple[float, ...]]]:
    """The swept fields and their values, ``[(path, values), ...]``, in the order of
    :data:`SWEEPABLE`; empty without a sweep."""
    return [
        (path, tuple(getattr(config.sweep, path.replace(".", "_", 1))))
        for path in SWEEPABLE
        if getattr(config.sweep, path.replace(".", "_", 1))
    ]


def check_sweep(config: Config) -> None:
    """Rejects repeated values and values the field cannot take (every point of the sweep is
    validated as a config of its own)."""
    for path, values in axes(config):
        if len(set(values)) != len(values):
            raise ConfigError(f"{sweep_field(path)} has repeated values {list(values)}")
        unused = _unused_reason(config, path)
        if unused:
            raise ConfigError(f"{sweep_field(path)} is swept, but {unused}: it changes nothing")
    for point in _points(config):
        if point:
            try:
                validate(point_config(config, dict(point)))
            except ConfigError as error:
                raise ConfigError(f"sweep point {_label(point)}: {error}") from None


def _unused_reason(config: Config, path: str) -> str | None:
    """Why ``path`` has no effect in ``config`` (a sweep over it would train identical
    agents), or None."""
    if path.startswith("network.") and config.network.kind != "dsqn":
        return f"network.kind is {config.network.kind!r} (no spiking neurons)"
    if path == "network.tau" and config.network.neuron == "if":
        return "network.neuron is 'if' (no leak)"
    if path == "learner.epsilon_mid" and config.learner.epsilon_schedule != "exponential_linear":
        return f"learner.epsilon_schedule is {config.learner.epsilon_schedule!r}"
    return None


def _label(point: tuple[tuple[str, float], ...]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in point)


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
