"""A database_backups table that is already there: valid, compatible, or with the wrong structure."""

from __future__ import annotations

from engine_support import catalog_snapshot, run

from migration.events import Outcome, Step, StepFailed, StepFinished, StepSkipped

# A hand-written copy of the guide's DDL with one change each: the tests must not depend on
# migration/schema.py producing the statement they check.
GUIDE_COLUMNS = {
    "id": "SERIAL PRIMARY KEY",
    "filename": "TEXT NOT NULL UNIQUE",
    "s3_key": "TEXT NOT NULL",
    "file_size": "INTEGER NOT NULL",
    "backup_type": "TEXT DEFAULT 'full' NOT NULL",
    "status": "TEXT DEFAULT 'completed' NOT NULL",
    "created_by": "TEXT DEFAULT 'system' NOT NULL",
    "metadata": "JSONB",
    "created_at": "TIMESTAMP DEFAULT NOW()",
    "completed_at": "TIMESTAMP",
}
GUIDE_INDEXES = (
    "CREATE INDEX idx_database_backups_created_at ON database_backups(created_at)",
    "CREATE INDEX idx_database_backups_status ON database_backups(status)",
    "CREATE INDEX idx_database_backups_created_by ON database_backups(created_by)",
)


def create_guide_table(db, *, drop: str | None = None, override: dict[str, str] | None = None,
                       indexes: bool = True) -> None:
    columns = {**GUIDE_COLUMNS, **(override or {})}
    if drop:
        del columns[drop]
    body = ",\n  ".join(f"{name} {ddl}" for name, ddl in columns.items())
    with db.app() as conn:  # owned by the application role, like a table the app created
        conn.execute(f"CREATE TABLE database_backups (\n  {body}\n)")
        if indexes:
            for statement in GUIDE_INDEXES:
                conn.execute(statement)


def assert_failed_at_existence_check(result, events, message: str) -> None:
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.message == message
    assert result.error.hint  # the guide's two options
    assert "DROP TABLE" in result.error.hint and "add missing columns" in result.error.hint
    assert result.rolled_back is False and result.message == "Nothing was changed"
    failed = [e for e in events if isinstance(e, StepFailed)]
    assert [e.step for e in failed] == [Step.EXISTENCE_CHECK]
    finished = [e.step for e in events if isinstance(e, StepFinished)]
    assert finished == [Step.CONNECTION_TEST]
    assert {e.step for e in events if isinstance(e, StepSkipped)} == {s for s in Step if s > Step.EXISTENCE_CHECK}


def test_missing_column_fails_naming_it_and_changes_nothing(db, settings_for):
    create_guide_table(db, drop="metadata")
    before = catalog_snapshot(db)

    result, events = run(settings_for(db))

    assert_failed_at_existence_check(result, events, "Required column metadata is missing from database_backups table")
    after = catalog_snapshot(db)
    assert after == before
    assert "metadata" not in [c[2] for c in after["columns"] if c[1] == "database_backups"]


def test_missing_column_without_indexes_adds_no_index(db, settings_for):
    """The indexes are created only after the check: a rejected table gets none of them."""
    create_guide_table(db, drop="metadata", indexes=False)
    before = catalog_snapshot(db)

    result, events = run(settings_for(db))

    assert_failed_at_existence_check(result, events, "Required column metadata is missing from database_backups table")
    after = catalog_snapshot(db)
    assert after == before
    assert not [ix for ix in after["indexes"] if ix[2].startswith("idx_database_backups_")]


def test_several_missing_columns_are_all_named(db, settings_for):
    create_guide_table(db, drop="metadata")
    with db.app() as conn:
        conn.execute("ALTER TABLE database_backups DROP COLUMN completed_at")
    before = catalog_snapshot(db)

    result, _ = run(settings_for(db))

    assert result.outcome is Outcome.FAILED
    assert "Required column metadata is missing from database_backups table" in result.error.message
    assert "Required column completed_at is missing from database_backups table" in result.error.message
    assert catalog_snapshot(db) == before


def test_wrong_column_type_fails_naming_the_column(db, settings_for):
    create_guide_table(db, override={"file_size": "TEXT NOT NULL"})
    before = catalog_snapshot(db)

    result, events = run(settings_for(db))

    assert_failed_at_existence_check(result, events, "Column file_size has type text, expected integer")
    assert catalog_snapshot(db) == before


def test_bigint_file_size_is_accepted_with_a_note(db, settings_for):
    create_guide_table(db, override={"file_size": "BIGINT NOT NULL"})
    before = catalog_snapshot(db)

    result, events = run(settings_for(db))

    assert result.outcome is Outcome.NOT_NEEDED
    assert result.message == "Migration not needed - table already exists and is valid"
    assert result.report is not None and result.report.valid
    assert "Column file_size has type bigint (compatible with integer)" in result.report.differences
    verification = [e for e in events if isinstance(e, StepFinished) and e.step is Step.VERIFICATION]
    assert verification and "Column file_size has type bigint (compatible with integer)" in verification[0].details
    existence = [e for e in events if isinstance(e, StepFinished) and e.step is Step.EXISTENCE_CHECK]
    assert existence[0].warning and existence[0].message == "Table database_backups already exists"
    assert catalog_snapshot(db) == before


def test_valid_table_created_by_hand_is_not_needed(db, settings_for):
    """The guide's own DDL, run by hand earlier, is recognised as the migration's table."""
    create_guide_table(db)
    before = catalog_snapshot(db)

    result, _ = run(settings_for(db))

    assert result.outcome is Outcome.NOT_NEEDED
    assert result.report.differences == ()
    assert catalog_snapshot(db) == before


def test_a_view_with_the_tables_name_is_rejected(db, settings_for):
    with db.app() as conn:
        conn.execute("CREATE VIEW database_backups AS SELECT 1 AS id")
    before = catalog_snapshot(db)

    result, _ = run(settings_for(db))

    assert result.outcome is Outcome.FAILED
    assert "is a view, not a table" in result.error.message
    assert catalog_snapshot(db) == before
