"""Deterministic stand-ins for the snapshots: a fixed target and a replay of a run's events.

Snapshots must not show clocks, hostnames, ports or timings, so the snapshot
apps get a fixed overview and replay these events (with ``deterministic=True``).
``test_snapshots.test_replayed_events_match_a_real_run`` checks them against a
real run on PostgreSQL so they cannot drift from what the engine emits.
"""

from __future__ import annotations

import threading

from harness import CANARY

from migration.catalog import ColumnFact, IndexFact, StructureReport
from migration.db import ServerFacts
from migration.errors import OperatorError
from migration.events import (
    Outcome,
    RunFinished,
    RunStarted,
    Step,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from migration.overview import TargetOverview
from migration.catalog import GUIDE_FIX_INVALID
from migration.runner import ROLLED_BACK
from migration.schema import TABLE
from migration.settings import load_settings

FIXED_URL = f"postgresql://shop_app:{CANARY}@db.internal.example:5432/shop"
FACTS = ServerFacts(version="PostgreSQL 18.6", version_num=180006, server_time="2026-01-15 10:30:25",
                    user="shop_app", database="shop", in_recovery=False, ssl=True)
MISSING = "Required column metadata is missing from database_backups table"


def fixed_settings(**overrides):
    return load_settings(database_url=FIXED_URL, environ={"CRON_SECRET": "s3cret-value-for-cron"}, **overrides)


def _columns() -> tuple[ColumnFact, ...]:
    out = []
    for c in TABLE.columns:
        default = c.catalog_default
        if default == "nextval":
            default = "nextval('public.database_backups_id_seq'::regclass)"
        out.append(ColumnFact(c.name, c.catalog_type, c.not_null or c.primary_key, default))
    return tuple(out)


def _indexes() -> tuple[IndexFact, ...]:
    columns = {"database_backups_filename_key": "filename", "database_backups_pkey": "id",
               **{ix.name: ix.column for ix in TABLE.indexes}}
    return tuple(IndexFact(n, f"CREATE INDEX {n} ON public.database_backups USING btree ({c})",
                           "public.database_backups") for n, c in sorted(columns.items()))


VALID = StructureReport(exists=True, columns=_columns(), indexes=_indexes(),
                        constraints=("p:PRIMARY KEY (id)", "u:UNIQUE (filename)"),
                        sequence="public.database_backups_id_seq")
ABSENT = StructureReport(exists=False)
INVALID = StructureReport(exists=True, columns=tuple(c for c in _columns() if c.name != "metadata"),
                          indexes=_indexes(), problems=(MISSING,))
CLASH = StructureReport(exists=False, foreign_index_names=(IndexFact(
    "idx_database_backups_status", "CREATE INDEX idx_database_backups_status ON public.other_things ...",
    "public.other_things"),))


def overview(report: StructureReport | None = ABSENT, error: OperatorError | None = None,
             settings=None) -> TargetOverview:
    s = settings or fixed_settings()
    return TargetOverview(s.masked_url, s.schema, TABLE.name, s.optional_present(),
                          None if error else FACTS, None if error else report, error)


def describe_with(report=ABSENT, error=None):
    return lambda settings: overview(report, error, settings)


def _done(step, message, details=(), quiet=False, warning=False):
    return [StepStarted(step), StepFinished(step, 0.0, message, tuple(details), warning, quiet)]


def _start(masked):
    return [RunStarted(masked, "public", "database_backups"),
            *_done(Step.CONNECTION_TEST, "Database connection successful",
                   (f"Server time: {FACTS.server_time}", f"PostgreSQL version: {FACTS.version}"))]


def success_events(masked: str) -> list:
    return [
        *_start(masked),
        *_done(Step.EXISTENCE_CHECK, "Table database_backups does not exist yet in schema public", quiet=True),
        *_done(Step.TRANSACTION_START, "Transaction started", ("lock_timeout 5000 ms, statement_timeout 60000 ms",),
               quiet=True),
        *_done(Step.TABLE_CREATION, "Table database_backups created successfully"),
        *_done(Step.INDEX_CREATION, "Indexes created successfully", [ix.name for ix in TABLE.indexes]),
        *_done(Step.SEQUENCE_RESET, "Sequence reset successfully", ("Next id: 1",)),
        *_done(Step.VERIFICATION, "Migration verification successful", (
            "10 columns, 5 indexes (primary key, unique filename, 3 performance indexes)",
            "Test row inserted (id 1) and deleted; next id: 1")),
        *_done(Step.TRANSACTION_COMMIT, "Transaction committed successfully"),
        RunFinished(Outcome.SUCCESS, "Migration completed successfully!", report=VALID),
    ]


def not_needed_events(masked: str) -> list:
    return [
        *_start(masked),
        *_done(Step.EXISTENCE_CHECK, "Table database_backups already exists", warning=True),
        *(StepSkipped(s, "Table already exists") for s in (Step.TRANSACTION_START, Step.TABLE_CREATION,
                                                          Step.INDEX_CREATION, Step.SEQUENCE_RESET)),
        *_done(Step.VERIFICATION, "Migration verification successful"),
        StepSkipped(Step.TRANSACTION_COMMIT, "Nothing to commit"),
        RunFinished(Outcome.NOT_NEEDED, "Migration not needed - table already exists and is valid", report=VALID),
    ]


def _failed_after(step: Step, error: OperatorError, outcome=Outcome.FAILED, rolled_back=True) -> list:
    reason = "Cancelled" if outcome is Outcome.CANCELLED else "Stopped after the failure"
    message = f"{ROLLED_BACK}: verified, database_backups does not exist" if rolled_back else "Nothing was changed"
    return [StepFailed(step, 0.0, error), *(StepSkipped(s, reason) for s in Step if s > step),
            RunFinished(outcome, message, error=error, rolled_back=rolled_back)]


INVALID_ERROR = OperatorError(MISSING, GUIDE_FIX_INVALID.format(table='"public"."database_backups"'))
CLASH_ERROR = OperatorError(
    'An object with this name already exists: relation "idx_database_backups_status" already exists',
    "Another object uses one of the names this migration creates. Rename or drop it (check the index names "
    "idx_database_backups_*), then run again.", "42P07")
CANCEL_ERROR = OperatorError("Cancelled by the operator.", "Nothing was committed. Run again when ready.", "57014")


def invalid_events(masked: str) -> list:
    return [*_start(masked), StepStarted(Step.EXISTENCE_CHECK),
            *_failed_after(Step.EXISTENCE_CHECK, INVALID_ERROR, rolled_back=False)]


def clash_events(masked: str) -> list:
    return [
        *_start(masked),
        *_done(Step.EXISTENCE_CHECK, "Table database_backups does not exist yet in schema public", quiet=True),
        *_done(Step.TRANSACTION_START, "Transaction started", ("lock_timeout 5000 ms, statement_timeout 60000 ms",),
               quiet=True),
        *_done(Step.TABLE_CREATION, "Table database_backups created successfully"),
        StepStarted(Step.INDEX_CREATION),
        *_failed_after(Step.INDEX_CREATION, CLASH_ERROR),
    ]


BLOCK = object()


def running_events(masked: str) -> list:
    """Stops inside Table Creation until cancelled, then ends like a real cancel."""
    return [
        *_start(masked),
        *_done(Step.EXISTENCE_CHECK, "Table database_backups does not exist yet in schema public", quiet=True),
        *_done(Step.TRANSACTION_START, "Transaction started", ("lock_timeout 5000 ms, statement_timeout 60000 ms",),
               quiet=True),
        StepStarted(Step.TABLE_CREATION),
        BLOCK,
        *_failed_after(Step.TABLE_CREATION, CANCEL_ERROR, Outcome.CANCELLED),
    ]


class Replay:
    """A migration_factory: ``MigrateApp(migration_factory=Replay.of(success_events))``."""

    def __init__(self, settings, emit, events) -> None:
        self.emit = emit
        self.events = events(settings.masked_url)
        self._cancel = threading.Event()

    @classmethod
    def of(cls, events):
        return lambda settings, emit: cls(settings, emit, events)

    def run(self):
        last = None
        for event in self.events:
            if event is BLOCK:
                self._cancel.wait(60)
                continue
            self.emit(event)
            last = event
        return last

    def cancel(self) -> None:
        self._cancel.set()


# -- the Post-migration screen's verification and the Rollback screen's drop, replayed ---------------------------
def verify_events(masked: str, broken: bool = False) -> list:
    """What Verify emits after a migration (``broken``: the status column lost its default)."""
    from migration.describe import described
    from migration.events import TableDescribed, TableListed, VerifyFinished, VerifyStarted
    from migration.verify import guide_query

    report = VALID
    if broken:
        columns = tuple(ColumnFact(c.name, c.type, c.not_null, None if c.name == "status" else c.default)
                        for c in VALID.columns)
        report = StructureReport(exists=True, columns=columns, indexes=VALID.indexes, constraints=VALID.constraints,
                                 sequence=VALID.sequence)
    lines = described(report, "public")
    bad = [line for line in lines if not line.ok]
    message = (f"{len(bad)} of {len(lines)} lines do not match the guide's definition." if bad
               else f"Migration verified: All {len(lines)} lines match the guide's definition.")
    error = OperatorError(f"{message} (column status)", GUIDE_FIX_INVALID.format(table='"public"."database_backups"')
                          ) if bad else None
    return [VerifyStarted(masked, "public", "database_backups"),
            TableListed(guide_query("public"), ("database_backups",)), TableDescribed(lines),
            VerifyFinished(Outcome.FAILED if bad else Outcome.SUCCESS, message, error, found=True, lines=lines)]


def broken_verify_events(masked: str) -> list:
    return verify_events(masked, broken=True)


HIDDEN = "ops-psql"


def rollback_failed_events(masked: str) -> list:
    """A rollback whose DROP waited behind a session the role may not see, then gave up (nothing dropped)."""
    from migration.events import (Blocker, LockTimedOut, RollbackFinished, RollbackStarted, SafetyCopy,
                                  SafetyCopyFinished, SafetyCopyStarted, WaitingForLock)

    copy = SafetyCopy("backups/public.database_backups-before-rollback-20260115T103025Z.sql", 3412, "ae36" * 16, 3,
                      'psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f '
                      "backups/public.database_backups-before-rollback-20260115T103025Z.sql", "pg_dump 18.6")
    blockers = (Blocker(7831, HIDDEN, "postgres", "", None, "", hidden=True, holds="AccessShareLock"),
                Blocker(7840, "report-job", "shop_app", "idle in transaction", 69.0,
                        "SELECT count(*) FROM database_backups", holds="AccessShareLock"))
    error = OperatorError("Could not get a lock within the lock timeout: 1 attempt(s) of 300 ms", "Another session "
                          "holds a conflicting lock. Wait for it to finish (see pg_stat_activity) or raise "
                          "--lock-timeout, then run again.", "55P03")
    return [RollbackStarted(masked, "public", "database_backups"),
            SafetyCopyStarted(copy.path, "pg_dump 18.6"), SafetyCopyFinished(copy),
            WaitingForLock(1, 1, 300.0, blockers), BLOCK_UNLESS_FINISHING,
            LockTimedOut(1, 1, blockers, None),
            RollbackFinished(Outcome.FAILED, "Rollback failed; nothing was dropped (the catalog still shows "
                             "public.database_backups)", error, 0.0, copy=copy, attempts=1)]


BLOCK_UNLESS_FINISHING = object()  # a waiting replay stops here; a finishing one goes on


class ReplayedRollback:
    """A rollback_factory for RollbackScreen: ``finish=False`` stays waiting for the lock until cancelled."""

    def __init__(self, settings, emit, events, finish: bool = True) -> None:
        self.emit, self.finish = emit, finish
        self.events = events(settings.masked_url)
        self._cancel = threading.Event()

    @classmethod
    def of(cls, events, finish: bool = True):
        return lambda settings, emit, options, confirmed: cls(settings, emit, events, finish)

    def run(self):
        for event in self.events:
            if event is BLOCK_UNLESS_FINISHING:
                if not self.finish:
                    self._cancel.wait(60)
                    return None
                continue
            self.emit(event)
        return self.events[-1]

    def cancel(self) -> None:
        self._cancel.set()
