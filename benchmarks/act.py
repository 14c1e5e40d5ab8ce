"""Seconds of one greedy DSQN forward pass (T = 64) at batch 1 and 8; prints one JSON object.

Acting is ``argmax_a Q(s, a)`` of the online network on uint8 ``[B, 4, 84, 84]`` observations,
jitted; the DQN forward is timed alongside for scale. Median over repeats after a warm-up, all
variants interleaved.

Usage: python -m benchmarks.act [--repeats 20] [--quick] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from dsqn.learning import agent  # noqa: E402

BATCHES = (1, 8)


def greedy_fn(kind: str, time_steps: int):
    """``(act, params)``: the jitted greedy action of a freshly initialised network."""
    config = common.atari_config(kind, time_steps)
    network = agent.make_network(config.network, common.PONG_ACTIONS, common.ATARI_OBS_SHAPE)
    obs = jnp.zeros((1, *common.ATARI_OBS_SHAPE), jnp.uint8)
    params = network.init(jax.random.key(0), obs)["params"]
    act = jax.jit(lambda p, o: jnp.argmax(network.apply({"params": p}, o), axis=-1))
    return act, params


def observations(batch: int) -> jax.Array:
    """Random uint8 frames ``[batch, 4, 84, 84]``."""
    rng = np.random.default_rng(batch)
    return jnp.asarray(rng.integers(0, 256, (batch, *common.ATARI_OBS_SHAPE), dtype=np.uint8))


def measure(time_steps: int, repeats: int, batches: tuple[int, ...] = BATCHES) -> dict:
    """Median seconds per greedy forward, ``{"dsqn_batch1": s, ...}``."""
    timed = {}
    for kind in ("dsqn", "dqn"):
        act, params = greedy_fn(kind, time_steps)
        for b in batches:
            obs = observations(b)
            timed[f"{kind}_batch{b}"] = lambda act=act, params=params, obs=obs: (
                jax.block_until_ready(act(params, obs))
            )
    return common.interleaved_medians(timed, repeats)


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--repeats", type=int, default=20, help="timed repeats (median)")
    args = p.parse_args(argv)
    time_steps = 2 if args.smoke else common.PAPER_TIME_STEPS
    repeats = 1 if args.smoke else (7 if args.quick else args.repeats)
    result = {
        "benchmark": "act",
        "machine": common.machine_info(),
        "time_steps": time_steps,
        "repeats": repeats,
        "seconds": measure(time_steps, repeats),
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
