"""SIGINT, SIGTERM and SIGHUP to the headless `migrate-tui run --yes`, during the backup and the migration.

Backup: another session holds ACCESS EXCLUSIVE on a table, so pg_dump waits on LOCK TABLE
with its partial file already on disk. Migration: another session's uncommitted CREATE TABLE
of the same name makes the migration's CREATE TABLE wait. Each signal -> exit 130, a
cancellation message, the partial dump deleted / everything rolled back, no traceback.
"""

from __future__ import annotations

import pytest

from engine.engine_support import TableBlocker
from fault_support import (
    RUN,
    backend_count,
    SIGNALS,
    catalog_snapshot,
    env_for,
    finish,
    send,
    start_cli,
    table_state,
    wait_until,
    waiting_on_lock,
)


@pytest.fixture
def orders(db18):
    with db18.app() as conn:  # owned by the application role, so its pg_dump may read it
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 2000) g")
    return db18


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", list(SIGNALS))
def test_signal_during_backup_deletes_partial_dump(orders, tmp_path, name):
    db = orders
    backups = tmp_path / "backups"
    before = catalog_snapshot(db)
    with db.admin() as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        proc = start_cli(*RUN, "--backup-dir", str(backups), cwd=tmp_path, env=env_for(db, tmp_path))
        try:
            wait_until(lambda: waiting_on_lock(db, f"migrate-tui-backup-{proc.pid}-%"), 60,
                       "pg_dump to wait on the locked table")
            partials = list(backups.glob(".*.partial"))
            assert len(partials) == 1, "the partial dump is on disk while pg_dump runs"
            send(proc, SIGNALS[name])
            result = finish(proc, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
        holder.execute("ROLLBACK")
    assert result.returncode == 130, result.output
    assert "cancelled" in result.output.lower()
    assert "Nothing was changed" in result.output
    assert not list(backups.iterdir()), f"files left behind: {list(backups.iterdir())}"
    # pg_dump was stopped too: its session goes away although the table is still locked.
    wait_until(lambda: not backend_count(db, f"migrate-tui-backup-{proc.pid}-%"), 20, "pg_dump's session to end")
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", list(SIGNALS))
def test_signal_during_migration_rolls_back(db, tmp_path, name):
    before = catalog_snapshot(db)
    with TableBlocker(db) as blocker:
        proc = start_cli(*RUN, "--skip-backup", "--lock-timeout", "60000", cwd=tmp_path, env=env_for(db, tmp_path))
        try:
            wait_until(lambda: waiting_on_lock(db, "migrate-tui"), 60, "the migration to wait on the lock")
            send(proc, SIGNALS[name])
            result = finish(proc, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
        blocker.release()
    assert result.returncode == 130, result.output
    assert "rolled back" in result.output.lower(), result.output
    assert "Error: Cancelled by the operator." in result.output, result.output
    assert "Fix: Nothing was committed. Run again when ready." in result.output, result.output
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before
    # The session is gone: no migrate-tui backend left over (sessions end asynchronously: bounded wait).
    wait_until(lambda: not backend_count(db, "migrate-tui"), 20, "the migration's session to end")
