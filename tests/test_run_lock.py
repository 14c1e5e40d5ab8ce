"""dsqn.rundir.lock: one writer per run directory; a live holder refuses, a dead one is taken over.

Fast tests of the lock alone (no JAX); ``tests/test_runner.py`` runs two ``dsqn train``
processes on one directory.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from processes import spawn

from dsqn.rundir import lock as run_lock
from dsqn.rundir.files import LOCK
from dsqn.rundir.lock import LockLost, RunLock, RunLocked, read_holder

HOLD = """
import sys, time
from dsqn.rundir.lock import RunLock
lock = RunLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def _holder_process(run_dir):
    proc = spawn([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_and_a_dead_holders_lock_taken_over(tmp_path, capfd):
    """Two processes on one machine: while the first holds the lock the second is refused with
    the holder's host, PID and start time and the way out; once the first is killed (-9), its
    lock is taken over with a message."""
    proc = _holder_process(tmp_path)
    holder = read_holder(tmp_path / LOCK)
    assert (holder.host, holder.pid) == (socket.gethostname(), proc.pid)
    with pytest.raises(RunLocked) as refused:
        RunLock(tmp_path).acquire()
    message = str(refused.value)
    for part in (f"PID {proc.pid}", socket.gethostname(), holder.started, "--resume"):
        assert part in message, part
    assert f"kill -TERM {proc.pid}" in message
    assert read_holder(tmp_path / LOCK) == holder  # the refused process changed nothing

    proc.kill()
    proc.wait()
    capfd.readouterr()
    with RunLock(tmp_path) as lock:
        assert read_holder(tmp_path / LOCK).pid == os.getpid()
        lock.verify()
    err = capfd.readouterr().err
    assert "taking over the lock" in err and f"no process {proc.pid} runs" in err
    assert not (tmp_path / LOCK).exists()  # released
    assert os.listdir(tmp_path) == []  # no temporary or stale files left


def _write_lock(run_dir, **fields):
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": "2026-01-01T00:00:00Z",
        "process_start": None,
        "token": "abc",
        "heartbeat": time.time(),
        **fields,
    }
    (run_dir / LOCK).write_text(json.dumps(record))


def test_a_holder_on_another_host_is_dead_once_its_heartbeat_is_stale(tmp_path):
    _write_lock(tmp_path, host="node-elsewhere", pid=1, heartbeat=time.time() - 10)
    with pytest.raises(RunLocked, match="PID 1 on host node-elsewhere"):
        RunLock(tmp_path).acquire()
    _write_lock(
        tmp_path, host="node-elsewhere", heartbeat=time.time() - 1.5 * run_lock.STALE_SECONDS
    )
    with RunLock(tmp_path):
        assert read_holder(tmp_path / LOCK).host == socket.gethostname()


def test_a_reused_pid_is_not_the_holder(tmp_path):
    """Same host, the PID runs, but it is another process (its start time differs)."""
    _write_lock(tmp_path, process_start="1")
    with RunLock(tmp_path):
        pass
    _write_lock(tmp_path, process_start=run_lock._process_start(os.getpid()))
    with pytest.raises(RunLocked):
        RunLock(tmp_path).acquire()


def test_heartbeat_and_a_lost_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "HEARTBEAT_SECONDS", 0.05)
    with RunLock(tmp_path) as lock:
        first = read_holder(tmp_path / LOCK).heartbeat
        time.sleep(0.3)
        assert read_holder(tmp_path / LOCK).heartbeat > first
        monkeypatch.setattr(run_lock, "HEARTBEAT_SECONDS", 1000.0)
        time.sleep(0.3)  # the beat in progress ends; the next is far away
        # Another process took the lock over (this one looked dead to it).
        _write_lock(tmp_path, pid=4242, token="theirs")
        with pytest.raises(LockLost, match="taken over by PID 4242"):
            lock.verify()
    assert read_holder(tmp_path / LOCK).token == "theirs"  # not removed by the loser


def test_a_disabled_lock_does_nothing(tmp_path):
    with RunLock(tmp_path, enabled=False) as lock:
        lock.verify()
    assert os.listdir(tmp_path) == []


def test_an_unreadable_lock_file_is_stale_by_its_age(tmp_path):
    (tmp_path / LOCK).write_text("{not json")
    with pytest.raises(RunLocked) as refused:
        RunLock(tmp_path).acquire()
    assert "unreadable lock file" in str(refused.value) and "kill" not in str(refused.value)
    old = time.time() - 2 * run_lock.STALE_SECONDS
    os.utime(tmp_path / LOCK, (old, old))
    with RunLock(tmp_path):
        assert read_holder(tmp_path / LOCK).pid == os.getpid()
