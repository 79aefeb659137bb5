"""The guide's Pre-Migration Checklist as side-effect free checks.

Each check returns a :class:`CheckResult` (ok / warning / failure, a one-line
detail and a fix hint). :func:`run_checks` yields them as they complete, so a
screen can fill in rows live; :func:`run_checklist` collects them with a summary.
Only SELECTs and SHOWs are sent to the server; nothing is written anywhere.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Iterator

from . import catalog
from .backup.progress import human_bytes
from .db import ServerFacts, connect, server_facts
from .errors import explain
from .events import CheckCompleted, Checklist, ChecklistFinished, CheckResult, Outcome, Status
from .operation import Emit, Operation
from .options import BackupOptions, DrillOptions
from .pooler import detect
from .pgtools import Locator, PgTool
from .redact import host_list
from .safe_files import describe_dir
from .schema import TABLE, Table
from .settings import Settings

MIN_CRON_SECRET = 32
SLOW_ROUND_TRIP_MS = 250.0


def _ok(key, group, name, detail) -> CheckResult:
    return CheckResult(key, group, name, Status.OK, detail)


def _info(key, group, name, detail, hint) -> CheckResult:
    return CheckResult(key, group, name, Status.INFO, detail, hint)


def _warn(key, group, name, detail, hint) -> CheckResult:
    return CheckResult(key, group, name, Status.WARNING, detail, hint)


def _fail(key, group, name, detail, hint) -> CheckResult:
    return CheckResult(key, group, name, Status.FAILURE, detail, hint)


# --- environment --------------------------------------------------------------------------------

def check_environment(settings: Settings) -> Iterator[CheckResult]:
    g = "Environment"
    if settings.demo:
        yield _ok("env_file", g, ".env file", "not used: the demo database is configured automatically")
    elif settings.env_file:
        yield _ok("env_file", g, ".env file", f"loaded {settings.env_file}")
    else:
        yield _ok("env_file", g, ".env file", "none found; using the process environment")
    yield _ok("database_url", g, "DATABASE_URL", f"valid: {settings.masked_url}")
    # Needed by the backup system after the migration, not by the migration: for later, never blocking
    # (the guide adds them after the migration; the wizard's Post-migration screen can generate CRON_SECRET).
    after = "needed by the backup system after the migration (not by the migration itself)"
    for name in ("CRON_SECRET", "CLOUDFLARE_ACCESS_KEY_ID", "CLOUDFLARE_SECRET_ACCESS_KEY"):
        value = settings.optional.get(name) or ""
        key = name.lower()
        if not value:
            hint = (f"After the migration: `migrate-tui cron-secret` (or the wizard's Post-migration screen) adds a "
                    f"random CRON_SECRET of {MIN_CRON_SECRET} bytes to .env." if name == "CRON_SECRET"
                    else f"Add {name}=<your R2 key> to .env before deploying the backup system.")
            yield _info(key, g, name, f"not set — {after}", hint)
        elif name == "CRON_SECRET" and len(value) < MIN_CRON_SECRET:
            yield _info(key, g, name, f"set, but only {len(value)} characters long (use at least {MIN_CRON_SECRET})",
                        "After the migration: `migrate-tui cron-secret --force` replaces it with a random one.")
        else:
            yield _ok(key, g, name, "set")


# --- connection ---------------------------------------------------------------------------------

def _is_local(host: str) -> bool:
    if host.startswith("/") or host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _round_trip_ms(conn, samples: int = 5) -> float:
    """Median time of one round trip (inside one transaction: only the SELECTs are timed)."""
    times = []
    conn.begin("READ ONLY")
    try:
        for _ in range(samples):
            start = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        conn.execute("ROLLBACK")
    return statistics.median(times)


def check_connection(conn, settings: Settings, facts: ServerFacts, with_backup: bool = True
                     ) -> Iterator[CheckResult]:
    g = "Connection"
    t = settings.target
    host, port = facts.host or t["host"], facts.port or t["port"]
    listed = "" if (t["host"], t["port"]) == (host, port) else \
        f" (the first of {host_list(t['host'], t['port'])} that answered)"
    yield _ok("connection", g, "Connection",
              f"{facts.version} at {host}:{port}/{facts.database} as {facts.user}{listed}; "
              f"server time {facts.server_time}")
    rtt = _round_trip_ms(conn)
    if rtt > SLOW_ROUND_TRIP_MS:
        yield _warn("latency", g, "Round trip", f"{rtt:.1f} ms (median of 5) — slow",
                    "A slow link makes the backup and each step slower; run from a machine near the database.")
    else:
        yield _ok("latency", g, "Round trip", f"{rtt:.1f} ms (median of 5)")
    if facts.ssl:
        yield _ok("ssl", g, "SSL", "in use")
    elif _is_local(host):
        yield _ok("ssl", g, "SSL", "not in use (local connection)")
    else:
        yield _warn("ssl", g, "SSL", "not in use: the password and data cross the network unencrypted",
                    "Add sslmode=require to DATABASE_URL if the server supports SSL.")
    yield check_pooler(conn, settings, facts, with_backup)


def check_pooler(conn, settings: Settings, facts: ServerFacts, with_backup: bool = True) -> CheckResult:
    """The "Direct connection" row: which pooler (if any), why we think so, and what it means for this run.

    Session pooling is a warning (every command works as on a direct connection); transaction pooling (or a
    pooler whose mode could not be told) is a failure when this run backs up — pg_dump must not run
    through it (:mod:`migration.pooler`) — and a warning otherwise (the migration itself is safe)."""
    g, name = "Connection", "Direct connection"
    report = detect(conn, settings, facts.backend_pid)
    if not report.present:
        # (the cancel key is the server process's own, and the URL is not a pooler endpoint)
        return _ok("pooler", g, name, "no connection pooler detected")
    detail = f"{report.label}: {report.reason}. For this run: {report.meaning('check')}"
    if report.dumps_safely:
        return _warn("pooler", g, name, detail, "Nothing needs to change; the provider's direct URL (usually port "
                     "5432, the host without 'pooler') avoids holding pooled server connections during the run.")
    direct = ("Use the direct (non-pooled) URL for this run: your provider's direct connection, usually port "
              "5432 and the host without 'pooler'")
    if with_backup:
        return _fail("pooler", g, name, detail + " — the backup would not be correct",
                     direct + "; or back up through a direct connection yourself and run with --skip-backup (the "
                     "migration itself is safe through transaction pooling).")
    return _warn("pooler", g, name, detail, direct + " for the backup and for the rollback's safety copy.")


# --- permissions --------------------------------------------------------------------------------

def check_permissions(conn, settings: Settings, facts: ServerFacts) -> Iterator[CheckResult]:
    g = "Permissions"
    schema = settings.schema
    exists, can_create = conn.execute(
        "SELECT n.oid IS NOT NULL, coalesce(has_schema_privilege(n.oid, 'CREATE'), false) "
        "FROM (SELECT 1) x LEFT JOIN pg_namespace n ON n.nspname = %s", (schema,)).fetchone()
    if not exists:
        yield _fail("schema_create", g, f"CREATE on schema {schema}", f"schema {schema} does not exist",
                    f"Create it (CREATE SCHEMA {schema};) or pass an existing schema with --schema.")
    elif can_create:
        yield _ok("schema_create", g, f"CREATE on schema {schema}",
                  f"{facts.user} may create tables and indexes in {schema}")
    else:
        yield _fail("schema_create", g, f"CREATE on schema {schema}",
                    f"{facts.user} has no CREATE privilege on schema {schema}",
                    f"Ask an administrator to run: GRANT CREATE ON SCHEMA {schema} TO {facts.user};")
    if facts.in_recovery:
        yield _fail("primary", g, "Primary server", "the server is a hot standby (read-only replica)",
                    "Point DATABASE_URL at the primary server; a standby cannot be changed.")
    else:
        yield _ok("primary", g, "Primary server", "not in recovery: the server accepts writes")
    tx_ro, default_ro = conn.execute(
        "SELECT current_setting('transaction_read_only'), current_setting('default_transaction_read_only')"
    ).fetchone()
    if "on" in (tx_ro, default_ro):
        yield _fail("read_write", g, "Read-write session",
                    "sessions are read-only (default_transaction_read_only = on)",
                    f'Ask an administrator to run: ALTER DATABASE "{facts.database}" SET '
                    f"default_transaction_read_only = off; (or ALTER ROLE {facts.user} ..., or check "
                    "postgresql.conf), then reconnect.")
    else:
        yield _ok("read_write", g, "Read-write session", "transactions are read-write")


# --- table state --------------------------------------------------------------------------------

def check_table(conn, settings: Settings, table: Table = TABLE) -> tuple[list[CheckResult], str]:
    """The table row and the index-name row, plus the state (absent / valid / invalid)."""
    report = catalog.inspect(conn, settings.schema, table)
    return list(_table_rows(report, settings, table)), report.state


def _table_rows(report, settings: Settings, table: Table) -> Iterator[CheckResult]:
    g = "Table"
    qualified = f"{settings.schema}.{table.name}"
    if not report.exists:
        yield _ok("table", g, f"Table {table.name}", f"absent: {qualified} will be created")
    elif not report.valid:
        error = catalog.structure_error(report, settings.schema, table)
        yield _fail("table", g, f"Table {table.name}", error.message, error.hint)
    elif report.valid and report.differences:
        yield _warn("table", g, f"Table {table.name}",
                    "present and usable (migration not needed), with differences: " + "; ".join(report.differences),
                    "Nothing to do for the migration; review the differences if the backup system misbehaves.")
    elif report.valid:
        yield _ok("table", g, f"Table {table.name}", "present and valid: the migration is not needed")
    if report.foreign_index_names:
        taken = "; ".join(f"{ix.name} (used by {ix.table})" for ix in report.foreign_index_names)
        yield _fail("index_names", g, "Index names", f"already taken: {taken}",
                    "Rename or drop those relations (index names are unique per schema), then run again.")
    else:
        yield _ok("index_names", g, "Index names", ", ".join(ix.name for ix in table.indexes) + " are free")


# --- backup readiness ----------------------------------------------------------------------------

def check_pg_dump(locator: Locator, server_major: int | None, fmt: str = "plain") -> tuple[CheckResult, PgTool | None]:
    g = "Backup"
    search = locator.find("pg_dump", server_major)
    if search.chosen is None or search.problem is not None:
        problem = search.problem
        assert problem is not None
        return _fail("pg_dump", g, "pg_dump", problem.message, problem.hint), None
    tool = search.chosen
    versus = f" (server is {server_major})" if server_major else ""
    result = _ok("pg_dump", g, "pg_dump", f"{tool.version} at {tool.path}{versus}")
    if fmt == "custom" and not (tool.path.parent / "pg_restore").is_file():
        restore = locator.find("pg_restore", tool.major)
        if restore.chosen is None:
            return _fail("pg_dump", g, "pg_dump", f"{tool.version} found, but no pg_restore >= {tool.major} to "
                         "verify a custom-format dump", "Install the PostgreSQL client tools or use "
                         "--format plain."), tool
    return result, tool


_UNREADABLE = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
  AND NOT (has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'))
ORDER BY 1
"""


def check_readable(conn, user: str) -> CheckResult:
    """pg_dump must read every table and sequence; one it cannot read makes the backup fail."""
    g, name = "Backup", "Readable by pg_dump"
    rows = [r[0] for r in conn.execute(_UNREADABLE).fetchall()]
    if not rows:
        return _ok("backup_read", g, name, f"{user} can read every table and sequence")
    shown = ", ".join(rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
    return _fail("backup_read", g, name, f"{user} cannot read {len(rows)} relation{'s' if len(rows) != 1 else ''}:"
                 f" {shown} — pg_dump would fail",
                 f"Ask an administrator to run: GRANT pg_read_all_data TO {user}; (PostgreSQL 14+) or GRANT SELECT "
                 "on those relations; or back up as their owner. (--skip-backup skips the backup.)")


def check_backup_dir(backup_dir: Path, trust: bool = False) -> CheckResult:
    """Where the backup goes, resolved (``backups -> /mnt/x``): the operator's own, private, not a system directory."""
    g, name = "Backup", "Backup directory"
    shown, problem, hint = describe_dir(backup_dir, trust=trust)
    if problem is not None:
        return _fail("backup_dir", g, name, f"{shown} {problem}", hint or "")
    created = "" if os.path.lexists(backup_dir) else " (will be created, mode 0700)"
    note = " — accepted with --trust-backup-dir" if trust else ""
    return _ok("backup_dir", g, name, f"{shown}{created}{note}")


def check_disk(backup_dir: Path, database_bytes: int) -> CheckResult:
    """Free space in the backup directory (or its nearest existing parent) against the database size."""
    g, name = "Backup", "Disk space"
    probe = Path(os.path.abspath(backup_dir))
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        return _fail("disk_space", g, name, f"{probe} is not writable", "Choose a writable directory with "
                     "--backup-dir, or fix its permissions.")
    free = shutil.disk_usage(probe).free
    text = f"{human_bytes(free)} free in {backup_dir}; the database is {human_bytes(database_bytes)}"
    if free < database_bytes:
        return _fail("disk_space", g, name, text + " — the backup may not fit",
                     "Free disk space or choose a bigger disk with --backup-dir.")
    if free < 2 * database_bytes:
        return _warn("disk_space", g, name, text + " — little headroom",
                     "The dump is usually smaller than the database, but keep an eye on it; or use --backup-dir.")
    return _ok("disk_space", g, name, text)


# --- the runner ------------------------------------------------------------------------------------

def run_checks(settings: Settings, checklist: Checklist | None = None, *, options: BackupOptions | None = None,
               locator: Locator | None = None, with_backup: bool = True, table: Table = TABLE,
               drill: DrillOptions | None = None) -> Iterator[CheckResult]:
    """Yield each check's result as it completes; ``checklist`` (if given) collects results and facts.
    ``drill``: how the backup will be proved (default: the defaults — a drill below the size limit)."""
    from .preflight_drill import check_backup_format, check_drill

    cl = checklist if checklist is not None else Checklist()
    options = options or BackupOptions()
    drill = drill or DrillOptions()
    locator = locator or Locator()

    def emit(result: CheckResult) -> CheckResult:
        cl.results.append(result)
        return result

    for result in check_environment(settings):
        yield emit(result)
    try:
        conn = connect(settings, application_name="migrate-tui-check")
    except Exception as exc:  # noqa: BLE001 - shown as a failed row
        error = explain(exc, user=settings.target["user"], schema=settings.schema, secrets=settings.secrets())
        yield emit(_fail("connection", "Connection", "Connection", error.message, error.hint))
        if with_backup:
            result, cl.pg_dump = check_pg_dump(locator, None, options.fmt)
            yield emit(result)
        return
    with conn:
        try:
            cl.facts = facts = server_facts(conn)
            for result in check_connection(conn, settings, facts, with_backup):
                yield emit(result)
            for result in check_permissions(conn, settings, facts):
                yield emit(result)
            rows, cl.table_state = check_table(conn, settings, table)
            for result in rows:
                yield emit(result)
            if with_backup:
                result, cl.pg_dump = check_pg_dump(locator, facts.major, options.fmt)
                yield emit(result)
                yield emit(check_readable(conn, facts.user))
                cl.database_bytes = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
                yield emit(check_backup_dir(Path(options.backup_dir), options.trust_dir))
                yield emit(check_disk(Path(options.backup_dir), cl.database_bytes))
                yield emit(check_backup_format(options, cl.database_bytes))
                for result in check_drill(conn, facts.major, cl.database_bytes, options, drill):
                    yield emit(result)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is a failed row
            error = explain(exc, user=cl.facts.user if cl.facts else None, schema=settings.schema,
                            secrets=settings.secrets())
            yield emit(_fail("checklist", "Connection", "Checklist", f"could not finish: {error.message}",
                             error.hint))


def run_checklist(settings: Settings, **options) -> Checklist:
    checklist = Checklist()
    for _ in run_checks(settings, checklist, **options):
        pass
    return checklist


class Preflight(Operation):
    """The checklist as an operation: each result as a CheckCompleted event, then ChecklistFinished
    (SUCCESS when nothing blocks the migration — :attr:`Checklist.blocking`, the one rule)."""

    name = "check"

    def __init__(self, settings: Settings, emit: Emit | None = None, *, options: BackupOptions | None = None,
                 locator: Locator | None = None, with_backup: bool = True, table: Table = TABLE,
                 checks=run_checks, drill: DrillOptions | None = None) -> None:
        super().__init__(settings, emit)
        self.checklist = Checklist()
        self._checks = checks
        self._kwargs = dict(options=options, locator=locator, with_backup=with_backup, table=table)
        if drill is not None:  # a checks function of the tests may not take it
            self._kwargs["drill"] = drill

    def _perform(self) -> ChecklistFinished:
        for result in self._checks(self.settings, self.checklist, **self._kwargs):
            self.emit(CheckCompleted(result))
            self.check_cancel()
        outcome = Outcome.FAILED if self.checklist.blocking else Outcome.SUCCESS
        return self._ended(outcome, self.checklist.summary())

    def _ended(self, outcome: Outcome, message: str, error=None, details: tuple[str, ...] = ()) -> ChecklistFinished:
        return ChecklistFinished(outcome, message, error, self.elapsed_ms, self.checklist)
