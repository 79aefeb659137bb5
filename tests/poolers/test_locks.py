"""Locks through a real PgBouncer in both modes: the advisory lock (pg_try_advisory_xact_lock, held for one
transaction) still keeps two runs apart, and the rollback's lock wait names the sessions in its way —
which needs the server process of the DROP's transaction, not the pooler's cancel key."""

from __future__ import annotations

import psycopg
import pytest
from cli.cli_support import cli_env, run_cli

from migration import exit_codes
from migration.plan import advisory_key

pytestmark = pytest.mark.timeout(120)


def test_the_advisory_transaction_lock_keeps_runs_apart_through_the_pooler(pooled18, tmp_path):
    db, env = pooled18.db, cli_env(pooled18.url)
    with psycopg.connect(pooled18.url, autocommit=True, prepare_threshold=None) as other:
        other.execute("BEGIN")  # another run's transaction, through the same pooler
        assert other.execute("SELECT pg_try_advisory_xact_lock(%s)", (advisory_key("public"),)).fetchone()[0]
        busy = run_cli("run", "--yes", "--skip-backup", "--lock-wait", "1", cwd=tmp_path, env=env)
        assert busy.returncode == exit_codes.BUSY, busy.output
        assert "Another migration is running on this database." in busy.stdout
        assert not db.table_exists(), "the report said nothing was changed"
        other.execute("ROLLBACK")
    done = run_cli("run", "--yes", "--skip-backup", "--lock-wait", "1", cwd=tmp_path, env=env)
    assert done.returncode == exit_codes.OK, done.output
    assert db.table_exists()


def test_the_rollback_names_who_holds_the_table_through_the_pooler(pooled18, tmp_path):
    db, env = pooled18.db, cli_env(pooled18.url)
    assert run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=env).returncode == exit_codes.OK
    with psycopg.connect(db.url, autocommit=True, application_name="nightly-report") as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM public.database_backups")  # holds ACCESS SHARE until it ends
        result = run_cli("rollback", "--yes", "--no-table-backup", "--lock-timeout", "1500", "--retries", "0",
                         cwd=tmp_path, env=env)
        reader.execute("ROLLBACK")
    assert result.returncode == exit_codes.FAILURE, result.output
    lines = result.stdout.splitlines()
    waiting = lines.index("… Waiting for the lock (attempt 1/1); blocked by:")  # while the DROP waited
    assert "nightly-report" in lines[waiting + 1], result.stdout
    assert "❌ Rollback failed; nothing was dropped." in result.stdout
    assert db.table_exists(), "the report said nothing was dropped"
