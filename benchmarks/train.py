"""End-to-end agent steps per second of the training loop (``Experiment.chunk_fn``).

Atari Pong with the paper's learner (DQN and DSQN T = 64): one seed, 8 envs, one update every 4
agent steps (2 updates per loop iteration), warm-up 0 so that every iteration acts greedily and
learns, replay of 4,096 transitions. Also the ``cartpole-dqn`` and ``cartpole-dsqn`` presets
(3 seeds x 4 envs) and the ``minatar-dqn`` and ``minatar-dsqn`` presets on MinAtar Breakout
(3 seeds x 1 env, one update every 4 agent steps; DSQN T = 8), with warm-up 0. For each: a
chunk that fills the replay until a minibatch can be sampled (so that the timed chunk learns at
every due step; a timed chunk without updates is an error), one chunk call to compile and warm
up, then one timed chunk of the same length;
agent steps per second count one seed's agent steps (``iterations x envs_per_seed``), summed over
seeds in ``all_seeds_agent_steps_per_s``.

Usage: python -m benchmarks.train [--pong-iterations 4] [--cartpole-iterations 500]
       [--minatar-iterations 4000]
       [--cases pong-dqn pong-dsqn cartpole-dqn cartpole-dsqn minatar-dqn minatar-dsqn]
       [--quick] [--smoke]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from benchmarks import common  # noqa: E402
from dsqn.config import Config, apply_overrides, preset  # noqa: E402
from dsqn.training.chunk import make_train  # noqa: E402

CASES = ("pong-dqn", "pong-dsqn", "cartpole-dqn", "cartpole-dsqn", "minatar-dqn", "minatar-dsqn")


def pong_config(kind: str, time_steps: int, batch: int) -> Config:
    """The paper's preset on Pong, 8 envs, learning from the first step, small replay."""
    return apply_overrides(
        preset(kind),
        {
            "env.envs_per_seed": 8,
            "network.time_steps": time_steps,
            "learner.batch_size": batch,
            "learner.warmup_agent_steps": 0,
            "learner.replay_capacity_transitions": 4096,
        },
    )


def cartpole_config(name: str, time_steps: int | None) -> Config:
    """A CartPole (or MinAtar) preset learning from the first step."""
    overrides = {"learner.warmup_agent_steps": 0}
    if time_steps is not None and preset(name).network.kind == "dsqn":
        overrides["network.time_steps"] = time_steps
    return apply_overrides(preset(name), overrides)


def prefill_iterations(config: Config) -> int:
    """Loop iterations that put a minibatch of transitions (plus the frame-stack history) into
    every seed's replay."""
    return -(-(config.learner.batch_size + 8) // config.env.envs_per_seed)


def prepared_chunk(config: Config, iterations: int):
    """``(exp, chunk, carry)``: the training chunk of ``iterations`` loop iterations (not yet
    compiled) and a carry whose replays already hold a minibatch (filled by a chunk of
    :func:`prefill_iterations`), so that the chunk learns at every due step."""
    exp = make_train(config)
    carry = exp.init_carry()
    carry, _ = exp.chunk_fn(prefill_iterations(config))(carry)
    return exp, exp.chunk_fn(iterations), carry


def steps_per_second(config: Config, iterations: int) -> dict:
    """Times one chunk of ``iterations`` loop iterations after a compiling warm-up chunk."""
    exp, chunk, carry = prepared_chunk(config, iterations)
    start = time.perf_counter()
    carry, metrics = chunk(carry)
    jax.block_until_ready(metrics)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    carry, metrics = chunk(carry)
    jax.block_until_ready(metrics)
    seconds = time.perf_counter() - start
    if float(metrics["updates"][0]) == 0:
        raise RuntimeError(f"the timed chunk of {config.name} made no update: nothing learned")
    agent_steps = iterations * exp.envs_per_seed
    return {
        "iterations": iterations,
        "agent_steps_per_seed": agent_steps,
        "updates_per_seed": float(metrics["updates"][0]),
        "seconds": seconds,
        "compile_and_first_chunk_seconds": warmup,
        "agent_steps_per_s": agent_steps / seconds,
        "all_seeds_agent_steps_per_s": agent_steps * exp.num_seeds / seconds,
    }


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--pong-iterations", type=int, default=4, help="loop iterations, Pong")
    p.add_argument("--cartpole-iterations", type=int, default=500, help="iterations, CartPole")
    p.add_argument("--minatar-iterations", type=int, default=4000, help="iterations, MinAtar")
    p.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help="which runs to time (each compiles its own training program)",
    )
    args = p.parse_args(argv)
    time_steps, batch = common.PAPER_TIME_STEPS, common.PAPER_BATCH
    pong, cartpole = args.pong_iterations, args.cartpole_iterations
    minatar = args.minatar_iterations
    cartpole_t = None
    if args.quick:
        pong, cartpole, minatar = 2, 200, 1000
    if args.smoke:
        time_steps, batch, pong, cartpole, cartpole_t, minatar = 2, 4, 1, 2, 2, 8
    result = {
        "benchmark": "train",
        "machine": common.machine_info(),
        "pong_time_steps": time_steps,
        "pong_batch": batch,
        "pong": {
            kind: steps_per_second(pong_config(kind, time_steps, batch), pong)
            for kind in ("dqn", "dsqn")
            if f"pong-{kind}" in args.cases
        },
        "cartpole": {
            name: steps_per_second(cartpole_config(name, cartpole_t), cartpole)
            for name in ("cartpole-dqn", "cartpole-dsqn")
            if name in args.cases
        },
        "minatar_breakout": {
            name: steps_per_second(cartpole_config(name, cartpole_t), minatar)
            for name in ("minatar-dqn", "minatar-dsqn")
            if name in args.cases
        },
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
