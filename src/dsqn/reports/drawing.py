"""What every figure of the report shares: a fixed colour per algorithm (shades of one colour map
for the points of a sweep), file-safe figure names, and the check of a figure's options.

Nothing here imports pyplot: figures are made as matplotlib ``Figure`` objects, so that importing
the figure modules leaves matplotlib's backend as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import matplotlib

from dsqn.reports.runs import ALGORITHM_ORDER, algorithm_sort_key, parse_label

__all__ = ["check_choice", "algorithm_color", "algorithm_colors", "shades", "safe_name"]


def check_choice(name: str, value: str, valid: Sequence[str]) -> None:
    """Raises ValueError naming the valid choices when `value` is not one of them."""
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


def algorithm_color(algorithm: str) -> tuple[float, ...]:
    """A fixed color per algorithm, so that every figure matches."""
    index = algorithm_sort_key(algorithm)[0]
    if index < len(ALGORITHM_ORDER):
        return matplotlib.colormaps["tab10"](index)
    # Stable across runs (unlike hash()), and apart from the tab10 colours of known algorithms.
    return matplotlib.colormaps["Dark2"](sum(map(ord, algorithm)) % 8)


def algorithm_colors(algorithms: Iterable[str]) -> dict[str, tuple[float, ...]]:
    """`algorithm_color` of each algorithm, except the points of a sweep: `shades` in the order
    of their values, so that a sweep reads as a progression."""
    algorithms = sorted(set(algorithms), key=algorithm_sort_key)
    points: dict[str, list[str]] = {}
    for label in algorithms:
        name, point = parse_label(label)
        if point:
            points.setdefault(name, []).append(label)
    colors = {label: algorithm_color(label) for label in algorithms}
    for labels in points.values():
        colors.update(zip(labels, shades(len(labels)), strict=True))
    return colors


def shades(n: int) -> list[tuple[float, ...]]:
    """n colours of viridis, dark to light (its yellow end left out, too pale on white)."""
    return [matplotlib.colormaps["viridis"](0.9 * i / max(n - 1, 1)) for i in range(n)]


def safe_name(text: str) -> str:
    """`text` usable in a file name: runs of other characters than letters, digits, ``_.-``
    become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
