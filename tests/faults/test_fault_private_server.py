"""Faults that need a server of their own: a fast shutdown mid-migration, and a hot standby.

One private PostgreSQL 18 primary for the module (wal_level=replica); the shared
session servers are never stopped.
"""

from __future__ import annotations

import pytest

from engine.engine_support import TableBlocker
from fault_support import (
    RUN,
    PrivateServer,
    catalog_snapshot,
    cli_env,
    env_for,
    finish,
    run_cli,
    start_cli,
    table_state,
    wait_until,
    waiting_on_lock,
)


@pytest.fixture(scope="module")
def private():
    try:
        server = PrivateServer()
    except LookupError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pdb(private):
    db = private.server.create_database()
    try:
        yield db
    finally:
        private.server.drop_database(db.name)


@pytest.mark.timeout(120)
def test_server_fast_shutdown_mid_migration(private, pdb, tmp_path):
    db = pdb
    before = catalog_snapshot(db)
    blocker = TableBlocker(db).__enter__()  # keeps the migration inside its transaction
    proc = start_cli(*RUN, "--skip-backup", "--lock-timeout", "60000", cwd=tmp_path, env=env_for(db, tmp_path))
    try:
        wait_until(lambda: waiting_on_lock(db, "migrate-tui"), 60, "the migration to wait inside its transaction")
        private.stop_fast()  # pg_ctl -m fast stop: every session is terminated, nothing committed
        result = finish(proc, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
        private.start_again()
        try:
            blocker.conn.close()
        except Exception:
            pass
    assert result.returncode == 1, result.output
    assert "Connection lost (the server shut down or terminated this session)" in result.output, result.output
    assert "Fix: Check that the server is running" in result.output
    assert "rolled back" in result.output.lower()
    # After the restart the catalog shows the database as it was.
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before
    # And the migration then runs fine.
    again = run_cli(*RUN, "--skip-backup", cwd=tmp_path, env=env_for(db, tmp_path))
    assert again.returncode == 0, again.output
    assert table_state(db) == "valid"


@pytest.mark.timeout(180)
def test_hot_standby_is_refused(private, pdb, tmp_path):
    db = pdb
    private.start_standby()
    private.wait_replayed(db.name)
    env = cli_env(private.standby_url(db.name), MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"))

    check = run_cli("check", cwd=tmp_path, env=env)
    assert check.returncode == 1, check.output
    assert "the server is a hot standby (read-only replica)" in check.output
    assert "Fix: Point DATABASE_URL at the primary server" in check.output

    run = run_cli(*RUN, cwd=tmp_path, env=env)
    assert run.returncode == 1, run.output
    assert "❌ Migration not started - the pre-migration checklist failed" in run.output
    assert "Starting safe migration" not in run.output
    assert not (tmp_path / "backups").exists() or not list((tmp_path / "backups").iterdir())
    assert table_state(db) == "absent"  # on the primary
