"""Young & Tian's published MinAtar DQN curves, read off their figure by pixel measurement.

    git clone https://github.com/kenjyoung/MinAtar
    python experiments/minatar_published.py MinAtar/img/learning_curves.gif \
        > docs/results/minatar/published_dqn.json

The MinAtar paper and repository (Young & Tian 2019, arXiv:1903.03176; figure
``img/learning_curves.gif``, last changed in commit 87c2bc8, 2020-02-14) publish their DQN's results
only as learning curves: no table. This script measures the DQN curve (the blue line) in each of
the five panels: the axes are found from their black spines and tick marks, the y axis is fitted
through the tick marks to the tick labels below (`TICK_LABELS`, read from the figure), and the
value at a number of frames is the median height of the blue line over a window of +-5% of the
panel's width (`WINDOW_M_FRAMES`) around it (at 5M, the last 0.1M frames).

What the curves are (from ``examples/dqn.py`` and the README of that repository): the moving
average ``avg = 0.99 avg + 0.01 G`` of *training* episode returns (epsilon-greedy, epsilon 1 -> 0.1
over the first 100,000 frames, then 0.1), mean of 30 runs, the full action set of 6 actions,
RMSprop (lr 2.5e-4), one update per frame, replay 100,000, target copy every 1,000, 5M frames
(MinAtar has no frame skip: a frame is an agent step). The Seaquest curve is of MinAtar v1.0.10
or lower (an oxygen bug fixed in 1.0.11).

Prints JSON: per game the value at each of `AT_M_FRAMES`, the number of pixel columns that held
the blue line, and the largest residual of the axis fit (in the plot's units).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DQN_BLUE = (1, 115, 178)
"""The DQN line's colour in the figure (its most common blue)."""

TICK_LABELS: dict[str, tuple[float, ...]] = {
    "Seaquest": (20, 15, 10, 5, 0),
    "Breakout": (15, 10, 5, 0),
    "Asterix": (20, 15, 10, 5, 0),
    "Freeway": (50, 40, 30, 20, 10, 0),
    "SpaceInvaders": (200, 150, 100, 50, 0),
}
"""Each panel's y tick labels from top to bottom, read from the figure. Panels are found in the
figure's order: the top row (Seaquest, Breakout), then the bottom row (Asterix, Freeway, Space
Invaders)."""

X_RANGE_M_FRAMES = 5.0
"""Every panel's x axis runs from 0 at its left spine to 5M frames at its right spine (tick marks
0-5 at equal steps, checked by `panels`)."""

AT_M_FRAMES = (1.0, 5.0)
WINDOW_M_FRAMES = 0.05
MIN_SPINE_PIXELS = 300


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of True in a 1-D mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2], strict=True))


def _centres(indices: list[int]) -> list[float]:
    mask = np.zeros(max(indices) + 2, bool)
    mask[indices] = True
    return [(a + b - 1) / 2 for a, b in _runs(mask)]


def panels(black: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(left, right, top, bottom)`` pixel spines of each panel, in reading order.

    A spine is a column whose longest black run is at least `MIN_SPINE_PIXELS`; adjacent columns
    (a spine is several pixels wide) are one spine; a panel is a left and a right spine with the
    same rows.
    """
    spines = []
    for x in range(black.shape[1]):
        runs = [r for r in _runs(black[:, x]) if r[1] - r[0] >= MIN_SPINE_PIXELS]
        if runs:
            top, stop = max(runs, key=lambda r: r[1] - r[0])
            if spines and spines[-1][1] == x - 1 and spines[-1][2] == top:
                spines[-1][1] = x
            else:
                spines.append([x, x, top, stop - 1])
    found = []
    for rows in sorted({(s[2], s[3]) for s in spines}):
        same = [s for s in spines if (s[2], s[3]) == rows]
        if len(same) % 2:
            raise ValueError(f"spines at rows {rows} do not pair into panels: {same}")
        for left, right in zip(same[::2], same[1::2], strict=True):
            found.append((left[1], right[0], rows[0], rows[1]))
    # rows of panels: sort by top (within 20 px), then left
    found.sort(key=lambda p: (p[2] // 20, p[0]))
    return found


def line_value(
    line: np.ndarray, panel: tuple[int, int, int, int], axis: tuple[float, float], at: float
) -> tuple[float, int, int]:
    """``(value, columns holding the line, columns)``: the median height of the line (a pixel
    mask) over the columns within `WINDOW_M_FRAMES` of `at` M frames (the last
    2 x `WINDOW_M_FRAMES` at the axis' end), through the y axis ``value = slope * row + b``."""
    left, right, top, bottom = panel
    inner = slice(top + 3, bottom - 3)
    lo = min(at - WINDOW_M_FRAMES, X_RANGE_M_FRAMES - 2 * WINDOW_M_FRAMES)
    hi = min(at + WINDOW_M_FRAMES, X_RANGE_M_FRAMES)
    columns = range(
        round(left + (right - left) * lo / X_RANGE_M_FRAMES),
        round(left + (right - left) * hi / X_RANGE_M_FRAMES) + 1,
    )
    rows = [
        np.median(np.flatnonzero(line[inner, c])) + inner.start
        for c in columns
        if line[inner, c].any()
    ]
    if not rows:
        return float("nan"), 0, len(columns)
    slope, b = axis
    return float(np.median(rows)) * slope + b, len(rows), len(columns)


def measure(image: Path) -> dict:
    """Game -> the DQN line's value at each of `AT_M_FRAMES`, with the checks' figures."""
    from PIL import Image

    pixels = np.asarray(Image.open(image).convert("RGB")).astype(int)
    black = pixels.sum(axis=2) < 60
    blue = np.abs(pixels - np.array(DQN_BLUE)).sum(axis=2) < 60
    found = panels(black)
    if len(found) != len(TICK_LABELS):
        raise ValueError(f"found {len(found)} panels in {image}, expected {len(TICK_LABELS)}")
    out = {}
    for game, (left, right, top, bottom) in zip(TICK_LABELS, found, strict=True):
        labels = TICK_LABELS[game]
        ticks = _centres([y for y in range(top, bottom + 1) if black[y, left - 9 : left - 4].all()])
        if len(ticks) != len(labels):
            raise ValueError(f"{game}: {len(ticks)} y tick marks, expected {len(labels)}")
        x_ticks = _centres([x for x in range(left - 2, right + 3) if black[bottom, x]])
        steps = np.diff(x_ticks)
        if len(x_ticks) != 6 or steps.max() - steps.min() > 3:
            raise ValueError(f"{game}: x tick marks {x_ticks} are not 0-5 at equal steps")
        slope, intercept = np.polyfit(ticks, labels, 1)
        residual = float(np.abs(np.polyval([slope, intercept], ticks) - labels).max())

        entry = {"axis_fit_max_residual": round(residual, 3)}
        for at in AT_M_FRAMES:
            v, hit, cols = line_value(blue, (left, right, top, bottom), (slope, intercept), at)
            if not hit:
                raise ValueError(f"{game}: no pixel of the DQN line near {at:g}M frames")
            entry[f"at_{at:g}M_frames"] = round(v, 1)
            entry[f"columns_with_line_at_{at:g}M"] = f"{hit} of {cols}"
        out[game] = entry
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="MinAtar's img/learning_curves.gif")
    args = parser.parse_args(argv)
    result = {
        "source": "Young & Tian 2019 (arXiv:1903.03176), github.com/kenjyoung/MinAtar "
        "img/learning_curves.gif (commit 87c2bc8): DQN, mean of 30 runs, moving average "
        "(0.99) of training returns at epsilon 0.1, full action set, 5M frames",
        "method": "experiments/minatar_published.py: pixel measurement of the blue DQN line",
        "games": measure(args.image),
    }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
