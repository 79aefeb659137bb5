"""The guide's eight migration steps, in one transaction, as a stream of events.

``Migration(settings, emit).run()`` blocks (run it in a thread or a Textual
worker) and calls ``emit`` with typed events from :mod:`migration.events`; its
lifecycle (cancel from any thread, one outcome, the catalog read back after any
error) is :class:`migration.operation.Operation`'s. ``cancel()`` stops the running
statement (``cancel_safe``) and everything is rolled back.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from . import catalog
from .db import ServerFacts, connect, rollback_quietly, server_facts
from .errors import MigrateError, OperatorError
from .events import (
    Notice,
    Outcome,
    RunFinished,
    RunStarted,
    Step,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from .plan import set_local, try_lock
from .operation import Busy, Emit, Operation
from .schema import TABLE, Table
from .settings import Settings

ROLLED_BACK = "All changes rolled back"


class Migration(Operation):
    name = "migrate"
    cancelled_hint = "Nothing was committed. Run again when ready."

    def __init__(self, settings: Settings, emit: Emit, table: Table = TABLE,
                 poll_interval_s: float = 0.2) -> None:
        super().__init__(settings, emit)
        self.table = table
        self._poll = poll_interval_s
        self._conn: psycopg.Connection | None = None
        self._in_transaction = False
        self._committed = False
        self._facts: ServerFacts | None = None
        self._last_elapsed = 0.0
        self._step = Step.CONNECTION_TEST

    # -- the lifecycle (migration.operation) ------------------------------------------
    def _interrupt(self) -> None:
        conn = self._conn
        if conn is not None and not conn.closed and not self._committed:
            conn.cancel_safe(timeout=5)

    def _release(self) -> None:
        self._close()

    def _user(self) -> str | None:
        return self._facts.user if self._facts else super()._user()

    def _perform(self) -> RunFinished:
        s = self.settings
        self.emit(RunStarted(s.masked_url, s.schema, self.table.name))
        self._step_connect()
        self.note_pooler(self._conn, self._facts)  # one transaction: safe through session and transaction pooling
        self._step = Step.EXISTENCE_CHECK
        report = self._step_existence()
        if report.exists:
            return self._existing_table(report)
        self._step = Step.TRANSACTION_START
        appeared = self._step_begin()
        if appeared is not None:
            return self._appeared_meanwhile(appeared)
        self._step = Step.TABLE_CREATION
        self._step_create_table()
        self._step = Step.INDEX_CREATION
        self._step_indexes()
        self._step = Step.SEQUENCE_RESET
        self._step_sequence()
        self._step = Step.VERIFICATION
        self._step_verify()
        self._step = Step.TRANSACTION_COMMIT
        self._step_commit()
        report = self._report_after_commit()
        return self._ended(Outcome.SUCCESS, "Migration completed successfully!", report=report)

    # -- steps ----------------------------------------------------------------
    def _timed(self, step: Step):
        return _StepTimer(self, step)

    def _step_connect(self) -> None:
        with self._timed(Step.CONNECTION_TEST) as t:
            self._conn = connect(self.settings)
            self._conn.add_notice_handler(lambda d: self.emit(Notice(d.message_primary or "")))
            self._facts = server_facts(self._conn)
            t.done("Database connection successful",
                   (f"Server time: {self._facts.server_time}", f"PostgreSQL version: {self._facts.version}"))

    def _step_existence(self) -> catalog.StructureReport:
        with self._timed(Step.EXISTENCE_CHECK) as t:
            report = catalog.inspect(self._conn, self.settings.schema, self.table)
            if report.exists and not report.valid:
                raise MigrateError(catalog.structure_error(report, self.settings.schema, self.table))
            if report.exists:
                t.done(f"Table {self.table.name} already exists", warning=True)
            else:
                t.done(f"Table {self.table.name} does not exist yet in schema {self.settings.schema}", quiet=True)
            return report

    def _step_begin(self) -> catalog.StructureReport | None:
        """BEGIN, timeouts, advisory lock; returns a report if the table appeared meanwhile."""
        s = self.settings
        with self._timed(Step.TRANSACTION_START) as t:
            self.check_cancel()
            self._conn.begin()  # BEGIN; SET LOCAL search_path = pg_catalog, pg_temp
            self._in_transaction = True
            # The advisory lock is the first statement of the transaction.
            got = self._execute(try_lock(s.schema, self.table)).fetchone()[0]
            self._execute(set_local("lock_timeout", s.lock_timeout_ms))
            self._execute(set_local("statement_timeout", s.statement_timeout_ms))
            waited = 0.0
            if not got:
                waited = self._wait_for_lock()
            report = catalog.inspect(self._conn, s.schema, self.table)
            details = (f"lock_timeout {s.lock_timeout_ms} ms, statement_timeout {s.statement_timeout_ms} ms",)
            if waited:
                details += (f"Waited {waited:.1f} s for another migration to finish",)
            if report.exists:
                t.done("Another migration created the table while this one waited", details, warning=True)
                return report
            t.done("Transaction started", details, quiet=True)
            return None

    def _wait_for_lock(self) -> float:
        s = self.settings
        start = time.monotonic()
        self.emit(Notice("Another migration is running on this database; waiting for it to finish"))
        while time.monotonic() - start < s.lock_wait_s:
            self.check_cancel()
            self.pause(self._poll)
            if self._execute(try_lock(s.schema, self.table)).fetchone()[0]:
                return time.monotonic() - start
        raise Busy(OperatorError(
            "Another migration is running on this database.",
            f"Wait for the other migrate-tui run to finish (it held the lock for over {s.lock_wait_s:.0f} s), "
            "then run again; raise --lock-wait to wait longer.",
        ))

    def _step_create_table(self) -> None:
        with self._timed(Step.TABLE_CREATION) as t:
            self._execute(self.table.create_table(self.settings.schema))
            t.done(f"Table {self.table.name} created successfully")

    def _step_indexes(self) -> None:
        with self._timed(Step.INDEX_CREATION) as t:
            for statement in self.table.create_indexes(self.settings.schema):
                self._execute(statement)
            t.done("Indexes created successfully", tuple(ix.name for ix in self.table.indexes))

    def _step_sequence(self) -> None:
        with self._timed(Step.SEQUENCE_RESET) as t:
            next_id = self._reset_sequence()
            t.done("Sequence reset successfully", (f"Next id: {next_id}",))

    def _reset_sequence(self) -> int:
        self._execute(self.table.reset_sequence(self.settings.schema))
        return self._next_id()

    def _next_id(self) -> int:
        seq = self._execute(sql.SQL("SELECT pg_get_serial_sequence({}, {})").format(
            sql.Literal(self._qualified_text()), sql.Literal(self.table.serial_column))).fetchone()[0]
        last, called = self._execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
            sql.SQL(seq))).fetchone()
        return int(last) + 1 if called else int(last)

    def _step_verify(self) -> None:
        s = self.settings
        with self._timed(Step.VERIFICATION) as t:
            report = catalog.inspect(self._conn, s.schema, self.table, strict=True)
            if not report.exists or report.problems:
                raise MigrateError(OperatorError(
                    "Verification failed: " + "; ".join(report.problems or ("table not found",)),
                    "Nothing was committed. Report this with the output above.",
                ))
            row = self._execute(self.table.probe_insert(s.schema), tuple(self.table.probe_row.values())).fetchone()
            values = dict(zip(self.table.column_names, row))
            for col in self.table.columns:
                if col.default and col.catalog_default and col.catalog_default.startswith("'"):
                    expected = col.catalog_default.split("'")[1]
                    if values[col.name] != expected:
                        raise MigrateError(OperatorError(
                            f"Verification failed: {col.name} defaulted to {values[col.name]!r}, expected {expected!r}",
                            "Nothing was committed. Check for triggers or rules on the new table.",
                        ))
            deleted = self._execute(self.table.probe_delete(s.schema), (values[self.table.serial_column],)).rowcount
            if deleted != 1:
                raise MigrateError(OperatorError("Verification failed: the test row could not be deleted.",
                                                 "Nothing was committed. Check for rules or triggers on the table."))
            next_id = self._reset_sequence()
            t.done("Migration verification successful", (
                f"{len(report.columns)} columns, {len(report.indexes)} indexes (primary key, unique filename, "
                f"{len(self.table.indexes)} performance indexes)",
                f"Test row inserted (id {values[self.table.serial_column]}) and deleted; next id: {next_id}",
            ))

    def _step_commit(self) -> None:
        with self._timed(Step.TRANSACTION_COMMIT) as t:
            self.check_cancel()
            try:
                self._conn.execute("COMMIT")
            except psycopg.OperationalError:
                # The COMMIT may or may not have reached the server: read the catalog back.
                if self._committed_after_all():
                    self._in_transaction = False
                    self._committed = True
                    self._reconnect_for_report()
                    t.done("Transaction committed successfully (confirmed after the connection dropped)")
                    return
                raise
            self._in_transaction = False
            self._committed = True
            t.done("Transaction committed successfully")

    def _report_after_commit(self) -> catalog.StructureReport | None:
        """Committed: from here on nothing (a late cancel, a dropped connection) may turn SUCCESS into a failure."""
        try:
            return catalog.inspect(self._conn, self.settings.schema, self.table)
        except Exception:  # the report is informational; the commit was confirmed
            return None

    # -- endings --------------------------------------------------------------
    def _existing_table(self, report: catalog.StructureReport,
                        skip: tuple[Step, ...] = (Step.TRANSACTION_START, Step.TABLE_CREATION,
                                                  Step.INDEX_CREATION, Step.SEQUENCE_RESET)) -> RunFinished:
        for step in skip:
            self.emit(StepSkipped(step, "Table already exists"))
        with self._timed(Step.VERIFICATION) as t:
            t.done("Migration verification successful", report.differences)
        self.emit(StepSkipped(Step.TRANSACTION_COMMIT, "Nothing to commit"))
        return self._ended(Outcome.NOT_NEEDED, "Migration not needed - table already exists and is valid",
                           report=report)

    def _appeared_meanwhile(self, report: catalog.StructureReport) -> RunFinished:
        """Another runner created the table while we waited for the advisory lock."""
        self._rollback_quietly()
        if not report.valid:
            raise MigrateError(catalog.structure_error(report, self.settings.schema, self.table))
        return self._existing_table(report, skip=(Step.TABLE_CREATION, Step.INDEX_CREATION, Step.SEQUENCE_RESET))

    def _after_error(self, outcome: Outcome, error: OperatorError) -> RunFinished:
        """The step that failed, the later ones skipped, and what the catalog says on a fresh connection."""
        step = self._step
        was_in_tx = self._in_transaction
        self._rollback_quietly()
        self.emit_quietly(StepFailed(step, self._last_elapsed, error))
        for later in Step:
            if later > step:
                self.emit_quietly(StepSkipped(later, "Cancelled" if outcome is Outcome.CANCELLED
                                              else "Stopped after the failure"))
        if was_in_tx or outcome is Outcome.CANCELLED:
            return self._ended(outcome, f"{ROLLED_BACK}: {self._confirm_absent()}", error, rolled_back=True)
        return self._ended(outcome, "Nothing was changed", error)

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = (), *, rolled_back: bool = False,
               report: catalog.StructureReport | None = None) -> RunFinished:
        facts = {}
        if self._facts:
            facts = {"server_time": self._facts.server_time, "version": self._facts.version,
                     "user": self._facts.user, "database": self._facts.database}
        return RunFinished(outcome, message, error, self.elapsed_ms, rolled_back=rolled_back, report=report,
                           server_version=self._facts.version if self._facts else None, facts=facts)

    # -- helpers ----------------------------------------------------------------
    def _qualified_text(self) -> str:
        return f'"{self.settings.schema}"."{self.table.name}"'

    def _execute(self, statement, params=None):
        self.check_cancel()
        assert self._conn is not None
        return self._conn.execute(statement, params)

    def _rollback_quietly(self) -> None:
        self._in_transaction = False
        rollback_quietly(self._conn)

    def _fresh_connection(self) -> psycopg.Connection:
        return connect(self.settings, connect_timeout=5)

    def _confirm_absent(self) -> str:
        """Read the catalog back on a fresh connection to prove nothing was left behind."""
        try:
            with self._fresh_connection() as conn:
                report = catalog.inspect(conn, self.settings.schema, self.table)
        except Exception:
            return "the server discards uncommitted work (could not reconnect to confirm)"
        if report.exists:
            return f"table {self.table.name} exists (it was there before this run)"
        return f"verified, {self.table.name} does not exist"

    def _committed_after_all(self) -> bool:
        try:
            with self._fresh_connection() as conn:
                return catalog.inspect(conn, self.settings.schema, self.table).valid
        except Exception:
            return False

    def _reconnect_for_report(self) -> None:
        self._close()
        self._conn = self._fresh_connection()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


class _StepTimer:
    """Emits StepStarted on enter and StepFinished via done(); failures are reported by run()."""

    def __init__(self, migration: Migration, step: Step) -> None:
        self.m = migration
        self.step = step
        self.finished = False

    def __enter__(self) -> "_StepTimer":
        self.m.check_cancel()
        self.t0 = time.perf_counter()
        self.m.emit(StepStarted(self.step))
        return self

    def done(self, message: str, details: tuple[str, ...] = (), *, warning: bool = False,
             quiet: bool = False) -> None:
        self.finished = True
        self.m.emit(StepFinished(self.step, self.elapsed_ms, message, tuple(details), warning, quiet))

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and not self.finished:
            self.m._last_elapsed = self.elapsed_ms
        return False
