"""Two, then five `migrate-tui run --yes` processes against one database: exactly one creates the table.

To make them really overlap, another session holds an uncommitted CREATE TABLE of the same
name: the first runner takes the advisory lock and waits in CREATE TABLE, the others wait for
the advisory lock. Then the session lets go: one runner creates, every other one ends cleanly
(exit 0, "not needed", or 75, busy), none prints a traceback or the password.
"""

from __future__ import annotations

import pytest

from engine.engine_support import TableBlocker
from fault_support import (
    RUN,
    catalog_snapshot,
    env_for,
    finish,
    migration_backends,
    start_cli,
    table_state,
    wait_until,
    waiting_on_lock,
)

CREATED = "✓ Table database_backups created successfully"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("runners", [2, 5])
def test_concurrent_runners_exactly_one_creates(db, tmp_path, runners):
    env = env_for(db, tmp_path)
    with TableBlocker(db) as blocker:
        procs = [start_cli(*RUN, "--skip-backup", "--lock-timeout", "60000", "--lock-wait", "60",
                           "--audit-log", str(tmp_path / f"audit{i}.log"), cwd=tmp_path, env=env)
                 for i in range(runners)]
        try:
            wait_until(lambda: waiting_on_lock(db, "migrate-tui"), 60, "one runner to wait in CREATE TABLE")
            wait_until(lambda: len(migration_backends(db)) == runners, 60, "every runner to be connected")
            blocker.release()
            results = [finish(proc, 90) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
    creators = [r for r in results if CREATED in r.stdout]
    assert len(creators) == 1, [r.output for r in results]
    assert creators[0].returncode == 0
    for other in results:
        if other is creators[0]:
            continue
        assert other.returncode in (0, 75), other.output
        if other.returncode == 0:
            assert "already exists" in other.output, other.output
        else:  # busy: the error names the other run and how to go on
            assert "Error: Another migration is running on this database." in other.output, other.output
            assert "Fix: Wait for the other migrate-tui run to finish" in other.output, other.output
    assert table_state(db) == "valid"
    snapshot = catalog_snapshot(db)
    assert sum(1 for rel in snapshot["relations"] if rel[1] == "database_backups") == 1
