"""Tests of dsqn.config.games against the reference scores of the paper's 17 games."""

from __future__ import annotations

import numpy as np
import pytest

from dsqn.config import games as scores


def test_seventeen_games_in_order() -> None:
    assert len(scores.PAPER_GAMES) == 17
    assert tuple(scores.REFERENCE_SCORES) == scores.PAPER_GAMES
    assert scores.PAPER_GAMES[0] == "Atlantis" and scores.PAPER_GAMES[-1] == "VideoPinball"


@pytest.mark.parametrize(
    "game, random_score, human_score",
    [
        ("Atlantis", 12850.0, 29028.1),
        ("Boxing", 0.1, 12.1),
        ("Breakout", 1.7, 30.5),
        ("Jamesbond", 29.0, 302.8),
        ("Pong", -20.7, 14.6),
        ("RoadRunner", 11.5, 7845.0),
        ("Tennis", -23.8, -8.3),
        ("VideoPinball", 16256.9, 17667.9),
    ],
)
def test_reference_scores_match_protocol(game: str, random_score: float, human_score: float):
    assert scores.REFERENCE_SCORES[game] == (random_score, human_score)


def test_human_normalized_values() -> None:
    assert scores.human_normalized("Pong", -20.7) == pytest.approx(0.0)
    assert scores.human_normalized("Pong", 14.6) == pytest.approx(1.0)
    assert scores.human_normalized("Pong", 21.0) == pytest.approx(41.7 / 35.3)
    assert scores.human_normalized("Breakout-v5", 30.5) == pytest.approx(1.0)
    assert scores.human_normalized("Tennis", -23.8 - 15.5) == pytest.approx(-1.0)
    np.testing.assert_allclose(
        scores.human_normalized("Boxing", np.array([0.1, 6.1, 12.1])), [0.0, 0.5, 1.0]
    )


def test_every_game_has_human_above_random() -> None:
    for game, (random_score, human_score) in scores.REFERENCE_SCORES.items():
        assert human_score > random_score, game


def test_unknown_game_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'Pongg' \(did you mean 'Pong'\?\).*Atlantis, Beam"):
        scores.human_normalized("Pongg", 1.0)
    with pytest.raises(ValueError, match="CartPole-v1"):
        scores.human_normalized("CartPole-v1", 1.0)
    assert scores.has_reference("Pong-v5") and not scores.has_reference("CartPole-v1")


def test_minatar_games_normalise_by_young_and_tians_dqn() -> None:
    # Breakout-MinAtar: random 0.416 (measured), Young & Tian's DQN 10.1 at 5M frames; half way
    # between them is 0.416 + 0.5 * 9.684 = 5.258.
    assert scores.reference_scores("Breakout-MinAtar") == (0.416, 10.1)
    assert scores.normalized_score("Breakout-MinAtar", 5.258) == pytest.approx(0.5)
    assert scores.normalized_score("SpaceInvaders-MinAtar", 43.5) == pytest.approx(1.0)
    assert scores.normalized_score("Asterix-MinAtar", 0.503) == pytest.approx(0.0)
    # Atari games keep their human reference; the MinAtar name never mixes with the Atari game.
    assert scores.normalized_score("Breakout-v5", 30.5) == pytest.approx(1.0)
    assert scores.reference_scores("Breakout") == (1.7, 30.5)
    assert scores.has_reference("Seaquest-MinAtar") and not scores.has_reference("Seaquest")
    assert scores.reference_scores("Pacman-MinAtar") is None


def test_minatar_references_are_the_published_figure_as_measured() -> None:
    import json
    from pathlib import Path

    measured = Path(__file__).resolve().parents[1] / "docs/results/minatar/published_dqn.json"
    games = json.loads(measured.read_text())["games"]
    assert set(games) == set(scores.MINATAR_GAMES)
    for game, value in scores.MINATAR_DQN_SCORES.items():
        assert value == games[game]["at_5M_frames"], game
        assert value > scores.MINATAR_RANDOM_SCORES[game]


def test_normalising_an_unknown_game_lists_both_suites() -> None:
    with pytest.raises(ValueError, match=r"'Breakout-Minatar' \(did you mean 'Breakout-MinAtar'"):
        scores.normalized_score("Breakout-Minatar", 1.0)
    with pytest.raises(ValueError, match="Asterix-MinAtar.*'<name>-v5'"):
        scores.normalized_score("CartPole-v1", 1.0)
