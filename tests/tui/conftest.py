"""Helpers for the wizard tests: build the app around a test database and drive it."""

from __future__ import annotations

import pytest

from tui.app import MigrateApp

SIZES = [(100, 30), (80, 24)]


@pytest.fixture(autouse=True)
def _audit_log_in_tmp(tmp_path, monkeypatch):
    """Wizard runs append to the audit log: keep it out of the working tree."""
    monkeypatch.setenv("MIGRATE_AUDIT_LOG", str(tmp_path / "audit.log"))


@pytest.fixture(params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def size(request):
    return request.param


async def settle(app, pilot) -> None:
    """Wait until every worker has finished and the messages they posted are handled."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def target_ready(app, pilot):
    """Wait for the settings and the server facts to fill in on the Target screen."""
    await settle(app, pilot)
    screen = app.target_screen
    assert screen.overview is not None, "the overview never arrived"
    return screen


async def wait_until(pilot, condition, what: str, tries: int = 600) -> None:
    """Poll a condition between event-loop turns (for states only the server knows, e.g. a lock wait)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def palette_hits(app) -> list[str] | None:
    """The command palette's results once its search has finished: the hits' titles, best first,
    [] once it says "No matches found"; None while it is not open, still searching or empty."""
    from textual.command import CommandList, CommandPalette

    screen = app.screen
    if not isinstance(screen, CommandPalette):
        return None
    if any(w.group == CommandPalette._GATHER_COMMANDS_GROUP and w.is_running for w in app.workers):
        return None
    results = screen.query_one(CommandList)
    options = [results.get_option_at_index(i) for i in range(results.option_count)]
    if options and options[0].id == CommandPalette._NO_MATCHES:
        return []
    return [str(o.hit.text) for o in options if hasattr(o, "hit")] or None


async def palette_search(app, pilot, text: str) -> None:
    """Open the command palette (Ctrl+P) and type ``text``; wait with palette_hits for its results."""
    from textual.command import CommandInput, CommandPalette

    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), "the command palette to open")
    await pilot.press(*text)
    await wait_until(pilot, lambda: app.screen.query_one(CommandInput).value == text, f"{text!r} typed")


def screen_text(app) -> str:
    """Everything the current screen shows, as plain text lines (what a terminal would show)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def flat(text: str) -> str:
    """Screen text with line breaks and repeated spaces folded, to find wrapped sentences."""
    return " ".join(text.split())


def assert_no_secret(app, secret: str) -> None:
    svg = app.export_screenshot()
    assert secret not in svg and secret not in screen_text(app)


def make_app(settings, **kwargs) -> MigrateApp:
    return MigrateApp(settings=settings, **kwargs)


def widget_text(screen, selector: str) -> str:
    """The text of a Static, also when it is scrolled out of view."""
    from textual.widgets import Static

    return str(screen.query_one(selector, Static).content)


def wizard_source(demo: bool = False, **options):
    """The settings source the console script builds for ``migrate-tui [--demo] [--env-file PATH] ...``."""
    import argparse

    from headless.options import settings_from_args
    from tui.target_source import DemoSource, SettingsSource

    args = argparse.Namespace(demo=demo, **options)

    def load(database_url=None):
        return settings_from_args(args, database_url=database_url)

    return DemoSource(load) if demo else SettingsSource(load)
