"""Seconds and GFLOP/s of one SGD update at the paper's shapes, DSQN and DQN; prints one JSON.

One real ``dsqn.learning.agent.update`` (jitted): minibatch 32 sampled from a replay of random
frames (uint8 84x84x4, 6 actions), target-network forward on s', online forward and backward on s,
Huber loss, Adam. DSQN runs T = 64 steps. Median over repeats after a compiling warm-up, the two
networks interleaved. ``in_scan_seconds`` is the same update run as the training loop runs it,
inside a ``lax.scan`` body (two updates per call, per-update time reported): XLA:CPU can run
operations much slower inside loop bodies than at the top level, so both are measured.

``--presets`` times other presets' updates (e.g. ``double-dsqn``: its loss and optimiser).

FLOPs (convolutions and dense layers only, multiply-add = 2): an update is
``4 x forward(32)`` (target forward + online forward + backward ~ 2 forwards; Double DQN adds
the online forward on s', 5 x; C-DQN differentiates through it, 7 x), where a DSQN
forward runs conv1 and fc2 once and conv2, conv3, fc1 at each of the T steps: about
``4 x 32 x (6.55 + 64 x 12.13) MFLOP = 100.2 GFLOP``; DQN: ``2.4 GFLOP``.

Usage: python -m benchmarks.update [--repeats 5] [--quick] [--smoke] [--presets dsqn dqn]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from benchmarks import common  # noqa: E402


def measure(
    time_steps: int, batch: int, repeats: int, presets: tuple[str, ...] = ("dsqn", "dqn")
) -> dict:
    """Median seconds and GFLOP/s of one update, for each preset (interleaved)."""
    timed, configs = {}, {}
    for kind in presets:
        configs[kind] = common.atari_config(kind, time_steps, batch)
        step, state, rep = common.update_setup(configs[kind])
        timed[kind] = lambda step=step, state=state, rep=rep: jax.block_until_ready(
            step(state, rep)
        )
        twice = jax.jit(
            lambda s, r, step=step: jax.lax.scan(
                lambda s, _: (step(s, r)[0], None), s, None, length=2
            )[0]
        )
        timed[f"{kind}_in_scan"] = lambda twice=twice, state=state, rep=rep: jax.block_until_ready(
            twice(state, rep)
        )
    seconds = common.interleaved_medians(timed, repeats)
    result = {}
    for kind in presets:
        s = seconds[kind]
        network, loss = configs[kind].network.kind, configs[kind].learner.loss
        flops = common.update_flops(network, time_steps, batch, loss)
        result[kind] = {
            "seconds": s,
            "gflop": flops / 1e9,
            "gflop_per_s": flops / 1e9 / s,
            "in_scan_seconds": seconds[f"{kind}_in_scan"] / 2,
        }
    return result


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    p.add_argument(
        "--presets",
        nargs="+",
        default=["dsqn", "dqn"],
        help="Atari presets whose update is timed (their network, loss and optimiser at T and "
        "batch 32); default: dsqn dqn",
    )
    args = p.parse_args(argv)
    time_steps, batch = common.PAPER_TIME_STEPS, common.PAPER_BATCH
    repeats = 3 if args.quick else args.repeats
    if args.smoke:
        time_steps, batch, repeats = 2, 4, 1
    result = {
        "benchmark": "update",
        "machine": common.machine_info(),
        "time_steps": time_steps,
        "batch": batch,
        "repeats": repeats,
        "flops_formula": "4 x forward(batch) (dqn loss; 5 x for double, 7 x for cdqn); DSQN "
        "forward = B x (conv1 + T x (conv2+conv3+fc1) + fc2), 2 FLOPs per multiply-add",
        **measure(time_steps, batch, repeats, tuple(args.presets)),
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
