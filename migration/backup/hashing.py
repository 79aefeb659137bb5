"""The sha256 of a dump computed while pg_dump writes it, on idle CPU only, with write-back behind it."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import threading
from typing import Callable

from .dumptext import DumpReader

# Every read of a backup (hashing, counting rows, feeding a restore) goes through a buffer of this size. Not
# larger: hashing a 600 MB dump takes the same CPU time with 128 KiB, 256 KiB, 1 MiB or 4 MiB reads (sha256
# dominates), but glibc keeps large blocks freed by a thread in that thread's malloc arena (after the first
# 4 MiB block is freed its dynamic mmap threshold rises to 4 MiB), so with 4 MiB buffers a fleet of backups
# grew by ~4 MiB per arena and kept it (see benchmarks/fleet.py in README.md).
READ_CHUNK = 256 << 10
_HASH_NICE = 10  # without SCHED_IDLE, the follower thread runs at nice +10 (Linux: per thread)
_WRITEBACK_STEP = 32 << 20  # the follower starts writing back (and then drops) what it hashed, in steps


def file_stamp(st: os.stat_result) -> tuple[int, int, int]:
    """Which file, and when it was last written (nanoseconds, at the file system's timestamp resolution)."""
    return st.st_dev, st.st_ino, st.st_mtime_ns


class Hashed:
    """The sha256 of a file's first :attr:`size` bytes, read as the file grows, and what shows they are still
    its bytes: the file's identity and modification time taken just before the last read that returned bytes.

    Once the writer has exited, :meth:`unchanged` tells whether the file still holds exactly what was hashed:
    the same size and no write since. A file cut short, extended, or changed in place after it was read (by
    anyone: pg_dump has exited by then) is read again from its start by the caller. Not seen: a change that
    keeps the size within the same tick of the file system's clock (a few milliseconds) as the last read — the
    drill and the restore hash the whole backup again before they read it.
    """

    def __init__(self, feed: Callable[[bytearray, int], None] | None = None) -> None:
        self.size = 0
        self.digest = hashlib.sha256()
        self.feed = feed  # every block read, after it was hashed (e.g. a row counter)
        self.stamp: tuple[int, int, int] | None = None

    def read(self, fd: int, buffer: bytearray, limit: int | None = None) -> int:
        """Read what was appended since last time (at least ``limit`` bytes, when given, then return); the
        bytes read."""
        view = memoryview(buffer)
        total = 0
        while True:
            before = os.fstat(fd)
            n = os.preadv(fd, [buffer], self.size)
            if not n:
                return total
            self.stamp = file_stamp(before)
            self.digest.update(view[:n])
            if self.feed is not None:
                self.feed(buffer, n)
            self.size += n
            total += n
            if limit is not None and total >= limit:
                return total

    def unchanged(self, fd: int) -> bool:
        """The file holds what was hashed: its size, and not written since the last read (see the class)."""
        st = os.fstat(fd)
        if st.st_size != self.size:
            return False
        return self.size == 0 if self.stamp is None else self.stamp == file_stamp(st)


class Follower(threading.Thread):
    """Hashes a file while pg_dump appends to it (plain format only: it never seeks back), and counts the rows
    of every table in it on the way (:class:`~.dumptext.DumpReader`: the same bytes, no work for the server).

    It runs at idle priority so that it only takes CPU that pg_dump and the server leave over;
    :meth:`finish` takes over whatever is left in the calling thread, at normal priority.
    Behind it, the pages it has hashed are written back to disk and dropped from the page cache
    (``POSIX_FADV_DONTNEED``): the final fsync then has little left to wait for, and a large dump
    does not push the database's own working set out of the operating system's cache.
    """

    def __init__(self, fd: int) -> None:
        """``fd``: a read-only descriptor of the file being written; the follower closes it."""
        super().__init__(name="migrate-tui-backup-hash", daemon=True)
        self.fd = fd
        self.reader = DumpReader()
        self.hashed = Hashed(self.reader.feed)
        self._handoff = threading.Event()

    @property
    def count(self) -> int:
        """The bytes hashed so far."""
        return self.hashed.size

    def run(self) -> None:
        lower_thread_priority()
        buffer = bytearray(READ_CHUNK)
        writeback = _Writeback()
        while not self._handoff.is_set():
            if self.hashed.read(self.fd, buffer, limit=READ_CHUNK):
                writeback.advance(self.fd, self.hashed.size)
            elif self._handoff.wait(0.05):
                return

    def stop(self) -> None:
        """Ends the thread (and waits for it); the descriptor stays open until :meth:`close`."""
        self._handoff.set()
        if self.is_alive():
            self.join()

    def close(self) -> None:
        self.stop()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def finish(self) -> str | None:
        """The sha256 of the whole (complete) file: the rest is hashed here, in the caller's thread. None when
        the file changed after a part of it was hashed (:meth:`Hashed.unchanged`): the caller reads it again."""
        self.stop()
        self.hashed.read(self.fd, bytearray(READ_CHUNK))
        return self.hashed.digest.hexdigest() if self.hashed.unchanged(self.fd) else None


class _Writeback:
    """Starts the write-back of a growing file behind a reader, then drops the written pages.

    Each range is advised twice: the first ``POSIX_FADV_DONTNEED`` starts writing its dirty
    pages (without waiting), the next one, a step later, drops them once they are clean.
    """

    def __init__(self) -> None:
        self.previous = 0  # start of the range advised last time
        self.current = 0  # end of it
        self.enabled = hasattr(os, "posix_fadvise")

    def advance(self, fd: int, hashed: int) -> None:
        if not self.enabled or hashed - self.current < _WRITEBACK_STEP:
            return
        try:
            os.posix_fadvise(fd, self.previous, hashed - self.previous, os.POSIX_FADV_DONTNEED)
        except OSError:  # advice only; the final fsync still makes the file durable
            self.enabled = False
        self.previous, self.current = self.current, hashed


_SYNC_FILE_RANGE_WRITE = 2  # Linux: start writing the range's dirty pages, do not wait for them


@functools.lru_cache(maxsize=1)
def _sync_file_range():
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range  # called without the GIL
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Start writing a range of a file to disk without waiting, and keep its pages cached (Linux
    ``sync_file_range(SYNC_FILE_RANGE_WRITE)``); False where that is not available (advice only)."""
    function = _sync_file_range()
    return function is not None and function(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0


def lower_thread_priority() -> None:
    """Run the calling thread only on otherwise idle CPU (Linux SCHED_IDLE), else at nice +10.

    Linux applies both per thread. Best effort: elsewhere the thread keeps the normal priority.
    """
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + _HASH_NICE))
    except (AttributeError, OSError):
        pass
