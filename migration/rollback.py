"""The guide's "Manual Rollback", made safe: preview, safety copy, lock-aware DROP, verification.

``Rollback(settings, emit, options).run(...)`` blocks (run it in a thread or a
Textual worker) and reports typed events from :mod:`migration.rollback_events`;
``cancel()`` may be called from any thread at any time: a running pg_dump is
stopped, a waiting DROP is cancelled (``cancel_safe``) and rolled back.

The DROP is derived from :data:`migration.schema.TABLE` (``TABLE.drop``). It runs
in one transaction with ``SET LOCAL lock_timeout``: while it waits for its ACCESS
EXCLUSIVE lock other sessions queue behind it, so it gives up after the timeout,
names the sessions in the way (``pg_blocking_pids``), lets the queue drain and
retries with backoff. CASCADE is used only when the operator confirmed exactly
the dependents the catalog shows inside the DROP's own transaction.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql

from . import rollback_copy, rollback_preview
from .catalog import not_a_table_error
from .db import ServerFacts, connect, rollback_quietly, server_facts
from .errors import MigrateError, OperatorError, explain
from .plan import set_local, try_lock
from .rollback_events import (  # noqa: F401 - DEFAULT_* are re-exported
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_RETRIES,
    Blocker,
    Dropped,
    LockAcquired,
    LockTimedOut,
    Preview,
    PreviewReady,
    RollbackEvent,
    RollbackFinished,
    RollbackOutcome,
    RollbackStarted,
    SafetyCopy,
    SafetyCopyFinished,
    SafetyCopySkipped,
    SafetyCopyStarted,
    Verified,
    WaitingForLock,
)
from .schema import TABLE, Table
from .settings import DEFAULT_BACKUP_DIR, Settings

Emit = Callable[[RollbackEvent], None]

APPLICATION_NAME = "migrate-tui rollback"
CANCELLED_ERROR = OperatorError("Cancelled by the operator.", "Nothing was dropped. Run again when ready.", "57014")


@dataclass(frozen=True)
class RollbackOptions:
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    retries: int = DEFAULT_RETRIES  # further attempts after the first lock timeout
    backoff_s: float = 0.5  # first pause between attempts; doubles each time
    backoff_max_s: float = 8.0
    table_backup: bool = True
    backup_dir: Path = field(default=DEFAULT_BACKUP_DIR)
    trust_backup_dir: bool = False  # accept a system directory or one not owned by the operator
    watch_interval_s: float = 0.25  # how often the blockers are re-read while waiting

    @property
    def attempts(self) -> int:
        return 1 + max(0, self.retries)

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_s * (2 ** (attempt - 1)), self.backoff_max_s)


class _Stop(Exception):
    """Ends the run with this outcome (nothing dropped unless DROPPED)."""

    def __init__(self, outcome: RollbackOutcome, message: str, error: OperatorError | None = None,
                 details: tuple[str, ...] = ()):
        super().__init__(message)
        self.outcome, self.message, self.error, self.details = outcome, message, error, details


class _Cancelled(Exception):
    pass


def read_preview(settings: Settings, table: Table = TABLE, *, lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
                 ) -> Preview:
    """The preview on its own connection, in a read-only transaction that is rolled back."""
    with connect(settings, application_name=APPLICATION_NAME) as conn:
        return _preview_in_readonly_tx(conn, settings, table, lock_timeout_ms)


def _preview_in_readonly_tx(conn: psycopg.Connection, settings: Settings, table: Table,
                            lock_timeout_ms: int) -> Preview:
    conn.begin("READ ONLY")
    try:
        conn.execute(set_local("lock_timeout", lock_timeout_ms))
        conn.execute(set_local("statement_timeout", settings.statement_timeout_ms))
        return rollback_preview.preview(conn, settings.schema, table)
    finally:
        conn.execute("ROLLBACK")


class Rollback:
    def __init__(self, settings: Settings, emit: Emit, options: RollbackOptions | None = None,
                 table: Table = TABLE) -> None:
        self.settings = settings
        self.options = options or RollbackOptions()
        self.table = table
        self._emit_lock = threading.Lock()
        self._emit_to = emit
        self._cancel = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._monitor: psycopg.Connection | None = None
        self._facts: ServerFacts | None = None
        self._t0 = 0.0
        self._attempts = 0
        self._dropped = False  # the DROP was committed

    # -- public ---------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Thread-safe: stop pg_dump, interrupt a waiting statement, roll back."""
        self._cancel.set()
        conn = self._conn
        if conn is not None and not conn.closed:
            try:
                conn.cancel_safe(timeout=5)
            except Exception:  # nothing running: the flag stops us at the next check
                pass

    def run(self, confirmed: frozenset[str] | None = None, *, cascade: bool = False) -> RollbackFinished:
        """Roll back. ``confirmed``: the dependents the operator confirmed (the wizard's dialog);
        ``cascade``: confirm whatever this run's own preview shows (headless ``--cascade``)."""
        self._t0 = time.perf_counter()
        s = self.settings
        self._emit(RollbackStarted(s.masked_url, s.schema, self.table.name))
        preview: Preview | None = None
        copy: SafetyCopy | None = None
        try:
            self._conn = connect(s, application_name=APPLICATION_NAME)
            self._facts = server_facts(self._conn)
            self._check_cancel()
            preview = _preview_in_readonly_tx(self._conn, s, self.table, self.options.lock_timeout_ms)
            self._emit(PreviewReady(preview))
            if not preview.exists:
                raise _Stop(RollbackOutcome.NOTHING,
                            f"Nothing to roll back: table {preview.qualified} does not exist.")
            self._refuse_unless_ours(preview)
            agreed = self._agreed_dependents(preview, confirmed, cascade)
            self._check_cancel()
            fingerprint = None
            if self.options.table_backup:
                copy, fingerprint = self._safety_copy(preview)
            else:
                self._emit(SafetyCopySkipped("--no-table-backup: no copy of the table is kept"))
            self._drop_with_retries(preview, agreed, fingerprint)
            checks = self._verify_after_commit(preview)
            self._emit(Verified(checks))
            return self._finish(RollbackOutcome.DROPPED, f"Table {preview.qualified} was dropped and the catalog "
                                "confirms it is gone.", preview=preview, copy=copy)
        except _Stop as stop:
            return self._finish(stop.outcome, stop.message, stop.error, preview, copy, stop.details)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an event
            if isinstance(exc, (_Cancelled, rollback_copy._Cancelled, KeyboardInterrupt)) or self.cancelled:
                return self._finish(RollbackOutcome.CANCELLED, "Cancelled; nothing was dropped.",
                                    CANCELLED_ERROR, preview, copy)
            error = explain(exc, user=self._facts.user if self._facts else s.target["user"], schema=s.schema,
                            secrets=s.secrets())
            message = ("The table was dropped, but reading the catalog back failed." if self._dropped
                       else "Rollback failed; nothing was dropped.")
            return self._finish(RollbackOutcome.FAILED, message, error,
                                preview, copy)
        finally:
            self._rollback_quietly()
            for conn in (self._conn, self._monitor):
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
            self._conn = self._monitor = None

    # -- decisions ------------------------------------------------------------
    @staticmethod
    def _refuse_unless_ours(preview: Preview) -> None:
        """Only an ordinary table the operator may drop is read from or dropped."""
        if not preview.is_table:
            error = not_a_table_error(preview.schema, preview.table, preview.relkind, preview.owner,
                                      what="nothing was dropped")
            raise _Stop(RollbackOutcome.FAILED, f"{preview.qualified} is a {preview.kind}, not a table; nothing was "
                        "dropped.", error)
        if not preview.can_drop:
            raise _Stop(RollbackOutcome.FAILED, f"Table {preview.qualified} belongs to {preview.owner}; nothing was "
                        "dropped.", OperatorError(
                            f"Table {preview.qualified} is owned by {preview.owner}, and only its owner (or a "
                            "superuser) can drop it; nothing was read from it.",
                            f"Run the rollback as {preview.owner} (or as a member of that role).", "42501"))

    def _agreed_dependents(self, preview: Preview, confirmed: frozenset[str] | None,
                           cascade: bool) -> frozenset[str]:
        current = preview.dependent_keys
        if confirmed is not None:
            if frozenset(confirmed) != current:
                raise self._changed(preview.dependents, frozenset(confirmed))
            return current
        if current and not cascade:
            labels = tuple(d.label for d in preview.dependents)
            raise _Stop(RollbackOutcome.NEEDS_CONFIRMATION,
                        f"{len(labels)} other object(s) depend on {preview.qualified}; nothing was dropped.",
                        OperatorError(
                            f"Other objects depend on {preview.qualified} and DROP ... CASCADE would remove "
                            "them too: " + "; ".join(labels),
                            "Review them; to drop them with the table, confirm with --cascade "
                            "(or drop or change them yourself first).", "2BP01"),
                        labels)
        return current

    def _changed(self, now, confirmed: frozenset[str]) -> _Stop:
        current = frozenset(d.key for d in now)
        details = tuple(f"new: {k}" for k in sorted(current - confirmed)) + tuple(
            f"gone: {k}" for k in sorted(confirmed - current))
        return _Stop(RollbackOutcome.CHANGED, "The objects depending on the table changed since the preview; "
                     "nothing was dropped.",
                     OperatorError("The objects that depend on the table changed since the preview: "
                                   + "; ".join(details), "Preview the rollback again and confirm the new list."),
                     details)

    # -- safety copy ------------------------------------------------------------
    def _safety_copy(self, preview: Preview) -> tuple[SafetyCopy, tuple[int, str]]:
        assert self._facts is not None
        started = time.perf_counter()
        dump = rollback_copy.find_pg_dump(self._facts.major)

        def reserved(path, removed) -> None:
            self._emit(SafetyCopyStarted(str(path), dump.describe(), str(self.options.backup_dir), removed))

        # pg_dump reads an exported snapshot, so the rows it writes are exactly the rows counted here.
        with connect(self.settings, application_name=APPLICATION_NAME) as snap:
            snap.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snap.execute(set_local("lock_timeout", self.options.lock_timeout_ms))
            snapshot = snap.execute("SELECT pg_export_snapshot()").fetchone()[0]
            self._still_the_table(snap, preview)
            fingerprint = rollback_preview.fingerprint(snap, preview.schema, self.table)
            copy = rollback_copy.dump_table(
                self.settings, dump, self.options.backup_dir, schema=preview.schema, table=preview.table,
                snapshot=snapshot, expected_rows=fingerprint[0], lock_timeout_ms=self.options.lock_timeout_ms,
                server_major=self._facts.major, cancel=self._cancel, started=started,
                trust_dir=self.options.trust_backup_dir, on_start=reserved)
            snap.execute("ROLLBACK")
        self._emit(SafetyCopyFinished(copy))
        return copy, fingerprint

    # -- the DROP ---------------------------------------------------------------
    def _drop_with_retries(self, preview: Preview, agreed: frozenset[str],
                           fingerprint: tuple[int, str] | None) -> None:
        attempts = self.options.attempts
        for attempt in range(1, attempts + 1):
            self._attempts = attempt
            blockers = self._attempt(attempt, preview, agreed, fingerprint)
            if blockers is None:
                return
            more = attempt < attempts
            delay = self.options.backoff(attempt) if more else None
            self._emit(LockTimedOut(attempt, attempts, blockers, delay))
            if delay is None:
                raise _Stop(RollbackOutcome.FAILED, "Rollback failed; nothing was dropped.", OperatorError(
                    f"Could not get the lock on {preview.qualified} in {attempts} attempt(s) of "
                    f"{self.options.lock_timeout_ms} ms each; other sessions kept using the table.",
                    "Wait for the sessions listed to finish (or end them after checking what they do), then run "
                    "again; raise --retries or --lock-timeout to wait longer.", "55P03",
                    "; ".join(b.describe() for b in blockers) or None))
            if self._cancel.wait(delay):
                raise _Cancelled()

    def _attempt(self, attempt: int, preview: Preview, agreed: frozenset[str],
                 fingerprint: tuple[int, str] | None) -> tuple[Blocker, ...] | None:
        """One transaction. Returns None when dropped and committed, else the blockers after a lock timeout."""
        conn = self._conn
        assert conn is not None
        s = self.settings
        qualified = self.table.qualified(s.schema)
        self._check_cancel()
        conn.begin()  # BEGIN; SET LOCAL search_path = pg_catalog, pg_temp
        if not self._execute(try_lock(s.schema, self.table)).fetchone()[0]:
            raise _Stop(RollbackOutcome.BUSY, "Another migrate-tui run is working on this table; nothing was "
                        "dropped.", OperatorError("Another migration or rollback is running on this table.",
                                                  "Wait for it to finish, then run again."))
        self._execute(set_local("lock_timeout", self.options.lock_timeout_ms))
        self._execute(set_local("statement_timeout", s.statement_timeout_ms))
        t_lock = time.perf_counter()
        with _Watch(self, conn.info.backend_pid, attempt) as watch:
            try:
                self._execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(qualified))
            except psycopg.errors.LockNotAvailable:
                pass
            except psycopg.errors.UndefinedTable:
                raise _Stop(RollbackOutcome.NOTHING, f"Nothing to roll back: table {preview.qualified} was "
                            "dropped by someone else meanwhile.") from None
            else:
                watch.stop()
                self._emit(LockAcquired(attempt, (time.perf_counter() - t_lock) * 1000))
                return self._drop_locked(watch, attempt, preview, agreed, fingerprint)
        return self._after_timeout(watch)

    def _drop_locked(self, watch: "_Watch", attempt: int, preview: Preview, agreed: frozenset[str],
                     fingerprint: tuple[int, str] | None) -> tuple[Blocker, ...] | None:
        s = self.settings
        oid = self._still_the_table(self._conn, preview)  # locked now: it cannot change under us
        now = rollback_preview.dependents(self._conn, oid)
        if frozenset(d.key for d in now) != agreed:
            raise self._changed(now, agreed)
        if fingerprint is not None and rollback_preview.fingerprint(self._conn, s.schema, self.table) != fingerprint:
            raise _Stop(RollbackOutcome.CHANGED, "Rows changed after the safety copy was taken; nothing was dropped.",
                        OperatorError("The table was written to after the safety copy was taken, so the copy "
                                      "would not hold every row.", "Run the rollback again: it takes a fresh copy."))
        cascade = bool(agreed)
        statement = self.table.drop(s.schema, cascade=cascade)
        t_drop = time.perf_counter()
        with _Watch(self, self._conn.info.backend_pid, attempt) as watch:  # CASCADE locks dependents too
            try:
                self._execute(statement)
            except psycopg.errors.LockNotAvailable:
                pass
            else:
                watch.stop()
                left = rollback_preview.still_there(self._conn, s.schema, preview, self.table)
                if left:
                    raise MigrateError(OperatorError("After the DROP the catalog still shows: " + ", ".join(left),
                                                     "Nothing was committed. Report this with the audit log."))
                self._check_cancel()
                self._commit(preview)
                self._dropped = True
                self._emit(Dropped(statement.as_string(self._conn) + ";", cascade,
                                   tuple(d.label for d in now), (time.perf_counter() - t_drop) * 1000))
                return None
        return self._after_timeout(watch)

    def _still_the_table(self, conn, preview: Preview) -> int:
        """Before reading rows: the name still means an ordinary table we may drop."""
        from .catalog import relation

        rel = relation(conn, self.settings.schema, self.table)
        if rel is None:
            raise _Stop(RollbackOutcome.NOTHING, f"Nothing to roll back: table {preview.qualified} was dropped by "
                        "someone else meanwhile.")
        self._refuse_unless_ours(replace(preview, kind=rel.kind, relkind=rel.relkind, owner=rel.owner,
                                                   can_drop=rel.can_drop))
        return rel.oid

    def _commit(self, preview: Preview) -> None:
        try:
            self._conn.execute("COMMIT")
        except psycopg.OperationalError:
            # The connection died around the COMMIT: whether it was applied only the catalog knows.
            dead, self._conn = self._conn, None
            try:
                dead.close()
            except Exception:
                pass
            try:
                left = self._monitor_query(lambda m: rollback_preview.still_there(
                    m, self.settings.schema, preview, self.table))
            except Exception:
                left = ["(the catalog could not be read)"]
            if preview.qualified in left or left == ["(the catalog could not be read)"]:
                raise
            # committed after all

    def _after_timeout(self, watch: "_Watch") -> tuple[Blocker, ...]:
        self._rollback_quietly()
        found = watch.last
        if not found:
            oid = self._monitor_query(lambda m: rollback_preview.table_oid(m, self.settings.schema, self.table))
            if oid is not None:
                found = self._monitor_query(lambda m: rollback_preview.lockers(
                    m, oid, self.settings.secrets(), [watch.pid]))
        return tuple(found or ())

    # -- verification ------------------------------------------------------------
    def _verify_after_commit(self, preview: Preview) -> tuple[str, ...]:
        left = self._monitor_query(lambda m: rollback_preview.still_there(m, self.settings.schema, preview,
                                                                            self.table))
        if left:
            raise MigrateError(OperatorError("The DROP was committed but the catalog still shows: "
                                             + ", ".join(left), "Someone re-created them meanwhile; check "
                                             "with the preview (migrate-tui rollback)."))
        checks = [f"table {preview.qualified} is gone"]
        checks += [f"index {name} is gone" for name in preview.indexes]
        if preview.sequence:
            checks.append(f"sequence {preview.sequence} is gone")
        checks += [f"{d.key} is gone" for d in preview.dependents]
        return tuple(checks)

    # -- helpers ------------------------------------------------------------------
    def _monitor_query(self, read):
        if self._monitor is None or self._monitor.closed:
            self._monitor = connect(self.settings, application_name=APPLICATION_NAME + " monitor")
        return read(self._monitor)

    def _emit(self, event: RollbackEvent) -> None:
        with self._emit_lock:
            self._emit_to(event)

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise _Cancelled()

    def _execute(self, statement, params=None):
        self._check_cancel()
        assert self._conn is not None
        return self._conn.execute(statement, params)

    def _rollback_quietly(self) -> None:
        rollback_quietly(self._conn)

    def _finish(self, outcome: RollbackOutcome, message: str, error: OperatorError | None = None,
                preview: Preview | None = None, copy: SafetyCopy | None = None,
                details: tuple[str, ...] = ()) -> RollbackFinished:
        self._rollback_quietly()
        result = RollbackFinished(outcome, message, error, preview, copy, (time.perf_counter() - self._t0) * 1000,
                                  self._attempts, details)
        self._emit(result)
        return result


class _Watch:
    """While the DROP waits for a lock, re-reads who blocks it on the monitor connection."""

    def __init__(self, rollback: Rollback, pid: int, attempt: int) -> None:
        self.r = rollback
        self.pid = pid
        self.attempt = attempt
        self.last: tuple[Blocker, ...] = ()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="migrate-tui-lock-watch", daemon=True)
        self._t0 = time.perf_counter()
        self.r._monitor_query(lambda m: None)  # open the monitor connection before waiting

    def __enter__(self) -> "_Watch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _loop(self) -> None:
        interval = self.r.options.watch_interval_s
        wait = min(0.1, interval)
        secrets = self.r.settings.secrets()
        while not self._stop.wait(wait):
            wait = interval
            try:
                found = self.r._monitor_query(lambda m: rollback_preview.blockers(m, self.pid, secrets))
            except Exception:  # the monitor is best effort; the DROP's own timeout still bounds the wait
                return
            if found and not self._stop.is_set():
                self.last = found
                self.r._emit(WaitingForLock(self.attempt, self.r.options.attempts,
                                            (time.perf_counter() - self._t0) * 1000, found))
