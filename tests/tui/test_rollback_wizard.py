"""The wizard's Rollback screen, its typed confirmation dialog and the audit log screen (Pilot, real PostgreSQL 18)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest
from conftest import assert_no_secret, flat, make_app, screen_text, settle, target_ready, wait_until, widget_text
from textual.app import App
from textual.widgets import Button, Input

from migration.events import Dependent, Outcome, Preview
from migration.options import RollbackOptions
from migration.runner import Migration
from tui.screens.audit_log import AuditLogScreen
from tui.screens.rollback import RollbackScreen
from tui.dialogs.confirm_drop import ConfirmDropDialog

pytestmark = pytest.mark.timeout(120)

PREVIEW = Preview(
    "public", "database_backups", True, 3, 98304, "96 kB",
    ("public.database_backups_filename_key", "public.database_backups_pkey",
     "public.idx_database_backups_created_at", "public.idx_database_backups_created_by",
     "public.idx_database_backups_status"),
    "public.database_backups_id_seq",
    (Dependent("table constraint", "restores_backup_id_fkey on public.restores", "restores", "pg_constraint", 1),
     Dependent("view", "public.recent_backups", None, "pg_class", 2)),
    'DROP TABLE IF EXISTS "public"."database_backups" CASCADE', "18.6",
)


class DialogHarness(App):
    """Just the dialog over an empty screen: what it returns is recorded."""

    def __init__(self, preview: Preview = PREVIEW, safety_copy: bool = True) -> None:
        super().__init__()
        self.preview, self.safety_copy = preview, safety_copy
        self.answers: list[bool | None] = []

    def on_mount(self) -> None:
        self.push_screen(ConfirmDropDialog(self.preview, safety_copy=self.safety_copy), self.answers.append)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Safety copies (./backups) and the audit log (./migrate-tui.log) land in a temp directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATE_AUDIT_LOG", raising=False)
    return tmp_path


def _migrate(db, settings) -> None:
    assert Migration(settings, lambda e: None).run().outcome is Outcome.SUCCESS
    with db.app() as conn:
        conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a', 'k/a', 1), "
                     "('b', 'k/b', 2)")


async def open_rollback(app, pilot) -> RollbackScreen:
    """From the Target screen, d opens the Rollback screen with its preview read."""
    await target_ready(app, pilot)
    await pilot.press("d")
    await settle(app, pilot)
    assert isinstance(app.screen, RollbackScreen)
    return app.screen


async def confirm_drop(pilot) -> None:
    """d opens the dialog; typing the table name and Enter confirms the DROP."""
    await pilot.press("d")
    await pilot.pause()
    await pilot.press(*"database_backups", "enter")


async def test_dialog_keeps_drop_disabled_until_the_table_name_is_typed():
    app = DialogHarness()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDropDialog)
        drop = dialog.query_one("#confirm-drop-yes", Button)
        field = dialog.query_one("#confirm-drop-input", Input)
        assert app.focused is field  # focus starts on the input
        text = flat(screen_text(app))
        assert "Drop table public.database_backups?" in text
        assert "view public.recent_backups" in text and "restores_backup_id_fkey on public.restores" in text
        assert "CASCADE also removes 2 other object(s)" in text
        assert drop.disabled

        for wrong in ("database_backup", "DATABASE_BACKUPS", "public.database_backupsx"):
            field.value = ""
            await pilot.press(*wrong)
            await pilot.pause()
            assert drop.disabled, wrong
            await pilot.press("enter")  # Enter with the wrong name does nothing
            await pilot.pause()
            assert app.screen is dialog and app.answers == []
        await pilot.click("#confirm-drop-yes")  # a disabled button cannot be pressed
        await pilot.pause()
        assert app.answers == []

        field.value = ""
        await pilot.press(*"database_backups")
        await pilot.pause()
        assert not drop.disabled
        await pilot.click("#confirm-drop-yes")
        await pilot.pause()
        assert app.answers == [True]


async def test_dialog_enter_with_a_wrong_name_says_what_to_type():
    app = DialogHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog = app.screen
        assert "exactly to enable Drop" not in flat(screen_text(app))
        await pilot.press(*"database_backup", "enter")
        await pilot.pause()
        assert app.screen is dialog and app.answers == []
        assert "Type database_backups exactly to enable Drop" in flat(screen_text(app))
        assert dialog.query_one("#confirm-drop-yes", Button).disabled
        await pilot.press("s")  # typing again clears the message
        await pilot.pause()
        assert "exactly to enable Drop" not in flat(screen_text(app))
        await pilot.press("backspace", "enter", "escape")
        await pilot.pause()
        assert app.answers == [False]


async def test_dialog_escape_and_cancel_answer_no():
    for key in ("escape", "cancel-button"):
        app = DialogHarness()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press(*"database_backups")
            if key == "escape":
                await pilot.press("escape")
            else:
                await pilot.click("#confirm-drop-no")
            await pilot.pause()
            assert app.answers == [False]
            assert not isinstance(app.screen, ConfirmDropDialog)


async def test_escape_in_the_dialog_changes_nothing(db18, settings_for, workdir):
    settings = settings_for(db18)
    _migrate(db18, settings)
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_rollback(app, pilot)
        assert screen.preview.exists
        assert "Table public.database_backups — 2 rows" in flat(screen_text(app))
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDropDialog)
        await pilot.press(*"database", "escape")
        await settle(app, pilot)
        assert app.screen is screen and screen.operation is None and screen.result is None
    assert db18.table_exists()
    assert not (workdir / "backups").exists()
    assert not (workdir / "migrate-tui.log").exists() or "RollbackStarted" not in (
        workdir / "migrate-tui.log").read_text()


async def test_full_rollback_from_the_wizard(db18, settings_for, workdir, canary):
    settings = settings_for(db18)
    _migrate(db18, settings)
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_rollback(app, pilot)
        await confirm_drop(pilot)
        await settle(app, pilot)
        await wait_until(pilot, lambda: screen.result is not None, "the rollback to finish")
        await settle(app, pilot)
        assert screen.result.outcome is Outcome.SUCCESS, screen.result
        progress = widget_text(screen, "#rollback-progress")
        for step in ("✓ Safety copy", "✓ Lock", "✓ Drop", "✓ Verify"):
            assert step in progress, progress
        result = widget_text(screen, "#rollback-result")
        assert "To restore the table:" in result
        copy = screen.result.copy
        # the command on lines of its own (shell continuations), never wrapped; c copies it whole
        command = screen.query_one("#rollback-restore-command")
        assert command.display and command.text.replace(" \\\n", " ") == copy.restore_command
        assert f"-f {copy.path}" in screen_text(app)  # the file, whole, on its own line
        await pilot.press("c")
        assert app.clipboard == command.text
        notes = widget_text(screen, "#rollback-result-notes")
        assert "Demo:" not in notes
        # nothing left to roll back: d is neither shown nor a silent no-op
        assert not screen.query_one("#rollback-drop").display
        assert "Roll back" not in screen_text(app)
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen
        assert "migrate-tui.log" in notes
        assert "was dropped and the catalog confirms it is gone" in widget_text(screen, "#rollback-status")
        assert_no_secret(app, canary)

        await pilot.press("l")
        await settle(app, pilot)
        assert isinstance(app.screen, AuditLogScreen)
        text = screen_text(app)
        assert "rollback" in text and "success" in text  # one row per operation
        await pilot.press("enter")  # its events
        await settle(app, pilot)
        assert "RollbackFinished" in widget_text(app.screen, "#audit-log-events")
        assert_no_secret(app, canary)
        await pilot.press("escape")
        await pilot.press("escape")  # back to the Target, which reads the server again
        await settle(app, pilot)
        assert app.screen is app.target_screen and app.target_screen.overview.state == "absent"

    assert not db18.table_exists()
    copies = list((workdir / "backups").glob("public.database_backups-before-rollback-*.sql"))
    assert len(copies) == 1
    log = (workdir / "migrate-tui.log").read_text(encoding="utf-8")
    assert canary not in log
    events = [json.loads(line)["event"] for line in log.splitlines() if '"rollback"' in line]
    assert events[0] == "RollbackStarted" and events[-1] == "RollbackFinished"


async def test_rollback_without_dependents_after_a_wizard_migration_is_reachable_from_result(db18, settings_for,
                                                                                             workdir):
    app = make_app(settings_for(db18))
    async with app.run_test(size=(80, 24)) as pilot:
        await target_ready(app, pilot)
        await pilot.press("m")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("d")  # from the Result screen
        await settle(app, pilot)
        assert isinstance(app.screen, RollbackScreen) and app.screen.preview.exists
        # the wizard's migration is in the audit log too
        log = (workdir / "migrate-tui.log").read_text(encoding="utf-8")
        assert '"operation": "migrate"' in log and '"RunFinished"' in log


async def test_blockers_are_listed_while_waiting_then_it_succeeds(db18, settings_for, workdir):
    settings = settings_for(db18)
    _migrate(db18, settings)
    holder = psycopg.connect(db18.url, autocommit=True, application_name="report-job")
    holder.execute("BEGIN")
    holder.execute("SELECT count(*) FROM database_backups")
    app = make_app(settings)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await target_ready(app, pilot)
            screen = RollbackScreen(settings, options=RollbackOptions(
                lock_timeout_ms=400, retries=50, backoff_s=0.2, backoff_max_s=0.3, watch_interval_s=0.1,
                table_backup=False))
            await app.push_screen(screen)
            await settle(app, pilot)
            await confirm_drop(pilot)
            await wait_until(pilot, lambda: "report-job" in widget_text(screen, "#rollback-progress"),
                             "the blocker to be listed")
            progress = widget_text(screen, "#rollback-progress").splitlines()
            lock = next(i for i, line in enumerate(progress) if "Lock" in line)
            assert "report-job" in progress[lock + 1] and "idle in transaction" in progress[lock + 1]  # under Lock
            assert "holds AccessShareLock" in progress[lock + 1]
            await wait_until(pilot, lambda: "not granted within the lock timeout" in widget_text(
                screen, "#rollback-progress"), "a lock timeout")
            threading.Thread(target=holder.execute, args=("COMMIT",), daemon=True).start()
            await wait_until(pilot, lambda: screen.result is not None, "the rollback to finish")
            await settle(app, pilot)
            assert screen.result.outcome is Outcome.SUCCESS
            assert "✓ Lock" in widget_text(screen, "#rollback-progress")
            assert "report-job" not in widget_text(screen, "#rollback-progress")
    finally:
        holder.close()
    assert not db18.table_exists()


@pytest.mark.parametrize("key", ["escape", "q"])
async def test_cancel_while_waiting_for_the_lock(db18, settings_for, workdir, key):
    """Escape cancels the waiting DROP; q cancels it too, then quits the wizard."""
    settings = settings_for(db18)
    _migrate(db18, settings)
    with psycopg.connect(db18.url, autocommit=True, application_name="report-job") as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM database_backups")
        app = make_app(settings)
        async with app.run_test(size=(100, 30)) as pilot:
            await target_ready(app, pilot)
            screen = RollbackScreen(settings, options=RollbackOptions(lock_timeout_ms=60_000,
                                                                       watch_interval_s=0.1, table_backup=False))
            await app.push_screen(screen)
            await settle(app, pilot)
            await confirm_drop(pilot)
            await wait_until(pilot, lambda: "report-job" in widget_text(screen, "#rollback-progress"),
                             "the DROP to wait")
            await pilot.press(key)
            if key == "q":  # quitting while it runs asks first, then cancels and leaves
                await pilot.pause()
                await pilot.press("y")
            await wait_until(pilot, lambda: screen.result is not None, "the cancel to finish")
            assert screen.result.outcome is Outcome.CANCELLED
            assert "Cancelled; nothing was dropped (the catalog still shows" in widget_text(screen, "#rollback-status")
            if key == "q":
                await wait_until(pilot, lambda: app.return_code is not None, "the wizard to quit")
        holder.execute("ROLLBACK")
    assert db18.table_exists()


async def test_nothing_to_roll_back(db18, settings_for, workdir):
    app = make_app(settings_for(db18))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_rollback(app, pilot)
        assert "Nothing to roll back: table public.database_backups does not exist." in widget_text(
            screen, "#rollback-status")
        assert not screen.query_one("#rollback-drop").display
        assert "Roll back" not in screen_text(app)  # not offered
        assert "q Quit" in flat(screen_text(app))
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen  # no dialog for nothing
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_code is not None, "q to quit the wizard")


# -- snapshots (deterministic: a fixed preview, a fixed log) -------------------------------------------------

@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_snapshot_confirm_drop_dialog(snap_compare, size):
    async def type_wrong(pilot):
        await pilot.pause()
        await pilot.press(*"database_backup")
        await pilot.pause()

    assert snap_compare(DialogHarness(), run_before=type_wrong, terminal_size=size)


def test_snapshot_confirm_drop_without_dependents_or_copy(snap_compare):
    plain = Preview("public", "database_backups", True, 0, 57344, "56 kB", ("public.database_backups_pkey",),
                    "public.database_backups_id_seq", (), 'DROP TABLE IF EXISTS "public"."database_backups"', "18.6")
    assert snap_compare(DialogHarness(plain, safety_copy=False), terminal_size=(80, 24))


@pytest.mark.parametrize("press", [(), ("down", "enter")], ids=["operations", "events"])
def test_snapshot_audit_log_screen(snap_compare, tmp_path, monkeypatch, press):
    monkeypatch.chdir(tmp_path)  # the screen shows the path: keep it the same on every run
    path = Path("fixed.log")
    target = "postgresql://shop_app:****@db.internal:5432/shop"
    common = {"operator": "deploy", "target": target, "schema": "public", "version": "0.1.0"}
    rows = [
        {**common, "time": "2026-11-25T10:30:24.000+00:00", "operation": "migrate", "run": "5d95a1", "event":
         "RunStarted", "data": {}},
        *({**common, "time": f"2026-11-25T10:30:24.{n}00+00:00", "operation": "migrate", "run": "5d95a1",
           "event": "StepFinished", "duration_ms": 10.0 + n, "data": {"step": n, "message": message}}
          for n, message in ((4, "Table database_backups created successfully"),
                             (5, "Indexes created successfully"))),
        {**common, "time": "2026-11-25T10:30:25.000+00:00", "operation": "migrate", "run": "5d95a1",
         "event": "RunFinished", "outcome": "success", "duration_ms": 182.4,
         "data": {"message": "Migration completed successfully!"}},
        {**common, "time": "2026-11-25T10:41:02.000+00:00", "operation": "rollback", "run": "ce4b52",
         "event": "RollbackFinished", "outcome": "success", "duration_ms": 311.0,
         "backup_path": "backups/public.database_backups-before-rollback-20261125T104102Z.sql",
         "sha256": "2ecebe70d397edddce600f05b0f61db315b492b6",
         "data": {"message": "Table public.database_backups was dropped and the catalog confirms it is gone."}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    class LogHarness(App):
        def on_mount(self) -> None:
            self.push_screen(AuditLogScreen(path))

    assert snap_compare(LogHarness(), press=press, terminal_size=(80, 24))


async def test_restore_the_copy_from_the_wizard(db18, settings_for, workdir):
    from dataclasses import replace

    settings = replace(settings_for(db18), demo=True)  # as with migrate-tui --demo
    _migrate(db18, settings)
    before = db18.admin().execute("SELECT * FROM database_backups ORDER BY id").fetchall()
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_rollback(app, pilot)
        assert not screen.query_one("#rollback-restore").display  # nothing to restore yet
        await confirm_drop(pilot)
        await wait_until(pilot, lambda: screen.result is not None, "the rollback")
        await settle(app, pilot)
        assert not db18.table_exists()
        assert screen.query_one("#rollback-restore").display
        assert "the demo database disappears when you quit, so restore with u here" in flat(
            widget_text(screen, "#rollback-result-notes"))
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("n")  # "Not now" changes nothing
        await settle(app, pilot)
        assert not db18.table_exists()
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: getattr(screen, "restored", False), "the restore")
        await settle(app, pilot)
        assert "restored from the safety copy: 2 rows, structure verified" in widget_text(screen, "#rollback-status")
        # said once (finding 9: it was printed twice); the drop's result and its restore command are gone
        assert flat(screen_text(app)).count("restored from the safety copy") == 1
        result = widget_text(screen, "#rollback-result") + widget_text(screen, "#rollback-result-notes")
        assert "was dropped" not in result and "To restore the table" not in result
        assert not screen.query_one("#rollback-restore-command").display
        assert "Table public.database_backups — 2 rows" in widget_text(screen, "#rollback-preview")
        assert not screen.query_one("#rollback-progress").display
        assert not screen.query_one("#rollback-restore", Button).display or screen.query_one(
            "#rollback-restore", Button).disabled
    assert db18.admin().execute("SELECT * FROM database_backups ORDER BY id").fetchall() == before
    assert '"operation": "restore"' in (workdir / "migrate-tui.log").read_text()


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_snapshot_rollback_screen_preview(snap_compare, size):
    from migration.settings import Settings

    settings = Settings(database_url="postgresql://shop_app:not-shown@db.internal:5432/shop")

    class ScreenHarness(App):
        deterministic = True

        def on_mount(self) -> None:
            self.push_screen(RollbackScreen(settings, reader=lambda s: PREVIEW, options=RollbackOptions()))

    async def loaded(pilot):
        await settle(pilot.app, pilot)

    assert snap_compare(ScreenHarness(), run_before=loaded, terminal_size=size)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("key", ["enter", "escape"])
async def test_the_wizard_keeps_responding_after_a_failed_rollback(db18, settings_for, workdir, key):
    """Regression: Enter on the focused Back button after 'Rollback failed; nothing was dropped' froze the
    wizard (the button waited for the removal of its own screen); every key was dead from then on."""
    settings = settings_for(db18)
    _migrate(db18, settings)
    with psycopg.connect(db18.url, autocommit=True, application_name="report-job") as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE public.database_backups IN ACCESS SHARE MODE")
        app = make_app(settings)
        async with app.run_test(size=(100, 30)) as pilot:
            await target_ready(app, pilot)
            screen = RollbackScreen(settings, options=RollbackOptions(lock_timeout_ms=200, retries=0,
                                                                       table_backup=False))
            await app.push_screen(screen)
            await settle(app, pilot)
            await confirm_drop(pilot)
            await wait_until(pilot, lambda: screen.result is not None, "the rollback to give up")
            assert screen.result.outcome is Outcome.FAILED
            assert app.focused is screen.query_one("#rollback-back")
            await pilot.press(key)
            await wait_until(pilot, lambda: app.screen is app.target_screen, "the Target screen")
            await settle(app, pilot)
            await pilot.press("q")
            await wait_until(pilot, lambda: app.return_code is not None, "the wizard to quit")
        holder.execute("ROLLBACK")
    assert db18.table_exists()


async def test_after_a_failed_rollback_d_is_offered_at_once_and_no_restore_is(db18, settings_for, workdir):
    """Finding 5: after 'Rollback failed; nothing was dropped' the screen offered 'press u' (u did nothing) and a
    Roll back button that did nothing until r. Now: no restore (nothing was dropped), and d works at once."""
    settings = settings_for(db18)
    _migrate(db18, settings)
    holder = psycopg.connect(db18.url, autocommit=True, application_name="report-job")
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE public.database_backups IN ACCESS SHARE MODE")
    app = make_app(settings)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await target_ready(app, pilot)
            screen = RollbackScreen(settings, options=RollbackOptions(lock_timeout_ms=200, retries=0,
                                                                       backup_dir=workdir / "backups"))
            await app.push_screen(screen)
            await settle(app, pilot)
            await confirm_drop(pilot)
            await wait_until(pilot, lambda: screen.result is not None and screen.preview_after_result,
                             "the rollback to give up and the preview to be read again")
            await settle(app, pilot)
            assert screen.result.outcome is Outcome.FAILED and screen.result.copy is not None
            everything = flat(widget_text(screen, "#rollback-status") + widget_text(screen, "#rollback-result")
                              + widget_text(screen, "#rollback-result-notes"))
            assert "nothing was dropped" in everything.lower()
            assert "press u" not in everything and "To restore the table" not in everything
            assert "was kept; the table was not dropped, so there is nothing to restore" in everything
            assert not screen.query_one("#rollback-restore").display
            assert not screen.query_one("#rollback-restore-command").display
            await pilot.press("u")
            await pilot.pause()
            assert app.screen is screen  # u is not offered, and does nothing
            assert screen.query_one("#rollback-drop").display  # the table is still there: d again, at once
            assert "d Roll back" in screen_text(app).splitlines()[-1]
            holder.execute("ROLLBACK")
            await confirm_drop(pilot)
            await wait_until(pilot, lambda: screen.result is not None and screen.result.outcome is Outcome.SUCCESS,
                             "the second rollback")
            assert not db18.table_exists()
    finally:
        holder.close()


async def test_a_blocker_the_role_may_not_see_is_listed_under_the_lock_row_saying_why(db18, settings_for, workdir):
    """Finding 6: the blocker was listed below '· Drop' and '· Verify' as 'user postgres ?, no transaction:
    <insufficient privilege>' although that session was idle in transaction."""
    settings = settings_for(db18)
    _migrate(db18, settings)
    admin = db18.admin()  # a superuser session: the operator's role may not see its state
    admin.execute("SET application_name = 'ops-psql'")
    admin.execute("BEGIN")
    admin.execute("SELECT count(*) FROM public.database_backups")
    app = make_app(settings)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await target_ready(app, pilot)
            screen = RollbackScreen(settings, options=RollbackOptions(lock_timeout_ms=60_000, watch_interval_s=0.1,
                                                                       table_backup=False))
            await app.push_screen(screen)
            await settle(app, pilot)
            await confirm_drop(pilot)
            await wait_until(pilot, lambda: "ops-psql" in widget_text(screen, "#rollback-progress"), "the blocker")
            lines = flat(widget_text(screen, "#rollback-progress").replace("\n", " | ")).split(" | ")
            lock = next(i for i, line in enumerate(lines) if "Lock" in line)
            assert "ops-psql" in lines[lock + 1] and "Drop" in lines[lock + 2]  # under the row it blocks
            assert "holds AccessShareLock" in lines[lock + 1]
            assert "hidden from your role: grant it pg_read_all_stats" in lines[lock + 1]
            assert "no transaction" not in lines[lock + 1] and "insufficient privilege" not in lines[lock + 1]
            await pilot.press("escape")  # cancel the waiting DROP
            await wait_until(pilot, lambda: screen.result is not None, "the cancel")
            assert screen.result.outcome is Outcome.CANCELLED
    finally:
        admin.execute("ROLLBACK")
        admin.close()
    assert db18.table_exists()
