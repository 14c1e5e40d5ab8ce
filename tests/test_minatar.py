"""The MinAtar suite against the original ``minatar`` package (Young & Tian 2019, v1.0.15).

- Step for step where the game is deterministic (no sticky actions): Breakout (its only draw is
  the ball's start, matched by resetting until the first frames agree) and SpaceInvaders (no
  draws at all): observations, rewards and terminals agree at every step of whole games.
- Statistically where it is not: over hundreds of games with the original's sticky actions 0.1
  and difficulty ramping, the returns of a random and of a simple scripted policy have the same
  mean (within 4 standard errors) and distribution (two-sample Kolmogorov-Smirnov).
- The pool keeps envpool's auto-reset contract (a reset step ignores its action and scores 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn.config.games import MINATAR_GAMES
from dsqn.envs.minatar import MINATAR_CHANNELS, MinAtarPool, make_minatar
from dsqn.envs.stepping import current_handle, reset, xla_step

minatar = pytest.importorskip("minatar", reason="the original MinAtar package (test extra)")
stats = pytest.importorskip("scipy.stats")

ORIGINAL_NAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
CAP = 1_000  # agent steps per game in the statistical comparison (both sides)


def _original(game: str, sticky: float, seed: int):
    env = minatar.Environment(ORIGINAL_NAMES[game], sticky_action_prob=sticky)
    env.seed(seed)
    return env


@pytest.mark.parametrize("game", ["Breakout", "SpaceInvaders"])
def test_deterministic_games_agree_step_for_step(game):
    original = _original(game, 0.0, seed=3)
    actions = original.minimal_action_set()
    pool = make_minatar(game, 1, seed=11, sticky_action_prob=0.0)
    rng = np.random.default_rng(5)
    steps = 0
    for _ in range(12):
        original.reset()
        for _ in range(20):  # a reset with the original's first frame (Breakout: ball start)
            obs, _ = pool.reset()
            if np.array_equal(obs[0], original.state()):
                break
        else:
            pytest.fail(f"{game}: no reset reproduced the original's first frame")
        done = False
        while not done:
            a = int(rng.integers(len(actions)))
            reward, done = original.act(actions[a])
            obs, r, terminated, truncated, _ = pool.step(np.array([a]))
            np.testing.assert_array_equal(obs[0], original.state(), err_msg=f"step {steps}")
            assert r[0] == reward and bool(terminated[0]) == done and not truncated[0], steps
            steps += 1
    assert steps > 100


def _tracker(xp):
    """Breakout: move the paddle (channel 0, row 9) towards the ball's column (channel 1)."""

    def policy(obs, t):
        del t
        cols = xp.arange(10).reshape((1,) * (obs.ndim - 3) + (10,))
        paddle = xp.sum(obs[..., 9, :, 0] * cols, axis=-1)
        ball_any = xp.any(obs[..., 1], axis=(-2, -1))
        ball = xp.sum(xp.any(obs[..., 1], axis=-2) * cols, axis=-1)
        # minimal actions: 0 no-op, 1 left, 2 right
        move = xp.where(ball < paddle, 1, xp.where(ball > paddle, 2, 0))
        return xp.where(ball_any, move, 0)

    return policy


def _cycle(period: int, sequence: tuple[int, ...]):
    """A fixed cycle of actions, each held for ``period`` steps (games other than Breakout)."""

    def make(xp):
        actions = xp.asarray(sequence)

        def policy(obs, t):
            del obs
            return actions[(t // period) % len(sequence)]

        return policy

    return make


SCRIPTED = {
    "Breakout": _tracker,
    "Asterix": _cycle(4, (1, 2, 3, 4)),  # left, up, right, down
    "Freeway": _cycle(1, (1,)),  # always up
    "Seaquest": _cycle(3, (5, 1, 5, 3)),  # fire, left, fire, right
    "SpaceInvaders": _cycle(2, (3, 1, 3, 2)),  # fire, left, fire, right
}


def _original_returns(game: str, policy, episodes: int, seed: int) -> np.ndarray:
    env = _original(game, 0.1, seed)
    actions = env.minimal_action_set()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        env.reset()
        total, done, t = 0.0, False, 0
        while not done and t < CAP:
            a = rng.integers(len(actions)) if policy is None else int(policy(env.state(), t))
            reward, done = env.act(actions[a])
            total, t = total + reward, t + 1
        out.append(total)
    return np.asarray(out)


def _pool_returns(game: str, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first game's return of ``episodes`` envs played by the random policy and of
    ``episodes`` more played by the scripted one, all stepped in one jitted loop."""
    pool = make_minatar(game, 2 * episodes, seed=seed, max_episode_steps=CAP)
    first = reset(pool)
    step = xla_step(pool)
    n = pool.action_space.n
    scripted = SCRIPTED[game](jnp)
    random_half = jnp.arange(2 * episodes) < episodes

    def body(carry, key):
        handle, obs, t, ret, over = carry
        a = jnp.where(
            random_half,
            jax.random.randint(key, (2 * episodes,), 0, n),
            jnp.broadcast_to(scripted(obs, t), (2 * episodes,)),
        )
        handle, ts = step.step(handle, a.astype(jnp.int32))
        ret = ret + jnp.where(over, 0.0, ts.reward)
        return (handle, ts.obs, t + 1, ret, over | ts.game_over), None

    init = (
        current_handle(pool, "xla", step),
        jnp.asarray(first.obs),
        jnp.zeros((), jnp.int32),
        jnp.zeros(2 * episodes),
        jnp.zeros(2 * episodes, bool),
    )
    keys = jax.random.split(jax.random.key(seed), CAP + 1)
    (_, _, _, ret, over), _ = jax.jit(lambda c, k: jax.lax.scan(body, c, k))(init, keys)
    assert bool(over.all())
    ret = np.asarray(ret)
    return ret[:episodes], ret[episodes:]


def _assert_same_distribution(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    se = np.sqrt(ours.var(ddof=1) / len(ours) + theirs.var(ddof=1) / len(theirs))
    message = f"{what}: ours {ours.mean():.3f}, original {theirs.mean():.3f}, SE {se:.3f}"
    assert abs(ours.mean() - theirs.mean()) <= 4 * max(se, 1e-9), message
    if ours.std() > 0 or theirs.std() > 0:
        assert stats.ks_2samp(ours, theirs).pvalue > 1e-3, message


@pytest.mark.parametrize("game", MINATAR_GAMES)
def test_return_distributions_agree_with_the_original(game):
    episodes = 100 if game == "Freeway" else 300  # Freeway games last 2,500 steps (cap 1,000)
    random_ours, scripted_ours = _pool_returns(game, episodes, seed=1)
    _assert_same_distribution(
        random_ours, _original_returns(game, None, episodes, seed=2), f"{game} random"
    )
    scripted_theirs = _original_returns(game, SCRIPTED[game](np), episodes, seed=3)
    _assert_same_distribution(scripted_ours, scripted_theirs, f"{game} scripted")


def test_observations_actions_and_spaces_match_the_original():
    for game in MINATAR_GAMES:
        original = _original(game, 0.1, 0)
        space, actions = MinAtarPool.spaces(game)
        assert space.shape == tuple(original.state_shape())
        assert space.shape[-1] == MINATAR_CHANNELS[game]
        assert space.dtype == np.bool_
        assert actions.n == len(original.minimal_action_set())


def test_a_reset_step_ignores_its_action_and_scores_nothing():
    pool = make_minatar("Breakout", 8, seed=0, max_episode_steps=5)
    reset(pool)
    for t in range(12):
        obs, reward, terminated, truncated, _ = pool.step(np.zeros(8, np.int32))
        if t % 6 == 4:  # the cap truncates at the 5th step of every game
            assert truncated.all() and not terminated.any()
        if t % 6 == 5:  # the next call is the reset step: reward 0, a first frame, no flags
            assert (reward == 0).all() and not (terminated | truncated).any()
            assert not pool.state.elapsed.any()


def test_every_reset_draws_new_games_and_seeds_are_reproducible():
    a, b = make_minatar("Breakout", 4, seed=7), make_minatar("Breakout", 4, seed=7)
    first_a = [a.reset()[0] for _ in range(3)]
    first_b = [b.reset()[0] for _ in range(3)]
    for x, y in zip(first_a, first_b, strict=True):
        np.testing.assert_array_equal(x, y)
    actions = np.random.default_rng(0).integers(0, 3, (30, 4)).astype(np.int32)
    steps_a = [a.step(x)[0] for x in actions]
    steps_b = [b.step(x)[0] for x in actions]
    np.testing.assert_array_equal(np.stack(steps_a), np.stack(steps_b))
    c = make_minatar("Breakout", 4, seed=8)
    c.reset()
    steps_c = [c.step(x)[0] for x in actions]
    assert not np.array_equal(np.stack(steps_a), np.stack(steps_c))


def test_unknown_game_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: Asterix, Breakout, Freeway, Seaquest"):
        make_minatar("Pong", 1)
