"""A hostile database and a witness for it: a private server that logs every statement.

- :class:`HostileServer` is a throwaway PostgreSQL (18 from the embedded wheel, 15 from the system)
  with ``log_statement=all``, a superuser *operator* role (the suite's canary password, as operators
  run the tool with their most privileged role) and an unprivileged *attacker* role.
- :class:`ServerLog` reads what the server logged. The log is ``jsonlog`` written by the logging
  collector, not the plain ``server.log`` with a ``log_line_prefix``: backends write their stderr
  in pieces, and a long statement of pg_dump was seen cut in two by another session's line there;
  the collector reassembles each message, and each JSON line carries the ``application_name``.
- :func:`tool_statements` keeps the statements of the tool's own sessions (application_name
  ``migrate-tui…``) and leaves out the third-party tools it runs (pg_dump, psql): those pin their
  own ``search_path`` (``SELECT pg_catalog.set_config('search_path', '', false)``) and are
  recognised by it, since the restore's psql shares its application_name with the restore's own
  connections.
- :func:`unpinned` lists the tool's statements that ran outside a transaction opened with
  ``BEGIN; SET LOCAL search_path = pg_catalog, pg_temp``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from cli.cli_support import CliResult
from harness import CANARY

from migration.pgserver import LocalServer, embedded_bin_dir, system_bin_dir

OPERATOR = "hostile_operator"  # the operator: a superuser, password CANARY
ATTACKER = "hostile_attacker"  # an ordinary role with CREATE on schema public
TOOL_APPLICATION_PREFIX = "migrate-tui"
TEST_APPLICATION = "hostile-test"  # this test's own sessions
THIRD_PARTY_PIN = "set_config('search_path', '', false)"  # pg_dump's first statement (and its dumps')
HIT_PREFIX = "hostile-hit: "  # what an attacker function writes to the server log when it runs
# BEGIN, the pin at once, then (in the same round trip) only timeouts the transaction sets for itself
# (migration.db.PinnedConnection.begin(local=...)): constants, which resolve no function or operator.
PIN = re.compile(r"^BEGIN(?: (?:ISOLATION LEVEL [A-Z ]+?|READ ONLY|READ WRITE))*; "
                 r"SET LOCAL search_path = pg_catalog, pg_temp"
                 r"(?:; SET LOCAL (?:idle_in_transaction_session_timeout|transaction_timeout|statement_timeout"
                 r"|lock_timeout) = '[0-9]+(?:ms)?')*$")
ENDS = ("COMMIT", "ROLLBACK", "END", "ABORT")
ROWS = ("INSERT INTO public.database_backups (filename, s3_key, file_size) "
        "SELECT 'backup-' || i || '.sql', 'backups/backup-' || i || '.sql', i * 1000 FROM generate_series(1, 3) i")
ROW_COUNT = 3
KINDS = {"r": "table", "v": "view", "m": "materialized view", "f": "foreign table", "p": "partitioned table",
         "S": "sequence"}

LOG_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off",
                "logging_collector=on", "log_destination=jsonlog", "log_directory=log",
                "log_filename=statements.log", "log_rotation_age=0", "log_rotation_size=0",
                "log_file_mode=0644", "log_statement=all", "log_min_messages=warning")


@dataclass(frozen=True)
class LogEntry:
    pid: int
    app: str
    dbname: str
    user: str
    severity: str
    message: str
    detail: str

    @property
    def statement(self) -> str | None:
        """The statement text when this entry is log_statement's ("statement: …" / "execute …: …")."""
        if self.severity != "LOG":
            return None
        if self.message.startswith("statement: "):
            return self.message[len("statement: "):]
        if self.message.startswith("execute "):
            return self.message.split(": ", 1)[1] if ": " in self.message else None
        return None

    @property
    def hit(self) -> str | None:
        """The attacker object that ran, when this entry is an attacker function's trace."""
        return self.message[len(HIT_PREFIX):] if self.message.startswith(HIT_PREFIX) else None


class ServerLog:
    """The server's jsonlog, read from a byte offset (see :meth:`mark`)."""

    def __init__(self, path: Path, admin_url: str) -> None:
        self.path = path
        self.admin_url = admin_url

    def sync(self) -> None:
        """Wait until everything logged before now is in the file (the collector writes asynchronously).

        A token logged now travels the same pipe after every earlier message of every session.
        """
        token = f"hostile-sync {uuid.uuid4().hex}"
        before = self.path.stat().st_size if self.path.exists() else 0
        with psycopg.connect(self.admin_url, autocommit=True, application_name=TEST_APPLICATION) as conn:
            conn.execute(sql.SQL("DO {}").format(sql.Literal(f"BEGIN RAISE LOG '{token}'; END")))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.path.exists():
                with open(self.path, "rb") as f:
                    f.seek(before)
                    if token.encode() in f.read():
                        return
            time.sleep(0.02)
        raise AssertionError(f"the server log {self.path} did not show {token!r} within 20 s")

    def mark(self) -> int:
        self.sync()
        return self.path.stat().st_size

    def read(self, since: int = 0, dbname: str | None = None) -> list[LogEntry]:
        self.sync()
        with open(self.path, "rb") as f:
            f.seek(since)
            data = f.read()
        entries = []
        for line in data.decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            entry = LogEntry(int(record.get("pid", 0)), record.get("application_name", ""),
                             record.get("dbname", ""), record.get("user", ""), record.get("error_severity", ""),
                             record.get("message", ""), record.get("detail", ""))
            if dbname is None or entry.dbname == dbname:
                entries.append(entry)
        return entries


def tool_sessions(entries: list[LogEntry]) -> dict[int, list[LogEntry]]:
    """The tool's own sessions (pid → its statements in order), without pg_dump's and psql's."""
    sessions: dict[int, list[LogEntry]] = {}
    third_party: set[int] = set()
    for entry in entries:
        text = entry.statement
        if text is None or not entry.app.startswith(TOOL_APPLICATION_PREFIX):
            continue
        if THIRD_PARTY_PIN in text:
            third_party.add(entry.pid)
        sessions.setdefault(entry.pid, []).append(entry)
    return {pid: stmts for pid, stmts in sessions.items() if pid not in third_party}


def tool_statements(entries: list[LogEntry]) -> list[str]:
    return [e.statement for stmts in tool_sessions(entries).values() for e in stmts if e.statement is not None]


def tool_applications(entries: list[LogEntry]) -> set[str]:
    return {stmts[0].app for stmts in tool_sessions(entries).values()}


def unpinned(entries: list[LogEntry]) -> list[str]:
    """The tool's statements that ran outside a transaction whose first statement pinned search_path."""
    found = []
    for pid, stmts in tool_sessions(entries).items():
        pinned = False
        for entry in stmts:
            text = " ".join(entry.statement.split())
            word = text.split(" ", 1)[0].rstrip(";").upper() if text else ""
            if word in ("BEGIN", "START"):
                pinned = bool(PIN.match(text))
                if not pinned:
                    found.append(f"[{entry.app} pid {pid}] a transaction without the pin: {text[:160]}")
            elif word in ENDS:
                pinned = False
            elif not pinned:
                found.append(f"[{entry.app} pid {pid}] outside a pinned transaction: {text[:160]}")
    return found


def unknown_sessions(entries: list[LogEntry]) -> set[str]:
    """application_names of sessions that are neither the tool's nor this test's: statements the capture
    would miss (a connection of the tool without its application_name, say)."""
    return {f"{e.app!r} ({e.user})" for e in entries if e.statement is not None
            and not e.app.startswith((TOOL_APPLICATION_PREFIX, TEST_APPLICATION))}


def hits(entries: list[LogEntry]) -> list[str]:
    """Every attacker object that ran (its trace survives read-only and rolled-back transactions)."""
    return [e.hit for e in entries if e.hit is not None]


class HostileServer:
    """A private server of one PostgreSQL version that logs every statement (see the module doc).

    jsonlog names its file ``statements.json`` (from ``log_filename=statements.log``)."""

    def __init__(self, version: str) -> None:
        bin_dir = embedded_bin_dir() if version == "18" else system_bin_dir(int(version))
        if bin_dir is None:
            raise LookupError(f"PostgreSQL {version} binaries not found")
        self.version = version
        self.local = LocalServer(bin_dir, settings=LOG_SETTINGS)
        self.local.start()
        try:
            self.attacker_password = secrets.token_urlsafe(12)
            with self.admin() as conn:
                conn.execute("SET log_statement = 'none'")  # no password in the log
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier(OPERATOR), sql.Literal(CANARY)))
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER PASSWORD {}").format(
                    sql.Identifier(ATTACKER), sql.Literal(self.attacker_password)))
            self.log = ServerLog(self.local.data_dir / "log" / "statements.json", self.local.url())
        except BaseException:
            self.local.cleanup()
            raise

    @property
    def bin_dir(self) -> Path:
        return self.local.bin_dir

    def url(self, dbname: str, user: str = OPERATOR, password: str | None = CANARY) -> str:
        return self.local.url(dbname, user, password)

    def admin(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        """A superuser connection of the test itself: its search_path is pinned for the whole session, so
        the attacker's objects never run on the test's own queries."""
        return psycopg.connect(self.local.url(dbname), autocommit=True, application_name=TEST_APPLICATION,
                               options="-c search_path=pg_catalog,pg_temp", **kwargs)

    def create_database(self, template: str | None = None) -> str:
        name = "h_" + uuid.uuid4().hex[:12]
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}{}").format(
                sql.Identifier(name),
                sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template)) if template
                else sql.SQL("")))
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def table_facts(self, dbname: str) -> dict:
        """What public.database_backups is now: its kind, whether it is the guide's table, its rows."""
        from migration.schema import TABLE

        with self.admin(dbname) as conn:
            row = conn.execute(
                "SELECT c.oid, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relname = 'database_backups'").fetchone()
            if row is None:
                return {"kind": None, "valid": False, "rows": None}
            oid, relkind = row
            if relkind != "r":
                return {"kind": KINDS.get(relkind, relkind), "valid": False, "rows": None}
            columns = {r[0] for r in conn.execute(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                (oid,))}
            indexes = {r[0] for r in conn.execute(
                "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = %s", (oid,))}
            rows = conn.execute("SELECT count(*) FROM public.database_backups").fetchone()[0]
        valid = columns == set(TABLE.column_names) and {ix.name for ix in TABLE.indexes} <= indexes
        return {"kind": "table", "valid": valid, "rows": int(rows)}

    def is_superuser(self, role: str = ATTACKER) -> bool:
        with self.admin() as conn:
            return bool(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0])

    def demote(self, role: str = ATTACKER) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(role)))

    def cleanup(self) -> None:
        self.local.cleanup()



# --- every command, as an operator runs them -----------------------------------------------------------

@dataclass
class Exercise:
    """What :func:`exercise` ran and what the server logged meanwhile."""

    results: dict[str, CliResult]
    seconds: dict[str, float]
    states: dict[str, dict]  # table_facts after each command
    overview: object  # the wizard's TargetOverview
    wizard_text: str
    entries: list[LogEntry]
    copy: Path | None  # the rollback's safety copy

    def statements(self) -> list[str]:
        return tool_statements(self.entries)


async def wizard_target(settings, audit_log: Path, *, rollback: bool = False) -> tuple:
    """The wizard (Pilot) once its Target screen has read the server: the overview and the screen's text;
    with ``rollback``, also the text of the Rollback screen (key d) once its preview arrived."""
    from tui.app import MigrateApp

    app = MigrateApp(settings=settings, audit_log=audit_log)
    async with app.run_test(size=(110, 40)) as pilot:
        await _until(app, pilot, lambda: app.target_screen.overview is not None, "the Target screen to read the server")
        found = (app.target_screen.overview, _screen_text(app))
        if not rollback:
            return found
        await pilot.press("d")
        await _until(app, pilot, lambda: type(app.screen).__name__ == "RollbackScreen", "the Rollback screen")
        for _ in range(3):  # its preview (or the error reading it) arrives from a worker
            await app.workers.wait_for_complete()
            await pilot.pause()
        return (*found, _screen_text(app))


async def _until(app, pilot, condition, what: str) -> None:
    for _ in range(400):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if condition():
            return
    raise AssertionError(f"the wizard never got to {what}")


def _screen_text(app) -> str:
    import io

    from rich.console import Console

    console = Console(width=110, height=40, file=io.StringIO(), record=True, force_terminal=True)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def operator_settings(hs: HostileServer, dbname: str):
    from migration.settings import load_settings

    return load_settings(database_url=hs.url(dbname), environ={})


def exercise(hs: HostileServer, dbname: str, workdir: Path) -> Exercise:
    """Every command of the tool on one database, in an operator's order, through the real CLI (and the
    wizard's Target screen through Pilot), with every statement logged meanwhile:

    check → run --yes (checklist, backup, migration) → backup (pg_dump waiting for a lock another session
    holds: the progress is polled) → wizard Target → rollback (preview) →
    rollback --yes while another session holds a lock on the table (the lock-wait paths: blockers read,
    lock timeout) → rollback --yes (safety copy, DROP, verification) → rollback --restore COPY.
    Exit codes are the caller's to judge.
    """
    import asyncio

    from cli.cli_support import cli_env, finish, run_cli, start_cli
    from engine.engine_support import wait_until

    env = cli_env(hs.url(dbname), MIGRATE_AUDIT_LOG=str(workdir / "audit.log"))
    start = hs.log.mark()
    results: dict[str, CliResult] = {}

    seconds: dict[str, float] = {}
    states: dict[str, dict] = {}

    def cli(key: str, *args: str) -> None:
        t0 = time.monotonic()
        results[key] = run_cli(*args, cwd=workdir, env=env, timeout=120)
        seconds[key] = round(time.monotonic() - t0, 2)
        states[key] = hs.table_facts(dbname)

    cli("check", "check")
    cli("run", "run", "--yes")
    if hs.table_facts(dbname)["valid"]:  # rows, so that what reads rows (count, fingerprint, copy, restore) runs
        with hs.admin(dbname) as conn:
            conn.execute(ROWS)
    with hs.admin(dbname) as blocker:
        blocker.execute("BEGIN")  # pg_dump waits for this lock: the progress is polled meanwhile
        blocker.execute("LOCK TABLE public.database_backups IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        proc = start_cli("backup", cwd=workdir, env=env)
        try:
            wait_until(lambda: _polled_progress(hs.log.read(start, dbname)), 60,
                       "the backup to read pg_dump's progress")
        finally:
            blocker.execute("ROLLBACK")
        results["backup"] = finish(proc, 120)
        seconds["backup"] = round(time.monotonic() - t0, 2)
        states["backup"] = hs.table_facts(dbname)
    t0 = time.monotonic()
    overview, text = asyncio.run(wizard_target(operator_settings(hs, dbname), workdir / "audit.log"))
    seconds["wizard"] = round(time.monotonic() - t0, 2)
    cli("rollback preview", "rollback")
    with hs.admin(dbname) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE public.database_backups IN ACCESS SHARE MODE")
        cli("rollback blocked", "rollback", "--yes", "--no-table-backup", "--lock-timeout", "400", "--retries", "0")
        blocker.execute("ROLLBACK")
    cli("rollback", "rollback", "--yes")
    copies = sorted((workdir / "backups").glob("*before-rollback*.sql"))
    copy = copies[-1] if copies else None
    if copy is not None:
        cli("restore", "rollback", "--restore", str(copy))
    entries = hs.log.read(start, dbname)
    return Exercise(results, seconds, states, overview, text, entries, copy)


def _polled_progress(entries: list[LogEntry]) -> bool:
    """The backup's own session has read pg_stat_progress_copy (while pg_dump waits for a lock)."""
    return any("pg_stat_progress_copy" in (e.statement or "") for e in entries
               if e.app == "migrate-tui-backup-inspect")
