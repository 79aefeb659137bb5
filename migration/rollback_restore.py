"""Restoring a rollback's safety copy: ``psql --single-transaction``, then the catalog read back.

The same thing the printed restore command does, for when the operator has no
DATABASE_URL in a shell (the wizard, the demo database). Only the file migrate-tui wrote is
run: opened without following links, a regular file of the operator's that nobody else can
write, whose sha256 and size match the manifest recorded when the copy was taken; psql gets
exactly those verified bytes on its stdin. The password goes to psql through a passfile of its
own (:mod:`migration.children`), never argv or the environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import catalog, pgtools
from .children import child_env
from .db import connect, server_facts
from .errors import MigrateError, OperatorError, explain
from .rollback_copy import MANIFEST_SUFFIX, copy_rows, find_pg_dump
from .safe_files import UnsafePath, open_dir, read_all
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
    sha256: str = ""  # of the copy that was restored


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
            with self._verified_copy() as (fd, data, digest):
                expected = copy_rows(data.decode("utf-8", errors="replace"), s.schema, self.table.name)
                with connect(s, application_name=APPLICATION_NAME) as conn:
                    facts = server_facts(conn)
                    existing = catalog.relation(conn, s.schema, self.table)
                    if existing is not None:
                        raise MigrateError(OperatorError(
                            f"{existing.kind.capitalize()} {s.schema}.{self.table.name} already exists; nothing was "
                            "restored.",
                            "The safety copy recreates the table: restore it only after a rollback (or drop the "
                            "table first with migrate-tui rollback)."))
                self._psql(facts.major, data)
            with connect(s, application_name=APPLICATION_NAME) as conn:
                report = catalog.inspect(conn, s.schema, self.table)
                rows = conn.execute(self.table_count()).fetchone()[0] if report.valid else 0
            if not report.valid or (expected is not None and rows != expected):
                raise MigrateError(OperatorError(
                    f"After the restore the table does not match the copy ({rows} rows, expected {expected}; "
                    + ("; ".join(report.problems) or "structure ok") + ").",
                    "Check the copy file and the psql output, then restore again."))
            return RestoreResult(True, f"Table {s.schema}.{self.table.name} restored from the safety copy: "
                                 f"{rows} rows, structure verified.", None, int(rows), str(self.path),
                                 (time.perf_counter() - t0) * 1000, "restored", digest)
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

    @contextlib.contextmanager
    def _verified_copy(self):
        """The copy, only when it is the file migrate-tui wrote: a regular file of the operator's, writable
        by nobody else, whose sha256 and size still match the manifest written beside it."""
        directory = open_dir(self.path.parent, what="directory of the safety copy")
        try:
            fd = directory.open_own(self.path.name, "safety copy")
            try:
                try:
                    manifest = json.loads(directory.read_small(self.path.name + MANIFEST_SUFFIX,
                                                               "manifest of the safety copy"))
                except UnsafePath as exc:
                    raise UnsafePath(OperatorError(
                        exc.error.message + " Without it, nothing says this is the copy migrate-tui wrote.",
                        "Restore only a copy written by migrate-tui rollback, with its .manifest.json beside it "
                        "(both owned by you, mode 0600).")) from None
                except ValueError:
                    raise UnsafePath(OperatorError(f"The manifest of {self.path} cannot be read.",
                                                   "Restore only a copy written by migrate-tui rollback.")) from None
                data = read_all(fd)
                digest = hashlib.sha256(data).hexdigest()
                if not isinstance(manifest, dict) or manifest.get("sha256") != digest \
                        or manifest.get("size_bytes") != len(data):
                    raise UnsafePath(OperatorError(
                        f"The safety copy {self.path} was changed after migrate-tui wrote it (its sha256 or size "
                        "no longer matches its manifest); nothing was restored.",
                        "Do not restore it: find out who changed it. A copy is only restored as it was written."))
                yield fd, data, digest
            finally:
                os.close(fd)
        finally:
            directory.close()

    def _psql(self, server_major: int, data: bytes) -> None:
        """psql runs exactly the verified bytes (given on its stdin), in one transaction."""
        dump = find_pg_dump(server_major)
        sibling = dump.path.resolve().parent / "psql"
        psql = str(sibling) if sibling.exists() else shutil.which("psql")
        if psql is None:
            raise MigrateError(OperatorError("psql was not found.", "Install the PostgreSQL client (psql)."))
        argv = [psql, "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                "-f", "-", "-d", pgtools.public_conninfo(self.settings, APPLICATION_NAME)]
        with child_env(self.settings) as child:
            self._proc = subprocess.Popen(argv, env=child.env, pass_fds=child.pass_fds, stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = self._proc.communicate(data)
        if self._cancel.is_set():
            raise KeyboardInterrupt
        if self._proc.returncode != 0:
            text = err.decode("utf-8", errors="replace")
            lines = [redact(line, self.settings.secrets()) for line in text.splitlines() if line.strip()]
            raise MigrateError(OperatorError(
                "psql could not restore the safety copy; nothing was restored (one transaction).",
                "See the detail; fix the cause and restore again.", detail="; ".join(lines[-3:]) or None))

