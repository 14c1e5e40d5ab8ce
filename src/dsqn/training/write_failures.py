"""What a failed write of a training run says: the operating system's reason, the space the
write needed and the space free, what stayed whole, and how to resume.

:meth:`dsqn.training.loop.TrainingRun.writing` turns an OSError or a failed checkpoint save into a
:class:`dsqn.rundir.files.WriteFailed` whose message is :func:`write_failure_message`.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

from dsqn.rundir import files as rd
from dsqn.rundir.checkpoints import Checkpointer

__all__ = ["tree_bytes", "os_cause", "brief", "human_size", "write_failure_message"]


def tree_bytes(*trees: Any) -> int:
    """The bytes of the arrays of ``trees`` (typed PRNG keys as their key data)."""
    total = 0
    for leaf in jax.tree.leaves(trees):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.eval_shape(jax.random.key_data, leaf)
        total += math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
    return total


_OS_CAUSES = re.compile(
    "No space left on device|Disk quota exceeded|Read-only file system|Input/output error"
    "|Permission denied|Stale file handle|File too large"
)


def os_cause(error: BaseException) -> str | None:
    """The operating system's reason for a failed write (``No space left on device``), from
    the first OSError in ``error``'s chain or, for errors that carry it in their text only
    (TensorStore's, through orbax), from the text; None if there is none."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        found = _OS_CAUSES.search(str(seen))
        if found:
            return found.group(0)
        seen = seen.__cause__ or seen.__context__
    return None


def brief(error: Exception, limit: int = 600) -> str:
    """``error`` as ``Type: message``, its middle cut out when longer than ``limit`` (orbax's
    errors hold whole TensorStore specs; the cause, e.g. ``No space left on device``, stays)."""
    text = f"{type(error).__name__}: {error}"
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} [...] {text[-half:]}"


def human_size(n: int) -> str:
    """``n`` bytes for people: ``512 B``, ``3.4 MB``, ``1.2 GB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def write_failure_message(
    run_dir: Path, checkpointer: Checkpointer, what: str, needed: int, error: Exception
) -> str:
    """What a failed write of ``what`` in ``run_dir`` says: the cause (:func:`os_cause`), the
    space needed (``needed``: the bytes of a checkpoint's arrays, 0 for a log row; beside the
    size of the previous checkpoint on disk) and free, what was saved before and is intact, the
    resume command, and the error itself (:func:`brief`)."""
    try:
        space = f"{human_size(shutil.disk_usage(run_dir).free)} free on that file system"
    except OSError:
        space = "the free space on that file system is unknown"
    latest = checkpointer.all_steps()
    if needed:
        need = f"It needs about {human_size(needed)} for its arrays"
        if latest:
            previous = checkpointer.directory / str(latest[-1])
            on_disk = sum(f.stat().st_size for f in previous.rglob("*") if f.is_file())
            need += f" (the previous checkpoint takes {human_size(on_disk)} on disk)"
        space = f"{need}; {space}"
    kept = (
        f"the latest complete checkpoint is {latest[-1]} agent steps"
        if latest
        else "there is no checkpoint yet"
    )
    return (
        f"writing {what} in {run_dir} failed: {os_cause(error) or 'an I/O error'}.\n"
        f"  {space[0].upper()}{space[1:]}.\n"
        f"  The run stopped. What was saved before is intact: {kept}; {rd.METRICS} and "
        f"{rd.EVALUATIONS_CSV} hold whole rows only.\n"
        f"  Free space (or raise the quota), then continue with: dsqn train --resume "
        f"{run_dir}\n"
        f"  The error: {brief(error)}"
    )
