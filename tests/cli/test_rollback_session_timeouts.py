"""A rollback survives the role's and the database's session timeouts (PostgreSQL 15 and 18).

The session that exported the snapshot pg_dump reads sits idle in its transaction while pg_dump copies the
table: a role's ``idle_in_transaction_session_timeout`` (or, on 17+, ``transaction_timeout``) would end it
and with it the snapshot, so the safety copy and the rollback failed every time."""

from __future__ import annotations

import pytest
from cli_support import cli_env, run_cli
from psycopg import sql

from migration import exit_codes

pytestmark = pytest.mark.timeout(240)

ROWS = 200_000  # pg_dump takes well over the timeouts below to copy them


def _big_table(db, tmp_path) -> None:
    result = run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == 0, result.output
    with db.app() as conn:
        conn.execute("INSERT INTO public.database_backups (filename, s3_key, file_size, metadata) "
                     "SELECT 'backup-' || g || '.sql.gz', 'backups/daily/backup-' || g || '.sql.gz', g, "
                     "jsonb_build_object('tables', g %% 50, 'note', repeat('x', 40)) "
                     "FROM generate_series(1, %s) g", (ROWS,))


def _set(db, scope: str, name: str, value: str) -> None:
    statement = {"role": "ALTER ROLE app_user IN DATABASE {} SET {} = {}",
                 "database": "ALTER DATABASE {} SET {} = {}"}[scope]
    with db.admin() as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(db.name), sql.Identifier(name), sql.Literal(value)))


def test_rollback_under_a_50ms_idle_in_transaction_timeout(db, tmp_path):
    _big_table(db, tmp_path)
    _set(db, "role", "idle_in_transaction_session_timeout", "50ms")
    _set(db, "database", "idle_in_transaction_session_timeout", "50ms")
    env = cli_env(db.url)
    done = run_cli("rollback", "--yes", cwd=tmp_path, env=env, timeout=180)
    assert done.returncode == exit_codes.OK, done.output
    assert f"{ROWS} rows" in done.stdout and not db.table_exists()

    copy = next((tmp_path / "backups").glob("public.database_backups-before-rollback-*.sql"))
    restored = run_cli("rollback", "--restore", str(copy), cwd=tmp_path, env=env, timeout=180)
    assert restored.returncode == exit_codes.OK, restored.output
    assert db.scalar("SELECT count(*) FROM public.database_backups") == ROWS


def test_rollback_under_a_transaction_timeout(db18, tmp_path):
    """PostgreSQL 17+: ``transaction_timeout`` ends any transaction older than it, idle or not."""
    _big_table(db18, tmp_path)
    _set(db18, "role", "transaction_timeout", "150ms")
    done = run_cli("rollback", "--yes", cwd=tmp_path, env=cli_env(db18.url), timeout=180)
    assert done.returncode == exit_codes.OK, done.output
    assert not db18.table_exists()
