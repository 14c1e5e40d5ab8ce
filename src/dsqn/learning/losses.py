"""Temporal-difference losses for DQN, Double DQN and C-DQN.

Every loss is a pure function of arrays: the caller runs the networks and passes in the
Q-values, so the same losses serve the ANN DQN, DSQN and any other Q-network.

Shared inputs, for a batch of ``B`` transitions ``(s, a, r, s')`` with ``A`` actions:

- ``q``: ``[B, A]`` float, online network Q(s, .); the gradient flows through it.
- ``action``: ``[B]`` int, the action a taken in s.
- ``reward``: ``[B]`` float, r.
- ``discount``: ``[B]`` float, d = 1 - terminated (0 where s' is terminal, 1 otherwise, also on
  truncation); gamma is applied inside, so the effective discount is gamma * d.
- ``q_next_target``: ``[B, A]`` float, target network Q_target(s', .); never differentiated.
- ``q_next_online``: ``[B, A]`` float, online network Q(s', .) (Double DQN and C-DQN).

Per-sample error functions ``err(x)`` (``error=``):

- ``"huber"``: smooth L1 with delta 1, as ``torch.nn.functional.smooth_l1_loss``:
  err(x) = 0.5 x^2 if |x| <= 1 else |x| - 0.5. Its gradient is clip(x, -1, 1).
- ``"mse"``: err(x) = 0.5 x^2, so that its gradient is x and it equals the Huber error for
  |x| <= 1. (``torch.nn.functional.mse_loss`` has no 0.5: twice this value, twice the gradient.)

Every loss is the mean of err over the batch, or with importance weights ``weights`` (``[B]``,
prioritized replay) the mean of weights * err. ``td_error`` in the aux outputs follows rlax's
sign convention: td_error = target - Q(s, a).
"""

from collections.abc import Callable, Mapping
from typing import Any, Literal

import chex
import jax
import jax.numpy as jnp
import rlax

ErrorKind = Literal["huber", "mse"]
LossKind = Literal["dqn", "double", "cdqn"]
LossOutput = tuple[jax.Array, dict[str, jax.Array]]

ERROR_KINDS: tuple[str, ...] = ("huber", "mse")


def elementwise_error(x: jax.Array, error: ErrorKind = "huber") -> jax.Array:
    """Per-element error of a TD residual ``x``.

    huber: err(x) = 0.5 x^2 if |x| <= 1 else |x| - 0.5   (smooth L1, delta 1)
    mse:   err(x) = 0.5 x^2
    """
    if error == "huber":
        return rlax.huber_loss(x, delta=1.0)
    if error == "mse":
        return rlax.l2_loss(x)
    raise ValueError(f"unknown error kind {error!r}; valid kinds: {', '.join(ERROR_KINDS)}")


def _check_inputs(
    q: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    q_next: list[jax.Array],
    error: str,
) -> None:
    if error not in ERROR_KINDS:
        raise ValueError(f"unknown error kind {error!r}; valid kinds: {', '.join(ERROR_KINDS)}")
    chex.assert_rank([q, action, reward, discount], [2, 1, 1, 1])
    chex.assert_type([q, action, reward, discount], [float, int, float, float])
    chex.assert_equal_shape([action, reward, discount])
    chex.assert_equal_shape_prefix([q, action], 1)
    chex.assert_equal_shape([q, *q_next])
    chex.assert_type(q_next, float)


def _mean_error(td_error: jax.Array, error: ErrorKind, weights: jax.Array | None) -> jax.Array:
    """(1/B) sum_b w_b err(td_b), with w_b = 1 when ``weights`` is None."""
    per_sample = elementwise_error(td_error, error)
    if weights is not None:
        chex.assert_equal_shape([td_error, weights])
        per_sample = weights * per_sample
    return jnp.mean(per_sample)


def _take(values: jax.Array, index: jax.Array) -> jax.Array:
    """``values[b, index[b]]`` for each b; the gradient reaches only the indexed entries."""
    return rlax.batched_index(values, index)


def dqn_loss(
    q: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    q_next_target: jax.Array,
    *,
    gamma: float = 0.99,
    error: ErrorKind = "huber",
    weights: jax.Array | None = None,
) -> LossOutput:
    """DQN loss (Mnih et al. 2015), the loss of the paper's DQN and DSQN.

    y_b    = r_b + gamma d_b max_a' Q_target(s'_b, a')          (no gradient)
    loss   = (1/B) sum_b w_b err(y_b - Q(s_b, a_b))          (w_b = 1 without ``weights``)

    Returns:
        ``(loss, aux)``: scalar loss; aux has ``td_error``, ``q_taken``, ``target``, each ``[B]``.
    """
    _check_inputs(q, action, reward, discount, [q_next_target], error)
    q_taken = _take(q, action)
    target = jax.lax.stop_gradient(reward + gamma * discount * jnp.max(q_next_target, axis=-1))
    td_error = target - q_taken
    loss = _mean_error(td_error, error, weights)
    return loss, {"td_error": td_error, "q_taken": q_taken, "target": target}


def double_dqn_loss(
    q: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    q_next_target: jax.Array,
    q_next_online: jax.Array,
    *,
    gamma: float = 0.99,
    error: ErrorKind = "huber",
    weights: jax.Array | None = None,
) -> LossOutput:
    """Double DQN loss (van Hasselt et al. 2016): the online network picks a', the target
    network evaluates it.

    a*_b   = argmax_a' Q(s'_b, a')                               (online network)
    y_b    = r_b + gamma d_b Q_target(s'_b, a*_b)                (no gradient)
    loss   = (1/B) sum_b w_b err(y_b - Q(s_b, a_b))          (w_b = 1 without ``weights``)

    Ties in the argmax go to the lowest action index.

    Returns:
        ``(loss, aux)``: scalar loss; aux has ``td_error``, ``q_taken``, ``target``,
        ``next_action`` (a*), each ``[B]``.
    """
    _check_inputs(q, action, reward, discount, [q_next_target, q_next_online], error)
    q_taken = _take(q, action)
    next_action = jnp.argmax(q_next_online, axis=-1)
    target = jax.lax.stop_gradient(reward + gamma * discount * _take(q_next_target, next_action))
    td_error = target - q_taken
    loss = _mean_error(td_error, error, weights)
    return loss, {
        "td_error": td_error,
        "q_taken": q_taken,
        "target": target,
        "next_action": next_action,
    }


def cdqn_loss(
    q: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    q_next_target: jax.Array,
    q_next_online: jax.Array,
    *,
    gamma: float = 0.99,
    error: ErrorKind = "huber",
    double: bool = False,
    weights: jax.Array | None = None,
) -> LossOutput:
    """Convergent DQN loss (C-DQN, Wang & Ueda, ICLR 2022).

    Per sample, the larger of the DQN loss and the mean squared Bellman error (MSBE, the
    residual-gradient loss, whose target is computed by the online network itself):

    a*_b     = argmax_a' Q_target(s'_b, a')    (double=False, the C-DQN paper and the default
                                                of its authors' code)
             = argmax_a' Q(s'_b, a')           (double=True, their ``--double`` option)
    y_tgt_b  = r_b + gamma d_b Q_target(s'_b, a*_b)                 (no gradient)
    y_self_b = r_b + gamma d_b Q(s'_b, a^_b),   a^_b = argmax_a' Q(s'_b, a')
                                                 (gradient flows through Q(s'_b, a^_b))
    L_DQN_b  = err(y_tgt_b - Q(s_b, a_b))
    L_MSBE_b = err(y_self_b - Q(s_b, a_b))
    loss     = (1/B) sum_b w_b max(L_DQN_b, L_MSBE_b)    (w_b = 1 without ``weights``)

    The residual term is selected only where |y_self - Q(s,a)| > |y_tgt - Q(s,a)|; ties go to
    the DQN term, as in the authors' code. Consequently the gradient reaches ``q_next_online``
    only on samples where the residual term is selected (and only at a^), never reaches
    ``q_next_target``, and always reaches ``q``. The greedy a^ is a single action (lowest index on
    ties), so the gradient is not split between tied actions.

    ``q`` and ``q_next_online`` must come from the same online parameters for the residual
    gradient to be the MSBE gradient.

    Returns:
        ``(loss, aux)``: scalar loss; aux, each ``[B]``: ``td_error``, ``target`` (of the
        selected term), ``q_taken``, ``target_dqn``, ``target_residual``, ``td_error_dqn``,
        ``td_error_residual``, ``residual_selected`` (bool).
    """
    _check_inputs(q, action, reward, discount, [q_next_target, q_next_online], error)
    q_taken = _take(q, action)
    effective_discount = gamma * discount

    target_action = jnp.argmax(q_next_online if double else q_next_target, axis=-1)
    target_dqn = jax.lax.stop_gradient(
        reward + effective_discount * _take(q_next_target, target_action)
    )
    greedy_online = jnp.argmax(q_next_online, axis=-1)
    target_residual = reward + effective_discount * _take(q_next_online, greedy_online)

    td_error_dqn = target_dqn - q_taken
    td_error_residual = target_residual - q_taken
    # err is increasing in |x| for both kinds, so comparing |td| selects the larger loss; the
    # strict inequality keeps the authors' tie-break.
    residual_selected = jnp.abs(td_error_residual) > jnp.abs(td_error_dqn)
    td_error = jnp.where(residual_selected, td_error_residual, td_error_dqn)
    loss = _mean_error(td_error, error, weights)
    return loss, {
        "td_error": jax.lax.stop_gradient(td_error),
        "q_taken": q_taken,
        "target": jax.lax.stop_gradient(jnp.where(residual_selected, target_residual, target_dqn)),
        "target_dqn": target_dqn,
        "target_residual": jax.lax.stop_gradient(target_residual),
        "td_error_dqn": jax.lax.stop_gradient(td_error_dqn),
        "td_error_residual": jax.lax.stop_gradient(td_error_residual),
        "residual_selected": residual_selected,
    }


LOSSES: Mapping[str, Callable[..., LossOutput]] = {
    "dqn": dqn_loss,
    "double": double_dqn_loss,
    "cdqn": cdqn_loss,
}


def get_loss(kind: str) -> Callable[..., LossOutput]:
    """The loss function registered under ``kind`` (one of ``LOSSES``)."""
    try:
        return LOSSES[kind]
    except KeyError:
        raise ValueError(f"unknown TD loss {kind!r}; valid losses: {', '.join(LOSSES)}") from None


def needs_next_online(kind: str) -> bool:
    """Whether loss ``kind`` reads the online network's Q(s', .), so callers can skip that
    forward pass for plain DQN (costly for a T-step spiking network)."""
    get_loss(kind)
    return kind != "dqn"


def differentiates_next_online(kind: str) -> bool:
    """Whether loss ``kind``'s gradient flows through the online Q(s', .): C-DQN's residual
    term does; Double DQN only takes its argmax (no gradient), so callers may compute it
    outside the differentiated forward pass."""
    get_loss(kind)
    return kind == "cdqn"


def td_loss(
    kind: str,
    q: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    q_next_target: jax.Array,
    q_next_online: jax.Array | None = None,
    *,
    gamma: float = 0.99,
    error: ErrorKind = "huber",
    weights: jax.Array | None = None,
    cdqn_double: bool = False,
) -> LossOutput:
    """Dispatch to the loss named ``kind`` ("dqn", "double" or "cdqn") with one signature.

    ``q_next_online`` is required by "double" and "cdqn" and ignored by "dqn"; ``weights`` are
    per-sample importance weights (all losses); ``cdqn_double`` is C-DQN's ``double`` option and
    only valid with "cdqn".
    """
    loss_fn = get_loss(kind)
    kwargs: dict[str, Any] = {"gamma": gamma, "error": error, "weights": weights}
    if cdqn_double:
        if kind != "cdqn":
            raise ValueError(f"cdqn_double applies to the 'cdqn' loss only, not to {kind!r}")
        kwargs["double"] = True
    if not needs_next_online(kind):
        return loss_fn(q, action, reward, discount, q_next_target, **kwargs)
    if q_next_online is None:
        raise ValueError(f"TD loss {kind!r} needs q_next_online, the online Q(s', .); got None")
    return loss_fn(q, action, reward, discount, q_next_target, q_next_online, **kwargs)
