"""Restoring a rollback's safety copy: ``psql --single-transaction -f COPY``, then the catalog read back.

The same thing the printed restore command does, for when the operator has no
DATABASE_URL in a shell (the wizard, the demo database). The password goes to
psql through a 0600 passfile (:func:`migration.pgtools.child_env`), never argv.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import catalog, pgtools
from .db import connect, server_facts
from .errors import MigrateError, OperatorError, explain
from .rollback_copy import copy_rows, find_pg_dump
from .schema import TABLE, Table
from .settings import Settings, redact

APPLICATION_NAME = "migrate-tui restore"


@dataclass(frozen=True)
class RestoreResult:
    ok: bool
    message: str
    error: OperatorError | None = None
    rows: int = 0
    path: str = ""
    elapsed_ms: float = 0.0
    outcome: str = "failed"  # restored, failed, cancelled


class Restore:
    def __init__(self, settings: Settings, path: str | Path, table: Table = TABLE) -> None:
        self.settings = settings
        self.path = Path(path)
        self.table = table
        self._cancel = threading.Event()
        self._proc: subprocess.Popen | None = None

    def cancel(self) -> None:
        self._cancel.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # --single-transaction: nothing of the restore is kept

    def run(self) -> RestoreResult:
        t0 = time.perf_counter()
        s = self.settings
        try:
            text = self._read_copy()
            expected = copy_rows(text, s.schema, self.table.name)
            with connect(s, application_name=APPLICATION_NAME) as conn:
                facts = server_facts(conn)
                existing = catalog.relation(conn, s.schema, self.table)
                if existing is not None:
                    raise MigrateError(OperatorError(
                        f"{existing.kind.capitalize()} {s.schema}.{self.table.name} already exists; nothing was "
                        "restored.",
                        "The safety copy recreates the table: restore it only after a rollback (or drop the "
                        "table first with migrate-tui rollback)."))
            self._psql(facts.major)
            with connect(s, application_name=APPLICATION_NAME) as conn:
                report = catalog.inspect(conn, s.schema, self.table)
                rows = conn.execute(self.table_count()).fetchone()[0] if report.exists else 0
            if not report.valid or (expected is not None and rows != expected):
                raise MigrateError(OperatorError(
                    f"After the restore the table does not match the copy ({rows} rows, expected {expected}; "
                    + ("; ".join(report.problems) or "structure ok") + ").",
                    "Check the copy file and the psql output, then restore again."))
            return RestoreResult(True, f"Table {s.schema}.{self.table.name} restored from the safety copy: "
                                 f"{rows} rows, structure verified.", None, int(rows), str(self.path),
                                 (time.perf_counter() - t0) * 1000, "restored")
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a result
            if self._cancel.is_set() or isinstance(exc, KeyboardInterrupt):
                return RestoreResult(False, "Cancelled; nothing was restored.", OperatorError(
                    "Cancelled by the operator.", "Run the restore again when ready."), 0, str(self.path),
                    (time.perf_counter() - t0) * 1000, "cancelled")
            error = explain(exc, secrets=s.secrets(), schema=s.schema)
            return RestoreResult(False, "Restore failed; nothing was restored.", error, 0, str(self.path),
                                 (time.perf_counter() - t0) * 1000)

    def table_count(self):
        from psycopg import sql

        return sql.SQL("SELECT count(*) FROM {}").format(self.table.qualified(self.settings.schema))

    def _read_copy(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MigrateError(OperatorError(f"Cannot read the safety copy {self.path}: "
                                             f"{exc.strerror or type(exc).__name__}.",
                                             "Check the path (it was printed after the rollback).")) from None

    def _psql(self, server_major: int) -> None:
        dump = find_pg_dump(server_major)
        sibling = dump.path.resolve().parent / "psql"
        psql = str(sibling) if sibling.exists() else shutil.which("psql")
        if psql is None:
            raise MigrateError(OperatorError("psql was not found.", "Install the PostgreSQL client (psql)."))
        argv = [psql, "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                "-f", str(self.path), "-d", pgtools.public_conninfo(self.settings, APPLICATION_NAME)]
        with pgtools.child_env(self.settings) as env:
            self._proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True)
            _, err = self._proc.communicate()
        if self._cancel.is_set():
            raise KeyboardInterrupt
        if self._proc.returncode != 0:
            lines = [redact(line, self.settings.secrets()) for line in (err or "").splitlines() if line.strip()]
            raise MigrateError(OperatorError(
                "psql could not restore the safety copy; nothing was restored (one transaction).",
                "See the detail; fix the cause and restore again.", detail="; ".join(lines[-3:]) or None))
