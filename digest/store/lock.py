"""One run at a time: an exclusive lock the operating system releases when the process dies.

A lock row in a table would outlive a SIGKILLed run and need stale-lock guessing; an
``flock`` on a file beside the store cannot: the kernel drops it with the process. The
file also records who holds it, so the second run can say so.

An ``flock`` belongs to the open file, and a forked child shares the parent's open files:
a child that outlived its run would keep the lock taken for ever. So a forked child closes
its copy of the descriptor at once (``os.register_at_fork``; never ``LOCK_UN``, which would
release its parent's lock). A lock still held although the run it names is dead (left by
a process that inherited it some other way, e.g. an older version's worker) is taken over
when that can be told for sure: the pid it records is on this host and dead, and the
processes that still have the file open are visible here. The file is then replaced by a
new one, locked by this run, and the old one is left to its orphans; what was taken over is
logged. Taking the lock, taking it over included, is done under a second, short-lived lock
(``digest.db.guard.lock`` beside ``digest.db.lock``), so that two runs can never both take
over the same stale lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

from digest.errors import LockedError

log = logging.getLogger("digest")

GUARD_PATIENCE = 10.0  # seconds to wait for another process taking the lock (a few syscalls)

_held: set[RunLock] = set()  # the locks this process holds, for a forked child to close


_HOLDER = re.compile(r"pid (?P<pid>\d+) on (?P<host>[^,\s]+),")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who a lock file says holds it: ``pid N on HOST, since WHEN`` (as ``acquire``
    writes it); pid and host None when the file says something else."""

    text: str
    pid: int | None
    host: str | None

    @classmethod
    def parse(cls, text: str) -> Holder:
        found = _HOLDER.match(text)
        if found is None:
            return cls(text, None, None)
        return cls(text, int(found["pid"]), found["host"])


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.guard_path = path.with_name(f"{path.stem}.guard{path.suffix}")
        self._fd: int | None = None
        self.took_over: str | None = None  # what was taken over, if the lock was stale

    def acquire(self, now: datetime) -> None:
        """Take the lock or raise LockedError naming the lock file and its holder; take
        over a lock whose holder is known to be dead (see the module's docstring)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _guarded(self.guard_path):
            fd = self._lock_current_file()
            if fd is None:
                fd = self._take_over_stale()
            holder = f"pid {os.getpid()} on {socket.gethostname()}, since {now.isoformat()}"
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
            self._fd = fd
        _held.add(self)

    def _lock_current_file(self) -> int | None:
        """The lock file's descriptor, locked; None if another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _take_over_stale(self) -> int:
        """A new lock file in place of one whose holder is dead; else LockedError."""
        holder = Holder.parse(self._recorded_holder())
        named = f"another run holds the lock {self.path}" + (
            f" ({holder.text})" if holder.text else ""
        )
        if holder.pid is None or holder.host != socket.gethostname() or _alive(holder.pid):
            raise LockedError(named)
        still_open = _processes_with_open(self.path)
        if not still_open:
            fd = self._lock_current_file()  # its last holder may have died just now
            if fd is not None:
                return fd
            raise LockedError(
                f"{named}: that process is not running, but the lock is held by a process "
                "this one cannot see (another container, user or host sharing the folder)",
                hint="stop the other process, or delete the lock file once you are sure "
                "no run uses this store",
            )
        fresh = self.path.with_name(f"{self.path.stem}.{os.getpid()}.new{self.path.suffix}")
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        fresh.replace(self.path)
        self.took_over = (
            f"took over the run lock {self.path} from a dead run ({holder.text}); "
            f"processes {', '.join(map(str, still_open))} left from it still held it"
        )
        log.warning("%s", self.took_over)
        return fd

    def _recorded_holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        _held.discard(self)

    def _forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptor without unlocking it (the
        lock is the parent's), so that the child never keeps it alive."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _forget_held_locks_in_child() -> None:
    for lock in list(_held):
        lock._forget_in_child()
    _held.clear()


os.register_at_fork(after_in_child=_forget_held_locks_in_child)


@contextmanager
def _guarded(path: Path) -> Iterator[None]:
    """Hold ``path`` locked while this process takes the run lock: a blocking flock,
    given up after GUARD_PATIENCE seconds with LockedError."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + GUARD_PATIENCE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockedError(
                        f"{path}: another process has been taking the run lock "
                        f"for over {GUARD_PATIENCE:.0f} s"
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists here (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # the state follows the command name


def _processes_with_open(path: Path) -> list[int]:
    """The pids of the processes (visible in /proc) that have ``path`` open, by inode."""
    try:
        target = path.stat()
        processes = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return []
    found = []
    for process in processes:
        if int(process.name) != os.getpid() and _has_open(process, target):
            found.append(int(process.name))
    return sorted(found)


def _has_open(process: Path, target: os.stat_result) -> bool:
    try:
        descriptors = list((process / "fd").iterdir())
    except OSError:  # gone, or not ours to see
        return False
    for descriptor in descriptors:
        try:
            st = descriptor.stat()
        except OSError:  # closed meanwhile
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False
