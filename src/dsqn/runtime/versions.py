"""What a run ran on: dependency versions, Python, platform, accelerator, source commit.

:func:`environment` is recorded in every run's ``config.json`` (``meta.environment``), so that a
result can be traced to the software that produced it. The direct dependencies are those the
project declares (``pyproject.toml`` beside the source in a checkout, else the installed
package's metadata); jaxlib, the compiled half of JAX, is added to them.

``dsqn versions`` prints the same as JSON; ``dsqn versions --constraints`` prints
``name==version`` lines of the installed direct and test dependencies: the repository's
``constraints.txt``, which CI installs with (``pip install -e ".[test]" -c constraints.txt``).
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import dsqn

__all__ = ["requirements", "dependency_versions", "git_state", "environment", "constraints"]

_SOURCE = Path(dsqn.__file__).resolve().parent
_PYPROJECT = _SOURCE.parents[1] / "pyproject.toml"
EXTRA_PACKAGES: tuple[str, ...] = ("jaxlib",)
"""Recorded beside the declared dependencies: installed by them, and decisive for results."""


def _name(requirement: str) -> str:
    """The distribution name of a requirement string (``"envpool>=1.2; ..."`` -> ``envpool``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"cannot read a package name from requirement {requirement!r}")
    return match.group(1)


def requirements(extras: tuple[str, ...] = ()) -> list[str]:
    """Names of the declared dependencies, then of the given optional ones (e.g. ``"test"``),
    in declaration order without repeats."""
    if _in_checkout():
        project = tomllib.loads(_PYPROJECT.read_text())["project"]
        declared = list(project["dependencies"])
        optional = project.get("optional-dependencies", {})
        declared += [r for extra in extras for r in optional.get(extra, [])]
    else:
        declared = []
        for r in importlib.metadata.requires("dsqn") or []:
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", r)
            if extra is None or extra.group(1) in extras:
                declared.append(r)
    names = [_name(r) for r in declared if not _name(r).startswith("dsqn")]
    return list(dict.fromkeys(names))


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def dependency_versions() -> dict[str, str | None]:
    """Installed version of each direct dependency and of jaxlib (None: not installed)."""
    return {name: _version(name) for name in [*requirements(), *EXTRA_PACKAGES]}


def _in_checkout() -> bool:
    """Whether dsqn runs from its source checkout (not from an installed copy, which may sit in
    some other repository, e.g. a virtual environment inside a user's project)."""
    if not _PYPROJECT.is_file():
        return False
    return tomllib.loads(_PYPROJECT.read_text()).get("project", {}).get("name") == "dsqn"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=_SOURCE, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state() -> dict[str, Any]:
    """The commit of the source checkout dsqn runs from, and whether tracked files differ from
    it (``dirty``; untracked files such as run directories do not count); None for both outside
    a git checkout (an installed wheel)."""
    commit = _git("rev-parse", "HEAD") if _in_checkout() else None
    if not commit:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def environment() -> dict[str, Any]:
    """Versions, Python, platform, accelerator and source commit of this process."""
    import jax

    devices = jax.devices()
    return {
        "dsqn": dsqn.__version__,
        "packages": dependency_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "accelerator": {
            "backend": jax.default_backend(),
            "device_kind": devices[0].device_kind,
            "device_count": len(devices),
        },
        "git": git_state(),
    }


def constraints() -> list[str]:
    """``name==version`` of every installed direct, test, tracking and video dependency, and of
    jaxlib."""
    names = [*requirements(("test", "wandb", "video")), *EXTRA_PACKAGES]
    return [f"{name}=={version}" for name in names if (version := _version(name)) is not None]
