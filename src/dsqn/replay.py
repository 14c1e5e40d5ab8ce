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
from); gamma is applied by the loss. Slot i starts a valid transition iff

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
+ 4 B reward + 1 B flags = 7062 B.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

TERMINATED = 1
TRUNCATED = 2
RESET_STEP = 4
CONTINUES = 8


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
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    flags: jax.Array
    head: jax.Array
    filled: jax.Array
    last_stack: jax.Array | None
    unrepresentable: jax.Array


class Batch(NamedTuple):
    """A batch of B transitions.

    Attributes:
      obs: [B, ...] the observation acted on, exactly as the agent saw it.
      action: int32 [B].
      reward: float32 [B].
      discount: float32 [B], 1 - terminated (truncation keeps 1; gamma is not applied).
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
    capacity: int, num_envs: int, obs_example: np.ndarray | jax.Array, *, num_actions: int = 256
) -> ReplayState:
    """An empty replay.

    Args:
      capacity: transitions this training seed stores, a multiple of `num_envs`.
      num_envs: envs E of this training seed.
      obs_example: one env's observation (only shape and dtype are used): uint8 [stack, H, W]
        images are frame-deduplicated; anything else is stored whole.
      num_actions: the number of discrete actions; up to 256 they are stored as uint8.

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
    )


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
    return ReplayState(
        obs=state.obs.at[head].set(stored.astype(state.obs.dtype)),
        action=state.action.at[head].set(action.astype(state.action.dtype)),
        reward=state.reward.at[head].set(reward.astype(jnp.float32)),
        flags=state.flags.at[head].set(flags),
        head=(head + 1) % _slots(state),
        filled=jnp.minimum(state.filled + 1, _slots(state)),
        last_stack=last_stack,
        unrepresentable=unrepresentable,
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


def gather(state: ReplayState, slot: jax.Array, env: jax.Array) -> Batch:
    """The transitions starting at slots `slot` [B] of envs `env` [B] (int32).

    Only meaningful where `valid_mask(state)[slot, env]` holds.
    """
    chex.assert_equal_shape([slot, env])
    flags = state.flags[slot, env]
    return Batch(
        obs=_rebuild(state, slot, env),
        action=state.action[slot, env].astype(jnp.int32),
        reward=state.reward[slot, env],
        discount=1.0 - ((flags & TERMINATED) != 0).astype(jnp.float32),
        next_obs=_rebuild(state, (slot + 1) % _slots(state), env),
    )


def sample_indices(
    state: ReplayState, key: jax.Array, batch_size: int
) -> tuple[jax.Array, jax.Array]:
    """Slots and envs (int32 [B] each) of B valid transitions drawn uniformly with replacement.

    Exactly uniform: a uniform rank among the valid transitions is mapped to its (slot, env)
    through the cumulative count of the validity mask. Requires `can_sample(state, batch_size)`;
    inside jit an empty replay cannot raise and yields arbitrary indices.
    """
    capacity = state.flags.size
    if not 0 < batch_size <= capacity:
        raise ValueError(
            f"batch_size={batch_size} must lie in [1, capacity={capacity}]: this replay can never "
            "hold that many transitions"
        )
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
