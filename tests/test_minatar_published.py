"""experiments/minatar_published.py on a figure drawn here with known curves in the published
figure's layout (five panels, the same ticks, the DQN line's colour)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "experiments" / "minatar_published.py"
_spec = importlib.util.spec_from_file_location("minatar_published", PATH)
published = importlib.util.module_from_spec(_spec)
sys.modules["minatar_published"] = published
_spec.loader.exec_module(published)

# (left, bottom) in figure fractions, in the published figure's places.
# The published figure's y tick labels, top to bottom (read from the figure; not the script's).
LABELS = {
    "Seaquest": (20, 15, 10, 5, 0),
    "Breakout": (15, 10, 5, 0),
    "Asterix": (20, 15, 10, 5, 0),
    "Freeway": (50, 40, 30, 20, 10, 0),
    "SpaceInvaders": (200, 150, 100, 50, 0),
}
PLACES = {
    "Seaquest": (0.202, 0.597),
    "Breakout": (0.516, 0.597),
    "Asterix": (0.035, 0.121),
    "Freeway": (0.396, 0.121),
    "SpaceInvaders": (0.755, 0.121),
}


def _curve(game: str, x: float) -> float:
    """The DQN line drawn for `game`: a steep ramp on Breakout (checks the x axis), constants
    else."""
    if game == "Breakout":
        return min(1.0 + 10.0 * x, 14.0)
    return {"Seaquest": 7.0, "Asterix": 12.5, "Freeway": 33.0, "SpaceInvaders": 120.0}[game]


def _figure(path: Path, colour=published.DQN_BLUE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig = plt.figure(figsize=(10.13, 5.43), dpi=300)
    x = np.linspace(0, 5, 501)
    for game, (left, bottom) in PLACES.items():
        ax = fig.add_axes((left, bottom, 0.23, 0.293))
        labels = LABELS[game]
        span = labels[0] - labels[-1]
        ax.set_xlim(0, 5)
        ax.set_xticks(range(6))
        ax.set_ylim(labels[-1] - 0.05 * span, labels[0] + 0.1 * span)
        ax.set_yticks(labels)
        ax.plot(x, [_curve(game, v) for v in x], color=np.array(colour) / 255, lw=1.5)
        ax.plot(x, 0.5 * (labels[0] + labels[-1]) + 0 * x, color="#d55e00", lw=1.5)
    fig.savefig(path, dpi=300)
    plt.close(fig)


def test_reads_known_curves_back(tmp_path, capsys):
    image = tmp_path / "curves.png"
    _figure(image)
    published.main([str(image)])
    games = json.loads(capsys.readouterr().out)["games"]
    assert list(games) == list(PLACES)
    for game, entry in games.items():
        scale = LABELS[game][0] - LABELS[game][-1]
        assert entry["at_1M_frames"] == pytest.approx(_curve(game, 1.0), abs=0.01 * scale)
        # At 5M: the median over the last 0.1M frames (4.9 to 5.0).
        assert entry["at_5M_frames"] == pytest.approx(_curve(game, 4.95), abs=0.01 * scale)
        assert entry["axis_fit_max_residual"] < 0.01 * scale


def test_a_figure_without_the_dqn_colour_is_refused(tmp_path):
    image = tmp_path / "curves.png"
    _figure(image, colour=(2, 158, 115))
    with pytest.raises(ValueError, match="no pixel of the DQN line"):
        published.main([str(image)])
