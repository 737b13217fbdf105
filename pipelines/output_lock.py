"""One writer per output: a lock file holding the writer's pid and host."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


class OutputLocked(RuntimeError):
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
    """`<out>.lock`; a lock left by a dead process on this host is taken over."""

    def __init__(self, out: Path):
        out = Path(out)
        self.path = out.with_name(out.name.rstrip("/") + ".lock")
        self.mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def acquire(self) -> None:
        payload = json.dumps(self.mine).encode()
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            self._take_over_if_stale(payload)
            return
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())

    def _take_over_if_stale(self, payload: bytes) -> None:
        try:
            holder = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            holder = {}
        same_host = holder.get("host") == self.mine["host"]
        if not holder or (same_host and not _alive(int(holder.get("pid", 0)))):
            # Stale: written by a process that no longer runs. Replace atomically, then check we won.
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}")
            tmp.write_bytes(payload)
            os.replace(tmp, self.path)
            if json.loads(self.path.read_text()).get("pid") == self.mine["pid"]:
                return
            holder = json.loads(self.path.read_text())
        raise OutputLocked(
            f"{self.path.name.removesuffix('.lock')} is being written by pid {holder.get('pid')} on "
            f"{holder.get('host')} since {holder.get('started')}; wait for that run, or delete {self.path} if it is gone"
        )

    def release(self) -> None:
        try:
            if json.loads(self.path.read_text()).get("pid") == self.mine["pid"]:
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
