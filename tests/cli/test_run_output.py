"""``migrate-tui run --yes`` prints the guide's Expected Output and exits with the right code."""

from __future__ import annotations

import re

import pytest
from cli_support import cli_env, lines_in_order, run_cli

from migration import exit_codes

pytestmark = pytest.mark.timeout(180)

SUCCESS = [
    "🚀 Starting safe migration: Add database_backups table",
    "Database: postgresql://app_user:****@",
    "✓ Database connection successful",
    "  Server time: ",
    "  PostgreSQL version: PostgreSQL ",
    "✓ Table database_backups created successfully",
    "✓ Indexes created successfully",
    "✓ Sequence reset successfully",
    "✓ Migration verification successful",
    "✓ Transaction committed successfully",
    "🎉 Migration completed successfully!",
    "The database_backups table has been added to your database.",
    "You can now use the backup system in your admin panel.",
]
NOT_NEEDED = [
    "🚀 Starting safe migration: Add database_backups table",
    "✓ Database connection successful",
    "⚠️  Table database_backups already exists",
    "✓ Migration verification successful",
    "✅ Migration not needed - table already exists and is valid",
]


def test_success_then_not_needed(db, tmp_path):
    env = cli_env(db.url)
    first = run_cli("run", "--yes", cwd=tmp_path, env=env)
    assert first.returncode == exit_codes.OK, first.output
    lines_in_order(first.stdout, SUCCESS)
    assert re.search(r"^  Server time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", first.stdout, re.M)
    major = db.scalar("SELECT current_setting('server_version_num')::int / 10000")
    assert re.search(rf"^  PostgreSQL version: PostgreSQL {major}\.\d+$", first.stdout, re.M)
    assert "✓ Transaction committed successfully\n\n🎉 Migration completed successfully!\n" in first.stdout
    assert "⚠️" not in first.stdout and "Error" not in first.output
    assert db.table_exists()

    second = run_cli("run", "--yes", cwd=tmp_path, env=env)
    assert second.returncode == exit_codes.OK, second.output
    lines_in_order(second.stdout, NOT_NEEDED)
    assert "created successfully" not in second.stdout
    assert "committed" not in second.stdout


def test_missing_column_exits_1_with_the_guides_error(db, tmp_path):
    with db.app() as conn:
        conn.execute("CREATE TABLE database_backups (id serial PRIMARY KEY, filename text NOT NULL UNIQUE, "
                     "s3_key text NOT NULL, file_size integer NOT NULL, backup_type text NOT NULL DEFAULT 'full', "
                     "status text NOT NULL DEFAULT 'completed', created_by text NOT NULL DEFAULT 'system', "
                     "created_at timestamp DEFAULT now(), completed_at timestamp)")
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.FAILURE == 1
    assert "Error: Required column metadata is missing from database_backups table" in result.output
    assert "  Fix: The table exists but has wrong structure." in result.output
    assert "❌ Migration not started" in result.output
    assert "🎉" not in result.output


def test_late_failure_exits_1_and_says_rolled_back(db, tmp_path):
    """A failure no check can foresee: an event trigger refuses CREATE INDEX (step 5, after the table was
    created in the same transaction): everything is rolled back, and the catalog read back says so."""
    db.execute("CREATE FUNCTION public.no_indexes() RETURNS event_trigger LANGUAGE plpgsql AS "
               "$$ BEGIN RAISE EXCEPTION 'indexes are frozen for maintenance'; END $$")
    db.execute("CREATE EVENT TRIGGER no_indexes ON ddl_command_end WHEN TAG IN ('CREATE INDEX') "
               "EXECUTE FUNCTION public.no_indexes()")
    try:
        result = run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=cli_env(db.url))
    finally:
        db.execute("DROP EVENT TRIGGER no_indexes")
    assert result.returncode == exit_codes.FAILURE
    assert "✗ Step 5/8 Index Creation failed" in result.output
    assert "indexes are frozen for maintenance" in result.output
    assert "All changes rolled back: verified, database_backups does not exist" in result.output
    assert not db.table_exists()


def test_busy_exits_75(db, tmp_path):
    from engine.engine_support import AdvisoryLockHolder

    from migration.plan import advisory_key

    with AdvisoryLockHolder(db, advisory_key("public")):
        result = run_cli("run", "--yes", "--lock-wait", "0.2", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.BUSY
    assert "another migration is running" in result.output.lower()
    assert not db.table_exists()


def test_verbose_prints_every_step_with_timing(db, tmp_path):
    result = run_cli("run", "--yes", "--verbose", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.OK
    for n in range(1, 9):
        assert f"Step {n}/8" in result.stdout
    assert re.search(r"✓ Transaction committed successfully \(\d+\.\d ms\)", result.stdout)


def test_schema_option_creates_in_that_schema(db, tmp_path):
    with db.app() as conn:
        conn.execute("CREATE SCHEMA app")
    result = run_cli("run", "--yes", "--schema", "app", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.OK, result.output
    assert "Schema: app" in result.stdout
    assert db.table_exists(schema="app") and not db.table_exists()


def test_env_file_option_supplies_database_url(db, tmp_path):
    env_file = tmp_path / "prod.env"
    env_file.write_text(f"DATABASE_URL={db.url}\n")
    result = run_cli("run", "--yes", "--env-file", str(env_file), cwd=tmp_path, env=cli_env())
    assert result.returncode == exit_codes.OK, result.output
    assert db.table_exists()
