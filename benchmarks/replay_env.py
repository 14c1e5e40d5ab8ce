"""Replay memory and speed, and envpool stepping speed; prints one JSON object.

Measures:
- bytes per stored Atari transition at capacity 1,000,000 and 100,000 (8 envs), from
  `jax.eval_shape` of `replay.init` (nothing is allocated);
- `replay.add` (8 envs, one step) and `replay.sample` (batch 32) inside jit, at `--capacity`
  transitions: median over repeats of a `lax.scan` of `--inner` calls, divided by `--inner`;
- agent steps per second of a Pong pool (paper protocol, training options, random actions) at 8
  and 64 envs, through envpool's Python API and through the XLA step inside a jitted `lax.scan`.

Usage: python benchmarks/replay_env.py [--capacity 100000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from dsqn import envs  # noqa: E402
from dsqn.learning import replay

ATARI_OBS = np.zeros((4, 84, 84), np.uint8)


def bytes_per_transition(capacity: int, num_envs: int = 8) -> float:
    """Bytes of a replay state per transition of capacity, without allocating it."""
    shapes = jax.eval_shape(lambda: replay.init(capacity, num_envs, ATARI_OBS, num_actions=18))
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes)) / capacity


def filled_replay(capacity: int, num_envs: int) -> replay.ReplayState:
    """A replay whose every slot is written, with every stack continuing (longest rebuild chains).

    The frame contents do not affect the timing, so they stay zero.
    """
    rep = replay.init(capacity, num_envs, ATARI_OBS, num_actions=18)
    return rep._replace(
        flags=jnp.full(rep.flags.shape, replay.CONTINUES, jnp.uint8),
        head=jnp.asarray(0, jnp.int32),
        filled=jnp.asarray(rep.flags.shape[0], jnp.int32),
    )


def time_add(capacity: int, num_envs: int, inner: int, repeats: int) -> float:
    """Seconds per `add` of one step of `num_envs` envs, inside jit."""
    obs = jax.random.randint(jax.random.key(1), (inner, num_envs, 4, 84, 84), 0, 256)
    obs = obs.astype(jnp.uint8)
    zeros_f = jnp.zeros((num_envs,), jnp.float32)
    zeros_b = jnp.zeros((num_envs,), bool)
    zeros_i = jnp.zeros((num_envs,), jnp.int32)

    @functools.partial(jax.jit, donate_argnums=0)
    def adds(rep, obs):
        def body(rep, o):
            return replay.add(rep, o, zeros_i, zeros_f, zeros_b, zeros_b, zeros_b), None

        return jax.lax.scan(body, rep, obs)[0]

    state = {"rep": replay.init(capacity, num_envs, ATARI_OBS, num_actions=18)}

    def run():
        state["rep"] = adds(state["rep"], obs)
        jax.block_until_ready(state["rep"])

    return common.median_seconds(run, repeats) / inner


def time_sample(capacity: int, num_envs: int, inner: int, repeats: int) -> float:
    """Seconds per `sample` of a batch of 32, inside jit."""
    rep = filled_replay(capacity, num_envs)

    @jax.jit
    def samples(rep, key):
        return jax.lax.scan(lambda _, k: (None, replay.sample(rep, k, 32)), None, key)[1]

    keys = jax.random.split(jax.random.key(2), inner)
    return common.median_seconds(lambda: jax.block_until_ready(samples(rep, keys)), repeats) / inner


def python_steps_per_second(num_envs: int, seconds: float) -> float:
    """Agent steps per second (summed over envs) through envpool's Python API."""
    env = envs.make_atari("Pong", num_envs)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.action_space.n, (1000, num_envs)).astype(np.int32)
    for t in range(20):
        env.step(actions[t])
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(actions[steps % 1000])
        steps += 1
    return steps * num_envs / (time.perf_counter() - start)


def jit_steps_per_second(num_envs: int, seconds: float) -> float:
    """Agent steps per second (summed over envs) of the XLA step in a jitted lax.scan."""
    env = envs.make_atari("Pong", num_envs)
    envs.reset(env)
    xs = envs.xla_step(env)
    num_actions = env.action_space.n
    length = 200

    @jax.jit
    def chunk(handle, key):
        def body(handle, k):
            action = jax.random.randint(k, (num_envs,), 0, num_actions)
            handle, ts = xs.step(handle, action)
            return handle, ts.reward.sum()

        return jax.lax.scan(body, handle, jax.random.split(key, length))

    handle, _ = chunk(xs.handle, jax.random.key(0))
    jax.block_until_ready(handle)
    chunks, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        handle, rewards = chunk(handle, jax.random.key(chunks))
        jax.block_until_ready(rewards)
        chunks += 1
    return chunks * length * num_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=100_000, help="replay for add/sample")
    parser.add_argument("--seconds", type=float, default=3.0, help="per env-speed measurement")
    parser.add_argument("--inner", type=int, default=50, help="calls per timed lax.scan")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median)")
    args = parser.parse_args()

    result = {
        "device": jax.devices()[0].device_kind,
        "bytes_per_atari_transition": {
            "capacity_1000000": bytes_per_transition(1_000_000),
            "capacity_100000": bytes_per_transition(100_000),
        },
        "replay_capacity_timed": args.capacity,
        "add_8_envs_ms": 1e3 * time_add(args.capacity, 8, args.inner, args.repeats),
        "sample_32_ms": 1e3 * time_sample(args.capacity, 8, args.inner, args.repeats),
        "pong_agent_steps_per_s": {
            f"{kind}_{n}_envs": round(fn(n, args.seconds))
            for kind, fn in (
                ("python", python_steps_per_second),
                ("jit_scan", jit_steps_per_second),
            )
            for n in (8, 64)
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
