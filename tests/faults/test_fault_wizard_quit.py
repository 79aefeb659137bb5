"""Ctrl+Q in the wizard while an operation waits on a lock: what the database and the disk hold when it exits.

The migration's CREATE TABLE, the backup's pg_dump and the rollback's DROP each wait on a lock another
session keeps holding. Ctrl+Q, then "Yes, cancel and quit": the wizard exits 130 — and at that moment,
with the other session still holding its lock (so nothing could have finished on its own), the
operation has ended and reported CANCELLED (in the audit log too), its server session is gone (bounded
wait), pg_dump is no longer running, the catalog is exactly as before, no partial file is left. After the
other session lets go, nothing changes any more.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.engine_support import TableBlocker
from engine.rollback_support import migrate_with_rows, table_rows
from fault_support import backend_count, catalog_snapshot, table_state, wait_until, waiting_on_lock
from gates import alive, partials
from migration import exit_codes
from migration.events import Outcome
from migration.options import OperatorOptions, RollbackOptions

WHERE = ("migration", "backup", "rollback")
APP = {"migration": "migrate-tui", "backup": "migrate-tui-backup-%", "rollback": "migrate-tui rollback"}


async def _until(pilot, condition, what: str, tries: int = 1200) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def pg_dumps_of_this_process() -> list[int]:
    """Running pg_dump processes started by the wizard (its application_name carries our pid)."""
    mark = f"migrate-tui-backup-{os.getpid()}-".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if mark in cmdline and alive(int(entry)):
                found.append(int(entry))
    return found


class Holder:
    """Another session holding the lock the operation will wait on, until released."""

    def __init__(self, db, where: str) -> None:
        self.db = db
        if where == "migration":
            self.blocker = TableBlocker(db).__enter__()
            return
        self.blocker = None
        self.conn = db.admin()
        self.conn.execute("BEGIN")
        table = "orders" if where == "backup" else "public.database_backups"
        self.conn.execute(f"LOCK TABLE {table} IN {'ACCESS EXCLUSIVE' if where == 'backup' else 'ACCESS SHARE'} MODE")

    def release(self) -> None:
        if self.blocker is not None:
            self.blocker.release()
        elif not self.conn.closed:
            self.conn.execute("ROLLBACK")
            self.conn.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", WHERE)
async def test_ctrl_q_while_waiting_leaves_nothing_behind(db, settings_for, tmp_path, monkeypatch, where):
    from tui.app import MigrateApp

    monkeypatch.chdir(tmp_path)  # the wizard writes ./backups
    settings = settings_for(db, lock_timeout_ms=120_000)
    if where == "backup":
        with db.app() as conn:
            conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
            conn.execute("INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 500) g")
    rows = migrate_with_rows(db, settings) if where == "rollback" else None
    before = catalog_snapshot(db)
    audit = tmp_path / "audit.log"
    options = OperatorOptions(rollback=RollbackOptions(lock_timeout_ms=120_000))
    app = MigrateApp(settings=settings, preflight=where == "backup", audit_log=audit, options=options)
    holder = Holder(db, where) if where != "backup" else None  # the backup's: once the checklist has read
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await _until(pilot, lambda: app.target_screen.overview is not None, "the target overview")
            if where == "rollback":
                await pilot.press("d")
                await _until(pilot, lambda: type(app.screen).__name__ == "RollbackScreen", "the rollback preview")
                await pilot.pause(0.5)
                await pilot.press("d")
                await pilot.pause()
                await pilot.press(*"database_backups", "enter")
            else:
                await pilot.press("m")
                if where == "backup":
                    await _until(pilot, lambda: type(app.screen).__name__ == "ChecklistScreen", "the checklist")
                    await _until(pilot, lambda: not app.running_operations, "the checklist to finish")
                    await pilot.press("a")
                    await pilot.pause()
                    holder = Holder(db, where)
                    await pilot.press("enter")  # Continue
            await _until(pilot, lambda: waiting_on_lock(db, APP[where]), f"the {where} to wait on the lock")
            (operation,) = app.running_operations
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert type(app.screen).__name__ == "ConfirmDialog" and app.screen.title_text == "Quit while it runs?"
            await pilot.press("y")
            await _until(pilot, lambda: app.return_code is not None, "the wizard to exit")

        # The wizard has exited; the other session still holds its lock.
        assert app.return_code == exit_codes.CANCELLED
        assert operation.done.is_set(), "the operation ended before the wizard exited"
        assert app.last_result is not None and app.last_result.outcome is Outcome.CANCELLED, app.last_result
        wait_until(lambda: not backend_count(db, APP[where]), 10, "the operation's session to end")
        assert not pg_dumps_of_this_process(), "pg_dump still runs"
        if where == "backup":  # the catalog read waits on the held table (pg_get_expr): checked after release
            assert not db.table_exists()
        else:
            assert catalog_snapshot(db) == before
        if rows is not None:
            assert table_rows(db) == rows
        assert not partials(tmp_path / "backups")
        if where == "backup":
            assert not list((tmp_path / "backups").iterdir()), "the partial backup was deleted, nothing else kept"
        if where == "migration":
            assert app.last_result.rolled_back and "All changes rolled back" in app.last_result.message
        finished = [json.loads(line) for line in audit.read_text().splitlines()]
        finished = [e for e in finished if e.get("event", "").endswith("Finished") and e.get("operation") != "check"]
        assert finished and finished[-1]["outcome"] == "cancelled", finished[-1:]
    finally:
        if holder is not None:
            holder.release()

    # Nothing left that could still go on once the lock is free.
    wait_until(lambda: not backend_count(db, "migrate-tui%"), 10, "every session of the tool to end")
    assert catalog_snapshot(db) == before
    assert table_state(db) == ("valid" if where == "rollback" else "absent")
