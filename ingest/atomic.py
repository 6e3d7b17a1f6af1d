"""Crash-safe file replacement and the cross-process locks that serialize writes to one spec.

A reader must never see half a file: bytes go to a temp file in the target's own directory (so
`os.replace` is a rename on one filesystem), are fsynced, renamed over the target, and the
directory is fsynced so the rename itself survives a crash. Lock files live under the data dir,
never in the spec folder, so a spec folder only ever holds what people put there.

A disk that refuses the write (full, read-only, no permission) is a StorageUnavailable (DiskFull
for no space) naming the file, never a bare OSError: the target is then left as it was, because
nothing replaces it before the temp file is complete (spec 043).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import Busy, DiskFull, StorageUnavailable, UnsafeReference
from .specs.store import check_reference

__all__ = [
    "CREATE_LOCK",
    "GRAPH_LOCK",
    "LOCK_TIMEOUT_SECONDS",
    "atomic_write",
    "named_lock",
    "spec_lock",
    "storage_errors",
]

# A spec lock is held for one file write (milliseconds); waiting longer than this means something
# is stuck, and a front door must answer (Busy: HTTP 503 + Retry-After) instead of hanging.
LOCK_TIMEOUT_SECONDS = 10.0
# Names of locks that are not one spec's: they cannot collide with a spec dir (which starts with
# a digit or letter) because they start with an underscore.
CREATE_LOCK = "_create"
# fsync makes a write survive power loss; bulk tests that rewrite hundreds of files switch it off.
DURABLE = True
GRAPH_LOCK = "_graph"


_FULL = {errno.ENOSPC, errno.EDQUOT}
_REFUSED = {errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


@contextlib.contextmanager
def storage_errors(target: Path | str, doing: str = "write") -> Iterator[None]:
    """An OSError by which the filesystem refuses a write becomes DiskFull (no space, quota) or
    StorageUnavailable (read-only, permission, I/O), naming `target`; any other OSError is left
    alone (it means something else, such as a missing spec)."""
    try:
        yield
    except OSError as err:
        if err.errno in _FULL:
            raise DiskFull(
                f"cannot {doing} {target}: the disk is full ({os.strerror(err.errno)}); "
                "nothing was changed"
            ) from None
        if err.errno in _REFUSED:
            raise StorageUnavailable(
                f"cannot {doing} {target}: {os.strerror(err.errno)}; nothing was changed"
            ) from None
        raise


def _fsync_dir(directory: Path) -> None:
    if not DURABLE:
        return
    # Not every platform lets a directory be opened for fsync; the rename is still atomic there.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once, keeping the old file's permissions; a refused
    write (full or read-only disk) raises StorageUnavailable and leaves `path` untouched."""
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    with storage_errors(path):
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if DURABLE:
                    os.fsync(handle.fileno())
            os.chmod(temp_name, mode)
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
    _fsync_dir(directory)


@contextlib.contextmanager
def named_lock(data_dir: Path, name: str) -> Iterator[None]:
    """Hold `<data_dir>/locks/<name>.lock` across processes, or fail after a bounded wait."""
    locks = Path(data_dir) / "locks"
    lock = FileLock(str(locks / f"{name}.lock"), timeout=LOCK_TIMEOUT_SECONDS)
    try:
        with storage_errors(locks / f"{name}.lock", "create the lock"):
            locks.mkdir(parents=True, exist_ok=True)
            lock.acquire()
    except Timeout:
        raise Busy(
            f"could not lock {name} within {LOCK_TIMEOUT_SECONDS:.0f}s: another write holds "
            f"{locks / (name + '.lock')}; nothing was written"
        ) from None
    try:
        yield
    finally:
        lock.release()


def spec_lock(data_dir: Path, dir_name: str) -> contextlib.AbstractContextManager[None]:
    """The lock every write to spec `dir_name` holds while it reads, checks and replaces files."""
    if check_reference(dir_name) != dir_name:
        raise UnsafeReference(f"cannot lock {dir_name!r}: not a spec directory name")
    return named_lock(data_dir, dir_name)
