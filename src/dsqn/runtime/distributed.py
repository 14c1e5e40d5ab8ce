"""Several processes (hosts) running one training program: JAX's multi-controller model.

``dsqn train --distributed`` calls :func:`initialize` before anything else touches JAX. It is
``jax.distributed.initialize()``: the coordinator address, the number of processes and this
process's id come from the environment, as JAX reads them: SLURM (``srun``), Open MPI
(``mpirun``) and Kubernetes are detected automatically; elsewhere set
``JAX_COORDINATOR_ADDRESS=host:port`` plus ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (which
are passed on as ``num_processes`` / ``process_id``).

After it, ``jax.devices()`` lists the devices of every process; the seed axis is sharded over all
of them (:func:`dsqn.training.chunk.seed_mesh`), each process steps the env pools of the seeds on
its own devices, and one jitted program runs on every device. The helpers below are the few places
where the host side needs to know: which rows of a seed-sharded array this process holds, how to
bring a whole array to every host, and which process writes files.

With one process every helper reduces to the plain single-process operation.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

__all__ = [
    "initialize",
    "is_primary",
    "process_rows",
    "fetch",
    "gather_rows",
    "any_process",
    "barrier",
]


def initialize() -> None:
    """``jax.distributed.initialize()`` from the environment (see the module docstring).

    CPU devices exchange data through gloo, so that the same launch works on CPU-only hosts.
    """
    kwargs: dict[str, Any] = {}
    for name, key in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        value = os.environ.get(name)
        if value is not None:
            try:
                kwargs[key] = int(value)
            except ValueError:
                raise ValueError(f"{name} must be an integer, got {value!r}") from None
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(**kwargs)
    except ValueError as e:
        raise ValueError(
            f"jax.distributed.initialize() failed: {str(e).rstrip('.')}. Outside SLURM, Open "
            "MPI and Kubernetes set JAX_COORDINATOR_ADDRESS (host:port of process 0), "
            "JAX_NUM_PROCESSES and JAX_PROCESS_ID for every process"
        ) from e


def is_primary() -> bool:
    """Whether this is process 0, the one that writes logs, config and results."""
    return jax.process_index() == 0


def process_rows(x: jax.Array) -> np.ndarray:
    """The rows of ``x`` (sharded over its leading axis) held by this process, in order, as
    numpy; all of ``x`` when this process holds all of it."""
    if x.is_fully_addressable:
        return np.asarray(x)
    shards = {}
    for shard in x.addressable_shards:
        start = shard.index[0].start or 0
        shards.setdefault(start, shard.data)
    return np.concatenate([np.asarray(shards[k]) for k in sorted(shards)])


def fetch(tree: Any) -> Any:
    """Every leaf as a whole numpy array on every process (a collective when the leaves span
    processes: every process must call it)."""
    if all(x.is_fully_addressable for x in jax.tree.leaves(tree)):
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def gather_rows(tree: Any) -> Any:
    """Concatenate each process's numpy rows (its seeds, in process order) into the whole
    array on every process; the identity with one process."""
    if jax.process_count() == 1:
        return tree
    return multihost_utils.process_allgather(tree, tiled=True)


def any_process(flag: bool) -> bool:
    """True on every process if ``flag`` is true on any (e.g. a stop signal one host got)."""
    if jax.process_count() == 1:
        return bool(flag)
    flags = multihost_utils.process_allgather(np.asarray([flag], np.int32), tiled=True)
    return bool(np.any(flags))


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (nothing with one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
