"""The evaluation protocol: full games on a separate env pool, episodes run in parallel.

For every seed, ``episodes`` environments of that seed's own evaluation pool (the protocol's
evaluation settings: no episodic life, raw rewards; env seeds disjoint from training's) each play
ONE full game with epsilon-greedy actions (the paper: epsilon 0.05), all seeds at once inside one
jitted ``lax.while_loop``. An env that finishes its game is masked out until every env of its
seed has finished; a seed's pool is not stepped once all its games are over. A seed's evaluation
games therefore depend only on its own parameters, keys and earlier evaluations, never on which
other seeds are evaluated alongside it (in one process, or spread over several).

Per episode it records the raw (unclipped) return, the length in agent steps, and two Q
statistics:

- ``max_q``: the maximum over the episode's greedy steps of ``max_a Q(s, a)`` (steps whose action
  was drawn at random are skipped, even when the draw equals the greedy action; NaN for an
  episode without a greedy step). Its mean over episodes is the paper's "average max Q", the
  statistic the authors' code logs (``DqnAgent._get_action`` and ``_evaluate`` in
  github.com/AptX395/Deep-Spiking-Q-Networks, ``agent/agent.py``).
- ``mean_max_q``: the mean over all the episode's steps of ``max_a Q(s, a)``.

Optionally it sums each spiking layer's spike counts per neuron over all counted steps, for
:mod:`dsqn.analyses.energy`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dsqn.config import Config, sweep
from dsqn.envs import make_seed_pool, merge_seeds, split_seeds
from dsqn.envs.stepping import Timestep, current_handle, make_step, reset
from dsqn.learning import agent
from dsqn.runtime import prng
from dsqn.runtime.precision import matmul_precision

__all__ = ["EvalResult", "Evaluator", "MaxQ", "ObsTransform", "accumulate_max_q"]

ObsTransform = Callable[[Callable, Any, jax.Array, jax.Array, jax.Array], jax.Array]
"""``transform(apply_fn, params, obs, size, key) -> obs'``: one seed's observations ``[N, ...]``
changed before the network sees them (e.g. a perturbation of strength ``size``);
``apply_fn(params, obs) -> Q`` lets a transform use the network (gradient attacks)."""


class EvalResult(NamedTuple):
    """Per seed and episode (numpy, ``[S, N]``), plus optional spike sums.

    Attributes:
      returns: raw return of each episode's full game.
      lengths: agent steps of each episode.
      max_q: the maximum over the episode's greedy steps of ``max_a Q(s, a)`` (NaN without a
        greedy step); :func:`dsqn.learning.evaluation_stats.average_max_q` averages it over
        episodes (the paper's statistic).
      mean_max_q: the mean over all the episode's steps of ``max_a Q(s, a)``.
      spike_sums: ``{layer: [S, *layer_shape]}`` spike counts summed over all counted steps and
        episodes (only when requested), else None.
      steps: ``[S]`` counted agent steps (the denominator of per-action spike statistics).
    """

    returns: np.ndarray
    lengths: np.ndarray
    max_q: np.ndarray
    mean_max_q: np.ndarray
    spike_sums: dict[str, np.ndarray] | None
    steps: np.ndarray


class MaxQ(NamedTuple):
    """Running Q statistics of N episodes (a pytree of ``[N]`` float32 arrays).

    Attributes:
      step_sum: sum over the counted steps of ``max_a Q(s, a)``.
      greedy_max: maximum over the counted greedy steps of ``max_a Q(s, a)`` (-inf before any).
    """

    step_sum: jax.Array
    greedy_max: jax.Array


def accumulate_max_q(stats: MaxQ, q: jax.Array, explored: jax.Array, counted: jax.Array) -> MaxQ:
    """Adds one step of N episodes: ``q: [N, A]`` the Q-values acted on, ``explored: [N]`` the
    action was drawn at random, ``counted: [N]`` the step belongs to the episode.

    step_sum'   = step_sum + counted * max_a q
    greedy_max' = max(greedy_max, max_a q)  where counted and not explored, else greedy_max
    """
    best = jnp.max(q, axis=-1)
    greedy = counted & ~explored
    return MaxQ(
        step_sum=stats.step_sum + jnp.where(counted, best, 0.0),
        greedy_max=jnp.where(greedy, jnp.maximum(stats.greedy_max, best), stats.greedy_max),
    )


class _EvalCarry(NamedTuple):
    """The state of :meth:`Evaluator._loop`'s ``while_loop``: S seeds x N episodes, seed-major
    ``[S*N]`` unless said otherwise."""

    handles: tuple
    """Each seed's env pool handle (the in-jit step's state)."""
    timestep: Timestep
    """The last timestep of every env."""
    key: jax.Array
    """``[S]`` each seed's key, split every step into the next key and the step's action key."""
    finished: jax.Array
    """bool: the env's game is over (it is masked out from then on)."""
    returns: jax.Array
    """float32: the raw return of the env's game so far."""
    lengths: jax.Array
    """int32: the agent steps of the env's game so far."""
    max_q: MaxQ
    """The Q statistics of the env's game so far."""
    spikes: dict[str, jax.Array]
    """``{layer: [S, *layer_shape]}`` spike counts summed over the counted steps (empty unless
    spikes are collected)."""
    steps: jax.Array
    """``[S]`` float32: the counted agent steps of each seed."""
    iteration: jax.Array
    """int32 scalar: loop iterations so far (at most ``max_steps``)."""


class Evaluator:
    """Runs the evaluation protocol for S seeds' parameters at once.

    Build it once per process (it owns an env pool); each call resets the pool and plays one
    fresh game per env.
    """

    def __init__(
        self,
        config: Config,
        network: nn.Module,
        seeds: Sequence[int | sweep.AgentSpec],
        *,
        episodes: int | None = None,
        epsilon: float | None = None,
        collect_spikes: bool = False,
    ):
        # Agents: a seed each, and in a sweep run their values (each agent's network has its own).
        specs = [s if isinstance(s, sweep.AgentSpec) else sweep.AgentSpec(int(s)) for s in seeds]
        self.num_seeds = len(specs)
        self._values = sweep.swept_network_values(specs)
        self.episodes = config.eval.episodes if episodes is None else episodes
        self.epsilon = config.eval.epsilon if epsilon is None else epsilon
        self.precision = config.run.matmul_precision
        if not (isinstance(self.episodes, int) and self.episodes >= 1):
            raise ValueError(f"episodes must be an integer >= 1, got {self.episodes!r}")
        if not 0 <= self.epsilon <= 1:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon!r}")
        self.envs = [
            make_seed_pool(config, self.episodes, [spec.seed], train=False) for spec in specs
        ]
        self.max_steps = int(self.envs[0].config["max_episode_steps"]) + 1
        self._stepping = config.env.stepping
        self._xla = [make_step(env, self._stepping) for env in self.envs]
        self._network = network
        self._collect = collect_spikes
        self._runs: dict[ObsTransform | None, Callable] = {}

    def __call__(
        self,
        params: Any,
        key: jax.Array,
        *,
        transform: ObsTransform | None = None,
        size: float = 0.0,
    ) -> EvalResult:
        """Evaluate ``params`` (stacked ``[S, ...]``) with per-seed keys ``key: [S]``.

        ``transform`` (optional, see :data:`ObsTransform`) changes every observation before the
        network sees it, with strength ``size`` and a key derived from the step's action key (so
        a transform that leaves observations unchanged reproduces the untransformed games). Each
        transform compiles once; ``size`` is traced.
        """
        if transform not in self._runs:
            self._runs[transform] = jax.jit(lambda *args: self._precise_loop(transform, *args))
        # One device runs the evaluation: envpool's XLA step must execute exactly once per step,
        # which a program sharded over several devices would not guarantee.
        device = jax.local_devices()[0]
        params, key = jax.device_put((params, key), device)
        timestep = _concatenate([reset(env) for env in self.envs])
        size = jnp.asarray(size, jnp.float32)
        run = self._runs[transform]
        pools = zip(self.envs, self._xla, strict=True)
        handles = tuple(current_handle(env, self._stepping, x) for env, x in pools)
        out = jax.device_get(run(self._values, params, key, size, handles, timestep))
        returns, lengths, max_q, spikes, steps = out
        greedy_max = np.asarray(max_q.greedy_max)
        return EvalResult(
            returns=np.asarray(returns),
            lengths=np.asarray(lengths),
            max_q=np.where(np.isneginf(greedy_max), np.nan, greedy_max).astype(np.float32),
            mean_max_q=(np.asarray(max_q.step_sum) / np.maximum(np.asarray(lengths), 1)).astype(
                np.float32
            ),
            spike_sums=spikes if self._collect else None,
            steps=np.asarray(steps),
        )

    def _forward(self, values, params: Any, obs: jax.Array):
        network = sweep.agent_network(self._network, values)
        if not self._collect:
            return network.apply({"params": params}, obs), {}
        q, state = network.apply({"params": params}, obs, mutable=["intermediates"])
        spikes = {k.removeprefix("spikes_"): v[0] for k, v in state["intermediates"].items()}
        return q, spikes

    def _observe(self, transform, values, params, obs, size, act_key):
        """Each seed's observations ``[S, N, ...]`` as its network sees them."""
        if transform is None:
            return obs
        keys = jax.vmap(lambda k: jax.random.fold_in(k, prng.PERTURBATION))(act_key)

        def observe(values, p, o, k):
            network = sweep.agent_network(self._network, values)
            apply_fn = lambda p, x: network.apply({"params": p}, x)  # noqa: E731
            return transform(apply_fn, p, o, size, k)

        return jax.vmap(observe)(values, params, obs, keys)

    def _step_seeds(self, handles, ts: Timestep, actions: jax.Array, finished: jax.Array):
        """Step every seed's pool whose games are not all over; the others keep their handle
        and last timestep (their envs are masked out anyway)."""
        s = self.num_seeds
        done = jnp.all(split_seeds(finished, s), axis=1)
        previous = split_seeds(ts, s)
        new_handles, parts = [], []
        for i, xla in enumerate(self._xla):
            prev_i = jax.tree.map(lambda x, i=i: x[i], previous)
            handle, ts_i = jax.lax.cond(
                done[i],
                lambda h, a, p: (h, p),
                lambda h, a, p, xla=xla: xla.step(h, a),
                handles[i],
                actions[i],
                prev_i,
            )
            new_handles.append(handle)
            parts.append(ts_i)
        return tuple(new_handles), _concatenate(parts)

    def _precise_loop(self, *args):
        with matmul_precision(self.precision):
            return self._loop(*args)

    def _loop(self, transform, values, params, key, size, handle, timestep: Timestep):
        s, n = self.num_seeds, self.episodes
        obs0 = split_seeds(timestep.obs, s)
        _, spikes0 = jax.eval_shape(jax.vmap(self._forward), values, params, obs0)
        zero_spikes = {k: jnp.zeros((s, *v.shape[2:]), jnp.float32) for k, v in spikes0.items()}

        def cond(carry: _EvalCarry):
            return ~jnp.all(carry.finished) & (carry.iteration < self.max_steps)

        def body(carry: _EvalCarry) -> _EvalCarry:
            keys = jax.vmap(jax.random.split)(carry.key)
            key, act_key = keys[:, 0], keys[:, 1]
            obs = split_seeds(carry.timestep.obs, s)
            obs = self._observe(transform, values, params, obs, size, act_key)
            q, layer_spikes = jax.vmap(self._forward)(values, params, obs)
            actions, explored = jax.vmap(agent.epsilon_greedy, in_axes=(0, 0, None))(
                act_key, q, self.epsilon
            )
            counted = ~carry.finished  # [S*N]
            handles, ts = self._step_seeds(carry.handles, carry.timestep, actions, carry.finished)
            c = counted.astype(jnp.float32)
            cs = split_seeds(c, s)
            spikes = {
                k: carry.spikes[k] + jnp.einsum("sn,sn...->s...", cs, v)
                for k, v in layer_spikes.items()
            }
            return _EvalCarry(
                handles=handles,
                timestep=ts,
                key=key,
                finished=carry.finished | (ts.game_over & counted),
                returns=carry.returns + ts.raw_reward * c,
                lengths=carry.lengths + counted.astype(jnp.int32),
                max_q=accumulate_max_q(carry.max_q, merge_seeds(q), merge_seeds(explored), counted),
                spikes=spikes,
                steps=carry.steps + cs.sum(-1),
                iteration=carry.iteration + 1,
            )

        zeros = jnp.zeros((s * n,), jnp.float32)
        init = _EvalCarry(
            handles=handle,
            timestep=timestep,
            key=key,
            finished=jnp.zeros((s * n,), bool),
            returns=zeros,
            lengths=jnp.zeros((s * n,), jnp.int32),
            max_q=MaxQ(zeros, jnp.full((s * n,), -jnp.inf, jnp.float32)),
            spikes=zero_spikes,
            steps=jnp.zeros((s,), jnp.float32),
            iteration=jnp.zeros((), jnp.int32),
        )
        out = jax.lax.while_loop(cond, body, init)
        return (
            split_seeds(out.returns, s),
            split_seeds(out.lengths, s),
            split_seeds(out.max_q, s),
            out.spikes,
            out.steps,
        )


def agents_evaluator(agents: Sequence[Any], **options: Any) -> Evaluator:
    """The :class:`Evaluator` of loaded agents (:func:`dsqn.load_agents`: one run's), with their
    config, network, seeds and, in a sweep run, their own values; ``options`` as the
    Evaluator's (``episodes``, ``epsilon``, ``collect_spikes``)."""
    return Evaluator(agents[0].config, agents[0].network, [a.spec for a in agents], **options)


def _concatenate(timesteps: list[Timestep]) -> Timestep:
    """Per-seed timesteps ``[N]`` joined, seed-major, into one ``[S*N]``."""
    if len(timesteps) == 1:
        return timesteps[0]
    return jax.tree.map(lambda *xs: jnp.concatenate([jnp.asarray(x) for x in xs]), *timesteps)
