"""A verified full backup with pg_dump, as a stream of typed events (:mod:`migration.events`).

``Backup(settings, emit).run()`` blocks (a thread, a Textual worker); its lifecycle (cancel from
any thread, one outcome, every helper thread ended before it reports) is
:class:`migration.operation.Operation`'s. ``cancel()`` stops pg_dump and the partial file is
deleted. The dump is written to a locked temporary name (0600) in a checked directory
(:mod:`migration.safe_files`), fsynced, verified (:mod:`.verify`), then published as
``backup_before_migration_YYYYMMDD_HHMMSS.sql`` (plain, the guide's name) or ``.dump`` (custom),
with a ``.sha256`` file and a JSON manifest beside it. A dump that fails verification is deleted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..children import child_env
from ..errors import MigrateError, OperatorError
from ..events import BackupFinished, BackupStarted, BackupVerifying, Outcome
from ..operation import Emit, Operation, Stop
from ..options import FORMATS, BackupOptions
from ..pgtools import Locator, PgTool, ToolSearch, explain_tool_failure, public_conninfo
from ..pooler import DIRECT_URL_HINT, DUMP_REFUSED, PoolerReport
from ..safe_files import CheckedDir, PendingFile, open_dir, remove_stale_partials, reserve
from ..redact import redact
from ..settings import Settings
from .hashing import Follower
from .progress import CopyMonitor, Progress, TableSize, table_sizes
from .verify import sha256_fd, verify_custom, verify_plain

PREFIX = "backup_before_migration_"
_TABLE_LINE = re.compile(r'dumping contents of table "(.+)"')


class Backup(Operation):
    name = "backup"
    cancelled_hint = "Nothing was written. Run the backup again when ready."

    def __init__(self, settings: Settings, emit: Emit | None = None, options: BackupOptions | None = None, *,
                 locator: Locator | None = None, tool: PgTool | None = None, lock_wait_timeout_ms: int = 60_000,
                 progress_interval_s: float = 0.25) -> None:
        super().__init__(settings, emit)
        self.options = options or BackupOptions()
        if self.options.fmt not in FORMATS:
            raise ValueError(f"unknown backup format {self.options.fmt!r}")
        self.backup_dir = Path(self.options.backup_dir)
        self.fmt = self.options.fmt
        self.locator = locator or Locator()
        self.tool = tool
        self.lock_wait_timeout_ms = lock_wait_timeout_ms
        self.progress_interval_s = progress_interval_s
        self._proc: subprocess.Popen | None = None
        self._follower: Follower | None = None
        self._pending: PendingFile | None = None
        self._dir: CheckedDir | None = None
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

    # -- the lifecycle (migration.operation) -------------------------------------------------------
    # cancel() terminates pg_dump and the pg_restore that verifies (both are start_child children);
    # run() deletes the partial file and reports the cancel.
    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._proc = None
        self._stop_follower()
        if self._pending is not None:
            self._pending.discard()  # a no-op once published
        if self._dir is not None:
            self._dir.close()

    def _perform(self) -> BackupFinished:
        self.check_cancel()
        # The connection comes first, pg_dump only after it: whether a pooler sits in between decides
        # whether pg_dump may run at all. Through transaction pooling its session settings would stay on
        # pooled server connections the moment it starts (migration.pooler), so it is refused before that.
        facts = self._inspect()
        self._refuse_unless_dump_is_safe(self.note_pooler(self._conn, facts))
        tool = self.tool or self._choose_tool(facts.major)
        self.check_cancel()
        directory = self._dir = open_dir(self.backup_dir, create=True, own=True, trust=self.options.trust_dir)
        removed = tuple(remove_stale_partials(directory))
        pending = self._pending = reserve(directory, self._names())
        started_at = datetime.now(timezone.utc)
        follower, stderr, tables, facts = self._dump(tool, pending, facts, directory, removed)
        dump_s = self.elapsed_ms / 1000
        os.fsync(pending.fd)
        verify_from = self.elapsed_ms
        digest = self._verify(pending, follower, tool)
        verify_s = (self.elapsed_ms - verify_from) / 1000
        size = pending.size()
        # The checksum and the manifest first, the dump's own name last: a backup is either complete with its
        # sidecars or not there at all (a failure removes the sidecars already written).
        written: list[str] = []
        try:
            manifest = self._write_sidecars(directory, pending.final, digest, size, facts, tool, tables, stderr,
                                            started_at, dump_s, verify_s, written)
            final = pending.publish()
        except BaseException:
            for name in written:
                directory.unlink(name)
            raise
        return BackupFinished(Outcome.SUCCESS, "Backup written and verified", None, self.elapsed_ms, str(final),
                              size, digest, str(manifest), dump_s, verify_s)

    def _after_error(self, outcome: Outcome, error: OperatorError) -> BackupFinished:
        """No partial file is kept: the report says whether one was deleted."""
        deleted = self._discard(self._pending)
        if outcome is Outcome.CANCELLED:
            message = "Backup cancelled" + ("; the partial file was deleted" if deleted else "; no file was written")
            error = OperatorError("The backup was cancelled by the operator.", self.cancelled_hint)
        else:
            message = f"Backup failed: {error.message}" + (" The partial file was deleted." if deleted else "")
        return self._ended(outcome, message, error)

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = ()) -> BackupFinished:
        return BackupFinished(outcome, message, error, self.elapsed_ms)

    def _stop_follower(self) -> None:
        """The hashing thread ends before the backup reports (and before its file is deleted)."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.close()

    def _discard(self, pending: PendingFile | None) -> bool:
        self._stop_follower()
        return pending.discard() if pending is not None else False

    # -- steps -------------------------------------------------------------------------------------
    def _inspect(self):
        """Connect (the driver loads here) and read the server's facts."""
        from ..db import connect, server_facts

        self._conn = connect(self.settings, application_name="migrate-tui-backup-inspect")
        return server_facts(self._conn)

    @staticmethod
    def _refuse_unless_dump_is_safe(pooler: PoolerReport) -> None:
        if not pooler.dumps_safely:
            raise Stop(Outcome.FAILED, "Backup refused: pg_dump did not start and nothing was written.",
                       OperatorError(f"pg_dump does not run through {pooler.label}: {DUMP_REFUSED}.",
                                     f"{DIRECT_URL_HINT} (set DATABASE_URL to it), then run the "
                                     "backup again."))

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

    def _dump(self, tool: PgTool, pending: PendingFile, facts, directory: CheckedDir, removed: tuple[str, ...]):
        progress = Progress()
        lines: list[str] = []
        eof = threading.Event()
        with child_env(self.settings) as child:
            # A plain dump: the file reserved (created, empty) becomes pg_dump's stdout, without
            # O_TRUNC. With --file, pg_dump would truncate it, and ext4 flushes a truncated-and-rewritten
            # file when it is closed (auto_da_alloc): pg_dump would wait for the whole write-back at its
            # end instead of the follower starting it early.
            plain = self.fmt == "plain"
            self._proc = self.start_child(
                self._argv(tool, pending), env=child.env, stdin=subprocess.DEVNULL,
                stdout=pending.fd if plain else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                errors="replace", start_new_session=True,
                pass_fds=child.pass_fds + (() if plain else (pending.fd,)))
            proc = self._proc
            follower = self._follower = Follower(pending.reader()) if self.fmt == "plain" else None
            if follower:
                follower.start()
            reader = self.start_thread(lambda: self._read_stderr(proc, lines, progress, eof),
                                       "migrate-tui-backup-stderr")
            monitor = None
            try:
                monitor = CopyMonitor(self._conn if facts.major >= 14 else None, self._app_name)
                database_bytes, tables = table_sizes(self._conn)
                progress.set_tables(tables)
                self.emit(BackupStarted(str(pending.path), self.fmt, len(tables), facts.database, database_bytes,
                                         facts.version, tool, directory.shown, removed))
                # pg_dump closes its stderr when it exits: wake up then, not at the next poll.
                while not eof.wait(self.progress_interval_s) and proc.poll() is None:
                    written = follower.count if follower else pending.size()
                    self.emit(progress.event(written, self.elapsed_ms / 1000, monitor.tuples()))
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
        self.check_cancel()
        if proc.returncode != 0:
            raise MigrateError(explain_tool_failure("pg_dump", stderr, proc.returncode, settings=self.settings,
                                                    tool=tool, server_major=facts.major if facts else None,
                                                    backup_dir=self.backup_dir))
        # The file is complete now: report its real size (the hashing follower may still be catching up).
        self.emit(progress.event(pending.size(), self.elapsed_ms / 1000, None, finished=True))
        return follower, stderr, tables, facts

    @staticmethod
    def _read_stderr(proc: subprocess.Popen, lines: list[str], progress: Progress, eof: threading.Event) -> None:
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

    def _verify(self, pending: PendingFile, follower: Follower | None, tool: PgTool) -> str:
        reader = pending.reader()
        try:
            if self.fmt == "plain":
                self.emit(BackupVerifying(str(pending.temporary_path), "end-of-dump marker"))
                digest = follower.finish() if follower else None
                if digest is None or follower.count != pending.size():
                    digest = sha256_fd(reader)
                problem = verify_plain(reader)
            else:
                self.emit(BackupVerifying(str(pending.temporary_path), "pg_restore reads the whole archive"))
                pg_restore = self._pg_restore(tool)
                box: dict[str, str] = {}
                hasher = self.start_thread(lambda: box.setdefault("d", sha256_fd(reader)), "migrate-tui-backup-hash")
                try:
                    problem = verify_custom(reader, pg_restore, start=self.start_child)
                finally:
                    hasher.join()
                digest = box["d"]
        finally:
            os.close(reader)
        self.check_cancel()  # a pg_restore stopped by a cancel is not a failed verification
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
                        verify_s: float, written: list[str]) -> Path:
        target = self.settings.target
        manifest = {
            "file": final,
            "format": self.fmt,
            "size_bytes": size,
            "sha256": digest,
            "database": facts.database,
            "host": facts.host or target["host"],  # the host that answered (of a host list)
            "port": facts.port or target["port"],
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
        written.append(final + ".sha256")
        text = redact(json.dumps(manifest, indent=2), self.settings.secrets()) + "\n"
        path = directory.write_new(final + ".manifest.json", text.encode())
        written.append(final + ".manifest.json")
        return path
