"""Record what the real engine emits, for the wizard's snapshots: ``python tests/tui/recorded/record.py``.

Starts a throwaway PostgreSQL 18 (tests/harness.py), makes a database ``shop`` owned by a role
``shop_app`` (whose password is the suite's canary) with a few application tables, and runs every
scenario the snapshots show on it — the real Preflight, Backup, Migration, Verify and Rollback, the
cancelled ones included (cancelled while they wait on a lock another session holds). Their events,
normalized (tests/tui/recorded/serial.py: the named volatile fields only), go to events.json beside
this file. tests/tui/test_recorded_events.py records them again and compares every field.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "events.json"
if __name__ == "__main__":  # run as a script: the suite's helpers and the package, as pytest finds them
    sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from harness import CANARY, Server, start_server  # noqa: E402
from recorded.serial import normalize  # noqa: E402

DATABASE, ROLE = "shop", "shop_app"
BACKUPS = Path("backups")  # relative to the working directory: the same in every run


class Shop:
    """The database the scenarios run on, and sessions on it as its owner or as the administrator."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def create(self) -> "Shop":
        with self.server.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
            conn.execute(sql.SQL(("ALTER" if exists else "CREATE") + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(CANARY)))
            # template0: never changed (template1 grows as autovacuum visits it): the same size on every server
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                sql.Identifier(DATABASE), sql.Identifier(ROLE)))
        self.admin("ALTER SCHEMA public OWNER TO shop_app")
        self.app("CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)",
                 "INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 200) g",
                 "CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, total numeric)",
                 "INSERT INTO orders (customer_id, total) SELECT 1 + g % 200, g * 1.5 FROM generate_series(1, 2000) g",
                 # no autovacuum run adding its maps at a random moment: the database's size is the same every run
                 "ALTER TABLE customers SET (autovacuum_enabled = false)",
                 "ALTER TABLE orders SET (autovacuum_enabled = false)")
        return self

    def drop(self) -> None:
        self.server.drop_database(DATABASE)
        with self.server.admin() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ROLE)))

    @property
    def url(self) -> str:
        return self.server.url(DATABASE, ROLE, CANARY)

    @property
    def port(self) -> int:
        return urlsplit(self.url).port

    def connect(self, admin: bool = False, **kwargs) -> psycopg.Connection:
        return self.server.admin(DATABASE) if admin else psycopg.connect(self.url, autocommit=True, **kwargs)

    def admin(self, *statements: str) -> None:
        with self.connect(admin=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def app(self, *statements: str) -> None:
        with self.connect() as conn:
            for statement in statements:
                conn.execute(statement)

    def waiting(self, application_name: str) -> bool:
        with self.connect(admin=True) as conn:
            return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND application_name LIKE %s AND wait_event_type = 'Lock'",
                                     (application_name,)).fetchone()[0])

    @contextmanager
    def held(self, statement: str, admin: bool = True, application_name: str = "") -> Iterator[None]:
        """Another session runs ``statement`` in a transaction it keeps open (holding its locks)."""
        conn = self.server.admin(DATABASE) if admin else psycopg.connect(self.url, autocommit=True)
        with conn:
            if application_name:
                conn.execute(sql.SQL("SET application_name = {}").format(sql.Literal(application_name)))
            conn.execute("BEGIN")
            conn.execute(statement)
            try:
                yield
            finally:
                conn.execute("ROLLBACK")


def settings(shop: Shop):
    from migration.settings import load_settings

    return load_settings(database_url=shop.url, environ={})


def until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def events_of(build: Callable[[Callable], Any]) -> list:
    events: list = []
    build(events.append).run()
    return events


def cancelled(build: Callable[[Callable], Any], blocked: Callable[[Any], bool], what: str) -> dict:
    """Run an operation in a thread, cancel it once ``blocked(events so far)``; the events and how many came first."""
    events: list = []
    operation = build(events.append)
    thread = threading.Thread(target=operation.run, name="recorder-operation")
    thread.start()
    try:
        until(lambda: events and blocked(events), what)
        before = len(normalize(events))
    finally:
        operation.cancel()
        thread.join(60)
    assert not thread.is_alive(), f"{what}: the operation did not end after cancel()"
    return {"events": normalize(events), "cancelled_after": before}


def scenarios(shop: Shop) -> Iterator[tuple[str, Any]]:
    """(name, what to record) for each scenario, in an order where each leaves the database as the next needs it."""
    from migration.backup.dump import Backup
    from migration.options import BackupOptions, RollbackOptions
    from migration.overview import describe_target
    from migration.pgserver import free_port
    from migration.preflight import Preflight
    from migration.rollback.drop import Rollback
    from migration.runner import Migration
    from migration.settings import load_settings
    from migration.verify import Verify

    s = settings(shop)
    options = BackupOptions(backup_dir=BACKUPS)

    def checklist() -> dict:
        return {"events": normalize(events_of(lambda emit: Preflight(s, emit, options=options)))}

    def migration() -> dict:
        return {"events": normalize(events_of(lambda emit: Migration(s, emit)))}

    def overview() -> dict:
        return {"events": normalize([describe_target(s)])}

    yield "overview-absent", overview()
    closed = load_settings(database_url=shop.url.replace(f":{shop.port}/", f":{free_port()}/"), environ={})
    yield "overview-unreachable", {"events": normalize([describe_target(closed)])}  # nothing listens there
    shop.admin("ALTER SCHEMA public OWNER TO postgres", "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    yield "checklist-failure", checklist()
    shop.admin("ALTER SCHEMA public OWNER TO shop_app")

    yield "backup-verified", {"events": normalize(events_of(
        lambda emit: Backup(s, emit, options, progress_interval_s=3600)))}  # no timer: one progress, at the end
    with shop.held("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"):  # pg_dump waits to lock it
        yield "backup-cancelled", cancelled(
            lambda emit: Backup(s, emit, options, progress_interval_s=0.1),
            lambda events: shop.waiting("migrate-tui-backup-%") and type(events[-1]).__name__ == "BackupProgress",
            "pg_dump's lock wait, reported")

    yield "migration-success", migration()
    yield "verify-verified", {"events": normalize(events_of(lambda emit: Verify(s, emit)))}
    yield "migration-not-needed", migration()
    shop.app("ALTER TABLE database_backups ALTER COLUMN status DROP DEFAULT")
    yield "verify-difference", {"events": normalize(events_of(lambda emit: Verify(s, emit)))}
    shop.app("DROP TABLE database_backups")
    migration()
    shop.app("ALTER TABLE database_backups ADD COLUMN note text")
    yield "checklist-warning", checklist()
    shop.app("ALTER TABLE database_backups DROP COLUMN note")

    shop.app("INSERT INTO database_backups (filename, s3_key, file_size, status, created_at) SELECT "
             "'backup-' || g || '.sql.gz', 'shop/backup-' || g || '.sql.gz', 1048576 * g, 'completed', "
             "'2026-01-15 03:00:00' "
             "FROM generate_series(1, 3) g")
    # Two dependents the DROP ... CASCADE also removes (kept in the safety copy), as the wizard's dialog confirms them.
    shop.app("CREATE TABLE restores (id serial PRIMARY KEY, backup_id int "
             "CONSTRAINT restores_backup_id_fkey REFERENCES database_backups)",
             "CREATE VIEW recent_backups AS SELECT id, filename, created_at FROM database_backups "
             "WHERE status = 'completed'")
    rollback = RollbackOptions(lock_timeout_ms=1500, retries=0, backup_dir=BACKUPS)
    with shop.held("LOCK TABLE public.database_backups IN ACCESS SHARE MODE", application_name="ops-psql"), \
            shop.held("SELECT count(*) FROM database_backups", admin=False, application_name="report-job"):
        yield "rollback-lock-timeout", {"events": normalize(events_of(
            lambda emit: Rollback(s, emit, rollback, cascade=True)))}
    shop.app("DROP VIEW recent_backups", "DROP TABLE restores")

    shop.app("ALTER TABLE database_backups DROP COLUMN metadata")
    yield "overview-invalid", overview()
    yield "migration-invalid", migration()
    shop.app("DROP TABLE database_backups", "CREATE TABLE other_things (status text)",
             "CREATE INDEX idx_database_backups_status ON other_things (status)")
    yield "overview-clash", overview()
    yield "migration-clash", migration()
    shop.app("DROP TABLE other_things")

    # Another session's uncommitted CREATE TABLE of the same name: the migration's CREATE TABLE waits on it (and
    # is cancelled well within the default 5 s lock timeout the snapshots show).
    with shop.held("CREATE TABLE public.database_backups (id int)"):
        yield "migration-cancelled", cancelled(lambda emit: Migration(s, emit),
                                               lambda events: shop.waiting("migrate-tui"), "CREATE TABLE's lock wait")


def record(server: Server, workdir: Path) -> dict[str, Any]:
    """Every scenario on a fresh ``shop`` database of ``server``, run from ``workdir`` (backups land there)."""
    shop = Shop(server).create()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        return dict(scenarios(shop))
    finally:
        os.chdir(cwd)
        shop.drop()


def dump(recorded: dict[str, Any]) -> str:
    return json.dumps(recorded, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> None:
    import tempfile

    server = start_server("18")
    try:
        with tempfile.TemporaryDirectory(prefix="record-events-") as workdir:
            FIXTURE.write_text(dump(record(server, Path(workdir))))
    finally:
        server.stop()
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
