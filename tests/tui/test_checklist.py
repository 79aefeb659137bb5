"""The Checklist screen: Pilot on real PostgreSQL 18 (the whole Target → Checklist → Backup → Migrate flow,
a failing check that blocks Continue until fixed and re-run) and snapshots with deterministic rows."""

from __future__ import annotations

import pytest
from conftest import assert_no_secret, flat, make_app, screen_text, settle, target_ready, widget_text
from fakes import describe_with, fixed_settings

from migration.options import BackupOptions
from migration.events import Outcome
from migration.preflight import CheckResult, Status
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


# --- snapshots: fixed rows, no hostnames, ports, clocks or paths ------------------------------------

def fixed_results(failing: bool) -> list[CheckResult]:
    ok, info, warn, fail = Status.OK, Status.INFO, Status.WARNING, Status.FAILURE
    env, con, per, tab, bak = "Environment", "Connection", "Permissions", "Table", "Backup"
    after = "not set — needed by the backup system after the migration (not by the migration itself)"
    return [
        CheckResult("env_file", env, ".env file", ok, "loaded /srv/shop/.env"),
        CheckResult("database_url", env, "DATABASE_URL", ok, "valid: postgresql://shop_app:****@db.internal.example:5432/shop"),
        CheckResult("cron_secret", env, "CRON_SECRET", ok, "set"),
        CheckResult("cloudflare_access_key_id", env, "CLOUDFLARE_ACCESS_KEY_ID", info, after,
                    "Add CLOUDFLARE_ACCESS_KEY_ID=<your R2 key> to .env before deploying the backup system."),
        CheckResult("cloudflare_secret_access_key", env, "CLOUDFLARE_SECRET_ACCESS_KEY", info, after,
                    "Add CLOUDFLARE_SECRET_ACCESS_KEY=<your R2 key> to .env before deploying the backup system."),
        CheckResult("connection", con, "Connection", ok, "PostgreSQL 18.6 at db.internal.example:5432/shop as "
                    "shop_app; server time 2026-01-15 10:30:25"),
        CheckResult("latency", con, "Round trip", ok, "0.4 ms (median of 5)"),
        CheckResult("ssl", con, "SSL", warn, "not in use: the password and data cross the network unencrypted",
                    "Add sslmode=require to DATABASE_URL if the server supports SSL."),
        CheckResult("pooler", con, "Direct connection", ok, "no connection pooler detected"),
        CheckResult("schema_create", per, "CREATE on schema public", fail if failing else ok,
                    "shop_app has no CREATE privilege on schema public" if failing
                    else "shop_app may create tables and indexes in public",
                    "Ask an administrator to run: GRANT CREATE ON SCHEMA public TO shop_app;" if failing else ""),
        CheckResult("primary", per, "Primary server", ok, "not in recovery: the server accepts writes"),
        CheckResult("read_write", per, "Read-write session", ok, "transactions are read-write"),
        CheckResult("table", tab, "Table database_backups", ok, "absent: public.database_backups will be created"),
        CheckResult("index_names", tab, "Index names", ok, "idx_database_backups_created_at, "
                    "idx_database_backups_status, idx_database_backups_created_by are free"),
        CheckResult("pg_dump", bak, "pg_dump", ok, "18.6 at /usr/lib/postgresql/18/bin/pg_dump (server is 18)"),
        CheckResult("backup_read", bak, "Readable by pg_dump", ok, "shop_app can read every table and sequence"),
        CheckResult("backup_dir", bak, "Backup directory", ok, "backups (will be created, mode 0700)"),
        CheckResult("disk_space", bak, "Disk space", ok, "41.2 GB free in backups; the database is 1.3 GB"),
        CheckResult("backup_format", bak, "Backup format", ok, "plain (1.3 GB database; --format directory --jobs N "
                    "pays off above 5.0 GB)"),
        CheckResult("drill", "Drill", "Restore drill", ok, "into a throwaway PostgreSQL 18.6 (system, "
                    "/usr/lib/postgresql/18/bin); then the migration is rehearsed on it"),
        CheckResult("drill_room", "Drill", "Drill room and time", ok, "needs about 1.6 GB in /tmp (41.2 GB free); "
                    "takes about 36 s for 1.3 GB"),
    ]


def fixed_checks(failing: bool):
    def checks(settings, checklist, **options):
        checklist.table_state = "absent"
        for result in fixed_results(failing):
            checklist.results.append(result)
            yield result
    return checks


def test_fixed_rows_match_what_the_engine_checks(db18, tmp_path):
    from migration.preflight import run_checklist
    from migration.settings import load_settings

    real = run_checklist(load_settings(database_url=db18.url, environ={}), options=BackupOptions(backup_dir=tmp_path))
    fixed = fixed_results(False)
    assert [(r.key, r.group, r.name) for r in real.results] == [(r.key, r.group, r.name) for r in fixed]


def checklist_app(failing: bool, acknowledge: bool = False):
    app = MigrateApp(settings=fixed_settings(), describe=describe_with(), deterministic=True, preflight=True)

    async def run_before(pilot):
        await settle(pilot.app, pilot)
        pilot.app.journey.mark("target", "done")
        await pilot.app.push_screen(ChecklistScreen(fixed_settings(), checks=fixed_checks(failing)))
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
