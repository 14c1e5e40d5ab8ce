"""Time to write (and read back) a training checkpoint with its replay; prints one JSON object.

A checkpoint as a run writes it (``dsqn.rundir.checkpoints.Checkpointer.save``): one seed's DSQN
train state at the paper's shapes (online, target and best parameters, Adam moments) and a full
replay of ``--transitions`` Atari transitions with random frames (incompressible), saved to
``--dir`` (default: a temporary directory on the local disk), median over repeats. The time is
then scaled linearly in bytes to the paper's replay (1,000,000 transitions per seed, 7.06 GB)
for 1, 3 and 5 seeds: the lead time a preemption signal needs for the save (see
experiments/slurm_array.sh).

Usage: python -m benchmarks.checkpoint [--transitions 100000] [--dir DIR] [--quick] [--smoke]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from dsqn.learning import agent, replay  # noqa: E402
from dsqn.rundir.checkpoints import Checkpointer  # noqa: E402

PAPER_TRANSITIONS = 1_000_000
ENVS = 1  # the paper: one env per seed


def tree_bytes(tree) -> int:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def checkpoint_parts(transitions: int, time_steps: int):
    """``(state, replay)`` of one seed: a DSQN train state and a full replay."""
    config = common.atari_config("dsqn", time_steps)
    network = agent.make_network(config.network, common.PONG_ACTIONS, common.ATARI_OBS_SHAPE)
    optimizer = agent.make_optimizer(config.learner)
    obs = jnp.zeros((1, *common.ATARI_OBS_SHAPE), jnp.uint8)
    state = agent.init_train_state(jax.random.key(0), network, optimizer, obs)
    empty = replay.init(
        transitions, ENVS, np.zeros(common.ATARI_OBS_SHAPE, np.uint8), num_actions=18
    )
    frames = jax.random.randint(jax.random.key(1), empty.obs.shape, 0, 256).astype(jnp.uint8)
    rep = empty._replace(obs=frames, filled=jnp.asarray(transitions // ENVS, jnp.int32))
    return jax.block_until_ready((state, rep))


def time_saves(directory: Path, state, rep, repeats: int) -> dict:
    """Median seconds of ``Checkpointer.save`` (state + replay) and of its restore."""
    saves, restores = [], []
    with Checkpointer(directory, max_to_keep=1) as ckpt:
        for step in range(repeats):
            start = time.perf_counter()
            ckpt.save(step, {"train": state}, replay=rep, metadata={"step": step})
            saves.append(time.perf_counter() - start)
            start = time.perf_counter()
            jax.block_until_ready(
                ckpt.restore(step, state_template={"train": state}, replay_template=rep)
            )
            restores.append(time.perf_counter() - start)
    return {
        "save_seconds": statistics.median(saves),
        "restore_seconds": statistics.median(restores),
    }


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--transitions", type=int, default=100_000, help="replay size measured")
    p.add_argument("--dir", type=Path, help="where to write (default: a temporary directory)")
    args = p.parse_args(argv)
    transitions, repeats, time_steps = args.transitions, 3, common.PAPER_TIME_STEPS
    if args.quick:
        transitions, repeats = min(transitions, 20_000), 2
    if args.smoke:
        transitions, repeats, time_steps = 1_000, 1, 2
    state, rep = checkpoint_parts(transitions, time_steps)
    root = Path(tempfile.mkdtemp(prefix="dsqn-checkpoint-", dir=args.dir))
    try:
        times = time_saves(root / "checkpoints", state, rep, repeats)
    finally:
        shutil.rmtree(root)
    measured = tree_bytes(state) + tree_bytes(rep)
    per_transition = tree_bytes(rep) / transitions
    paper_seed_bytes = tree_bytes(state) + per_transition * PAPER_TRANSITIONS
    seconds_per_byte = times["save_seconds"] / measured
    result = {
        "benchmark": "checkpoint",
        "machine": common.machine_info(),
        "transitions": transitions,
        "time_steps": time_steps,
        "repeats": repeats,
        "bytes": measured,
        **times,
        "save_gb_per_s": measured / times["save_seconds"] / 1e9,
        "paper_replay": {
            "bytes_per_seed": paper_seed_bytes,
            "save_seconds_scaled": {
                f"{s}_seeds": s * paper_seed_bytes * seconds_per_byte for s in (1, 3, 5)
            },
        },
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
