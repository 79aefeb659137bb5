"""The Checklist screen: Pilot on real PostgreSQL 18 (the whole Target → Checklist → Backup → Migrate flow,
a failing check that blocks Continue until fixed and re-run) and snapshots whose rows were recorded from real
checklists (tests/tui/recorded/: every field of every row compared with the engine by test_recorded_events)."""

from __future__ import annotations

import pytest
from conftest import assert_no_secret, flat, make_app, screen_text, settle, target_ready, widget_text
from fakes import fixed_settings
from recorded import checks, describe

from migration.events import Outcome
from tui.app import MigrateApp
from tui.screens.backup import BackupScreen
from tui.screens.checklist import ChecklistScreen
from tui.screens.migrate import MigrateScreen

pytestmark = pytest.mark.timeout(180)


async def open_checklist(app, pilot) -> ChecklistScreen:
    await target_ready(app, pilot)
    await pilot.press("m")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ChecklistScreen)
    assert screen.checklist is not None, "the checks never finished"
    return screen


async def test_checklist_then_backup_then_migration(db18, settings_for, tmp_path, monkeypatch, canary):
    monkeypatch.chdir(tmp_path)  # ./backups and the audit log land here
    app = make_app(settings_for(db18), preflight=True)
    async with app.run_test(size=(100, 30)) as pilot:
        checklist = await open_checklist(app, pilot)
        rows = checklist.query(".check-row")
        assert len(rows) == len(checklist.checklist.results) == 21
        text = flat(screen_text(app))
        assert "Pre-migration checklist for postgresql://app_user:****@" in text
        assert widget_text(checklist, "#check-schema_create").startswith("✓ CREATE on schema public  app_user may")
        # Finding 11: variables needed only after the migration are for later — shown, never blocking, and
        # nothing to acknowledge (they were three warnings to acknowledge before).
        assert widget_text(checklist, "#check-cron_secret").startswith("ℹ CRON_SECRET  not set")
        assert "Later: After the migration: `migrate-tui cron-secret`" in widget_text(checklist, "#check-cron_secret")
        assert checklist.query_one("#check-cron_secret").has_class("-info")
        assert checklist.checklist.passed and not checklist.checklist.warnings
        assert "3 for later, 0 warnings" in widget_text(checklist, "#checklist-summary")
        assert not checklist.query_one("#continue").disabled and not checklist.query_one("#acknowledge").display
        assert_no_secret(app, canary)

        await pilot.press("enter")
        await settle(app, pilot)
        backup = app.screen
        assert isinstance(backup, BackupScreen) and backup.result is not None and backup.result.ok
        files = sorted(p.name for p in (tmp_path / "backups").iterdir())
        assert len(files) == 3 and files[0].startswith("backup_before_migration_") and files[0].endswith(".sql")
        # settle() waited for the drill and the rehearsal too; the screen followed them: back to the top.
        assert backup.query_one("#proof").state == "passed"
        backup.query_one("#backup-body").scroll_home(animate=False)
        await settle(app, pilot)
        text = flat(screen_text(app))
        assert "✓ Backup written and verified" in text and backup.result.sha256 in text
        assert "backups/backup_before_migration_" in text
        assert_no_secret(app, canary)

        await pilot.press("enter")
        await settle(app, pilot)
        migrate = app.screen
        assert isinstance(migrate, MigrateScreen) and migrate.result.outcome is Outcome.SUCCESS
        assert db18.table_exists()
        assert_no_secret(app, canary)


async def test_a_failing_check_blocks_continue_until_fixed_and_rerun(db18, settings_for, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db18.execute("ALTER SCHEMA public OWNER TO postgres")
    db18.execute("REVOKE CREATE ON SCHEMA public FROM app_user")
    app = make_app(settings_for(db18), preflight=True)
    async with app.run_test(size=(100, 30)) as pilot:
        checklist = await open_checklist(app, pilot)
        assert not checklist.checklist.passed
        row = checklist.query_one("#check-schema_create")
        assert row.has_class("-failure")
        text = flat(screen_text(app))  # the first failure is scrolled into view
        assert "✗ CREATE on schema public" in text
        assert "Fix: Ask an administrator to run: GRANT CREATE ON SCHEMA public TO app_user;" in text
        assert "Continue is disabled until every failure is fixed" in text
        assert checklist.query_one("#continue").disabled and not checklist.query_one("#acknowledge").display
        await pilot.press("a", "enter")
        assert app.screen is checklist and not (tmp_path / "backups").exists()

        db18.execute("GRANT CREATE ON SCHEMA public TO app_user")
        await pilot.press("r")
        await settle(app, pilot)
        assert checklist.checklist.passed
        assert checklist.query_one("#check-schema_create").has_class("-ok")
        await pilot.press("a", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, BackupScreen)
    assert not db18.table_exists()


async def test_valid_table_goes_straight_to_migrate_without_a_backup(db18, settings_for, tmp_path, monkeypatch):
    from engine.engine_support import run

    monkeypatch.chdir(tmp_path)
    run(settings_for(db18))
    app = make_app(settings_for(db18, ), preflight=True)
    async with app.run_test(size=(100, 30)) as pilot:
        checklist = await open_checklist(app, pilot)
        assert checklist.checklist.table_state == "valid"
        await pilot.press("a", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, MigrateScreen)
        assert app.screen.result.outcome is Outcome.NOT_NEEDED
    assert not (tmp_path / "backups").exists()


# --- snapshots: rows of real checklists (recorded: the server's address, clock and this machine's paths fixed) ---

def checklist_app(failing: bool, acknowledge: bool = False):
    """failing: a role without CREATE on the schema; else a table with an extra column (a warning to read)."""
    app = MigrateApp(settings=fixed_settings(), describe=describe("overview-absent"), deterministic=True,
                     preflight=True)
    recorded = checks("checklist-failure" if failing else "checklist-warning")

    async def run_before(pilot):
        await settle(pilot.app, pilot)
        pilot.app.journey.mark("target", "done")
        await pilot.app.push_screen(ChecklistScreen(fixed_settings(), checks=recorded))
        await settle(pilot.app, pilot)
        if acknowledge:
            await pilot.press("a")
            await pilot.pause()
    return app, run_before


@pytest.mark.parametrize("failing,acknowledge", [(False, True), (True, False)], ids=["warnings-ack", "failure"])
def test_checklist_snapshot(snap_compare, failing, acknowledge):
    app, run_before = checklist_app(failing, acknowledge)
    # With a failure the list scrolls to it (CheckRows keeps it in view, whatever the timing).
    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))


async def test_acknowledging_changes_the_status_line_and_label_and_footer_fits_80_columns():
    app, run_before = checklist_app(failing=False)
    async with app.run_test(size=(80, 30)) as pilot:
        await run_before(pilot)
        checklist = app.screen
        assert "acknowledge the warnings (a) to continue" in widget_text(checklist, "#checklist-summary")
        lines = screen_text(app).rstrip("\n").splitlines()
        assert "q Quit" in lines[-1], lines[-1]  # the footer is not cut off at 80 columns
        assert "Back (Esc)" in lines[-2], lines[-2]  # nor the buttons
        await pilot.press("a")
        await pilot.pause()
        summary = widget_text(checklist, "#checklist-summary")
        assert "warnings acknowledged: press Enter to continue" in summary
        assert "acknowledge the warnings (a)" not in summary
        # Readable without colour: the box says its state ([✓] / [ ]), never a coloured ▐X▌ alone.
        assert "[✓] Warnings read (a)" in flat(screen_text(app)) and "▐X▌" not in screen_text(app)
        assert "Enter Continue" in screen_text(app).splitlines()[-1]  # the footer names the key the button names
        await pilot.press("a")
        await pilot.pause()
        assert "acknowledge the warnings (a) to continue" in widget_text(checklist, "#checklist-summary")
        assert "[ ] Warnings read (a)" in flat(screen_text(app))


async def test_wrapped_check_rows_have_a_hanging_indent():
    app, run_before = checklist_app(failing=False)
    async with app.run_test(size=(80, 30)) as pilot:
        await run_before(pilot)
        lines = screen_text(app).splitlines()
        first = next(i for i, line in enumerate(lines) if "ℹ CLOUDFLARE_ACCESS_KEY_ID  not set" in line)
        mark = lines[first].index("ℹ")
        wrapped, fix, fix_wrapped = lines[first + 1], lines[first + 2], lines[first + 3]
        assert wrapped[mark:mark + 2] == "  " and wrapped[mark + 2] != " ", wrapped  # under the name, not the mark
        assert fix[mark + 2:].startswith("Later: Add CLOUDFLARE_ACCESS_KEY_ID="), fix
        assert fix_wrapped[mark:mark + 4] == "    " and fix_wrapped[mark + 4] != " ", fix_wrapped
