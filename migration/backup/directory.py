"""The files of a directory-format dump followed while pg_dump writes them: their sha256, and the rows of
every table's data file, on idle CPU, with no extra work for the server.

pg_dump ``--jobs N`` appends to one data file per table (``ID.dat``, ``ID.dat.gz``, …) and reports
``finished item ID TABLE DATA name`` once it is closed. :class:`DirFollower` reads each data file as
it grows (like the plain dump's :class:`~.hashing.Follower`): it hashes the bytes and counts the
lines of the COPY data (decompressing gzip as it goes) — two C-speed passes over each chunk, nothing
per row in Python — and checks that the file ends with the end mark ``\\.`` that proves it complete
(:class:`CopyData`); behind it, it starts writing the file back to disk, so that pg_dump's fsync at
its end (a pass over every file) finds little left to write. What is left when pg_dump exits (``toc.dat``, large objects, the tail of the last
files) is read on every core; the page cache still holds it. A data file it cannot decompress
(lz4, zstd) is only hashed: its rows are then counted from what pg_restore prints.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

from ..safe_dirs import list_files, open_file
from .hashing import READ_CHUNK, Hashed, lower_thread_priority, start_writeback

_CHUNK = READ_CHUNK
_TURN = 16 << 20  # a file's share of one pass before the other files get their turn
_WRITEBACK_STEP = 16 << 20  # the follower starts writing a data file back to disk behind it, in steps
DATA_FILE = re.compile(r"^(\d+)\.dat(\.gz)?$")  # the data files whose rows are counted here
UNCOUNTABLE = re.compile(r"^\d+\.dat\.(?!gz$)\w+$")  # lz4, zst: no decompressor in the standard library


def listing(files: dict[str, tuple[int, str]], prefix: str = "") -> str:
    """``sha256  prefix/name`` lines, sorted (``sha256sum -c`` reads them); their own sha256 names the whole dump."""
    return "".join(f"{digest}  {prefix}{name}\n" for name, (_, digest) in sorted(files.items()))


class CopyData:
    """The rows of one table's COPY data as it streams past (a data file of a directory archive).

    pg_dump writes one row per line — a newline or backslash inside a value is escaped (``\\n``,
    ``\\\\``), so every newline ends a row — then the end mark, the line ``\\.``, and blank lines.
    Each chunk costs one ``bytes.count``; only its last bytes are looked at otherwise. At the end the
    file's last non-blank line must be the end mark (:attr:`rows` is None otherwise: the file is
    incomplete); its rows are its lines before that mark.
    """

    _TAIL = 64  # the bytes of a chunk looked at for its trailing newlines (more only when they are all newlines)

    def __init__(self) -> None:
        self.lines = 0  # newlines so far
        self.blank = 0  # the newlines at the end of what was read so far
        self.last = b""  # up to 3 bytes just before them (the end mark, at the end)

    def feed(self, buf: bytes | bytearray, n: int | None = None) -> None:
        n = len(buf) if n is None else n
        if n <= 0:
            return
        self.lines += buf.count(b"\n", 0, n)
        tail = bytes(buf[max(0, n - self._TAIL):n])
        body = tail.rstrip(b"\n")
        if len(body) < 3 and len(tail) < n:  # a long run of newlines, or a line end just before the tail: the whole chunk
            tail = bytes(buf[:n])
            body = tail.rstrip(b"\n")
        if not body:
            self.blank += n
            return
        self.last = (self.last + b"\n" * min(self.blank, 3) + body)[-3:]
        self.blank = len(tail) - len(body)

    @property
    def rows(self) -> int | None:
        """The rows before the end mark that closes the data; None when the data does not end with it."""
        at_start = self.last == b"\\." and self.lines == self.blank  # an empty table: the mark is the first line
        if not (self.last.endswith(b"\n\\.") or at_start):
            return None
        return self.lines - self.blank


class Followed(Hashed):
    """One file read as it grows: its sha256 so far, and for a data file its rows so far."""

    def __init__(self, name: str, count: bool = False) -> None:
        super().__init__(self._count)
        self.name = name
        match = DATA_FILE.match(name) if count else None
        self.dump_id = match.group(1) if match else None
        self.copy = CopyData() if match else None
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if match and match.group(2) else None
        if self.copy is None:
            self.feed = None
        self.done = False
        self._rows: int | None = None
        self.written_back = 0  # the bytes whose write-back was started

    def _count(self, buffer: bytearray, n: int) -> None:
        assert self.copy is not None
        if self.inflate is not None:
            self.copy.feed(self.inflate.decompress(memoryview(buffer)[:n]))
        else:
            self.copy.feed(buffer, n)

    def read(self, fd: int, complete: bool = False) -> int:
        """Read what was appended since last time (everything when ``complete``); the bytes read."""
        total = super().read(fd, bytearray(_CHUNK), None if complete else _TURN)  # else: the other files' turn
        if complete:
            self.done = True
            if self.copy is not None:
                if self.inflate is not None:
                    self.copy.feed(self.inflate.flush())
                self._rows = self.copy.rows
        return total

    def write_back(self, fd: int) -> None:
        """Start writing what was read to disk, in steps (all of it once the file is complete). The pages stay
        cached for pg_restore's read-back; pg_dump's own fsync at its end then has little left to write."""
        if self.size - self.written_back >= _WRITEBACK_STEP or (self.done and self.size > self.written_back):
            if start_writeback(fd, self.written_back, self.size - self.written_back):
                self.written_back = self.size

    @property
    def rows(self) -> int | None:
        """The data file's rows, once it was read to its end and its end mark seen (None otherwise)."""
        return self._rows


class DirFollower:
    """Follows the files of a directory pg_dump is writing (a thread at idle priority); :meth:`finish` completes them."""

    def __init__(self, dir_fd: int, workers: int = 2) -> None:
        """``dir_fd``: a descriptor of the directory (the follower closes its own duplicate)."""
        self.fd = os.dup(dir_fd)
        self.workers = max(1, workers)
        self.files: dict[str, Followed] = {}
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="migrate-tui-backup-follow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def item_finished(self, dump_id: str) -> None:
        """pg_dump finished the table data item ``dump_id``: its file is complete."""
        with self._lock:
            self._finished.add(dump_id)

    def _run(self) -> None:
        lower_thread_priority()
        while not self._stop.is_set():
            if not self._pass() and self._stop.wait(0.05):
                return

    def _pass(self) -> bool:
        """One round over the data files; True when something was read."""
        progressed = False
        for name in list_files(self.fd):
            if self._stop.is_set():
                break
            match = DATA_FILE.match(name)
            if match is None:
                continue
            followed = self.files.setdefault(name, Followed(name, count=True))
            if followed.done:
                continue
            with self._lock:
                complete = match.group(1) in self._finished
            try:
                fd = open_file(self.fd, name)
            except OSError:
                continue
            try:
                progressed |= followed.read(fd, complete=complete) > 0
                followed.write_back(fd)
            finally:
                os.close(fd)
        return progressed

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def finish(self) -> dict[str, tuple[int, str]]:
        """Every file's (size, sha256), the rest read now on every core (pg_dump has exited). A file changed after
        the follower read it (cut short, extended, rewritten: :meth:`Hashed.unchanged`) is read again whole."""
        self.stop()
        left = []
        present = list_files(self.fd)
        for name in present:
            followed = self.files.get(name)
            if followed is not None and followed.done:
                fd = open_file(self.fd, name)
                try:
                    if followed.unchanged(fd):
                        continue
                finally:
                    os.close(fd)
            if followed is None or followed.done:
                followed = self.files[name] = Followed(name, count=True)
            left.append(followed)

        def complete(followed: Followed) -> None:
            fd = open_file(self.fd, followed.name)
            try:
                followed.read(fd, complete=True)
            finally:
                os.close(fd)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="migrate-tui-hash") as pool:
            list(pool.map(complete, left))
        for name in set(self.files) - set(present):  # removed since it was read: not in the backup
            del self.files[name]
        return {name: (f.size, f.digest.hexdigest()) for name, f in self.files.items()}

    def rows(self) -> dict[str, int | None]:
        """Rows per data file's dump id (None: not countable here — compressed with lz4/zstd — or incomplete)."""
        return {f.dump_id: f.rows for f in self.files.values() if f.dump_id is not None}

    def close(self) -> None:
        self.stop()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
