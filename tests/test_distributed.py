"""dsqn.runtime.distributed: helpers with one process, and a real two-process run (JAX
multi-controller over gloo on CPU) that must reproduce a one-process run on the same number of
devices."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from processes import python, spawn

from dsqn.cli import main
from dsqn.runtime import distributed


def test_helpers_with_one_process():
    x = jnp.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(distributed.process_rows(x), np.asarray(x))
    tree = {"a": x, "b": jnp.ones(3)}
    fetched = distributed.fetch(tree)
    assert isinstance(fetched["a"], np.ndarray)
    np.testing.assert_array_equal(fetched["a"], np.asarray(x))
    rows = (np.arange(4), np.ones((4, 2)))
    assert distributed.gather_rows(rows) is rows
    assert distributed.any_process(True) and not distributed.any_process(False)
    assert distributed.is_primary()
    distributed.barrier("test")  # nothing to wait for


def test_distributed_train_needs_a_run_dir(capsys):
    assert main(["train", "cartpole-dqn", "--distributed"]) == 2
    assert "--run-dir" in capsys.readouterr().err


def test_initialize_without_a_cluster_says_what_to_set(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(jax.distributed, "initialize", _fails_like_jax)
    with pytest.raises(ValueError, match="set JAX_COORDINATOR_ADDRESS"):
        distributed.initialize()


def _fails_like_jax(**kwargs):
    raise ValueError("coordinator_address should be defined.")


def test_initialize_rejects_a_bad_process_count(monkeypatch):
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES must be an integer, got 'two'"):
        distributed.initialize()


ARGS = [
    "cartpole-dqn",
    "--seeds", "0", "1",
    "--no-progress",
    "--env.envs_per_seed", "2",
    "--learner.warmup_agent_steps", "500",
    "--run.log_period_agent_steps", "500",
    "--eval.period_agent_steps", "1000",
    "--run.checkpoint_period_agent_steps", "1000",
    "--eval.episodes", "3",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _dsqn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    code = "import sys; from dsqn.cli import main; sys.exit(main(sys.argv[1:]))"
    return spawn(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _run_processes(args: list[str], processes: int) -> None:
    """``dsqn train ARGS`` as ``processes`` processes of one distributed run (one CPU device
    each), or as one process with two CPU devices."""
    if processes == 1:
        envs = [{"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}]
    else:
        port = _free_port()
        envs = [
            {
                "XLA_FLAGS": "",
                "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                "JAX_NUM_PROCESSES": str(processes),
                "JAX_PROCESS_ID": str(i),
            }
            for i in range(processes)
        ]
        args = [*args, "--distributed"]
    procs = [_dsqn(["train", *args], env) for env in envs]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]


def _without_speed(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    column = lines[0].split(",").index("sps")
    return [",".join(c for i, c in enumerate(line.split(",")) if i != column) for line in lines]


@pytest.mark.slow
def test_two_processes_reproduce_one_process_with_two_devices_including_resume(tmp_path):
    """2 processes x 1 device = 1 process x 2 devices: the same metrics, evaluations and final
    results, through a checkpoint and a resume; only process 0 writes the logs."""
    for name, processes in (("dist", 2), ("single", 1)):
        run_dir = tmp_path / name
        _run_processes(
            [*ARGS, "--run.total_agent_steps", "1000", "--run-dir", str(run_dir)], processes
        )
        _run_processes(
            ["--resume", str(run_dir), "--run.total_agent_steps", "2000", "--no-progress"],
            processes,
        )
    dist, single = tmp_path / "dist", tmp_path / "single"
    assert sorted(p.name for p in (dist / "checkpoints").iterdir()) == ["1000", "2000"]
    assert _without_speed(dist / "metrics.csv") == _without_speed(single / "metrics.csv")
    assert len(_without_speed(dist / "metrics.csv")) == 1 + 2 * 4  # header + 2 seeds x 4 rows
    assert (dist / "evaluations.csv").read_text() == (single / "evaluations.csv").read_text()
    a = json.loads((dist / "evaluation.json").read_text())
    b = json.loads((single / "evaluation.json").read_text())
    assert a["agent_steps"] == 2000 and a["per_seed"] == b["per_seed"]
    meta = json.loads((dist / "config.json").read_text())["meta"]
    assert len(meta["devices"]) == 2 and "--distributed" in meta["command"]


def test_process_rows_of_a_sharded_array_on_forced_devices():
    """With two (forced) CPU devices in one process, the rows of a seed-sharded array come back
    whole and in order."""
    code = (
        "import jax, numpy as np, jax.numpy as jnp\n"
        "from jax.sharding import Mesh, NamedSharding, PartitionSpec as P\n"
        "from dsqn.runtime.distributed import process_rows, fetch\n"
        "mesh = Mesh(np.array(jax.devices()), ('seed',))\n"
        "x = jax.device_put(jnp.arange(8.0), NamedSharding(mesh, P('seed')))\n"
        "assert len(x.addressable_shards) == 2\n"
        "assert process_rows(x).tolist() == list(range(8))\n"
        "assert fetch(x).tolist() == list(range(8))\n"
        "print('ok')\n"
    )
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = python(code, env=flags, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_multi_process_run_must_shard_its_seeds(monkeypatch):
    """Unsharded seeds in a multi-process run would have every process train every seed into
    the same run directory: refused with the field to change."""
    from dsqn import config as C
    from dsqn.training.chunk import seed_mesh

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    cfg = C.apply_overrides(C.preset("cartpole-dqn"), {"run.shard_seeds": "false"})
    with pytest.raises(C.ConfigError, match="run.shard_seeds"):
        seed_mesh(cfg)
