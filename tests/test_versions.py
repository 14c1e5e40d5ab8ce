"""dsqn.runtime.versions: what a run records about its software; constraints.txt; life without
envpool."""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import pytest
from test_report import make_run

from dsqn.runtime import versions

ROOT = Path(__file__).resolve().parents[1]
# Subprocesses import this checkout's dsqn, wherever they run.
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _declared(*extras: str) -> set[str]:
    """Dependency names read from pyproject.toml by this test (independently of the module)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    names = {re.split(r"[<>=;\[ ]", r, maxsplit=1)[0] for r in reqs}
    return {n.lower() for n in names if n != "dsqn"}


def test_environment_records_every_direct_dependency_and_the_machine():
    env = versions.environment()
    packages = env["packages"]
    assert {n.lower() for n in packages} == _declared() | {"jaxlib"}
    for name, version in packages.items():
        assert version == importlib.metadata.version(name), name
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["accelerator"]["backend"] == jax.default_backend()
    assert env["accelerator"]["device_count"] == len(jax.devices())
    assert env["platform"] and env["machine"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert env["git"]["commit"] == head.stdout.strip()
    assert isinstance(env["git"]["dirty"], bool)


def test_git_state_commit_and_dirty_flag(tmp_path, monkeypatch):
    repo = tmp_path / "checkout"
    (repo / "src" / "dsqn").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[project]\nname = "dsqn"\ndependencies = []\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    monkeypatch.setattr(versions, "_SOURCE", repo / "src" / "dsqn")
    monkeypatch.setattr(versions, "_PYPROJECT", repo / "pyproject.toml")
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert versions.git_state() == {"commit": head.strip(), "dirty": False}
    (repo / "runs").mkdir()
    (repo / "runs" / "x.csv").write_text("untracked results do not make the tree dirty")
    assert versions.git_state()["dirty"] is False
    (repo / "pyproject.toml").write_text('[project]\nname = "dsqn"\ndependencies = ["x"]\n')
    assert versions.git_state()["dirty"] is True
    # An installed copy inside some other repository records no commit.
    (repo / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert versions.git_state() == {"commit": None, "dirty": None}


def test_run_config_records_the_environment(tiny_cartpole_dqn_run):
    meta = json.loads((tiny_cartpole_dqn_run / "config.json").read_text())["meta"]
    env = meta["environment"]
    assert env["packages"]["envpool"] == importlib.metadata.version("envpool")
    assert env["packages"]["flax"] == importlib.metadata.version("flax")
    assert env["git"]["commit"] and env["accelerator"]["backend"] == "cpu"


def test_constraints_pin_every_tested_dependency():
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = dict(line.lower().split("==") for line in lines if line and not line.startswith("#"))
    assert set(pins) == _declared("test", "wandb", "video") | {"jaxlib"}
    assert all(re.fullmatch(r"[0-9][0-9a-z.]*", v) for v in pins.values())
    assert "-c constraints.txt" in (ROOT / ".ci" / "run").read_text()
    assert "constraints.txt" in (ROOT / "README.md").read_text()


def test_without_envpool_the_toolkit_networks_and_reports_work(tmp_path):
    make_run(tmp_path / "runs" / "dqn", "Pong", "dqn", {0: (1.0, 2.0)}, spiking=False)
    script = f"""
import sys
sys.modules["envpool"] = None  # as on a machine where envpool is not installed
import jax.numpy as jnp
from dsqn.models import networks
from dsqn import spiking
from dsqn.cli import main
assert spiking.lif(jnp.ones((4, 3)) * 1.5).shape == (4, 3)
net = networks.MLPDSQN(num_actions=2, time_steps=4)
net.init(__import__("jax").random.key(0), jnp.zeros((1, 4)))
assert main(["report", {str(tmp_path / "runs")!r}, "--out", {str(tmp_path / "out")!r}]) == 0
sys.exit(main(["train", "cartpole-dqn"]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=SUBPROCESS_ENV,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "envpool cannot be imported" in done.stderr and "dsqn.spiking" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "out" / "report.md").is_file()


@pytest.mark.parametrize("module", ["dsqn.envs", "dsqn.training.chunk"])
def test_importing_env_modules_without_envpool_names_the_cause(module):
    script = f"import sys; sys.modules['envpool'] = None; import {module}"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=SUBPROCESS_ENV
    )
    assert "ModuleNotFoundError: envpool cannot be imported here" in done.stderr
    assert "Linux" in done.stderr
