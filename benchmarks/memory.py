"""Memory of one update at the paper's shapes and of the replay; prints one JSON object.

- XLA's compiled memory analysis of the jitted ``dsqn.learning.agent.update`` (DSQN T = 64 and DQN,
  batch 32): argument, output and temporary (peak scratch) bytes;
- the process's peak resident set size after running those updates (``resource.getrusage``);
- replay bytes per stored Atari transition at capacity 1,000,000 and 100,000 (8 envs), from
  ``jax.eval_shape`` of ``dsqn.learning.replay.init`` (nothing is allocated).

Usage: python -m benchmarks.memory [--quick] [--smoke]
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from dsqn.learning import replay  # noqa: E402


def replay_bytes_per_transition(capacity: int, num_envs: int = 8) -> float:
    """Bytes of a replay state per transition of capacity, without allocating it."""
    example = np.zeros(common.ATARI_OBS_SHAPE, np.uint8)
    shapes = jax.eval_shape(lambda: replay.init(capacity, num_envs, example, num_actions=18))
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes)) / capacity


def update_memory(kind: str, time_steps: int, batch: int) -> dict:
    """XLA's memory analysis of one compiled update (bytes); the update is also run once."""
    step, state, rep = common.update_setup(common.atari_config(kind, time_steps, batch))
    analysis = step.lower(state, rep).compile().memory_analysis()
    jax.block_until_ready(step(state, rep))
    return {
        "argument_bytes": analysis.argument_size_in_bytes,
        "output_bytes": analysis.output_size_in_bytes,
        "temp_bytes": analysis.temp_size_in_bytes,
        "generated_code_bytes": analysis.generated_code_size_in_bytes,
    }


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    args = p.parse_args(argv)
    time_steps, batch = common.PAPER_TIME_STEPS, common.PAPER_BATCH
    if args.smoke:
        time_steps, batch = 2, 4
    result = {
        "benchmark": "memory",
        "machine": common.machine_info(),
        "time_steps": time_steps,
        "batch": batch,
        "update": {kind: update_memory(kind, time_steps, batch) for kind in ("dsqn", "dqn")},
        # ru_maxrss is in KiB on Linux.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "replay_bytes_per_atari_transition": {
            f"capacity_{c}": replay_bytes_per_transition(c) for c in (1_000_000, 100_000)
        },
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
