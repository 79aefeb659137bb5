"""The issue's finding, through a real PgBouncer in transaction mode: ``rollback --yes`` dropped the table,
then failed with ``prepared statement "_pg3_0" already exists`` (42P05), said "nothing was committed" and
exited 1 — the table was gone — and later runs failed before dropping. Every report here is checked
against the catalog, read directly from the server."""

from __future__ import annotations

import pytest
from cli.cli_support import cli_env, run_cli
from pooler_support import default_settings, server_connection_settings

from migration import exit_codes
from migration.events import Dropped, Outcome
from migration.options import RollbackOptions
from migration.rollback import Rollback
from migration.settings import load_settings

pytestmark = pytest.mark.timeout(180)


def _rows(db) -> int:
    return db.scalar("SELECT count(*) FROM public.database_backups")


def _no_prepared_statement_errors(result) -> None:
    assert "42P05" not in result.output and "26000" not in result.output, result.output
    assert "prepared statement" not in result.output, result.output


def test_rollback_yes_through_transaction_pooling_reports_what_the_catalog_shows(transaction_pooled, tmp_path):
    db, env = transaction_pooled.db, cli_env(transaction_pooled.url)
    # Three rounds, as in the issue: each command's server connections are reused by the next ones, so a
    # statement prepared by one client would meet another's on the same server connection.
    for round_ in range(3):
        migrated = run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=env)
        _no_prepared_statement_errors(migrated)
        assert migrated.returncode == exit_codes.OK, migrated.output
        assert db.table_exists(), "run reported success, the catalog shows no table"
        db.execute("INSERT INTO public.database_backups (filename, s3_key, file_size) "
                   "SELECT 'f' || g || '.sql', 'k/' || g, g FROM generate_series(1, 3) g")

        preview = run_cli("rollback", cwd=tmp_path, env=env)
        _no_prepared_statement_errors(preview)
        assert preview.returncode == exit_codes.OK, preview.output
        assert "Table public.database_backups: 3 rows" in preview.stdout

        # With its safety copy the rollback needs pg_dump, which must not run through transaction pooling:
        # refused before anything is dropped, and the report says so.
        refused = run_cli("rollback", "--yes", "--backup-dir", str(tmp_path / "b"), cwd=tmp_path, env=env)
        _no_prepared_statement_errors(refused)
        assert refused.returncode == exit_codes.FAILURE, refused.output
        assert "nothing was dropped" in refused.stdout.lower()
        assert db.table_exists() and _rows(db) == 3, "the report said nothing was dropped"
        assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())

        dropped = run_cli("rollback", "--yes", "--no-table-backup", cwd=tmp_path, env=env)
        _no_prepared_statement_errors(dropped)
        assert dropped.returncode == exit_codes.OK, f"round {round_}: {dropped.output}"
        assert "✅ Table public.database_backups was dropped" in dropped.stdout
        assert not db.table_exists(), "the report said dropped, the catalog still shows the table"
    # pg_dump never ran through the pooler: no server connection of the pool kept its session settings.
    expected = default_settings(db)
    assert set(server_connection_settings(transaction_pooled.bouncer, db.name).values()) == {expected}


def test_a_failure_after_the_drop_committed_reports_the_table_as_dropped(transaction_pooled):
    """Anything failing after the DROP committed (here: the consumer of the Dropped event) ends in a report
    read back from the catalog on a fresh pooled connection: dropped, not "nothing was committed"."""
    db = transaction_pooled.db
    with db.app() as conn:
        conn.execute("CREATE TABLE public.database_backups (id serial PRIMARY KEY, filename varchar(255) NOT NULL)")

    def emit(event) -> None:
        if isinstance(event, Dropped):
            raise RuntimeError("the screen went away")

    settings = load_settings(database_url=transaction_pooled.url, environ={})
    result = Rollback(settings, emit, RollbackOptions(table_backup=False)).run()
    assert not db.table_exists()
    assert result.outcome is Outcome.SUCCESS, result
    assert "was dropped: the catalog, read after the error, confirms it is gone" in result.message
    assert "nothing was" not in (result.error.hint if result.error else "").lower()
