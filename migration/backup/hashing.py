"""The sha256 of a dump computed while pg_dump writes it, on idle CPU only, with write-back behind it."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import threading

from .dumptext import DumpReader

_HASH_CHUNK = 4 << 20  # the follower's reads: large, into one reused buffer
_HASH_NICE = 10  # without SCHED_IDLE, the follower thread runs at nice +10 (Linux: per thread)
_WRITEBACK_STEP = 32 << 20  # the follower starts writing back (and then drops) what it hashed, in steps


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
        self.digest = hashlib.sha256()
        self.count = 0
        self.reader = DumpReader()
        self._handoff = threading.Event()

    def run(self) -> None:
        lower_thread_priority()
        buffer = bytearray(_HASH_CHUNK)
        view = memoryview(buffer)
        writeback = _Writeback()
        while not self._handoff.is_set():
            n = os.preadv(self.fd, [buffer], self.count)
            if n:
                self.digest.update(view[:n])
                self.reader.feed(buffer, n)
                self.count += n
                writeback.advance(self.fd, self.count)
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

    def finish(self) -> str:
        """The sha256 of the whole (complete) file: the rest is hashed here, in the caller's thread."""
        self.stop()
        buffer = bytearray(_HASH_CHUNK)
        view = memoryview(buffer)
        while n := os.preadv(self.fd, [buffer], self.count):
            self.digest.update(view[:n])
            self.reader.feed(buffer, n)
            self.count += n
        return self.digest.hexdigest()


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
