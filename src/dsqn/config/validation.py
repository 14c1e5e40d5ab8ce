"""Validation: :func:`validate` rejects impossible configs before anything runs, naming the field
and what is valid."""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from dsqn.config.overrides import SWEEPABLE, sweep_field
from dsqn.config.schema import (
    STEPPINGS,
    Config,
    ConfigError,
    EnvConfig,
    EvalConfig,
    LearnerConfig,
    NetworkConfig,
    RunConfig,
    SweepConfig,
)

__all__ = ["validate", "SUITES"]


def _choice(path: str, value: Any, valid: tuple) -> None:
    if value not in valid:
        near = difflib.get_close_matches(str(value), [str(v) for v in valid], n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"{path} = {value!r} is not valid{hint}; valid: {list(valid)}")


def _positive(path: str, value: Any, *, allow_zero: bool = False) -> None:
    if value is None or (value < 0 if allow_zero else value <= 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{path} must be {bound}, got {value!r}")


def validate(config: Config) -> Config:
    """Checks every field, section by section; raises :class:`ConfigError` naming the first
    bad one."""
    _check_network(config.network)
    _check_env(config.env)
    _check_learner(config.learner, config.env)
    _check_eval(config.eval)
    _check_run(config.run, config.env, config.eval)
    if config.learner.neuron_learning_rate_scale != 1 and not _learnable_neurons(config.network):
        raise ConfigError(
            f"learner.neuron_learning_rate_scale is {config.learner.neuron_learning_rate_scale!r}, "
            "but the network has no learnable neuron parameters (they exist with network.kind "
            "dsqn and network.neuron plif or network.learn_threshold true); leave it at 1.0"
        )
    _check_sweep(config)
    return config


def _learnable_neurons(network: NetworkConfig) -> bool:
    """Whether the network has learnable neuron parameters (PLIF's w, learned thresholds)."""
    return network.kind == "dsqn" and (network.neuron == "plif" or network.learn_threshold)


def _check_sweep(config: Config) -> None:
    """Rejects repeated values, sweeps that change nothing, and values the field cannot take
    (each swept value is validated as the field's value of a config of its own)."""
    for path in SWEEPABLE:
        values = getattr(config.sweep, path.replace(".", "_", 1))
        if not values:
            continue
        name = sweep_field(path)
        if len(set(values)) != len(values):
            raise ConfigError(f"{name} has repeated values {list(values)}")
        unused = _unused_sweep(config, path)
        if unused:
            raise ConfigError(f"{name} is swept, but {unused}: it changes nothing")
        section, field = path.split(".")
        for value in values:
            point = dataclasses.replace(
                config,
                sweep=SweepConfig(),
                **{section: dataclasses.replace(getattr(config, section), **{field: value})},
            )
            try:
                validate(point)
            except ConfigError as error:
                raise ConfigError(f"sweep value {path}={value:g}: {error}") from None


def _unused_sweep(config: Config, path: str) -> str | None:
    """Why sweeping ``path`` has no effect in ``config`` (it would train identical agents)."""
    if path.startswith("network.") and config.network.kind != "dsqn":
        return f"network.kind is {config.network.kind!r} (no spiking neurons)"
    if path == "network.tau" and config.network.neuron == "if":
        return "network.neuron is 'if' (no leak)"
    if path == "learner.epsilon_mid" and config.learner.epsilon_schedule != "exponential_linear":
        return f"learner.epsilon_schedule is {config.learner.epsilon_schedule!r}"
    if path == "learner.neuron_learning_rate_scale" and not _learnable_neurons(config.network):
        return "the network has no learnable neuron parameters (neuron plif, learn_threshold)"
    return None


def _check_network(n: NetworkConfig) -> None:
    from dsqn.models.networks import HEADS, INITS, NEURONS, NORMS, READOUTS
    from dsqn.spiking import BACKENDS, SURROGATES

    _choice("network.kind", n.kind, ("dsqn", "dqn"))
    if n.time_steps < 1:
        raise ConfigError(f"network.time_steps must be >= 1, got {n.time_steps!r}")
    _choice("network.neuron", n.neuron, NEURONS)
    _positive("network.tau", n.tau)
    if n.neuron == "plif" and not n.tau > 1:
        raise ConfigError(
            f"network.tau = {n.tau!r}: a PLIF neuron's initial tau must be > 1 (1/tau = sigmoid(w))"
        )
    _positive("network.v_threshold", n.v_threshold)
    _choice("network.surrogate", n.surrogate, tuple(SURROGATES))
    _positive("network.surrogate_alpha", n.surrogate_alpha)
    _choice("network.readout", n.readout, READOUTS)
    _choice("network.neuron_backend", n.neuron_backend, BACKENDS)
    _choice("network.param_init", n.param_init, INITS)
    _choice("network.head", n.head, HEADS)
    _choice("network.norm", n.norm, NORMS)
    if n.norm != "none" and n.kind != "dsqn":
        raise ConfigError(
            f"network.norm {n.norm!r} normalises spiking layers; network.kind is {n.kind!r}"
        )
    _choice("network.compute_dtype", n.compute_dtype, ("float32", "bfloat16"))
    if not n.hidden_sizes or any(h <= 0 for h in n.hidden_sizes):
        raise ConfigError(f"network.hidden_sizes must be positive widths, got {n.hidden_sizes!r}")


SUITES: tuple[str, ...] = ("atari", "classic", "minatar")
"""The env suites (``env.suite``): envpool's Atari and classic control, and MinAtar in JAX."""


def _check_env(e: EnvConfig) -> None:
    _choice("env.suite", e.suite, SUITES)
    if e.suite == "minatar":
        from dsqn.config.games import minatar_game

        try:
            minatar_game(e.game)
        except ValueError as error:
            raise ConfigError(f"env.game: {error}") from None
    _choice("env.protocol", e.protocol, ("paper", "machado"))
    _choice("env.life_loss_stack", e.life_loss_stack, ("refill", "carry"))
    _choice("env.stepping", e.stepping, STEPPINGS)
    _positive("env.envs_per_seed", e.envs_per_seed)
    if e.max_episode_agent_steps is not None:
        _positive("env.max_episode_agent_steps", e.max_episode_agent_steps)


def _check_learner(learner: LearnerConfig, e: EnvConfig) -> None:
    from dsqn.learning.losses import ERROR_KINDS, LOSSES

    _choice("learner.loss", learner.loss, tuple(LOSSES))
    _choice("learner.td_error", learner.td_error, ERROR_KINDS)
    if learner.cdqn_double_q and learner.loss != "cdqn":
        raise ConfigError(
            f"learner.cdqn_double_q applies to learner.loss cdqn only, not {learner.loss!r} "
            "(for Double DQN set learner.loss double)"
        )
    if not 0 <= learner.discount <= 1:
        raise ConfigError(f"learner.discount must be in [0, 1], got {learner.discount!r}")
    _positive("learner.learning_rate", learner.learning_rate)
    _check_learning_rate_decay(learner)
    _positive("learner.adam_eps", learner.adam_eps)
    _positive("learner.weight_decay", learner.weight_decay, allow_zero=True)
    _positive("learner.neuron_learning_rate_scale", learner.neuron_learning_rate_scale)
    if learner.max_grad_norm is not None:
        _positive("learner.max_grad_norm", learner.max_grad_norm)
    _positive("learner.batch_size", learner.batch_size)
    _positive("learner.update_period_agent_steps", learner.update_period_agent_steps)
    _positive("learner.target_update_period_agent_steps", learner.target_update_period_agent_steps)
    _positive("learner.warmup_agent_steps", learner.warmup_agent_steps, allow_zero=True)
    _positive("learner.epsilon_decay_agent_steps", learner.epsilon_decay_agent_steps)
    for name in ("epsilon_start", "epsilon_mid", "epsilon_end"):
        if not 0 <= getattr(learner, name) <= 1:
            raise ConfigError(f"learner.{name} must be in [0, 1], got {getattr(learner, name)!r}")
    _choice("learner.epsilon_schedule", learner.epsilon_schedule, ("linear", "exponential_linear"))
    if learner.epsilon_schedule == "exponential_linear":
        _positive("learner.epsilon_start", learner.epsilon_start)
        _positive("learner.epsilon_mid", learner.epsilon_mid)
        _positive("learner.epsilon_mid_agent_steps", learner.epsilon_mid_agent_steps)
        if learner.epsilon_mid_agent_steps >= learner.epsilon_decay_agent_steps:
            raise ConfigError(
                f"learner.epsilon_mid_agent_steps ({learner.epsilon_mid_agent_steps}) must be less "
                f"than learner.epsilon_decay_agent_steps ({learner.epsilon_decay_agent_steps})"
            )
    _check_replay(learner, e)


def _check_learning_rate_decay(learner: LearnerConfig) -> None:
    end, steps = learner.learning_rate_end, learner.learning_rate_decay_agent_steps
    if (end is None) != (steps is None):
        raise ConfigError(
            f"learner.learning_rate_end ({end!r}) and learner.learning_rate_decay_agent_steps "
            f"({steps!r}) must be set together (a linear decay) or both be None (constant)"
        )
    if end is not None:
        _positive("learner.learning_rate_end", end, allow_zero=True)
        _positive("learner.learning_rate_decay_agent_steps", steps)
        if steps < learner.update_period_agent_steps:
            raise ConfigError(
                f"learner.learning_rate_decay_agent_steps ({steps}) must be at least one "
                f"update period (learner.update_period_agent_steps = "
                f"{learner.update_period_agent_steps})"
            )


def _check_replay(learner: LearnerConfig, e: EnvConfig) -> None:
    from dsqn.learning.replay import MAX_TRACKING

    _positive("learner.replay_capacity_transitions", learner.replay_capacity_transitions)
    _choice("learner.replay_sampling", learner.replay_sampling, ("uniform", "proportional"))
    _positive("learner.priority_exponent", learner.priority_exponent, allow_zero=True)
    _positive("learner.priority_epsilon", learner.priority_epsilon)
    _positive("learner.priority_initial_max", learner.priority_initial_max)
    _choice("learner.priority_max_tracking", learner.priority_max_tracking, MAX_TRACKING)
    if learner.priority_floor_of_mean is not None and not 0 < learner.priority_floor_of_mean < 1:
        raise ConfigError(
            f"learner.priority_floor_of_mean must be in (0, 1) or None, "
            f"got {learner.priority_floor_of_mean!r}"
        )
    fraction = learner.priority_predecessor_fraction
    _positive("learner.priority_predecessor_fraction", fraction, allow_zero=True)
    if not 0 <= learner.importance_exponent_start <= 1:
        raise ConfigError(
            f"learner.importance_exponent_start must be in [0, 1], "
            f"got {learner.importance_exponent_start!r}"
        )
    if learner.importance_exponent_anneal_agent_steps is not None:
        _positive(
            "learner.importance_exponent_anneal_agent_steps",
            learner.importance_exponent_anneal_agent_steps,
        )
    if learner.importance_weight_max is not None:
        _positive("learner.importance_weight_max", learner.importance_weight_max)
    capacity = learner.replay_capacity_transitions
    if capacity % e.envs_per_seed:
        raise ConfigError(
            f"learner.replay_capacity_transitions ({capacity}) must be a "
            f"multiple of env.envs_per_seed ({e.envs_per_seed})"
        )
    if learner.batch_size > capacity:
        raise ConfigError(
            f"learner.batch_size ({learner.batch_size}) is larger than "
            f"learner.replay_capacity_transitions ({capacity})"
        )
    u, k = learner.update_period_agent_steps, e.envs_per_seed
    if u % k and k % u:
        raise ConfigError(
            f"env.envs_per_seed ({k}) and learner.update_period_agent_steps ({u}) must divide "
            "one another, so that every step of the vectorised loop does a whole number of updates"
        )


def _check_eval(ev: EvalConfig) -> None:
    _positive("eval.period_agent_steps", ev.period_agent_steps)
    _positive("eval.episodes", ev.episodes)
    if not 0 <= ev.epsilon <= 1:
        raise ConfigError(f"eval.epsilon must be in [0, 1], got {ev.epsilon!r}")
    _choice("eval.best_ties", ev.best_ties, ("later", "earlier"))
    if ev.max_episode_agent_steps is not None:
        _positive("eval.max_episode_agent_steps", ev.max_episode_agent_steps)


def _check_run(r: RunConfig, e: EnvConfig, ev: EvalConfig) -> None:
    from dsqn.runtime.precision import MATMUL_PRECISIONS

    k = e.envs_per_seed
    _positive("run.total_agent_steps", r.total_agent_steps)
    if not r.seeds:
        raise ConfigError("run.seeds must name at least one seed")
    if len(set(r.seeds)) != len(r.seeds):
        raise ConfigError(f"run.seeds must be distinct, got {r.seeds!r}")
    if any(s < 0 for s in r.seeds):
        raise ConfigError(f"run.seeds must be >= 0, got {r.seeds!r}")
    for name in ("log_period_agent_steps", "checkpoint_period_agent_steps"):
        _positive(f"run.{name}", getattr(r, name))
        if getattr(r, name) % k:
            raise ConfigError(
                f"run.{name} ({getattr(r, name)}) must be a multiple of env.envs_per_seed ({k})"
            )
    between_chunks = {
        "eval.period_agent_steps": ev.period_agent_steps,
        "run.checkpoint_period_agent_steps": r.checkpoint_period_agent_steps,
    }
    if any(value % r.log_period_agent_steps for value in between_chunks.values()):
        raise ConfigError(_between_chunks_error(between_chunks, r.log_period_agent_steps, k))
    _positive("run.keep_checkpoints", r.keep_checkpoints)
    _choice("run.matmul_precision", r.matmul_precision, MATMUL_PRECISIONS)
    if r.checkpoint_period_minutes is not None:
        _positive("run.checkpoint_period_minutes", r.checkpoint_period_minutes)


def _between_chunks_error(periods: dict[str, int], log_period: int, envs_per_seed: int) -> str:
    """The error for ``periods`` (path -> agent steps) that are not all multiples of the log
    period, with the flags that fix it: for each bad one the multiple of the log period nearest
    to it, or else a few log periods near this one that divide every period (and are multiples
    of ``envs_per_seed``, as a log period must be)."""
    bad = {path: value for path, value in periods.items() if value % log_period}
    nearest = {path: max(1, round(value / log_period)) * log_period for path, value in bad.items()}
    each, multiples = ("each ", "multiples") if len(bad) > 1 else ("", "a multiple")
    message = (
        " and ".join(f"{path} ({value})" for path, value in bad.items())
        + f" must {each}be a multiple of run.log_period_agent_steps ({log_period}): evaluations "
        "and checkpoints happen between chunks; set "
        + " ".join(f"--{path} {value}" for path, value in nearest.items())
        + f" ({multiples} of {log_period})"
    )
    common = math.gcd(*periods.values())
    divisors = {
        d for i in range(1, math.isqrt(common) + 1) if common % i == 0 for d in (i, common // i)
    }
    log_periods = sorted(
        (d for d in divisors if d % envs_per_seed == 0),
        key=lambda d: max(d / log_period, log_period / d),
    )[:3]
    if log_periods:
        *others, last = sorted(log_periods)
        values = " and ".join(str(v) for v in sorted(set(periods.values())))
        message += (
            f", or choose a log period that divides {values}: --run.log_period_agent_steps "
            + (", ".join(map(str, others)) + " or " if others else "")
            + str(last)
        )
    return message
