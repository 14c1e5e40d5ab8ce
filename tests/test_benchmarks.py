"""The benchmarks run end to end in their tiny ``--smoke`` mode and print the documented JSON.

Nothing here is a timing check: smoke mode uses tiny shapes and one repeat.
"""

import importlib
import json
import sys
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


def _check_peer_runs(out: dict, cases: set[str]) -> None:
    assert set(out["runs"]) == cases
    assert out["counts_equal"]
    assert len(out["load_average_1_5_15min"]["start"]) == 3
    assert out["differences"] and out["matched"]["envs_per_seed"] == 4
    for run in out["runs"].values():
        # --smoke: 2 seeds x 4 envs, 4 iterations of 4 agent steps, one update per iteration.
        assert run["seeds"] == 2
        assert run["agent_steps_per_seed_per_call"] == 16
        assert run["updates_per_seed_per_call"] == 4
        assert run["agent_steps_per_s"] > 0 and run["seconds_per_update_all_seeds"] > 0
        assert run["samples_seconds_median"] > 0
        assert run["all_seeds_agent_steps_per_s"] == pytest.approx(2 * run["agent_steps_per_s"])


@pytest.mark.slow
def test_peer_dsqn_side(capsys):
    out = _run("peer", capsys, "--cases", "dsqn-dqn", "dsqn-dsqn")
    _check_peer_runs(out, {"dsqn-dqn", "dsqn-dsqn"})
    assert out["ratios_agent_steps_per_s"] == {}
    assert out["runs"]["dsqn-dsqn"]["config"]["resolved"]["network.time_steps"] == 2


@pytest.mark.slow
def test_peer_rejax_side(capsys):
    pytest.importorskip("rejax")
    pytest.importorskip("gymnax")
    out = _run("peer", capsys, "--cases", "dsqn-dqn", "rejax-dqn")
    _check_peer_runs(out, {"dsqn-dqn", "rejax-dqn"})
    rejax = out["runs"]["rejax-dqn"]["config"]
    assert rejax["create_options"]["num_envs"] == 4 and rejax["create_options"]["num_epochs"] == 1
    assert rejax["create_options"]["skip_initial_evaluation"]
    ratio = out["ratios_agent_steps_per_s"]["dsqn-dqn_over_rejax-dqn"]
    rates = [out["runs"][c]["agent_steps_per_s"] for c in ("dsqn-dqn", "rejax-dqn")]
    assert ratio == pytest.approx(rates[0] / rates[1])


@pytest.mark.parametrize("missing", ["rejax", "gymnax"])
def test_peer_without_rejax_says_what_to_install(missing, monkeypatch, capsys):
    from benchmarks import peer

    monkeypatch.setitem(sys.modules, missing, None)  # as if it were not installed
    with pytest.raises(peer.MissingPeer) as error:
        peer.main(["--smoke"])
    assert repr(missing) in str(error.value)
    assert 'pip install -e ".[peer]"' in str(error.value)
    assert capsys.readouterr().out == ""  # nothing measured, no JSON


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


def test_sequential_launches_of_a_hand_built_program():
    import jax
    import jax.numpy as jnp
    from jax.experimental import pallas as pl

    from benchmarks.neuron_backends import UnknownTrips, sequential_launches

    def inner(c, _):
        return c + 1.0, None

    def outer(c, _):  # 1 + 3 launches per iteration
        return jax.lax.scan(inner, c, None, length=3)[0], None

    def kernel(x_ref, o_ref):  # a fused kernel's own loop is not counted
        o_ref[...] = jax.lax.fori_loop(0, 9, lambda i, v: v * 2.0, x_ref[...])

    def program(x, flag):
        x = jax.lax.scan(outer, x, None, length=5)[0]  # 5 x (1 + 3) = 20
        x = jax.lax.fori_loop(0, jnp.int32(flag), lambda i, v: v + 1.0, x)  # trips x 1
        x = jax.lax.cond(  # the costlier branch: 4
            flag > 0,
            lambda v: jax.lax.scan(inner, v, None, length=4)[0],
            lambda v: jax.lax.scan(inner, v, None, length=2)[0],
            x,
        )
        out = jax.ShapeDtypeStruct((8,), jnp.float32)
        return pl.pallas_call(kernel, out_shape=out, interpret=True)(jnp.full((8,), x))  # 1

    jaxpr = jax.make_jaxpr(program)(jnp.float32(0.0), jnp.int32(1)).jaxpr
    assert sequential_launches(jaxpr, while_trips=7) == 20 + 7 + 4 + 1
    with pytest.raises(UnknownTrips):
        sequential_launches(jaxpr)


@pytest.mark.slow
def test_neuron_backends(capsys):
    out = _run("neuron_backends", capsys, "--envs-per-seed", "4")
    assert out["pallas_interpreted"]
    for backend in ("scan", "pallas"):
        assert set(out["layers"]["fc1"][backend]) == {"forward", "forward_backward"}
        assert set(out["network"][backend]) == {"update", "act_batch1", "act_batch8"}
        (chunk,) = out["launches"][backend]["training_chunk"].values()
        # 4 envs, one update every 4 agent steps: one update per iteration, 4 agent steps.
        assert chunk["updates_per_iteration"] == 1
        assert chunk["per_agent_step"] == chunk["per_iteration"] / 4
        hours = chunk["hours_for_50M_agent_steps"]["10us_per_launch"]
        assert hours == pytest.approx(chunk["per_agent_step"] * 50e6 * 10e-6 / 3600)
    steps = out["time_steps"]
    scan, pallas = out["launches"]["scan"], out["launches"]["pallas"]
    # DSQN has 4 spiking layers: acting runs 4 loops of T steps, or 4 kernels.
    assert scan["acting_forward"] == 4 * steps
    assert pallas["acting_forward"] == 4
    # An update runs them 3 times (online and target forward, backward): 12 loops of T steps
    # become 12 kernels; every other loop is the same in both programs.
    assert scan["update"] - pallas["update"] == 12 * steps - 12
    # One acting forward and one update per iteration of the chunk.
    scan_chunk, pallas_chunk = (
        out["launches"][b]["training_chunk"]["envs_per_seed_4"]["per_iteration"]
        for b in ("scan", "pallas")
    )
    assert scan_chunk - pallas_chunk == 16 * (steps - 1)


def test_gpu_script_is_valid_bash_and_runs_existing_benchmarks():
    import re
    import subprocess

    script = ROOT / "benchmarks" / "gpu.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert script.stat().st_mode & 0o111  # executable
    runs = re.findall(r"^run (\w+) (\d+)", script.read_text(), flags=re.MULTILINE)
    assert {name for name, _ in runs} == {"neuron_backends", "update", "train"}
    for name, _ in runs:
        assert (ROOT / "benchmarks" / f"{name}.py").is_file()
    assert sum(int(seconds) for _, seconds in runs) < 600  # every measurement in 10 minutes


@pytest.mark.slow
def test_sweep(capsys):
    out = _run("sweep", capsys)
    assert out["agents"] == 2 and set(out["wall_seconds"]) == {"sweep", "separate"}
    rates = out["agent_steps_per_s"]
    assert out["sweep_over_separate"] == pytest.approx(rates["sweep"] / rates["separate"])
