"""Shared helpers for the engine tests: run the runner, read the catalog, block a step.

Imported by tests/engine/* (as ``engine_support``) and tests/cli/* (as ``engine.engine_support``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psycopg

from migration.events import Event, RunFinished
from migration.runner import Migration

APP_NAME = "migrate-tui"


def run(settings) -> tuple[RunFinished, list[Event]]:
    events: list[Event] = []
    result = Migration(settings, events.append).run()
    return result, events


def catalog_snapshot(db) -> dict[str, list[tuple]]:
    """Every user relation, column, index and constraint of the database, for before/after equality."""
    with db.admin() as conn:
        return {
            "relations": conn.execute(
                "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
                "ORDER BY 1, 2").fetchall(),
            "columns": conn.execute(
                "SELECT table_schema, table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                "ORDER BY 1, 2, ordinal_position").fetchall(),
            "indexes": conn.execute(
                "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3").fetchall(),
            "constraints": conn.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) "
                "ORDER BY 1, 2").fetchall(),
        }


def sequences(db) -> list[str]:
    with db.admin() as conn:
        return [r[0] for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'S' AND relname LIKE 'database_backups%' ORDER BY 1"
        ).fetchall()]


def migration_backends(db, *, waiting_on_lock: bool = False) -> list[int]:
    """PIDs of migrate-tui sessions on the database (optionally only those waiting on a lock)."""
    query = ("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
             + ("AND wait_event_type = 'Lock'" if waiting_on_lock else ""))
    with db.admin() as conn:
        return [r[0] for r in conn.execute(query, (db.name, APP_NAME)).fetchall()]


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll ``predicate`` (a database condition, no event to wait on) until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait_for_blocked_migration(db, timeout: float = 30.0) -> int:
    """The PID of the migration's backend once it waits on a lock."""
    pids = wait_until(lambda: migration_backends(db, waiting_on_lock=True), timeout, "the migration to block")
    assert len(pids) == 1, pids
    return pids[0]


class TableBlocker:
    """An admin session holding an uncommitted CREATE TABLE database_backups.

    The migration's existence check does not see it (not committed), so the
    migration goes on and its own CREATE TABLE waits on this transaction.
    Leaving the block rolls the admin transaction back.
    """

    def __init__(self, db, schema: str = "public") -> None:
        self.db = db
        self.schema = schema
        self.conn: psycopg.Connection | None = None

    def __enter__(self) -> "TableBlocker":
        self.conn = self.db.admin()
        self.conn.execute("BEGIN")
        self.conn.execute(psycopg.sql.SQL("CREATE TABLE {}.database_backups (id int)").format(
            psycopg.sql.Identifier(self.schema)))
        return self

    def release(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.execute("ROLLBACK")
            self.conn.close()
        self.conn = None

    def __exit__(self, *exc) -> None:
        self.release()


class AdvisoryLockHolder:
    """A second session holding the migration's advisory lock inside an open transaction."""

    def __init__(self, db, key: int) -> None:
        self.db = db
        self.key = key
        self.conn: psycopg.Connection | None = None

    def __enter__(self) -> "AdvisoryLockHolder":
        self.conn = self.db.admin()
        self.conn.execute("BEGIN")
        assert self.conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (self.key,)).fetchone()[0]
        return self

    def release(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.execute("ROLLBACK")
            self.conn.close()
        self.conn = None

    def __exit__(self, *exc) -> None:
        self.release()


@dataclass
class ThreadedRun:
    """A Migration running in a thread, with its events and a signal per event kind."""

    migration: Migration
    events: list[Event] = field(default_factory=list)
    result: RunFinished | None = None
    error: BaseException | None = None
    _seen: dict[type, threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, settings) -> "ThreadedRun":
        holder: dict[str, ThreadedRun] = {}
        runner = cls(Migration(settings, lambda e: holder["run"]._record(e)))
        holder["run"] = runner
        runner.thread = threading.Thread(target=runner._body, daemon=True)
        runner.thread.start()
        return runner

    def _record(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
            self._signal(type(event)).set()

    def _signal(self, kind: type) -> threading.Event:
        return self._seen.setdefault(kind, threading.Event())

    def _body(self) -> None:
        try:
            self.result = self.migration.run()
        except BaseException as exc:  # the runner must never raise; the test asserts it
            self.error = exc

    def wait_for(self, kind: type, timeout: float = 30.0) -> None:
        with self._lock:
            signal = self._signal(kind)
        assert signal.wait(timeout), f"no {kind.__name__} event within {timeout} s"

    def join(self, timeout: float = 60.0) -> RunFinished:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the migration did not finish"
        assert self.error is None, f"Migration.run() raised {self.error!r}"
        assert self.result is not None
        return self.result
