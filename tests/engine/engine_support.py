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


def migration_backends(db, *, waiting_on_lock: bool = False, application_name: str = APP_NAME) -> list[int]:
    """PIDs of migrate-tui sessions on the database (optionally only those waiting on a lock).

    ``application_name``: "migrate-tui" (the migration), "migrate-tui rollback" (the rollback's DROP), ...
    """
    query = ("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
             + ("AND wait_event_type = 'Lock'" if waiting_on_lock else ""))
    with db.admin() as conn:
        return [r[0] for r in conn.execute(query, (db.name, application_name)).fetchall()]


def wait_event(db, pid: int) -> tuple[str | None, str | None]:
    """(wait_event_type, wait_event) of a backend, e.g. ('Lock', 'relation') or ('Lock', 'transactionid')."""
    row = db.scalar("SELECT ARRAY[wait_event_type, wait_event] FROM pg_stat_activity WHERE pid = %s", (pid,))
    return (row[0], row[1]) if row else (None, None)


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


class QueuedReader:
    """A fresh session that starts a read while a migrate-tui backend waits on a lock, and times it.

    The session connects up front (a connection is not a read). :meth:`start` waits, in a thread,
    until a backend named ``application_name`` waits on a lock (``pg_stat_activity.wait_event_type
    = 'Lock'``), then runs ``query``. While the read runs, a second admin session watches
    ``pg_stat_activity``: ``queued_behind_tool`` turns true if the reader was ever seen waiting on a
    lock with that backend among ``pg_blocking_pids`` -- queued behind the tool's statement.
    :meth:`join` returns how long the read took (seconds, measured around the statement).
    """

    def __init__(self, db, application_name: str, query: str = "SELECT count(*) FROM database_backups") -> None:
        self.db = db
        self.application_name = application_name
        self.query = query
        self.conn = psycopg.connect(db.url, autocommit=True, application_name="test-queued-reader")
        self.pid = self.conn.info.backend_pid
        self.tool_pid: int | None = None
        self.started: float | None = None
        self.ended: float | None = None
        self.error: BaseException | None = None
        self.tool_wait_event: tuple[str | None, str | None] = (None, None)
        self.queued_behind_tool = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> "QueuedReader":
        self._thread = threading.Thread(target=self._read, args=(timeout,), name="test-queued-reader", daemon=True)
        self._thread.start()
        return self

    def _read(self, timeout: float) -> None:
        try:
            self.tool_pid = wait_until(
                lambda: migration_backends(self.db, waiting_on_lock=True, application_name=self.application_name),
                timeout, f"a {self.application_name!r} backend to wait on a lock")[0]
            self.tool_wait_event = wait_event(self.db, self.tool_pid)
            threading.Thread(target=self._watch, name="test-queued-reader-watch", daemon=True).start()
            self.started = time.monotonic()
            self.conn.execute(self.query)
            self.ended = time.monotonic()
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self._done.set()

    def _watch(self) -> None:
        with self.db.admin() as conn:
            while not self._done.is_set():
                row = conn.execute(
                    "SELECT wait_event_type = 'Lock' AND %s = ANY(pg_blocking_pids(pid)) FROM pg_stat_activity "
                    "WHERE pid = %s", (self.tool_pid, self.pid)).fetchone()
                if row and row[0]:
                    self.queued_behind_tool = True
                self._done.wait(0.01)

    def join(self, timeout: float) -> float:
        """Seconds the read took; fails if it has not finished within ``timeout``."""
        assert self._done.wait(timeout), f"the reader was still waiting after {timeout} s"
        assert self.error is None, f"the reader failed: {self.error!r}"
        assert self.started is not None and self.ended is not None
        return self.ended - self.started

    def close(self) -> None:
        """Ends the reader's session (a read still queued is cancelled with it)."""
        if not self.conn.closed:
            with self.db.admin() as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (self.pid,))
            if self._thread is not None:
                self._done.wait(10)
            self.conn.close()

    def __enter__(self) -> "QueuedReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
