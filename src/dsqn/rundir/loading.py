"""Trained agents, loaded from their run directory without building an environment.

::

    agent = dsqn.load_agent("runs/CartPole-v1/cartpole-dsqn-20260101-120000", "best")
    q = agent.q(obs)                               # [B, A] float32
    actions = agent.act(obs)                       # [B] int32, greedy
    actions = agent.act(obs, key=key, epsilon=0.05)  # epsilon-greedy, as the evaluations act

A run's checkpoint (``checkpoints/<agent_steps>/state``) holds every seed's train state; loading
reads the run's ``config.json`` (the config, and the env's observation shape, dtype and number of
actions recorded in ``meta.spaces``), builds the network, restores the checkpoint and keeps one
seed's parameters:

- ``"best"``: each seed's best-evaluated parameters (the paper's best checkpoint), kept in the
  latest checkpoint;
- ``"final"`` (or ``"latest"``): the parameters of the latest checkpoint, the final policy of a
  finished run;
- an agent step (``400`` or ``"400"``): the parameters of that checkpoint.

A converted run (``dsqn convert``) loads the same way: its source run's checkpoint is loaded and
normalised with the scales in ``conversion.json``; the network is the converted spiking network.
Such a run holds the one checkpoint it was converted from.

Runs made before ``meta.spaces`` was recorded still load: their spaces are read from one
evaluation env of their config, the one case where loading builds an env.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dsqn.config import Config, sweep, to_dict
from dsqn.learning import agent
from dsqn.models import conversion
from dsqn.rundir import files as rd
from dsqn.rundir.checkpoints import Checkpointer, CheckpointError
from dsqn.runtime import prng
from dsqn.runtime.precision import matmul_precision

__all__ = [
    "CHECKPOINT_NAMES",
    "Agent",
    "load_agent",
    "load_agents",
    "stack_params",
    "saved_state",
    "saved_state_template",
]

CHECKPOINT_NAMES: tuple[str, ...] = ("best", "final", "latest")
"""Named checkpoints: the best-evaluated parameters; the latest checkpoint (final and latest are
one checkpoint: the final policy once a run has finished)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Agent:
    """One seed's trained Q-network.

    Attributes:
      config: the run's config (a converted run's: its source's, named ``converted-snn``).
      network: the flax Q-network (a converted run's: the converted spiking network).
      params: the network's parameters (one seed's; no seed axis).
      seed: the training seed.
      checkpoint: the checkpoint asked for (``best``, ``final``, ``latest`` or an agent step).
      agent_steps: the agent step at which these parameters were trained (for ``best``, that of
        the evaluation that selected them).
      run_dir: the run directory.
      spaces: the env's observation shape and dtype and number of actions.
      values: the agent's swept values in a sweep run (``{"network.tau": 1.5}``; the config
        holds them too), empty otherwise.
    """

    config: Config
    network: nn.Module
    params: Any
    seed: int
    checkpoint: str
    agent_steps: int
    run_dir: Path
    spaces: rd.Spaces
    values: dict[str, float] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        """A one-line summary: where the agent comes from, its spaces and its network, not its
        arrays."""
        shape = ", ".join(map(str, self.spaces.observation_shape))
        point = "".join(f", {path}={value!r}" for path, value in self.values.items())
        return (
            f"Agent(run_dir={str(self.run_dir)!r}, seed={self.seed}{point}, "
            f"checkpoint={self.checkpoint!r}, agent_steps={self.agent_steps}, "
            f"observations={self.spaces.observation_dtype}[{shape}], "
            f"actions={self.spaces.num_actions}, network={type(self.network).__name__} "
            f"(network.kind {self.config.network.kind!r}, {self.parameter_count:,} parameters))"
        )

    @property
    def parameter_count(self) -> int:
        """The number of the network's parameters (scalars over every array)."""
        return sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(self.params))

    @property
    def spec(self) -> sweep.AgentSpec:
        """The agent's seed and swept values (its key in the run's per-agent records)."""
        return sweep.AgentSpec(self.seed, tuple(self.values.items()))

    def q(self, obs: Any) -> jax.Array:
        """Q-values ``float32 [B, A]`` of observations ``[B, *observation_shape]`` as the env
        yields them (Atari: uint8 ``[B, 4, 84, 84]``; classic control: float32 ``[B, D]``)."""
        return self._q(self.params, self._check(obs))

    def act(self, obs: Any, *, key: jax.Array | None = None, epsilon: float = 0.0) -> jax.Array:
        """Actions ``int32 [B]``: greedy, or with ``key`` epsilon-greedy exactly as the
        evaluations act (:func:`dsqn.learning.agent.select_actions`; each env explores
        independently).

        Raises:
          ValueError: ``epsilon`` outside [0, 1], or above 0 without a ``key``.
        """
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
        obs = self._check(obs)
        if key is None:
            if epsilon > 0:
                raise ValueError(f"epsilon {epsilon} > 0 needs a key (act(obs, key=..., ...))")
            return self._greedy(self.params, obs)
        return self._select(self.params, obs, key, jnp.float32(epsilon))

    def _check(self, obs: Any) -> jax.Array:
        shape = tuple(self.spaces.observation_shape)
        if np.ndim(obs) != len(shape) + 1 or tuple(np.shape(obs)[1:]) != shape:
            raise ValueError(
                f"observations must be a batch [B, {', '.join(map(str, shape))}] "
                f"({self.spaces.observation_dtype}, as the env yields them), got shape "
                f"{tuple(np.shape(obs))}"
            )
        return jnp.asarray(obs)

    def _apply(self, params: Any, obs: jax.Array) -> jax.Array:
        # Inside the jitted functions: the run's precision, as its evaluations computed Q.
        with matmul_precision(self.config.run.matmul_precision):
            return self.network.apply({"params": params}, obs)

    def to_nir(self, *, dt: float = 1.0):
        """The Q-network as a NIR graph (:func:`dsqn.models.nir.to_nir`: the mapping, what is
        written and what is refused); needs the ``nir`` package."""
        from dsqn.models import nir as dsqn_nir

        return dsqn_nir.to_nir(self.network, self.params, dt=dt)

    @functools.cached_property
    def _q(self):
        return jax.jit(self._apply)

    @functools.cached_property
    def _greedy(self):
        return jax.jit(lambda p, o: jnp.argmax(self._apply(p, o), axis=-1).astype(jnp.int32))

    @functools.cached_property
    def _select(self):
        return jax.jit(lambda p, o, k, e: agent.select_actions(k, self._apply(p, o), e))


def load_agent(
    run_dir: str | Path,
    checkpoint: str | int = "best",
    *,
    seed: int | None = None,
    values: Mapping[str, float] | None = None,
) -> Agent:
    """The trained agent of one seed of a run directory (default: the run's first seed), and
    in a sweep run of the given swept ``values`` (``{"network.tau": 4}``; default: the first
    point of the sweep).

    ``checkpoint``: ``"best"``, ``"final"`` (``"latest"``), or an agent step with a checkpoint
    (see the module docstring). Never builds an environment for runs that record their spaces.

    Raises:
      FileNotFoundError: ``run_dir`` is not a run directory.
      ValueError: an unknown checkpoint name, or a seed or values the run does not have.
      CheckpointError: the run has no such checkpoint (the message lists the saved steps), or
        no evaluation has selected a best checkpoint yet.
    """
    seeds = None if seed is None else [seed]
    return load_agents(run_dir, checkpoint, seeds=seeds, values=values)[0]


def load_agents(
    run_dir: str | Path,
    checkpoint: str | int = "best",
    *,
    seeds: Sequence[int] | None = None,
    values: Mapping[str, float] | None = None,
) -> tuple[Agent, ...]:
    """The agents of ``seeds`` (default: every seed) whose swept values match ``values``
    (default: every point of a sweep), in the run's order, from one reading of the checkpoint;
    see :func:`load_agent`."""
    run_dir = rd.require_run_dir(run_dir)
    checkpoint = _checkpoint_name(checkpoint, run_dir)
    settings = rd.conversion_settings(run_dir)
    if settings is not None:
        if values:
            raise ValueError(f"{run_dir} is a converted run: it has no swept values")
        return _load_converted(run_dir, checkpoint, seeds, settings)
    return _load_trained(run_dir, checkpoint, seeds, values)


def stack_params(params: Sequence[Any]) -> Any:
    """Parameter trees (one per seed) stacked along a leading seed axis ``[S, ...]``, as the
    :class:`dsqn.learning.evaluation.Evaluator` takes them:
    ``stack_params([a.params for a in agents])``."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params)


# ----------------------------------------------------------------------------- checkpoints


def saved_state(train: agent.TrainState, agent_steps: Any, episodes: Any) -> dict[str, Any]:
    """The ``state`` item of a run's checkpoint: the train states ``[S]``, the agent steps done
    and each seed's completed episodes ``[S]``."""
    return {"train": train, "agent_steps": agent_steps, "episodes": episodes}


def saved_state_template(config: Config, network: nn.Module, spaces: rd.Spaces) -> dict[str, Any]:
    """Shapes and dtypes (``jax.ShapeDtypeStruct``) of a run's checkpointed state; nothing is
    computed."""
    optimizer = agent.make_optimizer(config.learner)
    seeds = [a.seed for a in sweep.agents(config)]
    obs = jnp.zeros((1, *spaces.observation_shape), spaces.observation_dtype)

    def state():
        train = agent.init_train_states(prng.train_keys(seeds), network, optimizer, obs)
        return saved_state(train, jnp.zeros((), jnp.int32), jnp.zeros((len(seeds),), jnp.int32))

    return jax.eval_shape(state)


def _checkpoint_name(checkpoint: str | int, run_dir: Path) -> str:
    name = str(checkpoint)
    if name in CHECKPOINT_NAMES or name.isdigit():
        return name
    raise ValueError(
        f"checkpoint {checkpoint!r} is not valid: use one of {', '.join(CHECKPOINT_NAMES)} or "
        f"the agent step of a saved checkpoint: {rd.checkpoint_steps(run_dir)}"
    )


def _agent_indices(
    config: Config,
    seeds: Sequence[int] | None,
    values: Mapping[str, float] | None,
    run_dir: Path,
) -> list[int]:
    """Indices (in the run's agent order) of the agents of ``seeds`` with ``values``."""
    run_seeds = list(config.run.seeds)
    unknown = [s for s in seeds or () if s not in run_seeds]
    if unknown:
        raise ValueError(f"{run_dir} has no seed {unknown[0]!r}; its seeds are {run_seeds}")
    specs = sweep.agents(config)
    swept = dict(sweep.axes(config))
    for path, value in (values or {}).items():
        if path not in swept:
            raise ValueError(
                f"{run_dir} did not sweep {path}; its swept fields: {sorted(swept) or 'none'}"
            )
        if not any(np.isclose(value, v) for v in swept[path]):
            raise ValueError(f"{run_dir} has no agent with {path}={value}; values: {swept[path]}")
    order = seeds if seeds is not None else run_seeds
    return [
        i
        for seed in order
        for i, spec in enumerate(specs)
        if spec.seed == seed and spec.matches(values or {})
    ]


def _spaces(run_dir: Path, config: Config) -> rd.Spaces:
    spaces = rd.read_spaces(run_dir)
    if spaces is not None:
        return spaces
    # A run made before config.json recorded its spaces: one evaluation env tells them.
    from dsqn.envs import make_seed_pool

    env = make_seed_pool(config, 1, [config.run.seeds[0]], train=False)
    try:
        space = env.observation_space
        return rd.Spaces(tuple(space.shape), str(np.dtype(space.dtype)), int(env.action_space.n))
    finally:
        env.close()


def _load_trained(
    run_dir: Path,
    checkpoint: str,
    seeds: Sequence[int] | None,
    values: Mapping[str, float] | None,
) -> tuple[Agent, ...]:
    config = rd.read_config(run_dir)
    specs = sweep.agents(config)
    indices = _agent_indices(config, seeds, values, run_dir)
    if seeds is None:  # the run's order: point-major
        indices = sorted(indices)
    spaces = _spaces(run_dir, config)
    network = agent.make_network(config.network, spaces.num_actions, spaces.observation_shape)
    step = int(checkpoint) if checkpoint.isdigit() else None
    with Checkpointer(rd.checkpoint_dir(run_dir), max_to_keep=None) as checkpointer:
        restored = checkpointer.restore(
            step,
            state_template=saved_state_template(config, network, spaces),
            expected_config=to_dict(config),
            ignore_config_fields=rd.RESUMABLE_FIELDS,
            absent_config_fields=rd.ADDED_FIELDS,
        )
    train = restored.state["train"]
    if checkpoint == "best":
        params, steps = train.best_params, np.asarray(train.best_agent_steps)
        unselected = [specs[i].label for i in indices if steps[i] < 0]
        if unselected:
            raise CheckpointError(
                f"{run_dir}: no evaluation has happened yet for {'; '.join(unselected)}, so "
                "there is no best checkpoint; use checkpoint 'final'"
            )
    else:
        params = train.params
        steps = np.full(len(specs), int(restored.state["agent_steps"]))
    return tuple(
        _agent(config, network, specs[i], spaces)(
            params=jax.tree.map(lambda x, i=i: x[i], params),
            checkpoint=checkpoint,
            agent_steps=int(steps[i]),
            run_dir=run_dir,
        )
        for i in indices
    )


def _agent(config: Config, network: nn.Module, spec: sweep.AgentSpec, spaces: rd.Spaces):
    """``Agent`` with the parts fixed by the agent's seed and swept values: in a sweep, its own
    config (the point's values set) and network."""
    values = dict(spec.values)
    if values:
        config = sweep.point_config(config, values)
        network = agent.make_network(config.network, spaces.num_actions, spaces.observation_shape)
    return functools.partial(
        Agent, config=config, network=network, seed=spec.seed, spaces=spaces, values=values
    )


def _same_checkpoint(a: str, b: str) -> bool:
    final = ("final", "latest")
    return a == b or (a in final and b in final)


def _load_converted(
    run_dir: Path, checkpoint: str, seeds: Sequence[int] | None, settings: dict[str, Any]
) -> tuple[Agent, ...]:
    own = str(settings["checkpoint"])
    if not _same_checkpoint(checkpoint, own):
        raise ValueError(
            f"{run_dir} is a run converted from checkpoint {own!r} of "
            f"{settings['source_run']}, its only checkpoint; load it with checkpoint {own!r}"
        )
    source = settings["source_run"]
    if not Path(source).is_dir():
        raise FileNotFoundError(
            f"{run_dir} is a converted run whose source run {source} does not exist; the "
            "converted network is rebuilt from the source's checkpoint"
        )
    sources = load_agents(source, own, seeds=seeds)
    config = rd.read_config(run_dir)
    scales = rd.read_conversion(run_dir)["per_seed"]
    layers = conversion.layer_order(sources[0].network)
    snn = conversion.converted_network(sources[0].network, time_steps=int(settings["time_steps"]))
    return tuple(
        dataclasses.replace(
            s,
            config=config,
            network=snn,
            params=conversion.normalize_params(s.params, scales[str(s.seed)]["scales"], layers),
            checkpoint=checkpoint,
            run_dir=run_dir,
        )
        for s in sources
    )
