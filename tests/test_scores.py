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
