"""Restoring a rollback's safety copy: the table, then each dependent CASCADE dropped, then the catalog read back.

The same thing the printed restore command does, for when the operator has no
DATABASE_URL in a shell (the wizard, the demo database). Only the file migrate-tui wrote is
run: opened without following links, a regular file of the operator's that nobody else can
write, whose sha256 and size match the manifest recorded when the copy was taken; psql gets
exactly those verified bytes, in a sealed memory file of its own (whole even if the tool dies).
The password goes to psql through a passfile of its own (:mod:`migration.children`), never argv
or the environment.

The copy is run section by section (the manifest lists them, :mod:`.safety_copy`), each by ``psql
--single-transaction``: first the table, which must come back whole or not at all; then each dependent the
DROP ... CASCADE removed (a view, a foreign key, a function, ...), in order, so that one that cannot be
recreated (rows written meanwhile break a foreign key; someone created a view of the same name) is named with
psql's reason while the table and the others come back. Afterwards every dependent is looked up again on a
fresh connection (``pg_get_object_address``) and an inherited table's rows counted: the report says what the
catalog shows.
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
from .safety_copy import MANIFEST_SUFFIX, copy_rows, find_pg_dump, verify_sections

APPLICATION_NAME = "migrate-tui restore"
RESET_SESSION = b"\nRESET ALL;\n"  # after the verified copy, inside psql's --single-transaction
_OWNER = re.compile(r"^ALTER (?:TABLE|SEQUENCE|VIEW|MATERIALIZED VIEW|FOREIGN TABLE|FUNCTION|PROCEDURE) .+ "
                    r"OWNER TO (.+);$", re.M)


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
        self._manifest: dict = {}
        self._failures: dict[str, str] = {}  # dependent key -> psql's reason its section failed
        self._table_done = False  # the table's section committed: later failures are a dependent's

    # -- the lifecycle (migration.operation) ---------------------------------------------
    def _interrupt(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # --single-transaction: nothing of the running section is kept

    def _perform(self) -> RestoreFinished:
        s = self.settings
        self.emit(RestoreStarted(str(self.path), s.schema, self.table.name, s.masked_url))
        with self._verified_copy() as (fd, data, digest, manifest):
            sections = self._sections(data, manifest)
            self._sha256, self._manifest = digest, manifest
            self._expected = copy_rows(data.decode("utf-8", errors="replace"), s.schema, self.table.name)
            with connect(s, application_name=APPLICATION_NAME) as conn:
                facts = server_facts(conn)
                self.note_pooler(conn, facts)
                self._refuse_other_owners(data, facts.user)
                existing = catalog.relation(conn, s.schema, self.table)
                if existing is not None:
                    raise Stop(Outcome.FAILED, "Nothing was restored.", OperatorError(
                        f"{existing.kind.capitalize()} {s.schema}.{self.table.name} already exists; nothing was "
                        "restored.",
                        "The safety copy recreates the table: restore it only after a rollback (or drop the "
                        "table first with migrate-tui rollback)."))
            self.check_cancel()
            psql = self._psql_path(facts.major)
            table, dependents = sections[0], sections[1:]
            self._psql(psql, data[table["offset"]:table["offset"] + table["size"]])
            for section in dependents:  # each in a transaction of its own: one that fails is named, not fatal
                self.check_cancel()
                if section.get("notes"):
                    continue
                try:
                    self._psql(psql, data[section["offset"]:section["offset"] + section["size"]])
                except _SectionFailed as failed:
                    self._failures[str(section.get("dependent"))] = failed.reason
        rows, problem = self._read_back()
        if problem is not None:
            raise MigrateError(OperatorError(
                f"After the restore the table does not match the copy: {problem}.",
                "Check the copy file and the psql output, then restore again."))
        return self._report(rows)

    def _sections(self, data: bytes, manifest: dict) -> list[dict]:
        """The copy's sections, checked against the bytes (a copy written before dependents were kept in it
        is one section: the table)."""
        if "sections" not in manifest:
            return [{"offset": 0, "size": len(data), "table": f"{self.settings.schema}.{self.table.name}"}]
        problem = verify_sections(data, manifest)
        sections = manifest["sections"]
        if problem is None and (not isinstance(sections, list) or "table" not in sections[0]
                                or any("table" in x for x in sections[1:])):
            problem = "its first section is not the table"
        if problem is not None:
            raise UnsafePath(OperatorError(
                f"The safety copy {self.path} does not match its manifest ({problem}); nothing was restored.",
                "Restore only a copy written by migrate-tui rollback, with the manifest written beside it."))
        return manifest["sections"]

    def _report(self, rows: int, error: OperatorError | None = None) -> RestoreFinished:
        """The ending once the table is back: which dependents the catalog shows again, which not and why."""
        s = self.settings
        recreated, missing = self._dependents_back()
        lost = [f"{d.get('key')}: not in the copy ({d.get('why')})" for d in self._manifest.get("not_recreatable", [])
                if isinstance(d, dict)]
        done = f"Table {s.schema}.{self.table.name} restored from the safety copy: {rows} rows, structure verified"
        if recreated:
            done += f"; {len(recreated)} dependent object(s) recreated and found in the catalog"
        if missing:
            keys = [line.split(": ", 1)[0] for line in missing]
            reasons = [self._failures[k] for k in keys if k in self._failures]
            return self._ended(Outcome.FAILED, done + f"; but could not recreate {len(missing)}: " + "; ".join(keys)
                               + ".", error or OperatorError(
                                   "Could not recreate: " + "; ".join(missing),
                                   "The table and the other objects are back. Fix the cause, then recreate what is "
                                   "missing from its section of the copy (marked '-- migrate-tui: dependent N of M'), "
                                   "e.g. with psql.", detail="; ".join(reasons) or None),
                               rows=rows, recreated=recreated, not_recreated=tuple(missing + lost))
        if lost:
            done += ". Not recreated (the copy could not hold them): " + "; ".join(lost)
        return self._ended(Outcome.SUCCESS, done + ".", error, rows=rows, recreated=recreated,
                           not_recreated=tuple(lost))

    def _dependents_back(self) -> tuple[tuple[str, ...], list[str]]:
        """(keys found again, "key: why" of those missing), read on a fresh connection."""
        listed = [d for d in self._manifest.get("dependents", []) if isinstance(d, dict)]
        if not listed:
            return (), []
        rows = {str(x.get("dependent")): x for x in self._manifest.get("sections", []) if isinstance(x, dict)
                and x.get("rows") is not None and x.get("relation")}
        found, missing = [], []
        with connect(self.settings, application_name=APPLICATION_NAME, connect_timeout=5) as conn:
            for dep in listed:
                key = str(dep.get("key"))
                problem = self._missing(conn, dep.get("address") or {}, rows.get(key))
                if problem is None:
                    found.append(key)
                else:
                    missing.append(f"{key}: {self._failures.get(key) or problem}")
        return tuple(found), missing

    def _missing(self, conn, address: dict, section: dict | None) -> str | None:
        """Why the object is not back (None: it is, and an inherited table has its rows)."""
        import psycopg

        try:
            conn.execute("SELECT 1 FROM pg_get_object_address(%s::text, %s::text[], %s::text[])",
                         (str(address.get("type")), list(address.get("names") or []),
                          list(address.get("args") or []))).fetchone()
        except psycopg.DatabaseError:
            return "not found in the catalog after the restore"
        if section is None:
            return None
        schema, name = section["relation"]
        conn.begin("READ ONLY")
        try:
            rel = conn.execute("SELECT c.relkind::text, pg_has_role(current_user, c.relowner, 'USAGE') "
                               "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE n.nspname = %s AND c.relname = %s", (schema, name)).fetchone()
            if rel is None or rel[0] not in ("r", "p") or not rel[1]:
                return "not the table the copy recreates"
            from psycopg import sql

            count = conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, name))
                                 ).fetchone()[0]
        finally:
            conn.execute("ROLLBACK")
        return None if count == section["rows"] else f"{count} rows, the copy holds {section['rows']}"

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
            try:
                report = self._report(rows, error)
            except Exception:  # noqa: BLE001 - the table is back; what else is, is said as unknown
                report = None
            if report is not None and report.outcome is Outcome.SUCCESS and not report.recreated:
                return self._ended(Outcome.SUCCESS, f"Table {self.settings.schema}.{self.table.name} is back: the "
                                   f"catalog, read after the error, shows it with {rows} rows, as in the copy.", error,
                                   rows=rows, not_recreated=report.not_recreated)
            if report is not None:
                return report if outcome is not Outcome.CANCELLED else self._ended(
                    Outcome.CANCELLED, "Cancelled after the table was restored: " + report.message, error, rows=rows,
                    recreated=report.recreated, not_recreated=report.not_recreated)
            return self._ended(Outcome.FAILED, f"Table {self.settings.schema}.{self.table.name} is back with {rows} "
                               "rows, but whether the objects that depended on it are back could not be read.",
                               error, rows=rows)
        return self._ended(Outcome.FAILED, f"The table exists but does not match the copy ({problem}).", error,
                           rows=rows)

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = (), *, rows: int = 0, recreated: tuple[str, ...] = (),
               not_recreated: tuple[str, ...] = ()) -> RestoreFinished:
        return RestoreFinished(outcome, message, error, self.elapsed_ms, rows, str(self.path), self._sha256,
                               recreated, not_recreated)

    def table_count(self):
        from psycopg import sql

        return sql.SQL("SELECT count(*) FROM ONLY {}").format(self.table.qualified(self.settings.schema))

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
                yield fd, data, digest, manifest
            finally:
                os.close(fd)
        finally:
            directory.close()

    @staticmethod
    def _psql_path(server_major: int) -> str:
        dump = find_pg_dump(server_major)
        sibling = dump.path.resolve().parent / "psql"
        psql = str(sibling) if sibling.exists() else shutil.which("psql")
        if psql is None:
            raise MigrateError(OperatorError("psql was not found.", "Install the PostgreSQL client (psql)."))
        return psql

    def _psql(self, psql: str, data: bytes) -> None:
        """psql runs exactly these verified bytes, in one transaction, then ``RESET ALL`` before that transaction
        commits. It reads them from a sealed memory file (``-f /dev/fd/N``), not a pipe: killed meanwhile, the
        tool never leaves psql a prefix it would take for the whole script and commit. RESET ALL, because the
        copy's own session settings (``set_config('search_path', '', false)``, ``row_security = off``, …)
        would otherwise stay on the server connection, which a transaction-mode pooler hands to other clients
        next (verified with PgBouncer).
        The table's section failing ends the restore (nothing restored); a dependent's raises
        :class:`_SectionFailed`."""
        with child_env(self.settings) as child, readable_copy(data + RESET_SESSION, "migrate-tui-restore") as script:
            argv = [psql, "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                    "-f", f"/dev/fd/{script}", "-d", pgtools.public_conninfo(self.settings, APPLICATION_NAME)]
            self._proc = subprocess.Popen(argv, env=child.env, pass_fds=child.pass_fds + (script,),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = self._proc.communicate()
        self.check_cancel()
        if self._proc.returncode != 0:
            text = err.decode("utf-8", errors="replace")
            lines = [redact(line, self.settings.secrets()) for line in text.splitlines() if line.strip()]
            detail = "; ".join(lines[-3:]) or None
            if self._table_done:
                raise _SectionFailed(_reason(lines))
            raise MigrateError(OperatorError(
                "psql could not restore the safety copy; nothing was restored (one transaction).",
                "See the detail; fix the cause and restore again.", detail=detail))
        self._table_done = True


class _SectionFailed(Exception):
    """A dependent's section of the copy failed (its transaction rolled back; the restore goes on)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(lines: list[str]) -> str:
    """psql's error for a failed section, without its ``psql:<stdin>:N:`` prefix."""
    errors = [re.sub(r"^psql:<stdin>:\d+: ", "", line) for line in lines if "ERROR:" in line] or lines[-1:]
    return " ".join(" ".join(errors[:1]).split()) or "psql failed"
