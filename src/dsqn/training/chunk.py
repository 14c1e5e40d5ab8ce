"""The training system: jitted chunks of environment steps, vmapped over seeds.

``make_train(config)`` builds an :class:`Experiment`: the env pool of all seeds' training envs,
the network, the optimizer, and ``chunk(carry) -> (carry, metrics)``, one XLA program that runs
``K`` iterations of (inside ``lax.scan``)::

    q       = Q(params_s, obs_s)                      for every seed s (vmapped; T-step SNN forward)
    a       = epsilon-greedy(q, epsilon(agent_steps)) (uniform during the warm-up)
    obs'    = env_step(a)                             ONE envpool for all S*E envs (one per device)
    replay_s = add(replay_s, obs_s, a_s, r_s, flags)
    for each update due (one every update_period_agent_steps after the warm-up):
        state_s, replay_s = update(state_s, sample(replay_s))  (vmapped over seeds; a
                                                     prioritized replay's priorities change)
    if a target period was crossed: target_s <- params_s

with no host round trip per step. With a device mesh (several GPUs, or several processes after
``jax.distributed.initialize``) the seed axis is split into one block per device: each block has
its own pool of its seeds' envs, stepped on its device's host inside the program
(:func:`dsqn.envs.stepping.sharded_host_step`), with the same results. Seeds are a vmapped
axis: all seeds advance in lockstep, so the schedule (epsilon, updates, target syncs) is shared
and only data differ; initialisation, exploration, minibatches and env seeds are per seed.

Agent steps count env-step calls of one env: each iteration adds ``envs_per_seed`` agent steps to
every seed. envpool's auto-reset step (one per episode; its action is ignored) is such a call: it
counts in the schedule but is never a learning transition nor part of an episode's length. The
schedule (exploration, updates, target syncs) counts from the end of the warm-up, as the
paper's authors do, or from the first agent step with ``learner.schedule_counts_warmup``
(:func:`dsqn.learning.agent.schedule_offset`).

:class:`dsqn.training.loop.TrainingRun` is the thin Python outer loop around the chunks: metrics,
evaluation, checkpoints, progress, resume, and a clean stop on SIGINT/SIGTERM
(:func:`dsqn.training.launch.run_training` sets it up).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dsqn.config import Config, ConfigError, sweep, validate
from dsqn.envs import EpisodeStats, Timestep, make_seed_pool, merge_seeds, split_seeds
from dsqn.envs.stepping import (
    current_handle,
    init_episode_stats,
    make_step,
    refill_stack,
    reset,
    reset_follows,
    sharded_host_step,
    steps_since_reset,
    update_episode_stats,
)
from dsqn.learning import agent, replay
from dsqn.runtime import prng
from dsqn.runtime.precision import matmul_precision

__all__ = ["Carry", "Experiment", "make_train", "seed_mesh"]


class Carry(NamedTuple):
    """Everything a chunk reads and writes (leading axes: S seeds; S*E pool envs).

    Attributes:
      train: agent.TrainState [S].
      replay: replay.ReplayState [S].
      handle: the env pool's XLA handle (a MinAtar pool's state).
      timestep: the pool's last Timestep [S*E] (its obs is what the agents act on next).
      stats: EpisodeStats [S*E] of full games.
      agent_steps: int32 [], agent steps done by every seed.
      since_reset: int32 [S*E], agent steps since each env's last reset step (for the frame
        stack refilled at a life loss, :func:`dsqn.envs.refill_stack`).
      hyper: ``{field: float32 [S]}``, every sweepable field's value per agent
        (:func:`dsqn.config.sweep.hyperparameters`); read, never changed.
    """

    train: agent.TrainState
    replay: replay.ReplayState
    handle: Any
    timestep: Timestep
    stats: EpisodeStats
    agent_steps: jax.Array
    since_reset: jax.Array
    hyper: dict[str, jax.Array]


def _multiples_in(lo: jax.Array, hi: jax.Array, period: int) -> jax.Array:
    """How many multiples of ``period`` lie in ``(lo, hi]`` (0 when ``hi <= lo``)."""
    return jnp.maximum(hi // period - lo // period, 0)


@dataclasses.dataclass
class Experiment:
    """The static parts of a run and the functions over its carry.

    Attributes:
      config: the validated config.
      env: the training env pool (S * E envs, seed-major); with a mesh, this process's first
        block pool.
      network: the Q-network module.
      optimizer: the optax optimizer.
      num_actions: actions of the game.
      obs_shape: one env's observation shape.
      layer_neurons: spiking layer -> neurons per sample (empty for ReLU networks).
      mesh: the 1-D device mesh (axis ``"seed"``) the seed axis is sharded over, or None on a
        single device.
      pools: with a mesh, ``{d: pool}`` for the mesh positions ``d`` of this process's devices:
        the training envs of the seeds placed on device ``d`` (block ``d`` of the seed axis).
    """

    config: Config
    env: Any
    network: nn.Module
    optimizer: optax.GradientTransformation
    num_actions: int
    obs_shape: tuple[int, ...]
    layer_neurons: dict[str, int]
    mesh: Mesh | None = None
    pools: dict[int, Any] | None = None

    @functools.cached_property
    def agents(self) -> tuple[sweep.AgentSpec, ...]:
        """Every agent trained: one per (sweep point, seed), point-major (:mod:`dsqn.config.sweep`);
        one per seed without a sweep. The leading axis ``S`` of every per-agent array (computed
        once per experiment)."""
        return sweep.agents(self.config)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Each agent's seed (repeated over the points of a sweep)."""
        return tuple(a.seed for a in self.agents)

    @property
    def local_seeds(self) -> tuple[int, ...]:
        """The seeds of this process's agents, in order (all agents' with one process)."""
        return tuple(a.seed for a in self.local_agents)

    @property
    def num_seeds(self) -> int:
        """Agents trained (seeds x sweep points)."""
        return len(self.agents)

    @property
    def local_agents(self) -> tuple[sweep.AgentSpec, ...]:
        """The agents on this process's devices, in order (all of them with one process)."""
        if self.pools is None:
            return self.agents
        per_block = self.num_seeds // self.mesh.devices.size
        return tuple(
            a for d in sorted(self.pools) for a in self.agents[d * per_block : (d + 1) * per_block]
        )

    def hyperparameters(self) -> dict[str, np.ndarray]:
        """Every sweepable field's value per agent, ``{field: float32 [S]}``."""
        return sweep.hyperparameters(self.config)

    @property
    def envs_per_seed(self) -> int:
        return self.config.env.envs_per_seed

    def init_train_states(self) -> agent.TrainState:
        """Fresh per-agent train states [S], each from its seed's train stream
        (:func:`dsqn.runtime.prng.train_keys`) and with its own values (:mod:`dsqn.config.sweep`):
        agents of a sweep that share a seed start from the same draws."""
        obs = jnp.zeros((1, *self.obs_shape), self.obs_dtype)
        seeds, hyper = self.seeds, self.hyperparameters()

        def init(key, values):
            network = sweep.agent_network(self.network, values)
            optimizer = agent.make_optimizer(sweep.agent_learner(self.config.learner, values))
            return agent.init_train_state(key, network, optimizer, obs)

        def states(hyper):
            return jax.vmap(init)(prng.train_keys(seeds), hyper)

        return jax.jit(states, out_shardings=self._by_seed())(hyper)

    @property
    def obs_dtype(self) -> np.dtype:
        """One observation's dtype, as the env yields it."""
        return np.dtype(self.env.observation_space.dtype)

    def init_replay(self) -> replay.ReplayState:
        """Empty per-seed replays [S]."""
        learner = self.config.learner
        example = np.zeros(self.obs_shape, self.obs_dtype)
        make = lambda _: replay.init(  # noqa: E731
            learner.replay_capacity_transitions,
            self.envs_per_seed,
            example,
            num_actions=self.num_actions,
            priority_rule=agent.priority_rule(learner),
        )
        s = self.num_seeds
        return jax.jit(lambda: jax.vmap(make)(jnp.arange(s)), out_shardings=self._by_seed())()

    def _by_seed(self):
        """The sharding of per-seed arrays: split over the mesh, or None (jit's default)."""
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec("seed"))

    def start_envs(
        self, train: agent.TrainState, replay_state: replay.ReplayState, agent_steps: int = 0
    ) -> Carry:
        """A carry whose envs were just reset (at the start of a run, or on resume)."""
        n = self.num_seeds * self.envs_per_seed
        stats = jax.tree.map(np.asarray, init_episode_stats(n))
        steps = np.asarray(agent_steps, np.int32)
        since = np.zeros(n, np.int32)  # the envs were just reset
        # The chunk donates its carry: no two leaves may share a buffer (params and target
        # params start equal, zero statistics are shared, ...).
        train, replay_state = jax.tree.map(lambda x: x.copy(), (train, replay_state))
        hyper = self.hyperparameters()
        if self.mesh is None:
            timestep = reset(self.env)  # before the handle: a JAX pool's state is its handle
            handle = current_handle(self.env, self.config.env.stepping, self.stepper())
            envs = (handle, timestep, stats, steps, since, hyper)
            handle, timestep, stats, steps, since, hyper = jax.tree.map(
                lambda x: jnp.asarray(x).copy(), envs
            )
            carry = Carry(train, replay_state, handle, timestep, stats, steps, since, hyper)
            # Committing every leaf to its device gives the first chunk call the same signature
            # as the later ones (which take the chunk's committed outputs): one compilation.
            return jax.device_put(carry, jax.local_devices()[0])
        shardings = self.carry_shardings()
        timestep = self._reset_blocks(shardings.timestep)
        handle = _global_array(np.zeros((1,), np.uint8), shardings.handle)
        stats = jax.tree.map(lambda x: _global_array(x, shardings.stats), stats)
        steps = _global_array(steps, shardings.agent_steps)
        since = _global_array(since, shardings.since_reset)
        hyper = jax.tree.map(lambda x: _global_array(x, shardings.hyper), hyper)
        return Carry(train, replay_state, handle, timestep, stats, steps, since, hyper)

    def _reset_blocks(self, sharding: NamedSharding) -> Timestep:
        """Reset this process's block pools and assemble their first timesteps into one
        seed-sharded Timestep [S*E]."""
        devices = list(self.mesh.devices.flat)
        blocks = sorted(self.pools)
        firsts = [jax.tree.map(np.asarray, reset(self.pools[d])) for d in blocks]

        def assemble(*leaves):
            shape = (leaves[0].shape[0] * len(devices), *leaves[0].shape[1:])
            arrays = [jax.device_put(x, devices[d]) for d, x in zip(blocks, leaves, strict=True)]
            return jax.make_array_from_single_device_arrays(shape, sharding, arrays)

        return jax.tree.map(assemble, *firsts)

    def stepper(self):
        """The pool's in-jit step: on one device, envpool's XLA step or a host callback
        (``env.stepping``); with a mesh, always every device's block pool stepped on its host
        (:func:`dsqn.envs.stepping.sharded_host_step`)."""
        if self.mesh is None:
            return make_step(self.env, self.config.env.stepping)
        return sharded_host_step(self.pools, self.mesh)

    def carry_shardings(self) -> Carry:
        """Shardings of the carry (a prefix tree): per-seed state and the envs' timesteps and
        statistics split over the mesh (seed-major, so a device holds its seeds' envs), the
        handle and the step counter replicated."""
        by_seed = NamedSharding(self.mesh, PartitionSpec("seed"))
        replicated = NamedSharding(self.mesh, PartitionSpec())
        return Carry(by_seed, by_seed, replicated, by_seed, by_seed, replicated, by_seed, by_seed)

    def replicated(self, x: Any) -> jax.Array:
        """A host value (the same on every process) as an array the chunk functions accept:
        replicated over the mesh, or on the default device."""
        x = np.asarray(x)
        if self.mesh is None:
            return jnp.asarray(x)
        return _global_array(x, NamedSharding(self.mesh, PartitionSpec()))

    def placed(self, tree: Any, *, per_seed: bool = True) -> Any:
        """``jax.ShapeDtypeStruct`` s of ``tree``'s leaves carrying their sharding on the mesh
        (by seed, or replicated when not ``per_seed``); ``tree`` unchanged without a mesh.
        Templates that restore a checkpoint onto the mesh."""
        if self.mesh is None:
            return tree
        spec = PartitionSpec("seed") if per_seed else PartitionSpec()
        sharding = NamedSharding(self.mesh, spec)
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree
        )

    def init_carry(self) -> Carry:
        """A fresh run: new parameters, empty replays, reset envs, step 0."""
        return self.start_envs(self.init_train_states(), self.init_replay())

    def chunk_fn(self, iterations: int):
        """The jitted ``chunk(carry) -> (carry, metrics)`` of ``iterations`` loop iterations.

        ``metrics`` holds per-seed sums over the chunk (arrays ``[S]``): ``loss``, ``q``,
        ``updates``, ``episodes``, ``episode_return``, ``episode_length``, ``acting_forwards``,
        and ``spikes_<layer>`` (spikes per layer over T, neurons, envs and forwards).
        """
        return _chunk_fn(self, iterations)


def _global_array(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host value that every process holds whole."""
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def seed_mesh(config: Config) -> Mesh | None:
    """The 1-D ``"seed"`` mesh over all devices (of every process, after
    ``jax.distributed.initialize``), or None (one device, or sharding off)."""
    devices = jax.devices()
    if jax.process_count() > 1 and not config.run.shard_seeds:
        raise ConfigError(
            "run.shard_seeds is false, but this is one of several processes "
            "(jax.distributed): a multi-process run must shard its seeds over all processes' "
            "devices; set --run.shard_seeds true, or run the processes independently"
        )
    if not config.run.shard_seeds or len(devices) == 1:
        return None
    agents = len(sweep.agents(config))
    if agents % len(devices):
        raise ConfigError(
            f"the run trains {agents} agents ({len(config.run.seeds)} seeds x "
            f"{agents // len(config.run.seeds)} sweep points), which cannot be split evenly over "
            f"{len(devices)} devices: use a multiple of {len(devices)} agents, or "
            "--run.shard_seeds false to keep every agent on one device"
        )
    return Mesh(np.array(devices), ("seed",))


def make_train(config: Config) -> Experiment:
    """Validates ``config`` and builds the :class:`Experiment` (env pool, network, optimizer)."""
    validate(config)
    mesh = seed_mesh(config)
    pools = None
    seeds = [a.seed for a in sweep.agents(config)]
    if mesh is None:
        env = make_seed_pool(config, config.env.envs_per_seed, seeds, train=True)
    else:
        per_block = len(seeds) // mesh.devices.size
        pools = {
            d: make_seed_pool(
                config,
                config.env.envs_per_seed,
                seeds[d * per_block : (d + 1) * per_block],
                train=True,
            )
            for d, device in enumerate(mesh.devices.flat)
            if device.process_index == jax.process_index()
        }
        env = pools[min(pools)]
    num_actions = int(env.action_space.n)
    obs_shape = tuple(env.observation_space.shape)
    network = agent.make_network(config.network, num_actions, obs_shape)
    obs = jnp.zeros((1, *obs_shape), env.observation_space.dtype)
    counts = jax.eval_shape(
        lambda: network.init_with_output(
            jax.random.key(0), obs, mutable=["params", "intermediates"]
        )
    )[1].get("intermediates", {})
    layer_neurons = {
        k.removeprefix("spikes_"): math.prod(v[0].shape[1:]) for k, v in counts.items()
    }
    return Experiment(
        config=config,
        env=env,
        network=network,
        optimizer=agent.make_optimizer(config.learner),
        num_actions=num_actions,
        obs_shape=obs_shape,
        layer_neurons=layer_neurons,
        mesh=mesh,
        pools=pools,
    )


METRIC_NAMES = (
    "loss",
    "q",
    "updates",
    "episodes",
    "episode_return",
    "episode_length",
    "acting_forwards",
)
"""Per-seed sums a chunk returns (besides ``spikes_<layer>``); see :meth:`Experiment.chunk_fn`."""


class _Iteration:
    """One loop iteration of a chunk, as its named steps (all seeds at once, inside jit)."""

    def __init__(self, exp: Experiment):
        self.learner = exp.config.learner
        self.num_seeds, self.envs_per_seed = exp.num_seeds, exp.envs_per_seed
        self.env_step = exp.stepper().step
        self.layers = tuple(exp.layer_neurons)
        self.total = exp.config.run.total_agent_steps
        # The Baselines frame stack is refilled at every reset: only Atari's frames are stacked.
        env = exp.config.env
        self.refill = env.life_loss_stack == "refill" and env.suite == "atari"
        # Updates, target syncs and the importance exponent follow the schedule step.
        self.offset = agent.schedule_offset(self.learner)
        network, learner = exp.network, self.learner

        def forward(values, params, obs):
            return agent.q_values_and_spikes(sweep.agent_network(network, values), params, obs)

        def update(values, train, replay_state, beta):
            config = sweep.agent_learner(learner, values)
            return agent.update(
                train,
                replay_state,
                beta,
                network=sweep.agent_network(network, values),
                optimizer=agent.make_optimizer(config),
                config=config,
            )

        def select(values, key, q, t):
            epsilon = agent.epsilon_at(sweep.agent_learner(learner, values), t)
            return agent.select_actions(key, q, epsilon)

        # Every agent runs with its own values (traced, swept or not: :mod:`dsqn.config.sweep`).
        self._forward = jax.vmap(forward)
        self._update = jax.vmap(update, in_axes=(0, 0, 0, None))
        self._select = jax.vmap(select, in_axes=(0, 0, 0, None))

    def zero_metrics(self) -> dict[str, jax.Array]:
        zero = jnp.zeros((self.num_seeds,), jnp.float32)
        return {k: zero for k in (*METRIC_NAMES, *(f"spikes_{k}" for k in self.layers))}

    def __call__(self, state: tuple[Carry, dict[str, jax.Array]], _) -> tuple[Any, None]:
        carry, metrics = state
        t, t_next = carry.agent_steps, carry.agent_steps + self.envs_per_seed
        keys = jax.vmap(lambda k: jax.random.split(k, 2))(carry.train.key)
        train = carry.train._replace(key=keys[:, 0])
        obs = self.observe(carry)
        hyper = carry.hyper
        actions, spikes, warm = self.act(hyper, train.params, obs, keys[:, 1], t)
        handle, ts = self.env_step(carry.handle, merge_seeds(actions))
        reset_step = reset_follows(carry.timestep)
        replay_state = self.store(carry.replay, obs, actions, ts, reset_step)
        stats = update_episode_stats(carry.stats, ts, reset_step)
        train, replay_state, loss_sum, q_sum, n_updates = self.learn(
            hyper, train, replay_state, t, t_next
        )
        train = self.sync_target(train, t, t_next)
        finished = split_seeds((ts.game_over & ~reset_step).astype(jnp.float32), self.num_seeds)
        new = {
            "loss": loss_sum,
            "q": q_sum,
            "updates": n_updates.astype(jnp.float32),
            "episodes": finished.sum(-1),
            "episode_return": (finished * split_seeds(stats.last_return, self.num_seeds)).sum(-1),
            "episode_length": (
                finished * split_seeds(stats.last_length, self.num_seeds).astype(jnp.float32)
            ).sum(-1),
            "acting_forwards": jnp.where(warm, 0.0, 1.0),
            **{f"spikes_{k}": v for k, v in spikes.items()},
        }
        metrics = {k: metrics[k] + new[k] for k in metrics}
        since = steps_since_reset(carry.since_reset, reset_step)
        carry = Carry(train, replay_state, handle, ts, stats, t_next, since, hyper)
        return (carry, metrics), None

    def observe(self, carry: Carry) -> jax.Array:
        """The observations ``[S, E, ...]`` the agents act on: the pool's, with the frame stack
        refilled after a reset (``env.life_loss_stack``, :func:`dsqn.envs.refill_stack`)."""
        obs = carry.timestep.obs
        if self.refill:
            obs = refill_stack(obs, carry.since_reset)
        return split_seeds(obs, self.num_seeds)

    def greedy(self, hyper, params, obs):
        """Q ``[S, E, A]`` and each agent's spikes per layer summed over its envs."""
        q, counts = self._forward(hyper, params, obs)
        return q, {k: v.sum(-1) for k, v in counts.items()}

    def act(self, hyper, params, obs, keys, t):
        """Epsilon-greedy actions ``[S, E]``; no forward pass while actions are uniformly random
        (the warm-up), whose spikes and Q then count as zero."""
        shapes = jax.eval_shape(self.greedy, hyper, params, obs)
        zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        warm = t < self.learner.warmup_agent_steps
        q, spikes = jax.lax.cond(warm, lambda: zeros, lambda: self.greedy(hyper, params, obs))
        return self._select(hyper, keys, q, t), spikes, warm

    def store(self, replay_state, obs, actions, ts: Timestep, reset_step):
        """Each seed's transitions into its replay (a reset step is marked, never learned)."""
        s = self.num_seeds
        return jax.vmap(replay.add)(
            replay_state,
            obs,
            actions,
            split_seeds(ts.reward, s),
            split_seeds(ts.terminated, s),
            split_seeds(ts.truncated, s),
            split_seeds(reset_step, s),
        )

    def learn(self, hyper, train, replay_state, t, t_next):
        """The updates due in ``(t, t_next]`` of the schedule step after the warm-up (one per
        ``update_period_agent_steps``), once every replay holds a minibatch: the new states and
        replays (a prioritized replay's priorities change), the sums of loss and mean Q, and the
        number of updates."""
        learner = self.learner
        tau, tau_next = t - self.offset, t_next - self.offset
        due = _multiples_in(
            jnp.maximum(tau, learner.warmup_agent_steps - self.offset),
            tau_next,
            learner.update_period_agent_steps,
        )
        beta = agent.importance_exponent_at(learner, tau, self.total)

        def one_update(i, inner):
            train, replay_state, loss, qsum = inner
            train, replay_state, m = self._update(hyper, train, replay_state, beta)
            return train, replay_state, loss + m["loss"], qsum + m["q_mean"]

        # Checking the replay scans its validity mask: only do it when an update is due.
        can_sample = jax.vmap(replay.can_sample, in_axes=(0, None))
        n_updates = jax.lax.cond(
            due > 0,
            lambda: jnp.where(jnp.all(can_sample(replay_state, learner.batch_size)), due, 0),
            lambda: jnp.zeros_like(due),
        )
        zero = jnp.zeros((self.num_seeds,), jnp.float32)
        train, replay_state, loss_sum, q_sum = jax.lax.fori_loop(
            0, n_updates, one_update, (train, replay_state, zero, zero)
        )
        return train, replay_state, loss_sum, q_sum, n_updates

    def sync_target(self, train, t, t_next):
        """Copies the parameters to the target network if a target period of the schedule step
        ends in ``(t, t_next]``."""
        tau, tau_next = t - self.offset, t_next - self.offset
        sync = _multiples_in(tau, tau_next, self.learner.target_update_period_agent_steps) > 0
        return jax.lax.cond(sync, jax.vmap(agent.sync_target), lambda x: x, train)


def _chunk_fn(exp: Experiment, iterations: int):
    iteration = _Iteration(exp)
    s = exp.num_seeds

    def chunk(carry: Carry):
        state = (carry, iteration.zero_metrics())
        with matmul_precision(exp.config.run.matmul_precision):
            (carry, metrics), _ = jax.lax.scan(iteration, state, None, length=iterations)
        metrics["updates"] = jnp.broadcast_to(metrics["updates"], (s,))
        return carry, metrics

    if exp.mesh is None:
        return jax.jit(chunk, donate_argnums=0)
    shardings = exp.carry_shardings()
    replicated = NamedSharding(exp.mesh, PartitionSpec())
    return jax.jit(
        chunk, donate_argnums=0, in_shardings=(shardings,), out_shardings=(shardings, replicated)
    )
