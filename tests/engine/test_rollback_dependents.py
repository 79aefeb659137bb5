"""CASCADE only for confirmed dependents: a view and a foreign key depending on the table."""

from __future__ import annotations

from rollback_support import catalog_has, migrate_with_rows, rollback

from migration.rollback import read_preview
from migration.events import Dropped, Outcome, SafetyCopyStarted

DEPENDENTS = """
CREATE VIEW public.recent_backups AS SELECT id, filename FROM database_backups;
CREATE TABLE public.restores (id int PRIMARY KEY, backup_id int REFERENCES database_backups (id));
"""
EXPECTED = {"view public.recent_backups", "table constraint restores_backup_id_fkey on public.restores"}


def _with_dependents(db, settings):
    migrate_with_rows(db, settings)
    with db.app() as conn:
        conn.execute(DEPENDENTS)
        conn.execute("INSERT INTO restores VALUES (1, 1)")


def _fk_exists(db) -> bool:
    return bool(db.scalar("SELECT count(*) FROM pg_constraint WHERE conname = 'restores_backup_id_fkey'"))


def test_preview_names_the_view_and_the_foreign_key(db, settings_for):
    settings = settings_for(db)
    _with_dependents(db, settings)
    preview = read_preview(settings)
    assert preview.dependent_keys == EXPECTED
    fk = next(d for d in preview.dependents if d.kind == "table constraint")
    assert fk.alters == "public.restores" and "alters table public.restores" in fk.label
    assert preview.drop_sql.endswith(" CASCADE")


def test_no_cascade_without_confirmation(db, settings_for, tmp_path):
    settings = settings_for(db)
    _with_dependents(db, settings)
    engine, rec = rollback(settings, tmp_path)
    result = engine.run()
    assert result.outcome is Outcome.NEEDS_CONFIRMATION
    assert result.error.sqlstate == "2BP01"
    assert "view public.recent_backups" in result.error.message
    assert set(result.details) == {  # each with what the safety copy does for it
        "view public.recent_backups — kept in the safety copy",
        "table constraint restores_backup_id_fkey on public.restores (alters table public.restores) — kept in the "
        "safety copy"}
    assert not rec.of(SafetyCopyStarted) and not rec.of(Dropped)
    assert db.table_exists() and catalog_has(db, "public.recent_backups") and _fk_exists(db)


def test_a_different_confirmed_set_stops(db, settings_for, tmp_path):
    settings = settings_for(db)
    _with_dependents(db, settings)
    engine, rec = rollback(settings, tmp_path)
    engine.confirmed = frozenset({"view public.recent_backups"})
    result = engine.run()
    assert result.outcome is Outcome.CHANGED
    assert "Preview the rollback again" in result.error.hint
    assert db.table_exists() and catalog_has(db, "public.recent_backups") and _fk_exists(db)


def test_dependents_added_after_the_preview_stop_the_drop(db, settings_for, tmp_path):
    settings = settings_for(db)
    _with_dependents(db, settings)
    confirmed = read_preview(settings).dependent_keys
    with db.app() as conn:
        conn.execute("CREATE VIEW public.late_view AS SELECT count(*) FROM database_backups")
    engine, _ = rollback(settings, tmp_path)
    engine.confirmed = confirmed
    result = engine.run()
    assert result.outcome is Outcome.CHANGED
    assert "new: view public.late_view" in result.details
    assert db.table_exists() and catalog_has(db, "public.late_view")


def test_confirmed_cascade_drops_exactly_those(db, settings_for, tmp_path):
    settings = settings_for(db)
    _with_dependents(db, settings)
    engine, rec = rollback(settings, tmp_path)
    engine.confirmed = read_preview(settings).dependent_keys
    result = engine.run()
    assert result.outcome is Outcome.SUCCESS, result
    dropped = rec.of(Dropped)[0]
    assert dropped.cascade and dropped.statement.endswith(" CASCADE;")
    assert not db.table_exists()
    assert not catalog_has(db, "public.recent_backups") and not _fk_exists(db)
    # The other table only lost its constraint; its rows are still there.
    assert db.scalar("SELECT count(*) FROM restores") == 1
