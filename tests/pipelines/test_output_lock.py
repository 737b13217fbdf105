"""The output lock: held by the kernel, so a dead run's lock is taken over whatever pid its file names."""

import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from omni_caption.pipelines import output_lock
from omni_caption.pipelines.output_lock import OutputLock, OutputLocked


def leave_lock(out, pid, host=None, age_s=0.0):
    """A lock file as a run killed with -9 leaves it: content, no holder."""
    path = out.with_name(out.name + ".lock")
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-01T00:00:00"}))
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("named", ["own pid", "live pid", "pid 1"])
def test_a_lock_nobody_holds_is_taken_over_whatever_live_pid_it_names(tmp_path, live_pid, named):
    """A restarted container's entrypoint gets the pid its killed run had; another program may reuse it."""
    out = tmp_path / "o.parquet"
    path = leave_lock(out, {"own pid": os.getpid(), "live pid": live_pid, "pid 1": 1}[named])
    with OutputLock(out) as lock:
        assert json.loads(path.read_text()) == lock.mine
    assert not path.exists()


def test_a_held_lock_refuses_a_second_writer_naming_the_holder(tmp_path):
    out = tmp_path / "o.parquet"
    with OutputLock(out) as first:
        with pytest.raises(OutputLocked, match=f"pid {first.mine['pid']} on {first.mine['host']}"):
            OutputLock(out).acquire()
        assert first.path.exists()
    assert not first.path.exists()
    with OutputLock(out):  # free again
        pass


def test_another_hosts_lock_is_refused_while_its_heartbeat_is_fresh(tmp_path):
    """Where flocks stay on one machine, only the heartbeat tells a live run on another host from a gone one."""
    out = tmp_path / "o.parquet"
    leave_lock(out, 4242, host="node-17", age_s=60)
    with pytest.raises(OutputLocked, match="pid 4242 on node-17"):
        OutputLock(out).acquire()
    path = leave_lock(out, 4242, host="node-17", age_s=output_lock.STALE_AFTER_S + 60)
    with OutputLock(out) as lock:
        assert json.loads(path.read_text())["host"] == lock.mine["host"]


def test_the_holder_renews_its_heartbeat(tmp_path):
    out = tmp_path / "o.parquet"
    with OutputLock(out, heartbeat_s=0.02) as lock:
        long_ago = time.time() - 3600
        os.utime(lock.path, (long_ago, long_ago))
        deadline = time.monotonic() + 5
        while lock.path.stat().st_mtime < long_ago + 1800 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lock.path.stat().st_mtime > time.time() - 60


def test_a_lock_deleted_and_made_again_by_its_holder_is_not_shared(tmp_path, monkeypatch):
    """We opened the old file just before its holder released it: locking that unlinked file must not count."""
    out = tmp_path / "o.parquet"
    holder = OutputLock(out)
    holder.acquire()
    real_flock = fcntl.flock
    calls = []

    def release_then_lock(fd, operation):
        calls.append(fd)
        if len(calls) == 1:
            holder.release()  # unlinks the file we hold open
            successor.acquire()  # and a third run makes a new one
        return real_flock(fd, operation)

    successor = OutputLock(out)
    monkeypatch.setattr(output_lock.fcntl, "flock", release_then_lock)
    with pytest.raises(OutputLocked, match=f"pid {successor.mine['pid']}"):
        OutputLock(out).acquire()
    assert len(calls) == 3  # ours on the unlinked file, the successor's, ours on the new file was locked, seen to be gone, and the new one tried
    successor.release()


def test_without_flock_the_pid_decides_on_this_host(tmp_path, monkeypatch, live_pid):
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(output_lock.fcntl, "flock", no_flock)
    out = tmp_path / "o.parquet"
    with OutputLock(out) as lock:  # no lock file yet: made, ours
        assert json.loads(lock.path.read_text()) == lock.mine
    assert not lock.path.exists()
    leave_lock(out, live_pid)
    with pytest.raises(OutputLocked, match=f"pid {live_pid}"):
        OutputLock(out).acquire()
    for gone in (os.getpid(), 0):  # a restarted container's own pid; a pid that cannot be a run's
        path = leave_lock(out, gone)
        with OutputLock(out) as lock:
            assert json.loads(path.read_text()) == lock.mine
        assert not path.exists()
