"""Small real file systems for tests of what a full disk does: a size-limited tmpfs.

Mounting needs root (CI runs as root) and a kernel that allows it (a container may not); where
it is impossible the test is skipped and says why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``: ``64k``, ``2m``) mounted on ``directory``
    (created) for the duration; unmounted afterwards, lazily if a file is still open."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI runs as root)")
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def resize(directory: Path, size: str) -> None:
    """Grow (or shrink) the tmpfs on ``directory`` to ``size``, its files kept."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(directory)], check=True)


def fill(directory: Path) -> Path:
    """A file that takes every free block of ``directory``'s file system; returns its path."""
    path = directory / "filler"
    with open(path, "wb", buffering=0) as f:
        block = b"\0" * 4096
        try:
            while True:
                f.write(block)
        except OSError:
            pass
    return path
