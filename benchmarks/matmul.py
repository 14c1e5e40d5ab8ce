"""The machine's dense float32 matmul throughput (GFLOP/s) under XLA: the ceiling for updates.

Times ``a @ b`` for square float32 matrices (2048 x 2048 by default), jitted, median over repeats
after a warm-up; ``2 n^3`` FLOPs per product.

Usage: python -m benchmarks.matmul [--size 2048] [--repeats 10] [--quick] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks import common  # noqa: E402


def matmul_fn(size: int):
    """A no-argument callable running one jitted ``size x size`` float32 product to completion."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    product = jax.jit(jnp.matmul)
    return lambda: jax.block_until_ready(product(a, b))


def gflop_per_s(size: int, seconds: float) -> float:
    """Throughput of one ``size``-square product taking ``seconds``."""
    return 2 * size**3 / 1e9 / seconds


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--size", type=int, default=2048, help="matrix side")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats (median)")
    args = p.parse_args(argv)
    size = 256 if args.smoke else args.size
    repeats = 1 if args.smoke else (5 if args.quick else args.repeats)
    seconds = common.median_seconds(matmul_fn(size), repeats)
    result = {
        "benchmark": "matmul",
        "machine": common.machine_info(),
        "size": size,
        "repeats": repeats,
        "seconds": seconds,
        "gflop_per_s": gflop_per_s(size, seconds),
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
