"""Helpers for the rollback tests: a migrated table with rows, sessions holding locks, event capture."""

from __future__ import annotations

import threading
import time

import psycopg

from migration.events import Outcome
from migration.options import RollbackOptions
from migration.rollback import Rollback
from migration.runner import Migration

ROWS = [
    ("daily-2026-11-01.sql.gz", "backups/daily-2026-11-01.sql.gz", 1024, '{"tables": 12}'),
    ("weekly-2026-W44.sql.gz", "backups/line\nbreak and\ttab", 2048, None),
    ("manual-ünïcode.sql.gz", "backups/manual.sql.gz", 4096, '{"note": "quote \' and \\\\ backslash"}'),
]


def migrate_with_rows(db, settings, rows=ROWS) -> list[tuple]:
    assert Migration(settings, lambda e: None).run().outcome is Outcome.SUCCESS
    with db.app() as conn:
        for row in rows:
            conn.execute("INSERT INTO database_backups (filename, s3_key, file_size, metadata) "
                         "VALUES (%s, %s, %s, %s)", row)
    return table_rows(db)


def table_rows(db) -> list[tuple]:
    with db.admin() as conn:
        return conn.execute("SELECT * FROM database_backups ORDER BY id").fetchall()


def catalog_has(db, name: str) -> bool:
    return bool(db.scalar("SELECT to_regclass(%s) IS NOT NULL", (name,)))


class Recorder:
    """Collects events (thread-safe) and lets a test react to one synchronously or wait for it."""

    def __init__(self) -> None:
        self.events: list = []
        self.times: list[float] = []
        self._cond = threading.Condition()
        self.hooks: list = []

    def __call__(self, event) -> None:
        with self._cond:
            self.events.append(event)
            self.times.append(time.monotonic())
            self._cond.notify_all()
        for hook in list(self.hooks):
            hook(event)

    def of(self, kind) -> list:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, predicate, timeout: float = 30.0):
        with self._cond:
            ok = self._cond.wait_for(lambda: any(predicate(e) for e in self.events), timeout)
        assert ok, f"no matching event within {timeout} s: {[type(e).__name__ for e in self.events]}"
        return next(e for e in self.events if predicate(e))

    def names(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


class Holder:
    """Another session holding ACCESS SHARE on the table in an open transaction."""

    def __init__(self, db, query: str = "SELECT count(*) FROM database_backups",
                 application_name: str = "test-holder") -> None:
        self.conn = psycopg.connect(db.url, autocommit=True, application_name=application_name)
        self.conn.execute("BEGIN")
        self.conn.execute(query)
        self.pid = self.conn.info.backend_pid

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.execute("COMMIT")
            self.conn.close()

    def __enter__(self) -> "Holder":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def rollback(settings, tmp_path, recorder=None, **options):
    recorder = recorder or Recorder()
    options.setdefault("backup_dir", tmp_path / "backups")
    engine = Rollback(settings, recorder, RollbackOptions(**options))
    return engine, recorder
