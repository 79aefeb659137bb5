"""Targets that cannot take the migration: a role without CREATE, a read-only database.

`migrate-tui check` names the problem and the fix; `run --yes` stops at the checklist and
attempts nothing; the engine on its own fails with the guide's message and changes nothing.
"""

from __future__ import annotations

import pytest
from psycopg import sql

from fault_support import CANARY, RUN, catalog_snapshot, cli_env, run_cli, table_state
from migration.events import Outcome
from migration.runner import Migration

NO_CREATE_ROLE = "no_create_user"


@pytest.fixture
def no_create_url(db):
    with db.server.admin() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (NO_CREATE_ROLE,)).fetchone()
        conn.execute(sql.SQL(("ALTER" if exists else "CREATE") + " ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(NO_CREATE_ROLE), sql.Literal(CANARY)))
    with db.admin() as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(NO_CREATE_ROLE)))
    return db.server.url(db.name, user=NO_CREATE_ROLE)


def _assert_nothing_attempted(db, before, result):
    assert result.returncode == 1, result.output
    assert "❌ Migration not started - the pre-migration checklist failed" in result.output
    assert "Starting safe migration" not in result.output  # the runner never began
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before


@pytest.mark.timeout(60)
def test_role_without_create(db, no_create_url, settings_for, tmp_path):
    before = catalog_snapshot(db)
    env = cli_env(no_create_url, MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"))
    check = run_cli("check", cwd=tmp_path, env=env)
    assert check.returncode == 1, check.output
    assert f"{NO_CREATE_ROLE} has no CREATE privilege on schema public" in check.output
    assert f"Fix: Ask an administrator to run: GRANT CREATE ON SCHEMA public TO {NO_CREATE_ROLE};" in check.output
    _assert_nothing_attempted(db, before, run_cli(*RUN, "--skip-backup", cwd=tmp_path, env=env))

    # The engine alone: the guide's "Permission denied" with the GRANT to run.
    result = Migration(settings_for(db, database_url=no_create_url), lambda e: None).run()
    assert result.outcome is Outcome.FAILED
    assert result.error.message.startswith("Permission denied: permission denied for schema public")
    assert f"GRANT CREATE ON SCHEMA public TO {NO_CREATE_ROLE};" in result.error.hint
    assert result.message.startswith("All changes rolled back")
    assert catalog_snapshot(db) == before


@pytest.mark.timeout(60)
def test_read_only_database(db, settings_for, tmp_path):
    db.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(sql.Identifier(db.name)))
    before = catalog_snapshot(db)
    env = cli_env(db.url, MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"))
    check = run_cli("check", cwd=tmp_path, env=env)
    assert check.returncode == 1, check.output
    assert "sessions are read-only (default_transaction_read_only = on)" in check.output
    assert "default_transaction_read_only = off" in check.output  # the fix names the setting to change
    _assert_nothing_attempted(db, before, run_cli(*RUN, cwd=tmp_path, env=env))

    result = Migration(settings_for(db), lambda e: None).run()
    assert result.outcome is Outcome.FAILED
    assert result.error.sqlstate == "25006" and result.error.message.startswith("The database is read-only")
    assert "primary" in result.error.hint
    assert catalog_snapshot(db) == before
