"""Which watched directories changed since the last look: Linux inotify, read without blocking.

The live catalog used to stat every spec file on every read to learn that nothing changed (12 ms
per read on the LeanSpec corpus, called dozens of times per context bundle). The kernel already
knows: a write to a watched directory queues an event on the inotify descriptor before the
write's system call returns, so a non-blocking read of that descriptor at the start of a read is
exact, not eventual. No thread, no polling, one system call when nothing changed (spec 077).

`DirectoryWatch.open()` is None where inotify is missing (not Linux) or refused (the per-user
instance limit); `watch()` returns False when a watch cannot be added (the per-user watch
limit). Callers then fall back to comparing stats, which is always correct, only slower.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys
import weakref
from collections.abc import Iterable
from pathlib import Path

__all__ = ["EVERYTHING", "DirectoryWatch"]

# What makes a directory's listing or a file's (mtime, size) change.
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_IN_Q_OVERFLOW, _IN_IGNORED, _IN_ONLYDIR = 0x4000, 0x8000, 0x01000000
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of name

EVERYTHING: frozenset[Path] = frozenset({Path("/")})  # the queue overflowed: assume any change


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1  # noqa: B018 (present since glibc 2.9; checked, not called)
    except (OSError, AttributeError):
        return None
    return libc


class DirectoryWatch:
    def __init__(self, libc: ctypes.CDLL, fd: int):
        self._libc, self._fd = libc, fd
        self._by_wd: dict[int, Path] = {}
        self._by_path: dict[Path, int] = {}
        weakref.finalize(self, os.close, fd)

    @classmethod
    def open(cls) -> DirectoryWatch | None:
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        return cls(libc, fd)

    def watch(self, directories: Iterable[Path]) -> bool:
        """Watch exactly these directories from now on; False when one could not be added (the
        caller must not trust `changes()` then)."""
        wanted = set(directories)
        for path in set(self._by_path) - wanted:
            self._libc.inotify_rm_watch(self._fd, self._by_path.pop(path))
        for path in wanted - set(self._by_path):
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _MASK)
            if wd < 0:
                if ctypes.get_errno() in (2, 20):  # ENOENT, ENOTDIR: gone since it was listed
                    continue
                return False
            self._by_path[path] = wd
            self._by_wd[wd] = path
        return True

    def changes(self) -> frozenset[Path]:
        """The watched directories with events since the last call (EVERYTHING after an
        overflow); empty when nothing changed. Never blocks."""
        changed: set[Path] = set()
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return frozenset(changed)
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                if mask & _IN_Q_OVERFLOW:
                    return EVERYTHING
                path = self._by_wd.get(wd)
                if path is not None:
                    changed.add(path)
                if mask & _IN_IGNORED and path is not None:  # the directory went away
                    del self._by_wd[wd]
                    self._by_path.pop(path, None)
