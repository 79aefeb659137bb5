"""The Backup screen: Pilot on real PostgreSQL 18 (cancel mid-dump, a failing dump then a confirmed skip)
and snapshots replaying backups recorded from real runs (tests/tui/recorded/: a verified one, and one
cancelled while pg_dump waited on another session's lock)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from conftest import assert_no_secret, flat, make_app, screen_text, settle, target_ready, wait_until
from engine.engine_support import wait_until as wait_for
from fakes import fixed_settings
from recorded import Replay, describe

from migration.events import Outcome
from migration.options import BackupOptions, DrillOptions
from tui.app import MigrateApp
from tui.screens.backup import BackupScreen
from tui.dialogs.confirm import ConfirmDialog
from tui.screens.migrate import MigrateScreen

pytestmark = pytest.mark.timeout(180)


async def open_backup(app, pilot, settings, backup_dir: Path) -> BackupScreen:
    await target_ready(app, pilot)
    screen = BackupScreen(settings, options=BackupOptions(backup_dir=backup_dir))
    await app.push_screen(screen)
    return screen


@contextlib.contextmanager
def items_locked(db, create_sql: str):
    """A table ``items`` (made by the application role) that another session holds locked."""
    with db.app() as conn:
        conn.execute(create_sql)
    with db.admin() as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        yield
        locker.execute("ROLLBACK")


async def dump_waits_on_the_lock(pilot, db, screen: BackupScreen) -> None:
    await wait_until(pilot, lambda: screen.operation is not None and screen.operation.child_pid is not None
                     and db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                                   "AND wait_event_type = 'Lock'", (screen.operation.application_name,)),
                     "pg_dump to wait on the lock")


async def test_cancel_mid_dump_deletes_the_partial_file(db18, settings_for, tmp_path, canary):
    backup_dir = tmp_path / "backups"
    settings = settings_for(db18)
    app = make_app(settings)
    with items_locked(db18, "CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 1000) g"):
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_backup(app, pilot, settings, backup_dir)
            await dump_waits_on_the_lock(pilot, db18, screen)
            assert screen.running and list(backup_dir.iterdir())  # the partial file exists
            assert_no_secret(app, canary)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("y")
            await settle(app, pilot)
            assert app.screen is screen and screen.result.outcome is Outcome.CANCELLED
            text = flat(screen_text(app))
            assert "Backup cancelled; the partial file was deleted" in text
            assert "Retry (r)" in text and "Skip backup (k)" in text
            assert list(backup_dir.iterdir()) == []


async def test_quitting_mid_dump_stops_pg_dump_and_deletes_the_partial_file(db18, settings_for, tmp_path):
    backup_dir = tmp_path / "backups"
    settings = settings_for(db18)
    app = make_app(settings)
    with items_locked(db18, "CREATE TABLE items (id int)"):
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_backup(app, pilot, settings, backup_dir)
            await dump_waits_on_the_lock(pilot, db18, screen)
            name = screen.operation.application_name
            await pilot.press("ctrl+q")  # asks first, as for every running operation
            await pilot.press("y")
            await wait_until(pilot, lambda: app.return_code is not None, "the wizard to quit")
        # Quitting cancelled the backup and waited for it: pg_dump stopped, the partial file is gone.
        assert app.return_code == 130 and screen.operation.done.is_set()
        assert list(backup_dir.iterdir()) == []
        # Sessions end asynchronously on the server: wait for pg_dump's to go (bounded).
        wait_for(lambda: db18.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                     (name,)) == 0, 20, "pg_dump's session to end")


async def test_failed_backup_explains_and_skip_needs_confirmation(db18, settings_for, tmp_path, canary):
    db18.execute("CREATE TABLE payroll (amount int)")  # the app role cannot read it: pg_dump fails
    settings = settings_for(db18)
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_backup(app, pilot, settings, tmp_path / "b")
        await settle(app, pilot)
        assert screen.result.outcome is Outcome.FAILED
        text = flat(screen_text(app))
        assert "permission denied for table payroll" in text
        assert "Fix: Run it as a role that can read every table" in text
        assert not screen.query_one("#continue").display
        await pilot.press("enter")  # Continue is not offered after a failure
        assert app.screen is screen

        await pilot.press("k")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        text = flat(screen_text(app))
        assert f"there is no copy of {db18.name} to go back to" in text
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen

        await pilot.press("k")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert screen.skipped and isinstance(app.screen, MigrateScreen)
        assert app.screen.result.outcome is Outcome.SUCCESS
        assert_no_secret(app, canary)
    assert list((tmp_path / "b").iterdir()) == []


# --- snapshots over recorded events ---------------------------------------------------------------

def backup_app(finish: bool, press: tuple[str, ...] = ()):
    app = MigrateApp(settings=fixed_settings(), describe=describe("overview-absent"), deterministic=True,
                     preflight=True)
    replays: list[Replay] = []
    # Not finishing: the cancelled backup, paused where pg_dump waited on the lock until cancelled.
    recorded = Replay.of("backup-verified") if finish else Replay.of("backup-cancelled", pause=True)

    def factory(settings, emit):
        replays.append(recorded(settings, emit))
        return replays[-1]

    async def run_before(pilot):
        await settle(pilot.app, pilot)
        for step in ("target", "checklist"):
            pilot.app.journey.mark(step, "done")
        # The replayed backup's file is gone with the recording: the drill is off, as with --skip-drill
        # (tests/tui/test_drill_panel.py drives the drill and the rehearsal on real backups).
        screen = BackupScreen(fixed_settings(), backup_factory=factory, drill=DrillOptions(enabled=False))
        await pilot.app.push_screen(screen)
        if finish:
            await settle(pilot.app, pilot)
        else:
            await wait_until(pilot, lambda: "Current table" in str(screen.query_one("#backup-status").content),
                             "the progress to show")
            await pilot.pause()
            await pilot.pause()
        for key in press:
            await pilot.press(key)
            await pilot.pause()
    return app, run_before, replays


@pytest.mark.parametrize("finish,press", [(True, ()), (False, ()), (False, ("k",))],
                         ids=["verified", "running", "skip-dialog"])
def test_backup_snapshot(snap_compare, finish, press):
    app, run_before, replays = backup_app(finish, press)
    try:
        assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
    finally:
        for replay in replays:
            replay.cancel()


async def test_continue_button_and_footer_name_the_same_key_and_c_copies_the_backup_path():
    app, run_before, replays = backup_app(finish=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_before(pilot)
        screen = app.screen
        assert isinstance(screen, BackupScreen) and screen.result.ok
        footer = screen_text(app).splitlines()[-1]
        assert "Continue to migrate (Enter)" in flat(screen_text(app))
        assert "Enter Continue" in footer and "c Continue" not in footer, footer
        lines = screen_text(app).splitlines()
        path, sha = screen.result.path, screen.result.sha256  # the recorded backup's
        assert path.startswith("backups/backup_before_migration_") and len(sha) == 64
        assert any(line.rstrip().endswith(f" File     {path}") for line in lines), lines  # whole, on its own line
        assert any(line.rstrip().endswith(f" SHA-256  {sha}") for line in lines), lines
        await pilot.press("c")  # copies the backup's path
        assert app.clipboard == path and app.screen is screen
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MigrateScreen)
