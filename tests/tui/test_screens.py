"""SQL preview, help, themes, command palette, and the demo database's lifecycle."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from conftest import (
    assert_no_secret,
    make_app,
    palette_hits,
    palette_search,
    screen_text,
    settle,
    target_ready,
    wait_until,
    widget_text,
    wizard_source,
)

from migration import exit_codes
from migration.plan import render_plan
from tui.app import MigrateApp
from tui.dialogs.help import HelpScreen
from tui.screens.migrate import MigrateScreen
from tui.screens.sql import SqlScreen
from tui.target_source import SettingsSource

ROOT = Path(__file__).resolve().parents[2]


async def test_sql_preview_shows_and_copies_the_exact_plan(db18, settings_for, size, canary):
    settings = settings_for(db18, lock_timeout_ms=4321)
    app = make_app(settings)
    async with app.run_test(size=size) as pilot:
        await target_ready(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SqlScreen)
        assert app.screen.sql == render_plan(settings)
        text = screen_text(app)
        assert "BEGIN;" in text and "lock_timeout" in text and "4321ms" in text
        await pilot.press("end")  # scrollable down to the COMMIT
        await pilot.pause()
        assert "COMMIT;" in screen_text(app)
        await pilot.press("c")
        assert app.clipboard == render_plan(settings)
        assert_no_secret(app, canary)
        await pilot.press("escape")
        assert app.screen is app.target_screen
    assert not db18.table_exists()  # a preview runs nothing


async def test_help_lists_the_keys_of_the_screen_and_closes(db18, settings_for):
    app = make_app(settings_for(db18))
    async with app.run_test(size=(80, 24)) as pilot:
        await target_ready(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = widget_text(app.screen, "#help-screen-keys")
        assert "Run the guide's 8 migration steps" in keys and "Preview the exact SQL" in keys
        assert "Ctrl+P" in widget_text(app.screen, "#help-global-keys")
        await pilot.press("escape")
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.target_screen


async def test_theme_toggles_between_dark_and_light(db18, settings_for):
    app = make_app(settings_for(db18))
    async with app.run_test(size=(80, 24)) as pilot:
        await target_ready(app, pilot)
        assert app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light" and not app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark"


async def test_command_palette_offers_the_actions(db18, settings_for):
    app = make_app(settings_for(db18))
    async with app.run_test(size=(100, 30)) as pilot:
        await target_ready(app, pilot)
        ready = [c.title for c in app.get_system_commands(app.screen)]
        assert "Migrate" in ready and "Show SQL" in ready and "Toggle theme" in ready
        await palette_search(app, pilot, "Show SQL")
        await wait_until(pilot, lambda: (palette_hits(app) or [None])[0] == "Show SQL",
                         "the palette to offer Show SQL first")  # it searches asynchronously
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, SqlScreen)


async def test_migrate_is_gated_until_the_settings_are_known(db18, settings_for):
    """Before the settings arrive, m, the Migrate button and the palette open nothing; afterwards each does."""
    settings = settings_for(db18)
    asked, released = threading.Event(), threading.Event()

    def settings_after_release():
        asked.set()
        assert released.wait(60), "the test never released the settings"
        return settings

    app = MigrateApp(SettingsSource(lambda database_url=None: settings_after_release()))
    async with app.run_test(size=(100, 30)) as pilot:
        try:
            await wait_until(pilot, asked.is_set, "the settings worker to start")
            await wait_until(pilot, lambda: app.target_screen.query("#do-migrate"), "the Migrate button")
            assert app.settings is None and app.screen is app.target_screen
            await pilot.press("m")
            await pilot.pause()
            assert not migrate_opened(app), "m opened Migrate before the settings were known"
            await pilot.click("#do-migrate")
            await pilot.pause()
            assert not migrate_opened(app), "the Migrate button opened Migrate before the settings were known"
            assert "Migrate" not in [c.title for c in app.get_system_commands(app.screen)]
            await palette_search(app, pilot, "Migrate")
            await wait_until(pilot, lambda: palette_hits(app) == [], "the palette to find no 'Migrate'")
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is app.target_screen, "the palette to close")
            assert not migrate_opened(app) and app.settings is None
        finally:
            released.set()

        await target_ready(app, pilot)
        assert app.settings is settings
        await pilot.press("m")
        await wait_until(pilot, lambda: migrate_opened(app), "m to open Migrate")
        await settle(app, pilot)
        assert app.screen.result.outcome.value == "success"  # it really ran, on the released settings

        await app.run_action("back_to_target")
        await target_ready(app, pilot)
        await pilot.click("#do-migrate")
        await wait_until(pilot, lambda: migrate_opened(app), "the Migrate button to open Migrate")
        await settle(app, pilot)

        await app.run_action("back_to_target")
        await target_ready(app, pilot)
        await palette_search(app, pilot, "Migrate")
        await wait_until(pilot, lambda: (palette_hits(app) or [None])[0] == "Migrate", "the palette to offer Migrate")
        await pilot.press("enter")
        await wait_until(pilot, lambda: migrate_opened(app), "the palette to open Migrate")
        await settle(app, pilot)
    assert db18.table_exists()


def migrate_opened(app) -> bool:
    return any(isinstance(screen, MigrateScreen) for screen in app.screen_stack)


async def test_demo_database_starts_behind_the_first_frame_and_stops_on_exit():
    source = wizard_source(demo=True)
    app = MigrateApp(source)
    async with app.run_test(size=(100, 30)) as pilot:
        # The first frame is there before the demo database is.
        assert "Starting the demo database" in screen_text(app)
        screen = await target_ready(app, pilot)
        assert screen.overview.facts.database == "shop"
        password = app.settings.password
        root = source.demo.server.root
        assert root.exists()
        await pilot.press("m")
        await settle(app, pilot)
        assert app.last_result.outcome.value == "success"
        assert_no_secret(app, password)
        await pilot.press("q")
    assert app.return_code == exit_codes.OK
    source.close()
    assert not root.exists()
    source.close()  # idempotent


def test_without_a_terminal_the_wizard_says_to_run_headless():
    env = dict(os.environ, DATABASE_URL="postgresql://u:p@127.0.0.1:1/db")
    proc = subprocess.run([sys.executable, "-m", "headless.entry"], cwd=ROOT, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == exit_codes.CONFIG
    assert "migrate-tui run --yes" in proc.stderr
