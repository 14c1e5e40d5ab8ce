"""Tests of experiments/grid.py: numbering, cell states, commands, and a run with a fake dsqn."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import run, spawn

GRID_PATH = Path(__file__).resolve().parents[1] / "experiments" / "grid.py"
_spec = importlib.util.spec_from_file_location("grid", GRID_PATH)
grid = importlib.util.module_from_spec(_spec)
# dataclasses looks its module up in sys.modules.
sys.modules["grid"] = grid
_spec.loader.exec_module(grid)

LAUNCHER = ("dsqn",)

# Stands in for the dsqn CLI: records its arguments, then finishes the run directory it was given
# (evaluation.json), or fails for a game named in FAIL_GAME.
FAKE_DSQN = """
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_DSQN_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if "--game" in args and args[args.index("--game") + 1] == os.environ.get("FAIL_GAME"):
    sys.exit(3)
run_dir = Path(args[args.index("--run-dir") + 1] if "--run-dir" in args else args[-1])
run_dir.mkdir(parents=True, exist_ok=True)
(run_dir / "evaluation.json").write_text("{}")
"""


def _finish(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "evaluation.json").write_text(json.dumps({"per_seed": {}}))


def _checkpoint(run_dir: Path) -> None:
    (run_dir / "checkpoints" / "1000").mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")


def _main(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    status = grid.main(list(argv), launcher=LAUNCHER)
    return status, capsys.readouterr().out


def test_list_numbering(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _finish(tmp_path / "Breakout" / "dqn")
    status, out = _main(
        capsys,
        *("--games", "Pong", "Breakout", "--algorithms", "dqn", "dsqn", "convert"),
        *("--root", str(tmp_path), "--list"),
    )
    assert status == 0
    rows = [line.split() for line in out.splitlines()]
    assert [row[:3] for row in rows] == [
        ["0", "Pong/dqn", "start"],
        ["1", "Pong/dsqn", "start"],
        ["2", "Pong/convert", "wait"],
        ["3", "Breakout/dqn", "done"],
        ["4", "Breakout/dsqn", "start"],
        ["5", "Breakout/convert", "start"],
    ]
    assert rows[5][3] == str(tmp_path / "Breakout" / "converted-snn")


def test_default_grid_is_the_17_games() -> None:
    cells = grid.build_cells(grid.PAPER_GAMES, ["dqn", "dsqn"], [0, 1, 2], Path("r"))
    assert len(cells) == 34
    assert cells[33].label == "VideoPinball/dsqn"


def test_dry_run_start_resume_skip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _finish(tmp_path / "Pong" / "dqn")
    _checkpoint(tmp_path / "Pong" / "dsqn")
    status, out = _main(
        capsys,
        *("--games", "Pong", "Breakout", "--algorithms", "dqn", "dsqn", "--seeds", "0", "1"),
        *("--root", str(tmp_path), "--dry-run", "--", "--run.total_agent_steps", "5000"),
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"[0] Pong/dqn: skip: {tmp_path}/Pong/dqn/evaluation.json exists"
    assert lines[1] == "[1] Pong/dsqn: resume"
    assert lines[2] == f"    dsqn train --resume {tmp_path}/Pong/dsqn --run.total_agent_steps 5000"
    assert lines[3] == "[2] Breakout/dqn: start"
    assert lines[4] == (
        f"    dsqn train dqn --game Breakout --seeds 0 1 --run-dir {tmp_path}/Breakout/dqn "
        "--run.total_agent_steps 5000"
    )
    assert not (tmp_path / "Breakout").exists()


def test_empty_checkpoints_dir_starts(tmp_path: Path) -> None:
    (tmp_path / "Pong" / "dqn" / "checkpoints").mkdir(parents=True)
    (cell,) = grid.build_cells(["Pong"], ["dqn"], [0], tmp_path)
    assert grid.cell_state(cell) == "start"


def test_cell_index_selects_one_cell(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status, out = _main(
        capsys,
        *("--games", "Pong", "Breakout", "--algorithms", "dqn", "dsqn"),
        *("--root", str(tmp_path), "--dry-run", "--cell-index", "2"),
    )
    assert status == 0
    assert out.splitlines()[0] == "[2] Breakout/dqn: start"
    assert len(out.splitlines()) == 2
    with pytest.raises(SystemExit):
        _main(capsys, "--games", "Pong", "--root", str(tmp_path), "--cell-index", "2")
    assert "out of range: the grid has 2 cells, 0..1" in capsys.readouterr().err


def test_conversion_needs_finished_dqn(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _finish(tmp_path / "Pong" / "dqn")
    _checkpoint(tmp_path / "Breakout" / "dqn")
    status, out = _main(
        capsys,
        *("--games", "Pong", "Breakout", "--algorithms", "convert"),
        *("--root", str(tmp_path), "--dry-run"),
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "[0] Pong/convert: start"
    assert lines[1] == (
        f"    dsqn convert {tmp_path}/Pong/dqn --run-dir {tmp_path}/Pong/converted-snn"
    )
    assert lines[2].startswith(f"[1] Breakout/convert: skip: {tmp_path}/Breakout/dqn is not")
    assert len(lines) == 3


def test_dry_run_conversion_after_its_dqn(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, out = _main(
        capsys,
        "--games",
        "Pong",
        "--algorithms",
        "dqn",
        "convert",
        "--root",
        str(tmp_path),
        "--dry-run",
    )
    assert out.splitlines()[2].startswith("[1] Pong/convert: start, after the cell above")


def test_bad_names_are_rejected(capsys: pytest.CaptureFixture) -> None:
    for argv, message in (
        (["--games", "Pongg"], "unknown game 'Pongg'; valid: Atlantis, BeamRider"),
        (["--algorithms", "dsq"], "unknown algorithm 'dsq'; valid: dqn, dsqn"),
        (["--algorithms", "dqn", "dqn"], "listed twice"),
    ):
        with pytest.raises(SystemExit):
            _main(capsys, *argv, "--list")
        assert message in capsys.readouterr().err


def test_run_with_fake_dsqn(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake_dsqn.py"
    fake.write_text(FAKE_DSQN)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_DSQN_LOG", str(log))
    monkeypatch.setenv("FAIL_GAME", "Breakout")
    root = tmp_path / "runs"
    argv = ["--games", "Breakout", "Pong", "--algorithms", "dqn", "convert", "--root", str(root)]
    status = grid.main([*argv, "--seeds", "4"], launcher=(sys.executable, str(fake)))
    out = capsys.readouterr().out
    assert status == 1
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # Breakout's dqn fails, so its conversion waits; Pong's conversion runs after its dqn.
    assert [c[:2] for c in calls] == [
        ["train", "dqn"],
        ["train", "dqn"],
        ["convert", str(root / "Pong" / "dqn")],
    ]
    assert "[1] Breakout/convert: skip" in out
    assert "1 cell(s) failed: Breakout/dqn" in out
    assert (root / "Pong" / "converted-snn" / "evaluation.json").is_file()
    # A second invocation skips everything that is done.
    log.unlink()
    monkeypatch.setenv("FAIL_GAME", "none")
    assert grid.main(argv, launcher=(sys.executable, str(fake))) == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c[:2] for c in calls] == [["train", "dqn"], ["convert", str(root / "Breakout" / "dqn")]]


def test_script_entry_point(tmp_path: Path) -> None:
    result = run(
        [sys.executable, str(GRID_PATH), "--games", "Pong", "--root", str(tmp_path), "--list"],
        timeout=120,
        check=True,
    )
    assert result.stdout.split()[:3] == ["0", "Pong/dqn", "start"]


# Stands in for a long `dsqn train`: records its arguments, then waits; SIGTERM makes it record
# the signal and exit 130, as dsqn does after saving its checkpoint.
FAKE_LONG_DSQN = """
import json, os, signal, sys, time
log = os.environ["FAKE_DSQN_LOG"]
def stop(signum, frame):
    with open(log, "a") as f:
        f.write(json.dumps(["stopped", signal.Signals(signum).name]) + "\\n")
    sys.exit(130)
signal.signal(signal.SIGTERM, stop)
with open(log, "a") as f:
    f.write(json.dumps(sys.argv[1:3]) + "\\n")
time.sleep(300)
"""

GRID_WITH_LAUNCHER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("grid", sys.argv[1])
grid = importlib.util.module_from_spec(spec)
sys.modules["grid"] = grid
spec.loader.exec_module(grid)
sys.exit(grid.main(sys.argv[3:], launcher=(sys.executable, sys.argv[2])))
"""


def test_sigterm_reaches_the_running_cell_and_no_other_starts(tmp_path: Path) -> None:
    """SLURM's --signal B:TERM reaches only grid.py (the batch script's process): it passes the
    signal on to the running dsqn and starts no further cell."""
    fake = tmp_path / "fake_dsqn.py"
    fake.write_text(FAKE_LONG_DSQN)
    log = tmp_path / "calls.jsonl"
    argv = ["--games", "Pong", "--algorithms", "dqn", "dsqn", "--root", str(tmp_path / "runs")]
    cmd = [sys.executable, "-c", GRID_WITH_LAUNCHER, str(GRID_PATH), str(fake), *argv]
    proc = spawn(cmd, env={"FAKE_DSQN_LOG": str(log)}, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().endswith("\n")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)  # to grid.py alone, not to its process group
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["train", "dqn"], ["stopped", "SIGTERM"]]
    assert "Pong/dqn: stopped by a signal (exit status 130)" in out


def test_sweep_cells_train_the_sweep_in_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    status, out = _main(
        capsys,
        *("--games", "Pong", "--algorithms", "dsqn", "--seeds", "0", "1"),
        *("--sweep", "network.tau", "1.5", "4", "--root", str(tmp_path), "--dry-run"),
    )
    assert status == 0
    run_dir = tmp_path / "Pong" / "dsqn-sweep-network.tau"
    assert out.splitlines()[1] == (
        f"    dsqn train dsqn --game Pong --seeds 0 1 --sweep network.tau 1.5 4 --run-dir {run_dir}"
    )
    # A resumed sweep cell takes its sweep from the saved config.
    _checkpoint(run_dir)
    (cell,) = grid.build_cells(["Pong"], ["dsqn"], [0], tmp_path, [["network.tau", "1.5", "4"]])
    assert grid.cell_command(cell, "resume", launcher=["dsqn"]) == [
        *("dsqn", "train", "--resume", str(run_dir)),
    ]


@pytest.mark.parametrize(
    "algorithms,sweep,needle",
    [
        (["dsqn"], [["network.time_steps", "4", "8"]], "network.time_steps cannot be swept"),
        (["dsqn"], [["network.tau", "two"]], "needs numeric values"),
        (["dqn", "convert"], [["learner.learning_rate", "1e-4"]], "cannot hold a sweep"),
    ],
)
def test_bad_sweep_cells_are_refused(algorithms, sweep, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        grid.build_cells(["Pong"], algorithms, [0], Path("r"), sweep)


def test_minatar_grid_cells_and_tagged_variants(tmp_path: Path) -> None:
    cells = grid.build_cells(
        list(grid.SUITES["minatar"]["games"]),
        list(grid.SUITES["minatar"]["algorithms"]),
        [0, 1, 2],
        tmp_path,
        suite="minatar",
    )
    assert [c.label for c in cells] == [
        f"{g}/{a}"
        for g in ("Breakout", "SpaceInvaders", "Asterix")
        for a in ("minatar-dqn", "minatar-dsqn")
    ]
    (cell,) = grid.build_cells(
        ["Breakout"], ["minatar-dsqn"], [0], tmp_path, suite="minatar", tag="T4"
    )
    assert cell.run_dir == tmp_path / "Breakout" / "minatar-dsqn-T4"
    command = grid.cell_command(cell, "start", ["--network.time_steps", "4"], launcher=["dsqn"])
    assert command[:7] == ["dsqn", "train", "minatar-dsqn", "--game", "Breakout", "--seeds", "0"]
    assert command[command.index("--name") + 1] == "minatar-dsqn-T4"
    assert command[-2:] == ["--network.time_steps", "4"]
    # The conversion converts the suite's DQN cell.
    (cell,) = grid.build_cells(["Asterix"], ["convert"], [0], tmp_path, suite="minatar")
    assert cell.source_dir == tmp_path / "Asterix" / "minatar-dqn"
    assert cell.run_dir == tmp_path / "Asterix" / "converted-snn"
    assert grid.cell_command(cell, "start", launcher=["dsqn"]) == [
        "dsqn", "convert", str(tmp_path / "Asterix" / "minatar-dqn"),
        "--run-dir", str(tmp_path / "Asterix" / "converted-snn"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown game 'Pong'; valid: Asterix"):
        grid.build_cells(["Pong"], ["minatar-dqn"], [0], tmp_path, suite="minatar")
    with pytest.raises(ValueError, match="unknown algorithm 'dsqn'"):
        grid.build_cells(["Breakout"], ["dsqn"], [0], tmp_path, suite="minatar")
    with pytest.raises(ValueError, match="plain name"):
        grid.build_cells(["Breakout"], ["minatar-dqn"], [0], tmp_path, suite="minatar", tag="a/b")
