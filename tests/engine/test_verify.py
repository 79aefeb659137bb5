"""``Verify``: the guide's "Verify Migration Success" (its information_schema query and ``\\d database_backups``)
read from the catalog, each line ✓/✗ against the one definition; read-only; SUCCESS only when all match."""

from __future__ import annotations

from engine_support import catalog_snapshot, run

from migration.events import Outcome, TableDescribed, TableListed, VerifyFinished
from migration.schema import TABLE
from migration.verify import Verify, guide_query


def verify(settings):
    events: list = []
    result = Verify(settings, events.append).run()
    return result, events


def test_after_the_migration_every_line_matches_and_nothing_changes(db, settings_for):
    settings = settings_for(db)
    assert run(settings)[0].outcome is Outcome.SUCCESS
    before = catalog_snapshot(db)
    result, events = verify(settings)
    assert isinstance(result, VerifyFinished) and result.outcome is Outcome.SUCCESS, result
    listed = next(e for e in events if isinstance(e, TableListed))
    assert listed.rows == ("database_backups",) and listed.ok
    assert listed.query == ("SELECT table_name FROM information_schema.tables\n"
                            "WHERE table_schema = 'public' AND table_name = 'database_backups';")  # the guide's
    lines = next(e for e in events if isinstance(e, TableDescribed)).lines
    sections = [line.section for line in lines]
    assert sections.count("Column") == len(TABLE.columns) and sections.count("Index") == 3
    assert {line.name for line in lines if line.section == "Constraint"} == {"PRIMARY KEY", "UNIQUE"}
    assert all(line.ok for line in lines), [line for line in lines if not line.ok]
    by_name = {line.name: line for line in lines}
    assert by_name["backup_type"].actual == "text NOT NULL DEFAULT 'full'::text"
    assert by_name["id"].actual.startswith("integer NOT NULL DEFAULT nextval(")
    assert by_name["idx_database_backups_status"].actual == "btree (status)"
    assert by_name["database_backups_id_seq"].actual == "public.database_backups_id_seq"
    assert result.message.startswith("Migration verified: All")
    assert catalog_snapshot(db) == before  # read-only


def test_a_missing_table_fails_with_a_fix(db, settings_for):
    result, events = verify(settings_for(db))
    assert result.outcome is Outcome.FAILED and not result.found
    assert "does not exist" in result.error.message and "Run the migration first" in result.error.hint
    assert next(e for e in events if isinstance(e, TableListed)).rows == ()


def test_every_difference_is_a_cross(db, settings_for):
    settings = settings_for(db)
    run(settings)
    with db.app() as conn:
        conn.execute("ALTER TABLE database_backups ALTER COLUMN status DROP DEFAULT")
        conn.execute("ALTER TABLE database_backups ALTER COLUMN file_size TYPE bigint")
        conn.execute("DROP INDEX idx_database_backups_created_by")
        conn.execute("ALTER TABLE database_backups ADD COLUMN extra text")
    result, events = verify(settings)
    assert result.outcome is Outcome.FAILED
    bad = {line.name: line for line in result.lines if not line.ok}
    assert set(bad) == {"status", "file_size", "idx_database_backups_created_by", "extra"}
    assert bad["file_size"].actual == "bigint NOT NULL" and bad["file_size"].expected == "integer NOT NULL"
    assert bad["idx_database_backups_created_by"].actual == ""
    assert "4 of" in result.error.message and "DROP TABLE" in result.error.hint


def test_a_view_named_like_the_table_is_not_verified(db, settings_for):
    db.execute("CREATE VIEW public.database_backups AS SELECT 1 AS id")
    result, events = verify(settings_for(db))
    assert result.outcome is Outcome.FAILED and "is a view, not a table" in result.error.message
    assert not any(isinstance(e, TableDescribed) for e in events)


def test_the_guide_query_is_shown_with_the_schema():
    assert "table_schema = 'audit'" in guide_query("audit")
