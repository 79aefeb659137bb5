"""The guide's eight migration steps, in one transaction, as a stream of events.

``Migration(settings, emit).run()`` blocks (run it in a thread or a Textual
worker) and calls ``emit`` with typed events from :mod:`migration.events`.
``cancel()`` may be called from any thread: it stops the running statement
(``cancel_safe``) and everything is rolled back.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import psycopg
from psycopg import sql

from . import catalog
from .db import ServerFacts, connect, rollback_quietly, server_facts
from .errors import MigrateError, OperatorError, explain
from .events import (
    Event,
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
from .schema import TABLE, Table
from .settings import Settings

Emit = Callable[[Event], None]

GUIDE_FIX_INVALID = (
    "The table exists but has wrong structure. Either: 1. Drop the existing table: "
    "DROP TABLE {table} CASCADE; (see `migrate-tui rollback`) 2. Or manually add missing columns."
)
ROLLED_BACK = "All changes rolled back"


class Cancelled(Exception):
    """The operator asked to stop."""


class Migration:
    def __init__(self, settings: Settings, emit: Emit, table: Table = TABLE,
                 poll_interval_s: float = 0.2) -> None:
        self.settings = settings
        self.table = table
        self._emit = emit
        self._poll = poll_interval_s
        self._cancel = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._in_transaction = False
        self._committed = False
        self._facts: ServerFacts | None = None
        self._t_start = 0.0
        self._last_elapsed = 0.0

    # -- public ---------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Thread-safe: stop at the next step boundary and interrupt a running statement."""
        self._cancel.set()
        conn = self._conn
        if conn is not None and not conn.closed and not self._committed:
            try:
                conn.cancel_safe(timeout=5)
            except Exception:  # the statement may have just finished; the flag still stops us
                pass

    def run(self) -> RunFinished:
        self._t_start = time.perf_counter()
        s = self.settings
        step = Step.CONNECTION_TEST
        try:
            self._emit(RunStarted(s.masked_url, s.schema, self.table.name))
            self._step_connect()
            step = Step.EXISTENCE_CHECK
            report = self._step_existence()
            if report.exists:
                return self._existing_table(report)
            step = Step.TRANSACTION_START
            appeared = self._step_begin()
            if appeared is not None:
                return self._appeared_meanwhile(appeared)
            step = Step.TABLE_CREATION
            self._step_create_table()
            step = Step.INDEX_CREATION
            self._step_indexes()
            step = Step.SEQUENCE_RESET
            self._step_sequence()
            step = Step.VERIFICATION
            self._step_verify()
            step = Step.TRANSACTION_COMMIT
            self._step_commit()
            report = self._report_after_commit()
            return self._finish(RunFinished(
                Outcome.SUCCESS, False, "Migration completed successfully!", report=report,
            ))
        except Cancelled:
            return self._fail(step, OperatorError(
                "Cancelled by the operator.", "Nothing was committed. Run again when ready.", "57014"),
                Outcome.CANCELLED)
        except _Busy as busy:
            return self._fail(step, busy.error, Outcome.BUSY)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an event
            if isinstance(exc, (KeyboardInterrupt, SystemExit)) or self.cancelled:
                outcome = Outcome.CANCELLED
                error = OperatorError("Cancelled by the operator.", "Nothing was committed. Run again when ready.",
                                      "57014")
            else:
                outcome = Outcome.FAILED
                error = explain(exc, user=self._facts.user if self._facts else s.target["user"],
                                schema=s.schema, secrets=s.secrets())
            return self._fail(step, error, outcome)
        finally:
            self._close()

    # -- steps ----------------------------------------------------------------
    def _timed(self, step: Step):
        return _StepTimer(self, step)

    def _step_connect(self) -> None:
        with self._timed(Step.CONNECTION_TEST) as t:
            self._conn = connect(self.settings)
            self._conn.add_notice_handler(lambda d: self._emit(Notice(d.message_primary or "")))
            self._facts = server_facts(self._conn)
            t.done("Database connection successful",
                   (f"Server time: {self._facts.server_time}", f"PostgreSQL version: {self._facts.version}"))

    def _step_existence(self) -> catalog.StructureReport:
        with self._timed(Step.EXISTENCE_CHECK) as t:
            report = catalog.inspect(self._conn, self.settings.schema, self.table)
            if report.not_a_table:
                rel = report.relation
                raise MigrateError(catalog.not_a_table_error(self.settings.schema, self.table.name, rel.relkind,
                                                             rel.owner))
            if report.exists:
                if report.valid:
                    t.done(f"Table {self.table.name} already exists", warning=True)
                else:
                    raise MigrateError(OperatorError(
                        report.problems[0] if len(report.problems) == 1 else
                        f"Table {self.table.name} already exists with a different structure: "
                        + "; ".join(report.problems),
                        GUIDE_FIX_INVALID.format(table=self._qualified_text()),
                    ))
            else:
                t.done(f"Table {self.table.name} does not exist yet in schema {self.settings.schema}", quiet=True)
            return report

    def _step_begin(self) -> catalog.StructureReport | None:
        """BEGIN, timeouts, advisory lock; returns a report if the table appeared meanwhile."""
        s = self.settings
        with self._timed(Step.TRANSACTION_START) as t:
            self._check_cancel()
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
        self._emit(Notice("Another migration is running on this database; waiting for it to finish"))
        while time.monotonic() - start < s.lock_wait_s:
            self._check_cancel()
            time.sleep(self._poll)
            if self._execute(try_lock(s.schema, self.table)).fetchone()[0]:
                return time.monotonic() - start
        raise _Busy(OperatorError(
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
            self._check_cancel()
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
            self._emit(StepSkipped(step, "Table already exists"))
        with self._timed(Step.VERIFICATION) as t:
            t.done("Migration verification successful", report.differences)
        self._emit(StepSkipped(Step.TRANSACTION_COMMIT, "Nothing to commit"))
        return self._finish(RunFinished(
            Outcome.NOT_NEEDED, False, "Migration not needed - table already exists and is valid", report=report))

    def _appeared_meanwhile(self, report: catalog.StructureReport) -> RunFinished:
        """Another runner created the table while we waited for the advisory lock."""
        self._rollback_quietly()
        if report.not_a_table:
            rel = report.relation
            raise MigrateError(catalog.not_a_table_error(self.settings.schema, self.table.name, rel.relkind,
                                                         rel.owner))
        if not report.valid:
            raise MigrateError(OperatorError(
                "; ".join(report.problems), GUIDE_FIX_INVALID.format(table=self._qualified_text())))
        return self._existing_table(report, skip=(Step.TABLE_CREATION, Step.INDEX_CREATION, Step.SEQUENCE_RESET))

    def _fail(self, step: Step, error: OperatorError, outcome: Outcome) -> RunFinished:
        was_in_tx = self._in_transaction
        self._rollback_quietly()
        self._emit_quietly(StepFailed(step, self._last_elapsed, error))
        for later in Step:
            if later > step:
                self._emit_quietly(StepSkipped(later, "Stopped after the failure" if outcome is not Outcome.CANCELLED
                                       else "Cancelled"))
        if was_in_tx or outcome is Outcome.CANCELLED:
            message = f"{ROLLED_BACK}: {self._confirm_absent()}"
            rolled_back = True
        else:
            message = "Nothing was changed"
            rolled_back = False
        return self._finish(RunFinished(outcome, rolled_back, message, error=error))

    def _finish(self, result: RunFinished) -> RunFinished:
        facts = {}
        if self._facts:
            facts = {"server_time": self._facts.server_time, "version": self._facts.version,
                     "user": self._facts.user, "database": self._facts.database}
        result = RunFinished(result.outcome, result.rolled_back, result.message, result.error, result.report,
                             (time.perf_counter() - self._t_start) * 1000,
                             self._facts.version if self._facts else None, facts)
        self._emit_quietly(result)
        return result

    def _emit_quietly(self, event: Event) -> None:
        """The ending always reaches the caller as run()'s return value, even if an event consumer fails."""
        try:
            self._emit(event)
        except Exception:  # noqa: BLE001 - e.g. a closed stdout; the work is already rolled back/committed
            pass

    # -- helpers ----------------------------------------------------------------
    def _qualified_text(self) -> str:
        return f'"{self.settings.schema}"."{self.table.name}"'

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def _execute(self, statement, params=None):
        self._check_cancel()
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


class _Busy(Exception):
    def __init__(self, error: OperatorError):
        super().__init__(error.message)
        self.error = error


class _StepTimer:
    """Emits StepStarted on enter and StepFinished via done(); failures are reported by run()."""

    def __init__(self, migration: Migration, step: Step) -> None:
        self.m = migration
        self.step = step
        self.finished = False

    def __enter__(self) -> "_StepTimer":
        self.m._check_cancel()
        self.t0 = time.perf_counter()
        self.m._emit(StepStarted(self.step))
        return self

    def done(self, message: str, details: tuple[str, ...] = (), *, warning: bool = False,
             quiet: bool = False) -> None:
        self.finished = True
        self.m._emit(StepFinished(self.step, self.elapsed_ms, message, tuple(details), warning, quiet))

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and not self.finished:
            self.m._last_elapsed = self.elapsed_ms
        return False
