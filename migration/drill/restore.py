"""Restoring exactly the verified backup into the drill's database, with progress.

- A plain dump: its sha256 and size are checked against the manifest first (:mod:`.check`), then the
  same bytes are read again and streamed to ``psql -f -`` on its stdin (``--single-transaction``,
  ``ON_ERROR_STOP``), hashed on the way: a file changed between the check and the restore fails the drill.
- A custom archive: checked the same way, then ``pg_restore --jobs N`` reads ``/dev/fd/N``, the
  descriptor of the file that was checked.
- A directory archive: the directory must hold exactly the manifest's files, each with its sha256,
  then ``pg_restore --jobs N`` reads ``/dev/fd/N``, the checked directory.

The password reaches every child through a passfile of its own (:func:`migration.children.child_env`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time
from typing import Callable

from ..backup.dumptext import DumpReader, split_identifiers
from ..backup.hashing import READ_CHUNK
from ..backup.manifest import LoadedBackup
from ..children import child_env
from ..errors import MigrateError, OperatorError
from ..operation import Cancelled
from ..pgtools import Locator, PgTool, public_conninfo
from ..redact import redact
from ..settings import Settings
from .check import changed, open_checked

APPLICATION_NAME = "migrate-tui drill"
_CHUNK = READ_CHUNK
_STARTED = re.compile(r'processing data for table "(.+)"')
_FINISHED = re.compile(r"finished item \d+ TABLE DATA (.+)$")


def find_tool(name: str, at_least: int, bin_dir=None) -> PgTool:
    """psql or pg_restore at least this new: the throwaway server's own first, else the newest found."""
    if bin_dir is not None and (bin_dir / name).is_file():
        from ..pgtools import tool_version

        version = tool_version(bin_dir / name)
        if version is not None and version[1] >= at_least:
            return PgTool(name, bin_dir / name, version[0], version[1], "drill server")
    search = Locator().find(name, at_least)
    if search.chosen is None or search.problem is not None:
        raise MigrateError(OperatorError(f"No {name} of version {at_least} or later to restore the backup.",
                                         f"Install the PostgreSQL {at_least} client tools (e.g. apt install "
                                         f"postgresql-client-{at_least})."))
    return search.chosen


class Restorer:
    """Runs psql or pg_restore into the drill's database; ``progress(tables_done, running, rows, bytes)``
    is called as it goes. :meth:`cancel` (any thread) stops the child."""

    def __init__(self, backup: LoadedBackup, settings: Settings, *, jobs: int, bin_dir, server_major: int,
                 progress: Callable[[int, tuple[str, ...], int, int], None], check_cancel: Callable[[], None],
                 copy_rows: Callable[[], dict[str, int]] | None = None) -> None:
        self.backup = backup
        self.settings = settings  # the drill database, as the throwaway server's superuser
        self.jobs = max(1, jobs)
        self.bin_dir = bin_dir
        self.server_major = server_major
        self.progress = progress
        self.check_cancel = check_cancel
        self.copy_rows = copy_rows  # rows copied so far by running COPYs, per table (read on the copy)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self.stderr: list[str] = []
        self.tool: PgTool | None = None

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()

    def _spawn(self, argv: list[str], child, **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._cancelled:
                raise Cancelled()
            self._proc = subprocess.Popen(argv, env=child.env, stderr=subprocess.PIPE, start_new_session=True,
                                          **kwargs)
            return self._proc

    def run(self, fd: int | None = None) -> None:
        """Restore; ``fd``: the backup already opened and checked (:func:`open_checked`), closed here."""
        fd = open_checked(self.backup, self.jobs) if fd is None else fd
        if self.backup.format == "plain":
            self._plain(fd)
        else:
            self._archive(fd)

    # -- plain: psql reads the verified bytes on its stdin ---------------------------------------------
    def _plain(self, fd: int) -> None:
        try:
            dumped_by = int(str(self.backup.manifest.get("pg_dump_version", "0")).split(".")[0] or 0)
            self.tool = find_tool("psql", max(dumped_by, 1), self.bin_dir)
            argv = [str(self.tool.path), "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                    "-f", "-", "-d", public_conninfo(self.settings, APPLICATION_NAME)]
            with child_env(self.settings) as child:
                proc = self._spawn(argv, child, pass_fds=child.pass_fds, stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL)
                drain = threading.Thread(target=self._drain, args=(proc, None), daemon=True)
                drain.start()
                digest, reader = hashlib.sha256(), DumpReader()
                buffer = bytearray(_CHUNK)
                view = memoryview(buffer)
                offset, last = 0, 0.0
                try:
                    while n := os.preadv(fd, [buffer], offset):
                        digest.update(view[:n])
                        reader.feed(buffer, n)
                        proc.stdin.write(view[:n])
                        offset += n
                        now = time.monotonic()
                        if now - last >= 0.25:
                            last = now
                            self.check_cancel()
                            running = (reader.in_copy,) if reader.in_copy else ()
                            self.progress(len(reader.contents.rows) - len(running), running, reader.rows_so_far, offset)
                    proc.stdin.close()
                except (BrokenPipeError, ValueError):  # psql stopped (an error, or a cancel): its exit says which
                    pass
                proc.wait()
                drain.join()
            self.check_cancel()
            if proc.returncode != 0:
                raise MigrateError(explain_restore_failure("psql", self.stderr, proc.returncode, self.settings))
            if digest.hexdigest() != self.backup.manifest.get("sha256"):
                raise changed(self.backup.name)
            self.progress(len(reader.contents.rows), (), reader.rows_so_far, offset)
        finally:
            os.close(fd)

    # -- custom / directory: pg_restore --jobs N reads the checked file or directory -------------------
    def _archive(self, fd: int) -> None:
        try:
            self.check_cancel()
            archive_major = int(str(self.backup.manifest.get("pg_dump_version", "0")).split(".")[0] or 0)
            self.tool = find_tool("pg_restore", max(archive_major, 1), self.bin_dir)
            argv = [str(self.tool.path), "--verbose", "--no-password", "--exit-on-error",
                    f"--dbname={public_conninfo(self.settings, APPLICATION_NAME)}", f"/dev/fd/{fd}"]
            if self.jobs > 1:
                argv.insert(1, f"--jobs={self.jobs}")
            tables = _plain_names(self.backup.manifest.get("rows", {}))
            state = _TableState(self.jobs > 1)
            with child_env(self.settings) as child:
                proc = self._spawn(argv, child, pass_fds=child.pass_fds + (fd,), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL)
                drain = threading.Thread(target=self._drain, args=(proc, state), daemon=True)
                drain.start()
                while proc.poll() is None:
                    try:
                        proc.wait(0.25)
                    except subprocess.TimeoutExpired:
                        pass
                    self.check_cancel()
                    done, running = state.snapshot()
                    copying = self.copy_rows() if self.copy_rows else {}
                    rows = sum(tables.get(t, 0) for t in done) + sum(copying.get(t, 0) for t in running)
                    self.progress(len(done), tuple(running), rows, 0)
                drain.join()
            self.check_cancel()
            if proc.returncode != 0:
                raise MigrateError(explain_restore_failure("pg_restore", self.stderr, proc.returncode, self.settings))
            self.progress(len(tables), (), sum(tables.values()), 0)
        finally:
            os.close(fd)

    def _drain(self, proc: subprocess.Popen, state: "_TableState | None") -> None:
        for raw in proc.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if state is not None:
                if (match := _STARTED.search(line)) is not None:
                    state.started(match.group(1))
                    continue
                if (match := _FINISHED.search(line)) is not None:
                    state.finished(match.group(1))
                    continue
                if line.startswith("pg_restore: ") and not any(k in line.lower() for k in ("error", "detail", "hint",
                                                                                         "warning", "could")):
                    continue  # verbose chatter
            self.stderr.append(line)
        proc.stderr.close()


class _TableState:
    """Tables being restored and done, from pg_restore --verbose (one job: a table is done when the next starts)."""

    def __init__(self, parallel: bool) -> None:
        self.parallel = parallel
        self.done: list[str] = []
        self.running: list[str] = []
        self._lock = threading.Lock()

    def started(self, name: str) -> None:
        with self._lock:
            if not self.parallel and self.running:
                self.done.extend(self.running)
                self.running.clear()
            self.running.append(name)

    def finished(self, tag: str) -> None:
        with self._lock:
            for name in self.running:
                if name == tag or name.endswith("." + tag):
                    self.running.remove(name)
                    self.done.append(name)
                    return

    def snapshot(self) -> tuple[list[str], list[str]]:
        with self._lock:
            return list(self.done), list(self.running)


def _plain_names(rows: dict[str, int]) -> dict[str, int]:
    """Manifest keys (quoted as needed) as pg_restore --verbose prints them: schema.table, unquoted."""
    return {".".join(split_identifiers(name)): count for name, count in rows.items()}


_EXTENSION = re.compile(r'extension "([^"]+)" is not available|could not open extension control file ".*/([^/"]+)'
                        r'\.control"|extension "([^"]+)" has no installation script')
_ROLE = re.compile(r'role "([^"]+)" does not exist')
_LIBRARY = re.compile(r'could not (?:access|load) (?:file|library) "([^"]+)"')


def explain_restore_failure(tool: str, stderr: list[str], returncode: int, settings: Settings) -> OperatorError:
    """Why the backup did not restore, in words an operator can act on."""
    lines = [redact(line.strip(), settings.secrets()) for line in stderr if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "error:" in line or "FATAL" in line] or lines
    text = "\n".join(lines)
    detail = "; ".join(errors[-3:]) or None
    if (match := _EXTENSION.search(text)) is not None:
        name = next(g for g in match.groups() if g)
        return OperatorError(
            f"The backup does not restore here: it needs the extension {name}, which this PostgreSQL lacks.",
            f"Install {name} for this PostgreSQL version, or drill on a scratch server that has it: --drill-url URL.",
            detail=detail)
    if (match := _LIBRARY.search(text)) is not None:
        return OperatorError(
            f"The backup does not restore here: the library {match.group(1)} is missing.",
            "Install the extension's package for this PostgreSQL version, or drill on a scratch server: "
            "--drill-url URL.", detail=detail)
    if (match := _ROLE.search(text)) is not None:
        return OperatorError(
            f"The backup does not restore: it needs the role {match.group(1)}, which roles in a database dump never "
            "include.", f"Create it before restoring (CREATE ROLE \"{match.group(1)}\" NOLOGIN;), or restore with "
            "pg_restore --no-owner --no-privileges.", detail=detail)
    if returncode < 0:
        return OperatorError(f"{tool} was stopped by signal {-returncode}.", "Run the drill again.", detail=detail)
    return OperatorError(f"The backup does not restore: {errors[-1] if errors else f'{tool} exit code {returncode}'}",
                         "Read the detail: the same error would stop a real restore. Fix its cause (often an object "
                         "that depends on something outside the database), take a new backup and drill it again.",
                         detail=detail)
