"""The backup's progress: tables done of total, weighted by size, the running COPY's rows, an ETA."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..events import BackupProgress

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


@dataclass(frozen=True)
class TableSize:
    name: str  # "schema.table", as pg_dump --verbose prints it
    bytes: int
    tuples: int


def human_bytes(n: float) -> str:
    """1536 -> '1.5 kB' (binary multiples, short units)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def table_sizes(conn) -> tuple[int, list[TableSize]]:
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


class Progress:
    """Tables done / total from pg_dump --verbose, weighted by relation size, with an ETA.

    One job: a table is done when the next one starts. Several jobs (``parallel``): a table is done
    when pg_dump reports its item finished, and the rows copied so far count for every running table.
    """

    def __init__(self, tables: list[TableSize] | None = None, *, parallel: bool = False) -> None:
        self.weights: dict[str, int] = {}
        self.tuples: dict[str, int] = {}
        self.total = 1
        self.parallel = parallel
        self.done: list[str] = []
        self.running: list[str] = []
        self.data_start: float | None = None
        self.shown = 0.0  # never move the bar backwards (the COPY counter lags a table switch)
        self._lock = threading.Lock()
        if tables is not None:
            self.set_tables(tables)

    @property
    def started(self) -> list[str]:
        return self.done + self.running

    def set_tables(self, tables: list[TableSize]) -> None:
        """The sizes arrive once pg_dump runs; tables it started before that are counted now."""
        with self._lock:
            self.weights = {t.name: t.bytes + 8192 for t in tables}  # empty tables still count a little
            self.tuples = {t.name: t.tuples for t in tables}
            self.total = sum(self.weights.values()) or 1

    def table_started(self, name: str) -> None:
        with self._lock:
            if not self.parallel and self.running:
                self.done.extend(self.running)
                self.running.clear()
            self.running.append(name)
            if self.data_start is None:
                self.data_start = time.monotonic()

    def table_finished(self, tag: str) -> None:
        """pg_dump's ``finished item N TABLE DATA tag`` (the bare table name): the first running table so named."""
        with self._lock:
            for name in self.running:
                if name == tag or name.endswith("." + tag):
                    self.running.remove(name)
                    self.done.append(name)
                    return

    def event(self, written: int, elapsed: float, copy_tuples: dict[str, int] | None,
              finished: bool = False) -> BackupProgress:
        with self._lock:
            total_tables = len(self.weights)
            if finished:
                return BackupProgress(total_tables, total_tables, None, written, 1.0, elapsed, 0.0)
            weight = sum(self.weights.get(name, 0) for name in self.done)
            for name in self.running:
                copied = (copy_tuples or {}).get(name)
                if copied is not None and self.tuples.get(name):
                    weight += self.weights.get(name, 0) * min(1.0, copied / self.tuples[name])
            fraction = self.shown = max(self.shown, min(0.99, weight / self.total))
            eta = None
            if self.data_start is not None and fraction > 0.01:
                running = time.monotonic() - self.data_start
                if running > 0.5:
                    eta = running / fraction * (1 - fraction)
            current = self.running[-1] if self.running else None
            return BackupProgress(min(len(self.done), total_tables), total_tables, current, written, fraction,
                                  elapsed, eta, tuple(self.running))


class CopyMonitor:
    """Rows copied so far by pg_dump's running COPYs, per table (pg_stat_progress_copy, PostgreSQL 14+)."""

    def __init__(self, conn, app_name: str) -> None:
        """``conn``: the backup's own autocommit connection (None before PostgreSQL 14); not closed here."""
        self.app_name = app_name
        self.conn = conn
        self._next = 0.0
        self._last: dict[str, int] | None = None

    def tuples(self) -> dict[str, int] | None:
        if self.conn is None or time.monotonic() < self._next:
            return self._last
        self._next = time.monotonic() + 0.5
        try:
            rows = self.conn.execute(
                "SELECT n.nspname || '.' || c.relname, p.tuples_processed FROM pg_stat_progress_copy p "
                "JOIN pg_stat_activity a ON a.pid = p.pid JOIN pg_class c ON c.oid = p.relid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.application_name = %s",
                (self.app_name,)).fetchall()
            self._last = {name: int(count) for name, count in rows}
        except Exception:  # progress is best effort; the dump itself reports real failures
            self.conn = None
            self._last = None
        return self._last

    def close(self) -> None:
        self.conn = None
