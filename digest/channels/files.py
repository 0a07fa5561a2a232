"""Writing output files so that a reader never sees half a file and a crash leaves none."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from pathlib import Path


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to a temporary file beside ``path``, sync it, then rename it into place.

    The rename is the moment of delivery: before it, ``path`` is unchanged; after it, the
    whole new content is there, even across a power cut.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)  # left by a process killed mid-write
    fd, temporary = _new_temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temporary).unlink()
        raise
    sync_directory(path.parent)


def _new_temporary(path: Path) -> tuple[int, str]:
    """A new, empty temporary file beside ``path``, open for writing.

    Its mode comes from the process's umask, like every other file a run creates: private
    by default, readable by others when ``[output] umask`` says so (``mkstemp`` would
    always make 0600, and a fixed chmod would ignore the umask).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        temporary = str(path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:  # another writer drew the same name: draw again
            continue


def sync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
