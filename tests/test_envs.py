"""Tests of the environment factories, protocols, game names, scores and seeds (dsqn.envs)."""

from __future__ import annotations

import envpool
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn import envs
from dsqn.envs.pool import pool_options

PAPER_17 = (
    "Atlantis BeamRider Boxing Breakout CrazyClimber Gopher Jamesbond Kangaroo Krull NameThisGame "
    "Pong RoadRunner SpaceInvaders StarGunner Tennis Tutankham VideoPinball"
).split()


def _diff(a: dict, b: dict) -> set[str]:
    return {k for k in a if a[k] != b[k]}


@pytest.mark.parametrize("protocol", ["paper", "machado"])
@pytest.mark.parametrize("train", [True, False])
def test_protocol_options_are_what_the_env_reports(protocol, train):
    env = envs.make_atari("Pong", 2, seed=3, protocol=protocol, train=train)
    expected = envs.PROTOCOLS[protocol]["train" if train else "eval"]
    for key, value in expected.items():
        assert env.config[key] == value, key
    assert env.spec.config.max_episode_steps == expected["max_episode_steps"]
    assert env.config["num_envs"] == env.config["batch_size"] == 2
    assert env.config["env_seed"] == [3, 4]
    assert env.config["task"] == "pong"
    assert env.observation_space.shape == (4, 84, 84)
    assert env.action_space.n == 6  # Pong's minimal action set


def test_every_envpool_option_is_set_explicitly():
    fields = set(envpool.make_spec("Pong-v5").config._fields)
    for protocol in envs.PROTOCOLS.values():
        for options in protocol.values():
            stated = set(pool_options(1, 0)) | set(options) | {"task"}
            assert stated == fields - {"base_path"}
    for name, options in envs.CLASSIC_OPTIONS.items():
        fields = set(envpool.make_spec(name).config._fields)
        assert set(pool_options(1, 0)) | set(options) == fields - {"base_path"}


def test_protocols_differ_exactly_as_documented():
    paper, machado = envs.PROTOCOLS["paper"], envs.PROTOCOLS["machado"]
    assert _diff(paper["train"], paper["eval"]) == {"episodic_life", "reward_clip"}
    assert _diff(machado["train"], machado["eval"]) == {"reward_clip"}
    assert _diff(paper["train"], machado["train"]) == {
        "repeat_action_probability",
        "max_episode_steps",
        "episodic_life",
    }
    assert _diff(paper["eval"], machado["eval"]) == {
        "repeat_action_probability",
        "max_episode_steps",
    }
    p = paper["train"]
    assert p["repeat_action_probability"] == 0.0 and p["noop_max"] == 30
    assert p["frame_skip"] == 4 and p["stack_num"] == 4 and p["gray_scale"]
    assert p["max_episode_steps"] == 18000 and p["use_fire_reset"] and not p["full_action_space"]
    assert p["episodic_life"] and p["reward_clip"] and p["use_inter_area_resize"]
    m = machado["train"]
    assert m["repeat_action_probability"] == 0.25 and m["max_episode_steps"] == 27000
    assert not m["episodic_life"] and m["reward_clip"] and not machado["eval"]["reward_clip"]


def test_overrides_apply():
    env = envs.make_atari(
        "Breakout-v5", 1, protocol="machado", full_action_space=True, max_episode_steps=77
    )
    assert env.config["full_action_space"] and env.action_space.n == 18
    assert env.config["max_episode_steps"] == 77
    assert env.config["repeat_action_probability"] == 0.25


def test_override_errors():
    with pytest.raises(ValueError, match=r"unknown envpool option\(s\) \['max_steps'\].*noop_max"):
        envs.make_atari("Pong", 1, max_steps=10)
    with pytest.raises(ValueError, match="'task'"):
        envs.make_atari("Pong", 1, task="breakout")
    with pytest.raises(ValueError, match="noop_max must be >= 1, got 0"):
        envs.make_atari("Pong", 1, noop_max=0)
    assert "max_episode_steps" in envs.overridable_options("CartPole-v1")


def test_game_names():
    assert envs.PAPER_GAMES == tuple(PAPER_17)
    assert set(envs.REFERENCE_SCORES) == set(PAPER_17)
    for game in PAPER_17:
        assert envs.atari_id(game) == envs.atari_id(f"{game}-v5") == f"{game}-v5"
        assert f"{game}-v5" in envs.atari_ids()
    assert envs.atari_id("Seaquest-v5") == "Seaquest-v5"
    assert envs.make_atari("Seaquest-v5", 1).config["task"] == "seaquest"


def test_unknown_game_lists_games_and_suggests_nearest():
    with pytest.raises(ValueError) as info:
        envs.make_atari("Breakot", 1)
    message = str(info.value)
    assert "'Breakot'" in message and "did you mean 'Breakout'?" in message
    assert all(game in message for game in PAPER_17)
    with pytest.raises(ValueError, match="did you mean 'SpaceInvaders'"):
        envs.atari_id("space_invaders")


@pytest.mark.parametrize("num_envs", [0, -2, 1.5, True])
def test_non_positive_counts(num_envs):
    with pytest.raises(ValueError, match=f"num_envs must be a positive int, got {num_envs!r}"):
        envs.make_atari("Pong", num_envs)
    with pytest.raises(ValueError, match="num_envs"):
        envs.make_classic("CartPole-v1", num_envs)


def test_bad_protocol_and_seeds():
    with pytest.raises(ValueError, match=r"unknown protocol 'nature'.*\['machado', 'paper'\]"):
        envs.make_atari("Pong", 1, protocol="nature")
    with pytest.raises(ValueError, match="got 3 seeds for num_envs=2"):
        envs.make_atari("Pong", 2, seed=[1, 2, 3])
    with pytest.raises(ValueError, match="seed must lie in"):
        envs.make_classic("CartPole-v1", 2, seed=-1)


@pytest.mark.parametrize(
    ("name", "dim", "num_actions", "cap"),
    [("CartPole-v1", 4, 2, 500), ("Acrobot-v1", 6, 3, 500), ("MountainCar-v0", 2, 3, 200)],
)
def test_classic(name, dim, num_actions, cap):
    env = envs.make_classic(name, 3, seed=1)
    obs, _ = env.reset()
    assert obs.shape == (3, dim) and obs.dtype == np.float32
    assert env.action_space.n == num_actions
    assert env.config["max_episode_steps"] == cap and env.config["env_seed"] == [1, 2, 3]
    assert envs.make_classic(name, 1, max_episode_steps=9).config["max_episode_steps"] == 9


def test_unknown_classic():
    with pytest.raises(ValueError, match=r"unknown classic-control env 'CartPole-v0'.*CartPole-v1"):
        envs.make_classic("CartPole-v0", 1)


def test_human_normalized():
    assert envs.human_normalized("Pong", 14.6) == pytest.approx(1.0)
    assert envs.human_normalized("Pong-v5", -20.7) == pytest.approx(0.0)
    scores = np.array([1.7, 30.5, 59.3])
    np.testing.assert_allclose(envs.human_normalized("Breakout", scores), [0.0, 1.0, 2.0])
    assert envs.REFERENCE_SCORES["VideoPinball"] == (16256.9, 17667.9)
    with pytest.raises(ValueError, match="did you mean 'Tennis'"):
        envs.human_normalized("Tenis", 0.0)


def test_pool_env_seeds_are_distinct_across_seeds_and_streams():
    seeds = [0, 1, 2, 17]
    train = envs.pool_env_seeds(seeds, 8)
    evaluation = envs.pool_env_seeds(seeds, 8, stream="eval")
    assert len(train) == len(set(train)) == 32
    assert not set(train) & set(evaluation)
    # A training seed's envs do not depend on which other seeds share the pool.
    assert envs.pool_env_seeds([2], 8) == train[16:24]
    assert max(train + evaluation) < 2**31
    for bad, match in [
        (dict(seeds=[1, 1], envs_per_seed=2), "distinct"),
        (dict(seeds=[-1], envs_per_seed=2), "must lie in"),
        (dict(seeds=[0], envs_per_seed=0), "envs_per_seed"),
        (dict(seeds=[], envs_per_seed=2), "at least one"),
        (dict(seeds=[0], envs_per_seed=2, stream="test"), "unknown stream 'test'"),
    ]:
        with pytest.raises(ValueError, match=match):
            envs.pool_env_seeds(**bad)


def test_pool_seeds_give_distinct_reproducible_envs():
    seeds = envs.pool_env_seeds([0, 1], 3)
    env = envs.make_classic("CartPole-v1", 6, seed=seeds)
    obs, _ = env.reset()
    assert len({tuple(o) for o in obs}) == 6, "distinct env seeds give distinct initial states"
    alone, _ = envs.make_classic("CartPole-v1", 3, seed=envs.pool_env_seeds([1], 3)).reset()
    np.testing.assert_array_equal(alone, obs[3:])


def test_split_and_merge_seeds_round_trip():
    x = jnp.arange(6 * 5).reshape(6, 5)
    split = envs.split_seeds(x, 3)
    assert split.shape == (3, 2, 5)
    np.testing.assert_array_equal(split[1, 0], x[2])  # seed-major: pool env s * E + j
    np.testing.assert_array_equal(envs.merge_seeds(split), x)
    ts = envs.reset(envs.make_classic("CartPole-v1", 4))
    tree = envs.split_seeds(ts, 2)
    assert tree.obs.shape == (2, 2, 4) and tree.lives.shape == (2, 2)
    jax.tree.map(np.testing.assert_array_equal, envs.merge_seeds(tree), ts)
    with pytest.raises(ValueError, match="num_seeds=4"):
        envs.split_seeds(x, 4)
    with pytest.raises(ValueError, match="merge_seeds"):
        envs.merge_seeds(jnp.zeros(3))
