"""The migration against real PostgreSQL (18 and 15): the guide's happy paths."""

from __future__ import annotations

from migration.events import Outcome, RunFinished, Step, StepFinished, StepSkipped
from migration.runner import Migration
from migration.schema import TABLE


def run(settings):
    events = []
    result = Migration(settings, events.append).run()
    return result, events


def test_fresh_migration_creates_the_guides_table(db, settings_for):
    result, events = run(settings_for(db))
    assert result.outcome is Outcome.SUCCESS
    finished = [e.step for e in events if isinstance(e, StepFinished)]
    assert finished == list(Step)
    assert isinstance(events[-1], RunFinished)

    with db.admin() as conn:
        cols = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'database_backups' ORDER BY ordinal_position"
        ).fetchall()
        indexes = {r[0]: r[1] for r in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'database_backups'").fetchall()}
        cons = sorted(r[0] for r in conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'public.database_backups'::regclass AND contype IN ('p', 'u')").fetchall())
    assert [c[0] for c in cols] == TABLE.column_names
    assert cols == [
        ("id", "integer", "NO", "nextval('database_backups_id_seq'::regclass)"),
        ("filename", "text", "NO", None),
        ("s3_key", "text", "NO", None),
        ("file_size", "integer", "NO", None),
        ("backup_type", "text", "NO", "'full'::text"),
        ("status", "text", "NO", "'completed'::text"),
        ("created_by", "text", "NO", "'system'::text"),
        ("metadata", "jsonb", "YES", None),
        ("created_at", "timestamp without time zone", "YES", "now()"),
        ("completed_at", "timestamp without time zone", "YES", None),
    ]
    assert cons == ["PRIMARY KEY (id)", "UNIQUE (filename)"]
    for ix in TABLE.indexes:
        assert indexes[ix.name].endswith(f"USING btree ({ix.column})")
    assert len(indexes) == 5  # pkey, filename unique, three performance indexes


def test_second_run_is_not_needed(db, settings_for):
    assert run(settings_for(db))[0].outcome is Outcome.SUCCESS
    result, events = run(settings_for(db))
    assert result.outcome is Outcome.NOT_NEEDED
    assert result.message == "Migration not needed - table already exists and is valid"
    skipped = {e.step for e in events if isinstance(e, StepSkipped)}
    assert Step.TABLE_CREATION in skipped and Step.TRANSACTION_COMMIT in skipped


def test_first_insert_after_migration_gets_id_1(db, settings_for):
    assert run(settings_for(db))[0].outcome is Outcome.SUCCESS
    with db.app() as conn:
        new_id = conn.execute(
            "INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a.sql', 'k/a.sql', 10) RETURNING id"
        ).fetchone()[0]
    assert new_id == 1
