"""DSQN update and acting times against a PyTorch + spikingjelly reference, in one process.

Times, interleaved in one run: one update at the paper's shapes (batch 32, T = 64, target
forward + online forward/backward + Adam) and one greedy forward at batch 1 and 8, for this
package (``benchmarks.update``, ``benchmarks.act``) and for the reference of
``benchmarks/torch_reference.py``; also each framework's 2048x2048 float32 matmul rate. Reports
medians and the ratios ours / reference (below 1: ours is faster).

Needs the optional extra ``pip install -e ".[torch]"``; without it the JSON says so and nothing
is timed.

Usage: python -m benchmarks.compare [--repeats 5] [--quick] [--smoke]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from benchmarks import act, common, matmul  # noqa: E402


def torch_versions() -> dict:
    """Versions of torch and spikingjelly; raises ImportError when either is missing."""
    import spikingjelly
    import torch

    version = getattr(spikingjelly, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("spikingjelly")
    return {"torch": torch.__version__, "spikingjelly": version, "threads": torch.get_num_threads()}


def measure(time_steps: int, batch: int, repeats: int, act_repeats: int) -> dict:
    """Interleaved medians of ours and the reference, and the ratios ours / reference."""
    import torch

    from benchmarks import torch_reference

    step, state, rep = common.update_setup(common.atari_config("dsqn", time_steps, batch))
    reference = torch_reference.TorchUpdate(time_steps=time_steps, batch=batch)
    size = 256 if time_steps < common.PAPER_TIME_STEPS else 2048
    a = torch.randn(size, size)
    updates = common.interleaved_medians(
        {
            "ours": lambda: jax.block_until_ready(step(state, rep)),
            "reference": reference,
            "ours_matmul": matmul.matmul_fn(size),
            "reference_matmul": lambda: torch.mm(a, a),
        },
        repeats,
    )
    greedy, params = act.greedy_fn("dsqn", time_steps)
    acting = {}
    for b in act.BATCHES:
        obs = act.observations(b)
        acting[f"ours_batch{b}"] = lambda obs=obs: jax.block_until_ready(greedy(params, obs))
        acting[f"reference_batch{b}"] = torch_reference.TorchGreedy(b, time_steps=time_steps)
    acting = common.interleaved_medians(acting, act_repeats)
    flops = common.update_flops("dsqn", time_steps, batch)
    return {
        "update_seconds": {k: updates[k] for k in ("ours", "reference")},
        "update_gflop_per_s": {k: flops / 1e9 / updates[k] for k in ("ours", "reference")},
        "matmul_gflop_per_s": {
            k: matmul.gflop_per_s(size, updates[f"{k}_matmul"]) for k in ("ours", "reference")
        },
        "act_seconds": acting,
        "ratios_ours_over_reference": {
            "update": updates["ours"] / updates["reference"],
            **{
                f"act_batch{b}": acting[f"ours_batch{b}"] / acting[f"reference_batch{b}"]
                for b in act.BATCHES
            },
        },
        "update_fraction_of_matmul_rate": flops
        / 1e9
        / updates["ours"]
        / matmul.gflop_per_s(size, updates["ours_matmul"]),
    }


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--repeats", type=int, default=5, help="timed update repeats (median)")
    args = p.parse_args(argv)
    time_steps, batch = common.PAPER_TIME_STEPS, common.PAPER_BATCH
    repeats = 3 if args.quick else args.repeats
    act_repeats = 3 * repeats
    if args.smoke:
        time_steps, batch, repeats, act_repeats = 2, 4, 1, 1
    result = {
        "benchmark": "compare",
        "machine": common.machine_info(),
        "time_steps": time_steps,
        "batch": batch,
        "repeats": repeats,
        "cpu_threads": os.cpu_count(),
    }
    try:
        result["reference_versions"] = torch_versions()
    except ImportError as error:
        result["skipped"] = f'torch/spikingjelly unavailable ({error}); pip install -e ".[torch]"'
        common.emit(result)
        return result
    result.update(measure(time_steps, batch, repeats, act_repeats))
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
