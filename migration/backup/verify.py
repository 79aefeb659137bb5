"""Is a dump complete? The plain format's end-of-dump marker, or pg_restore reading a custom or directory
archive whole (:class:`ArchiveReader`, which also counts its rows); and its sha256. Every function reads
through a descriptor (the file or directory the backup wrote)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
from typing import TYPE_CHECKING, Callable

from ..children import child_environ
from .hashing import READ_CHUNK

if TYPE_CHECKING:
    from ..pgtools import PgTool
    from .dumptext import DumpContents

PLAIN_HEADER = b"-- PostgreSQL database dump"
PLAIN_TRAILER = b"-- PostgreSQL database dump complete"
CUSTOM_MAGIC = b"PGDMP"
_TAIL = 64 * 1024
_CHUNK = READ_CHUNK


def sha256_fd(fd: int) -> str:
    """The sha256 of a whole file, read with pread (the descriptor's offset is left alone)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


_RESTRICT = re.compile(rb"^\\restrict (\S+)$", re.M)
_AFTER_TRAILER = re.compile(rb"(?:--[^\n]*\n|\n)*")  # the trailer's closing comment line, blank lines


def verify_plain(fd: int) -> str | None:
    """None when the plain dump is complete; else what is wrong.

    The end-of-dump marker must be followed only by comment and blank lines, and — when the dump
    starts with ``\\restrict KEY`` (pg_dump 18.0, 17.6, 16.10, 15.14, 14.19, 13.22 and later) — by
    ``\\unrestrict KEY`` with the same key: a dump cut inside its last line, or with anything after
    it, is not complete."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, 4096, 0)
    tail = os.pread(fd, _TAIL, max(0, size - _TAIL))
    if PLAIN_HEADER not in head[:256]:
        return "it does not start like a pg_dump plain-format dump"
    at = tail.rfind(PLAIN_TRAILER)
    if at < 0:
        return "the end-of-dump marker '-- PostgreSQL database dump complete' is missing (the dump is truncated)"
    after = tail[at + len(PLAIN_TRAILER):]
    after = after[after.find(b"\n") + 1:] if b"\n" in after else b""
    after = after[_AFTER_TRAILER.match(after).end():]
    restrict = _RESTRICT.search(head)
    if restrict is not None:
        closing = b"\\unrestrict " + restrict.group(1)
        if not after.startswith(closing + b"\n"):
            return ("the dump does not end with its closing \\unrestrict line after the end-of-dump marker "
                    "(the dump is truncated or was changed)")
        after = after[len(closing) + 1:]
    if after.strip(b"\n"):
        return "there is more after the end-of-dump marker than pg_dump writes (the dump was changed)"
    return None


def missing_data(dumped: list[str], rows: dict[str, int]) -> str | None:
    """None when the dump read back holds data for every table pg_dump said it dumped (``dumping contents of
    table "schema.name"``, in ``dumped``); else what is missing. ``rows``: the tables read back, quoted names.

    An archive whose table of contents was damaged can read back cleanly with fewer entries (or none)."""
    if len(rows) >= len(dumped):
        return None
    from .dumptext import split_identifiers

    read_back = {".".join(split_identifiers(name)) for name in rows}
    missing = [name for name in dumped if name not in read_back]
    named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return (f"it holds the data of {len(rows)} of the {len(dumped)} tables pg_dump dumped"
            + (f" (missing: {named})" if missing else ""))


def verify_custom(fd: int, pg_restore: PgTool,
                  start: Callable[..., subprocess.Popen] = subprocess.Popen) -> str | None:
    """None when ``pg_restore -f /dev/null`` reads the whole archive (given as its stdin); else its error.

    ``start`` starts the child (an operation's ``start_child``, so that cancelling stops it)."""
    if os.pread(fd, len(CUSTOM_MAGIC), 0) != CUSTOM_MAGIC:
        return "it is not a pg_dump custom-format archive"
    os.lseek(fd, 0, os.SEEK_SET)
    proc = start([str(pg_restore.path), "--file=/dev/null"], stdin=fd, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True, errors="replace", env=child_environ())
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        return "pg_restore could not read it: " + (lines[-1] if lines else f"exit code {proc.returncode}")
    return None


# --- archives read back through pg_restore: every data file, and what it holds ----------------------

_DATA_ENTRY = re.compile(r"^(\d+); \d+ (\d+) (TABLE DATA|BLOBS|LARGE OBJECTS|BLOB) ")
_DATA_FILE = re.compile(r"^(\d+)\.dat(?:\.\w+)?$")
_READ = READ_CHUNK


class ArchiveReader:
    """``pg_restore -f -`` reads a custom or directory archive whole and prints it as SQL to a
    :class:`~.dumptext.DumpReader`: a readable archive and its rows per table, counted on our side.

    With ``jobs`` > 1 (directory format), the archive's data entries are split by file size among
    that many pg_restore processes (``-L`` lists given as memory files), which read their files side
    by side; every file is still read by one of them. With ``count_data=False`` (the rows were
    already counted from the files themselves while pg_dump wrote them: :mod:`.directory`) the data
    goes to ``/dev/null`` and only the rest of the archive (definitions, sequence values, grants) is
    read as SQL. :attr:`data_entries` maps each data entry's dump id to its table's OID.
    :meth:`cancel` stops them from any thread; ``start`` starts them (an operation's ``start_child``,
    which terminates them when it is cancelled and reaps them before it reports).
    """

    def __init__(self, pg_restore: "PgTool", archive: str, *, pass_fds: tuple[int, ...] = (), stdin: int | None = None,
                 jobs: int = 1, sizes: dict[str, int] | None = None, count_data: bool = True,
                 start: Callable[..., subprocess.Popen] = subprocess.Popen) -> None:
        self.pg_restore = pg_restore
        self.archive = archive  # a path for pg_restore ("/dev/fd/N"), or "" to read stdin
        self.pass_fds = pass_fds
        self.stdin = stdin
        self.jobs = max(1, jobs)
        self.sizes = sizes or {}
        self.count_data = count_data
        self.start = start
        self.data_entries: dict[str, int] = {}  # dump id -> the table's OID (TABLE DATA entries)
        self._procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            for proc in self._procs:
                if proc.poll() is None:
                    proc.terminate()

    def read(self) -> tuple[str | None, "DumpContents"]:
        """(None or what is wrong, what the archive holds)."""
        from .dumptext import DumpContents

        lists: list[tuple[bytes | None, bool]] = [(None, True)]
        if (self.jobs > 1 or not self.count_data) and hasattr(os, "memfd_create"):
            problem, toc = self._toc()
            if problem is not None:
                return problem, DumpContents()
            lists = self._split(toc)
        results: list = [None] * len(lists)
        threads = [threading.Thread(target=lambda i=i, job=job: results.__setitem__(i, self._guarded(*job)),
                                    name=f"migrate-tui-verify-{i}", daemon=True) for i, job in enumerate(lists)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        contents = DumpContents()
        problem = None
        for result in results:
            error, part = result if result is not None else ("the verification stopped", DumpContents())
            problem = problem or error
            contents.merge(part)
        if problem is None and contents.open_block:
            problem = f"the data of {contents.open_block} ends before its end mark"
        return problem, contents

    def _argv(self, *extra: str) -> list[str]:
        return [str(self.pg_restore.path), *extra, *([self.archive] if self.archive else [])]

    def _toc(self) -> tuple[str | None, list[str]]:
        with self._lock:
            if self._cancelled:
                return "cancelled", []
            proc = self.start(self._argv("--list"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              errors="replace", pass_fds=self.pass_fds, env=child_environ(),
                              stdin=subprocess.DEVNULL)
            self._procs.append(proc)
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            return _failure(stderr, proc.returncode), []
        return None, [line for line in stdout.splitlines() if line.strip() and not line.startswith(";")]

    def _split(self, toc: list[str]) -> list[tuple[bytes, bool]]:
        """-L lists: (the list, whether its output is read as SQL). The data entries are spread by size."""
        by_id = {}
        for name, size in self.sizes.items():
            match = _DATA_FILE.match(name)
            if match:
                by_id[match.group(1)] = size
        blobs = sum(size for name, size in self.sizes.items() if name.startswith("blob"))
        rest: list[str] = []
        groups: list[list[str]] = [[] for _ in range(self.jobs)]
        weights = [0] * self.jobs
        data = []
        for line in toc:
            match = _DATA_ENTRY.match(line)
            if match is None:
                rest.append(line)
            else:
                if match.group(3) == "TABLE DATA":
                    self.data_entries[match.group(1)] = int(match.group(2))
                weight = blobs if match.group(3) != "TABLE DATA" else by_id.get(match.group(1), 0)
                data.append((weight, line))
        for weight, line in sorted(data, key=lambda item: -item[0]):
            lightest = weights.index(min(weights))
            groups[lightest].append(line)
            weights[lightest] += weight
        if self.count_data:
            groups[0][:0] = rest
            return [(("\n".join(group) + "\n").encode(), True) for group in groups if group]
        return [(("\n".join(rest) + "\n").encode(), True)] + \
            [(("\n".join(group) + "\n").encode(), False) for group in groups if group]

    def _guarded(self, listing: bytes | None, as_sql: bool = True):
        """:meth:`_run`, whose failure to start (the operation cancelled meanwhile) is this part's result."""
        from .dumptext import DumpContents

        try:
            return self._run(listing, as_sql)
        except Exception as exc:  # noqa: BLE001 - reported as this part's problem, never a dead thread
            return ("cancelled" if type(exc).__name__ == "Cancelled" else f"pg_restore could not start: {exc}",
                    DumpContents())

    def _run(self, listing: bytes | None, as_sql: bool = True):
        from .dumptext import DumpContents, DumpReader

        list_fd = -1
        pass_fds = self.pass_fds
        extra: list[str] = []
        if listing is not None:
            list_fd = os.memfd_create("migrate-tui-toc", os.MFD_CLOEXEC)
            os.write(list_fd, listing)
            pass_fds += (list_fd,)
            extra.append(f"--use-list=/dev/fd/{list_fd}")
        try:
            with self._lock:
                if self._cancelled:
                    return "cancelled", DumpContents()
                proc = self.start(self._argv(*extra, "--file=-" if as_sql else "--file=/dev/null"),
                                        stdin=self.stdin if self.stdin is not None else subprocess.DEVNULL,
                                        stdout=subprocess.PIPE if as_sql else subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, pass_fds=pass_fds, env=child_environ())
                self._procs.append(proc)
            errors: list[bytes] = []
            drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
            drain.start()
            reader = DumpReader()
            if as_sql:
                buffer = bytearray(_READ)
                out = proc.stdout.fileno()
                while n := os.readv(out, [buffer]):
                    reader.feed(buffer, n)
            proc.wait()
            drain.join()
            if proc.stdout is not None:
                proc.stdout.close()
            proc.stderr.close()
            contents = reader.finish()
            if proc.returncode != 0:
                return _failure(b"".join(errors).decode("utf-8", "replace"), proc.returncode), contents
            return None, contents
        finally:
            if list_fd >= 0:
                os.close(list_fd)


def _failure(stderr: str, returncode: int) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "pg_restore could not read it: " + (lines[-1] if lines else f"exit code {returncode}")
