"""A verified full backup with pg_dump, as a stream of typed events.

``Backup(settings, emit).run()`` blocks (run it in a thread or a Textual worker);
``cancel()`` may be called from any thread: it stops pg_dump and deletes the
partial file. The dump is written to a hidden temporary name (mode 0600),
fsynced, verified, then renamed to ``backup_before_migration_YYYYMMDD_HHMMSS.sql``
(plain, the guide's name) or ``.dump`` (custom format), with a ``.sha256`` file
and a JSON manifest beside it. A dump that fails verification is deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .errors import MigrateError, OperatorError, explain
from .children import child_env, child_environ
from .pgtools import Locator, PgTool, ToolSearch, explain_tool_failure, public_conninfo
from .safe_files import CheckedDir, PendingFile, open_dir, remove_stale_partials, reserve
from .settings import DEFAULT_BACKUP_DIR, Settings, redact

FORMATS = {"plain": ".sql", "custom": ".dump"}
PREFIX = "backup_before_migration_"
PLAIN_HEADER = b"-- PostgreSQL database dump"
PLAIN_TRAILER = b"-- PostgreSQL database dump complete"
CUSTOM_MAGIC = b"PGDMP"
_TAIL = 64 * 1024
_CHUNK = 1 << 20
_HASH_CHUNK = 4 << 20  # the follower's reads: large, into one reused buffer
_HASH_NICE = 10  # without SCHED_IDLE, the follower thread runs at nice +10 (Linux: per thread)
_WRITEBACK_STEP = 32 << 20  # the follower starts writing back (and then drops) what it hashed, in steps
_TABLE_LINE = re.compile(r'dumping contents of table "(.+)"')

# Tables whose data pg_dump writes: ordinary tables outside system schemas and not owned by extensions.
_TABLES = """
SELECT n.nspname || '.' || c.relname, {size}, greatest(c.reltuples, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1
"""
_EXACT_SIZE = "pg_table_size(c.oid)"
_ESTIMATED_SIZE = "c.relpages::bigint * current_setting('block_size')::bigint"


# --- events -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackupStarted:
    path: str  # the final file name the backup will get
    format: str
    tables_total: int
    database: str
    database_bytes: int
    server_version: str
    tool: PgTool
    directory: str = ""  # the backup directory, resolved when it is a link ("backups -> /mnt/x/backups")
    removed: tuple[str, ...] = ()  # temporary files of killed runs, deleted from the directory before starting


@dataclass(frozen=True)
class BackupProgress:
    tables_done: int
    tables_total: int
    current_table: str | None
    bytes_written: int
    fraction: float  # 0..1, weighted by relation size
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class BackupVerifying:
    path: str
    method: str


@dataclass(frozen=True)
class BackupFinished:
    outcome: str  # "ok", "failed" or "cancelled"
    message: str
    path: str | None = None
    size: int = 0
    sha256: str | None = None
    manifest: str | None = None
    elapsed_s: float = 0.0
    dump_s: float = 0.0
    verify_s: float = 0.0
    error: OperatorError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


BackupEvent = BackupStarted | BackupProgress | BackupVerifying | BackupFinished


@dataclass(frozen=True)
class TableSize:
    name: str  # "schema.table", as pg_dump --verbose prints it
    bytes: int
    tuples: int


class Cancelled(Exception):
    pass


def human_bytes(n: float) -> str:
    """1536 -> '1.5 kB' (binary multiples, short units)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


# --- verification -------------------------------------------------------------------------------

def sha256_fd(fd: int) -> str:
    """The sha256 of a whole file, read with pread (the descriptor's offset is left alone)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def verify_plain(fd: int) -> str | None:
    """None when the plain dump is complete; else what is wrong. The trailer need not be last."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, 256, 0)
    tail = os.pread(fd, _TAIL, max(0, size - _TAIL))
    if PLAIN_HEADER not in head:
        return "it does not start like a pg_dump plain-format dump"
    if PLAIN_TRAILER not in tail:
        return "the end-of-dump marker '-- PostgreSQL database dump complete' is missing (the dump is truncated)"
    return None


def verify_custom(fd: int, pg_restore: PgTool) -> str | None:
    """None when ``pg_restore -f /dev/null`` reads the whole archive (given as its stdin); else its error."""
    if os.pread(fd, len(CUSTOM_MAGIC), 0) != CUSTOM_MAGIC:
        return "it is not a pg_dump custom-format archive"
    os.lseek(fd, 0, os.SEEK_SET)
    proc = subprocess.run([str(pg_restore.path), "--file=/dev/null"], capture_output=True, text=True,
                          stdin=fd, errors="replace", env=child_environ())
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return "pg_restore could not read it: " + (lines[-1] if lines else f"exit code {proc.returncode}")
    return None


class _Follower(threading.Thread):
    """Hashes a file while pg_dump appends to it (plain format only: it never seeks back).

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
        self._handoff = threading.Event()

    def run(self) -> None:
        _lower_thread_priority()
        buffer = bytearray(_HASH_CHUNK)
        view = memoryview(buffer)
        writeback = _Writeback()
        while not self._handoff.is_set():
            n = os.preadv(self.fd, [buffer], self.count)
            if n:
                self.digest.update(view[:n])
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


def _lower_thread_priority() -> None:
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


# --- the backup -----------------------------------------------------------------------------------

class Backup:
    def __init__(self, settings: Settings, emit: Callable[[BackupEvent], None] | None = None, *,
                 backup_dir: Path | str = DEFAULT_BACKUP_DIR, fmt: str = "plain", locator: Locator | None = None,
                 tool: PgTool | None = None, lock_wait_timeout_ms: int = 60_000,
                 progress_interval_s: float = 0.25, trust_dir: bool = False) -> None:
        """``trust_dir``: the operator accepts a backup directory that is a system directory or not theirs."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown backup format {fmt!r}")
        self.settings = settings
        self.backup_dir = Path(backup_dir)
        self.fmt = fmt
        self.locator = locator or Locator()
        self.tool = tool
        self.lock_wait_timeout_ms = lock_wait_timeout_ms
        self.progress_interval_s = progress_interval_s
        self.trust_dir = trust_dir
        self._emit = emit or (lambda event: None)
        self._cancel = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._follower: _Follower | None = None
        self._lock = threading.Lock()
        self._conn = None  # the backup's own connection: server facts, sizes, COPY progress
        self._app_name = f"migrate-tui-backup-{os.getpid()}-{id(self) & 0xffff:x}"

    @property
    def child_pid(self) -> int | None:
        """PID of the running pg_dump, if any."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def application_name(self) -> str:
        return self._app_name

    def cancel(self) -> None:
        """Thread-safe: stop pg_dump; run() deletes the partial file and reports the cancel."""
        self._cancel.set()
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.terminate()

    def run(self) -> BackupFinished:
        t0 = time.monotonic()
        pending: PendingFile | None = None
        directory: CheckedDir | None = None
        self._conn = None
        try:
            self._check_cancel()
            # pg_dump starts first unless the server's version must pick it: the database driver then
            # loads and connects (for the server facts, the sizes and the progress) while pg_dump runs.
            search, tool, facts = None, self.tool, None
            if tool is None:
                search = self.locator.find("pg_dump")
                if search.override is not None or len(search.found) == 1:
                    tool = search.chosen  # the only candidate: its version is checked once connected
            if tool is None:
                facts = self._inspect()
                tool = self._choose_tool(facts.major, search)
            self._check_cancel()
            directory = open_dir(self.backup_dir, create=True, own=True, trust=self.trust_dir)
            removed = tuple(remove_stale_partials(directory))
            pending = reserve(directory, self._names())
            started_at = datetime.now(timezone.utc)
            follower, stderr, tables, facts = self._dump(tool, pending, facts, t0, directory, removed)
            dump_s = time.monotonic() - t0
            os.fsync(pending.fd)
            t_verify = time.monotonic()
            digest = self._verify(pending, follower, tool)
            verify_s = time.monotonic() - t_verify
            size = pending.size()
            final = pending.publish()
            manifest = self._write_sidecars(directory, pending.final, digest, size, facts, tool, tables, stderr,
                                            started_at, dump_s, verify_s)
            result = BackupFinished("ok", "Backup written and verified", str(final), size, digest, str(manifest),
                                    time.monotonic() - t0, dump_s, verify_s)
        except (Cancelled, KeyboardInterrupt):
            deleted = self._discard(pending)
            result = BackupFinished("cancelled", "Backup cancelled" + ("; the partial file was deleted" if deleted
                                                                        else "; no file was written"),
                                    elapsed_s=time.monotonic() - t0,
                                    error=OperatorError("The backup was cancelled by the operator.",
                                                        "Nothing was written. Run the backup again when ready."))
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an event
            deleted = self._discard(pending)
            if self._cancel.is_set():
                result = BackupFinished("cancelled", "Backup cancelled; the partial file was deleted",
                                        elapsed_s=time.monotonic() - t0)
            else:
                error = explain(exc, user=_user(self.settings), schema=self.settings.schema,
                                secrets=self.settings.secrets())
                note = " The partial file was deleted." if deleted else ""
                result = BackupFinished("failed", f"Backup failed: {error.message}{note}", error=error,
                                        elapsed_s=time.monotonic() - t0)
        finally:
            _close(self._conn)
            self._conn = None
            self._proc = None
            self._stop_follower()
            if pending is not None:
                pending.discard()  # a no-op once published
            if directory is not None:
                directory.close()
        self._emit(result)
        return result

    def _stop_follower(self) -> None:
        """Every thread the backup started ends before it reports (and before its file is deleted)."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.close()

    def _discard(self, pending: "PendingFile | None") -> bool:
        self._stop_follower()
        return pending.discard() if pending is not None else False

    # -- steps -------------------------------------------------------------------------------
    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled

    @staticmethod
    def _sizes(conn) -> tuple[int, list[TableSize]]:
        """The database size and the tables pg_dump will dump, with their sizes (to weight progress)."""
        from psycopg.errors import LockNotAvailable

        database_bytes = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
        # pg_table_size() takes a lock: give up quickly (a locked table) and use the planner's estimate.
        conn.begin()
        try:
            conn.execute("SET LOCAL lock_timeout = 1000")
            rows = conn.execute(_TABLES.format(size=_EXACT_SIZE)).fetchall()
        except LockNotAvailable:
            rows = None
        finally:
            conn.execute("ROLLBACK")
        if rows is None:
            rows = conn.execute(_TABLES.format(size=_ESTIMATED_SIZE)).fetchall()
        return database_bytes, [TableSize(n, int(b or 0), int(t or 0)) for n, b, t in rows]

    def _inspect(self):
        """Connect (the driver loads here) and read the server's facts."""
        from .db import connect, server_facts

        self._conn = connect(self.settings, application_name="migrate-tui-backup-inspect")
        return server_facts(self._conn)

    def _choose_tool(self, server_major: int, search: ToolSearch | None = None) -> PgTool:
        search = self.locator.find("pg_dump", server_major) if search is None \
            else self.locator.decide(search, server_major)
        if search.chosen is None or search.problem is not None:
            raise MigrateError(search.problem or OperatorError("No usable pg_dump found.",
                                                               "Install the PostgreSQL client tools."))
        return search.chosen

    def _names(self):
        """backup_before_migration_YYYYMMDD_HHMMSS.sql, then _1, _2, ... within the same second."""
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        ext = FORMATS[self.fmt]
        return (f"{PREFIX}{stamp}{'' if n == 0 else f'_{n}'}{ext}" for n in range(100))

    def _argv(self, tool: PgTool, pending: PendingFile) -> list[str]:
        """A plain dump goes to pg_dump's stdout: the temporary file reserved (created, empty, locked).

        A custom-format archive is named with --file: pg_dump seeks back in it to write the data
        offsets into its table of contents, and fsyncs it itself. It gets ``/dev/fd/N``, the
        descriptor of that same file: no name in the directory is ever looked up again.
        """
        argv = [str(tool.path), "--verbose", "--no-password", f"--format={self.fmt}",
                f"--lock-wait-timeout={self.lock_wait_timeout_ms}",
                f"--dbname={public_conninfo(self.settings, self._app_name)}"]
        if self.fmt != "plain":
            argv.insert(4, f"--file=/dev/fd/{pending.fd}")
        return argv

    def _dump(self, tool: PgTool, pending: PendingFile, facts, t0: float, directory: CheckedDir,
              removed: tuple[str, ...]):
        progress = _Progress()
        lines: list[str] = []
        eof = threading.Event()
        with child_env(self.settings) as child:
            with self._lock:
                self._check_cancel()
                # A plain dump: the file reserved (created, empty) becomes pg_dump's stdout, without
                # O_TRUNC. With --file, pg_dump would truncate it, and ext4 flushes a truncated-and-rewritten
                # file when it is closed (auto_da_alloc): pg_dump would wait for the whole write-back at its
                # end instead of the follower starting it early.
                plain = self.fmt == "plain"
                self._proc = subprocess.Popen(
                    self._argv(tool, pending), env=child.env, stdin=subprocess.DEVNULL,
                    stdout=pending.fd if plain else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                    errors="replace", start_new_session=True,
                    pass_fds=child.pass_fds + (() if plain else (pending.fd,)))
            proc = self._proc
            follower = self._follower = _Follower(pending.reader()) if self.fmt == "plain" else None
            if follower:
                follower.start()
            reader = threading.Thread(target=self._read_stderr, args=(proc, lines, progress, eof), daemon=True,
                                      name="migrate-tui-backup-stderr")
            reader.start()
            monitor = None
            try:
                if facts is None:  # pg_dump is running: now the driver loads and connects
                    facts = self._inspect()
                    if self.tool is None:  # found, not given: too old for this server means refused here
                        self._choose_tool(facts.major, ToolSearch("pg_dump", tool, (tool,), str(tool.path)))
                monitor = _CopyMonitor(self._conn if facts.major >= 14 else None, self._app_name)
                database_bytes, tables = self._sizes(self._conn)
                progress.set_tables(tables)
                self._emit(BackupStarted(str(pending.path), self.fmt, len(tables), facts.database, database_bytes,
                                         facts.version, tool, directory.shown, removed))
                # pg_dump closes its stderr when it exits: wake up then, not at the next poll.
                while not eof.wait(self.progress_interval_s) and proc.poll() is None:
                    written = follower.count if follower else pending.size()
                    self._emit(progress.event(written, time.monotonic() - t0, monitor.tuples()))
            except BaseException:
                proc.terminate()
                raise
            finally:
                if monitor is not None:
                    monitor.close()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                reader.join(5)
        stderr = "\n".join(lines)
        self._check_cancel()
        if proc.returncode != 0:
            raise MigrateError(explain_tool_failure("pg_dump", stderr, proc.returncode, settings=self.settings,
                                                    tool=tool, server_major=facts.major if facts else None,
                                                    backup_dir=self.backup_dir))
        # The file is complete now: report its real size (the hashing follower may still be catching up).
        self._emit(progress.event(pending.size(), time.monotonic() - t0, None, finished=True))
        return follower, stderr, tables, facts

    @staticmethod
    def _read_stderr(proc: subprocess.Popen, lines: list[str], progress: "_Progress", eof: threading.Event) -> None:
        assert proc.stderr is not None
        try:
            for line in proc.stderr:
                line = line.rstrip("\n")
                match = _TABLE_LINE.search(line)
                if match:
                    progress.table_started(match.group(1))
                elif line.startswith("pg_dump: ") and not any(k in line for k in ("error", "detail", "hint",
                                                                                   "could")):
                    continue  # verbose chatter
                lines.append(line)
        finally:
            eof.set()

    def _verify(self, pending: PendingFile, follower: _Follower | None, tool: PgTool) -> str:
        reader = pending.reader()
        try:
            if self.fmt == "plain":
                self._emit(BackupVerifying(str(pending.temporary_path), "end-of-dump marker"))
                digest = follower.finish() if follower else None
                if digest is None or follower.count != pending.size():
                    digest = sha256_fd(reader)
                problem = verify_plain(reader)
            else:
                self._emit(BackupVerifying(str(pending.temporary_path), "pg_restore reads the whole archive"))
                pg_restore = self._pg_restore(tool)
                box: dict[str, str] = {}
                hasher = threading.Thread(target=lambda: box.setdefault("d", sha256_fd(reader)), daemon=True,
                                          name="migrate-tui-backup-hash")
                hasher.start()
                try:
                    problem = verify_custom(reader, pg_restore)
                finally:
                    hasher.join()
                digest = box["d"]
        finally:
            os.close(reader)
        if problem:
            self._discard(pending)
            raise MigrateError(OperatorError(
                f"The backup failed verification: {redact(problem, self.settings.secrets())}. It was deleted.",
                "Run the backup again; if it keeps failing, check free disk space and the server log."))
        return digest

    def _pg_restore(self, tool: PgTool) -> PgTool:
        sibling = tool.path.parent / "pg_restore"
        if sibling.is_file():
            return PgTool("pg_restore", sibling, tool.version, tool.major, tool.source)
        search = self.locator.find("pg_restore", tool.major)
        if search.chosen is None:
            raise MigrateError(OperatorError(
                f"No pg_restore of version {tool.major} or later to verify the custom-format backup.",
                "Install the PostgreSQL client tools, set PG_RESTORE, or use --format plain."))
        return search.chosen

    def _write_sidecars(self, directory: CheckedDir, final: str, digest: str, size: int, facts, tool: PgTool,
                        tables: list[TableSize], stderr: str, started_at: datetime, dump_s: float,
                        verify_s: float) -> Path:
        target = self.settings.target
        manifest = {
            "file": final,
            "format": self.fmt,
            "size_bytes": size,
            "sha256": digest,
            "database": facts.database,
            "host": target["host"],
            "port": target["port"],
            "user": facts.user,
            "server_version": facts.version,
            "pg_dump_version": tool.version,
            "table_count": len(tables),
            "tables_dumped": len(_TABLE_LINE.findall(stderr)),
            "verification": "end-of-dump marker" if self.fmt == "plain" else "pg_restore --file=/dev/null",
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dump_seconds": round(dump_s, 3),
            "verify_seconds": round(verify_s, 3),
            "created_by": "migrate-tui",
        }
        directory.write_new(final + ".sha256", f"{digest}  {final}\n".encode())
        text = redact(json.dumps(manifest, indent=2), self.settings.secrets()) + "\n"
        return directory.write_new(final + ".manifest.json", text.encode())


# --- progress -----------------------------------------------------------------------------------

class _Progress:
    """Tables done / total from pg_dump --verbose, weighted by relation size, with an ETA."""

    def __init__(self, tables: list[TableSize] | None = None) -> None:
        self.weights: dict[str, int] = {}
        self.tuples: dict[str, int] = {}
        self.total = 1
        self.done_weight = 0
        self.started: list[str] = []
        self.data_start: float | None = None
        self.shown = 0.0  # never move the bar backwards (the COPY counter lags a table switch)
        self._lock = threading.Lock()
        if tables is not None:
            self.set_tables(tables)

    def set_tables(self, tables: list[TableSize]) -> None:
        """The sizes arrive once pg_dump runs; tables it started before that are counted now."""
        with self._lock:
            self.weights = {t.name: t.bytes + 8192 for t in tables}  # empty tables still count a little
            self.tuples = {t.name: t.tuples for t in tables}
            self.total = sum(self.weights.values()) or 1
            self.done_weight = sum(self.weights.get(name, 0) for name in self.started[:-1])

    def table_started(self, name: str) -> None:
        with self._lock:
            if self.started:
                self.done_weight += self.weights.get(self.started[-1], 0)
            self.started.append(name)
            if self.data_start is None:
                self.data_start = time.monotonic()

    def event(self, written: int, elapsed: float, copy_tuples: int | None, finished: bool = False) -> BackupProgress:
        with self._lock:
            total_tables = len(self.weights)
            if finished:
                return BackupProgress(total_tables, total_tables, None, written, 1.0, elapsed, 0.0)
            current = self.started[-1] if self.started else None
            done = max(0, len(self.started) - 1)
            weight = self.done_weight
            if current is not None and copy_tuples is not None and self.tuples.get(current):
                weight += self.weights.get(current, 0) * min(1.0, copy_tuples / self.tuples[current])
            fraction = self.shown = max(self.shown, min(0.99, weight / self.total))
            eta = None
            if self.data_start is not None and fraction > 0.01:
                running = time.monotonic() - self.data_start
                if running > 0.5:
                    eta = running / fraction * (1 - fraction)
            return BackupProgress(min(done, total_tables), total_tables, current, written, fraction, elapsed, eta)


class _CopyMonitor:
    """Rows copied so far by pg_dump's running COPY (pg_stat_progress_copy, PostgreSQL 14+)."""

    def __init__(self, conn, app_name: str) -> None:
        """``conn``: the backup's own autocommit connection (None before PostgreSQL 14); not closed here."""
        self.app_name = app_name
        self.conn = conn
        self._next = 0.0
        self._last: int | None = None

    def tuples(self) -> int | None:
        if self.conn is None or time.monotonic() < self._next:
            return self._last
        self._next = time.monotonic() + 0.5
        try:
            row = self.conn.execute(
                "SELECT p.tuples_processed FROM pg_stat_progress_copy p JOIN pg_stat_activity a ON a.pid = p.pid "
                "WHERE a.application_name = %s", (self.app_name,)).fetchone()
            self._last = int(row[0]) if row else None
        except Exception:  # progress is best effort; the dump itself reports real failures
            self.conn = None
            self._last = None
        return self._last

    def close(self) -> None:
        self.conn = None


# --- helpers ----------------------------------------------------------------------------------------

def _user(settings: Settings) -> str | None:
    """The user for a fix hint; None when even reading the URL fails (the error then says why)."""
    try:
        return settings.target["user"]
    except Exception:  # noqa: BLE001 - explaining a failure must not fail
        return None


def _close(conn) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
