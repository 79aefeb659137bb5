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


def test_events_pair_each_step_start_with_its_finish(db, settings_for):
    from migration.events import RunStarted, StepStarted

    result, events = run(settings_for(db))
    assert isinstance(events[0], RunStarted) and events[0].table == "database_backups"
    steps = [e for e in events if isinstance(e, (StepStarted, StepFinished))]
    assert [(type(e).__name__, e.step) for e in steps] == [
        (kind, step) for step in Step for kind in ("StepStarted", "StepFinished")]
    for e in steps:
        if isinstance(e, StepFinished):
            assert e.elapsed_ms >= 0 and e.message
    assert result.elapsed_ms > 0 and result.server_version.startswith("PostgreSQL ")


def test_schema_is_configurable_and_quoted(db, settings_for):
    """A mixed-case schema only works if every identifier is quoted."""
    db.execute('CREATE SCHEMA "Billing" AUTHORIZATION app_user')
    result, _ = run(settings_for(db, schema="Billing"))
    assert result.outcome is Outcome.SUCCESS, result.error
    assert db.table_exists(schema="Billing") and not db.table_exists()
    with db.admin() as conn:
        names = sorted(r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'Billing' AND tablename = 'database_backups'"))
    assert names == sorted(["database_backups_pkey", "database_backups_filename_key",
                            *(ix.name for ix in TABLE.indexes)])
    assert run(settings_for(db, schema="Billing"))[0].outcome is Outcome.NOT_NEEDED


def test_sequence_is_reset_after_the_verification_row(db, settings_for):
    """The verification used id 1 inside the transaction; the reset afterwards hands out 1 again."""
    result, events = run(settings_for(db))
    verification = next(e for e in events if isinstance(e, StepFinished) and e.step is Step.VERIFICATION)
    assert any("Test row inserted (id 1) and deleted; next id: 1" in d for d in verification.details)
    with db.admin() as conn:
        assert conn.execute("SELECT last_value, is_called FROM database_backups_id_seq").fetchone() == (1, False)
    assert db.scalar("SELECT count(*) FROM database_backups") == 0
