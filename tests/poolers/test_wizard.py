"""The wizard through a real PgBouncer in both modes (Pilot, PostgreSQL 18): Target reads the table state the
catalog shows and names the pooler; the checklist's "Direct connection" row is a warning to acknowledge
through session pooling and blocks Continue through transaction pooling (the backup would not be
correct); Backup and Migrate say what the pooler means for them and end as the catalog says."""

from __future__ import annotations

import pytest

from harness import CANARY
from migration.events import Outcome, Status
from migration.settings import load_settings
from tui.app import MigrateApp
from tui.screens.backup import BackupScreen
from tui.screens.checklist import ChecklistScreen
from tui.screens.migrate import MigrateScreen

pytestmark = pytest.mark.timeout(180)


async def _settle(app, pilot) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


def _notes(screen) -> str:
    from textual.widgets import Static

    return str(screen.query_one("#target-notes", Static).content)


def _pooler_notifications(app) -> list[str]:
    return [n.message for n in app._notifications if n.title == "Connection pooler"]


@pytest.fixture(autouse=True)
def _files_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./backups land here
    monkeypatch.setenv("MIGRATE_AUDIT_LOG", str(tmp_path / "audit.log"))


async def test_target_checklist_backup_and_migrate_through_pgbouncer(pooled18):
    db, mode = pooled18.db, pooled18.mode
    app = MigrateApp(settings=load_settings(database_url=pooled18.url, environ={}), preflight=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        target = app.target_screen
        assert target.overview is not None and target.overview.error is None
        assert target.overview.state == "absent" and not db.table_exists()
        assert target.overview.pooler.mode.value == mode
        notes = _notes(target)
        assert f"Connection pooler: {mode} pooling (PgBouncer): the cancel key" in notes
        assert "consecutive statements ran in different server sessions" not in notes

        await pilot.press("m")
        await _settle(app, pilot)
        checklist = app.screen
        assert isinstance(checklist, ChecklistScreen) and checklist.checklist is not None
        row = checklist.checklist.by_key("pooler")
        assert row.detail.startswith(f"{mode} pooling (PgBouncer)")
        await pilot.press("a")
        if mode == "transaction":
            assert row.status is Status.FAILURE
            assert checklist.query_one("#continue").disabled  # the backup would not be correct
            await pilot.press("enter")
            assert app.screen is checklist and not db.table_exists()
            return
        assert row.status is Status.WARNING
        assert not checklist.query_one("#continue").disabled  # once acknowledged

        await pilot.press("enter")
        await _settle(app, pilot)
        backup = app.screen
        assert isinstance(backup, BackupScreen) and backup.result is not None and backup.result.ok
        await pilot.press("enter")
        await _settle(app, pilot)
        migrate = app.screen
        assert isinstance(migrate, MigrateScreen) and migrate.result.outcome is Outcome.SUCCESS
        assert db.table_exists(), "the wizard said migrated"
        shown = _pooler_notifications(app)
        assert any("For the backup: " in text for text in shown), shown
        assert any("For the migration: " in text for text in shown), shown
        assert all(CANARY not in text for text in shown)
