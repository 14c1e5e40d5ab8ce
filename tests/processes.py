"""Child processes of tests that never outlive them.

Every child starts in a process group of its own; on a timeout, an error, or at the end of the
test that started it (also when pytest-timeout stops the test), the whole group is killed, so
grandchildren (a notebook kernel, the processes of a multi-process run) go with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

_LIVE: list[subprocess.Popen] = []

# Child Python processes: CPU only, unbuffered output.
CHILD_ENV = {"JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}


def spawn(cmd: list[str], *, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(cmd)`` in a new process group, killed with its group at the end of
    the current test (see :func:`kill_all`)."""
    full_env = {**os.environ, **CHILD_ENV, **(env or {})}
    proc = subprocess.Popen(cmd, env=full_env, start_new_session=True, **kwargs)
    _LIVE.append(proc)
    return proc


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to ``proc``'s whole process group (no error if it is already gone)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def run(
    cmd: list[str], *, timeout: float, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(cmd, capture_output=True, text=True)``, but a timeout kills the
    child's whole process group, not only the child."""
    proc = spawn(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}:\n{err[-3000:]}")
    return result


def python(code: str, *, timeout: float, env: dict[str, str] | None = None, check: bool = False):
    """Run ``python -c code`` with :func:`run`."""
    return run([sys.executable, "-c", code], timeout=timeout, env=env, check=check)


def kill_all() -> None:
    """Kill the process groups of every child started during the test, and reap them."""
    while _LIVE:
        proc = _LIVE.pop()
        kill_group(proc)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
