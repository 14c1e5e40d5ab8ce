r"""The learning agent of one seed: train state, epsilon-greedy acting, one update, target sync.

Everything here is a pure function of one seed's state; training vmaps it over the seed axis.

- Schedules run on the schedule step ``tau = t - offset``: ``t`` agent steps, and ``offset``
  the warm-up unless ``schedule_counts_warmup`` (:func:`schedule_offset`). Exploration, the
  paper's linear schedule::

      epsilon(tau) = max(epsilon_end, epsilon_start - (epsilon_start - epsilon_end) tau / decay)

  or Wang & Ueda's (``"exponential_linear"``): ``epsilon_start (mid / start)^(tau / n_mid)``
  up to ``n_mid = epsilon_mid_agent_steps``, then linear from ``epsilon_mid`` to
  ``epsilon_end`` at ``epsilon_decay_agent_steps``; uniformly random actions during the
  warm-up (``t < warmup_agent_steps``).
- One update: sample a minibatch, compute the TD loss of :mod:`dsqn.learning.losses` with the target
  network's ``Q_target(s', .)`` (no gradient) and, for Double DQN and C-DQN, the online
  ``Q(s', .)`` (Double DQN: a forward pass without gradient, only its argmax is used, so the
  backward runs on the batch of ``s`` alone; C-DQN: differentiated, one forward and backward
  over ``[s; s']``), then one Adam step (optionally after global-norm clipping); the learnable
  neuron parameters' step is scaled by ``neuron_learning_rate_scale`` (1 by default).
- Target sync: ``target_params <- params`` (a hard copy).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dsqn.config import LearnerConfig, NetworkConfig
from dsqn.learning import losses, replay
from dsqn.models.networks import (
    DQN,
    DSQN,
    MLPDQN,
    MLPDSQN,
    MinAtarDQN,
    MinAtarDSQN,
    is_minatar_obs_shape,
    is_neuron_parameter,
)

__all__ = [
    "TrainState",
    "make_network",
    "make_optimizer",
    "learning_rate_schedule",
    "init_train_state",
    "schedule_offset",
    "init_train_states",
    "epsilon_at",
    "epsilon_greedy",
    "select_actions",
    "priority_rule",
    "importance_exponent_at",
    "q_values_and_spikes",
    "update",
    "sync_target",
]


class TrainState(NamedTuple):
    """One seed's learner state (a pytree; training stacks it along a leading seed axis).

    Attributes:
      params: online network parameters.
      target_params: target network parameters (a copy of ``params`` at the last sync).
      opt_state: optimizer state.
      key: this seed's PRNG key; every random choice of the seed is split from it.
      updates: int32, SGD updates done.
      best_params: parameters of the best evaluation so far (the paper's best checkpoint).
      best_return: float32, that evaluation's mean return (-inf before any).
      best_agent_steps: int32, the agent step of that evaluation (-1 before any).
    """

    params: Any
    target_params: Any
    opt_state: Any
    key: jax.Array
    updates: jax.Array
    best_params: Any
    best_return: jax.Array
    best_agent_steps: jax.Array


def make_network(config: NetworkConfig, num_actions: int, obs_shape: tuple[int, ...]) -> nn.Module:
    """The Q-network for ``config``: the Atari CNN for Atari frames, Young & Tian's network for
    MinAtar grids ``[10, 10, C]``, an MLP for vector observations."""
    dtype = jnp.dtype(config.compute_dtype)
    minatar = is_minatar_obs_shape(obs_shape)
    image = len(obs_shape) == 3 and not minatar
    if config.kind == "dqn":
        ann = dict(param_init=config.param_init, head=config.head, dtype=dtype)
        if minatar:
            return MinAtarDQN(num_actions, **ann)
        if image:
            return DQN(num_actions, dueling_joined=config.dueling_joined, **ann)
        return MLPDQN(num_actions, config.hidden_sizes, **ann)
    if config.kind != "dsqn":
        raise ValueError(f"unknown network kind {config.kind!r}; valid: ['dsqn', 'dqn']")
    options = dict(
        time_steps=config.time_steps,
        neuron=config.neuron,
        tau=config.tau,
        v_threshold=config.v_threshold,
        v_reset=config.v_reset,
        decay_input=config.decay_input,
        detach_reset=config.detach_reset,
        surrogate=config.surrogate,
        surrogate_alpha=config.surrogate_alpha,
        readout=config.readout,
        learn_threshold=config.learn_threshold,
        head=config.head,
        norm=config.norm,
        neuron_backend=config.neuron_backend,
        param_init=config.param_init,
        dtype=dtype,
    )
    if minatar:
        return MinAtarDSQN(num_actions, **options)
    if image:
        return DSQN(num_actions, **options)
    return MLPDSQN(num_actions, hidden_sizes=config.hidden_sizes, **options)


def make_optimizer(config: LearnerConfig) -> optax.GradientTransformation:
    """Adam (eps from the config, betas 0.9, 0.999, the step size of
    :func:`learning_rate_schedule`), or with ``weight_decay`` lambda > 0 AdamW (Loshchilov &
    Hutter 2019, as ``torch.optim.AdamW``: ``theta <- theta - lr (adam_step + lambda theta)``),
    after an optional global-norm clip; the learnable neuron parameters' steps times
    ``neuron_learning_rate_scale``.

    The scale may be traced (a sweep's value per agent); the optimizer state is Adam's either
    way, so checkpoints do not depend on it, and a scale of 1 changes no bit.
    """
    if config.weight_decay:
        inner = optax.adamw(
            learning_rate_schedule(config), eps=config.adam_eps, weight_decay=config.weight_decay
        )
    else:
        inner = optax.adam(learning_rate_schedule(config), eps=config.adam_eps)
    adam = _scale_neuron_steps(inner, config.neuron_learning_rate_scale)
    if config.max_grad_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)


def learning_rate_schedule(config: LearnerConfig) -> float | jax.Array | optax.Schedule:
    """The Adam step size: ``learning_rate`` (constant, the paper), or with
    ``learning_rate_end`` the linear decay over the updates

        lr(k) = lr_0 + min(k / K, 1) (lr_end - lr_0),   K = decay_agent_steps / update_period,

    where k counts the updates done (update k follows k x update_period agent steps of learning).
    Either end may be traced (a sweep's value per agent)."""
    if config.learning_rate_end is None:
        return config.learning_rate
    updates = config.learning_rate_decay_agent_steps // config.update_period_agent_steps
    return optax.linear_schedule(config.learning_rate, config.learning_rate_end, updates)


def _scale_neuron_steps(
    inner: optax.GradientTransformation, scale: float | jax.Array
) -> optax.GradientTransformation:
    """``inner`` with its updates of the neuron parameters (:func:`is_neuron_parameter`)
    multiplied by ``scale``; same state as ``inner``."""

    def scaled(path: tuple[Any, ...], update: jax.Array) -> jax.Array:
        name = getattr(path[-1], "key", None) if path else None
        if isinstance(name, str) and is_neuron_parameter(name):
            return update * jnp.asarray(scale, update.dtype)
        return update

    def update(updates, state, params=None):
        updates, state = inner.update(updates, state, params)
        return jax.tree_util.tree_map_with_path(scaled, updates), state

    return optax.GradientTransformation(inner.init, update)


def init_train_state(
    key: jax.Array,
    network: nn.Module,
    optimizer: optax.GradientTransformation,
    obs_example: jax.Array,
) -> TrainState:
    """A fresh state: ``params`` initialised from ``key``, target = params, best = none yet.

    ``obs_example`` is a batch of observations (``[B, ...]``) used only for shapes.
    """
    init_key, key = jax.random.split(key)
    params = network.init(init_key, obs_example)["params"]
    return TrainState(
        params=params,
        target_params=params,
        opt_state=optimizer.init(params),
        key=key,
        updates=jnp.zeros((), jnp.int32),
        best_params=params,
        best_return=jnp.full((), -jnp.inf, jnp.float32),
        best_agent_steps=jnp.full((), -1, jnp.int32),
    )


def schedule_offset(config: LearnerConfig) -> int:
    """Agent steps before the schedules (exploration, updates, target syncs, importance
    exponent, evaluations, run length) start counting: the warm-up, unless
    ``schedule_counts_warmup``."""
    return 0 if config.schedule_counts_warmup else config.warmup_agent_steps


def init_train_states(
    keys: jax.Array,
    network: nn.Module,
    optimizer: optax.GradientTransformation,
    obs_example: jax.Array,
) -> TrainState:
    """Fresh states ``[S]``, one per key of ``keys: [S]`` (each seed's train stream,
    :func:`dsqn.runtime.prng.train_keys`); :func:`init_train_state` vmapped."""
    init = lambda key: init_train_state(key, network, optimizer, obs_example)  # noqa: E731
    return jax.vmap(init)(keys)


def epsilon_at(config: LearnerConfig, agent_steps: jax.Array) -> jax.Array:
    """Exploration rate at ``agent_steps``: 1 during warm-up, then the schedule (module
    docstring) on the schedule step."""
    t = jnp.asarray(agent_steps, jnp.float32)
    tau = t - schedule_offset(config)
    start, end = config.epsilon_start, config.epsilon_end
    if config.epsilon_schedule == "linear":
        frac = jnp.clip(tau / config.epsilon_decay_agent_steps, 0.0, 1.0)
        eps = start + frac * (end - start)
    else:
        mid, n_mid = config.epsilon_mid, config.epsilon_mid_agent_steps
        early = start * (mid / start) ** (jnp.clip(tau, 0.0, n_mid) / n_mid)
        frac = jnp.clip((tau - n_mid) / (config.epsilon_decay_agent_steps - n_mid), 0.0, 1.0)
        eps = jnp.where(tau <= n_mid, early, mid + frac * (end - mid))
    return jnp.where(t < config.warmup_agent_steps, 1.0, eps)


def epsilon_greedy(key: jax.Array, q: jax.Array, epsilon: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Epsilon-greedy with its coin flips: ``q: [E, A]`` -> (int32 actions ``[E]``, bool
    ``explored [E]``); each env explores independently. ``explored`` marks the actions drawn at
    random (with probability ``epsilon``), even where the draw equals the greedy action."""
    explore_key, action_key = jax.random.split(key)
    num_envs, num_actions = q.shape
    greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    random = jax.random.randint(action_key, (num_envs,), 0, num_actions, jnp.int32)
    explore = jax.random.uniform(explore_key, (num_envs,)) < epsilon
    return jnp.where(explore, random, greedy), explore


def select_actions(key: jax.Array, q: jax.Array, epsilon: jax.Array) -> jax.Array:
    """Epsilon-greedy: ``q: [E, A]`` -> int32 ``[E]``; each env explores independently."""
    return epsilon_greedy(key, q, epsilon)[0]


def q_values_and_spikes(
    network: nn.Module, params: Any, obs: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Q ``[B, A]`` and, per spiking layer, each sample's spike count over T and neurons.

    Returns ``(q, {layer: float32 [B]})``; the dict is empty for ReLU networks.
    """
    q, state = network.apply({"params": params}, obs, mutable=["intermediates"])
    counts = {
        name.removeprefix("spikes_"): value[0].reshape(value[0].shape[0], -1).sum(-1)
        for name, value in state.get("intermediates", {}).items()
    }
    return q, counts


def _loss_fn(
    params: Any,
    target_params: Any,
    batch: replay.Batch,
    weights: jax.Array | None,
    network: nn.Module,
    config: LearnerConfig,
) -> tuple[jax.Array, tuple[dict[str, jax.Array], jax.Array]]:
    apply = lambda p, x: network.apply({"params": p}, x)  # noqa: E731
    q_next_target = jax.lax.stop_gradient(apply(target_params, batch.next_obs))
    if losses.differentiates_next_online(config.loss):
        # C-DQN: one forward pass over s and s' together; the loss routes gradients through
        # Q(s', .), so the backward runs on both.
        both = apply(params, jnp.concatenate([batch.obs, batch.next_obs]))
        q, q_next_online = jnp.split(both, 2)
    elif losses.needs_next_online(config.loss):
        # Double DQN: Q(s', .) only picks the argmax, a separate forward outside the
        # differentiated one, so that the backward runs on s alone.
        q_next_online = jax.lax.stop_gradient(apply(jax.lax.stop_gradient(params), batch.next_obs))
        q = apply(params, batch.obs)
    else:
        q, q_next_online = apply(params, batch.obs), None
    loss, aux = losses.td_loss(
        config.loss,
        q,
        batch.action,
        batch.reward,
        batch.discount,
        q_next_target,
        q_next_online,
        gamma=config.discount,
        error=config.td_error,
        weights=weights,
        cdqn_double=config.cdqn_double_q,
    )
    metrics = {"loss": loss, "q_mean": jnp.mean(aux["q_taken"])}
    return loss, (metrics, jax.lax.stop_gradient(aux["td_error"]))


def priority_rule(config: LearnerConfig) -> replay.PriorityRule | None:
    """The replay's priority rule from the config; None for uniform replay."""
    if config.replay_sampling == "uniform":
        return None
    return replay.PriorityRule.from_config(config)


def importance_exponent_at(
    config: LearnerConfig, agent_steps: jax.Array, total_agent_steps: int
) -> jax.Array:
    """beta(t) = min(1, beta_0 + (1 - beta_0) t / n), n = ``importance_exponent_anneal_agent_steps``
    or, when that is None, the run's ``total_agent_steps`` (Schaul et al. 2016)."""
    span = config.importance_exponent_anneal_agent_steps or total_agent_steps
    beta0 = config.importance_exponent_start
    t = jnp.asarray(agent_steps, jnp.float32)
    return jnp.minimum(1.0, beta0 + (1.0 - beta0) * t / span)


def update(
    state: TrainState,
    replay_state: replay.ReplayState,
    importance_exponent: jax.Array = 1.0,
    *,
    network: nn.Module,
    optimizer: optax.GradientTransformation,
    config: LearnerConfig,
) -> tuple[TrainState, replay.ReplayState, dict[str, jax.Array]]:
    """One SGD update on a minibatch sampled from ``replay_state``.

    Uniform replay: the minibatch is drawn uniformly and the replay comes back unchanged.
    Prioritized replay (``config.replay_sampling == "proportional"``): the minibatch is drawn by
    priority, each sample's loss is weighted by its importance weight with exponent
    ``importance_exponent`` (beta, see :func:`importance_exponent_at`), and the sampled
    transitions' priorities are set from their TD errors.

    Returns the new state, the replay, and ``{"loss", "q_mean"}`` (``q_mean``: mean ``Q(s, a)``
    of the batch).
    """
    key, sample_key = jax.random.split(state.key)
    rule = priority_rule(config)
    if rule is None:
        slot, env = replay.sample_indices(replay_state, sample_key, config.batch_size)
        weights = None
    else:
        slot, env, weights = replay.sample_proportional(
            replay_state,
            sample_key,
            config.batch_size,
            importance_exponent,
            normalize_weights=config.importance_weights_normalized,
            max_weight=config.importance_weight_max,
        )
    batch = replay.gather(replay_state, slot, env, bootstrap_truncated=config.truncation_bootstraps)
    grads, (metrics, td_error) = jax.grad(_loss_fn, has_aux=True)(
        state.params, state.target_params, batch, weights, network, config
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state._replace(
        params=params, opt_state=opt_state, key=key, updates=state.updates + 1
    )
    if rule is not None:
        replay_state = replay.update_priorities(replay_state, slot, env, td_error, rule)
    return new_state, replay_state, metrics


def sync_target(state: TrainState) -> TrainState:
    """Hard target update: ``target_params <- params``."""
    return state._replace(target_params=state.params)
