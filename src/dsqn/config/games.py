"""Reference scores of the paper's 17 Atari games and human-normalised scores.

Random and human scores under no-op starts: the values of DQN Zoo's ``dqn_zoo/atari_data.py``
(github.com/google-deepmind/dqn_zoo; random and professional human testers, 1-30 no-ops, episodes
capped at 108,000 frames), the table most DQN papers normalise with. Liu et al. 2022 do not list
the reference scores they normalised with, so that these are theirs is not verified.
Human-normalised score = (score - random) / (human - random): 0 is random play, 1 the human
reference. Report the median across games as well as the mean: VideoPinball's small human-random
gap (1411 points) inflates means.

This module has no dependency beyond numpy so that reports and plots can be made on a machine
without the emulator installed.
"""

from __future__ import annotations

import difflib

import numpy as np

__all__ = [
    "MINATAR_DQN_SCORES",
    "MINATAR_GAMES",
    "MINATAR_RANDOM_SCORES",
    "minatar_game",
    "PAPER_GAMES",
    "REFERENCE_SCORES",
    "canonical_game",
    "has_reference",
    "human_normalized",
    "normalized_score",
    "reference_scores",
]

PAPER_GAMES: tuple[str, ...] = (
    "Atlantis",
    "BeamRider",
    "Boxing",
    "Breakout",
    "CrazyClimber",
    "Gopher",
    "Jamesbond",
    "Kangaroo",
    "Krull",
    "NameThisGame",
    "Pong",
    "RoadRunner",
    "SpaceInvaders",
    "StarGunner",
    "Tennis",
    "Tutankham",
    "VideoPinball",
)
"""The 17 games of the paper, by short name (the envpool id is ``f"{name}-v5"``)."""

REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "Atlantis": (12850.0, 29028.1),
    "BeamRider": (363.9, 16926.5),
    "Boxing": (0.1, 12.1),
    "Breakout": (1.7, 30.5),
    "CrazyClimber": (10780.5, 35829.4),
    "Gopher": (257.6, 2412.5),
    "Jamesbond": (29.0, 302.8),
    "Kangaroo": (52.0, 3035.0),
    "Krull": (1598.0, 2665.5),
    "NameThisGame": (2292.3, 8049.0),
    "Pong": (-20.7, 14.6),
    "RoadRunner": (11.5, 7845.0),
    "SpaceInvaders": (148.0, 1668.7),
    "StarGunner": (664.0, 10250.0),
    "Tennis": (-23.8, -8.3),
    "Tutankham": (11.4, 167.6),
    "VideoPinball": (16256.9, 17667.9),
}
"""Game short name -> (random score, human score): raw full-game scores with no-op starts."""


MINATAR_GAMES: tuple[str, ...] = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
"""MinAtar's five games (Young & Tian 2019), by the name ``--env.suite minatar --game`` takes;
reports name them ``"<game>-MinAtar"`` so that they never mix with the Atari game of that name."""

MINATAR_SUFFIX = "-MinAtar"

MINATAR_RANDOM_SCORES: dict[str, float] = {
    "Asterix": 0.503,
    "Breakout": 0.416,
    "Freeway": 0.358,
    "Seaquest": 0.086,
    "SpaceInvaders": 4.095,
}
"""MinAtar game -> the mean return of uniformly random play over its minimal action set, measured
in the original package (``minatar`` 1.0.15, sticky actions 0.1, difficulty ramping) over 1,000
games: ``python experiments/minatar_random.py --episodes 1000 --seed 0`` (standard errors 0.028,
0.021, 0.019, 0.011 and 0.100; the output is committed in docs/results/minatar/random.json)."""

MINATAR_DQN_SCORES: dict[str, float] = {
    "Asterix": 16.8,
    "Breakout": 10.1,
    "Freeway": 50.2,
    "Seaquest": 20.1,
    "SpaceInvaders": 43.5,
}
"""MinAtar game -> Young & Tian 2019's DQN after 5M frames, the published reference MinAtar scores
are normalised with (there are no human scores). Published only as a figure: these are read off
it by pixel measurement (``experiments/minatar_published.py``; the output is committed in
docs/results/minatar/published_dqn.json). They are the moving average (0.99) of *training*
returns (epsilon 0.1), mean of 30 runs, full action set of 6 actions, RMSprop, one update per
frame; Seaquest's is of MinAtar 1.0.10 or lower (its oxygen bug)."""


def _did_you_mean(name: str, valid: list[str] | tuple[str, ...]) -> str:
    """``" (did you mean 'X'?)"`` for the closest valid name, or ``""``."""
    near = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def reference_scores(game: str) -> tuple[float, float] | None:
    """``(random, reference)`` scores that normalise `game`: (random, human) for the 17 paper
    games (short name or envpool id); (random in the original package, `MINATAR_DQN_SCORES`) for
    ``"<game>-MinAtar"``; None for any other game."""
    if game.endswith(MINATAR_SUFFIX):
        base = game.removesuffix(MINATAR_SUFFIX)
        if base in MINATAR_GAMES:
            return MINATAR_RANDOM_SCORES[base], MINATAR_DQN_SCORES[base]
        return None
    return REFERENCE_SCORES.get(canonical_game(game))


def normalized_score(game: str, score: float | np.ndarray) -> float | np.ndarray:
    """(score - random) / (reference - random) with `reference_scores` (0 is random play; 1 the
    human on the paper's Atari games, Young & Tian's DQN at 5M frames on ``"<game>-MinAtar"``).

    Raises:
      ValueError: `game` has no reference scores; the message lists the valid games.
    """
    pair = reference_scores(game)
    if pair is None:
        valid = [*PAPER_GAMES, *(g + MINATAR_SUFFIX for g in MINATAR_GAMES)]
        raise ValueError(
            f"no reference scores for game {game!r}{_did_you_mean(game.removesuffix('-v5'), valid)}"
            f"; valid games: {', '.join(valid)} "
            "(an Atari game also as '<name>-v5')"
        )
    random_score, reference = pair
    return (score - random_score) / (reference - random_score)


def canonical_game(game: str, suite: str = "atari") -> str:
    """Short name of a game given its short name or envpool id (``"Pong-v5"`` -> ``"Pong"``);
    a MinAtar game (``suite == "minatar"``) is ``"<game>-MinAtar"`` (``"Breakout-MinAtar"``)."""
    if suite == "minatar":
        return minatar_game(game) + MINATAR_SUFFIX
    return game.removesuffix("-v5")


def minatar_game(name: str) -> str:
    """The MinAtar game ``name`` names (``"Breakout"``, ``"breakout"``, ``"Breakout-MinAtar"``,
    ``"space_invaders"``); ValueError naming the valid games."""
    base = name.removesuffix(MINATAR_SUFFIX).removeprefix("minatar-").replace("_", "")
    for game in MINATAR_GAMES:
        if base.lower() == game.lower():
            return game
    raise ValueError(f"unknown MinAtar game {name!r}; valid: {', '.join(MINATAR_GAMES)}")


def has_reference(game: str) -> bool:
    """Whether `game` has reference scores: one of the 17 paper games (short name or envpool id)
    or a MinAtar game named ``"<game>-MinAtar"`` (see `reference_scores`)."""
    return reference_scores(game) is not None


def human_normalized(game: str, score: float | np.ndarray) -> float | np.ndarray:
    """Human-normalised score (score - random) / (human - random) of one of the 17 paper games.

    Args:
      game: short name (``"Pong"``) or envpool id (``"Pong-v5"``) of a paper game.
      score: raw full-game score(s), any shape.

    Returns:
      The normalised score(s), same shape as `score`: 0 is random play, 1 the human reference.

    Raises:
      ValueError: `game` has no reference scores; the message lists the valid games.
    """
    name = canonical_game(game)
    if name not in REFERENCE_SCORES:
        raise ValueError(
            f"no reference scores for game {game!r}{_did_you_mean(name, PAPER_GAMES)}; valid "
            "games (short name or "
            f"'<name>-v5'): {', '.join(PAPER_GAMES)}"
        )
    random_score, human_score = REFERENCE_SCORES[name]
    return (score - random_score) / (human_score - random_score)
