"""The random policy's score on each MinAtar game, measured in the original package.

Plays ``--episodes`` games of each game in ``minatar.Environment`` (sticky actions 0.1, difficulty
ramping: the package's defaults, as the project's ``minatar`` suite) with actions drawn uniformly
from the game's minimal action set (the suite's action space), and prints JSON: per game the
mean return, its standard error and the number of episodes. These are the random reference
scores of :data:`dsqn.config.games.MINATAR_REFERENCE_SCORES`.

    python experiments/minatar_random.py --episodes 1000 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}


def random_returns(game: str, episodes: int, seed: int) -> list[float]:
    """Returns of ``episodes`` uniformly random games of ``game`` in the original package."""
    from minatar import Environment

    env = Environment(GAMES[game])
    env.seed(seed)
    actions = env.minimal_action_set()
    rng = np.random.default_rng(seed)
    returns = []
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            reward, done = env.act(actions[rng.integers(len(actions))])
            total += reward
        returns.append(total)
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--games", nargs="+", default=list(GAMES), choices=list(GAMES))
    args = parser.parse_args()
    out = {}
    for game in args.games:
        r = np.asarray(random_returns(game, args.episodes, args.seed))
        out[game] = {
            "mean": float(r.mean()),
            "standard_error": float(r.std(ddof=1) / math.sqrt(len(r))),
            "episodes": len(r),
        }
    print(json.dumps({"episodes": args.episodes, "seed": args.seed, "games": out}, indent=1))


if __name__ == "__main__":
    main()
