"""A failure after the table was created (index name clash) rolls everything back."""

from __future__ import annotations

from engine_support import catalog_snapshot, run, sequences

from migration.events import Outcome, RunFinished, Step, StepFailed, StepFinished, StepSkipped


def test_index_name_clash_fails_at_index_creation_and_leaves_nothing(db, settings_for):
    with db.app() as conn:
        conn.execute("CREATE TABLE jobs (id int, status text)")
        conn.execute("CREATE INDEX idx_database_backups_status ON jobs(status)")
    before = catalog_snapshot(db)

    result, events = run(settings_for(db))

    assert result.outcome is Outcome.FAILED
    failed = [e for e in events if isinstance(e, StepFailed)]
    assert [e.step for e in failed] == [Step.INDEX_CREATION]
    error = failed[0].error
    assert error.sqlstate == "42P07"
    assert "idx_database_backups_status" in error.message
    assert "idx_database_backups_" in error.hint and error.hint.strip()
    # The table had been created inside the transaction before the failure.
    assert [e.step for e in events if isinstance(e, StepFinished)] == [
        Step.CONNECTION_TEST, Step.EXISTENCE_CHECK, Step.TRANSACTION_START, Step.TABLE_CREATION]
    assert {e.step for e in events if isinstance(e, StepSkipped)} == {
        Step.SEQUENCE_RESET, Step.VERIFICATION, Step.TRANSACTION_COMMIT}
    assert isinstance(events[-1], RunFinished) and events[-1] is result
    assert result.rolled_back is True
    assert result.message.startswith("All changes rolled back")
    assert "does not exist" in result.message  # confirmed on a fresh connection

    assert not db.table_exists()
    assert sequences(db) == []
    assert catalog_snapshot(db) == before


def test_clash_in_another_schema_does_not_matter(db, settings_for):
    """Index names are per schema: an index of that name elsewhere is no conflict."""
    with db.app() as conn:
        conn.execute("CREATE SCHEMA other")
        conn.execute("CREATE TABLE other.jobs (id int, status text)")
        conn.execute("CREATE INDEX idx_database_backups_status ON other.jobs(status)")

    result, _ = run(settings_for(db))

    assert result.outcome is Outcome.SUCCESS
    assert db.table_exists()


def test_permission_denied_fails_with_grant_hint_and_leaves_nothing(db, settings_for):
    """A role without CREATE on the schema fails at table creation with the guide's GRANT fix."""
    db.execute("ALTER SCHEMA public OWNER TO CURRENT_USER")
    db.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    before = catalog_snapshot(db)

    result, events = run(settings_for(db))

    assert result.outcome is Outcome.FAILED
    failed = [e for e in events if isinstance(e, StepFailed)]
    assert [e.step for e in failed] == [Step.TABLE_CREATION]
    assert failed[0].error.sqlstate == "42501"
    assert "permission denied for schema public" in failed[0].error.message
    assert failed[0].error.hint == "Ask an administrator to run: GRANT CREATE ON SCHEMA public TO app_user;"
    assert result.rolled_back and not db.table_exists()
    assert catalog_snapshot(db) == before
