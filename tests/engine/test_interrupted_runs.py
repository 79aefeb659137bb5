"""A run stopped mid-transaction (connection killed, operator cancel) leaves nothing partial."""

from __future__ import annotations

import pytest
from engine_support import (
    TableBlocker,
    ThreadedRun,
    catalog_snapshot,
    migration_backends,
    sequences,
    wait_for_blocked_migration,
    wait_until,
)

from migration.events import Outcome, Step, StepFailed, StepFinished, StepStarted

pytestmark = pytest.mark.timeout(120)


def blocked_run(db, settings):
    """A run whose CREATE TABLE waits on an admin session's uncommitted CREATE TABLE."""
    run = ThreadedRun.start(settings)
    pid = wait_for_blocked_migration(db)
    assert Step.TABLE_CREATION in [e.step for e in run.events if isinstance(e, StepStarted)]
    assert Step.TABLE_CREATION not in [e.step for e in run.events if isinstance(e, StepFinished)]
    return run, pid


def test_connection_killed_mid_transaction_leaves_nothing(db, settings_for):
    settings = settings_for(db, lock_timeout_ms=60_000)
    before = catalog_snapshot(db)
    with TableBlocker(db):
        run, pid = blocked_run(db, settings)
        with db.admin() as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        result = run.join(60)

    assert result.outcome is Outcome.FAILED
    failed = [e for e in run.events if isinstance(e, StepFailed)]
    assert [e.step for e in failed] == [Step.TABLE_CREATION]
    text = failed[0].error.message.lower()
    assert text.startswith("connection lost"), failed[0].error
    assert "nothing was committed" in failed[0].error.hint.lower()
    assert result.rolled_back and result.message.startswith("All changes rolled back")

    assert not db.table_exists()
    assert sequences(db) == []
    assert catalog_snapshot(db) == before
    wait_until(lambda: not migration_backends(db), 10, "the run to close its connections")


def test_cancel_while_a_statement_is_blocked(db, settings_for):
    settings = settings_for(db, lock_timeout_ms=60_000)
    before = catalog_snapshot(db)
    with TableBlocker(db):
        run, _ = blocked_run(db, settings)
        run.migration.cancel()
        result = run.join(30)

    assert result.outcome is Outcome.CANCELLED
    assert result.rolled_back
    assert "All changes rolled back" in result.message
    failed = [e for e in run.events if isinstance(e, StepFailed)]
    assert [e.step for e in failed] == [Step.TABLE_CREATION]
    assert not db.table_exists()
    assert catalog_snapshot(db) == before
    wait_until(lambda: not migration_backends(db), 10, "the run to close its connections")


def test_lock_timeout_bounds_a_blocked_step(db, settings_for):
    """With the default-style short lock_timeout the blocked CREATE TABLE gives up by itself (55P03)."""
    settings = settings_for(db, lock_timeout_ms=300)
    before = catalog_snapshot(db)
    with TableBlocker(db):
        result = ThreadedRun.start(settings).join(30)

    assert result.outcome is Outcome.FAILED
    assert result.error.sqlstate == "55P03"
    assert "--lock-timeout" in result.error.hint
    assert not db.table_exists()
    assert catalog_snapshot(db) == before


def test_cancel_after_the_table_was_created_rolls_it_back(db, settings_for):
    """Cancel between steps (from the event stream, as the wizard's button would): nothing is committed."""
    settings = settings_for(db)
    holder: dict = {}

    def emit(event):
        if isinstance(event, StepFinished) and event.step is Step.INDEX_CREATION:
            holder["m"].cancel()

    from migration.runner import Migration

    holder["m"] = Migration(settings, emit)
    result = holder["m"].run()
    assert result.outcome is Outcome.CANCELLED
    assert "All changes rolled back" in result.message
    wait_until(lambda: not migration_backends(db), 10, "the connection to close")
    assert not db.table_exists()
    assert sequences(db) == []


def test_connection_killed_between_steps_leaves_nothing(db, settings_for):
    """Killed while idle in the transaction (after CREATE TABLE, before the indexes)."""
    settings = settings_for(db)
    before = catalog_snapshot(db)

    def emit(event):
        if isinstance(event, StepFinished) and event.step is Step.TABLE_CREATION:
            (pid,) = migration_backends(db)
            with db.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            wait_until(lambda: not migration_backends(db), 10, "the backend to exit")

    from migration.runner import Migration

    result = Migration(settings, emit).run()
    assert result.outcome is Outcome.FAILED
    assert result.error.message.lower().startswith("connection lost") or \
        result.error.message == "The connection to the server was lost.", result.error
    assert result.rolled_back and result.message.startswith("All changes rolled back")
    assert not db.table_exists()
    assert sequences(db) == []
    assert catalog_snapshot(db) == before


def test_statement_timeout_bounds_a_blocked_step(db, settings_for):
    """lock_timeout high, statement_timeout low: the server cancels the statement (57014), a failure not a cancel."""
    settings = settings_for(db, lock_timeout_ms=60_000, statement_timeout_ms=400)
    with TableBlocker(db):
        result = ThreadedRun.start(settings).join(30)
    assert result.outcome is Outcome.FAILED
    assert result.error.sqlstate == "57014"
    assert "--statement-timeout" in result.error.hint
    assert result.rolled_back and not db.table_exists()


def test_cancel_after_the_commit_does_not_undo_success(db, settings_for):
    """A cancel that arrives once COMMIT went through (e.g. a late button press) keeps SUCCESS truthful."""
    from migration.runner import Migration

    holder: dict = {}

    def emit(event):
        if isinstance(event, StepFinished) and event.step is Step.TRANSACTION_COMMIT:
            holder["m"].cancel()

    holder["m"] = Migration(settings_for(db), emit)
    result = holder["m"].run()
    assert result.outcome is Outcome.SUCCESS
    assert result.message == "Migration completed successfully!"
    assert db.table_exists()


def test_connection_lost_after_the_commit_still_reports_success(db, settings_for):
    """The post-commit catalog report is informational: losing the connection then is not a failure."""
    from migration.runner import Migration

    def emit(event):
        if isinstance(event, StepFinished) and event.step is Step.TRANSACTION_COMMIT:
            (pid,) = migration_backends(db)
            with db.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            wait_until(lambda: not migration_backends(db), 10, "the backend to exit")

    result = Migration(settings_for(db), emit).run()
    assert result.outcome is Outcome.SUCCESS, result.error
    assert db.table_exists()
