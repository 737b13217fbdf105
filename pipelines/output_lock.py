"""One writer per output: `<out>.lock`, held with flock while the run lasts.

The lock is the kernel's, not the file's content. A run that dies (kill -9,
the OOM killer, a node that reboots) drops it with its last file descriptor,
so the next run takes over whatever pid the file names. A pid alone cannot
tell: a restarted container gives its entrypoint the same pid again, and
another program may hold a reused one for days.

The file's content (pid, host, start) names the holder in the refusal. A
holder on another host is judged by its heartbeat too, the file's mtime that
a live run renews every HEARTBEAT_S: file systems that keep flocks to one
machine (Lustre's localflock, some FUSE mounts) would otherwise let a second
host in. Where flock is not supported at all, the pid check stands in for it
on this host.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path

HEARTBEAT_S = 60.0
STALE_AFTER_S = 15 * 60.0  # another host's lock not renewed for this long is left by a run that is gone
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class OutputLocked(RuntimeError):
    pass


class _NoFlock(OSError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class OutputLock:
    """`<out>.lock`: acquire() refuses with OutputLocked while another live run holds it."""

    def __init__(self, out: Path, heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S):
        out = Path(out)
        self.path = out.with_name(out.name.rstrip("/") + ".lock")
        self.mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self._fd: int | None = None
        self._stop = threading.Event()

    def acquire(self) -> None:
        try:
            self._acquire_by_flock()
        except _NoFlock:
            self._acquire_by_pid()

    def _flock(self, fd: int) -> None:
        """Take the lock on `fd` or raise: BlockingIOError while a live run holds it, _NoFlock where the file
        system has no flock."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:  # BlockingIOError's EWOULDBLOCK is not among them: it goes up as it is
            if error.errno in _NO_FLOCK:
                raise _NoFlock(error.errno, error.strerror) from None
            raise

    def _acquire_by_flock(self) -> None:
        for _ in range(8):  # each turn loses only to a run that took or dropped the lock in between
            fd = self._open()
            if fd is None:
                continue
            try:
                self._flock(fd)
            except BlockingIOError:
                os.close(fd)
                raise self._refusal(self._holder()) from None
            except OSError:
                os.close(fd)
                raise
            if not self._still_the_file(fd):  # dropped and deleted by its holder while we waited: lock the new one
                os.close(fd)
                continue
            holder = self._holder()
            if self._live_elsewhere(holder):
                os.close(fd)
                raise self._refusal(holder)
            self._fd = fd
            self._write(fd)
            self._start_heartbeat(fd)
            return
        raise OutputLocked(f"could not lock {self.path}: other runs keep taking and dropping it")

    def _open(self) -> int | None:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            pass
        # Someone else's lock file: if no run holds it, it is stale, and deleting it lets us create ours.
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except PermissionError as error:
            raise OutputLocked(f"cannot read the lock {self.path} ({error.strerror}); "
                               "delete it if no run is writing this output") from None
        try:
            self._flock(fd)
        except BlockingIOError:
            raise self._refusal(self._holder()) from None
        finally:
            os.close(fd)
        holder = self._holder()
        if self._live_elsewhere(holder):
            raise self._refusal(holder)
        self.path.unlink(missing_ok=True)
        return None

    def _still_the_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)

    def _holder(self) -> dict:
        try:
            holder = json.loads(self.path.read_text() or "{}")
            return holder if isinstance(holder, dict) else {}
        except (OSError, ValueError):
            return {}

    def _live_elsewhere(self, holder: dict) -> bool:
        """A holder on another host whose heartbeat is recent: its flock may not reach this machine."""
        if not holder or holder.get("host") == self.mine["host"]:
            return False
        try:
            return time.time() - self.path.stat().st_mtime < self.stale_after_s
        except FileNotFoundError:
            return False

    def _refusal(self, holder: dict) -> OutputLocked:
        return OutputLocked(
            f"{self.path.name.removesuffix('.lock')} is being written by pid {holder.get('pid')} on "
            f"{holder.get('host')} since {holder.get('started')}; wait for that run, or delete {self.path} if it is gone"
        )

    def _payload(self) -> bytes:
        return json.dumps(self.mine).encode()

    def _write(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, self._payload(), 0)
        os.fsync(fd)

    def _start_heartbeat(self, target: int | Path) -> None:
        """Renew the lock's mtime (through our descriptor, or the path without flock) until release."""
        stop = self._stop = threading.Event()  # its own per hold: an old thread never touches a reused fd

        def beat() -> None:
            while not stop.wait(self.heartbeat_s):
                try:
                    os.utime(target)
                except OSError:
                    return

        threading.Thread(target=beat, name="output-lock-heartbeat", daemon=True).start()

    def _acquire_by_pid(self) -> None:
        """Without flock: the holder's pid, where it ran on this host, says whether it still runs."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = self._holder()
            same_host = holder.get("host") == self.mine["host"]
            pid = holder.get("pid") if isinstance(holder.get("pid"), int) else 0
            if same_host:  # our own pid named there is a restarted container's, not a live run's
                gone = pid == os.getpid() or pid <= 0 or not _alive(pid)
            else:
                gone = not self._live_elsewhere(holder)
            if holder and not gone:
                raise self._refusal(holder) from None
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}")
            tmp.write_bytes(self._payload())
            os.replace(tmp, self.path)
            winner = self._holder()
            if winner.get("pid") != self.mine["pid"]:
                raise self._refusal(winner) from None
        else:
            try:
                self._write(fd)
            finally:
                os.close(fd)
        self._start_heartbeat(self.path)

    def release(self) -> None:
        self._stop.set()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if self._still_the_file(fd):  # unlinked while locked: no one can take the old file for ours
                    self.path.unlink()
            except OSError:
                pass
            finally:
                os.close(fd)
            return
        try:
            if self._holder().get("pid") == self.mine["pid"]:
                self.path.unlink()
        except OSError:
            pass

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
