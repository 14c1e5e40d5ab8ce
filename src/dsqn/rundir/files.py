"""The run directory: the one module that reads and writes a run's files.

One run = one directory (docs/run_directory.md)::

    config.json        the resolved config, "meta" (versions, command, the env's spaces) and,
                       for a converted run, "conversion" (its settings)
    metrics.csv        written by dsqn.training.logs as training goes
    evaluations.csv    one row per (evaluation, seed)
    evaluation.json    best-checkpoint and final-policy scores per seed (EVALUATION)
    evaluations/       re-evaluations of checkpoints by ``dsqn evaluate`` (<checkpoint>.json)
    conversion.json    a converted run's scales, matching rates and scores per seed
    energy.json/.md    ``dsqn energy``
    checkpoints/       orbax checkpoints (dsqn.rundir.checkpoints)
    tensorboard/       TensorBoard event files (dsqn.training.logs)
    wandb/             with ``--track wandb``: the W&B run's files (named by wandb itself)
    train.lock         while ``dsqn train`` runs: its lock (dsqn.rundir.lock)

and the files of the other directories dsqn writes: ``sweep.json``/``.md`` in the root of a
conversion sweep (``dsqn convert --sweep-...``), ``robustness.json``/``.md`` in the output
directory of ``dsqn robustness``.

Every other module reads these files through the functions here: the config and its metadata,
the ``evaluation.json`` built from per-seed summaries of evaluations (the statistics are
:mod:`dsqn.learning.evaluation_stats`), and the list of checkpoints. JSON files are written
atomically with the file mode of any other file the process writes (``0666`` less the umask,
typically ``0644``), so colleagues on a shared file system can read them.

This module needs no JAX except to list checkpoints (done by orbax), so reports and plots that
only read JSON and CSV stay light.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import dsqn
from dsqn.config import Config, SweepConfig, from_dict, to_dict
from dsqn.learning.evaluation_stats import evaluation_summary

__all__ = [
    "CONFIG",
    "EVALUATION",
    "CONVERSION",
    "ENERGY",
    "ENERGY_MARKDOWN",
    "CHECKPOINTS",
    "EVALUATIONS",
    "METRICS",
    "EVALUATIONS_CSV",
    "TENSORBOARD",
    "LOCK",
    "SWEEP",
    "SWEEP_MARKDOWN",
    "ROBUSTNESS",
    "ROBUSTNESS_MARKDOWN",
    "PROTOCOLS",
    "RESUMABLE_FIELDS",
    "ADDED_FIELDS",
    "Spaces",
    "WriteFailed",
    "write_json",
    "write_text",
    "read_json",
    "is_run_dir",
    "require_run_dir",
    "read_config_data",
    "read_config",
    "read_spaces",
    "run_metadata",
    "write_config",
    "conversion_settings",
    "read_conversion",
    "write_conversion",
    "read_energy",
    "frames_per_agent_step",
    "evaluation_record",
    "write_evaluation",
    "read_evaluation",
    "checkpoint_evaluation_path",
    "checkpoint_evaluation_record",
    "write_checkpoint_evaluation",
    "checkpoint_dir",
    "checkpoint_steps",
]

CONFIG = "config.json"
EVALUATION = "evaluation.json"
CONVERSION = "conversion.json"
ENERGY = "energy.json"
ENERGY_MARKDOWN = "energy.md"
CHECKPOINTS = "checkpoints"
EVALUATIONS = "evaluations"
METRICS = "metrics.csv"
EVALUATIONS_CSV = "evaluations.csv"
TENSORBOARD = "tensorboard"
LOCK = "train.lock"
"""The lock of the one process that writes the run (:mod:`dsqn.rundir.lock`)."""
SWEEP = "sweep.json"
SWEEP_MARKDOWN = "sweep.md"
"""A conversion sweep's table, in the root above its converted run directories."""
ROBUSTNESS = "robustness.json"
ROBUSTNESS_MARKDOWN = "robustness.md"
"""``dsqn robustness``'s report, in its output directory."""

PROTOCOLS: tuple[str, ...] = ("best", "final")
"""The protocols of ``evaluation.json``: the best checkpoint re-evaluated, the final policy."""

RESUMABLE_FIELDS = (
    "run.total_agent_steps",
    "run.checkpoint_period_agent_steps",
    "run.checkpoint_period_minutes",
    "run.keep_checkpoints",
    "run.shard_seeds",
    "env.stepping",
)
"""Config fields that may differ between a checkpoint and its run's config.json (they do not
shape the saved state): a resumed run may extend ``total_agent_steps``, for example."""

ADDED_FIELDS: dict[str, Any] = {
    "env.life_loss_stack": "carry",
    "network.head": "linear",
    "network.neuron_backend": "scan",
    "run.matmul_precision": "default",
    "learner.neuron_learning_rate_scale": 1.0,
    "learner.learning_rate_end": None,
    "learner.learning_rate_decay_agent_steps": None,
    "network.dueling_joined": True,
    "network.norm": "none",
    "learner.weight_decay": 0.0,
    **{f"sweep.{f.name}": [] for f in dataclasses.fields(SweepConfig)},
}
"""Config fields newer than some saved runs, with the behaviour those runs had (envpool's frame
stack across a life loss, a linear output layer, the scan neuron engine, the default matmul
precision, one step size for every parameter, a constant step size, no sweep, a dueling DQN
whose output layer was trained whole, no normalisation, plain Adam): a
``config.json`` or checkpoint that lacks one reads as holding that value, so older runs resume,
load and re-evaluate as they were trained."""

_FRAMES_PER_AGENT_STEP = {"atari": 4, "classic": 1, "minatar": 1}  # MinAtar: no frame skip


class WriteFailed(RuntimeError):
    """Writing a run's file failed (a full disk, a quota, a lost mount) and the run stopped;
    the message says what failed, the space it needed and how to resume."""


class Spaces(NamedTuple):
    """What a network needs to know of its env: one observation's shape and dtype (as the env
    yields it: Atari uint8 ``(4, 84, 84)``, classic float32 ``(D,)``) and the number of actions."""

    observation_shape: tuple[int, ...]
    observation_dtype: str
    num_actions: int


# ----------------------------------------------------------------------------- files


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Writes ``text`` to ``path`` atomically (a reader sees the old file or the new one, never a
    partial one: a temporary file in the same directory, fsync, ``os.replace``), with the mode
    of an ordinary new file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # Mode 0666 less the umask, as open() gives (tempfile.mkstemp would give 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Writes ``obj`` as JSON to ``path`` atomically (see :func:`write_text`)."""
    return write_text(path, json.dumps(obj, indent=indent) + "\n")


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in ``path``; a clear error if it is not valid JSON or not an object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object, got {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------- config.json


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory with a ``config.json``."""
    return (Path(path) / CONFIG).is_file()


def require_run_dir(run_dir: str | os.PathLike[str]) -> Path:
    """``run_dir`` as a Path if it holds a ``config.json``, else FileNotFoundError."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise FileNotFoundError(
            f"{run_dir} is not a run directory: {run_dir / CONFIG} does not exist "
            "(see docs/run_directory.md)"
        )
    return run_dir


def read_config_data(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole ``config.json`` object: config fields, ``meta`` and, if any, ``conversion``."""
    return read_json(require_run_dir(run_dir) / CONFIG)


def read_config(run_dir: str | os.PathLike[str]) -> Config:
    """The resolved :class:`dsqn.config.Config` stored in ``run_dir/config.json`` (without its
    ``meta`` and ``conversion`` sections)."""
    data = read_config_data(run_dir)
    data.pop("conversion", None)
    for path, value in ADDED_FIELDS.items():
        section, field = path.split(".")
        if isinstance(data.get(section), dict):
            data[section].setdefault(field, value)
    return from_dict(data)


def read_spaces(run_dir: str | os.PathLike[str]) -> Spaces | None:
    """The env's spaces recorded in ``config.json`` (``meta.spaces``), or None for a run made
    before they were recorded."""
    spaces = read_config_data(run_dir).get("meta", {}).get("spaces")
    if spaces is None:
        return None
    return Spaces(
        tuple(int(n) for n in spaces["observation_shape"]),
        str(spaces["observation_dtype"]),
        int(spaces["num_actions"]),
    )


def run_metadata(command: list[str] | None, spaces: Spaces | None) -> dict[str, Any]:
    """The ``meta`` section of a run's config.json: versions, devices, time, command line, the
    whole software environment (:func:`dsqn.runtime.versions.environment`), and the env's spaces (so
    that the run's agents load without building an env)."""
    import jax  # only here: reading a run directory needs no JAX

    from dsqn.runtime.versions import environment

    meta = {
        "dsqn_version": dsqn.__version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "environment": environment(),
    }
    if spaces is not None:
        meta["spaces"] = {
            "observation_shape": list(spaces.observation_shape),
            "observation_dtype": spaces.observation_dtype,
            "num_actions": spaces.num_actions,
        }
    return meta


def write_config(
    run_dir: str | os.PathLike[str],
    config: Config,
    *,
    command: list[str] | None,
    spaces: Spaces | None,
    name: str | None = None,
    conversion: Mapping[str, Any] | None = None,
    extra_meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes ``config.json``: ``config`` (its ``name`` replaced by ``name`` if given), ``meta``
    (:func:`run_metadata`, with ``extra_meta`` such as a tracker's run id) and, for a converted
    run, the ``conversion`` settings. Returns the object written."""
    data = to_dict(config)
    if name is not None:
        data["name"] = name
    if conversion is not None:
        data["conversion"] = dict(conversion)
    data["meta"] = {**run_metadata(command, spaces), **(extra_meta or {})}
    write_json(Path(run_dir) / CONFIG, data)
    return data


def conversion_settings(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A converted run's settings (``config.json``'s ``conversion``), or None for a trained
    run. This is where "is this a converted run?" is answered."""
    return read_config_data(run_dir).get("conversion")


def read_conversion(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A converted run's ``conversion.json``."""
    return read_json(Path(run_dir) / CONVERSION)


def write_conversion(run_dir: str | os.PathLike[str], conversion: Mapping[str, Any]) -> Path:
    return write_json(Path(run_dir) / CONVERSION, conversion)


def read_energy(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's ``energy.json`` (``dsqn energy``), or None when it has none."""
    path = Path(run_dir) / ENERGY
    return read_json(path) if path.is_file() else None


# ----------------------------------------------------------------------------- evaluation.json


def frames_per_agent_step(suite: str) -> int:
    """Emulator frames per agent step: Atari's frame skip (4), 1 for classic control."""
    if suite not in _FRAMES_PER_AGENT_STEP:
        raise ValueError(
            f"frames per agent step of suite {suite!r} unknown; known: "
            f"{', '.join(_FRAMES_PER_AGENT_STEP)}"
        )
    return _FRAMES_PER_AGENT_STEP[suite]


def evaluation_record(
    config: Config,
    *,
    name: str,
    agent_steps: int,
    episodes: int,
    epsilon: float,
    per_seed: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, Any]:
    """The ``evaluation.json`` object: ``per_seed`` maps a seed to ``{"best": summary or None,
    "final": summary or None}``; the summary over seeds of each protocol is added."""
    return {
        "name": name,
        "game": config.env.game,
        "suite": config.env.suite,
        "protocol": config.env.protocol,
        "agent_steps": int(agent_steps),
        "frames": int(agent_steps) * frames_per_agent_step(config.env.suite),
        "episodes": int(episodes),
        "epsilon": float(epsilon),
        "per_seed": dict(per_seed),
        "summary": {p: evaluation_summary(per_seed, p) for p in ("final", "best")},
    }


def write_evaluation(run_dir: str | os.PathLike[str], record: Mapping[str, Any]) -> Path:
    return write_json(Path(run_dir) / EVALUATION, record)


def read_evaluation(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    return read_json(Path(run_dir) / EVALUATION)


def checkpoint_evaluation_path(run_dir: str | os.PathLike[str], checkpoint: str) -> Path:
    """Where ``dsqn evaluate`` writes its evaluation of ``checkpoint``."""
    return Path(run_dir) / EVALUATIONS / f"{checkpoint}.json"


def checkpoint_evaluation_record(
    checkpoint: str, *, episodes: int, epsilon: float, per_seed: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``evaluations/<checkpoint>.json`` object: ``{"checkpoint", "episodes", "epsilon",
    "per_seed": {seed: summary}}`` (summaries of
    :func:`dsqn.learning.evaluation_stats.seed_summary`)."""
    return {
        "checkpoint": checkpoint,
        "episodes": int(episodes),
        "epsilon": float(epsilon),
        "per_seed": dict(per_seed),
    }


def write_checkpoint_evaluation(run_dir: str | os.PathLike[str], record: Mapping[str, Any]) -> Path:
    """Writes ``evaluations/<checkpoint>.json`` (:func:`checkpoint_evaluation_record`)."""
    path = checkpoint_evaluation_path(run_dir, record["checkpoint"])
    path.parent.mkdir(exist_ok=True)
    return write_json(path, record)


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_dir(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / CHECKPOINTS


def checkpoint_steps(run_dir: str | os.PathLike[str]) -> list[int]:
    """The agent steps of the run's complete checkpoints, ascending (empty if none)."""
    directory = checkpoint_dir(run_dir)
    if not directory.is_dir():
        return []
    from dsqn.rundir.checkpoints import (
        Checkpointer,  # orbax and JAX: only when checkpoints are listed
    )

    with Checkpointer(directory, max_to_keep=None) as checkpointer:
        return checkpointer.all_steps()
