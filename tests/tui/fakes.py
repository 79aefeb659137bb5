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
            default = "nextval('database_backups_id_seq'::regclass)"
        out.append(ColumnFact(c.name, c.catalog_type, c.not_null or c.primary_key, default))
    return tuple(out)


def _indexes() -> tuple[IndexFact, ...]:
    names = ["database_backups_filename_key", "database_backups_pkey", *(ix.name for ix in TABLE.indexes)]
    return tuple(IndexFact(n, f"CREATE INDEX {n} ...", "public.database_backups") for n in sorted(names))


VALID = StructureReport(exists=True, columns=_columns(), indexes=_indexes())
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
