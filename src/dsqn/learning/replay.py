"""Frame-deduplicated circular replay: pure functions over a pytree state.

The functions are written for ONE training seed that owns E envs; training vmaps them over a
leading seed axis. Everything is jittable and usable inside `lax.scan`. Capacity C (transitions of
this seed) is split evenly into L = C / E slots per env; each env's slots form a ring, and all envs
write the slot `head` at the same time.

What a slot holds. Slot i of env e records one step t of that env:

- the observation the agent ACTED ON, obs_t (see frame deduplication below),
- the action a_t, and what the env returned for that step: reward r_t, terminated_t,
  truncated_t (these describe obs_{t+1}, which slot i+1 holds),
- `reset_step_t`: obs_t was itself a done observation, so this step was envpool's auto-reset
  (action ignored, reward 0; see `dsqn.envs.stepping`).

The transition starting at slot i is (obs_t, a_t, r_t, discount_t = 1 - terminated_t, obs_{t+1}).
Truncation keeps discount 1 (obs_{t+1} is the truncated episode's last observation, to bootstrap
from) unless `gather` is asked to end the bootstrap there too; gamma is applied by the loss.
Slot i starts a valid transition iff

- slot i + 1 has been written (the newest slot has no next observation: never cross the head),
- `reset_step_t` is False (an auto-reset step is never a transition; `mark_interrupted` sets the
  same flag on the newest slot when a run resumes with restarted envs), and
- once the ring is full, slot i is not one of the `stack - 1` oldest slots of the ring, whose
  frame chain (below) could reach the slot the head overwrote last.

Frame deduplication (uint8 image observations [stack, H, W], e.g. Atari [4, 84, 84]): a slot
stores only the newest frame obs_t[-1], plus a 1-bit `continues` flag set at add time iff
obs_t[:-1] equals the previous slot's rebuilt stack shifted by one (obs_{t-1}[1:]). Rebuilding
obs_t walks back one slot per stack position while the flag says the stack continued, and repeats
the frame where it did not. This reproduces exactly (bit for bit)

- a stack that shifts by one frame per step (every normal step, and under episodic life the
  reset step after a life loss, where envpool carries the stack on), and
- a stack filled with copies of one frame (envpool's real reset),

independently of which of these envpool does where. An observation that is neither cannot be
stored and is counted in `unrepresentable` (tests assert it stays 0). The state keeps the newest
rebuilt stack of each env (`last_stack`) so that add compares without gathering.

Vector observations (anything that is not a uint8 [stack, H, W] image, e.g. float32 [D]) are
stored whole, one per slot, with the same API.

Memory per stored Atari transition: 7056 B frame + 1 B action (uint8; int32 above 256 actions)
+ 4 B reward + 1 B flags = 7062 B (+ 4 B priority with prioritized replay, + 4 B more when the
maximum priority is taken over the slots' last updates).

Proportional prioritized replay (Schaul et al. 2016, "Prioritized Experience Replay", section
3.3; optional, :class:`PriorityRule`): every slot holds the sampling mass m_i = p_i^alpha of the
transition it starts, with p_i = |delta_i| + epsilon from the TD error of its last update, and a
new transition gets the current maximum mass. A transition is drawn with probability
P(i) = m_i / sum_j m_j over the valid transitions (stratified: the b-th of B draws falls in the
b-th of B equal parts of the total mass, as Schaul et al. appendix B.2.1 and the OpenAI Baselines
and Wang & Ueda codes do), and weighted by w_i = (N P(i))^-beta, N valid transitions, optionally
divided by the largest possible weight (that of the smallest mass) and capped. The draw is exact
up to float32 rounding: a block of slots is drawn by its mass, then a slot within it, so that no
cumulative sum spans more than about sqrt(capacity) masses.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from dsqn.config.schema import PRIORITY_FIELD_PREFIX, LearnerConfig

TERMINATED = 1
TRUNCATED = 2
RESET_STEP = 4
CONTINUES = 8

MAX_TRACKING: tuple[str, ...] = ("running", "last_updated")


def _fields_of_the_config(cls: type) -> type:
    """``cls`` as a frozen dataclass whose fields are the run config's priority settings: a field
    ``<name>`` for each :class:`dsqn.config.LearnerConfig` field ``priority_<name>``, with its
    type and default."""
    annotations = dict(cls.__dict__.get("__annotations__", {}))
    for field in dataclasses.fields(LearnerConfig):
        if field.name.startswith(PRIORITY_FIELD_PREFIX):
            name = field.name.removeprefix(PRIORITY_FIELD_PREFIX)
            annotations[name] = field.type
            setattr(cls, name, field.default)
    cls.__annotations__ = annotations
    return dataclasses.dataclass(frozen=True)(cls)


@_fields_of_the_config
class PriorityRule:
    """How a prioritized replay turns TD errors into sampling masses (static settings; hashable,
    so a static argument of ``jax.jit``).

    Its fields are the run config's priority settings, defined once in
    :class:`dsqn.config.LearnerConfig`: field ``<name>`` is the config's ``priority_<name>``, with
    its type and default (documented there with their sources); :meth:`from_config` reads them
    from a learner config.

    Attributes:
      exponent: alpha, m = p^alpha.
      epsilon: p = |delta| + epsilon, so that no transition gets probability 0.
      initial_max: the priority p (before the exponent) of new transitions until the first
        update.
      max_tracking: the priority of new transitions: ``"running"``, the largest priority ever
        assigned (and ``initial_max``; OpenAI Baselines), or ``"last_updated"``, the largest of
        the slots' last assigned priorities, overwritten slots included (``initial_max`` only
        until the first update; Wang & Ueda's code).
      floor_of_mean: if set, an updated mass is raised to at least this fraction of the mean mass
        of the valid transitions before the update.
      predecessor_fraction: if > 0, each update also raises the mass of the transition just
        before the sampled one (same env and episode) to at least (fraction * p)^alpha, floored
        likewise.
    """

    @classmethod
    def from_config(cls, learner: LearnerConfig) -> PriorityRule:
        """The rule of ``learner``: each field from its ``priority_<field>``."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: getattr(learner, PRIORITY_FIELD_PREFIX + name) for name in names})


class ReplayState(NamedTuple):
    """Replay of one training seed with E envs and L slots per env (a pytree).

    Attributes:
      obs: stacked images: uint8 [L, E, H, W], the newest frame of the acted-on observation;
        vector observations: [L, E, *obs_shape], the whole observation.
      action: uint8 [L, E] (int32 when more than 256 actions), the action taken.
      reward: float32 [L, E], the reward the step returned.
      flags: uint8 [L, E], bits TERMINATED | TRUNCATED | RESET_STEP | CONTINUES.
      head: int32 [], the slot the next add writes.
      filled: int32 [], slots written per env, saturating at L.
      last_stack: uint8 [E, stack, H, W], the rebuilt stack of the newest slot of each env
        (stacked images only; None for vector observations).
      unrepresentable: int32 [], observations that were neither a one-frame shift of the previous
        stack nor copies of one frame (their rebuilt stack differs from what the agent saw).
      priority: float32 [L, E], the sampling mass p^alpha of the transition each slot starts
        (prioritized replays only; else None).
      priority_max: float32 [], the mass a new transition gets (prioritized only).
      priority_last: float32 [L, E], the mass each slot's last priority update computed, before
        any floor (only with ``max_tracking="last_updated"``).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    flags: jax.Array
    head: jax.Array
    filled: jax.Array
    last_stack: jax.Array | None
    unrepresentable: jax.Array
    priority: jax.Array | None = None
    priority_max: jax.Array | None = None
    priority_last: jax.Array | None = None


class Batch(NamedTuple):
    """A batch of B transitions.

    Attributes:
      obs: [B, ...] the observation acted on, exactly as the agent saw it.
      action: int32 [B].
      reward: float32 [B].
      discount: float32 [B], 1 - terminated (truncation keeps 1 unless `gather` is told
        otherwise; gamma is not applied).
      next_obs: [B, ...] the observation the step returned, exactly as the agent saw it.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    discount: jax.Array
    next_obs: jax.Array


def _is_stacked_image(obs_example: np.ndarray | jax.Array) -> bool:
    return obs_example.dtype == np.uint8 and obs_example.ndim == 3


def init(
    capacity: int,
    num_envs: int,
    obs_example: np.ndarray | jax.Array,
    *,
    num_actions: int = 256,
    priority_rule: PriorityRule | None = None,
) -> ReplayState:
    """An empty replay.

    Args:
      capacity: transitions this training seed stores, a multiple of `num_envs`.
      num_envs: envs E of this training seed.
      obs_example: one env's observation (only shape and dtype are used): uint8 [stack, H, W]
        images are frame-deduplicated; anything else is stored whole.
      num_actions: the number of discrete actions; up to 256 they are stored as uint8.
      priority_rule: a prioritized replay with this rule (see :func:`sample_proportional`), or
        None for uniform sampling only.

    Returns:
      The state; `jax.eval_shape(lambda: init(...))` sizes it without allocating.
    """
    if num_envs <= 0:
        raise ValueError(f"num_envs must be positive, got {num_envs}")
    if capacity < num_envs or capacity % num_envs:
        raise ValueError(
            f"capacity={capacity} must be a positive multiple of num_envs={num_envs} "
            "(it is split evenly over the envs)"
        )
    slots = capacity // num_envs
    stacked = _is_stacked_image(obs_example)
    stack = obs_example.shape[0] if stacked else 1
    if slots < stack + 1:
        raise ValueError(
            f"capacity={capacity} gives {slots} slots per env for num_envs={num_envs}; "
            f"need at least {stack + 1} (stack {stack} + 1) per env, i.e. capacity >= "
            f"{(stack + 1) * num_envs}"
        )
    if num_actions <= 0:
        raise ValueError(f"num_actions must be positive, got {num_actions}")
    if priority_rule is not None:
        _check_rule(priority_rule)
    if stacked:
        obs = jnp.zeros((slots, num_envs, *obs_example.shape[1:]), jnp.uint8)
        last_stack = jnp.zeros((num_envs, *obs_example.shape), jnp.uint8)
    else:
        obs = jnp.zeros((slots, num_envs, *obs_example.shape), obs_example.dtype)
        last_stack = None
    action_dtype = jnp.uint8 if num_actions <= 256 else jnp.int32
    return ReplayState(
        obs=obs,
        action=jnp.zeros((slots, num_envs), action_dtype),
        reward=jnp.zeros((slots, num_envs), jnp.float32),
        flags=jnp.zeros((slots, num_envs), jnp.uint8),
        # Separate buffers, so that a jitted step may donate the whole state.
        head=jnp.zeros((), jnp.int32),
        filled=jnp.zeros((), jnp.int32),
        last_stack=last_stack,
        unrepresentable=jnp.zeros((), jnp.int32),
        **_init_priorities(priority_rule, (slots, num_envs)),
    )


def _check_rule(rule: PriorityRule) -> None:
    if not rule.exponent >= 0:
        raise ValueError(f"priority exponent must be >= 0, got {rule.exponent}")
    if not rule.epsilon > 0:
        raise ValueError(f"priority epsilon must be > 0, got {rule.epsilon}")
    if not rule.initial_max > 0:
        raise ValueError(f"initial maximum priority must be > 0, got {rule.initial_max}")
    if rule.max_tracking not in MAX_TRACKING:
        raise ValueError(
            f"unknown max_tracking {rule.max_tracking!r}; valid: {', '.join(MAX_TRACKING)}"
        )
    if rule.floor_of_mean is not None and not 0 < rule.floor_of_mean < 1:
        raise ValueError(f"floor_of_mean must lie in (0, 1) or be None, got {rule.floor_of_mean}")
    if not rule.predecessor_fraction >= 0:
        raise ValueError(f"predecessor_fraction must be >= 0, got {rule.predecessor_fraction}")


def _init_priorities(rule: PriorityRule | None, shape: tuple[int, int]) -> dict[str, jax.Array]:
    if rule is None:
        return {}
    out = {
        "priority": jnp.zeros(shape, jnp.float32),
        "priority_max": jnp.asarray(rule.initial_max**rule.exponent, jnp.float32),
    }
    if rule.max_tracking == "last_updated":
        out["priority_last"] = jnp.zeros(shape, jnp.float32)
    return out


def _slots(state: ReplayState) -> int:
    return state.flags.shape[0]


def _stack(state: ReplayState) -> int:
    return 1 if state.last_stack is None else state.last_stack.shape[1]


def add(
    state: ReplayState,
    obs: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    reset_step: jax.Array,
) -> ReplayState:
    """Record one step of each of the seed's E envs.

    Args:
      state: the replay.
      obs: [E, ...] the observation each env's agent acted on at step t.
      action: [E] int, the action taken (< num_actions of `init`).
      reward: [E] float, the reward the step returned.
      terminated: [E] bool, the step ended the episode (the next observation is terminal).
      truncated: [E] bool, the step hit the episode cap.
      reset_step: [E] bool, `obs` was a done observation, so this step was envpool's auto-reset
        (its action was ignored): the slot will never start a transition.

    Returns:
      The replay with slot `head` written and `head` advanced.
    """
    num_envs = state.flags.shape[1]
    chex.assert_shape([action, reward, terminated, truncated, reset_step], (num_envs,))
    obs_shape = state.obs.shape[2:] if state.last_stack is None else state.last_stack.shape[1:]
    chex.assert_shape(obs, (num_envs, *obs_shape))
    head = state.head
    flags = (
        terminated.astype(jnp.uint8) * TERMINATED
        + truncated.astype(jnp.uint8) * TRUNCATED
        + reset_step.astype(jnp.uint8) * RESET_STEP
    )
    last_stack = state.last_stack
    unrepresentable = state.unrepresentable
    if last_stack is None:
        stored = obs
    else:
        stored = obs[:, -1]
        image_axes = tuple(range(1, obs.ndim))
        continues = (state.filled > 0) & jnp.all(obs[:, :-1] == last_stack[:, 1:], axis=image_axes)
        copies = jnp.all(obs[:, :-1] == obs[:, -1:], axis=image_axes)
        represented = continues | copies
        flags = flags + continues.astype(jnp.uint8) * CONTINUES
        unrepresentable = unrepresentable + jnp.sum(~represented, dtype=jnp.int32)
        # What rebuilding this slot will give: obs itself when represented, else frame copies.
        last_stack = jnp.where(
            represented[:, None, None, None], obs, jnp.broadcast_to(obs[:, -1:], obs.shape)
        )
    priority = state.priority
    if priority is not None:
        # A new transition gets the maximum mass (Schaul et al. 2016, Algorithm 1, line 6).
        priority = priority.at[head].set(state.priority_max)
    return state._replace(
        obs=state.obs.at[head].set(stored.astype(state.obs.dtype)),
        action=state.action.at[head].set(action.astype(state.action.dtype)),
        reward=state.reward.at[head].set(reward.astype(jnp.float32)),
        flags=state.flags.at[head].set(flags),
        head=(head + 1) % _slots(state),
        filled=jnp.minimum(state.filled + 1, _slots(state)),
        last_stack=last_stack,
        unrepresentable=unrepresentable,
        priority=priority,
    )


def valid_mask(state: ReplayState) -> jax.Array:
    """bool [L, E]: slot (i, e) starts a valid transition (see the module docstring)."""
    slots = _slots(state)
    oldest = (state.head - state.filled) % slots
    age = (jnp.arange(slots, dtype=jnp.int32) - oldest) % slots  # 0 = oldest written slot
    has_next = age < state.filled - 1
    # Once the ring is full, the frame chains of the `stack - 1` oldest slots may reach
    # overwritten data.
    lead = jnp.where(state.filled == slots, _stack(state) - 1, 0)
    positional = has_next & (age >= lead)
    return positional[:, None] & ((state.flags & RESET_STEP) == 0)


def size(state: ReplayState) -> jax.Array:
    """int32 []: the number of valid (sampleable) transitions."""
    return jnp.sum(valid_mask(state), dtype=jnp.int32)


def can_sample(state: ReplayState, batch_size: int) -> jax.Array:
    """bool []: at least `batch_size` valid transitions are stored."""
    return size(state) >= batch_size


def _rebuild(state: ReplayState, slot: jax.Array, env: jax.Array) -> jax.Array:
    """Observations [B, ...] of slots `slot` [B] of envs `env` [B], exactly as acted on."""
    if state.last_stack is None:
        return state.obs[slot, env]
    slots = _slots(state)
    chain = [slot]
    for _ in range(_stack(state) - 1):
        j = chain[0]
        continued = (state.flags[j, env] & CONTINUES) != 0
        chain.insert(0, jnp.where(continued, (j - 1) % slots, j))
    return state.obs[jnp.stack(chain, axis=1), env[:, None]]


def gather(
    state: ReplayState, slot: jax.Array, env: jax.Array, *, bootstrap_truncated: bool = True
) -> Batch:
    """The transitions starting at slots `slot` [B] of envs `env` [B] (int32).

    Only meaningful where `valid_mask(state)[slot, env]` holds. The discount is 1 - terminated;
    with ``bootstrap_truncated=False`` a truncation ends the bootstrap too (discount 0), as a
    time limit reported as ``done`` does in the OpenAI Baselines wrappers.
    """
    chex.assert_equal_shape([slot, env])
    flags = state.flags[slot, env]
    ends = TERMINATED if bootstrap_truncated else TERMINATED | TRUNCATED
    return Batch(
        obs=_rebuild(state, slot, env),
        action=state.action[slot, env].astype(jnp.int32),
        reward=state.reward[slot, env],
        discount=1.0 - ((flags & ends) != 0).astype(jnp.float32),
        next_obs=_rebuild(state, (slot + 1) % _slots(state), env),
    )


def _check_batch_size(state: ReplayState, batch_size: int) -> None:
    capacity = state.flags.size
    if not 0 < batch_size <= capacity:
        raise ValueError(
            f"batch_size={batch_size} must lie in [1, capacity={capacity}]: this replay can never "
            "hold that many transitions"
        )


def sample_indices(
    state: ReplayState, key: jax.Array, batch_size: int
) -> tuple[jax.Array, jax.Array]:
    """Slots and envs (int32 [B] each) of B valid transitions drawn uniformly with replacement.

    Exactly uniform: a uniform rank among the valid transitions is mapped to its (slot, env)
    through the cumulative count of the validity mask. Requires `can_sample(state, batch_size)`;
    inside jit an empty replay cannot raise and yields arbitrary indices.
    """
    _check_batch_size(state, batch_size)
    capacity = state.flags.size
    num_envs = state.flags.shape[1]
    counts = jnp.cumsum(valid_mask(state).reshape(-1), dtype=jnp.int32)
    rank = jax.random.randint(key, (batch_size,), 0, jnp.maximum(counts[-1], 1))
    flat = jnp.minimum(jnp.searchsorted(counts, rank, side="right"), capacity - 1)
    return (flat // num_envs).astype(jnp.int32), (flat % num_envs).astype(jnp.int32)


def sample(state: ReplayState, key: jax.Array, batch_size: int) -> Batch:
    """`batch_size` transitions drawn uniformly, with replacement, from all valid ones.

    Equals `gather(state, *sample_indices(state, key, batch_size))`; requires `can_sample`.
    """
    return gather(state, *sample_indices(state, key, batch_size))


def _searchsorted_positive(cumulative: jax.Array, mass: jax.Array, u: jax.Array) -> jax.Array:
    """Index i of the last axis with C_{i-1} <= u < C_i, where C is the running sum of ``mass``
    (``cumulative``), for ``u`` in [0, C_last). Only an index of positive mass can come out:
    C is made flat exactly across zero masses (whatever the rounding of the sum), and ``u`` is
    kept below C_last."""
    flat = jax.lax.cummax(jnp.where(mass > 0, cumulative, 0.0), axis=cumulative.ndim - 1)
    total = flat[..., -1:]
    u = jnp.minimum(u, jnp.nextafter(total, jnp.zeros_like(total)))
    search = jnp.vectorize(
        lambda c, v: jnp.searchsorted(c, v, side="right"), signature="(n),(m)->(m)"
    )
    return jnp.minimum(search(flat, u), mass.shape[-1] - 1)


def proportional_draw(mass: jax.Array, key: jax.Array, batch_size: int) -> jax.Array:
    """int32 [B]: indices drawn with replacement with probability ``mass[i] / sum(mass)``,
    stratified (draw b lies in the b-th of B equal parts of the total mass).

    Args:
      mass: float32 [N] >= 0, not all 0 (else the indices are arbitrary).
      key: PRNG key.
      batch_size: B.

    A block of K ~ sqrt(N) consecutive masses is drawn by the block's sum (stratified), then an
    index within the block by its mass (a fresh uniform), so that every running sum spans at most
    max(K, N / K) terms: float32 rounding then perturbs a probability by about that many ulps
    (~1e-4 relative at N = 1M) rather than by N ulps. An index of mass 0 is never drawn.
    """
    (n,) = mass.shape
    block = max(1, math.isqrt(n - 1) + 1)
    blocks = -(-n // block)
    padded = jnp.pad(mass, (0, blocks * block - n)).reshape(blocks, block)
    block_mass = jnp.sum(padded, axis=1)
    block_key, within_key = jax.random.split(key)
    strata = (jnp.arange(batch_size) + jax.random.uniform(block_key, (batch_size,))) / batch_size
    total = jnp.sum(block_mass)
    chosen = _searchsorted_positive(jnp.cumsum(block_mass), block_mass, strata * total)
    rows = padded[chosen]  # [B, K]
    row_total = jnp.sum(rows, axis=1, keepdims=True)
    u = jax.random.uniform(within_key, (batch_size, 1)) * row_total
    offset = _searchsorted_positive(jnp.cumsum(rows, axis=1), rows, u)[:, 0]
    return (chosen * block + offset).astype(jnp.int32)


def importance_weights(
    probability: jax.Array,
    count: jax.Array,
    beta: jax.Array,
    *,
    min_probability: jax.Array | None = None,
    max_weight: float | None = None,
) -> jax.Array:
    """Importance-sampling weights of prioritized draws (Schaul et al. 2016, section 3.4).

    w_i = (N P(i))^-beta;  with ``min_probability``: w_i / (N P_min)^-beta (so w <= 1, the
    paper's normalisation by the largest weight); with ``max_weight``: min(w_i, max_weight).

    Args:
      probability: float32 [B], P(i) of each draw.
      count: N, the number of transitions drawn from.
      beta: the exponent (0: no correction, 1: full correction).
    """
    weights = (count * probability) ** -beta
    if min_probability is not None:
        weights = weights / (count * min_probability) ** -beta
    if max_weight is not None:
        weights = jnp.minimum(weights, max_weight)
    return weights.astype(jnp.float32)


def sample_proportional(
    state: ReplayState,
    key: jax.Array,
    batch_size: int,
    beta: jax.Array,
    *,
    normalize_weights: bool = True,
    max_weight: float | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Slots, envs (int32 [B]) and importance weights (float32 [B]) of B valid transitions
    drawn with replacement with probability proportional to their mass (module docstring).

    ``normalize_weights`` divides by the largest weight any valid transition could get;
    ``max_weight`` caps the weights (see :func:`importance_weights`). Requires a prioritized
    replay with ``can_sample(state, batch_size)``.
    """
    if state.priority is None:
        raise ValueError("sample_proportional needs a prioritized replay (init with priority_rule)")
    _check_batch_size(state, batch_size)
    num_envs = state.flags.shape[1]
    valid = valid_mask(state)
    mass = jnp.where(valid, state.priority, 0.0).reshape(-1)
    flat = proportional_draw(mass, key, batch_size)
    total = jnp.sum(mass)
    count = jnp.sum(valid, dtype=jnp.int32).astype(jnp.float32)
    min_probability = None
    if normalize_weights:
        min_probability = jnp.min(jnp.where(mass > 0, mass, jnp.inf)) / total
    weights = importance_weights(
        mass[flat] / total,
        count,
        beta,
        min_probability=min_probability,
        max_weight=max_weight,
    )
    return (flat // num_envs).astype(jnp.int32), (flat % num_envs).astype(jnp.int32), weights


def update_priorities(
    state: ReplayState,
    slot: jax.Array,
    env: jax.Array,
    td_error: jax.Array,
    rule: PriorityRule,
) -> ReplayState:
    """Sets the masses of the sampled transitions from their TD errors (``[B]`` each).

    m_i = max((|delta_i| + epsilon)^alpha, floor),  floor = ``floor_of_mean`` x the mean mass of
    the valid transitions before the update (0 without a floor); the maximum mass for new
    transitions follows ``rule.max_tracking``; with ``predecessor_fraction`` f > 0, the
    transition before each sampled one (same env) is raised to at least
    max((f (|delta_i| + epsilon))^alpha, floor), unless the sampled one starts an episode. A
    transition drawn twice in the batch gets the same TD error both times, so the order of the
    writes is moot.
    """
    if state.priority is None:
        raise ValueError("update_priorities needs a prioritized replay (init with priority_rule)")
    chex.assert_equal_shape([slot, env, td_error])
    magnitude = jnp.abs(td_error).astype(jnp.float32) + rule.epsilon
    mass = magnitude**rule.exponent
    floor = jnp.zeros((), jnp.float32)
    if rule.floor_of_mean is not None:
        valid = valid_mask(state)
        count = jnp.maximum(jnp.sum(valid, dtype=jnp.int32), 1)
        floor = rule.floor_of_mean * jnp.sum(jnp.where(valid, state.priority, 0.0)) / count
    priority = state.priority.at[slot, env].set(jnp.maximum(mass, floor))
    priority_last = state.priority_last
    if rule.max_tracking == "running":
        priority_max = jnp.maximum(state.priority_max, jnp.max(mass))
    else:
        priority_last = priority_last.at[slot, env].set(mass)
        priority_max = jnp.max(priority_last)
    if rule.predecessor_fraction > 0:
        before = (slot - 1) % _slots(state)
        # No transition of the same episode precedes one whose predecessor slot ended an
        # episode or is an auto-reset step.
        ended = (state.flags[before, env] & (TERMINATED | TRUNCATED | RESET_STEP)) != 0
        raised = jnp.maximum((rule.predecessor_fraction * magnitude) ** rule.exponent, floor)
        priority = priority.at[before, env].max(jnp.where(ended, 0.0, raised))
    return state._replace(priority=priority, priority_max=priority_max, priority_last=priority_last)


def mark_interrupted(state: ReplayState) -> ReplayState:
    """Cut every env's stream at the newest slot (used when a run resumes).

    The newest slot's step was taken before the run stopped, but its next observation was never
    stored, and the envs restart with new games: the next add must not complete a transition from
    it. Flagging it as a reset step removes it from the valid transitions (its frames still serve
    the stacks of older slots).
    """
    newest = (state.head - 1) % _slots(state)
    flags = state.flags.at[newest].set(
        jnp.where(state.filled > 0, state.flags[newest] | RESET_STEP, state.flags[newest])
    )
    return state._replace(flags=flags)
