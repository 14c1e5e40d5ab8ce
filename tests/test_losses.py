"""Tests for dsqn.learning.losses: hand-computed batches, rlax cross-checks, gradient routing,
jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from dsqn.learning import losses

GAMMA = 0.9

# One small batch used throughout; the expected values below are worked out by hand from it.
Q = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0], [2.0, 2.0, 1.0], [0.0, 4.0, -2.0]], np.float32)
ACTION = np.array([2, 0, 1, 1], np.int32)
REWARD = np.array([1.0, 0.0, -1.0, 2.0], np.float32)
DISCOUNT = np.array([1.0, 1.0, 0.0, 1.0], np.float32)  # sample 2 ends the episode
Q_NEXT_TARGET = np.array(
    [[0.0, 1.0, 2.0], [3.0, 0.5, 1.0], [5.0, 5.0, 5.0], [1.0, 0.0, 2.0]], np.float32
)
Q_NEXT_ONLINE = np.array(
    [[2.0, 0.0, 1.0], [0.0, 1.0, 4.0], [0.0, 9.0, 0.0], [0.0, 3.0, 1.0]], np.float32
)
Q_TAKEN = [3.0, 0.5, 2.0, 4.0]

# DQN: y = r + 0.9 d max Q_target(s') = [1 + 0.9*2, 0 + 0.9*3, -1 + 0, 2 + 0.9*2]
DQN_TARGET = [2.8, 2.7, -1.0, 3.8]
DQN_TD = [-0.2, 2.2, -3.0, -0.2]
DQN_LOSS = {"huber": (0.02 + 1.7 + 2.5 + 0.02) / 4, "mse": (0.02 + 2.42 + 4.5 + 0.02) / 4}

# Double: a* = argmax Q_online(s') = [0, 2, 1, 1]; Q_target(s', a*) = [0, 1, 5, 0]
DOUBLE_NEXT_ACTION = [0, 2, 1, 1]
DOUBLE_TARGET = [1.0, 0.9, -1.0, 2.0]
DOUBLE_TD = [-2.0, 0.4, -3.0, -2.0]
DOUBLE_LOSS = {"huber": (1.5 + 0.08 + 2.5 + 1.5) / 4, "mse": (2.0 + 0.08 + 4.5 + 2.0) / 4}

# C-DQN residual target: y_self = r + 0.9 d max Q_online(s') = [1 + 1.8, 0 + 3.6, -1 + 0, 2 + 2.7]
CDQN_TARGET_RESIDUAL = [2.8, 3.6, -1.0, 4.7]
CDQN_TD_RESIDUAL = [-0.2, 3.1, -3.0, 0.7]
# |td_self| > |td_dqn|: sample 0 is an exact tie and sample 2 is terminal (tie): DQN term wins.
CDQN_SELECTED = [False, True, False, True]
CDQN_TD = [-0.2, 3.1, -3.0, 0.7]
CDQN_LOSS = {"huber": (0.02 + 2.6 + 2.5 + 0.245) / 4, "mse": (0.02 + 4.805 + 4.5 + 0.245) / 4}

BATCH = (Q, ACTION, REWARD, DISCOUNT, Q_NEXT_TARGET)


def close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-6, atol=1e-6)


def test_elementwise_error_huber_and_mse() -> None:
    x = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    close(losses.elementwise_error(x, "huber"), [2.5, 0.5, 0.125, 0.0, 0.125, 0.5, 2.5])
    close(losses.elementwise_error(x, "mse"), [4.5, 0.5, 0.125, 0.0, 0.125, 0.5, 4.5])
    huber_grad = jax.vmap(jax.grad(functools.partial(losses.elementwise_error, error="huber")))
    close(huber_grad(x), [-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0])


@pytest.mark.parametrize("error", ["huber", "mse"])
def test_dqn_loss_hand_computed(error: str) -> None:
    loss, aux = losses.dqn_loss(*BATCH, gamma=GAMMA, error=error)
    close(loss, DQN_LOSS[error])
    close(aux["q_taken"], Q_TAKEN)
    close(aux["target"], DQN_TARGET)
    close(aux["td_error"], DQN_TD)
    rlax_td = jax.vmap(rlax.q_learning)(Q, ACTION, REWARD, GAMMA * DISCOUNT, Q_NEXT_TARGET)
    close(aux["td_error"], rlax_td)


@pytest.mark.parametrize("error", ["huber", "mse"])
def test_double_dqn_loss_hand_computed(error: str) -> None:
    loss, aux = losses.double_dqn_loss(*BATCH, Q_NEXT_ONLINE, gamma=GAMMA, error=error)
    close(loss, DOUBLE_LOSS[error])
    np.testing.assert_array_equal(aux["next_action"], DOUBLE_NEXT_ACTION)
    close(aux["target"], DOUBLE_TARGET)
    close(aux["td_error"], DOUBLE_TD)
    rlax_td = jax.vmap(rlax.double_q_learning)(
        Q, ACTION, REWARD, GAMMA * DISCOUNT, Q_NEXT_TARGET, Q_NEXT_ONLINE
    )
    close(aux["td_error"], rlax_td)


@pytest.mark.parametrize("error", ["huber", "mse"])
def test_cdqn_loss_hand_computed(error: str) -> None:
    loss, aux = losses.cdqn_loss(*BATCH, Q_NEXT_ONLINE, gamma=GAMMA, error=error)
    close(loss, CDQN_LOSS[error])
    np.testing.assert_array_equal(aux["residual_selected"], CDQN_SELECTED)
    close(aux["target_dqn"], DQN_TARGET)
    close(aux["target_residual"], CDQN_TARGET_RESIDUAL)
    close(aux["td_error_dqn"], DQN_TD)
    close(aux["td_error_residual"], CDQN_TD_RESIDUAL)
    close(aux["td_error"], CDQN_TD)
    close(aux["target"], [2.8, 3.6, -1.0, 4.7])


def test_cdqn_double_uses_online_argmax_for_the_dqn_target() -> None:
    loss, aux = losses.cdqn_loss(*BATCH, Q_NEXT_ONLINE, gamma=GAMMA, double=True)
    close(aux["target_dqn"], DOUBLE_TARGET)
    # |td_self| = [0.2, 3.1, 3, 0.7] vs |td_double| = [2, 0.4, 3, 2]
    np.testing.assert_array_equal(aux["residual_selected"], [False, True, False, False])
    close(loss, (1.5 + 2.6 + 2.5 + 1.5) / 4)


@pytest.mark.parametrize("kind", ["dqn", "double", "cdqn"])
def test_terminal_target_is_the_reward(kind: str) -> None:
    discount = np.zeros(4, np.float32)
    loss_fn = lambda qt, qo: losses.td_loss(kind, Q, ACTION, REWARD, discount, qt, qo, gamma=GAMMA)
    (_, aux), grads = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
        Q_NEXT_TARGET, Q_NEXT_ONLINE
    )
    close(aux["target"], REWARD)
    close(grads[0], np.zeros_like(Q))
    close(grads[1], np.zeros_like(Q))


@pytest.mark.parametrize("kind", ["dqn", "double"])
def test_dqn_and_double_gradient_reaches_only_q_taken(kind: str) -> None:
    loss_fn = lambda q, qt, qo: losses.td_loss(
        kind, q, ACTION, REWARD, DISCOUNT, qt, qo, gamma=GAMMA
    )[0]
    g_q, g_target, g_online = jax.grad(loss_fn, argnums=(0, 1, 2))(Q, Q_NEXT_TARGET, Q_NEXT_ONLINE)
    close(g_target, np.zeros_like(Q))
    close(g_online, np.zeros_like(Q))
    td = np.array(DQN_TD if kind == "dqn" else DOUBLE_TD, np.float32)
    expected = np.zeros_like(Q)
    expected[np.arange(4), ACTION] = -np.clip(td, -1.0, 1.0) / 4  # d huber(y - q)/dq
    close(g_q, expected)


def test_cdqn_gradient_hand_computed() -> None:
    def loss_fn(q, qt, qo):
        return losses.cdqn_loss(q, ACTION, REWARD, DISCOUNT, qt, qo, gamma=GAMMA)[0]

    g_q, g_target, g_online = jax.grad(loss_fn, argnums=(0, 1, 2))(Q, Q_NEXT_TARGET, Q_NEXT_ONLINE)
    close(g_target, np.zeros_like(Q))
    # clip(td)/B at Q(s, a), and gamma d clip(td)/B at the online greedy a^ where the residual
    # term is selected: samples 1 (a^ = 2, clip(3.1) = 1) and 3 (a^ = 1, td = 0.7).
    expected_q = np.zeros_like(Q)
    expected_q[np.arange(4), ACTION] = [0.05, -0.25, 0.25, -0.175]
    close(g_q, expected_q)
    expected_online = np.zeros_like(Q)
    expected_online[1, 2] = 0.9 * 1.0 / 4
    expected_online[3, 1] = 0.9 * 0.7 / 4
    close(g_online, expected_online)


def test_cdqn_gradient_routing_on_random_batches() -> None:
    keys = jax.random.split(jax.random.key(0), 5)
    b, a = 256, 6
    q, qt, qo = (jax.random.normal(k, (b, a)) for k in keys[:3])
    action = jax.random.randint(keys[3], (b,), 0, a)
    reward = jax.random.normal(keys[4], (b,))
    discount = (jnp.arange(b) % 5 != 0).astype(jnp.float32)
    grad_fn = jax.jit(
        jax.grad(
            lambda q, qt, qo: losses.cdqn_loss(q, action, reward, discount, qt, qo)[0],
            argnums=(0, 1, 2),
        )
    )
    g_q, g_target, g_online = grad_fn(q, qt, qo)
    selected = losses.cdqn_loss(q, action, reward, discount, qt, qo)[1]["residual_selected"]
    assert 0 < int(selected.sum()) < b
    assert not bool(jnp.any(selected & (discount == 0)))
    np.testing.assert_array_equal(jnp.any(g_online != 0, axis=-1), selected)
    np.testing.assert_array_equal(jnp.sum(g_online != 0, axis=-1), selected.astype(jnp.int32))
    assert not bool(jnp.any(g_target != 0))
    assert bool(jnp.all(jnp.sum(g_q != 0, axis=-1) == 1))


@pytest.mark.parametrize("kind", ["dqn", "double", "cdqn"])
def test_jit_matches_eager(kind: str) -> None:
    eager = losses.td_loss(kind, *BATCH, Q_NEXT_ONLINE, gamma=GAMMA)
    jitted = jax.jit(losses.td_loss, static_argnames=("kind", "error"))(
        kind, *BATCH, Q_NEXT_ONLINE, gamma=GAMMA
    )
    close(jitted[0], eager[0])
    for name, value in eager[1].items():
        np.testing.assert_allclose(jitted[1][name], value, rtol=1e-6)


def test_dispatch_matches_direct_calls() -> None:
    close(losses.td_loss("dqn", *BATCH, gamma=GAMMA)[0], DQN_LOSS["huber"])
    close(losses.td_loss("double", *BATCH, Q_NEXT_ONLINE, gamma=GAMMA)[0], DOUBLE_LOSS["huber"])
    close(losses.td_loss("cdqn", *BATCH, Q_NEXT_ONLINE, gamma=GAMMA)[0], CDQN_LOSS["huber"])
    assert losses.LOSSES["cdqn"] is losses.cdqn_loss
    assert not losses.needs_next_online("dqn")
    assert losses.needs_next_online("double") and losses.needs_next_online("cdqn")


WEIGHTS = np.array([1.0, 0.5, 2.0, 0.25], np.float32)


@pytest.mark.parametrize(
    "kind,per_sample",
    [
        ("dqn", [0.02, 1.7, 2.5, 0.02]),
        ("double", [1.5, 0.08, 2.5, 1.5]),
        ("cdqn", [0.02, 2.6, 2.5, 0.245]),
    ],
)
def test_importance_weights_scale_each_sample(kind: str, per_sample: list[float]) -> None:
    """Prioritized replay: loss = (1/B) sum_b w_b err_b (Huber errors of the batch above)."""
    online = () if kind == "dqn" else (Q_NEXT_ONLINE,)
    loss, aux = losses.td_loss(kind, *BATCH, *online, gamma=GAMMA, weights=WEIGHTS)
    close(loss, np.dot(WEIGHTS, per_sample) / 4)
    # The TD errors (which set the priorities) do not depend on the weights.
    close(aux["td_error"], losses.td_loss(kind, *BATCH, *online, gamma=GAMMA)[1]["td_error"])
    grad = jax.grad(
        lambda q: losses.td_loss(kind, q, *BATCH[1:], *online, gamma=GAMMA, weights=WEIGHTS)[0]
    )(Q)
    plain = jax.grad(lambda q: losses.td_loss(kind, q, *BATCH[1:], *online, gamma=GAMMA)[0])(Q)
    close(grad, plain * WEIGHTS[:, None])


def test_cdqn_double_through_the_dispatch() -> None:
    direct = losses.cdqn_loss(*BATCH, Q_NEXT_ONLINE, gamma=GAMMA, double=True)
    close(
        losses.td_loss("cdqn", *BATCH, Q_NEXT_ONLINE, gamma=GAMMA, cdqn_double=True)[0], direct[0]
    )
    assert not np.isclose(direct[0], CDQN_LOSS["huber"])
    with pytest.raises(ValueError, match="cdqn_double applies to the 'cdqn' loss only"):
        losses.td_loss("double", *BATCH, Q_NEXT_ONLINE, cdqn_double=True)


def test_bad_names_and_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="'rainbow'.*dqn, double, cdqn"):
        losses.td_loss("rainbow", *BATCH)
    with pytest.raises(ValueError, match="'l1'.*huber, mse"):
        losses.dqn_loss(*BATCH, error="l1")
    with pytest.raises(ValueError, match="needs q_next_online"):
        losses.td_loss("cdqn", *BATCH)
    with pytest.raises(AssertionError):
        losses.dqn_loss(Q, ACTION[:3], REWARD, DISCOUNT, Q_NEXT_TARGET)
    with pytest.raises(AssertionError):
        losses.dqn_loss(Q, ACTION.astype(np.float32), REWARD, DISCOUNT, Q_NEXT_TARGET)
