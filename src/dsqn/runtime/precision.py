"""The precision of float32 matrix products and convolutions in the jitted programs.

``run.matmul_precision`` names it: ``"default"`` (JAX's default), ``"high"`` or ``"highest"``,
the levels of :class:`jax.lax.Precision`. JAX's documentation ("Matmul precision") states that by
default float32 dot products may use reduced-precision arithmetic internally: TensorFloat-32 on
recent NVIDIA GPUs (Ampere and later: A100, H100, H200), bfloat16 passes on TPU; ``"highest"``
asks for float32 arithmetic. On CPU (XLA:CPU) every level computes in float32 (the same bits,
checked by tests/test_precision.py).
"""

from __future__ import annotations

import contextlib

import jax

__all__ = ["MATMUL_PRECISIONS", "matmul_precision"]

MATMUL_PRECISIONS: tuple[str, ...] = ("default", "high", "highest")


def matmul_precision(name: str) -> contextlib.AbstractContextManager:
    """A context in which the float32 matmuls and convolutions that JAX traces take precision
    ``name``; used inside a jitted function's body, it sets that program's precision whatever
    the caller's context."""
    if name not in MATMUL_PRECISIONS:
        raise ValueError(
            f"unknown matmul precision {name!r}; valid: {', '.join(MATMUL_PRECISIONS)}"
        )
    return jax.default_matmul_precision(name)
