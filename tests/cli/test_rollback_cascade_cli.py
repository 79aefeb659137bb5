"""``rollback --yes --cascade`` then ``rollback --restore``, as an operator runs them, on PostgreSQL 15 and 18:
the view and the foreign key dropped with the table come back, and the output says so."""

from __future__ import annotations

import pytest
from cli_support import cli_env, run_cli

from migration import exit_codes

pytestmark = pytest.mark.timeout(180)


def _migrate_with_dependents(db, tmp_path) -> None:
    result = run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == 0, result.output
    with db.app() as conn:
        conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a.sql', 'k/a', 1)")
        conn.execute("CREATE VIEW public.v_backups AS SELECT id, filename FROM public.database_backups;"
                     "CREATE TABLE public.restores (id int PRIMARY KEY, backup_id int REFERENCES database_backups);"
                     "INSERT INTO public.restores VALUES (1, 1)")


def _dependents_exist(db) -> tuple[bool, bool]:
    return (bool(db.scalar("SELECT to_regclass('public.v_backups') IS NOT NULL")),
            bool(db.scalar("SELECT count(*) FROM pg_constraint WHERE conname = 'restores_backup_id_fkey'")))


def test_cascade_rollback_then_restore_brings_the_dependents_back(db, tmp_path):
    _migrate_with_dependents(db, tmp_path)
    env = cli_env(db.url)
    preview = run_cli("rollback", cwd=tmp_path, env=env)
    assert preview.returncode == exit_codes.OK, preview.output
    assert "- view public.v_backups — kept in the safety copy" in preview.stdout
    assert ("- table constraint restores_backup_id_fkey on public.restores (alters table public.restores) — kept in "
            "the safety copy") in preview.stdout

    done = run_cli("rollback", "--yes", "--cascade", cwd=tmp_path, env=env)
    assert done.returncode == exit_codes.OK, done.output
    assert "  Also holds the definitions of 2 dependent object(s): " in done.stdout
    assert "also dropped: view public.v_backups" in done.stdout
    assert not db.table_exists() and _dependents_exist(db) == (False, False)
    copy = next((tmp_path / "backups").glob("public.database_backups-before-rollback-*.sql"))

    restored = run_cli("rollback", "--restore", str(copy), cwd=tmp_path, env=env)
    assert restored.returncode == exit_codes.OK, restored.output
    assert "✓ Recreated: view public.v_backups" in restored.stdout
    assert "✓ Recreated: table constraint restores_backup_id_fkey on public.restores" in restored.stdout
    assert "✅ Table public.database_backups restored from the safety copy: 1 rows" in restored.stdout
    assert db.table_exists() and _dependents_exist(db) == (True, True)


def test_restore_names_the_dependent_it_could_not_recreate(db18, tmp_path):
    _migrate_with_dependents(db18, tmp_path)
    env = cli_env(db18.url)
    assert run_cli("rollback", "--yes", "--cascade", cwd=tmp_path, env=env).returncode == exit_codes.OK
    with db18.app() as conn:
        conn.execute("INSERT INTO public.restores VALUES (2, 42)")  # no backup 42: the foreign key cannot return
    copy = next((tmp_path / "backups").glob("public.database_backups-before-rollback-*.sql"))
    restored = run_cli("rollback", "--restore", str(copy), cwd=tmp_path, env=env)
    assert restored.returncode == exit_codes.FAILURE, restored.output
    assert "✓ Recreated: view public.v_backups" in restored.stdout
    assert "✗ Could not recreate: table constraint restores_backup_id_fkey on public.restores" in restored.stdout
    assert db18.table_exists() and _dependents_exist(db18) == (True, False)


def test_a_lost_column_is_refused_without_accept_loss(db18, tmp_path):
    _migrate_with_dependents(db18, tmp_path)
    with db18.app() as conn:
        conn.execute("CREATE TABLE public.audit_rows (id int, snap public.database_backups)")
    env = cli_env(db18.url)
    preview = run_cli("rollback", cwd=tmp_path, env=env)
    lost = "- table column public.audit_rows.snap (alters table public.audit_rows) — NOT recoverable"
    assert lost in preview.stdout
    assert "migrate-tui rollback --yes --cascade --accept-loss" in preview.stdout

    refused = run_cli("rollback", "--yes", "--cascade", cwd=tmp_path, env=env)
    assert refused.returncode == exit_codes.FAILURE, refused.output
    assert "table column public.audit_rows.snap" in refused.stdout and "--accept-loss" in refused.stdout
    assert db18.table_exists()

    done = run_cli("rollback", "--yes", "--cascade", "--accept-loss", cwd=tmp_path, env=env)
    assert done.returncode == exit_codes.OK, done.output
    assert "⚠️  Not in the copy (cannot be recreated): table column public.audit_rows.snap" in done.stdout
    assert not db18.table_exists()
