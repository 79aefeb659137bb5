"""Restoring a rollback's safety copy: ``psql --single-transaction``, then the catalog read back.

The same thing the printed restore command does, for when the operator has no
DATABASE_URL in a shell (the wizard, the demo database). Only the file migrate-tui wrote is
run: opened without following links, a regular file of the operator's that nobody else can
write, whose sha256 and size match the manifest recorded when the copy was taken; psql gets
exactly those verified bytes, in a sealed memory file of its own (whole even if the tool dies).
The password goes to psql through a passfile of its own (:mod:`migration.children`), never argv
or the environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from .. import catalog, pgtools
from ..children import child_env, readable_copy
from ..db import connect, server_facts
from ..errors import MigrateError, OperatorError
from ..events import Outcome, RestoreFinished, RestoreStarted
from ..operation import Emit, Operation, Stop
from ..safe_files import UnsafePath, open_dir, read_all
from ..schema import TABLE, Table
from ..redact import redact
from ..settings import Settings
from .safety_copy import MANIFEST_SUFFIX, copy_rows, find_pg_dump

APPLICATION_NAME = "migrate-tui restore"
_OWNER = re.compile(r"^ALTER (?:TABLE|SEQUENCE|VIEW|MATERIALIZED VIEW|FUNCTION) .+ OWNER TO (.+);$", re.M)


class Restore(Operation):
    name = "restore"
    cancelled_hint = "Nothing was restored. Run the restore again when ready."

    def __init__(self, settings: Settings, path: str | Path, emit: Emit | None = None, table: Table = TABLE) -> None:
        super().__init__(settings, emit)
        self.path = Path(path)
        self.table = table
        self._proc: subprocess.Popen | None = None
        self._sha256 = ""
        self._expected: int | None = None

    # -- the lifecycle (migration.operation) ---------------------------------------------
    def _interrupt(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # --single-transaction: nothing of the restore is kept

    def _perform(self) -> RestoreFinished:
        s = self.settings
        self.emit(RestoreStarted(str(self.path), s.schema, self.table.name, s.masked_url))
        with self._verified_copy() as (fd, data, digest):
            self._sha256 = digest
            self._expected = copy_rows(data.decode("utf-8", errors="replace"), s.schema, self.table.name)
            with connect(s, application_name=APPLICATION_NAME) as conn:
                facts = server_facts(conn)
                self._refuse_other_owners(data, facts.user)
                existing = catalog.relation(conn, s.schema, self.table)
                if existing is not None:
                    raise Stop(Outcome.FAILED, "Nothing was restored.", OperatorError(
                        f"{existing.kind.capitalize()} {s.schema}.{self.table.name} already exists; nothing was "
                        "restored.",
                        "The safety copy recreates the table: restore it only after a rollback (or drop the "
                        "table first with migrate-tui rollback)."))
            self.check_cancel()
            self._psql(facts.major, data)
        rows, problem = self._read_back()
        if problem is not None:
            raise MigrateError(OperatorError(
                f"After the restore the table does not match the copy: {problem}.",
                "Check the copy file and the psql output, then restore again."))
        return self._ended(Outcome.SUCCESS, f"Table {s.schema}.{self.table.name} restored from the safety copy: "
                           f"{rows} rows, structure verified.", rows=rows)

    def _refuse_other_owners(self, data: bytes, user: str) -> None:
        """A copy whose objects belong to another role would recreate that role's table, its constraints and
        defaults run with our rights: only a copy of the operator's own table is restored."""
        owners = {m.group(1).strip('"') for m in _OWNER.finditer(data.decode("utf-8", errors="replace"))}
        others = sorted(owners - {user})
        if others:
            raise Stop(Outcome.FAILED, "Nothing was restored.", OperatorError(
                f"The safety copy recreates objects owned by {', '.join(others)}, not by you ({user}); "
                "nothing was restored.",
                f"Restore it as {others[0]} (the role that owned the table when it was copied)."))

    def _read_back(self) -> tuple[int, str | None]:
        """Rows of the table, and what does not match the copy (None: it matches), on a fresh connection."""
        with connect(self.settings, application_name=APPLICATION_NAME, connect_timeout=5) as conn:
            report = catalog.inspect(conn, self.settings.schema, self.table)
            if not report.exists:
                return 0, "the table is absent"
            rows = 0
            if report.valid:
                conn.begin("READ ONLY")
                try:
                    catalog.lock_table(conn, self.settings.schema, self.table)
                    rows = int(conn.execute(self.table_count()).fetchone()[0])
                finally:
                    conn.execute("ROLLBACK")
        if not report.valid:
            return rows, "; ".join(report.problems)
        if self._expected is not None and rows != self._expected:
            return rows, f"{rows} rows, expected {self._expected}"
        return rows, None

    def _after_error(self, outcome: Outcome, error: OperatorError) -> RestoreFinished:
        """Whether the table came back is read from the catalog on a fresh connection, never assumed."""
        if self._sha256 == "":  # refused before anything touched the database
            return self._ended(outcome, "Cancelled; nothing was restored." if outcome is Outcome.CANCELLED
                               else "Restore refused; nothing was restored.", error)
        try:
            rows, problem = self._read_back()
        except Exception:  # noqa: BLE001
            return self._ended(outcome, "Restore failed, and the catalog could not be read afterwards: check "
                               f"whether {self.settings.schema}.{self.table.name} exists.", error)
        if problem == "the table is absent":
            verb = "Cancelled" if outcome is Outcome.CANCELLED else "Restore failed"
            return self._ended(outcome, f"{verb}; nothing was restored (the catalog confirms the table is absent).",
                               error)
        if problem is None:
            return self._ended(Outcome.SUCCESS, f"Table {self.settings.schema}.{self.table.name} is back: the "
                               f"catalog, read after the error, shows it with {rows} rows, as in the copy.", error,
                               rows=rows)
        return self._ended(Outcome.FAILED, f"The table exists but does not match the copy ({problem}).", error,
                           rows=rows)

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = (), *, rows: int = 0) -> RestoreFinished:
        return RestoreFinished(outcome, message, error, self.elapsed_ms, rows, str(self.path), self._sha256)

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
        """psql runs exactly the verified bytes, in one transaction. It reads them from a sealed memory file
        (``-f /dev/fd/N``), not a pipe: if the tool is killed meanwhile, psql still reads the whole copy and
        restores all of it or nothing, never a prefix cut where the tool stopped writing."""
        dump = find_pg_dump(server_major)
        sibling = dump.path.resolve().parent / "psql"
        psql = str(sibling) if sibling.exists() else shutil.which("psql")
        if psql is None:
            raise MigrateError(OperatorError("psql was not found.", "Install the PostgreSQL client (psql)."))
        with child_env(self.settings) as child, readable_copy(data, "migrate-tui-restore") as script:
            argv = [psql, "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                    "-f", f"/dev/fd/{script}", "-d", pgtools.public_conninfo(self.settings, APPLICATION_NAME)]
            self._proc = subprocess.Popen(argv, env=child.env, pass_fds=child.pass_fds + (script,),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = self._proc.communicate()
        self.check_cancel()
        if self._proc.returncode != 0:
            text = err.decode("utf-8", errors="replace")
            lines = [redact(line, self.settings.secrets()) for line in text.splitlines() if line.strip()]
            raise MigrateError(OperatorError(
                "psql could not restore the safety copy; nothing was restored (one transaction).",
                "See the detail; fix the cause and restore again.", detail="; ".join(lines[-3:]) or None))

