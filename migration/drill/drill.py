"""The restore drill: the backup restored into a throwaway PostgreSQL and compared with what the source held.

``Drill(settings, emit, backup).run()`` blocks and emits :mod:`migration.events.drill` events; its
lifecycle is :class:`migration.operation.Operation`'s. It:

1. removes the throwaway servers of drills that were killed (:func:`.local.remove_stale`);
2. reads the backup's manifest (the rows counted while the dump was written, the source's objects);
3. picks a local PostgreSQL that can load the dump (a major at least the source's, every extension the
   dump creates) and starts a throwaway server with it — or checks the operator's scratch database;
4. creates the roles the dump names (a dump holds no roles: the drill lists them, a real restore needs
   them too) and a database like the source's, restores exactly the verified backup (:mod:`.restore`);
5. counts every table's rows in the copy and compares them, the objects and the sequence values with
   the manifest (:mod:`.compare`), and records the verdict in the manifest.

The production database is not touched at all (its side was read while the backup was taken). The
throwaway server and its files are removed on every exit path — success, failure, a cancel from any
thread (Ctrl+C, SIGTERM) — unless ``keep`` hands a passed copy to the rehearsal, which then removes it.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from psycopg import sql

from ..backup import manifest as manifests
from ..db import connect_url, outside_transaction
from ..errors import MigrateError, OperatorError
from ..events.drill import (
    Difference,
    DrillCompared,
    DrillFinished,
    DrillPhase,
    DrillProgress,
    DrillStarted,
    DrillTableChecked,
    TableCheck,
)
from ..operation import Emit, Operation
from ..options import DrillOptions
from ..outcome import Outcome
from ..settings import Settings
from . import local
from .check import BackupCheck
from .compare import RowCounter, object_differences, sequence_differences
from .restore import Restorer
from .scratch import ScratchCopy

APPLICATION_NAME = "migrate-tui drill"


def source_major(manifest: dict) -> int:
    """15 from "PostgreSQL 15.18"."""
    try:
        return int(str(manifest.get("server_version", "")).split()[-1].split(".")[0])
    except (IndexError, ValueError):
        return 0


class Drill(Operation):
    name = "drill"
    cancelled_hint = "Nothing was changed on the source; the throwaway server was removed. Run the drill again."

    def __init__(self, settings: Settings, emit: Emit | None, backup: str | Path, options: DrillOptions | None = None,
                 *, keep: bool = False, found: tuple[local.Candidate, ...] | None = None) -> None:
        """``keep``: a passed copy stays up for :class:`~.rehearsal.Rehearsal` (it then owns ``self.copy``);
        ``found``: the local servers to choose from (tests narrow them down)."""
        super().__init__(settings, emit)
        self.backup = Path(backup)
        self.options = options or DrillOptions()
        self.keep = keep
        self.found = found
        self.copy: local.LocalCopy | ScratchCopy | None = None
        self.manifest: dict = {}
        self.kept = False
        self._restorer: Restorer | None = None
        self._counter: RowCounter | None = None
        self._monitor = None
        self._checks: list[TableCheck] = []
        self._missing: tuple[str, ...] = ()
        self._restore_s = 0.0
        self._server = ""
        self._backup_check: BackupCheck | None = None  # the backup opened, hashed against its manifest

    # -- the lifecycle (migration.operation) ------------------------------------------------------------
    def _interrupt(self) -> None:
        for part in (self._restorer, self._counter):
            if part is not None:
                part.cancel()

    def _release(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.close()
        if not self.kept:
            self._remove_copy()

    def _remove_copy(self) -> bool:
        """True once the throwaway server and its files are gone (a scratch database is the operator's: left)."""
        copy, self.copy = self.copy, None
        if copy is None:
            return not self.options.drill_url
        return copy.cleanup()

    def _perform(self) -> DrillFinished:
        removed = tuple(local.remove_stale())
        loaded = manifests.load(self.backup)
        try:
            self.manifest = m = loaded.manifest
            if self.options.exact and "rows_exact" not in m:
                raise MigrateError(OperatorError(
                    f"The backup {self.backup} was taken without --exact: it has no counts from the source to compare "
                    "with.", "Take the backup with --exact (migrate-tui backup --exact), or drill without --exact."))
            rows: dict[str, int] = m["rows"]
            self.emit(DrillStarted(str(self.backup), loaded.format, f"{m.get('server_version')}, database "
                                   f"{m.get('database')}", len(rows), sum(rows.values()), int(m.get("size_bytes", 0)),
                                   "rows_exact" in m, removed,
                                   ScratchCopy(self.options.drill_url, self.settings).masked
                                   if self.options.drill_url else None))
            # The sha256 of every byte is checked while the throwaway server starts (both take a second or more),
            # on the CPU initdb leaves idle; the restore waits for the rest of it (BackupCheck.finish).
            self._backup_check = BackupCheck(loaded, self.options.jobs).start()
            self._start_copy(m)
            self._restore(loaded)
        finally:
            check, self._backup_check = self._backup_check, None
            if check is not None:
                check.close()
            loaded.close()
        checks = self._count(rows, m.get("rows_exact") if self.options.exact else None)
        differences, notes = self._compare(m)
        ok = all(c.ok for c in checks) and not differences
        return self._verdict(ok, checks, differences, notes)

    # -- phases ---------------------------------------------------------------------------------------------
    def _phase(self, phase: str, message: str):
        return _Phase(self, phase, message)

    def _start_copy(self, m: dict) -> None:
        roles = sorted(set(m.get("roles", [])))
        if self.options.drill_url:
            with self._phase("server", "Checking the scratch database") as phase:
                self.copy = ScratchCopy(self.options.drill_url, self.settings).check(self.settings, roles,
                                                                                     source_major(m))
                self._server = self.copy.describe()
                phase.done(f"Scratch database ready: {self._server}")
            return
        with self._phase("server", "Starting a throwaway PostgreSQL (the backup's sha256 is checked meanwhile)") as phase:
            candidate, problem, missing = local.choose(source_major(m), m.get("extensions", []), self.found)
            if candidate is None:
                self._missing = missing
                raise MigrateError(problem)
            self.check_cancel()
            self.copy = local.LocalCopy(candidate, str(m.get("database") or "drill")).start()
            self._server = f"PostgreSQL {candidate.version} ({candidate.bin_dir})"
            phase.done(f"Throwaway PostgreSQL {candidate.version} started ({candidate.source})")
        self.check_cancel()
        with self._phase("roles", "Creating the database and the roles the dump names") as phase:
            created = self._prepare_database(m, roles)
            phase.done(f"Database {self.copy.dbname} created"
                       + (f", with the roles the dump names: {', '.join(created)}" if created else ""))

    def _prepare_database(self, m: dict, roles: list[str]) -> list[str]:
        copy = self.copy
        op = m.get("operator_role") or {}
        owner = m.get("database_owner") or copy.server.superuser
        grants = [(grantee, privilege) for grantee, privilege in m.get("database_grants", [])]
        wanted = list(dict.fromkeys([*roles, owner, *op.get("member_of", []), *([op["name"]] if op.get("name") else []),
                                     *(grantee for grantee, _ in grants if grantee != "PUBLIC")]))
        with connect_url(copy.admin_url("postgres"), application_name=APPLICATION_NAME) as conn:
            existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
            created = [r for r in wanted if r not in existing]
            for role in created:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            # Owned by the source database's owner (in PostgreSQL 15+ the owner may create in schema public).
            outside_transaction(conn, sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING {} "
                                              "LOCALE 'C'").format(sql.Identifier(copy.dbname), sql.Identifier(owner),
                                                                   sql.Literal(m.get("encoding") or "UTF8")))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(copy.dbname)))
            for grantee, privilege in grants:
                conn.execute(sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                    sql.SQL(privilege if privilege in ("CREATE", "CONNECT", "TEMPORARY") else "CONNECT"),
                    sql.Identifier(copy.dbname), sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)))
            if op.get("name") and op["name"] != copy.server.superuser:
                flags = " ".join(("" if op.get(key) else "NO") + word for key, word in (
                    ("superuser", "SUPERUSER"), ("createdb", "CREATEDB"), ("createrole", "CREATEROLE"),
                    ("inherit", "INHERIT"), ("bypassrls", "BYPASSRLS")))
                conn.execute(sql.SQL("ALTER ROLE {} " + flags).format(sql.Identifier(op["name"])))
                for group in op.get("member_of", []):
                    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(op["name"])))
        return [r for r in roles if r != copy.server.superuser]

    def _restore(self, loaded: manifests.LoadedBackup) -> None:
        m = loaded.manifest
        copy = self.copy
        admin = copy.settings if copy.scratch else Settings(database_url=copy.admin_url())
        rows_total = sum(m["rows"].values())
        size = int(m.get("size_bytes", 0))
        started = time.perf_counter()

        def progress(tables_done: int, running: tuple[str, ...], rows: int, fed: int) -> None:
            fraction = (fed / size if size else 0.0) if loaded.format == "plain" else \
                (rows / rows_total if rows_total else 0.0)
            fraction = max(0.0, min(0.99, fraction))
            elapsed = time.perf_counter() - started
            eta = elapsed / fraction * (1 - fraction) if fraction > 0.02 and elapsed > 0.5 else None
            self.emit(DrillProgress(tables_done, len(m["rows"]), rows, rows_total, fed,
                                    size if loaded.format == "plain" else 0, fraction, running,
                                    self.elapsed_ms / 1000, eta))

        how = "psql (one transaction)" if loaded.format == "plain" else f"pg_restore --jobs {self.options.jobs}"
        with self._phase("restore", f"Restoring the verified backup with {how}") as phase:
            self._restorer = Restorer(loaded, admin, jobs=self.options.jobs, bin_dir=getattr(copy, "bin_dir", None),
                                      server_major=copy.major, progress=progress, check_cancel=self.check_cancel,
                                      copy_rows=self._copy_rows)
            # Every byte checked against the manifest first: the restore reads nothing before.
            fd = self._backup_check.finish(self.check_cancel)
            started = time.perf_counter()  # the restore's own time (and its ETA) from here
            self._restorer.run(fd)
            self._restore_s = time.perf_counter() - started
            phase.done(f"Restored with {self._restorer.tool.name} {self._restorer.tool.version}")

    def _copy_rows(self) -> dict[str, int]:
        """Rows the running COPYs have loaded so far (pg_stat_progress_copy on the copy): for the progress bar."""
        try:
            if self._monitor is None:
                self._monitor = connect_url(self.copy.admin_url(), application_name=APPLICATION_NAME + " progress")
            rows = self._monitor.execute(
                "SELECT n.nspname || '.' || c.relname, p.tuples_processed FROM pg_stat_progress_copy p "
                "JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace").fetchall()
            return {name: int(count) for name, count in rows}
        except Exception:  # noqa: BLE001 - progress is best effort
            return {}

    def _count(self, rows: dict[str, int], exact: dict[str, int] | None) -> list[TableCheck]:
        with self._phase("count", f"Counting the rows of {len(rows)} tables in the copy") as phase:
            self._counter = RowCounter(self.copy.admin_url(), self.options.jobs)

            def checked(check: TableCheck) -> None:
                self._checks.append(check)
                self.emit(DrillTableChecked(check))

            checks = self._counter.count(rows, exact, checked, self.check_cancel)
            wrong = sum(not c.ok for c in checks)
            phase.done(f"{len(checks)} tables counted" + (f"; {wrong} do not match" if wrong else ", all match"))
            return checks

    def _compare(self, m: dict) -> tuple[list[Difference], list[str]]:
        with self._phase("compare", "Comparing the objects and sequence values with the source's") as phase:
            url = self.copy.admin_url()
            same_major = self.copy.major == source_major(m)
            differences, notes = object_differences(url, m["objects"], same_major)
            differences += sequence_differences(url, m.get("sequences", {}))
            counts = tuple((kind, int(n)) for kind, n in (m.get("object_counts") or {}).items())
            self.emit(DrillCompared(counts, tuple(differences), tuple(notes)))
            phase.done("Every object matches the source's" if not differences
                       else f"{len(differences)} difference{'s' if len(differences) != 1 else ''}")
            return differences, notes

    # -- endings ------------------------------------------------------------------------------------------
    def _verdict(self, ok: bool, checks: list[TableCheck], differences: list[Difference],
                 notes: list[str]) -> DrillFinished:
        rows = sum(c.rows_backup for c in checks)
        if ok:
            message = (f"The backup restores: {len(checks)} tables with {rows:,} rows, every count and every object "
                       "as in the source")
            error = None
        else:
            wrong = [c for c in checks if not c.ok]
            parts = [f"{c.table}: {c.rows_backup:,} rows in the backup, "
                     + ("missing from the copy" if c.rows_restored is None else f"{c.rows_restored:,} restored")
                     + (f", {c.rows_exact:,} on the source" if c.rows_exact is not None else "") for c in wrong]
            parts += [d.describe() for d in differences]
            message = "The restored copy does not match the backup"
            error = OperatorError(
                f"The restored copy does not match: {'; '.join(parts[:4])}"
                + (f" (and {len(parts) - 4} more)" if len(parts) > 4 else ""),
                "Do not rely on this backup: take a new one and drill it. If it happens again, the dump is "
                "being changed or damaged on its way to the disk (check the disk and who writes to the directory).")
        outcome = Outcome.SUCCESS if ok else Outcome.FAILED
        kept = ok and self.keep
        removed = False
        if not kept:
            removed = self._remove_copy()
        self.kept = kept
        updated = self._record(outcome, message, checks, differences, notes)
        return DrillFinished(outcome, message, error, self.elapsed_ms, str(self.backup), self._server, tuple(checks),
                             tuple(differences), tuple(notes), (), tuple(self.manifest.get("roles", [])),
                             self._restore_s, removed, kept, updated)

    def _record(self, outcome: Outcome, message: str, checks, differences, notes) -> bool:
        """The verdict goes into the backup's manifest (a drill that cannot write it still stands)."""
        try:
            manifests.record(self.backup, "drill", {
                "outcome": outcome.value, "message": message, "server": self._server,
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "elapsed_s": round(self.elapsed_ms / 1000, 3), "restore_s": round(self._restore_s, 3),
                "tables_checked": len(checks), "tables_mismatched": [c.table for c in checks if not c.ok],
                "differences": [d.describe() for d in differences], "notes": list(notes),
                "exact": self.options.exact, "scratch": bool(self.options.drill_url)}, self.settings.secrets())
            return True
        except Exception:  # noqa: BLE001 - e.g. a read-only backup directory
            return False

    def _after_error(self, outcome: Outcome, error: OperatorError) -> DrillFinished:
        removed = self._remove_copy()
        verb = "Drill cancelled" if outcome is Outcome.CANCELLED else "Drill failed"
        where = "; the throwaway server and its files were removed" if removed else ""
        message = f"{verb}{where}" if outcome is Outcome.CANCELLED else f"{verb}: {error.message}{where}"
        updated = False
        if self.manifest and outcome is not Outcome.CANCELLED:
            updated = self._record(outcome, error.message, self._checks, [], [])
        return DrillFinished(outcome, message, error, self.elapsed_ms, str(self.backup), self._server,
                             tuple(self._checks), (), (), self._missing, tuple(self.manifest.get("roles", [])),
                             self._restore_s, removed, False, updated)

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = ()) -> DrillFinished:
        return DrillFinished(outcome, message, error, self.elapsed_ms, str(self.backup), self._server,
                             tuple(self._checks), removed=self._remove_copy())


class _Phase:
    def __init__(self, drill: Drill, phase: str, message: str) -> None:
        self.drill, self.phase, self.message = drill, phase, message

    def __enter__(self) -> "_Phase":
        self.drill.check_cancel()
        self.t0 = time.perf_counter()
        self.drill.emit(DrillPhase(self.phase, self.message))
        return self

    def done(self, message: str) -> None:
        self.drill.emit(DrillPhase(self.phase, message, (time.perf_counter() - self.t0) * 1000))

    def __exit__(self, *exc) -> bool:
        return False

