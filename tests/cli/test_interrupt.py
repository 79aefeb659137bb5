"""Ctrl+C (SIGINT) or SIGTERM while the headless run is blocked: cancel, roll back, exit 130."""

from __future__ import annotations

import signal

import pytest
from cli_support import cli_env, finish, start_cli
from engine.engine_support import (
    TableBlocker,
    catalog_snapshot,
    migration_backends,
    wait_for_blocked_migration,
    wait_until,
)

from migration import exit_codes

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_blocked_rolls_back_and_exits_130(db, tmp_path, signum):
    before = catalog_snapshot(db)
    with TableBlocker(db):
        proc = start_cli("run", "--yes", "--lock-timeout", "60000", cwd=tmp_path, env=cli_env(db.url))
        try:
            wait_for_blocked_migration(db, timeout=60)
            proc.send_signal(signum)
            result = finish(proc, timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        # The run ended while the blocking transaction was still open: it really cancelled.
        wait_until(lambda: not migration_backends(db), 10, "the run's sessions to end")

    assert result.returncode == exit_codes.CANCELLED == 130, result.output
    assert "all changes rolled back" in result.output.lower()
    assert "Cancelling" in result.stderr
    assert "✓ Table database_backups created successfully" not in result.stdout
    assert not db.table_exists()
    assert catalog_snapshot(db) == before
