"""kill -9 of the headless process mid-transaction: the server rolls back, the advisory lock frees up.

The migration is inside its transaction (advisory lock taken, CREATE TABLE waiting on
another session's uncommitted CREATE TABLE) when the process is killed with SIGKILL:
no handler runs. When the other session lets go, the orphaned backend finds its client
gone and PostgreSQL aborts the transaction; the next run takes the lock and succeeds.
"""

from __future__ import annotations

import signal

import pytest

from engine.engine_support import TableBlocker
from fault_support import (
    RUN,
    catalog_snapshot,
    env_for,
    migration_backends,
    run_cli,
    send,
    start_cli,
    table_state,
    wait_until,
    waiting_on_lock,
)


@pytest.mark.timeout(90)
def test_kill9_mid_transaction_rolls_back_and_frees_the_lock(db, tmp_path):
    before = catalog_snapshot(db)
    env = env_for(db, tmp_path)
    with TableBlocker(db) as blocker:
        proc = start_cli(*RUN, "--skip-backup", "--lock-timeout", "60000", cwd=tmp_path, env=env)
        wait_until(lambda: waiting_on_lock(db, "migrate-tui"), 60, "the migration to wait inside its transaction")
        with db.admin() as conn:  # it holds the advisory lock: the transaction is open
            assert conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                "WHERE l.locktype = 'advisory' AND a.application_name = 'migrate-tui'"
                                ).fetchone()[0] == 1
        send(proc, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        blocker.release()

    # The orphaned backend proceeds, finds its client gone, and the server aborts its transaction.
    wait_until(lambda: not migration_backends(db), 30, "the server to end the orphaned session")
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before
    with db.admin() as conn:
        assert not conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]

    # The next run takes the advisory lock and completes.
    result = run_cli(*RUN, "--skip-backup", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.output
    assert "Migration completed successfully!" in result.output
    assert table_state(db) == "valid"
