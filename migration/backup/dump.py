"""A verified full backup with pg_dump, as a stream of typed events (:mod:`migration.events`).

``Backup(settings, emit).run()`` blocks (a thread, a Textual worker); its lifecycle (cancel from
any thread, one outcome, every helper thread ended before it reports) is
:class:`migration.operation.Operation`'s. ``cancel()`` stops pg_dump and the partial file is
deleted. The dump is written to a locked temporary name (0600) in a checked directory
(:mod:`migration.safe_files`), fsynced, verified (:mod:`.verify`), then published as
``backup_before_migration_YYYYMMDD_HHMMSS.sql`` (plain, the guide's name), ``.dump`` (custom) or
``.dir`` (directory format, ``--jobs N``: a private directory made, locked and published without
replacing anything, :mod:`migration.safe_dirs`), with a ``.sha256`` file (one line per file) and a
JSON manifest beside it (:mod:`.manifest`). A dump that fails verification is deleted.

While the dump is written or read back, every table's rows are counted from the dump itself (the
hashing follower for plain dumps, pg_restore's output for archives: :mod:`.dumptext`), and the
source's objects are read from its catalog (:mod:`.source`): the manifest keeps both for the drill.
With ``exact``, the rows are also counted on the source in the dump's own snapshot.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..catalog_objects import counts
from ..children import child_env
from ..errors import MigrateError, OperatorError
from ..events import BackupFinished, BackupStarted, BackupVerifying, Outcome
from ..operation import Cancelled, Emit, Operation, Stop
from ..options import FORMATS, BackupOptions
from ..pgtools import Locator, PgTool, ToolSearch, explain_tool_failure, public_conninfo
from ..pooler import DIRECT_URL_HINT, DUMP_REFUSED, PoolerReport
from ..safe_dirs import PendingDir, remove_stale_partial_dirs, reserve_dir
from ..safe_files import CheckedDir, PendingFile, open_dir, remove_stale_partials, reserve
from ..redact import redact
from ..settings import Settings
from . import compression as compressions
from . import manifest as manifests
from . import source as source_facts
from .directory import UNCOUNTABLE, DirFollower, listing
from .dumptext import DumpContents, DumpReader
from .hashing import READ_CHUNK, Follower
from .progress import CopyMonitor, Progress, TableSize, table_sizes
from .verify import CUSTOM_MAGIC, ArchiveReader, missing_data, sha256_fd, verify_plain

PREFIX = "backup_before_migration_"
_TABLE_LINE = re.compile(r'dumping contents of table "(.+)"')
_FINISHED = re.compile(r"finished item (\d+) TABLE DATA (.+)$")


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
        self._follower_dir: DirFollower | None = None
        self._archive: ArchiveReader | None = None
        self._snapshot: source_facts.SnapshotCounts | None = None
        self._counted: dict = {}  # the --exact counting thread's result (or its exception)
        self._source: dict = {}  # the source's objects, role and encoding (or the exception reading them)
        self._source_conn = None
        self.compression: str | None = None
        self.database_bytes = 0

    @property
    def child_pid(self) -> int | None:
        """PID of the running pg_dump, if any."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def application_name(self) -> str:
        return self._app_name

    # -- the lifecycle (migration.operation) -------------------------------------------------------
    # cancel() terminates pg_dump and the pg_restore processes that verify (all start_child children);
    # run() deletes the partial file and reports the cancel.
    def _interrupt(self) -> None:
        """Stop the statements that read the source (the --exact count, the catalog read)."""
        if self._archive is not None:
            self._archive.cancel()
        if self._snapshot is not None:
            self._snapshot.cancel()
        source_conn = self._source_conn
        if source_conn is not None and not source_conn.closed:
            source_conn.cancel_safe(timeout=5)

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        source_conn = self._source_conn
        if source_conn is not None and not source_conn.closed:
            source_conn.cancel_safe(timeout=5)  # a failed dump does not wait for a catalog read stuck on a lock
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            snapshot.close()
            snapshot.conn.close()
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
        self.compression = self.options.compress or compressions.default_for(self.fmt, str(tool.path), tool.major)
        compress = compressions.argument(self.compression, str(tool.path), tool.major, tool.version)
        self.check_cancel()
        snapshot = self._export_snapshot() if self.options.exact else None
        directory = self._dir = open_dir(self.backup_dir, create=True, own=True, trust=self.options.trust_dir)
        removed = tuple(remove_stale_partials(directory)) + tuple(remove_stale_partial_dirs(directory))
        names = self._names()
        pending = self._pending = reserve_dir(directory, names) if self.fmt == "directory" else reserve(directory, names)
        started_at = datetime.now(timezone.utc)
        follower, stderr, tables, facts = self._dump(tool, pending, facts, directory, removed, compress, snapshot)
        dump_s = self.elapsed_ms / 1000
        if self.fmt != "directory":
            os.fsync(pending.fd)  # pg_dump fsyncs the files of a directory archive itself
        source = self._source_facts()
        verify_from = self.elapsed_ms
        digest, contents, files = self._verify(pending, follower, tool, source.pop("_table_oids", {}),
                                               _TABLE_LINE.findall(stderr))
        exact = self._exact_rows(contents) if self.options.exact else None
        verify_s = (self.elapsed_ms - verify_from) / 1000
        size = pending.size()
        # The checksums and the manifest first, the dump's own name last: a backup is either complete with its
        # sidecars or not there at all (a failure removes the sidecars already written).
        written: list[str] = []
        try:
            record = self._manifest(pending.final, digest, size, facts, tool, tables, stderr, started_at, dump_s,
                                    verify_s, contents, source, files, exact)
            checksums = listing(files, pending.final + "/") if files else f"{digest}  {pending.final}\n"
            manifest = manifests.write(directory, pending.final, record, self.settings.secrets(), written, checksums)
            final = pending.publish()
        except BaseException:
            for name in written:
                directory.unlink(name)
            raise
        return BackupFinished(Outcome.SUCCESS, "Backup written and verified", None, self.elapsed_ms, str(final),
                              size, digest, str(manifest), dump_s, verify_s, sum(contents.rows.values()),
                              len(contents.rows), self.database_bytes)

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
        """The hashing threads end before the backup reports (and before its file is deleted)."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.close()
        follower_dir, self._follower_dir = self._follower_dir, None
        if follower_dir is not None:
            follower_dir.close()

    def _discard(self, pending: PendingFile | PendingDir | None) -> bool:
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

    def _export_snapshot(self) -> str:
        """--exact: a transaction that exports the snapshot pg_dump will use; the source is read and counted in it."""
        from ..db import connect

        self._snapshot = source_facts.SnapshotCounts(connect(self.settings, application_name=self._app_name + "-exact"),
                                                     self.lock_wait_timeout_ms)
        return self._snapshot.export()

    def _read_source(self) -> None:
        """The source's catalog, on a connection of its own while pg_dump runs (it may wait for a lock as pg_dump does)."""
        from ..db import connect

        try:
            self._source_conn = connect(self.settings, application_name=self._app_name + "-catalog")
            with self._source_conn:
                self._source["facts"] = source_facts.read(self._source_conn, self.lock_wait_timeout_ms)
        except BaseException as exc:  # noqa: BLE001 - reported by _source_facts, in the operation's thread
            self._source["error"] = exc

    def _source_facts(self) -> dict:
        if self._snapshot is not None:
            return self._snapshot.facts
        self._join_threads()
        if "error" in self._source:
            raise self._source["error"]
        return self._source["facts"]

    def _count_in_snapshot(self) -> None:
        try:
            self._counted["rows"] = self._snapshot.count(self.check_cancel)
        except BaseException as exc:  # noqa: BLE001 - reported by _exact_rows, in the operation's thread
            self._counted["error"] = exc

    def _exact_rows(self, contents: DumpContents) -> dict[str, int]:
        """The snapshot's counts; a table whose dump holds other rows than the snapshot fails the backup."""
        self._join_threads()
        if "error" in self._counted:
            raise self._counted["error"]
        rows = self._counted["rows"]
        wrong = [f"{name}: {contents.rows.get(name, 0)} rows in the dump, {count} in its snapshot"
                 for name, count in rows.items() if contents.rows.get(name, 0) != count]
        if wrong:
            self._discard(self._pending)
            raise MigrateError(OperatorError(
                "The backup does not hold the rows of its own snapshot: " + "; ".join(wrong[:5]) + ". It was deleted.",
                "Run the backup again; if it happens again, report it with the manifest of a failing run."))
        return rows

    def _names(self):
        """backup_before_migration_YYYYMMDD_HHMMSS.sql, then _1, _2, ... within the same second."""
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        ext = FORMATS[self.fmt]
        return (f"{PREFIX}{stamp}{'' if n == 0 else f'_{n}'}{ext}" for n in range(100))

    def _argv(self, tool: PgTool, pending: PendingFile | PendingDir, compress: str | None,
              snapshot: str | None) -> list[str]:
        """A plain dump goes to pg_dump's stdout: the temporary file reserved (created, empty, locked).

        A custom-format archive is named with --file: pg_dump seeks back in it to write the data
        offsets into its table of contents, and fsyncs it itself. It gets ``/dev/fd/N``, the
        descriptor of that same file: no name in the directory is ever looked up again. A directory
        archive is written into ``/dev/fd/N`` too, the descriptor of the empty directory reserved
        (pg_dump accepts an existing empty directory; its --jobs workers inherit the descriptor).
        """
        argv = [str(tool.path), "--verbose", "--no-password", f"--format={self.fmt}",
                f"--lock-wait-timeout={self.lock_wait_timeout_ms}",
                f"--dbname={public_conninfo(self.settings, self._app_name)}"]
        if self.fmt != "plain":
            argv.insert(4, f"--file=/dev/fd/{pending.fd}")
        if self.fmt == "directory" and self.options.jobs > 1:
            argv.insert(4, f"--jobs={self.options.jobs}")
        if compress:
            argv.insert(4, compress)
        if snapshot:
            argv.insert(4, f"--snapshot={snapshot}")
        return argv

    def _dump(self, tool: PgTool, pending: PendingFile | PendingDir, facts, directory: CheckedDir,
              removed: tuple[str, ...], compress: str | None, snapshot: str | None):
        progress = Progress(parallel=self.fmt == "directory" and self.options.jobs > 1)
        lines: list[str] = []
        eof = threading.Event()
        plain = self.fmt == "plain"
        with child_env(self.settings) as child:
            # A plain dump: the file reserved (created, empty) becomes pg_dump's stdout, without
            # O_TRUNC. With --file, pg_dump would truncate it, and ext4 flushes a truncated-and-rewritten
            # file when it is closed (auto_da_alloc): pg_dump would wait for the whole write-back at its
            # end instead of the follower starting it early.
            self._proc = self.start_child(
                self._argv(tool, pending, compress, snapshot), env=child.env, stdin=subprocess.DEVNULL,
                stdout=pending.fd if plain else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                errors="replace", start_new_session=True,
                pass_fds=child.pass_fds + (() if plain else (pending.fd,)))
            proc = self._proc
            follower = self._follower = Follower(pending.reader()) if plain else None
            if follower:
                follower.start()
            hasher = self._follower_dir = DirFollower(pending.fd, self.options.jobs) \
                if self.fmt == "directory" else None
            if hasher:
                hasher.start()
            reader = self.start_thread(lambda: self._read_stderr(proc, lines, progress, eof, hasher),
                                       "migrate-tui-backup-stderr")
            if snapshot is not None:
                self.start_thread(self._count_in_snapshot, "migrate-tui-backup-exact")
            else:
                self.start_thread(self._read_source, "migrate-tui-backup-catalog")
            monitor = None
            try:
                monitor = CopyMonitor(self._conn if facts.major >= 14 else None, self._app_name)
                database_bytes, tables = table_sizes(self._conn)
                self.database_bytes = database_bytes
                progress.set_tables(tables)
                self.emit(BackupStarted(str(pending.path), self.fmt, len(tables), facts.database, database_bytes,
                                         facts.version, tool, directory.shown, removed,
                                         self.options.jobs if self.fmt == "directory" else 1, self.compression,
                                         self.options.exact))
                # pg_dump closes its stderr when it exits: wake up then, not at the next poll.
                while not eof.wait(self.progress_interval_s) and proc.poll() is None:
                    written = follower.count if follower else pending.size()
                    self.emit(progress.event(written, self.elapsed_ms / 1000, monitor.tuples()))
            except (Cancelled, MigrateError, KeyboardInterrupt):
                proc.terminate()
                raise
            except Exception:  # noqa: BLE001 - our own session was lost (terminated, the server gone): pg_dump
                # decides. Its own failure is the one to report; if it still runs, it is waited for (cancellable).
                while not eof.wait(self.progress_interval_s) and proc.poll() is None:
                    if self.cancelled:
                        proc.terminate()
                        raise Cancelled() from None
                if proc.wait() == 0:
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
    def _read_stderr(proc: subprocess.Popen, lines: list[str], progress: Progress, eof: threading.Event,
                     hasher: DirFollower | None = None) -> None:
        assert proc.stderr is not None
        try:
            for line in proc.stderr:
                line = line.rstrip("\n")
                match = _TABLE_LINE.search(line)
                if match:
                    progress.table_started(match.group(1))
                    lines.append(line)
                    continue
                finished = _FINISHED.search(line)
                if finished:
                    progress.table_finished(finished.group(2))
                    if hasher is not None:
                        hasher.item_finished(finished.group(1))
                    continue
                if line.startswith("pg_dump: ") and not any(k in line for k in ("error", "detail", "hint", "could")):
                    continue  # verbose chatter
                lines.append(line)
        finally:
            eof.set()

    def _verify(self, pending: PendingFile | PendingDir, follower: Follower | None, tool: PgTool,
                table_oids: dict[int, str], dumped: list[str]) -> tuple[str, DumpContents, dict[str, tuple[int, str]]]:
        """(sha256, what the dump holds, the files of a directory archive with their sizes and sha256).
        ``dumped``: the tables whose data pg_dump said it dumped; each must be in the dump read back."""
        reader = pending.reader()
        files: dict[str, tuple[int, str]] = {}
        try:
            if self.fmt == "plain":
                self.emit(BackupVerifying(str(pending.temporary_path), "end-of-dump marker; rows counted"))
                digest = follower.finish() if follower else None
                contents = follower.reader.finish() if follower else None
                if digest is None or follower.count != pending.size():
                    digest, contents = _hash_and_read(reader)
                problem = verify_plain(reader)
                if problem is None and contents.open_block:
                    problem = f"the data of {contents.open_block} ends before its end mark (the dump is truncated)"
            elif self.fmt == "custom":
                self.emit(BackupVerifying(str(pending.temporary_path), "pg_restore reads the whole archive"))
                archive = self._archive = ArchiveReader(self._pg_restore(tool), "", stdin=reader,
                                                        start=self.start_child)
                box: dict[str, str] = {}
                hasher = self.start_thread(lambda: box.setdefault("d", sha256_fd(reader)), "migrate-tui-backup-hash")
                try:
                    if os.pread(reader, len(CUSTOM_MAGIC), 0) != CUSTOM_MAGIC:
                        problem, contents = "it is not a pg_dump custom-format archive", DumpContents()
                    else:
                        os.lseek(reader, 0, os.SEEK_SET)
                        problem, contents = archive.read()
                finally:
                    hasher.join()
                digest = box["d"]
            else:
                problem, contents, files = self._verify_directory(pending, reader, tool, table_oids)
                digest = hashlib.sha256(listing(files).encode()).hexdigest()
            self.check_cancel()
        finally:
            os.close(reader)
        self.check_cancel()  # a pg_restore stopped by a cancel is not a failed verification
        problem = problem or missing_data(dumped, contents.rows)
        if problem:
            self._discard(pending)
            raise MigrateError(OperatorError(
                f"The backup failed verification: {redact(problem, self.settings.secrets())}. It was deleted.",
                "Run the backup again; if it keeps failing, check free disk space and the server log."))
        return digest, contents, files

    def _verify_directory(self, pending: PendingDir, reader: int, tool: PgTool, table_oids: dict[int, str]):
        """pg_restore reads every file (``jobs`` of them side by side) while the follower finishes the files it had
        not read yet; the rows were counted by the follower (or, for lz4/zstd files, from pg_restore's output)."""
        jobs = self.options.jobs
        self.emit(BackupVerifying(str(pending.temporary_path), "pg_restore reads every file"
                                  + (f" ({jobs} at a time)" if jobs > 1 else "")))
        follower = self._follower_dir
        sizes = pending.files()
        counted_here = not any(UNCOUNTABLE.match(name) for name in sizes)
        box: dict[str, dict] = {}
        finishing = self.start_thread(lambda: box.setdefault("files", follower.finish()), "migrate-tui-backup-hash")
        archive = self._archive = ArchiveReader(self._pg_restore(tool), f"/dev/fd/{reader}", pass_fds=(reader,),
                                                jobs=jobs, sizes=sizes, count_data=not counted_here,
                                                start=self.start_child)
        try:
            problem, contents = archive.read()
        finally:
            finishing.join()
        files = box.get("files", {})
        if problem is None and counted_here:
            rows = follower.rows()
            for dump_id, oid in archive.data_entries.items():
                count = rows.get(dump_id)
                name = table_oids.get(oid, f"table with OID {oid}")
                if count is None:
                    problem = f"the data file of {name} ends before its end mark"
                    break
                contents.rows[name] = contents.rows.get(name, 0) + count
        return problem, contents, files

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

    def _manifest(self, final: str, digest: str, size: int, facts, tool: PgTool, tables: list[TableSize],
                  stderr: str, started_at: datetime, dump_s: float, verify_s: float, contents: DumpContents,
                  source: dict, files: dict[str, tuple[int, str]], exact: dict[str, int] | None) -> dict:
        target = self.settings.target
        verification = {"plain": "end-of-dump marker", "custom": "pg_restore --file=-",
                        "directory": "pg_restore --file=- (every file)"}[self.fmt]
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
            "database_bytes": self.database_bytes,
            "pg_dump_version": tool.version,
            "table_count": len(tables),
            "tables_dumped": len(_TABLE_LINE.findall(stderr)),
            "verification": verification,
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dump_seconds": round(dump_s, 3),
            "verify_seconds": round(verify_s, 3),
            "created_by": "migrate-tui",
        }
        if self.fmt == "directory":
            manifest.update(jobs=self.options.jobs, files=[
                {"name": name, "size_bytes": fsize, "sha256": fdigest} for name, (fsize, fdigest) in sorted(files.items())])
        if self.compression is not None:
            manifest["compression"] = self.compression
        manifest["rows_total"] = sum(contents.rows.values())
        manifest.update(contents.as_manifest())  # rows, extensions, sequences, roles: read from the dump itself
        if exact is not None:
            manifest["rows_exact"] = dict(sorted(exact.items()))
        manifest["object_counts"] = counts(source["objects"])
        manifest.update(source)  # objects, operator_role, encoding: read from the source's catalog
        return manifest


def _hash_and_read(fd: int) -> tuple[str, DumpContents]:
    """A whole plain dump read once: its sha256 and what it holds."""
    digest, reader = hashlib.sha256(), DumpReader()
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    offset = 0
    while n := os.preadv(fd, [buffer], offset):
        digest.update(view[:n])
        reader.feed(buffer, n)
        offset += n
    return digest.hexdigest(), reader.finish()

