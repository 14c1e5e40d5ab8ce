"""Memory a training run needs, compared with what the machine has before it is allocated.

A run holds, per seed, its replay (the paper's 1,000,000 Atari transitions: 7.1 GB) and its
training state (online, target and best parameters, Adam moments), plus the scratch memory of
the compiled training chunk (XLA's memory analysis). They live in device memory: host RAM on
CPU, accelerator memory otherwise, where each device holds its share of the seeds. On an
accelerator the checkpoints also copy every local seed's state and replay to host RAM.

Two checks, both before the memory is used:

1. before anything is allocated, the replay and the training state (sizes from
   ``jax.eval_shape``, nothing allocated) against the memory available then;
2. once the chunk is compiled, before it first runs, the same plus its scratch (temp) bytes.

A run that cannot fit is refused with the figures and what to lower; one that fits with less
than ``1 - TIGHT`` of the memory to spare gets a warning.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import jax

from dsqn.config import ConfigError

__all__ = [
    "TIGHT",
    "InsufficientMemory",
    "Budget",
    "host_available_bytes",
    "device_available_bytes",
    "budget",
    "check",
]

# Above this fraction of the available memory a run is "tight": other allocations (XLA's
# buffers, envpool, the evaluation program, fragmentation) may not fit.
TIGHT = 0.8
GB = 1e9


class InsufficientMemory(ConfigError):
    """The run cannot fit in the memory available; the message says what to lower."""


def host_available_bytes() -> int:
    """Host RAM that can be allocated without swapping (Linux ``MemAvailable``)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def device_available_bytes(device: jax.Device) -> int | None:
    """Free memory of an accelerator (its limit less what is in use), None if unknown."""
    stats = device.memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


@dataclasses.dataclass(frozen=True)
class Budget:
    """What one device (or the host, on CPU) must hold, and what it has.

    Attributes:
      where: the memory compared, e.g. ``"host RAM"`` or ``"memory of cuda:0"``.
      available: bytes available there before the run allocates anything.
      seeds: seeds held there.
      replay_per_seed: bytes of one seed's replay.
      state_per_seed: bytes of one seed's training state.
      capacity: replay capacity per seed, in transitions.
      devices: devices the seeds are spread over.
    """

    where: str
    available: int
    seeds: int
    replay_per_seed: int
    state_per_seed: int
    capacity: int
    devices: int

    @property
    def data(self) -> int:
        """Bytes of the replays and training states held here."""
        return self.seeds * (self.replay_per_seed + self.state_per_seed)


def _tree_bytes(tree) -> int:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def budget(exp) -> list[Budget]:
    """The budgets of a run's experiment (``dsqn.training.chunk.Experiment``), nothing allocated:
    the device holding the most seeds (host RAM on CPU) and, on an accelerator, host RAM for the
    checkpoints' copies."""
    num_seeds = exp.num_seeds
    replay_bytes = _tree_bytes(jax.eval_shape(exp.init_replay)) // num_seeds
    state_bytes = _tree_bytes(jax.eval_shape(exp.init_train_states)) // num_seeds
    capacity = exp.config.learner.replay_capacity_transitions
    devices = 1 if exp.mesh is None else exp.mesh.devices.size
    local = list(exp.local_seeds)
    sizes = dict(replay_per_seed=replay_bytes, state_per_seed=state_bytes, capacity=capacity)
    device = jax.local_devices()[0]
    host = Budget("host RAM", host_available_bytes(), len(local), devices=devices, **sizes)
    if device.platform == "cpu":  # every (forced) CPU device shares the host's RAM
        return [host]
    free = device_available_bytes(device)
    budgets = [host] if exp.config.run.save_replay else []
    if free is not None:
        per_device = len(local) if exp.mesh is None else num_seeds // devices
        where = f"memory of {device}"
        budgets.insert(0, Budget(where, free, per_device, devices=devices, **sizes))
    return budgets


def _what_to_lower(b: Budget) -> str:
    per_transition = b.replay_per_seed / b.capacity
    return (
        f"lower --learner.replay_capacity_transitions (now {b.capacity:,}, "
        f"{per_transition:,.0f} bytes per transition), hold fewer seeds per device (--seeds: "
        f"{b.seeds} here), or use more devices (now {b.devices}; with --run.shard_seeds true "
        "the seeds are split over all of them)"
    )


def check(budgets: list[Budget], scratch: int = 0, *, refuse: bool = True) -> None:
    """Raises :class:`InsufficientMemory` (a warning when not ``refuse``) if a budget's data
    plus ``scratch`` bytes (the compiled chunk's temporary memory, on the device) exceed what
    is available, and warns when they take more than ``TIGHT`` of it."""
    for i, b in enumerate(budgets):
        extra = scratch if i == 0 else 0
        need = b.data + extra
        figures = (
            f"about {need / GB:.2f} GB of {b.where}: replay {b.seeds} x "
            f"{b.replay_per_seed / GB:.2f} GB, training state {b.seeds} x "
            f"{b.state_per_seed / GB:.3f} GB"
            + (f", compiled chunk scratch {extra / GB:.2f} GB" if extra else "")
            + f"; {b.available / GB:.2f} GB is available"
        )
        if need > b.available:
            lower = _what_to_lower(b)
            message = f"this run does not fit in memory: it needs {figures}. L{lower[1:]}"
            if refuse:
                raise InsufficientMemory(message + ". (--run.check_memory false runs it anyway.)")
            warnings.warn(message, stacklevel=2)
        elif need > TIGHT * b.available:
            warnings.warn(
                f"this run leaves little memory to spare: it needs {figures}. If it is killed "
                f"or fails to allocate, {_what_to_lower(b)}.",
                stacklevel=2,
            )
