"""Counting what a program runs, from its jaxpr: loops of neuron dynamics and fused kernels."""

import jax.extend.core


def loops_and_kernels(jaxpr) -> tuple[int, int]:
    """``(scan and while loops, fused Pallas kernels)`` in ``jaxpr``, recursively. A kernel's
    own loop over time is not counted, and each kernel is counted once although it is traced
    once per platform (the interpreted CPU one)."""
    loops = kernels = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "pallas_call":
            kernels += bool(eqn.params["interpret"])
            continue
        loops += eqn.primitive.name in ("scan", "while")
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            more_loops, more_kernels = loops_and_kernels(sub)
            loops, kernels = loops + more_loops, kernels + more_kernels
    return loops, kernels
