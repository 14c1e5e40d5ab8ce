"""The neuron engine's backends, scan and fused Pallas kernels, side by side; prints one JSON.

Three parts, each for ``backend = "scan"`` and ``"pallas"``:

- ``layers``: median seconds of the forward pass and of forward + backward (the gradient of
  ``sum(spikes * g)`` for a fixed random ``g``) of one LIF layer with the paper's options
  (tau 2, V_th 1, hard reset to 0, ATan surrogate) at the DSQN shapes ``[T, B, ...]`` with
  T = 64, B = 32: conv1 ``[64, 32, 20, 20, 32]`` (direct encoding, as the network runs it: one
  input ``[32, 20, 20, 32]`` fed at every step), conv2 ``[64, 32, 9, 9, 64]``, conv3
  ``[64, 32, 7, 7, 64]``, fc1 ``[64, 32, 512]``.
- ``network``: one real ``dsqn.learning.agent.update`` (as ``benchmarks.update``) and one greedy
  acting forward at batch 1 and 8 (as ``benchmarks.act``) of the paper's DSQN.
- ``launches``: the sequential launches of the programs, counted on their jaxprs (no device
  needed): every iteration of a ``scan`` or ``while`` loop is at least one kernel launch on a
  GPU, whatever its size, and each fused kernel (``pallas_call``) is one launch running all T
  steps. :func:`sequential_launches` walks a jaxpr: a scan of length n adds
  ``n x (1 + launches of its body)``, a while loop ``trips x (1 + body)``, a cond its costliest
  branch (the learning phase: the network acts and learns), a fused kernel 1, and any other
  nested program (jit, custom derivatives, remat) what it contains. Straight-line kernels
  outside loops are not counted: they do not grow with T, so the counts are lower bounds. Counted
  on the acting forward, the update and the real training chunk (``Experiment.chunk_fn``, one
  iteration, Pong with the paper's learner and its replay of 1M transitions, whose uniform
  sampling is a binary search of ``ceil(log2(capacity + 1))`` = 20 loop iterations) for
  ``env.envs_per_seed`` = 1, 4 and 16; the chunk's one while loop (the updates due in an
  iteration) runs ``envs_per_seed / update_period_agent_steps`` times per iteration on average.
  Per agent step: the chunk's count divided by ``envs_per_seed``; the time bound for the
  paper's 50M agent steps at 3 and 10 us per launch follows. The counts are those of the GPU
  program wherever they are taken: on CPU, convolutions over large batches run in blocks
  (``dsqn.models.convolution``, a loop a GPU program does not have), so blocking is switched off
  while the programs are traced (:func:`gpu_program`).

On CPU the Pallas kernels run in interpret mode: their times there say nothing about a GPU.

Usage: python -m benchmarks.neuron_backends [--repeats 10] [--quick] [--smoke]
       [--skip-timing] (launch counts only) [--envs-per-seed 1 4 16]
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.extend.core  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import act, common  # noqa: E402
from dsqn import spiking
from dsqn.config import Config, apply_overrides  # noqa: E402
from dsqn.learning import agent, replay  # noqa: E402
from dsqn.models import convolution
from dsqn.training.chunk import make_train  # noqa: E402

BACKENDS = spiking.BACKENDS
LAYERS = {  # name: (neuron shape [B, ...] per time step, direct encoding)
    "conv1": ((32, 20, 20, 32), True),
    "conv2": ((32, 9, 9, 64), False),
    "conv3": ((32, 7, 7, 64), False),
    "fc1": ((32, 512), False),
}
ENVS_PER_SEED = (1, 4, 16)
PAPER_AGENT_STEPS = 50_000_000
SMALL_REPLAY = 1024  # transitions
SECONDS_PER_LAUNCH = (3e-6, 10e-6)


# ----------------------------------------------------------------------------- launch counts


class UnknownTrips(ValueError):
    """A while loop whose trip count the caller did not give."""


def sequential_launches(jaxpr, while_trips: float | None = None) -> float:
    """Sequential kernel launches of ``jaxpr`` (rules in the module docstring). Every while
    loop runs ``while_trips`` times; without it, a while loop raises :class:`UnknownTrips`."""
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "pallas_call":
            total += 1
            continue
        subs = [
            sequential_launches(s, while_trips)
            for s in jax.extend.core.jaxprs_in_params(eqn.params)
        ]
        if name == "scan":
            total += eqn.params["length"] * (1 + sum(subs))
        elif name == "while":
            if while_trips is None:
                raise UnknownTrips("a while loop of unknown trip count")
            total += while_trips * (1 + sum(subs))
        elif name == "cond":
            total += max(subs)
        else:
            total += sum(subs)
    return total


@contextlib.contextmanager
def gpu_program():
    """Traces the networks as on a GPU: no CPU convolution blocks (``dsqn.models.convolution``)."""
    block = convolution.CPU_CONV_BLOCK
    convolution.CPU_CONV_BLOCK = sys.maxsize
    try:
        yield
    finally:
        convolution.CPU_CONV_BLOCK = block


def _while_loops(jaxpr) -> int:
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == "while"
        if eqn.primitive.name != "pallas_call":
            count += sum(_while_loops(s) for s in jax.extend.core.jaxprs_in_params(eqn.params))
    return count


def paper_config(backend: str, time_steps: int, batch: int, envs_per_seed: int = 1) -> Config:
    """The paper's DSQN on Pong (its replay of 1M transitions) with the given backend, T,
    minibatch and envs per seed."""
    return apply_overrides(
        common.atari_config("dsqn", time_steps, batch),
        {"network.neuron_backend": backend, "env.envs_per_seed": envs_per_seed},
    )


def _small_replay(config: Config) -> Config:
    """``config`` with a replay small enough to be held: for timing, where its size does not
    matter (counting takes the paper's size, as uniform sampling's binary search runs
    ``ceil(log2(capacity + 1))`` iterations)."""
    return apply_overrides(config, {"learner.replay_capacity_transitions": SMALL_REPLAY})


def program_launches(backend: str, time_steps: int, batch: int) -> dict:
    """Launches of one acting forward (batch 1) and one update."""
    config = paper_config(backend, time_steps, batch)
    step, state, _ = common.update_setup(config)
    rep = jax.eval_shape(  # the paper's replay, as shapes only
        functools.partial(
            replay.init,
            config.learner.replay_capacity_transitions,
            1,
            np.zeros(common.ATARI_OBS_SHAPE, np.uint8),
            num_actions=common.PONG_ACTIONS,
        )
    )
    network = agent.make_network(config.network, common.PONG_ACTIONS, common.ATARI_OBS_SHAPE)
    obs = jnp.zeros((1, *common.ATARI_OBS_SHAPE), jnp.uint8)
    with gpu_program():
        acting = jax.make_jaxpr(functools.partial(agent.q_values_and_spikes, network))(
            state.params, obs
        )
        update = jax.make_jaxpr(step)(state, rep)
    return {
        "acting_forward": sequential_launches(acting.jaxpr),
        "update": sequential_launches(update.jaxpr),
    }


def chunk_launches(backend: str, time_steps: int, batch: int, envs_per_seed: int) -> dict:
    """Launches of one iteration of the real training chunk, and per agent step."""
    config = paper_config(backend, time_steps, batch, envs_per_seed)
    exp = make_train(config)
    try:
        # A real carry (its envs reset on the host) with the paper's replay as shapes only.
        carry = dataclasses.replace(exp, config=_small_replay(config)).init_carry()
        carry = carry._replace(replay=jax.eval_shape(exp.init_replay))
        with gpu_program():
            chunk = jax.make_jaxpr(exp.chunk_fn(1))(carry).jaxpr
    finally:
        exp.env.close()
    whiles = _while_loops(chunk)
    if whiles != 1:  # the counting rule below assumes the one loop of due updates
        raise RuntimeError(f"expected one while loop (the due updates) in the chunk, got {whiles}")
    updates = envs_per_seed / config.learner.update_period_agent_steps
    per_iteration = sequential_launches(chunk, while_trips=updates)
    per_agent_step = per_iteration / envs_per_seed
    hours = {
        f"{round(s * 1e6)}us_per_launch": per_agent_step * PAPER_AGENT_STEPS * s / 3600
        for s in SECONDS_PER_LAUNCH
    }
    return {
        "updates_per_iteration": updates,
        "per_iteration": per_iteration,
        "per_agent_step": per_agent_step,
        "hours_for_50M_agent_steps": hours,
    }


def launches(time_steps: int, batch: int, envs_per_seed: tuple[int, ...] = ENVS_PER_SEED) -> dict:
    """Every count, for each backend."""
    return {
        backend: {
            **program_launches(backend, time_steps, batch),
            "training_chunk": {
                f"envs_per_seed_{e}": chunk_launches(backend, time_steps, batch, e)
                for e in envs_per_seed
            },
        }
        for backend in BACKENDS
    }


# ----------------------------------------------------------------------------- timing


def layer_fns(backend: str, shape: tuple[int, ...], direct: bool, time_steps: int):
    """``(forward, forward_and_backward)`` of one paper LIF layer, each a no-argument call that
    blocks until its result is ready."""
    rng = np.random.default_rng(0)
    neurons = shape if direct else (time_steps, *shape)
    x = jnp.asarray(rng.normal(0.8, 1.0, neurons), jnp.float32)
    g = jnp.asarray(rng.normal(size=(time_steps, *shape)), jnp.float32)
    steps = time_steps if direct else None

    def layer(x):
        return spiking.lif(x, time_steps=steps, backend=backend)

    forward = jax.jit(layer)
    backward = jax.jit(jax.grad(lambda x: jnp.sum(layer(x) * g)))
    return (
        lambda: jax.block_until_ready(forward(x)),
        lambda: jax.block_until_ready(backward(x)),
    )


def time_layers(time_steps: int, batch: int, repeats: int) -> dict:
    """Median seconds per layer, backend and pass; the backends interleaved."""
    result = {}
    for name, (shape, direct) in LAYERS.items():
        shape = (batch, *shape[1:])
        timed = {}
        for backend in BACKENDS:
            forward, both = layer_fns(backend, shape, direct, time_steps)
            timed[f"{backend}/forward"], timed[f"{backend}/forward_backward"] = forward, both
        seconds = common.interleaved_medians(timed, repeats)
        result[name] = {
            "shape": [time_steps, *shape],
            "direct_encoding": direct,
            **{
                b: {p: seconds[f"{b}/{p}"] for p in ("forward", "forward_backward")}
                for b in BACKENDS
            },
        }
    return result


def time_network(time_steps: int, batch: int, repeats: int) -> dict:
    """Median seconds of one update and one greedy forward at batch 1 and 8, per backend."""
    timed = {}
    for backend in BACKENDS:
        config = _small_replay(paper_config(backend, time_steps, batch))
        step, state, rep = common.update_setup(config)
        timed[f"{backend}/update"] = lambda step=step, state=state, rep=rep: jax.block_until_ready(
            step(state, rep)
        )
        network = agent.make_network(config.network, common.PONG_ACTIONS, common.ATARI_OBS_SHAPE)
        greedy = jax.jit(
            lambda p, o, network=network: jnp.argmax(network.apply({"params": p}, o), axis=-1)
        )
        for b in act.BATCHES:
            obs = act.observations(b)
            timed[f"{backend}/act_batch{b}"] = lambda greedy=greedy, p=state.params, o=obs: (
                jax.block_until_ready(greedy(p, o))
            )
    seconds = common.interleaved_medians(timed, repeats)
    names = ["update", *(f"act_batch{b}" for b in act.BATCHES)]
    return {b: {n: seconds[f"{b}/{n}"] for n in names} for b in BACKENDS}


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--repeats", type=int, default=10, help="timed repeats (median)")
    p.add_argument("--skip-timing", action="store_true", help="launch counts only")
    p.add_argument(
        "--envs-per-seed",
        type=int,
        nargs="+",
        default=list(ENVS_PER_SEED),
        help="env.envs_per_seed values whose training chunk is counted",
    )
    args = p.parse_args(argv)
    time_steps, batch = common.PAPER_TIME_STEPS, common.PAPER_BATCH
    repeats = 3 if args.quick else args.repeats
    if args.smoke:
        time_steps, batch, repeats = 2, 2, 1
    result = {
        "benchmark": "neuron_backends",
        "machine": common.machine_info(),
        "time_steps": time_steps,
        "batch": batch,
        "repeats": repeats,
        "pallas_interpreted": jax.default_backend() == "cpu",
        "launches": launches(time_steps, batch, tuple(args.envs_per_seed)),
    }
    if not args.skip_timing:
        result["layers"] = time_layers(time_steps, batch, repeats)
        result["network"] = time_network(time_steps, batch, repeats)
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
