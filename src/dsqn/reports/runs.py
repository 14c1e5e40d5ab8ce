"""Run discovery and the `Run` record: which run directories a report reads, and what it reads
of each.

Input is a set of run directories (docs/run_directory.md), given one by one or found under a root
directory by their ``config.json`` + ``evaluation.json`` (`resolve_run_dirs`). A run's algorithm
is its config's ``name`` (the preset: dqn, dsqn, dsqn-if, converted-snn, ...) and its game is
``env.game`` (``"Pong-v5"`` is read as ``"Pong"``).

A sweep run (a config with a non-empty ``sweep`` section) holds one algorithm per sweep point,
labelled with the point's values, e.g. ``"dsqn [network.tau=1.5]"`` (`point_label`): `load_runs`
gives one `Run` per point, which every table and figure treats as an algorithm of its own.

Games and algorithms are ordered by `game_sort_key` and `algorithm_sort_key` everywhere.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dsqn.config.games import PAPER_GAMES, canonical_game
from dsqn.rundir import files as rd
from dsqn.rundir.files import PROTOCOLS

__all__ = [
    "ALGORITHM_ORDER",
    "RUN_FILES",
    "Run",
    "sweep_path",
    "point_label",
    "agent_key",
    "parse_label",
    "read_sweep",
    "sweep_points",
    "point_energies",
    "find_run_dirs",
    "resolve_run_dirs",
    "read_identity",
    "load_runs",
    "load_run",
    "game_sort_key",
    "algorithm_sort_key",
    "by_game_and_algorithm",
]

ALGORITHM_ORDER: tuple[str, ...] = (
    "dqn",
    "dsqn",
    "dsqn-spike-readout",
    "dsqn-if",
    "dsqn-maxmem",
    "converted-snn",
    "double-dqn",
    "double-dsqn",
    "cdqn",
    "cdsqn",
)
"""Column order of the tables; other algorithms follow alphabetically."""

RUN_FILES: tuple[str, ...] = (rd.CONFIG, rd.EVALUATION)
"""The files that make a directory a run directory of the tables (`find_run_dirs`)."""

T = TypeVar("T")


# ----------------------------------------------------------------------------- the record


@dataclasses.dataclass(frozen=True)
class Run:
    """What the report reads from one run directory, or from one sweep point of a sweep run.

    Attributes:
      run_dir: the directory.
      algorithm: the config's ``name``; for a sweep point, `point_label` of the name and values.
      game: ``env.game`` without an envpool ``-v5`` suffix.
      suite: ``env.suite`` (``"atari"`` or ``"classic"``).
      seed_scores: protocol -> seed -> that seed's evaluation mean (raw full-game score).
      energies: what ``energy.json`` says of these agents: the whole file, or for a sweep point
        its agents' ``per_seed`` entries (keyed by `agent_key`); empty when there is none.
      name: the config's ``name``.
      values: swept config path -> this point's value; empty for a run without a sweep.
      sweep: swept config path -> every value of the run's sweep (see `read_sweep`).
    """

    run_dir: Path
    algorithm: str
    game: str
    suite: str
    seed_scores: dict[str, dict[int, float]]
    energies: tuple[dict[str, Any], ...]
    name: str
    values: dict[str, float] = dataclasses.field(default_factory=dict)
    sweep: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------- sweeps


def sweep_path(field: str) -> str:
    """The config path of a ``sweep`` section field: its first ``_`` becomes ``.``
    (``network_tau`` -> ``network.tau``)."""
    section, underscore, name = field.partition("_")
    if not (section and underscore and name):
        raise ValueError(f"sweep field {field!r} is not <section>_<field>, e.g. network_tau")
    return f"{section}.{name}"


def _point_text(values: Mapping[str, float]) -> list[str]:
    return [f"{path}={value:g}" for path, value in values.items()]


def point_label(name: str, values: Mapping[str, float]) -> str:
    """The algorithm label of a sweep point, ``"dsqn [network.tau=1.5, learner.adam_eps=0.01]"``
    (values as ``f"{v:g}"``, in sweep order); just `name` without swept values."""
    return f"{name} [{', '.join(_point_text(values))}]" if values else name


def agent_key(values: Mapping[str, float], seed: int) -> str:
    """The ``per_seed`` key of a sweep run's agent: ``"network.tau=1.5,seed=0"``."""
    return ",".join([*_point_text(values), f"seed={seed}"])


def parse_label(label: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    """The inverse of `point_label`: ``(name, ((path, value), ...))``; a label that is not a
    sweep point's is its own name with no values."""
    name, bracket, rest = label.partition(" [")
    if not bracket or not rest.endswith("]"):
        return label, ()
    point = []
    for item in rest[:-1].split(", "):
        path, equals, value = item.partition("=")
        try:
            point.append((path, float(value)))
        except ValueError:
            return label, ()
        if not equals:
            return label, ()
    return name, tuple(point)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sweep(config: dict[str, Any], path: Path) -> dict[str, tuple[float, ...]]:
    section = config.get("sweep")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: 'sweep' is {section!r}, not an object of value lists")
    swept = {}
    for field, values in section.items():
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise ValueError(f"{path}: sweep field {field!r} is {values!r}, not a list of numbers")
        if values:
            swept[sweep_path(field)] = tuple(float(v) for v in values)
    return swept


def read_sweep(run_dir: str | os.PathLike) -> dict[str, tuple[float, ...]]:
    """Swept config path -> its values, in the order of ``config.json``'s ``sweep`` section (the
    order of agent keys and CSV columns); empty for a run without a sweep (or an old run whose
    config has no ``sweep`` section)."""
    return _sweep(rd.read_config_data(run_dir), Path(run_dir) / rd.CONFIG)


def sweep_points(sweep: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The Cartesian product of the swept values, first field outermost; one empty point
    without a sweep."""
    return [dict(zip(sweep, point, strict=True)) for point in itertools.product(*sweep.values())]


def _is_run_dir(path: Path, required: Sequence[str]) -> bool:
    return all((path / name).is_file() for name in required)


def find_run_dirs(root: str | os.PathLike, required: Sequence[str] = RUN_FILES) -> list[Path]:
    """Run directories under `root` (itself included): directories holding all `required` files.

    Returns:
      Sorted paths; empty when there are none.

    Raises:
      FileNotFoundError: `root` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"run root {str(root)!r} is not a directory")
    found = []
    for directory, subdirectories, _ in os.walk(root):
        if _is_run_dir(Path(directory), required):
            found.append(Path(directory))
            # A run directory holds no other run; its checkpoints can hold many files.
            subdirectories.clear()
    return sorted(found)


def resolve_run_dirs(
    run_dirs_or_root: str | os.PathLike | Iterable[str | os.PathLike],
    required: Sequence[str] = RUN_FILES,
) -> list[Path]:
    """Run directories named by a root, a run directory, or a list of either (searched below).

    Raises:
      FileNotFoundError: a path is not a directory, or no run directory was found.
    """
    if isinstance(run_dirs_or_root, str | os.PathLike):
        paths = [Path(run_dirs_or_root)]
    else:
        paths = [Path(p) for p in run_dirs_or_root]
    found: list[Path] = []
    for path in paths:
        found.extend(find_run_dirs(path, required))
    if not found:
        raise FileNotFoundError(
            f"no run directory (a directory holding {' + '.join(required)}) under "
            f"{', '.join(str(p) for p in paths)}"
        )
    return sorted(set(found))


def _config_identity(config: dict[str, Any], path: Path) -> tuple[str, str, str]:
    env = config.get("env")
    if not isinstance(config.get("name"), str) or not isinstance(env, dict) or "game" not in env:
        raise ValueError(f"{path} lacks 'name' or 'env.game' (see docs/run_directory.md)")
    suite = str(env.get("suite", "atari"))
    return config["name"], canonical_game(str(env["game"]), suite), suite


def _protocol_scores(by_protocol: Any) -> dict[str, float]:
    """Protocol -> mean of one ``per_seed`` entry, for the protocols it has a score of."""
    scores = {}
    for protocol in PROTOCOLS:
        entry = by_protocol.get(protocol) if isinstance(by_protocol, dict) else None
        if isinstance(entry, dict) and entry.get("mean") is not None:
            scores[protocol] = float(entry["mean"])
    return scores


def _point_of(
    key: str, entry: Any, sweep: Mapping[str, Sequence[float]], path: Path
) -> tuple[tuple[float, ...], int]:
    """``(values in sweep order, seed)`` of a sweep run's ``per_seed`` entry."""
    seed = entry.get("seed") if isinstance(entry, dict) else None
    values = entry.get("values") if isinstance(entry, dict) else None
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(
            f"{path}: per_seed entry {key!r} of a sweep run lacks an integer 'seed' "
            "(see docs/run_directory.md)"
        )
    if not isinstance(values, dict) or set(values) != set(sweep):
        raise ValueError(
            f"{path}: per_seed entry {key!r} has 'values' {values!r}; the sweep's fields are "
            f"{', '.join(sweep)}"
        )
    point = tuple(values[p] for p in sweep)
    for p, value in zip(sweep, point, strict=True):
        if not _is_number(value) or float(value) not in sweep[p]:
            raise ValueError(
                f"{path}: per_seed entry {key!r} has {p}={value!r}, not a value of the sweep "
                f"({', '.join(f'{v:g}' for v in sweep[p])})"
            )
    return tuple(float(v) for v in point), seed


def _seed_scores(
    evaluation: dict[str, Any], path: Path, sweep: Mapping[str, Sequence[float]]
) -> dict[tuple[float, ...], dict[str, dict[int, float]]]:
    """Sweep point (values in sweep order; ``()`` without a sweep) -> protocol -> seed -> score."""
    per_seed = evaluation.get("per_seed")
    if not isinstance(per_seed, dict):
        raise ValueError(f"{path} lacks the 'per_seed' object (see docs/run_directory.md)")
    scores: dict[tuple[float, ...], dict[str, dict[int, float]]] = {
        tuple(point.values()): {p: {} for p in PROTOCOLS} for point in sweep_points(sweep)
    }
    seen: set[tuple[tuple[float, ...], int]] = set()
    for key, entry in per_seed.items():
        if sweep:
            point, seed = _point_of(key, entry, sweep, path)
            if (point, seed) in seen:
                raise ValueError(f"{path}: per_seed holds agent {key!r} twice")
            seen.add((point, seed))
        elif key.lstrip("-").isdigit():
            point, seed = (), int(key)
        else:
            raise ValueError(f"{path}: per_seed key {key!r} is not an integer seed")
        for protocol, score in _protocol_scores(entry).items():
            scores[point][protocol][seed] = score
    return scores


def point_energies(
    energy: dict[str, Any] | None, values: Mapping[str, float], seeds: Iterable[int]
) -> tuple[dict[str, Any], ...]:
    """The ``energy.json`` objects that stand for a point's agents: for a sweep point, its
    entries of ``per_seed`` (keyed by `agent_key`; the file's top level averages every agent of
    the sweep, so it stands for no single point); without swept values, the whole file."""
    if not values:
        return () if energy is None else (energy,)
    per_seed = energy.get("per_seed") if isinstance(energy, dict) else None
    if not isinstance(per_seed, dict):
        return ()
    entries = (per_seed.get(agent_key(values, seed)) for seed in seeds)
    return tuple(e for e in entries if isinstance(e, dict))


def read_identity(run_dir: str | os.PathLike) -> tuple[str, str, str]:
    """(algorithm, game, suite) of a run directory, from its ``config.json``."""
    return _config_identity(rd.read_config_data(run_dir), Path(run_dir) / rd.CONFIG)


def load_runs(run_dir: str | os.PathLike) -> tuple[Run, ...]:
    """Reads one run directory's ``config.json``, ``evaluation.json`` and ``energy.json``:
    one `Run`, or for a sweep run one per sweep point (in sweep order, first field outermost).

    Raises:
      ValueError: a file breaks docs/run_directory.md (the message names it).
    """
    run_dir = Path(run_dir)
    config = rd.read_config_data(run_dir)
    name, game, suite = _config_identity(config, run_dir / rd.CONFIG)
    sweep = _sweep(config, run_dir / rd.CONFIG)
    scores = _seed_scores(rd.read_evaluation(run_dir), run_dir / rd.EVALUATION, sweep)
    energy = rd.read_energy(run_dir)
    runs = []
    for point, seed_scores in scores.items():
        values = dict(zip(sweep, point, strict=True))
        seeds = sorted({s for by_seed in seed_scores.values() for s in by_seed})
        energies = point_energies(energy, values, seeds)
        runs.append(
            Run(
                run_dir=run_dir,
                algorithm=point_label(name, values),
                game=game,
                suite=suite,
                seed_scores=seed_scores,
                energies=energies,
                name=name,
                values=values,
                sweep=sweep,
            )
        )
    return tuple(runs)


def load_run(run_dir: str | os.PathLike) -> Run:
    """The `Run` of a run directory without a sweep (see `load_runs`).

    Raises:
      ValueError: it is a sweep run (several algorithms: use `load_runs`), or a file breaks
        docs/run_directory.md.
    """
    runs = load_runs(run_dir)
    if len(runs) != 1:
        raise ValueError(
            f"{run_dir} is a sweep run of {len(runs)} points; load_runs reads one Run per point"
        )
    return runs[0]


# ----------------------------------------------------------------------------- order


def game_sort_key(game: str) -> tuple[int, str]:
    """Sort key: the paper's 17 games in its order, then other games alphabetically."""
    return (PAPER_GAMES.index(game) if game in PAPER_GAMES else len(PAPER_GAMES), game)


def algorithm_sort_key(algorithm: str) -> tuple[int, str, tuple[tuple[str, float], ...]]:
    """Sort key: `ALGORITHM_ORDER`, then other algorithms alphabetically; a sweep's points
    (`point_label`) follow their algorithm, by their values in sweep order."""
    name, point = parse_label(algorithm)
    order = ALGORITHM_ORDER
    return (order.index(name) if name in order else len(order), name, point)


def by_game_and_algorithm(grouped: Mapping[str, Mapping[str, T]]) -> dict[str, dict[str, T]]:
    """``game -> algorithm -> value`` reordered: games by `game_sort_key`, each game's
    algorithms by `algorithm_sort_key`."""
    return {
        game: {a: grouped[game][a] for a in sorted(grouped[game], key=algorithm_sort_key)}
        for game in sorted(grouped, key=game_sort_key)
    }
