"""Snapshot tests (pytest-textual-snapshot) of every screen, with deterministic content.

The apps here replay fixed events (tests/tui/fakes.py) over a fixed target, with
``deterministic=True`` (no clocks, timings or spinner frames), so the pictures
only change when the UI does. Update after an intended change with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the SVGs.
The last test proves the replayed events are what the engine really emits.
"""

from __future__ import annotations

import re

import pytest
from conftest import settle, wait_until, wizard_source
from fakes import (
    ABSENT,
    CLASH,
    INVALID,
    Replay,
    clash_events,
    describe_with,
    fixed_settings,
    invalid_events,
    not_needed_events,
    running_events,
    success_events,
)

from migration.errors import OperatorError
from migration.events import RunFinished, RunStarted, StepFailed, StepFinished, StepSkipped, StepStarted
from migration.runner import Migration
from tui.app import MigrateApp

UNREACHABLE = OperatorError(
    "Connection to server failed at db.internal.example (10.0.0.5), port 5432: connection refused.",
    "Is the server running on that host and accepting TCP/IP connections? Verify DATABASE_URL is correct, check "
    "network connectivity, and ensure the database server is running.")
SIZES = pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])


def wizard(report=ABSENT, events=success_events, error=None, **kwargs) -> MigrateApp:
    return MigrateApp(settings=fixed_settings(), describe=describe_with(report, error),
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
    assert snap_compare(wizard(INVALID), run_before=keys(), terminal_size=(80, 24))


def test_target_index_name_clash(snap_compare):
    assert snap_compare(wizard(CLASH), run_before=keys(), terminal_size=(80, 24))


def test_target_at_200x50(snap_compare):
    assert snap_compare(wizard(), run_before=keys(), terminal_size=(200, 50))


def test_target_unreachable(snap_compare):
    assert snap_compare(wizard(error=UNREACHABLE), run_before=keys(), terminal_size=(80, 24))


def test_target_light_theme(snap_compare):
    assert snap_compare(wizard(), run_before=keys("ctrl+t"), terminal_size=(80, 24))


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_migrate_success(snap_compare, size):
    assert snap_compare(wizard(), run_before=keys("m"), terminal_size=size)


def test_migrate_index_clash_failed(snap_compare):
    assert snap_compare(wizard(CLASH, clash_events), run_before=keys("m"), terminal_size=(80, 24))


def _running(confirm: bool):
    replays = []

    def factory(settings, emit):
        replays.append(Replay(settings, emit, running_events))
        return replays[-1]

    app = MigrateApp(settings=fixed_settings(), describe=describe_with(), migration_factory=factory,
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
    assert snap_compare(wizard(events=not_needed_events), run_before=keys("m", "enter"), terminal_size=(80, 24))


def test_result_failed_missing_column(snap_compare):
    assert snap_compare(wizard(INVALID, invalid_events), run_before=keys("m", "enter"), terminal_size=(80, 24))


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


# -- the Post-migration screen (replayed verification; the working directory has no .env) -----------------------
def _post_migration(events, secret: str | None = None, press: tuple[str, ...] = ()):
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
    from fakes import broken_verify_events, verify_events

    monkeypatch.chdir(tmp_path)
    app, run_before = _post_migration(broken_verify_events if broken else verify_events)
    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))


def test_post_migration_scrolled_to_its_ticks(snap_compare, tmp_path, monkeypatch):
    from fakes import verify_events

    monkeypatch.chdir(tmp_path)
    app, run_before = _post_migration(verify_events, press=("end",))

    async def scrolled(pilot):
        await run_before(pilot)
        await pilot.pause(0.6)
    assert snap_compare(app, run_before=scrolled, terminal_size=(80, 24))


def test_post_migration_replace_dialog(snap_compare, tmp_path, monkeypatch):
    from fakes import verify_events

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("# shop\nCRON_SECRET=already-set-value\n")
    (tmp_path / ".env").chmod(0o600)
    app, run_before = _post_migration(verify_events, press=("g",))
    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))


# -- the Rollback screen: waiting behind a session the role may not see, then failed -----------------------------
def _rollback(finish: bool):
    from fakes import ReplayedRollback, rollback_failed_events

    from migration.options import RollbackOptions
    from tui.screens.rollback import RollbackScreen
    from test_rollback_wizard import PREVIEW

    app = MigrateApp(settings=fixed_settings(), describe=describe_with(), deterministic=True,
                     audit_log=__import__("pathlib").Path("audit.log"))
    factory = ReplayedRollback.of(rollback_failed_events, finish=finish)
    replays = []

    def recorded(*args):
        replays.append(factory(*args))
        return replays[-1]

    async def run_before(pilot):
        await settle(pilot.app, pilot)
        screen = RollbackScreen(fixed_settings(), reader=lambda s: PREVIEW, options=RollbackOptions(),
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
    app = MigrateApp(settings=fixed_settings(), describe=describe_with(), migration_factory=_Crash,
                     deterministic=True)
    assert snap_compare(app, run_before=keys("m"), terminal_size=(80, 24))


# -- the replayed events are the engine's ------------------------------------------------------
def normalize(events) -> list[tuple]:
    out = []
    for e in events:
        if isinstance(e, RunStarted):
            out.append(("started", e.schema, e.table))
        elif isinstance(e, StepStarted):
            out.append(("step", e.step))
        elif isinstance(e, StepFinished):
            details = tuple(re.sub(r"\d", "9", d) for d in e.details)
            out.append(("finished", e.step, e.message, details, e.warning, e.quiet))
        elif isinstance(e, StepSkipped):
            out.append(("skipped", e.step, e.reason))
        elif isinstance(e, StepFailed):
            out.append(("failed", e.step, e.error.message, e.error.hint, e.error.sqlstate))
        elif isinstance(e, RunFinished):
            out.append(("run", e.outcome, e.rolled_back, e.message, e.report.state if e.report else None))
    return out


def real_run(settings) -> list:
    events: list = []
    Migration(settings, events.append).run()
    return events


def test_replayed_events_match_a_real_run(db18, settings_for):
    settings = settings_for(db18)
    masked = settings.masked_url
    assert normalize(real_run(settings)) == normalize(success_events(masked))
    assert normalize(real_run(settings)) == normalize(not_needed_events(masked))

    db18.execute("ALTER TABLE database_backups DROP COLUMN metadata")
    assert normalize(real_run(settings)) == normalize(invalid_events(masked))

    db18.execute("DROP TABLE database_backups")
    db18.execute("CREATE TABLE other_things (status TEXT)")
    db18.execute("CREATE INDEX idx_database_backups_status ON other_things(status)")
    assert normalize(real_run(settings)) == normalize(clash_events(masked))


def test_replayed_verification_matches_a_real_one(db18, settings_for):
    from fakes import verify_events

    from migration.verify import Verify

    settings = settings_for(db18)
    real_run(settings)
    events: list = []
    Verify(settings, events.append).run()

    def lines(evs):
        return [(line.section, line.name, line.actual, line.ok) for line in evs[-1].lines]
    assert lines(events) == lines(verify_events(settings.masked_url))


def test_no_snapshot_shows_the_password(canary):
    """The snapshot apps' DATABASE_URL carries the canary password: no picture may contain it."""
    from pathlib import Path

    from harness import CANARY
    from urllib.parse import quote

    assert fixed_settings().password == CANARY == canary
    pictures = sorted((Path(__file__).parent / "__snapshots__" / "test_snapshots").glob("*.svg"))
    assert len(pictures) >= 19
    for picture in pictures:
        text = picture.read_text()
        assert canary not in text and quote(canary) not in text, picture.name
        if picture.name.startswith("test_target"):
            assert "shop_app:****@db.internal.example:5432/shop" in text.replace("&#160;", " "), picture.name
