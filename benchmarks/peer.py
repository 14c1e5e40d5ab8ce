"""Training throughput beside an independent JAX DQN: dsqn on MinAtar Breakout against rejax.

In one process, on MinAtar Breakout, with the same seeds, envs per seed, replay capacity,
minibatch, update schedule, target period, learning rate and network layers, agent steps per
second of

- ``dsqn-dqn``: dsqn's ``minatar-dqn`` preset, its jitted training chunk
  (``Experiment.chunk_fn``, prepared as ``benchmarks.train`` does),
- ``dsqn-dsqn``: the ``minatar-dsqn`` preset (LIF, T = 8; its network is spiking, so it is not
  the same computation as the other two),
- ``rejax-dqn``: rejax's ``DQN`` (github.com/keraJLi/rejax) on gymnax's ``Breakout-MinAtar``: its
  own jitted ``train`` function, vmapped over the seeds as rejax's README does, evaluation off.

Matched (the values of the ``minatar-dqn`` preset, except the envs, see below): 3 seeds in one
vmapped program, 4 envs per seed, one update every 4 agent steps (one per loop iteration),
minibatch 32, replay 100,000 transitions per seed, uniform sampling, target copied every 1,000
agent steps, Adam lr 2.5e-4, discount 0.99, epsilon 1.0 -> 0.01 linearly over 250,000 agent steps,
plain DQN targets (no Double DQN), conv 16 3x3 -> dense 128 -> 3 actions. rejax has no update
period: it makes ``num_epochs`` updates per iteration of ``num_envs`` agent steps, so one update
per 4 agent steps needs 4 envs per seed (the presets train with 1 env per seed and an update
every 4th iteration). rejax's DQN builds MLPs only; it is given a flax module with the preset's
layers. Every other difference is listed in the JSON (``differences``) and in
``benchmarks/README.md``.

Protocol, per case: a program that fills each replay with 40 agent steps per seed (dsqn: a
chunk of 10 iterations, as ``benchmarks.train``; rejax: ``fill_buffer`` = 39, so the 40 steps
make no update and every later iteration makes one); one call of the timed program to compile
and warm up (excluded); then ``--rounds`` timed calls, each continuing the training, the cases
interleaved round by round (order rotated each round). The JSON gives each call's seconds and
the median; agent steps per second count one seed's agent steps (``iterations x
envs_per_seed``), summed over seeds in ``all_seeds_agent_steps_per_s``. The counts come from
each library's own counters (dsqn: ``agent_steps`` and the chunk's ``updates``; rejax:
``global_step`` and the optimizer's ``step``), and must be equal for all cases. Also, per case,
the updates alone: as many updates as a timed call makes, in one jitted loop over each library's
own sample-and-update step, from the trained state, every seed at once (vmapped); and the
minibatch draws alone (as many, each library's own replay sampling and gathering, summed so
that nothing is optimised away).

``--cases rejax-dqn-matmul-conv`` adds an opt-in diagnostic, not a peer measurement: rejax's DQN
with one change, its convolution differentiated by dsqn's matrix products
(``dsqn.models.convolution.valid_conv``), to see how much of a gap that one difference makes.

Needs the optional extra ``peer`` (rejax 0.1.3 and gymnax 0.0.9): ``pip install -e ".[peer]"``.
Without it the ``rejax-dqn`` case stops with an error that names the missing package;
``--cases dsqn-dqn dsqn-dsqn`` times dsqn alone.

Usage: python -m benchmarks.peer [--iterations 500] [--rounds 3] [--seeds 3]
       [--envs-per-seed 4] [--cases dsqn-dqn dsqn-dsqn rejax-dqn [rejax-dqn-matmul-conv]]
       [--quick] [--smoke]
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import train as train_benchmark  # noqa: E402
from dsqn.config import Config, apply_overrides, preset  # noqa: E402
from dsqn.learning import replay  # noqa: E402
from dsqn.models.convolution import valid_conv  # noqa: E402
from dsqn.training import chunk as dsqn_train  # noqa: E402

CASES = ("dsqn-dqn", "dsqn-dsqn", "rejax-dqn")
DIAGNOSTIC_CASES = ("rejax-dqn-matmul-conv",)
"""Opt-in (``--cases``), not a peer measurement: rejax's DQN with one change, its network's
convolution differentiated by dsqn's matrix products (:func:`dsqn.models.convolution.valid_conv`)
instead of XLA's transposed convolutions; it says how much of a gap that one difference makes."""
REJAX_CASES = ("rejax-dqn", *DIAGNOSTIC_CASES)
DSQN_PRESETS = {"dsqn-dqn": "minatar-dqn", "dsqn-dsqn": "minatar-dsqn"}
PEER_INSTALL = 'pip install -e ".[peer]"  (rejax==0.1.3 gymnax==0.0.9)'
PEER_VERSIONS = ("rejax", "gymnax", "gymnasium", "distrax", "flax", "optax", "pgx")
REJAX_ENV = "Breakout-MinAtar"
NETWORK = "conv 16 3x3 stride 1 VALID, ReLU, dense 128, ReLU, dense |A| = 3"

DIFFERENCES = (
    "Game: dsqn steps pgx's JAX port of MinAtar Breakout (dsqn.envs.minatar: sticky actions "
    "with probability 0.1, no time limit, bool observations); rejax steps gymnax 0.0.9's "
    "Breakout-MinAtar (no sticky actions, games cut at 1,000 steps and counted as done, float32 "
    "observations, a reset computed at every step and selected where an episode ended). Both "
    "have the minimal action set of 3 actions and 10x10x4 observations.",
    "Envs: 4 per seed in every case (rejax's only way to make one update per 4 agent steps); "
    "the minatar-dqn and minatar-dsqn presets train with 1 env per seed and update every 4th "
    "iteration (benchmarks.train times that).",
    "Step counting: both count agent steps per seed as env steps summed over the seed's envs "
    "(rejax's global_step grows by num_envs per iteration; dsqn's agent_steps by envs_per_seed); "
    "rejax's total_timesteps = eval_freq = one timed call's agent steps, so train() is one scan "
    "step over a fori_loop of the call's iterations.",
    "Evaluation: none is timed. dsqn's chunk has no evaluation; rejax's train() is called with "
    "skip_initial_evaluation=True and eval_callback replaced by a no-op returning 0 (rejax's "
    "default would play 128 evaluation episodes every eval_freq steps).",
    "Network: the same layers, but rejax's DQN only builds MLPs (QNetwork / DuelingQNetwork), so "
    "it is given a flax module with the preset's layers (conv 16 3x3, dense 128) through "
    "rejax.networks.EpsilonGreedyPolicy; initialisation is flax's default there and PyTorch's "
    "default in dsqn. dsqn-dsqn is a spiking network (LIF, T = 8): not the same computation.",
    "Replay: both hold 100,000 transitions per seed and sample 32 uniformly. dsqn stores each "
    "bool observation once (the next observation is the next slot) and draws with replacement "
    "among valid transitions; rejax stores obs and next_obs as float32 (320 MB per seed) and "
    "draws without replacement with jax.random.choice(p = written-slot mask) over all 100,000 "
    "slots at every update.",
    "Convolution: dsqn's networks compute the convolution's gradients by matrix products "
    "(dsqn.models.convolution.valid_conv: XLA:CPU runs its transposed convolutions far slower "
    "inside loop bodies, where every update runs); the module given to rejax uses flax's nn.Conv "
    "as it comes (XLA's gradients). The opt-in case rejax-dqn-matmul-conv swaps that alone.",
    "Loss and optimiser: dsqn's squared TD error (mean), rejax's optax.l2_loss (half the squared "
    "error, mean); both plain DQN targets (rejax ddqn=False). Adam lr 2.5e-4 in both; eps "
    "3.125e-4 in dsqn (the preset), optax's default 1e-8 in rejax, which also chains "
    "optax.clip(max_grad_norm = inf) before Adam.",
    "Target network: both copy the online parameters every 1,000 agent steps (rejax "
    "target_update_freq=1000 with polyak=0); rejax computes the Polyak blend at every iteration "
    "and selects it.",
    "Seeds: 3 per case, vmapped inside one jitted program in both (dsqn's chunk vmaps its seeds; "
    "rejax's train is wrapped in jax.vmap). Under vmap rejax's conditionals on its per-seed step "
    "counter (fill_buffer, uniform or policy actions, target update) become selects that "
    "compute both branches; dsqn's schedule counter is shared by its seeds.",
    "Work besides learning: dsqn's chunk also accumulates per-seed metrics (loss, Q, episode "
    "returns and lengths, spike counts) and episode statistics; rejax's train keeps none.",
    "Buffers: both timed programs donate their state (dsqn's chunk does; the rejax program is "
    "jitted with donate_argnums=0 by this benchmark), so neither copies its replay per call.",
    "Epsilon: both linear from 1.0 to 0.01 over 250,000 agent steps (rejax: exploration_fraction "
    "x total_timesteps), so the timed calls explore with epsilon near 1; both compute the greedy "
    "Q-values at every step regardless.",
)


class MissingPeer(ImportError):
    """The ``rejax-dqn`` case was asked for, but rejax or gymnax is not installed."""


def import_peer() -> Any:
    """rejax's ``DQN`` class; :class:`MissingPeer` naming the missing package and the command
    that installs it when rejax or gymnax is absent."""
    try:
        import gymnax  # noqa: F401
        from rejax import DQN
    except ImportError as error:
        missing = getattr(error, "name", None) or "rejax"
        raise MissingPeer(
            f"the rejax-dqn case needs the optional package {missing!r} (rejax's DQN on gymnax), "
            f"which is not installed: install it with  {PEER_INSTALL}  or time dsqn alone with "
            "--cases dsqn-dqn dsqn-dsqn"
        ) from error
    return DQN


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every case shares."""

    seeds: int
    envs_per_seed: int
    iterations: int
    rounds: int
    replay_capacity: int
    dsqn_time_steps: int
    learner: Any  # the minatar-dqn preset's LearnerConfig: batch, periods, lr, discount, epsilon

    @property
    def agent_steps_per_call(self) -> int:
        return self.iterations * self.envs_per_seed

    @property
    def updates_per_call(self) -> int:
        return self.agent_steps_per_call // self.learner.update_period_agent_steps

    @property
    def prefill_iterations(self) -> int:
        return train_benchmark.prefill_iterations(self.dsqn_config("dsqn-dqn"))

    def dsqn_overrides(self, case: str) -> dict[str, Any]:
        overrides = {
            "learner.warmup_agent_steps": 0,
            "env.envs_per_seed": self.envs_per_seed,
            "run.seeds": list(range(self.seeds)),
            "learner.replay_capacity_transitions": self.replay_capacity,
        }
        if case == "dsqn-dsqn":
            overrides["network.time_steps"] = self.dsqn_time_steps
        return overrides

    def dsqn_config(self, case: str) -> Config:
        return apply_overrides(preset(DSQN_PRESETS[case]), self.dsqn_overrides(case))


@dataclasses.dataclass
class Case:
    """One library's timed program, its updates-only program, and what it was configured with.

    ``call()`` runs the timed program once (continuing the training) and returns the agent steps
    and updates per seed that it made, read from the library's own counters; ``updates()`` runs
    the updates-only program once, ``samples()`` the minibatch-draws-only program; all block
    until done.
    """

    library: str
    config: dict[str, Any]
    call: Callable[[], tuple[list[int], list[int]]]
    updates: Callable[[], None]
    samples: Callable[[], None]


def _draws(sample: Callable[[Any, jax.Array], Any], replay_state: Any, k: int) -> jax.Array:
    """``k`` minibatches drawn by ``sample(replay_state, key)`` in one loop; returns a sum of
    every drawn value, so that nothing of the draws is left out of the program."""

    def body(_, carry):
        key, total = carry
        key, draw_key = jax.random.split(key)
        leaves = jax.tree.leaves(sample(replay_state, draw_key))
        return key, total + sum(jnp.sum(x.astype(jnp.float32)) for x in leaves)

    return jax.lax.fori_loop(0, k, body, (jax.random.key(1), jnp.float32(0)))[1]


def dsqn_case(case: str, s: Settings) -> Case:
    """dsqn's training chunk of ``s.iterations`` iterations, replay prefilled."""
    config = s.dsqn_config(case)
    exp, chunk, carry = train_benchmark.prepared_chunk(config, s.iterations)
    iteration = dsqn_train._Iteration(exp)  # the update step the chunk runs, vmapped over seeds
    k = s.updates_per_call
    state = {"carry": carry}

    def call() -> tuple[list[int], list[int]]:
        before = int(state["carry"].agent_steps)  # read before the chunk donates the carry
        carry, metrics = chunk(state["carry"])
        jax.block_until_ready((carry, metrics))
        state["carry"] = carry
        steps = int(carry.agent_steps) - before
        return [steps] * exp.num_seeds, [int(u) for u in np.asarray(metrics["updates"])]

    def updates_only(carry):
        def body(_, train):
            train, _, _ = iteration._update(carry.hyper, train, carry.replay, 1.0)
            return train

        return jax.lax.fori_loop(0, k, body, carry.train)

    updates_program = jax.jit(updates_only)
    batch = config.learner.batch_size
    samples_program = jax.jit(
        jax.vmap(lambda rs: _draws(lambda r, key: replay.sample(r, key, batch), rs, k))
    )

    def updates() -> None:
        jax.block_until_ready(updates_program(state["carry"]))

    def samples() -> None:
        jax.block_until_ready(samples_program(state["carry"].replay))

    n, lc, e = config.network, config.learner, config.env
    described = {
        "library": "dsqn",
        "preset": DSQN_PRESETS[case],
        "overrides": s.dsqn_overrides(case),
        "resolved": {
            "env.suite": e.suite,
            "env.game": e.game,
            "env.envs_per_seed": e.envs_per_seed,
            "network.kind": n.kind,
            "network.time_steps": n.time_steps if n.kind == "dsqn" else None,
            "network.layers": NETWORK,
            "learner.loss": lc.loss,
            "learner.td_error": lc.td_error,
            "learner.batch_size": lc.batch_size,
            "learner.update_period_agent_steps": lc.update_period_agent_steps,
            "learner.target_update_period_agent_steps": lc.target_update_period_agent_steps,
            "learner.learning_rate": lc.learning_rate,
            "learner.adam_eps": lc.adam_eps,
            "learner.discount": lc.discount,
            "learner.replay_capacity_transitions": lc.replay_capacity_transitions,
            "learner.replay_sampling": lc.replay_sampling,
            "learner.epsilon": f"linear {lc.epsilon_start} -> {lc.epsilon_end} over "
            f"{lc.epsilon_decay_agent_steps} agent steps",
            "seeds": list(config.run.seeds),
            "prefill_iterations": train_benchmark.prefill_iterations(config),
        },
        "every_other_field": f"dsqn presets {DSQN_PRESETS[case]}",
    }
    return Case("dsqn", described, call, updates, samples)


class _MinAtarQNetwork(nn.Module):
    """Young & Tian's MinAtar Q-network (the presets' layers) with the methods rejax's DQN calls:
    ``__call__`` (Q-values) and ``take`` (Q of the taken actions). ``matmul_conv``: the
    convolution differentiated by dsqn's matrix products (the diagnostic case only)."""

    action_dim: int
    matmul_conv: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        options = {"conv_general_dilated": valid_conv} if self.matmul_conv else {}
        conv = nn.Conv(16, (3, 3), strides=1, padding="VALID", **options)
        x = nn.relu(conv(obs.astype(jnp.float32)))
        x = nn.relu(nn.Dense(128)(x.reshape((x.shape[0], -1))))
        return nn.Dense(self.action_dim)(x)

    def take(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        return jnp.take_along_axis(self(obs), action[:, None], axis=1).squeeze(1)


def _no_evaluation(algo, ts, rng) -> jax.Array:
    return jnp.zeros(())


def rejax_options(s: Settings) -> dict[str, Any]:
    """The keyword arguments given to ``rejax.DQN.create`` (besides the per-program
    ``total_timesteps``, ``eval_freq`` and ``exploration_fraction``)."""
    learner = s.learner
    prefill_agent_steps = s.prefill_iterations * s.envs_per_seed
    return {
        "env": REJAX_ENV,
        "num_envs": s.envs_per_seed,
        "buffer_size": s.replay_capacity,
        # Updates start once global_step > fill_buffer: after the prefill's agent steps.
        "fill_buffer": prefill_agent_steps - 1,
        "batch_size": learner.batch_size,
        "num_epochs": s.envs_per_seed // learner.update_period_agent_steps,
        "learning_rate": learner.learning_rate,
        "gamma": learner.discount,
        "target_update_freq": learner.target_update_period_agent_steps,
        "polyak": 0.0,
        "ddqn": False,
        "eps_start": learner.epsilon_start,
        "eps_end": learner.epsilon_end,
        "normalize_observations": False,
        "normalize_rewards": False,
        "skip_initial_evaluation": True,
    }


def rejax_case(s: Settings, matmul_conv: bool = False) -> Case:
    """rejax's DQN ``train`` over ``s.iterations`` iterations, vmapped over seeds, replay
    prefilled, evaluation off (``matmul_conv``: the diagnostic case)."""
    DQN = import_peer()  # noqa: N806
    from rejax.networks import EpsilonGreedyPolicy

    options = rejax_options(s)
    agent = EpsilonGreedyPolicy(_MinAtarQNetwork)(action_dim=3, matmul_conv=matmul_conv)
    decay = s.learner.epsilon_decay_agent_steps

    def algorithm(total_timesteps: int):
        algo = DQN.create(
            **options,
            total_timesteps=total_timesteps,
            eval_freq=total_timesteps,
            exploration_fraction=decay / total_timesteps,
        )
        if algo.action_dim != 3:
            raise RuntimeError(f"{REJAX_ENV} has {algo.action_dim} actions, expected 3")
        return algo.replace(agent=agent, eval_callback=_no_evaluation)

    fill = algorithm(s.prefill_iterations * s.envs_per_seed)
    timed = algorithm(s.agent_steps_per_call)

    def run(algo):
        return jax.jit(jax.vmap(lambda ts: algo.train(train_state=ts)[0]), donate_argnums=0)

    keys = jax.random.split(jax.random.key(0), s.seeds)
    ts = run(fill)(jax.jit(jax.vmap(fill.init_state))(keys))
    if np.any(np.asarray(ts.q_ts.step) != 0):
        raise RuntimeError("rejax's prefill made updates: fill_buffer is wrong")
    program = run(timed)
    k = s.updates_per_call
    state = {"ts": ts}

    def call() -> tuple[list[int], list[int]]:
        ts = state["ts"]
        steps0, updates0 = np.asarray(ts.global_step), np.asarray(ts.q_ts.step)
        ts = program(ts)
        jax.block_until_ready(ts)
        state["ts"] = ts
        steps = np.asarray(ts.global_step) - steps0
        updates = np.asarray(ts.q_ts.step) - updates0
        return [int(x) for x in steps], [int(x) for x in updates]

    def updates_only(ts):
        # The body of rejax's DQN.train_iteration's update_iteration: sample, then DQN.update.
        def body(_, carry):
            q_ts, rng = carry
            rng, rng_sample = jax.random.split(rng)
            minibatch = ts.replay_buffer.sample(timed.batch_size, rng_sample)
            return timed.update(ts.replace(q_ts=q_ts), minibatch).q_ts, rng

        return jax.lax.fori_loop(0, k, body, (ts.q_ts, ts.rng))[0]

    updates_program = jax.jit(jax.vmap(updates_only))
    samples_program = jax.jit(
        jax.vmap(lambda rb: _draws(lambda b, key: b.sample(timed.batch_size, key), rb, k))
    )

    def updates() -> None:
        jax.block_until_ready(updates_program(state["ts"]))

    def samples() -> None:
        jax.block_until_ready(samples_program(state["ts"].replay_buffer))

    described = {
        "library": "rejax",
        "algorithm": "rejax.DQN",
        "env": f"gymnax {REJAX_ENV} (default env_params)",
        "create_options": options,
        "timed_program": {
            "total_timesteps": timed.total_timesteps,
            "eval_freq": timed.eval_freq,
            "epsilon_decay_agent_steps": int(timed.exploration_fraction * timed.total_timesteps),
        },
        "replaced": {
            "agent": f"rejax.networks.EpsilonGreedyPolicy(MinAtarQNetwork): {NETWORK}",
            "convolution_gradients": "dsqn.models.convolution.valid_conv (matrix products)"
            if matmul_conv
            else "flax nn.Conv as it comes (XLA's transposed convolutions)",
            "eval_callback": "no-op returning 0 (no evaluation)",
        },
        "max_grad_norm": float(timed.max_grad_norm),
        "seeds": s.seeds,
        "vmapped_over_seeds": True,
        "donated_state": True,
    }
    return Case("rejax", described, call, updates, samples)


def _versions() -> dict[str, str | None]:
    out = {}
    for name in PEER_VERSIONS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(cases: dict[str, Case], s: Settings) -> dict[str, dict[str, Any]]:
    """Compiles each case's programs, then times ``s.rounds`` interleaved rounds."""
    results: dict[str, dict[str, Any]] = {}
    for name, case in cases.items():
        first_call, _ = _timed(case.call)
        first_updates, _ = _timed(case.updates)
        case.samples()  # compiles
        results[name] = {
            "compile_and_first_call_seconds": first_call,
            "compile_and_first_updates_seconds": first_updates,
            "call_seconds": [],
            "updates_seconds": [],
            "samples_seconds": [],
            "counts": [],
        }
    names = list(cases)
    for r in range(s.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            seconds, counts = _timed(cases[name].call)
            results[name]["call_seconds"].append(seconds)
            results[name]["counts"].append(counts)
        for name in order:
            seconds, _ = _timed(cases[name].updates)
            results[name]["updates_seconds"].append(seconds)
        for name in order:
            seconds, _ = _timed(cases[name].samples)
            results[name]["samples_seconds"].append(seconds)
    return results


def summarize(name: str, case: Case, raw: dict[str, Any], s: Settings) -> dict[str, Any]:
    counts = raw.pop("counts")
    if any(c != counts[0] for c in counts):
        raise RuntimeError(f"{name}: the timed calls made different numbers of steps: {counts}")
    steps, updates = counts[0]
    if len(set(steps)) != 1 or len(set(updates)) != 1:
        raise RuntimeError(f"{name}: seeds made different numbers of steps: {counts[0]}")
    agent_steps, n_updates = steps[0], updates[0]
    call = statistics.median(raw["call_seconds"])
    upd = statistics.median(raw["updates_seconds"])
    draws = statistics.median(raw["samples_seconds"])
    return {
        "library": case.library,
        "iterations_per_call": s.iterations,
        "agent_steps_per_seed_per_call": agent_steps,
        "updates_per_seed_per_call": n_updates,
        "seeds": len(steps),
        **raw,
        "call_seconds_median": call,
        "agent_steps_per_s": agent_steps / call,
        "all_seeds_agent_steps_per_s": agent_steps * len(steps) / call,
        "updates_seconds_median": upd,
        "seconds_per_update_all_seeds": upd / s.updates_per_call,
        "updates_fraction_of_call": upd / call,
        "samples_seconds_median": draws,
        "samples_fraction_of_updates": draws / upd,
        "config": case.config,
    }


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--iterations", type=int, default=500, help="loop iterations per timed call")
    p.add_argument("--rounds", type=int, default=3, help="timed calls per case, interleaved")
    p.add_argument("--seeds", type=int, default=3, help="seeds per case (vmapped)")
    p.add_argument("--envs-per-seed", type=int, default=4, help="a multiple of 4")
    p.add_argument(
        "--cases",
        nargs="+",
        choices=CASES + DIAGNOSTIC_CASES,
        default=list(CASES),
        help="rejax-dqn-matmul-conv: opt-in diagnostic, rejax with dsqn's convolution gradients",
    )
    args = p.parse_args(argv)
    learner = preset("minatar-dqn").learner
    iterations, rounds = args.iterations, args.rounds
    capacity = learner.replay_capacity_transitions
    seeds, time_steps = args.seeds, preset("minatar-dsqn").network.time_steps
    if args.quick:
        iterations, rounds = 200, 2
    if args.smoke:
        iterations, rounds, capacity, seeds, time_steps = 4, 1, 1000, 2, 2
    if args.envs_per_seed % learner.update_period_agent_steps:
        p.error(f"--envs-per-seed must be a multiple of {learner.update_period_agent_steps}")
    s = Settings(seeds, args.envs_per_seed, iterations, rounds, capacity, time_steps, learner)
    if set(REJAX_CASES) & set(args.cases):
        import_peer()  # before anything compiles
    load_start = os.getloadavg()
    cases = {
        name: rejax_case(s, name in DIAGNOSTIC_CASES) if name in REJAX_CASES else dsqn_case(name, s)
        for name in args.cases
    }
    raw = measure(cases, s)
    runs = {name: summarize(name, cases[name], raw[name], s) for name in args.cases}
    counts = {
        (r["agent_steps_per_seed_per_call"], r["updates_per_seed_per_call"], r["seeds"])
        for r in runs.values()
    }
    ratios = {}
    if "rejax-dqn" in runs:
        peer = runs["rejax-dqn"]["agent_steps_per_s"]
        ratios = {
            f"{name}_over_rejax-dqn": r["agent_steps_per_s"] / peer
            for name, r in runs.items()
            if name != "rejax-dqn"
        }
    result = {
        "benchmark": "peer",
        "machine": common.machine_info(),
        "load_average_1_5_15min": {"start": list(load_start), "end": list(os.getloadavg())},
        "packages": _versions(),
        "game": "MinAtar Breakout",
        "matched": {
            "seeds": s.seeds,
            "envs_per_seed": s.envs_per_seed,
            "agent_steps_per_update": learner.update_period_agent_steps,
            "batch_size": learner.batch_size,
            "replay_capacity_transitions_per_seed": s.replay_capacity,
            "target_update_period_agent_steps": learner.target_update_period_agent_steps,
            "learning_rate": learner.learning_rate,
            "discount": learner.discount,
            "epsilon": f"linear {learner.epsilon_start} -> {learner.epsilon_end} over "
            f"{learner.epsilon_decay_agent_steps} agent steps",
            "network_layers": NETWORK,
            "prefill_agent_steps_per_seed": s.prefill_iterations * s.envs_per_seed,
            "iterations_per_call": s.iterations,
            "agent_steps_per_seed_per_call": s.agent_steps_per_call,
            "updates_per_seed_per_call": s.updates_per_call,
            "rounds": s.rounds,
        },
        "statistic": "median over rounds of one timed call's wall seconds (compile and the "
        "first call excluded); agent_steps_per_s counts one seed's agent steps",
        "counts_equal": len(counts) == 1,
        "runs": runs,
        "ratios_agent_steps_per_s": ratios,
        "differences": list(DIFFERENCES),
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    try:
        main()
    except MissingPeer as error:
        sys.exit(f"benchmarks.peer: {error}")
