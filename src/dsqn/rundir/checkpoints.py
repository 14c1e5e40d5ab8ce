"""Checkpoints of training runs: a thin wrapper around ``orbax.checkpoint.CheckpointManager``.

A checkpoint is one step directory under the run's checkpoint directory, holding up to three
items::

    <directory>/<step>/state/      the train-state pytree (params, target params, optimiser
                                   state, counters, PRNG keys, best-eval params, ...)
    <directory>/<step>/replay/     optional: the replay-buffer pytree (can be GBs of uint8)
    <directory>/<step>/metadata/   JSON: resolved config, agent_steps, anything JSON

Atomicity: orbax writes a step into ``<step>.orbax-checkpoint-tmp-<n>/`` and renames it to
``<step>/`` only after every item and ``commit_success.txt`` are written, so a run killed mid-save
leaves the previous steps intact. Leftover temporary directories are ignored when listing and
deleted at the next save; a ``<step>/`` directory without ``commit_success.txt`` (e.g. from an
interrupted copy of a run directory) is ignored when listing and moved aside to
``<step>.incomplete-<n>/`` at the next save (or by :meth:`Checkpointer.tidy`).

A complete step whose files are unreadable (a node lost mid-write on a file system without
atomic rename, a truncated copy) raises :class:`CorruptCheckpoint`, which names the step;
:meth:`Checkpointer.set_aside` moves such a step to ``<step>.corrupt-<n>/`` (never deleting it),
so that a resumed run goes on from the newest valid one, and :meth:`Checkpointer.valid_steps`
lists the steps that read back.

PRNG keys: typed keys (``jax.random.key``) and raw ``uint32`` keys (``jax.random.PRNGKey``) are
both saved by orbax as their ``uint32`` key data; the template passed to ``restore`` decides which
form comes back (a typed-key template leaf restores a typed key of the template's impl).
"""

import json
import os
import shutil
import time
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp

from dsqn.runtime.distributed import barrier

STATE_ITEM = "state"
REPLAY_ITEM = "replay"
METADATA_ITEM = "metadata"
# Written by orbax as the last file of a step, before the atomic rename.
_COMMIT_FILE = "commit_success.txt"
_TMP_MARKER = ".orbax-checkpoint-tmp"
_MAX_LISTED_DIFFERENCES = 20


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable or incompatible with what the caller expects."""


class CorruptCheckpoint(CheckpointError):
    """A complete checkpoint's files do not read back (truncated, garbled or missing files);
    ``step`` is the step."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class CheckpointWriteError(CheckpointError):
    """Writing a checkpoint failed (a full disk, a quota, an I/O error); the checkpoints saved
    before are untouched. ``step`` is the step that was being written."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class Restored(NamedTuple):
    """What ``Checkpointer.restore`` returns; unpacks as ``state, replay, metadata``."""

    state: Any
    replay: Any | None
    metadata: dict[str, Any]


def _flatten(tree: Any) -> dict[str, Any]:
    """Leaves keyed by their orbax path, e.g. ``"params/conv1/kernel"`` (empty nodes dropped)."""
    return {"/".join(key): leaf for key, leaf in ocp.tree.to_flat_dict(tree).items()}


def _stored_shape_dtype(leaf: Any) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of a template leaf as orbax stores it (typed keys as uint32 key data)."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.eval_shape(jax.random.key_data, leaf)
    return tuple(leaf.shape), str(leaf.dtype)


def _tree_differences(stored: Any, template: Any, prefix: str) -> list[str]:
    """Human-readable differences between a checkpoint's tree metadata and a template."""
    stored_leaves, template_leaves = _flatten(stored), _flatten(template)
    differences = [
        f"{prefix}{path}: in the checkpoint but not in the template"
        for path in stored_leaves
        if path not in template_leaves
    ]
    differences += [
        f"{prefix}{path}: in the template but not in the checkpoint"
        for path in template_leaves
        if path not in stored_leaves
    ]
    for path, leaf in template_leaves.items():
        if path not in stored_leaves:
            continue
        meta = stored_leaves[path]
        stored_sd = (tuple(getattr(meta, "shape", ())), str(getattr(meta, "dtype", type(meta))))
        expected_sd = _stored_shape_dtype(leaf)
        if stored_sd != expected_sd:
            differences.append(
                f"{prefix}{path}: checkpoint {stored_sd[0]} {stored_sd[1]}"
                f" vs expected {expected_sd[0]} {expected_sd[1]}"
            )
    return differences


def _flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _config_differences(
    stored: Mapping[str, Any],
    expected: Mapping[str, Any],
    ignore: Collection[str],
    absent: Mapping[str, Any] = {},  # noqa: B006 (read only)
) -> list[str]:
    """Differing fields of two (nested) config dicts, by dotted name; JSON-normalises
    ``expected`` first so that tuples compare equal to the lists JSON gives back."""
    stored_flat = _flatten_config(stored)
    expected_flat = _flatten_config(json.loads(json.dumps(expected)))
    ignored = lambda name: any(name == i or name.startswith(f"{i}.") for i in ignore)
    missing = object()
    differences = []
    for name in sorted(stored_flat.keys() | expected_flat.keys()):
        if ignored(name):
            continue
        got = stored_flat.get(name, absent.get(name, missing))
        want = expected_flat.get(name, missing)
        if got == want:
            continue
        got_text = "<absent>" if got is missing else repr(got)
        want_text = "<absent>" if want is missing else repr(want)
        differences.append(f"config.{name}: checkpoint {got_text} vs expected {want_text}")
    return differences


def _format_differences(differences: list[str]) -> str:
    shown = differences[:_MAX_LISTED_DIFFERENCES]
    more = len(differences) - len(shown)
    return "\n  " + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else "")


class Checkpointer:
    """Save and restore training checkpoints (state, optional replay, JSON metadata) by step.

    Keeps the ``max_to_keep`` most recent steps (all of them if None). With ``asynchronous``,
    ``save`` returns once the arrays are copied to host memory and writes them in a background
    thread; the next ``save``, every read, ``wait_until_finished`` and ``close`` wait for it.

    Use as a context manager, or call ``close`` when done.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_to_keep: int | None = 2,
        asynchronous: bool = False,
    ) -> None:
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1 or None (keep all), got {max_to_keep}")
        self._directory = Path(directory).absolute()
        # Without a preservation policy orbax keeps every checkpoint.
        preservation = (
            None if max_to_keep is None else ocp.checkpoint_managers.LatestN(n=max_to_keep)
        )
        options = ocp.CheckpointManagerOptions(
            preservation_policy=preservation,
            create=True,
            # Another process (an evaluator) may open this directory while the trainer is
            # mid-save: temporary directories are removed by our own save instead.
            cleanup_tmp_directories=False,
            enable_async_checkpointing=asynchronous,
        )
        self._manager = ocp.CheckpointManager(
            self._directory,
            options=options,
            item_handlers={
                STATE_ITEM: ocp.StandardCheckpointHandler(),
                REPLAY_ITEM: ocp.StandardCheckpointHandler(),
                METADATA_ITEM: ocp.JsonCheckpointHandler(),
            },
        )

    @property
    def directory(self) -> Path:
        """The checkpoint directory (absolute)."""
        return self._directory

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for a pending asynchronous save, then release orbax's resources."""
        self.wait_until_finished()
        self._manager.close()

    def wait_until_finished(self) -> None:
        """Block until a pending asynchronous save is on disk; raise if it failed."""
        try:
            self._manager.wait_until_finished()
        except Exception as e:
            raise CheckpointError(f"a background save to {self._directory} failed: {e}") from e

    def _step_dir(self, step: int) -> Path:
        return self._directory / str(step)

    def _is_complete(self, step: int) -> bool:
        return (self._step_dir(step) / _COMMIT_FILE).is_file()

    def _incomplete_steps(self) -> list[int]:
        return [s for s in self._manager.all_steps() if not self._is_complete(s)]

    def all_steps(self) -> list[int]:
        """Steps with a complete checkpoint, ascending."""
        self.wait_until_finished()
        self._manager.reload()
        return sorted(s for s in self._manager.all_steps() if self._is_complete(s))

    def latest_step(self) -> int | None:
        """The most recent complete step, or None if there is none."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def has_replay(self, step: int) -> bool:
        """Whether checkpoint ``step`` holds a replay item."""
        return (self._step_dir(step) / REPLAY_ITEM).is_dir()

    def delete(self, step: int) -> None:
        """Delete checkpoint ``step`` (e.g. to roll back past a corrupt one)."""
        self._check_step(step)
        self._manager.delete(step)

    def tidy(self) -> None:
        """Delete temporary directories of killed saves and move incomplete step directories
        aside, with a warning naming each (a resumed run does this first). Only the one writer
        of the directory may call it: another process's save in progress looks the same."""
        self.wait_until_finished()
        self._set_aside_unfinished()

    def set_aside(self, step: int, reason: str = "corrupt") -> Path:
        """Move step ``step`` to ``<step>.<reason>-<n>/`` (kept for inspection, never deleted),
        so that it no longer counts as a checkpoint; returns the new path."""
        source = self._step_dir(step)
        target = source.with_name(f"{source.name}.{reason}-{time.time_ns()}")
        source.rename(target)
        self._manager.reload()
        return target

    def verify(self, step: int) -> None:
        """Raise CorruptCheckpoint unless step ``step``'s metadata, array metadata and state
        arrays read back (the replay is not read: it can be GBs)."""
        self._read_metadata(step, list_valid=False)
        try:
            stored = self._manager.item_metadata(step)[STATE_ITEM].tree
            template = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), stored)
            self._manager.restore(
                step, args=ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardRestore(template)})
            )
        except Exception as e:
            raise self._corrupt(step, "arrays", e, list_valid=False) from e

    def valid_steps(self) -> list[int]:
        """Complete steps that :meth:`verify` accepts, ascending."""
        valid = []
        for step in self.all_steps():
            try:
                self.verify(step)
            except CorruptCheckpoint:
                continue
            valid.append(step)
        return valid

    def _set_aside_unfinished(self) -> None:
        """Delete temporary directories of killed saves and move incomplete step directories
        aside; orbax would otherwise count the latter as steps (blocking later saves of lower
        steps and taking up ``max_to_keep`` slots)."""
        for path in self._directory.iterdir():
            if _TMP_MARKER in path.name and path.is_dir():
                warnings.warn(f"removing {path}, left over by an interrupted save", stacklevel=3)
                shutil.rmtree(path)
        incomplete = self._incomplete_steps()
        for step in incomplete:
            source = self._step_dir(step)
            target = source.with_name(f"{source.name}.incomplete-{time.time_ns()}")
            warnings.warn(
                f"{source} is not a complete checkpoint (no {_COMMIT_FILE}); moving it to {target}",
                stacklevel=3,
            )
            source.rename(target)
        if incomplete:
            self._manager.reload()

    def save(
        self,
        step: int,
        state: Any,
        *,
        replay: Any | None = None,
        metadata: Mapping[str, Any],
    ) -> None:
        """Save ``state`` (and ``replay`` if given) with JSON ``metadata`` as checkpoint ``step``.

        ``step`` (e.g. agent steps) must exceed every existing step. The oldest steps beyond
        ``max_to_keep`` are deleted once this one is complete.
        """
        if not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as e:
            raise ValueError(f"metadata must be JSON-serialisable: {e}") from e
        self.wait_until_finished()
        # With several processes (one shared directory) process 0 tidies up, the others wait.
        if jax.process_index() == 0:
            self._set_aside_unfinished()
        barrier("dsqn-checkpoint-tidy")
        later = [s for s in self.all_steps() if s >= step]
        if later:
            raise CheckpointError(
                f"cannot save step {step} in {self._directory}: steps {later} already exist and"
                " steps must increase; delete them first (Checkpointer.delete) to roll back"
            )
        items: dict[str, ocp.args.CheckpointArgs] = {
            STATE_ITEM: ocp.args.StandardSave(state),
            METADATA_ITEM: ocp.args.JsonSave(dict(metadata)),
        }
        if replay is not None:
            items[REPLAY_ITEM] = ocp.args.StandardSave(replay)
        try:
            saved = self._manager.save(step, args=ocp.args.Composite(**items))
        except Exception as e:
            # Free what the failed save took (a full disk): its temporary directory goes. Writes
            # of the other items may still be under way and create it again; the next save or
            # tidy() removes it then.
            if jax.process_index() == 0:
                try:
                    self._set_aside_unfinished()
                except OSError:
                    pass
            raise CheckpointWriteError(
                f"saving step {step} to {self._directory} failed: {type(e).__name__}: {e}", step
            ) from e
        if not saved:
            raise CheckpointError(f"orbax declined to save step {step} in {self._directory}")

    def _check_step(self, step: int | None) -> int:
        """Resolve ``step`` (None = latest) to an existing complete step or raise."""
        steps = self.all_steps()
        if not steps:
            incomplete = self._incomplete_steps()
            note = f" (incomplete step directories ignored: {incomplete})" if incomplete else ""
            raise CheckpointError(f"no checkpoints in {self._directory}{note}")
        if step is None:
            return steps[-1]
        if step not in steps:
            reason = (
                "is incomplete (an interrupted save or copy)"
                if self._step_dir(step).is_dir()
                else "does not exist"
            )
            raise CheckpointError(
                f"checkpoint step {step} in {self._directory} {reason}; available steps: {steps}"
            )
        return step

    def _corrupt(
        self, step: int, what: str, error: Exception, *, list_valid: bool = True
    ) -> CorruptCheckpoint:
        """The error for an unreadable step; with ``list_valid``, it lists the other steps that
        read back (:meth:`valid_steps`, reading their states)."""
        hint = ""
        if list_valid:
            valid = [s for s in self.valid_steps() if s != step]
            hint = f"; valid checkpoints: {valid}" if valid else "; no other checkpoint is valid"
        return CorruptCheckpoint(
            f"checkpoint step {step} in {self._directory} is unreadable ({what}), it may be"
            f" corrupt: {type(error).__name__}: {error}{hint}",
            step,
        )

    def read_metadata(self, step: int | None = None) -> dict[str, Any]:
        """The JSON metadata of checkpoint ``step`` (default: latest), without reading arrays;
        e.g. to rebuild the config before building the restore templates."""
        step = self._check_step(step)
        return self._read_metadata(step)

    def _read_metadata(self, step: int, *, list_valid: bool = True) -> dict[str, Any]:
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(**{METADATA_ITEM: ocp.args.JsonRestore()})
            )
        except Exception as e:
            raise self._corrupt(step, "metadata", e, list_valid=list_valid) from e
        metadata = restored[METADATA_ITEM]
        if not isinstance(metadata, dict):
            error = TypeError(f"expected a JSON object: {metadata}")
            raise self._corrupt(step, "metadata", error, list_valid=list_valid)
        return metadata

    def restore(
        self,
        step: int | None = None,
        *,
        state_template: Any,
        replay_template: Any | None = None,
        expected_config: Mapping[str, Any] | None = None,
        ignore_config_fields: Collection[str] = (),
        absent_config_fields: Mapping[str, Any] | None = None,
    ) -> Restored:
        """Restore checkpoint ``step`` (default: the latest complete one).

        Args:
            step: the step to restore; None for the latest.
            state_template: a pytree with the structure, shapes and dtypes (and, for sharded
                arrays, shardings) of the saved state: concrete arrays or
                ``jax.ShapeDtypeStruct`` s, e.g. from ``jax.eval_shape``.
            replay_template: the same for the replay; None to skip reading it. If the checkpoint
                has no replay, a warning is issued and ``replay`` comes back None.
            expected_config: if given, compared with ``metadata["config"]``; any difference
                (dotted field names, e.g. ``network.T``) is an error.
            ignore_config_fields: dotted config fields (or their prefixes) allowed to differ,
                e.g. ``("total_agent_steps",)`` to extend a run.
            absent_config_fields: fields added to the config after some checkpoints were
                written, with the value such a checkpoint's run had (``{"sweep.network_tau":
                []}``): a checkpoint lacking the field compares as having that value.

        Raises:
            CheckpointError: no checkpoints, unknown step (the message lists the available
                ones), unreadable (corrupt) files, or a tree, shape, dtype or config that differs
                from what was expected (the message lists the differing leaf paths / fields).
        """
        step = self._check_step(step)
        metadata = self._read_metadata(step)
        differences = _metadata_config_differences(
            metadata, expected_config, ignore_config_fields, absent_config_fields or {}
        )
        if replay_template is not None and not self._replay_to_restore(step):
            replay_template = None
        differences += self._structure_differences(step, state_template, replay_template)
        if differences:
            raise CheckpointError(
                f"checkpoint step {step} in {self._directory} is incompatible with the expected"
                f" structure:{_format_differences(differences)}"
            )
        state, replay = self._read_arrays(step, state_template, replay_template)
        return Restored(state=state, replay=replay, metadata=metadata)

    def _replay_to_restore(self, step: int) -> bool:
        """Whether step ``step`` saved a replay; if not, a warning says that the replay comes
        back None (to be refilled)."""
        if self.has_replay(step):
            return True
        warnings.warn(
            f"checkpoint step {step} in {self._directory} has no replay; returning"
            " replay=None (the replay must be refilled)",
            stacklevel=3,  # the caller of restore
        )
        return False

    def _structure_differences(
        self, step: int, state_template: Any, replay_template: Any | None
    ) -> list[str]:
        """The differences between step ``step``'s stored trees (state, and the replay unless
        ``replay_template`` is None) and the templates: paths, shapes, dtypes."""
        try:
            stored = self._manager.item_metadata(step)
            differences = _tree_differences(stored[STATE_ITEM].tree, state_template, "")
            if replay_template is not None:
                differences += _tree_differences(
                    stored[REPLAY_ITEM].tree, replay_template, f"{REPLAY_ITEM}/"
                )
        except Exception as e:
            raise self._corrupt(step, "array metadata", e) from e
        return differences

    def _read_arrays(
        self, step: int, state_template: Any, replay_template: Any | None
    ) -> tuple[Any, Any | None]:
        """Step ``step``'s state and (unless ``replay_template`` is None) replay arrays, in the
        templates' structure, dtypes and shardings."""
        items = {STATE_ITEM: ocp.args.StandardRestore(_abstract(state_template))}
        if replay_template is not None:
            items[REPLAY_ITEM] = ocp.args.StandardRestore(_abstract(replay_template))
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:
            raise self._corrupt(step, "arrays", e) from e
        replay = restored[REPLAY_ITEM] if replay_template is not None else None
        return restored[STATE_ITEM], replay


def _metadata_config_differences(
    metadata: Mapping[str, Any],
    expected_config: Mapping[str, Any] | None,
    ignore_config_fields: Collection[str],
    absent_config_fields: Mapping[str, Any],
) -> list[str]:
    """The differences between a checkpoint's ``metadata["config"]`` and ``expected_config``
    (none when it is None; see :meth:`Checkpointer.restore` for the other arguments)."""
    if expected_config is None:
        return []
    if not isinstance(metadata.get("config"), Mapping):
        return ["config: the checkpoint metadata has no 'config' object"]
    return _config_differences(
        metadata["config"], expected_config, ignore_config_fields, absent_config_fields
    )


def _abstract(template: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
