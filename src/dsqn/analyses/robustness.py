r"""Evaluation under input perturbations: Gaussian observation noise and FGSM attacks.

Every observation an agent acts on is perturbed before the Q-network sees it; the environment is
untouched. Two perturbations, each of a size ``size``:

- ``"noise"``, Gaussian noise of standard deviation ``sigma = size``, drawn afresh for every
  observation, env and step. Atari frames (uint8, [0, 255]) are perturbed on the [0, 1] scale the
  network uses and quantised back to frames:

  .. math::  \tilde x = \mathrm{round}(\mathrm{clip}(x + 255 \, \sigma \, \epsilon, 0, 255)),
             \qquad \epsilon \sim \mathcal N(0, I)

  Vector observations (classic control) get ``x + sigma * eps`` in the observation's own units
  (no clipping, no quantisation).
- ``"fgsm"``, the fast gradient sign method (Goodfellow et al. 2015) as Huang et al. (2017)
  applied it to DQN: the Q-values define the policy ``pi(.|x) = softmax(Q(x, .))``, the loss is
  the cross-entropy between ``pi`` and the greedy action ``y = argmax_a Q(x, a)``, and

  .. math::  \tilde x = x + \varepsilon \, \mathrm{sign}(\nabla_x [-\log \pi(y | x)])

  which pushes the policy away from its own greedy action within the max-norm ball
  ``||x~ - x||_inf <= eps``. For Atari frames ``eps`` is on the [0, 1] scale: the step is
  ``255 eps`` in pixel units, and the attacked frame stays a float on [0, 255] (clipped, NOT
  rounded: a step below half a grey level would vanish in rounding). The Q-networks accept such
  floats as they accept uint8 frames (both are cast and divided by 255 inside). For spiking
  networks the gradient flows through the surrogate derivative of the spike function.

:class:`PerturbedEvaluator` runs the evaluation protocol of :mod:`dsqn.learning.evaluation`
(full games, epsilon-greedy, all episodes in one jitted loop) with a perturbation; with size 0 it
plays exactly the games :class:`dsqn.learning.evaluation.Evaluator` plays with the same keys.
:func:`robustness_report` tabulates score against perturbation size for several runs, using the
same games and exploration draws for every size (a paired comparison).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dsqn.config import Config
from dsqn.config.sweep import AgentSpec
from dsqn.learning.evaluation import EvalResult, Evaluator
from dsqn.learning.evaluation_stats import evaluation_summary, seed_summaries
from dsqn.rundir import files as rd
from dsqn.rundir.loading import Agent, load_agents, stack_params
from dsqn.runtime import prng

__all__ = [
    "PERTURBATIONS",
    "gaussian_noise",
    "fgsm",
    "greedy_cross_entropy",
    "perturb",
    "PerturbedEvaluator",
    "robustness_report",
    "robustness_markdown",
]

PERTURBATIONS: tuple[str, ...] = ("none", "noise", "fgsm")
"""Perturbation kinds: none (clean), Gaussian noise, FGSM."""

PIXEL_MAX = 255.0
"""Atari frames are uint8 on [0, PIXEL_MAX]; the networks divide by it."""

ApplyFn = Callable[[Any, jax.Array], jax.Array]


def _is_frame(obs: jax.Array) -> bool:
    return obs.dtype == jnp.uint8


def gaussian_noise(obs: jax.Array, std: jax.Array | float, key: jax.Array) -> jax.Array:
    """``obs`` plus Gaussian noise of standard deviation ``std`` (see the module docstring).

    uint8 frames: noise ``255 * std`` in pixel units, clipped to [0, 255] and rounded back to
    uint8. Other observations: ``obs + std * N(0, 1)`` in their own dtype.
    """
    eps = jax.random.normal(key, obs.shape, jnp.float32)
    if _is_frame(obs):
        noisy = obs.astype(jnp.float32) + PIXEL_MAX * std * eps
        return jnp.round(jnp.clip(noisy, 0.0, PIXEL_MAX)).astype(jnp.uint8)
    return (obs + std * eps).astype(obs.dtype)


def greedy_cross_entropy(apply_fn: ApplyFn, params: Any, obs: jax.Array) -> jax.Array:
    """``sum_b -log softmax(Q(x_b))[argmax_a Q(x_b, a)]``; the greedy action is held constant."""
    q = apply_fn(params, obs)
    target = jax.lax.stop_gradient(jnp.argmax(q, axis=-1))
    log_pi = jax.nn.log_softmax(q, axis=-1)
    return -jnp.sum(jnp.take_along_axis(log_pi, target[:, None], axis=-1))


def fgsm(apply_fn: ApplyFn, params: Any, obs: jax.Array, eps: jax.Array | float) -> jax.Array:
    """The FGSM observation ``x + eps * sign(grad_x CE(softmax(Q(x)), argmax Q(x)))``.

    ``apply_fn(params, obs) -> Q [B, A]``. Samples are independent (the summed loss has
    per-sample gradients). uint8 frames: the gradient is taken w.r.t. the frame as float32 on
    [0, 255], the step is ``255 * eps`` and the result is a float32 frame clipped to [0, 255].
    Other observations: ``x + eps * sign(g)`` in their own dtype. Where the gradient is exactly 0
    the observation is unchanged.
    """
    frame = _is_frame(obs)
    x = obs.astype(jnp.float32) if frame else obs
    grad = jax.grad(lambda v: greedy_cross_entropy(apply_fn, params, v))(x)
    if frame:
        return jnp.clip(x + PIXEL_MAX * eps * jnp.sign(grad), 0.0, PIXEL_MAX)
    return (x + eps * jnp.sign(grad)).astype(obs.dtype)


def perturb(
    kind: str,
    apply_fn: ApplyFn,
    params: Any,
    obs: jax.Array,
    size: jax.Array | float,
    key: jax.Array,
) -> jax.Array:
    """``obs`` perturbed by ``kind`` (:data:`PERTURBATIONS`) of ``size`` (std or epsilon)."""
    if kind == "none":
        return obs
    if kind == "noise":
        return gaussian_noise(obs, size, key)
    if kind == "fgsm":
        return fgsm(apply_fn, params, obs, size)
    raise ValueError(f"unknown perturbation {kind!r}; valid: {PERTURBATIONS}")


# One transform object per kind, so that the evaluator compiles each kind once.
_TRANSFORMS = {kind: functools.partial(perturb, kind) for kind in PERTURBATIONS if kind != "none"}


class PerturbedEvaluator(Evaluator):
    """The evaluation protocol of :class:`dsqn.learning.evaluation.Evaluator`, with perturbed
    observations.

    Built once per process (it owns an env pool); each call plays one fresh full game per env for
    every seed. The per-step keys are split exactly as the Evaluator splits them (so size 0
    reproduces its games); the noise key of a step is derived from that step's action key.
    """

    def __init__(
        self,
        config: Config,
        network: nn.Module,
        seeds: Sequence[int | AgentSpec],
        *,
        episodes: int | None = None,
        epsilon: float | None = None,
    ):
        super().__init__(config, network, list(seeds), episodes=episodes, epsilon=epsilon)

    def __call__(
        self, params: Any, key: jax.Array, kind: str = "none", size: float = 0.0
    ) -> EvalResult:
        """Evaluates ``params`` (stacked ``[S, ...]``) with per-seed keys ``key: [S]``.

        ``kind`` is one of :data:`PERTURBATIONS`, ``size`` its std or epsilon (>= 0). Each kind
        compiles once; sizes are traced.
        """
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r}; valid: {PERTURBATIONS}")
        if not size >= 0:
            raise ValueError(f"perturbation size must be >= 0, got {size!r}")
        transform = None if kind == "none" else _TRANSFORMS[kind]
        return super().__call__(params, key, transform=transform, size=size)


# ----------------------------------------------------------------------------- report


def _labels(run_dirs: Sequence[Path], names: Sequence[str]) -> list[str]:
    """Column labels: the run's name, with its directory where names repeat."""
    return [
        name if names.count(name) == 1 else f"{name} ({run_dir.name})"
        for run_dir, name in zip(run_dirs, names, strict=True)
    ]


def _summary(result: EvalResult, agents: Sequence[Agent]) -> dict[str, Any]:
    keys, steps = [a.spec.key for a in agents], [a.agent_steps for a in agents]
    per_seed = seed_summaries(result, keys, steps)
    return {**evaluation_summary(per_seed), "per_seed": per_seed}


def _fmt(row: dict[str, Any]) -> str:
    if row["seeds"] > 1:
        return f"{row['mean']:.2f} ± {row['std_over_seeds']:.2f}"
    return f"{row['mean']:.2f}"


def _run_evaluator(
    agents: Sequence[Agent], episodes: int | None, epsilon: float | None
) -> tuple[PerturbedEvaluator, dict[str, Any]]:
    """The perturbed evaluator of a run's agents, and the run's entry of the report."""
    config, seeds = agents[0].config, [a.seed for a in agents]
    evaluator = PerturbedEvaluator(
        config, agents[0].network, [a.spec for a in agents], episodes=episodes, epsilon=epsilon
    )
    run = {
        "name": config.name,
        "game": config.env.game,
        "seeds": seeds,
        "episodes": evaluator.episodes,
        "epsilon": evaluator.epsilon,
    }
    return evaluator, run


def _perturbed_rows(
    evaluator: PerturbedEvaluator, agents: Sequence[Agent], sizes: dict[str, list[float]]
) -> list[dict[str, Any]]:
    """One row per perturbation kind and size; every size plays the same games and exploration
    draws (the ``ROBUSTNESS`` stream of :mod:`dsqn.runtime.prng`), and size 0 is played once."""
    params = stack_params([a.params for a in agents])
    keys = prng.stream_keys([a.seed for a in agents], prng.Stream.ROBUSTNESS)
    clean = _summary(evaluator(params, keys), agents)
    return [
        {
            "kind": kind,
            "size": size,
            **(clean if size == 0 else _summary(evaluator(params, keys, kind, size), agents)),
        }
        for kind, values in sizes.items()
        for size in values
    ]


def robustness_markdown(report: dict[str, Any]) -> str:
    """The ``robustness.md`` table of a :func:`robustness_report` object."""
    labels = [r["label"] for r in report["runs"]]
    cells = {(r["run"], r["kind"], r["size"]): r for r in report["results"]}
    title = {"noise": "Gaussian noise, σ =", "fgsm": "FGSM, ε ="}
    episodes = sorted({r["episodes"] for r in report["runs"]})
    epsilons = sorted({r["epsilon"] for r in report["runs"]})
    lines = [
        f"# Robustness (checkpoint `{report['checkpoint']}`, "
        f"{'/'.join(map(str, episodes))} episodes per seed, "
        f"epsilon {'/'.join(f'{e:g}' for e in epsilons)})",
        "",
        "Mean score over seeds (± std over seeds when there are several). Sizes are on the "
        "[0, 1] input scale for Atari frames, in observation units otherwise.",
        "",
        "| perturbation | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for kind, sizes in (("noise", report["noise_stds"]), ("fgsm", report["fgsm_eps"])):
        for size in sizes:
            row = [_fmt(cells[label, kind, size]) for label in labels]
            lines.append(f"| {title[kind]} {size:g} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def robustness_report(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    noise_stds: Sequence[float] = (0.0, 0.01, 0.02, 0.05),
    fgsm_eps: Sequence[float] = (0.0, 0.001, 0.005, 0.01),
    episodes: int | None = None,
    checkpoint: str = "best",
    epsilon: float | None = None,
) -> dict[str, Any]:
    """Score against perturbation size for every run; writes ``robustness.{json,md}``.

    Each run directory (a training run, evaluated at ``checkpoint``, or a converted run made by
    :func:`dsqn.analyses.convert_run.convert_run`, rebuilt from the checkpoint it was converted
    from) plays ``episodes`` games per seed (default: the run's ``eval.episodes``) with epsilon
    ``epsilon`` (default: the run's) under every noise std and FGSM epsilon; size 0 is the clean
    evaluation, played once. All sizes of a run use the same games and exploration draws.

    Returns:
      ``{"checkpoint", "episodes", "epsilon" (as requested; None: each run's own),
      "noise_stds", "fgsm_eps", "fgsm_objective", "runs": [{"label", "run_dir", "name", "game",
      "seeds", "episodes", "epsilon"}], "results": [{"run", "kind", "size", "mean",
      "std_over_seeds", "seeds", "per_seed"}], "path"}``.
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("robustness_report needs at least one run directory, got none")
    sizes = {"noise": [float(s) for s in noise_stds], "fgsm": [float(e) for e in fgsm_eps]}
    for kind, values in sizes.items():
        bad = [v for v in values if not v >= 0]
        if bad:
            raise ValueError(f"{kind} sizes must be >= 0, got {bad}")
    loaded = [load_agents(d, checkpoint) for d in run_dirs]
    labels = _labels(run_dirs, [agents[0].config.name for agents in loaded])
    runs, results = [], []
    for run_dir, label, agents in zip(run_dirs, labels, loaded, strict=True):
        evaluator, run = _run_evaluator(agents, episodes, epsilon)
        runs.append({"label": label, "run_dir": str(run_dir), **run})
        results += [{"run": label, **row} for row in _perturbed_rows(evaluator, agents, sizes)]
    report = {
        "checkpoint": checkpoint,
        "episodes": episodes,
        "epsilon": epsilon,
        "noise_stds": sizes["noise"],
        "fgsm_eps": sizes["fgsm"],
        "fgsm_objective": "cross-entropy of softmax(Q) against the greedy action (Huang et al.)",
        "runs": runs,
        "results": results,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = rd.write_json(out_dir / rd.ROBUSTNESS, report)
    rd.write_text(out_dir / rd.ROBUSTNESS_MARKDOWN, robustness_markdown(report))
    return {**report, "path": str(path)}
