"""Shared parts of the benchmarks: machine description, timing, the paper's update setup, FLOPs.

Every benchmark prints one JSON object that includes :func:`machine_info`. Timings are medians
over repeats after a warm-up call (which also compiles); measurements that are compared with
each other are interleaved in one process (:func:`interleaved_medians`), because absolute times
on a shared machine drift far more than ratios measured side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from dsqn.config import Config, apply_overrides, preset
from dsqn.learning import agent, replay

ATARI_OBS_SHAPE = (4, 84, 84)
PAPER_BATCH = 32
PAPER_TIME_STEPS = 64
PONG_ACTIONS = 6


def machine_info() -> dict[str, Any]:
    """Versions, backend, device kind and CPU count, and the load while the benchmark starts."""
    info = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
    }
    if hasattr(os, "getloadavg"):
        # Other processes share the CPUs: the load says how much of the machine was ours.
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    return info


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every benchmark takes (``--quick``, ``--smoke``)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, shorter runs")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny shapes and one repeat: checks that the benchmark runs, times nothing useful",
    )
    return p


def emit(result: dict[str, Any]) -> None:
    """Prints ``result`` as one JSON object on stdout."""
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` (which must block until its result is ready) after a warm-up."""
    return interleaved_medians({"fn": fn}, repeats)["fn"]


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each ``fn()``, calling them in turn so that load drifts hit all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def atari_config(kind: str, time_steps: int = PAPER_TIME_STEPS, batch: int = PAPER_BATCH) -> Config:
    """The paper's preset (``"dsqn"`` or ``"dqn"``) with the given T and minibatch size."""
    config = preset(kind)
    return apply_overrides(config, {"network.time_steps": time_steps, "learner.batch_size": batch})


def random_replay(
    capacity: int, num_envs: int, num_actions: int, key: jax.Array
) -> replay.ReplayState:
    """A real replay with every slot written by ``replay.add``: random frames, no episode ends."""
    state = replay.init(
        capacity, num_envs, np.zeros(ATARI_OBS_SHAPE, np.uint8), num_actions=num_actions
    )
    no = jnp.zeros((num_envs,), bool)

    def add(state, k):
        frame_key, action_key, reward_key = jax.random.split(k, 3)
        obs = jax.random.randint(frame_key, (num_envs, *ATARI_OBS_SHAPE), 0, 256).astype(jnp.uint8)
        action = jax.random.randint(action_key, (num_envs,), 0, num_actions)
        reward = jax.random.normal(reward_key, (num_envs,))
        return replay.add(state, obs, action, reward, no, no, no), None

    keys = jax.random.split(key, capacity // num_envs + 1)
    return jax.jit(lambda s, k: jax.lax.scan(add, s, k)[0])(state, keys)


def update_setup(config: Config, num_actions: int = PONG_ACTIONS, capacity: int = 1024):
    """``(step, state, replay)`` for one real ``agent.update`` with ``config``'s network.

    ``step(state, replay) -> (state, metrics)`` is the jitted update (no donation, so that the
    same state can be timed again).
    """
    network = agent.make_network(config.network, num_actions, ATARI_OBS_SHAPE)
    optimizer = agent.make_optimizer(config.learner)
    obs = jnp.zeros((1, *ATARI_OBS_SHAPE), jnp.uint8)
    state = agent.init_train_state(jax.random.key(0), network, optimizer, obs)
    rep = random_replay(capacity, 8, num_actions, jax.random.key(1))

    def update(s, r):
        s, _, metrics = agent.update(
            s, r, network=network, optimizer=optimizer, config=config.learner
        )
        return s, metrics

    return jax.jit(update), state, rep


def conv_flops(size: int, kernel: int, stride: int, c_in: int, c_out: int) -> tuple[int, int]:
    """``(FLOPs per sample, output size)`` of a square VALID convolution (multiply-add = 2)."""
    out = (size - kernel) // stride + 1
    return 2 * out * out * kernel * kernel * c_in * c_out, out


def forward_flops(kind: str, time_steps: int, batch: int, num_actions: int = PONG_ACTIONS) -> int:
    """FLOPs of the convolutions and dense layers of one forward pass of ``batch`` observations.

    DQN: every layer once. DSQN: conv1 once (direct encoding), conv2, conv3 and fc1 at each of
    the T steps, fc2 once (on the spike rate). Neuron dynamics and elementwise work not counted.
    """
    c1, s = conv_flops(84, 8, 4, 4, 32)
    c2, s = conv_flops(s, 4, 2, 32, 64)
    c3, s = conv_flops(s, 3, 1, 64, 64)
    fc1 = 2 * s * s * 64 * 512
    fc2 = 2 * 512 * num_actions
    repeated = (c2 + c3 + fc1) * (time_steps if kind == "dsqn" else 1)
    return batch * (c1 + repeated + fc2)


UPDATE_FORWARDS = {"dqn": 4, "double": 5, "cdqn": 7}
"""Forward passes of batch B an update costs, by loss: target forward + online forward +
backward (~2 forwards) = 4; Double DQN adds an online forward on s' (no gradient) = 5; C-DQN
runs the online forward and backward on s and s' together = 1 + 2 x 3 = 7."""


def update_flops(kind: str, time_steps: int, batch: int, loss: str = "dqn") -> int:
    """FLOPs of one update of network ``kind`` with TD loss ``loss`` (:data:`UPDATE_FORWARDS`
    forward passes)."""
    return UPDATE_FORWARDS[loss] * forward_flops(kind, time_steps, batch)
