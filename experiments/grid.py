"""Launcher of the paper's grid: games x algorithms, all seeds of a cell in one process.

One cell is one (game, algorithm) pair trained with all its seeds in one process (the seeds are a
vmapped axis, much faster than one process per seed), in the run directory
``ROOT/<game>/<algorithm>/``:

    dsqn train PRESET --game GAME --seeds 0 1 2 --run-dir ROOT/GAME/PRESET [EXTRA...]

Cells are resumable. Before a cell runs its state is read from its run directory:

- ``done``: ``evaluation.json`` exists; the cell is skipped.
- ``resume``: checkpoints exist but no ``evaluation.json``: ``dsqn train --resume RUN_DIR
  [EXTRA...]`` (the run's saved config with the same extra arguments applied again, so that e.g.
  a changed ``--run.total_agent_steps`` extends or shortens it).
- ``start``: otherwise, ``dsqn train ...`` as above.

The algorithm ``convert`` is the conversion-based SNN of each game's trained DQN:
``dsqn convert ROOT/GAME/dqn --run-dir ROOT/GAME/converted-snn`` (MinAtar: of
``ROOT/GAME/minatar-dqn``). It needs the DQN cell done
(state ``wait`` otherwise: skipped with a message). When both are in one sequential invocation,
list the DQN before ``convert`` and the conversion runs right after its DQN.

A **sweep cell** trains a hyperparameter sweep inside one process per (game, algorithm): with
``--sweep network.tau 1.5 2 4`` (repeatable, for a grid of values) every training cell runs

    dsqn train PRESET --game GAME --seeds 0 1 2 --sweep network.tau 1.5 2 4 \
        --run-dir ROOT/GAME/PRESET-sweep-network.tau

all values x seeds as one vmapped axis of agents (:mod:`dsqn.config.sweep`); ``dsqn report``
groups its results by value. Conversion cells cannot hold a sweep.

**MinAtar** (``--suite minatar``): the games are MinAtar's (default Breakout, SpaceInvaders and
Asterix), the algorithms its presets (default ``minatar-dqn minatar-dsqn``). ``--tag TAG``
names a variant whose settings come after ``--``: its cells live in
``ROOT/<game>/<algorithm>-TAG`` beside the untouched ones, e.g. one run per T:

    python experiments/grid.py --suite minatar --root runs/minatar
    python experiments/grid.py --suite minatar --games Breakout --algorithms minatar-dsqn \
        --tag T4 --root runs/minatar -- --network.time_steps 4

``experiments/minatar.sh`` runs the whole committed MinAtar study this way.

Cells are numbered game-major in the order given (``--list``); ``--cell-index N`` runs cell N
only, for job arrays (``SLURM_ARRAY_TASK_ID``). Examples:

    python experiments/grid.py --games Pong Breakout --algorithms dqn dsqn --seeds 0 1 2 \\
        --root runs/grid --list
    python experiments/grid.py --algorithms dqn dsqn --root runs/grid --dry-run
    python experiments/grid.py --games Pong --algorithms dqn dsqn convert --root runs/smoke \\
        --report runs/smoke/report -- --run.total_agent_steps 5000
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from dsqn.config import PRESETS, preset
from dsqn.config.games import MINATAR_GAMES, PAPER_GAMES

CONVERT = "convert"
"""The algorithm name of conversion cells; their run directory is `CONVERTED_DIR`."""

CONVERTED_DIR = "converted-snn"

GRID_ALGORITHMS: tuple[str, ...] = (
    "dqn",
    "dsqn",
    "dsqn-spike-readout",
    "dsqn-if",
    "double-dqn",
    "double-dsqn",
    "cdqn",
    "cdsqn",
    "dsqn-maxmem",
    CONVERT,
)
"""The paper's algorithms and ablations; any other Atari preset of `dsqn.config` is accepted."""

DEFAULT_ALGORITHMS: tuple[str, ...] = ("dqn", "dsqn")

SUITES: dict[str, dict[str, tuple[str, ...]]] = {
    "atari": {"games": PAPER_GAMES, "algorithms": DEFAULT_ALGORITHMS},
    "minatar": {
        "games": ("Breakout", "SpaceInvaders", "Asterix"),
        "algorithms": ("minatar-dqn", "minatar-dsqn"),
    },
}
"""Per suite (``--suite``), the default games and algorithms of the grid."""

CONVERTED_SOURCE: dict[str, str] = {"atari": "dqn", "minatar": "minatar-dqn"}
"""Per suite, the DQN cell that a ``convert`` cell converts (``ROOT/<game>/<this>``)."""

LAUNCHER: tuple[str, ...] = (sys.executable, "-m", "dsqn.cli")
"""How the ``dsqn`` command is run: the CLI module with this interpreter."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (game, algorithm) of the grid.

    Attributes:
      index: position in the grid (game-major).
      game: Atari game short name.
      algorithm: a preset name, or ``"convert"``.
      seeds: the seeds trained together.
      run_dir: ``ROOT/<game>/<algorithm>`` (``converted-snn`` for ``convert``).
      source_dir: for ``convert``, the DQN run it converts; None otherwise.
      sweep: ``((field, (value, ...)), ...)``, the sweep trained inside the cell (empty: none).
      tag: a variant's name: the run is named ``<algorithm>-<tag>`` (``--name``) and lives in
        ``ROOT/<game>/<algorithm>-<tag>``; None for the untouched algorithm.
    """

    index: int
    game: str
    algorithm: str
    seeds: tuple[int, ...]
    run_dir: Path
    source_dir: Path | None = None
    sweep: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tag: str | None = None

    @property
    def label(self) -> str:
        """``game/algorithm``."""
        return f"{self.game}/{self.algorithm}"


def _valid(suite: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The games and algorithms of ``suite``'s grid."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; valid: {', '.join(SUITES)}")
    if suite == "minatar":
        presets = tuple(p for p in PRESETS if preset(p).env.suite == "minatar")
        return MINATAR_GAMES, (*presets, CONVERT)
    extra = tuple(p for p in PRESETS if p not in GRID_ALGORITHMS and preset(p).env.suite == suite)
    return PAPER_GAMES, GRID_ALGORITHMS + extra


def build_cells(
    games: Sequence[str],
    algorithms: Sequence[str],
    seeds: Sequence[int],
    root: Path,
    sweep: Sequence[Sequence[str]] = (),
    *,
    suite: str = "atari",
    tag: str | None = None,
) -> list[Cell]:
    """The grid's cells, game-major, in the order given; with ``sweep`` (``[[field, value,
    ...], ...]``) sweep cells, in ``ROOT/<game>/<algorithm>-sweep-<field>[-<field>]``; with
    ``tag``, ``-<tag>`` is appended to every training cell's directory (a variant).

    Raises:
      ValueError: an unknown suite, game or algorithm, a repeated one, bad seeds, a field that
        cannot be swept, a sweep with conversion cells, or a tag that is not a plain name.
    """
    swept = _sweep(sweep)
    if swept and CONVERT in algorithms:
        raise ValueError(f"{CONVERT!r} cells cannot hold a sweep: run them without --sweep")
    if tag is not None and (not tag or any(c in tag for c in "/\\ ")):
        raise ValueError(f"--tag must be a plain name (no spaces or slashes), got {tag!r}")
    valid_games, valid_algorithms = _valid(suite)
    for kind, values, valid in (
        ("game", games, valid_games),
        ("algorithm", algorithms, valid_algorithms),
    ):
        for value in values:
            if value not in valid:
                raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")
        if len(set(values)) != len(values):
            raise ValueError(f"a {kind} is listed twice: {' '.join(values)}")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct integers >= 0, at least one; got {list(seeds)}")
    cells = []
    for game in games:
        for algorithm in algorithms:
            if algorithm == CONVERT:
                run_dir = root / game / CONVERTED_DIR
                source = root / game / CONVERTED_SOURCE[suite]
            else:
                name = "-".join(
                    [
                        algorithm,
                        *(["sweep", *(f for f, _ in swept)] if swept else []),
                        *([tag] if tag else []),
                    ]
                )
                run_dir, source = root / game / name, None
            cells.append(
                Cell(len(cells), game, algorithm, tuple(seeds), run_dir, source, swept, tag)
            )
    return cells


def _sweep(sweep: Sequence[Sequence[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``[[field, value, ...], ...]`` checked: sweepable fields, once each, numeric values."""
    from dsqn.config import ConfigError
    from dsqn.config.sweep import sweep_field

    out = []
    for field, *values in sweep:
        try:
            sweep_field(field)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        if not values or any(not _is_number(v) for v in values):
            raise ValueError(f"--sweep {field} needs numeric values, got {values}")
        if field in (f for f, _ in out):
            raise ValueError(f"--sweep {field} is given twice: list all its values once")
        out.append((field, tuple(values)))
    return tuple(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_done(run_dir: Path) -> bool:
    return (run_dir / "evaluation.json").is_file()


def _has_checkpoints(run_dir: Path) -> bool:
    checkpoints = run_dir / "checkpoints"
    return checkpoints.is_dir() and any(checkpoints.iterdir())


def cell_state(cell: Cell) -> str:
    """``done``, ``resume``, ``start`` or ``wait`` (a conversion whose DQN is not done)."""
    if _is_done(cell.run_dir):
        return "done"
    if cell.source_dir is not None:
        return "start" if _is_done(cell.source_dir) else "wait"
    return "resume" if _has_checkpoints(cell.run_dir) else "start"


def cell_command(
    cell: Cell, state: str, extra: Sequence[str] = (), launcher: Sequence[str] = LAUNCHER
) -> list[str] | None:
    """The command that brings `cell` forward from `state`; None for ``done`` and ``wait``."""
    if state in ("done", "wait"):
        return None
    if cell.source_dir is not None:
        return [*launcher, "convert", str(cell.source_dir), "--run-dir", str(cell.run_dir)]
    if state == "resume":
        return [*launcher, "train", "--resume", str(cell.run_dir), *extra]
    seeds = [str(s) for s in cell.seeds]
    return [
        *launcher,
        "train",
        cell.algorithm,
        "--game",
        cell.game,
        "--seeds",
        *seeds,
        *(arg for field, values in cell.sweep for arg in ("--sweep", field, *values)),
        *(("--name", f"{cell.algorithm}-{cell.tag}") if cell.tag else ()),
        "--run-dir",
        str(cell.run_dir),
        *extra,
    ]


def _describe(cell: Cell, state: str) -> str:
    if state == "done":
        return f"skip: {cell.run_dir / 'evaluation.json'} exists"
    if state == "wait":
        return (
            f"skip: {cell.source_dir} is not finished (no evaluation.json); run its dqn cell first"
        )
    return state


def run_forwarding_stop(command: Sequence[str]) -> tuple[int, bool]:
    """Runs ``command``; a SIGTERM sent to this process is passed on to it (SLURM's ``--signal
    B:TERM`` reaches only the batch script's process, this one). A SIGINT from a terminal
    reaches both already and is not repeated (a second one would stop dsqn at once).

    Returns:
      The command's exit status, and whether this process was asked to stop meanwhile.
    """
    proc = subprocess.Popen(command)
    stops: list[int] = []

    def forward(signum, frame):
        stops.append(signum)
        if signum == signal.SIGTERM:
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait(), bool(stops)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_cells(
    cells: Sequence[Cell],
    extra: Sequence[str] = (),
    dry_run: bool = False,
    launcher: Sequence[str] = LAUNCHER,
) -> int:
    """Runs the cells one after another; a failed cell does not stop the next.

    Each cell's state is read just before it runs, so a conversion listed after its DQN sees
    the DQN that this invocation has just trained.

    A SIGTERM or SIGINT stops the running cell (it saves a checkpoint) and starts no other;
    submitting the same cells again resumes it.

    Returns:
      The number of cells whose command failed (0 in a dry run).
    """
    failures = []
    planned: set[Path] = set()
    for cell in cells:
        state = cell_state(cell)
        description = _describe(cell, state)
        if dry_run and state == "wait" and cell.source_dir in planned:
            # A real run would have trained the DQN by now (if it succeeds).
            state = "start"
            description = f"start, after the cell above finishes {cell.source_dir}"
        command = cell_command(cell, state, extra, launcher)
        print(f"[{cell.index}] {cell.label}: {description}", flush=True)
        if command is None:
            continue
        print(f"    {shlex.join(command)}", flush=True)
        if dry_run:
            planned.add(cell.run_dir)
            continue
        returncode, stopped = run_forwarding_stop(command)
        if stopped:
            print(
                f"[{cell.index}] {cell.label}: stopped by a signal (exit status {returncode}); "
                "no further cell starts. Run the same command again to resume.",
                flush=True,
            )
            failures.append(cell.label)
            break
        if returncode != 0:
            print(f"[{cell.index}] {cell.label}: failed with exit status {returncode}", flush=True)
            failures.append(cell.label)
    if failures:
        print(f"{len(failures)} cell(s) failed: {' '.join(failures)}", flush=True)
    return len(failures)


def list_cells(cells: Sequence[Cell]) -> str:
    """One line per cell: index, game/algorithm, state, run directory."""
    width = len(str(max(len(cells) - 1, 0)))
    return "\n".join(
        f"{c.index:>{width}}  {c.label:<32} {cell_state(c):<7} {c.run_dir}" for c in cells
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run the paper's grid of games x algorithms; one process per cell with all "
        "its seeds. Arguments after `--` are passed to every `dsqn train` (start or resume).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--suite",
        choices=list(SUITES),
        default="atari",
        help="atari: the paper's 17 games; minatar: MinAtar's games and presets",
    )
    parser.add_argument(
        "--games", nargs="+", metavar="GAME", help="default: the suite's (all 17 on Atari)"
    )
    parser.add_argument(
        "--algorithms",
        nargs="+",
        metavar="ALGO",
        help=f"presets, or `convert`; the paper's: {' '.join(GRID_ALGORITHMS)}; default "
        "dqn dsqn (MinAtar: minatar-dqn minatar-dsqn)",
    )
    parser.add_argument(
        "--tag",
        help="a variant: its cells go to ROOT/<game>/<algorithm>-TAG, with the settings "
        "given after --",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="SEED")
    parser.add_argument("--root", type=Path, default=Path("runs/grid"))
    parser.add_argument(
        "--sweep",
        nargs="+",
        action="append",
        default=[],
        metavar=("FIELD", "VALUE"),
        help="sweep cells: train every value of FIELD beside every seed inside each cell's "
        "process (repeat for a grid; see dsqn train --sweep)",
    )
    parser.add_argument(
        "--cell-index",
        type=int,
        metavar="N",
        help="run only cell N of --list (e.g. $SLURM_ARRAY_TASK_ID)",
    )
    parser.add_argument("--list", action="store_true", help="print the numbered cells and exit")
    parser.add_argument("--dry-run", action="store_true", help="print commands, run nothing")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="OUT_DIR",
        help="afterwards, write the report (dsqn.reports.report) and figures "
        "(dsqn.reports.plots) of ROOT here",
    )
    return parser


def _write_report(root: Path, out_dir: Path) -> bool:
    """Writes the report and figures of `root`; False (with a message) when it has no run."""
    # Imported here: matplotlib is only needed when a report is asked for.
    from dsqn.reports import plots, report

    try:
        paths = report.write_report(root, out_dir)
    except FileNotFoundError as e:
        print(f"no report: {e}", flush=True)
        return False
    figures = plots.write_all_plots(root, out_dir / "figures")
    print(f"report: {paths['report']} (+{len(paths) - 1} CSV files, {len(figures)} figures)")
    return True


def main(argv: Sequence[str] | None = None, launcher: Sequence[str] = LAUNCHER) -> int:
    """Command-line entry point; returns the exit status (1 when a cell or the report failed).

    Args:
      argv: the arguments (default: the command line's).
      launcher: the command prefix that runs ``dsqn`` (see `LAUNCHER`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        defaults = SUITES.get(args.suite, {})
        cells = build_cells(
            args.games or list(defaults["games"]),
            args.algorithms or list(defaults["algorithms"]),
            args.seeds,
            args.root,
            args.sweep,
            suite=args.suite,
            tag=args.tag,
        )
    except ValueError as e:
        parser.error(str(e))
    if args.list:
        print(list_cells(cells))
        return 0
    if args.cell_index is not None:
        if not 0 <= args.cell_index < len(cells):
            parser.error(
                f"--cell-index {args.cell_index} is out of range: the grid has {len(cells)} "
                f"cells, 0..{len(cells) - 1} (see --list)"
            )
        cells = [cells[args.cell_index]]
    failures = run_cells(cells, extra, args.dry_run, launcher)
    report_ok = True
    if args.report is not None:
        if args.dry_run:
            print(f"would write the report of {args.root} to {args.report}")
        else:
            report_ok = _write_report(args.root, args.report)
    return 1 if failures or not report_ok else 0


if __name__ == "__main__":
    sys.exit(main())
