"""The guide's "Manual Rollback", made safe: preview, safety copy, lock-aware DROP, verification.

``Rollback(settings, emit, options, confirmed=..., cascade=...).run()`` blocks (a thread,
a Textual worker) and reports typed events from :mod:`migration.events`; its lifecycle is
:class:`migration.operation.Operation`'s: ``cancel()`` from any thread at any time stops a
running pg_dump, cancels a waiting DROP (``cancel_safe``) and rolls back; after any error
the catalog is read back on a fresh connection before the outcome is reported.

The DROP is derived from :data:`migration.schema.TABLE` (``TABLE.drop``). It runs
in one transaction with ``SET LOCAL lock_timeout``: while it waits for its ACCESS
EXCLUSIVE lock other sessions queue behind it, so it gives up after the timeout,
names the sessions in the way (``pg_blocking_pids``), lets the queue drain and
retries with backoff. CASCADE is used only when the operator confirmed exactly
the dependents the catalog shows inside the DROP's own transaction.
"""

from __future__ import annotations

import time
from dataclasses import replace

import psycopg
from psycopg import sql

from ..catalog import lock_table, relation
from ..db import ServerFacts, connect, guarded, rollback_quietly, server_facts
from ..errors import MigrateError, OperatorError
from ..events import (
    Blocker,
    Dropped,
    LockAcquired,
    LockTimedOut,
    Outcome,
    Preview,
    PreviewReady,
    RollbackFinished,
    RollbackStarted,
    SafetyCopy,
    SafetyCopyFinished,
    SafetyCopySkipped,
    SafetyCopyStarted,
    Verified,
)
from ..operation import Busy, Emit, Operation, Stop
from ..options import DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS, RollbackOptions
from ..plan import try_lock
from ..pooler import DIRECT_URL_HINT, DUMP_REFUSED
from ..schema import TABLE, Table
from ..settings import Settings
from .. import locks
from . import dependents as rollback_dependents
from . import preview as rollback_preview
from . import safety_copy as rollback_copy
from .lock_watch import LockWatch

APPLICATION_NAME = "migrate-tui rollback"


def read_preview(settings: Settings, table: Table = TABLE, *, lock_timeout_ms: int = DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS
                 ) -> Preview:
    """The preview on its own connection, in a read-only transaction that is rolled back."""
    with connect(settings, application_name=APPLICATION_NAME) as conn:
        return _preview_in_readonly_tx(conn, settings, table, lock_timeout_ms)


def _preview_in_readonly_tx(conn: psycopg.Connection, settings: Settings, table: Table,
                            lock_timeout_ms: int) -> Preview:
    conn.begin("READ ONLY", guarded(conn, idle_ms=settings.statement_timeout_ms, lock_timeout_ms=lock_timeout_ms,
                                    statement_timeout_ms=settings.statement_timeout_ms))
    try:
        return rollback_preview.preview(conn, settings.schema, table)
    finally:
        conn.execute("ROLLBACK")


class Rollback(Operation):
    name = "rollback"
    cancelled_hint = "Nothing was dropped. Run again when ready."

    def __init__(self, settings: Settings, emit: Emit, options: RollbackOptions | None = None,
                 table: Table = TABLE, *, confirmed: frozenset[str] | None = None, cascade: bool = False,
                 accept_loss: bool = False) -> None:
        """``confirmed``: the dependents the operator confirmed (the wizard's dialog, which marks those no copy
        can hold); ``cascade``: confirm whatever this run's own preview shows (headless ``--cascade``), except
        dependents no safety copy can hold: those also need ``accept_loss`` (headless ``--accept-loss``)."""
        super().__init__(settings, emit)
        self.options = options or RollbackOptions()
        self.table = table
        self.confirmed = confirmed
        self.cascade = cascade
        self.accept_loss = accept_loss
        self._conn: psycopg.Connection | None = None
        self._monitor: psycopg.Connection | None = None
        self._facts: ServerFacts | None = None
        self._attempts = 0
        self._server_pid = 0  # pg_backend_pid() of the DROP's transaction
        self._preview: Preview | None = None
        self._copy: SafetyCopy | None = None
        self._states: dict[str, str] = {}  # what the copy holds of each dependent (dependents.state)

    # -- the lifecycle (migration.operation) ---------------------------------------------
    def _interrupt(self) -> None:
        """Stop pg_dump (it checks the flag), interrupt a waiting statement; everything rolls back."""
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.cancel_safe(timeout=5)

    def _release(self) -> None:
        self._rollback_quietly()
        for conn in (self._conn, self._monitor):
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - a dead connection: nothing to close
                    pass
        self._conn = self._monitor = None

    def _user(self) -> str | None:
        return self._facts.user if self._facts else super()._user()

    def _perform(self) -> RollbackFinished:
        s = self.settings
        self.emit(RollbackStarted(s.masked_url, s.schema, self.table.name))
        self._conn = connect(s, application_name=APPLICATION_NAME)
        self._facts = server_facts(self._conn)
        pooler = self.note_pooler(self._conn, self._facts)
        self.check_cancel()
        preview = self._preview = _preview_in_readonly_tx(self._conn, s, self.table, self.options.lock_timeout_ms)
        self.emit(PreviewReady(preview))
        if not preview.exists:
            raise Stop(Outcome.NOT_NEEDED, f"Nothing to roll back: table {preview.qualified} does not exist.")
        self._refuse_unless_ours(preview)
        self._refuse_others(preview)
        agreed = self._agreed_dependents(preview, self.confirmed, self.cascade)
        self.check_cancel()
        fingerprint = None
        if self.options.table_backup and not pooler.dumps_safely:
            raise Stop(Outcome.FAILED, "Rollback refused: no safety copy could be taken, so nothing was dropped.",
                       OperatorError(f"The safety copy (pg_dump) does not run through {pooler.label}: "
                                     f"{DUMP_REFUSED}.",
                                     f"{DIRECT_URL_HINT} (set DATABASE_URL to it), then run the rollback again; or "
                                     "pass --no-table-backup to drop the table without a copy (the DROP itself is "
                                     "safe through transaction pooling)."))
        if self.options.table_backup:
            self._copy, fingerprint = self._safety_copy(preview)
        else:
            self.emit(SafetyCopySkipped("--no-table-backup: no copy of the table is kept"))
        self._drop_with_retries(preview, agreed, fingerprint)
        checks = self._verify_after_commit(preview)
        self.emit(Verified(checks))
        return self._ended(Outcome.SUCCESS, f"Table {preview.qualified} was dropped and the catalog confirms it is "
                           "gone.")

    def _after_error(self, outcome: Outcome, error: OperatorError) -> RollbackFinished:
        """Whether the DROP happened is read from the catalog on a fresh connection, never assumed."""
        preview = self._preview
        self._rollback_quietly()
        if preview is None or not preview.exists:
            return self._ended(outcome, "Cancelled; nothing was dropped." if outcome is Outcome.CANCELLED
                               else "Rollback failed; nothing was dropped.", error)
        left = self._read_back(preview)
        if left is None:
            return self._ended(outcome, "Rollback failed, and the catalog could not be read afterwards: check "
                               "with the preview (migrate-tui rollback) whether the table is still there.", error)
        if preview.qualified not in left:  # the DROP was committed after all: say so, whatever failed later
            gone = not left
            # The error's own fix may assume a rollback ("nothing was committed"): it came after the commit.
            undo = (f"restore the safety copy with migrate-tui rollback --restore {self._copy.path}" if self._copy
                    else "no safety copy was taken; restore the table from your backup if it is needed")
            error = replace(error, hint=f"The DROP was committed: nothing to run again. To undo it, {undo}.")
            return self._ended(Outcome.SUCCESS if gone else Outcome.FAILED,
                               f"Table {preview.qualified} was dropped: the catalog, read after the error, confirms "
                               "it is gone" + ("." if gone else f", but still shows {', '.join(left)}."), error)
        verb = "Cancelled" if outcome is Outcome.CANCELLED else "Rollback failed"
        return self._ended(outcome, f"{verb}; nothing was dropped (the catalog still shows {preview.qualified}).",
                           error)

    def _read_back(self, preview: Preview) -> list[str] | None:
        """What of the preview the catalog still shows, on a fresh connection (None: unreadable)."""
        try:
            with connect(self.settings, application_name=APPLICATION_NAME + " read-back",
                         connect_timeout=5) as conn:
                return rollback_preview.still_there(conn, self.settings.schema, preview, self.table)
        except Exception:  # noqa: BLE001 - the caller says the outcome is unknown
            return None

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = ()) -> RollbackFinished:
        self._rollback_quietly()
        return RollbackFinished(outcome, message, error, self.elapsed_ms, self._preview, self._copy,
                                self._attempts, details)

    # -- decisions ------------------------------------------------------------
    @staticmethod
    def _refuse_unless_ours(preview: Preview) -> None:
        """Only an ordinary table of the operator's own role is read from or dropped."""
        error = rollback_preview.not_ours(preview)
        if error is not None:
            raise Stop(Outcome.FAILED, f"{preview.qualified}: nothing was dropped.", error)

    def _agreed_dependents(self, preview: Preview, confirmed: frozenset[str] | None,
                           cascade: bool) -> frozenset[str]:
        current = preview.dependent_keys
        if confirmed is not None:
            if frozenset(confirmed) != current:
                raise self._changed(preview.dependents, frozenset(confirmed))
            return current
        if current and not cascade:
            labels = tuple(_labelled(d, self.options.table_backup) for d in preview.dependents)
            raise Stop(Outcome.NEEDS_CONFIRMATION,
                        f"{len(labels)} other object(s) depend on {preview.qualified}; nothing was dropped.",
                        OperatorError(
                            f"Other objects depend on {preview.qualified} and DROP ... CASCADE would remove "
                            "them too: " + "; ".join(labels),
                            "Review them; to drop them with the table, confirm with --cascade "
                            "(or drop or change them yourself first)."
                            + (" Those marked NOT recoverable also need --accept-loss." if preview.lost
                               and self.options.table_backup else ""), "2BP01"),
                        labels)
        if preview.lost and self.options.table_backup and not self.accept_loss:
            labels = tuple(_labelled(d, True) for d in preview.lost)
            raise Stop(Outcome.NEEDS_CONFIRMATION,
                        f"{len(labels)} object(s) that depend on {preview.qualified} cannot be kept in the safety "
                        "copy; nothing was dropped.",
                        OperatorError(
                            "DROP ... CASCADE would remove objects that no safety copy can bring back: "
                            + "; ".join(labels),
                            "Change or drop them yourself first (e.g. change the column's type), or confirm the "
                            "loss with --cascade --accept-loss.", "2BP01"),
                        labels)
        return current

    @staticmethod
    def _refuse_others(preview: Preview) -> None:
        """PostgreSQL's CASCADE drops other roles' objects without asking them; migrate-tui never does (and the
        restore could not recreate them as you): those roles drop or change their objects first."""
        others = preview.others
        if not others:
            return
        owners = sorted({d.owner or "another role" for d in others})
        raise Stop(Outcome.FAILED, f"{len(others)} object(s) of other roles depend on {preview.qualified}; nothing "
                   "was dropped.", OperatorError(
                       f"DROP ... CASCADE would also remove objects owned by {', '.join(owners)}: "
                       + "; ".join(f"{d.label} (owner {d.owner or '?'})" for d in others)
                       + ". migrate-tui never drops another role's objects, and the restore could not recreate "
                       "them as you.",
                       f"Ask {owners[0]} to drop or change them first (or run the rollback as that role), then run "
                       "it again.", "42501"),
                   tuple(d.label for d in others))

    def _changed(self, now, confirmed: frozenset[str]) -> Stop:
        current = frozenset(d.key for d in now)
        details = tuple(f"new: {k}" for k in sorted(current - confirmed)) + tuple(
            f"gone: {k}" for k in sorted(confirmed - current))
        return Stop(Outcome.CHANGED, "The objects depending on the table changed since the preview; "
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
            self.emit(SafetyCopyStarted(str(path), dump.describe(), str(self.options.backup_dir), removed))

        # pg_dump reads an exported snapshot, so the rows it writes are exactly the rows counted here.
        # It sits idle in its transaction while pg_dump runs: no role or database timeout may end it (and
        # with it the snapshot) meanwhile; pg_dump's own session does the same for itself.
        with connect(self.settings, application_name=APPLICATION_NAME) as snap:
            snap.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", guarded(
                snap, idle_ms=0, lock_timeout_ms=self.options.lock_timeout_ms,
                statement_timeout_ms=self.settings.statement_timeout_ms))
            snapshot = snap.execute("SELECT pg_export_snapshot()").fetchone()[0]
            oid = lock_table(snap, preview.schema, self.table).oid  # by name, then checked: only then read
            fingerprint = rollback_preview.fingerprint(snap, preview.schema, self.table)
            # what CASCADE drops, read again here: the copy holds what recreates each of them
            deps = rollback_preview.dependents(snap, oid)
            if frozenset(d.key for d in deps) != preview.dependent_keys:
                raise self._changed(deps, preview.dependent_keys)
            plan = rollback_dependents.plan(snap, deps)
            self._states = rollback_dependents.states(snap, deps)
            copy = rollback_copy.dump_table(
                self.settings, dump, self.options.backup_dir, schema=preview.schema, table=preview.table,
                snapshot=snapshot, expected_rows=fingerprint[0], lock_timeout_ms=self.options.lock_timeout_ms,
                server_major=self._facts.major, cancel=self._cancel, started=started,
                trust_dir=self.options.trust_backup_dir, on_start=reserved, plan=plan)
            snap.execute("ROLLBACK")
        self.emit(SafetyCopyFinished(copy))
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
            self.emit(LockTimedOut(attempt, attempts, blockers, delay))
            if delay is None:
                raise Stop(Outcome.FAILED, "Rollback failed; nothing was dropped.", OperatorError(
                    f"Could not get the lock on {preview.qualified} in {attempts} attempt(s) of "
                    f"{self.options.lock_timeout_ms} ms each; other sessions kept using the table.",
                    "Wait for the sessions listed to finish (or end them after checking what they do), then run "
                    "again; raise --retries or --lock-timeout to wait longer.", "55P03",
                    "; ".join(b.describe() for b in blockers) or None))
            self.pause(delay)

    def _attempt(self, attempt: int, preview: Preview, agreed: frozenset[str],
                 fingerprint: tuple[int, str] | None) -> tuple[Blocker, ...] | None:
        """One transaction. Returns None when dropped and committed, else the blockers after a lock timeout."""
        conn = self._conn
        assert conn is not None
        s = self.settings
        qualified = self.table.qualified(s.schema)
        self.check_cancel()
        # BEGIN; SET LOCAL search_path = pg_catalog, pg_temp; our timeouts, in one round trip. Never idle
        # for long on purpose, but the audit log and the screen are written between statements: a role's
        # idle_in_transaction_session_timeout of a few ms must not end it (our statement timeout still does).
        conn.begin(local=guarded(conn, idle_ms=s.statement_timeout_ms, lock_timeout_ms=self.options.lock_timeout_ms,
                                 statement_timeout_ms=s.statement_timeout_ms))
        if not self._execute(try_lock(s.schema, self.table)).fetchone()[0]:
            raise Busy(OperatorError("Another migration or rollback is running on this table.",
                                     "Wait for it to finish, then run again."))
        # The server process this transaction runs on: behind a pooler conn.info.backend_pid is the pooler's
        # cancel key, and through transaction pooling the process may change from one transaction to the next.
        self._server_pid = int(self._execute("SELECT pg_backend_pid()").fetchone()[0])
        t_lock = time.perf_counter()
        with self._watch(self._server_pid, attempt) as watch:
            try:
                self._execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(qualified))
            except psycopg.errors.LockNotAvailable:
                pass
            except psycopg.errors.UndefinedTable:
                raise Stop(Outcome.NOT_NEEDED, f"Nothing to roll back: table {preview.qualified} was "
                            "dropped by someone else meanwhile.") from None
            else:
                watch.stop()
                self.emit(LockAcquired(attempt, (time.perf_counter() - t_lock) * 1000))
                return self._drop_locked(watch, attempt, preview, agreed, fingerprint)
        return self._after_timeout(watch)

    def _drop_locked(self, watch: LockWatch, attempt: int, preview: Preview, agreed: frozenset[str],
                     fingerprint: tuple[int, str] | None) -> tuple[Blocker, ...] | None:
        s = self.settings
        oid = self._still_the_table(self._conn, preview)  # locked now: it cannot change under us
        now = rollback_preview.dependents(self._conn, oid)
        if frozenset(d.key for d in now) != agreed:
            raise self._changed(now, agreed)
        self._refuse_others(replace(preview, dependents=now))  # an owner changed meanwhile
        if fingerprint is not None and rollback_preview.fingerprint(self._conn, s.schema, self.table) != fingerprint:
            raise Stop(Outcome.CHANGED, "Rows changed after the safety copy was taken; nothing was dropped.",
                        OperatorError("The table was written to after the safety copy was taken, so the copy "
                                      "would not hold every row.", "Run the rollback again: it takes a fresh copy."))
        if fingerprint is not None:
            changed = [key for key, digest in rollback_dependents.states(self._conn, now).items()
                       if digest != self._states.get(key)]
            if changed:
                raise Stop(Outcome.CHANGED, "Objects that depend on the table changed after the safety copy was "
                           "taken; nothing was dropped.", OperatorError(
                               "Changed after the safety copy was taken, so the copy would recreate an older "
                               "version: " + "; ".join(changed), "Run the rollback again: it takes a fresh copy."),
                           tuple(changed))
        cascade = bool(agreed)
        statement = self.table.drop(s.schema, cascade=cascade)
        t_drop = time.perf_counter()
        with self._watch(self._server_pid, attempt) as watch:  # CASCADE locks dependents too
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
                self.check_cancel()
                self._commit(preview)
                self.emit(Dropped(statement.as_string(self._conn) + ";", cascade,
                                   tuple(d.label for d in now), (time.perf_counter() - t_drop) * 1000))
                return None
        return self._after_timeout(watch)

    def _still_the_table(self, conn, preview: Preview) -> int:
        """Before reading rows: the name still means an ordinary table we may drop."""
        rel = relation(conn, self.settings.schema, self.table)
        if rel is None:
            raise Stop(Outcome.NOT_NEEDED, f"Nothing to roll back: table {preview.qualified} was dropped by "
                        "someone else meanwhile.")
        self._refuse_unless_ours(replace(preview, kind=rel.kind, relkind=rel.relkind, owner=rel.owner,
                                                   can_drop=rel.can_drop))
        return rel.oid

    def _watch(self, pid: int, attempt: int) -> LockWatch:
        return LockWatch(self._monitor_query, self.emit, pid, attempt, self.options.attempts,
                         self.options.watch_interval_s, self.settings.secrets())

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

    def _after_timeout(self, watch: LockWatch) -> tuple[Blocker, ...]:
        self._rollback_quietly()
        found = watch.last
        if not found:
            oid = self._monitor_query(lambda m: rollback_preview.table_oid(m, self.settings.schema, self.table))
            if oid is not None:
                found = self._monitor_query(lambda m: locks.lockers(
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

    def _execute(self, statement, params=None):
        self.check_cancel()
        assert self._conn is not None
        return self._conn.execute(statement, params)

    def _rollback_quietly(self) -> None:
        rollback_quietly(self._conn)


def _labelled(dep, copy: bool) -> str:
    """A dependent as the operator confirms it: with what becomes of it when a copy is taken."""
    return f"{dep.label} — {dep.fate}" if copy else dep.label
