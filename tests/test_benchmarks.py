"""The benchmarks run end to end in their tiny ``--smoke`` mode and print the documented JSON.

Nothing here is a timing check: smoke mode uses tiny shapes and one repeat.
"""

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MACHINE_KEYS = {"jax", "backend", "device_kind", "cpu_count"}


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))


def _run(name: str, capsys, *flags: str) -> dict:
    result = importlib.import_module(f"benchmarks.{name}").main(["--smoke", *flags])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result))
    assert printed["benchmark"] == name
    assert MACHINE_KEYS <= set(printed["machine"])
    return printed


@pytest.mark.slow
def test_update(capsys):
    out = _run("update", capsys)
    for kind in ("dsqn", "dqn"):
        assert set(out[kind]) == {"seconds", "gflop", "gflop_per_s", "in_scan_seconds"}
        assert out[kind]["seconds"] > 0 and out[kind]["gflop"] > 0


def test_act(capsys):
    out = _run("act", capsys)
    assert set(out["seconds"]) == {f"{k}_batch{b}" for k in ("dsqn", "dqn") for b in (1, 8)}


def test_matmul(capsys):
    out = _run("matmul", capsys)
    assert out["gflop_per_s"] > 0


def test_memory(capsys):
    out = _run("memory", capsys)
    for kind in ("dsqn", "dqn"):
        assert out["update"][kind]["temp_bytes"] >= 0
    assert out["peak_rss_bytes"] > 0
    # Deduplicated frames: about one 84x84 frame per transition plus small fields.
    per_transition = out["replay_bytes_per_atari_transition"]["capacity_1000000"]
    assert 84 * 84 <= per_transition < 2 * 84 * 84


def test_checkpoint(capsys, tmp_path):
    out = _run("checkpoint", capsys, "--dir", str(tmp_path))
    assert out["save_seconds"] > 0 and out["restore_seconds"] > 0
    # Scaled in proportion to the bytes: 3 seeds take three times one seed.
    scaled = out["paper_replay"]["save_seconds_scaled"]
    assert scaled["3_seeds"] == pytest.approx(3 * scaled["1_seeds"])
    assert 7.0e9 < out["paper_replay"]["bytes_per_seed"] < 7.2e9
    assert list(tmp_path.iterdir()) == []  # the measurement cleans up after itself


@pytest.mark.slow
def test_compare(capsys):
    out = _run("compare", capsys)
    if "skipped" in out:
        assert "torch" in out["skipped"]
    else:
        assert set(out["ratios_ours_over_reference"]) == {"update", "act_batch1", "act_batch8"}
        assert set(out["update_seconds"]) == {"ours", "reference"}


@pytest.mark.slow
def test_train(capsys):
    # One case: every case compiles a whole training program.
    out = _run("train", capsys, "--cases", "cartpole-dqn")
    run = out["cartpole"]["cartpole-dqn"]
    assert run["agent_steps_per_s"] > 0 and run["agent_steps_per_seed"] == 8


def test_flop_count_matches_the_documented_formula():
    from benchmarks import common

    # Paper shapes: about 100 GFLOP per DSQN update, 2.4 per DQN update.
    assert common.update_flops("dsqn", 64, 32) / 1e9 == pytest.approx(100.2, abs=0.1)
    assert common.update_flops("dqn", 64, 32) / 1e9 == pytest.approx(2.39, abs=0.01)


def test_run_all_collects_every_benchmark(monkeypatch, capsys):
    from benchmarks import run_all

    monkeypatch.setattr(run_all, "run_one", lambda name, flags: {"name": name, "flags": flags})
    out = run_all.main(["--smoke", "--only", "matmul", "act"])
    assert out == {
        "matmul": {"name": "matmul", "flags": ["--smoke"]},
        "act": {"name": "act", "flags": ["--smoke"]},
    }
    assert json.loads(capsys.readouterr().out) == out
