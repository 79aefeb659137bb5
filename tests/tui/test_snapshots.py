"""Snapshot tests (pytest-textual-snapshot) of every screen, with deterministic content.

The apps here replay events recorded from real engine runs (tests/tui/recorded/: the Target
overviews, the unreachable one included; the migrations, the cancelled one included; the
verifications and the rollback) with ``deterministic=True`` (no clocks, timings or spinner frames),
so the pictures only change when the UI or the engine does; tests/tui/test_recorded_events.py
proves the recording is what the engine emits now. Update after an intended change with ``pytest tests/tui/test_snapshots.py
--snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import pytest
from conftest import settle, wait_until, wizard_source
from fakes import fixed_settings
from recorded import Replay, describe, events

from tui.app import MigrateApp

SIZES = pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])


def wizard(overview="overview-absent", events="migration-success", **kwargs) -> MigrateApp:
    """The wizard over a recorded Target overview, replaying a recorded migration."""
    return MigrateApp(settings=fixed_settings(), describe=describe(overview),
                      migration_factory=Replay.of(events), deterministic=True, **kwargs)


def keys(*presses):
    async def run_before(pilot):
        await settle(pilot.app, pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot.app, pilot)
    return run_before


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_target_absent(snap_compare, size):
    assert snap_compare(wizard(), run_before=keys(), terminal_size=size)


def test_target_invalid(snap_compare):
    assert snap_compare(wizard("overview-invalid"), run_before=keys(), terminal_size=(80, 24))


def test_target_index_name_clash(snap_compare):
    assert snap_compare(wizard("overview-clash"), run_before=keys(), terminal_size=(80, 24))


def test_target_at_200x50(snap_compare):
    assert snap_compare(wizard(), run_before=keys(), terminal_size=(200, 50))


def test_target_unreachable(snap_compare):
    assert snap_compare(wizard("overview-unreachable"), run_before=keys(), terminal_size=(80, 24))


def test_target_light_theme(snap_compare):
    assert snap_compare(wizard(), run_before=keys("ctrl+t"), terminal_size=(80, 24))


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_migrate_success(snap_compare, size):
    assert snap_compare(wizard(), run_before=keys("m"), terminal_size=size)


def test_migrate_index_clash_failed(snap_compare):
    assert snap_compare(wizard("overview-clash", "migration-clash"), run_before=keys("m"), terminal_size=(80, 24))


def _running(confirm: bool):
    replays = []

    cancelled = Replay.of("migration-cancelled", pause=True)  # waits in Table Creation until cancelled

    def factory(settings, emit):
        replays.append(cancelled(settings, emit))
        return replays[-1]

    app = MigrateApp(settings=fixed_settings(), describe=describe("overview-absent"), migration_factory=factory,
                     deterministic=True)

    async def run_before(pilot):
        await settle(pilot.app, pilot)
        await pilot.press("m")
        await wait_until(pilot, lambda: pilot.app.screen.query_one("#step-4").state == "running",
                         "the Table Creation step to run")
        if confirm:
            await pilot.press("escape")
            await pilot.pause()
    return app, run_before, replays


@pytest.mark.parametrize("confirm", [False, True], ids=["running", "confirm-cancel"])
def test_migrate_running_and_cancel_dialog(snap_compare, confirm):
    app, run_before, replays = _running(confirm)
    try:
        assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
    finally:
        for replay in replays:
            replay.cancel()


@SIZES
def test_result_success(snap_compare, size):
    assert snap_compare(wizard(), run_before=keys("m", "enter"), terminal_size=size)


def test_result_scrolled_to_the_end(snap_compare):
    async def run_before(pilot):
        await keys("m", "enter", "end")(pilot)
        await pilot.pause(0.6)  # the scroll animates
    assert snap_compare(wizard(), run_before=run_before, terminal_size=(80, 24))


def test_result_at_200x50(snap_compare):
    assert snap_compare(wizard(), run_before=keys("m", "enter"), terminal_size=(200, 50))


def test_result_not_needed(snap_compare):
    assert snap_compare(wizard(events="migration-not-needed"), run_before=keys("m", "enter"), terminal_size=(80, 24))


def test_result_failed_missing_column(snap_compare):
    assert snap_compare(wizard("overview-invalid", "migration-invalid"), run_before=keys("m", "enter"), terminal_size=(80, 24))


def test_migrate_cancelled(snap_compare):
    app, running, replays = _running(confirm=True)

    async def run_before(pilot):
        await running(pilot)
        await pilot.press("y")
        await settle(pilot.app, pilot)

    try:
        assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
    finally:
        for replay in replays:
            replay.cancel()


def test_result_cancelled(snap_compare):
    app, running, replays = _running(confirm=True)

    async def run_before(pilot):
        await running(pilot)
        await pilot.press("y")
        await settle(pilot.app, pilot)
        await pilot.press("enter")
        await pilot.pause()

    try:
        assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
    finally:
        for replay in replays:
            replay.cancel()


def test_sql_preview(snap_compare):
    assert snap_compare(wizard(), run_before=keys("s"), terminal_size=(80, 24))


@pytest.mark.parametrize("end", [False, True], ids=["top", "scrolled-to-the-end"])
def test_help(snap_compare, end):
    async def run_before(pilot):
        await keys("question_mark", *(["end"] if end else []))(pilot)
        await pilot.pause(0.6)  # the scroll animates
    assert snap_compare(wizard(), run_before=run_before, terminal_size=(80, 24))


# -- the Post-migration screen (a recorded verification; the working directory has no .env) ----------------------
def _post_migration(events: str, secret: str | None = None, press: tuple[str, ...] = ()):
    from tui.screens.post_migration import PostMigrationScreen

    app = wizard()

    async def run_before(pilot):
        await settle(pilot.app, pilot)
        for step in ("target", "migrate", "result"):
            pilot.app.journey.mark(step, "done")
        await pilot.app.push_screen(PostMigrationScreen(fixed_settings(), verify_factory=Replay.of(events)))
        await wait_until(pilot, lambda: pilot.app.screen.secret is not None and pilot.app.screen.verified,
                         "the verification and the .env")
        await settle(pilot.app, pilot)
        for key in press:
            await pilot.press(key)
            await settle(pilot.app, pilot)
    return app, run_before


@pytest.mark.parametrize("broken", [False, True], ids=["verified", "a-difference"])
def test_post_migration(snap_compare, broken, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app, run_before = _post_migration("verify-difference" if broken else "verify-verified")
    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))


def test_post_migration_scrolled_to_its_ticks(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app, run_before = _post_migration("verify-verified", press=("end",))

    async def scrolled(pilot):
        await run_before(pilot)
        await pilot.pause(0.6)
    assert snap_compare(app, run_before=scrolled, terminal_size=(80, 24))


def test_post_migration_replace_dialog(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("# shop\nCRON_SECRET=already-set-value\n")
    (tmp_path / ".env").chmod(0o600)
    app, run_before = _post_migration("verify-verified", press=("g",))
    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))


# -- the Rollback screen: waiting behind a session the role may not see, then failed (recorded) ------------------
def _rollback(finish: bool):
    from migration.events import PreviewReady
    from migration.options import RollbackOptions
    from tui.screens.rollback import RollbackScreen

    # The screen reads the recorded rollback's own preview (a view and a foreign key depend on the table).
    preview = next(e.preview for e in events("rollback-lock-timeout") if isinstance(e, PreviewReady))

    app = MigrateApp(settings=fixed_settings(), describe=describe("overview-absent"), deterministic=True,
                     audit_log=__import__("pathlib").Path("audit.log"))
    # Not finishing: the replay stays where the real DROP waited for its lock, until cancelled.
    factory = Replay.of("rollback-lock-timeout", stop_before=None if finish else "LockTimedOut")
    replays = []

    def recorded(*args):
        replays.append(factory(*args))
        return replays[-1]

    async def run_before(pilot):
        await settle(pilot.app, pilot)
        screen = RollbackScreen(fixed_settings(), reader=lambda s: preview, options=RollbackOptions(),
                                rollback_factory=recorded)
        await pilot.app.push_screen(screen)
        await settle(pilot.app, pilot)
        await pilot.press("d")
        await pilot.pause()
        await pilot.press(*"database_backups", "enter")
        if finish:
            await wait_until(pilot, lambda: screen.result is not None and screen.preview_after_result,
                             "the failed rollback and a fresh preview")
        else:
            await wait_until(pilot, lambda: "ops-psql" in str(screen.query_one("#rollback-progress").content),
                             "the waiting DROP")
        await settle(pilot.app, pilot)
        await pilot.pause(0.6)  # the scroll to the end animates
    return app, run_before, replays


@pytest.mark.parametrize("finish", [False, True], ids=["waiting-for-the-lock", "failed"])
def test_rollback_waiting_then_failed(snap_compare, finish, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app, run_before, replays = _rollback(finish)
    try:
        assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
    finally:
        for replay in replays:
            replay.cancel()


def test_configuration_error(snap_compare):
    app = MigrateApp(wizard_source(env_file="/nonexistent/dir/.env"), deterministic=True)
    assert snap_compare(app, run_before=keys(), terminal_size=(80, 24))


class _Crash:
    def __init__(self, settings, emit):
        pass

    def run(self):
        raise RuntimeError("simulated crash in the engine")

    def cancel(self):
        pass


def test_error_dialog(snap_compare):
    app = MigrateApp(settings=fixed_settings(), describe=describe("overview-absent"), migration_factory=_Crash,
                     deterministic=True)
    assert snap_compare(app, run_before=keys("m"), terminal_size=(80, 24))


def test_no_snapshot_shows_the_password(canary):
    """The snapshot apps' DATABASE_URL carries the canary password, and the recorded events were recorded with it:
    no picture (of any snapshot test) may contain it."""
    from pathlib import Path

    from harness import CANARY
    from urllib.parse import quote

    assert fixed_settings().password == CANARY == canary
    pictures = sorted((Path(__file__).parent / "__snapshots__").glob("*/*.svg"))
    assert len(pictures) >= 30
    for picture in pictures:
        text = picture.read_text()
        assert canary not in text and quote(canary) not in text, picture.name
        if picture.name.startswith("test_target"):
            assert "shop_app:****@db.internal.example:5432/shop" in text.replace("&#160;", " "), picture.name
