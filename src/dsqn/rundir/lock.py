"""One writer per run directory: the lock ``RUN_DIR/train.lock`` that ``dsqn train`` holds.

A run directory has one writer: ``dsqn train`` and ``dsqn train --resume`` take this lock before
they change anything and keep it for the whole run. A second writer (a requeued job beside a
manual resume, say) is refused at once with a message that names the holder (host, PID, start
time) and the way out. Readers (``dsqn evaluate``, ``report``, ``energy``, ``load_agent``) never
take it, so they never wait for a writer nor make one wait.

Mechanism: a lock *file* created atomically, not ``fcntl``/``flock`` locks.

- Creation: the holder's record (host, PID, the process's start time, wall-clock start, a random
  token, the last heartbeat) is written to a temporary file in the run directory, then hard-linked
  to ``train.lock`` with ``link(2)``, which fails if ``train.lock`` exists. ``link`` is atomic on
  local file systems, on every NFS version and on Lustre (the classic NFS-safe lock: ``O_EXCL``
  was not atomic before NFSv3), and the lock file appears with its whole record, never empty.
  When the reply to ``link`` is lost and the call reports an error although it succeeded (an NFS
  retransmission), the temporary file's link count (2) tells.
- Why not ``fcntl``: POSIX locks on NFS go through the NLM lock daemon (often missing or mounted
  ``nolock``/``local_lock``, where they silently lock only on one node), on Lustre they are
  cluster-wide only with the ``flock`` mount option (``localflock`` makes them node-local,
  ``noflock`` refuses them), and a lock held by a lost node lingers until the server's lease
  recovery. A lock file works alike everywhere, and it records who holds it.
- Liveness: the holder rewrites its record (``heartbeat``) every :data:`HEARTBEAT_SECONDS`
  (write a temporary file, then ``rename(2)`` over the lock, atomic on NFS and Lustre). A lock is
  stale, and taken over with a message, when its holder is dead: on the same host, its PID no
  longer runs the process that took the lock (checked with ``kill(pid, 0)`` and the process start
  time, so a reused PID does not count); on another host (a lost node), its heartbeat is older
  than :data:`STALE_SECONDS` by this host's clock (cluster clocks agree to well under that).
- Takeover: the stale lock file is renamed to a unique name (only one contender's rename
  succeeds), checked to be the very record judged stale (else put back: another contender took
  over first), removed, and the lock is created as above.
- A holder that lost its lock (its host was cut off past the stale time and another process took
  over) learns it at its next :meth:`RunLock.verify` and stops without writing again. A heartbeat
  checks that the record is still its own just before it replaces it; a takeover that falls in
  that instant (possible only after the holder looked dead for :data:`STALE_SECONDS`) is
  overwritten, and the contender then learns at its own ``verify`` that it lost.

With several processes (``dsqn train --distributed``) process 0 holds the lock for the run.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dsqn.rundir import files as rd

__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_SECONDS",
    "Holder",
    "RunLocked",
    "LockLost",
    "read_holder",
    "holder_is_dead",
    "RunLock",
]

HEARTBEAT_SECONDS = 30.0
"""How often the holder rewrites its record."""
STALE_SECONDS = 180.0
"""A holder on another host is dead when its last heartbeat is this old (six missed beats)."""


class RunLocked(Exception):
    """Another live process holds the run directory's lock."""


class LockLost(RuntimeError):
    """This process's lock was taken over (its heartbeat went stale) or removed."""


@dataclass(frozen=True)
class Holder:
    """The record in a lock file: who holds it and since when."""

    host: str
    pid: int
    started: str
    """Wall-clock start of the lock, ISO 8601 UTC."""
    process_start: str | None
    """The holder process's start time as the kernel counts it (Linux ``/proc``), so that a
    reused PID is not taken for the holder; None where it cannot be read."""
    token: str
    heartbeat: float
    """Unix time of the last heartbeat."""

    def describe(self) -> str:
        return f"PID {self.pid} on host {self.host}, started {self.started}"


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (field 22 of
    ``/proc/<pid>/stat``), or None where there is no ``/proc`` or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def holder_is_dead(holder: Holder, now: float | None = None) -> str | None:
    """Why ``holder`` is dead (a reason to print), or None while it may be alive: on this host,
    no process with its PID and start time; on another, no heartbeat for :data:`STALE_SECONDS`."""
    now = time.time() if now is None else now
    if holder.host == socket.gethostname():
        if not _pid_alive(holder.pid):
            return f"no process {holder.pid} runs on this host"
        start = _process_start(holder.pid)
        if holder.process_start is not None and start is not None and start != holder.process_start:
            return f"PID {holder.pid} now belongs to another process"
        return None
    age = now - holder.heartbeat
    if age > STALE_SECONDS:
        return f"its last heartbeat is {age:.0f} s old (stale after {STALE_SECONDS:.0f} s)"
    return None


def read_holder(path: Path) -> Holder | None:
    """The record of lock file ``path``, or None if there is no lock file. A record that does
    not parse (a lock file edited by hand, a file system that lost data) reads as a dead holder
    of unknown identity, stale once the file is :data:`STALE_SECONDS` old."""
    try:
        text = Path(path).read_text()
        mtime = Path(path).stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        return Holder(**{k: data[k] for k in Holder.__dataclass_fields__})
    except (ValueError, TypeError, KeyError):
        return Holder("<unreadable lock file>", -1, "?", None, "", mtime)


def _write_record(directory: Path, holder: Holder) -> Path:
    """``holder`` in a new temporary file of ``directory`` (fsynced); returns its path."""
    tmp = directory / f".{rd.LOCK}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(holder)) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _link_exclusive(source: Path, target: Path) -> bool:
    """Hard-link ``source`` to ``target`` unless ``target`` exists; whether it was linked."""
    try:
        os.link(source, target)
        return True
    except FileExistsError:
        return False
    except OSError:
        # NFS: the link may have been made although the reply was lost.
        if source.stat().st_nlink == 2:
            return True
        raise


class RunLock:
    """The lock of one run directory, held from :meth:`acquire` to :meth:`release` (or as a
    context manager), with a heartbeat thread that keeps it fresh.

    ``enabled=False`` makes every method a no-op (the processes of a multi-process run other
    than process 0).
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / rd.LOCK
        self.enabled = enabled
        self.holder: Holder | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: str | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _new_holder(self) -> Holder:
        now = time.time()
        started = datetime.datetime.fromtimestamp(now, datetime.UTC)
        return Holder(
            host=socket.gethostname(),
            pid=os.getpid(),
            started=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            process_start=_process_start(os.getpid()),
            token=secrets.token_hex(8),
            heartbeat=now,
        )

    def acquire(self) -> None:
        """Create the lock file, taking over a dead holder's (with a message on stderr).

        Raises:
          RunLocked: a live process holds it; the message names it and the way out.
        """
        if not self.enabled:
            return
        holder = self._new_holder()
        for _ in range(5):
            tmp = _write_record(self.run_dir, holder)
            try:
                linked = _link_exclusive(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
            if linked:
                self.holder = holder
                self._thread = threading.Thread(
                    target=self._beat, name="dsqn-run-lock", daemon=True
                )
                self._thread.start()
                return
            current = read_holder(self.path)
            if current is None:  # released in between: try again
                continue
            reason = holder_is_dead(current)
            if reason is None:
                raise RunLocked(self._refusal(current))
            self._take_over(current, reason)
        raise RunLocked(f"could not take the lock {self.path}: other processes keep taking it")

    def _refusal(self, holder: Holder) -> str:
        stale_at = datetime.datetime.fromtimestamp(holder.heartbeat + STALE_SECONDS, datetime.UTC)
        stop = (
            f"stop it (`kill -TERM {holder.pid}` on {holder.host}: it writes a checkpoint and "
            "exits)"
            if holder.pid > 0
            else "stop it"
        )
        return (
            f"{self.run_dir} is being trained by another process: {holder.describe()} "
            f"(lock file {self.path}). Two processes must not write one run directory. Wait "
            f"for it to finish, or {stop}, then `dsqn train --resume {self.run_dir}`. If "
            f"that process is gone (a lost node), its lock is taken over once its heartbeat is "
            f"{STALE_SECONDS:.0f} s old (at {stale_at.isoformat(timespec='seconds')}); delete "
            f"{self.path} only if you are sure nothing trains this run."
        )

    def _take_over(self, stale: Holder, reason: str) -> None:
        """Move the dead holder's lock file aside and drop it, unless another contender
        replaced it first (then it is put back)."""
        aside = self.path.with_name(f"{rd.LOCK}.stale-{secrets.token_hex(6)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:  # another contender moved it first
            return
        moved = read_holder(aside)
        if moved is not None and moved.token != stale.token:
            _link_exclusive(aside, self.path)  # someone else's live lock: put it back
            aside.unlink(missing_ok=True)
            return
        aside.unlink(missing_ok=True)
        print(
            f"[dsqn] taking over the lock of {self.run_dir}: its holder ({stale.describe()}) "
            f"is dead: {reason}",
            file=sys.stderr,
            flush=True,
        )

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.heartbeat()

    def heartbeat(self) -> None:
        """Rewrite the record with the current time (atomically), unless the lock was lost;
        a failed write (a full disk) is skipped: the next beat tries again."""
        if self.holder is None or self._lost is not None:
            return
        current = read_holder(self.path)
        if current is None or current.token != self.holder.token:
            self._lost = "it was taken over" if current else "the lock file was removed"
            return
        beat = Holder(**{**asdict(self.holder), "heartbeat": time.time()})
        try:
            tmp = _write_record(self.run_dir, beat)
        except OSError:
            return
        try:
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return
        self.holder = beat

    def verify(self) -> None:
        """Raise LockLost unless this process still holds the lock (called before writes)."""
        if not self.enabled or self.holder is None:
            return
        current = read_holder(self.path)
        if self._lost is None and (current is None or current.token != self.holder.token):
            self._lost = "it was taken over" if current else "the lock file was removed"
        if self._lost is not None:
            by = f" by {current.describe()}" if current is not None else ""
            raise LockLost(
                f"this process no longer holds the lock of {self.run_dir}: {self._lost}{by}; "
                "stopping without writing anything more (another process trains this run)"
            )

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it is still this process's."""
        if self.holder is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        current = read_holder(self.path)
        if current is not None and current.token == self.holder.token:
            self.path.unlink(missing_ok=True)
        self.holder = None
