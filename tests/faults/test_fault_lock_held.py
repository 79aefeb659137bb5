"""A lock held by another session during the migration and during the rollback.

Both give up after the lock timeout with a clear message and fix, change nothing, and
never block the other session's work beyond that timeout.
"""

from __future__ import annotations

import time

import pytest

from engine.engine_support import TableBlocker
from fault_support import RUN, catalog_snapshot, env_for, run_cli, table_state


@pytest.mark.timeout(60)
def test_lock_held_during_migration_times_out_cleanly(db18, tmp_path):
    db = db18
    before = catalog_snapshot(db)
    with TableBlocker(db):
        t0 = time.monotonic()
        result = run_cli(*RUN, "--skip-backup", "--lock-timeout", "500", cwd=tmp_path, env=env_for(db, tmp_path))
        took = time.monotonic() - t0
    assert result.returncode == 1, result.output
    assert "Could not get a lock within the lock timeout" in result.output
    assert "Fix: Another session holds a conflicting lock" in result.output
    assert "rolled back" in result.output.lower()
    assert took < 20, f"the run took {took:.1f} s with a 0.5 s lock timeout"
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before


@pytest.mark.timeout(90)
def test_lock_held_during_rollback_times_out_cleanly(db18, tmp_path):
    db = db18
    env = env_for(db, tmp_path)
    assert run_cli(*RUN, "--skip-backup", cwd=tmp_path, env=env).returncode == 0
    migrated = catalog_snapshot(db)
    with db.app() as reader:  # a long transaction that has read the table: ACCESS SHARE until it ends
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM database_backups")
        t0 = time.monotonic()
        result = run_cli("rollback", "--yes", "--no-table-backup", "--lock-timeout", "300", "--retries", "1",
                         cwd=tmp_path, env=env)
        took = time.monotonic() - t0
        # The reader was never stuck behind the DROP: its transaction goes on.
        assert reader.execute("SELECT count(*) FROM database_backups").fetchone()[0] == 0
        reader.execute("ROLLBACK")
    assert result.returncode == 1, result.output
    assert "Could not get the lock on" in result.output and "in 2 attempt(s) of 300 ms" in result.output
    assert "Fix: Wait for the sessions listed to finish" in result.output
    assert "nothing was dropped" in result.output
    assert took < 30, f"the rollback took {took:.1f} s with a 0.3 s lock timeout and one retry"
    assert table_state(db) == "valid", "the table is still there, untouched"
    assert catalog_snapshot(db) == migrated

    # Once the other session is gone the same rollback goes through.
    again = run_cli("rollback", "--yes", "--no-table-backup", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.output
    assert table_state(db) == "absent"
