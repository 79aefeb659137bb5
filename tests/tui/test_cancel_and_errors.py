"""Cancelling a run that waits on a lock, configuration errors, a crashing worker."""

from __future__ import annotations


import pytest
from conftest import (assert_no_secret, flat, make_app, screen_text, settle, target_ready, wait_until, widget_text,
                      wizard_source)

from migration import exit_codes
from migration.events import Outcome, Step
from tui.app import MigrateApp
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.error import ErrorDialog
from tui.screens.config_error import ConfigErrorScreen
from tui.screens.migrate import MigrateScreen
from tui.screens.result import ResultScreen


def waiting_on_lock(db) -> bool:
    return bool(db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'migrate-tui' AND wait_event_type = 'Lock'"))


@pytest.mark.parametrize("key", ["escape", "ctrl+c", "ctrl+q"])
async def test_cancel_during_a_waiting_step_rolls_everything_back(db18, settings_for, size, key, canary):
    settings = settings_for(db18, lock_timeout_ms=120_000)
    holder = db18.admin()
    try:
        # A second session creates the same table and keeps its transaction open: our CREATE TABLE waits.
        holder.execute("BEGIN")
        holder.execute("CREATE TABLE public.database_backups (id int)")
        app = make_app(settings)
        async with app.run_test(size=size) as pilot:
            await target_ready(app, pilot)
            await pilot.press("m")
            await pilot.pause()
            migrate = app.screen
            assert isinstance(migrate, MigrateScreen)
            panel = migrate.query_one(f"#step-{Step.TABLE_CREATION.value}")
            await wait_until(pilot, lambda: panel.state == "running" and waiting_on_lock(db18),
                             "CREATE TABLE to wait on the other session's lock")
            assert migrate.running
            # The panel names the session in the way (polled once the step runs over a second).
            await wait_until(pilot, lambda: bool(panel.waiting), "the lock holder to be named")
            assert f"pid {holder.info.backend_pid} " in "\n".join(panel.waiting)
            await wait_until(pilot, lambda: "Waiting for a lock held by" in screen_text(app), "the panel to show it")

            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            # Escape and Ctrl+C cancel the migration; Ctrl+Q quits the wizard, cancelling what runs first.
            title = "Quit while it runs?" if key == "ctrl+q" else "Cancel the migration?"
            assert title in screen_text(app)
            assert "rolled back" in app.screen.message
            await pilot.press("y")
            await settle(app, pilot)

            if key == "ctrl+q":
                assert app.return_code == exit_codes.CANCELLED
            else:
                assert app.screen is migrate
                result = migrate.result
                assert result.outcome is Outcome.CANCELLED
                assert result.rolled_back
                assert panel.state == "cancelled" and panel.error.sqlstate == "57014"
                text = flat(screen_text(app))
                assert "All changes rolled back" in text
                await pilot.press("enter")
                await pilot.pause()
                assert isinstance(app.screen, ResultScreen)
                text = flat(screen_text(app))
                assert "Cancelled" in text and "All changes rolled back" in text
                assert_no_secret(app, canary)
                await pilot.press("q")
        assert app.return_code == exit_codes.CANCELLED
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not db18.table_exists()


async def test_answering_no_keeps_the_run_going(db18, settings_for):
    holder = db18.admin()
    try:
        holder.execute("BEGIN")
        holder.execute("CREATE TABLE public.database_backups (id int)")
        app = make_app(settings_for(db18, lock_timeout_ms=120_000))
        async with app.run_test(size=(100, 30)) as pilot:
            await target_ready(app, pilot)
            await pilot.press("m")
            await pilot.pause()
            migrate = app.screen
            await wait_until(pilot, lambda: waiting_on_lock(db18), "the lock wait")
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("n")
            await pilot.pause()
            assert app.screen is migrate and migrate.running and not migrate.cancelling
            # The other session gives up: our CREATE TABLE proceeds and the run succeeds.
            holder.execute("ROLLBACK")
            await settle(app, pilot)
            assert migrate.result.outcome is Outcome.SUCCESS
    finally:
        holder.close()
    assert db18.table_exists()


async def test_missing_env_file_shows_the_configuration_screen(size):
    app = MigrateApp(wizard_source(env_file="/nonexistent/dir/.env"))
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ConfigErrorScreen)
        text = flat(screen_text(app))
        assert "The env file /nonexistent/dir/.env does not exist." in text
        assert "Fix: Check the --env-file path" in text
        assert "Traceback" not in text
        assert app.check_action("migrate", ()) is not True
        await pilot.press("q")
    assert app.return_code == exit_codes.CONFIG


async def test_invalid_database_url_shows_the_configuration_screen(tmp_path, canary):
    env = tmp_path / ".env"
    env.write_text(f"DATABASE_URL=mysql://root:{canary}@db.example.com/shop\n")
    app = MigrateApp(wizard_source(env_file=str(env)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ConfigErrorScreen)
        text = flat(screen_text(app))
        assert "which is not PostgreSQL" in text and "postgresql://" in text
        assert_no_secret(app, canary)
        await pilot.press("escape")
    assert app.return_code == exit_codes.CONFIG


async def test_unreachable_server_is_explained_on_the_target_screen(settings_for, db18, canary):
    # A real server address with nothing listening on it.
    from migration.pgserver import free_port

    settings = settings_for(db18, database_url=f"postgresql://app_user:{canary}@127.0.0.1:{free_port()}/nowhere")
    app = make_app(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await target_ready(app, pilot)
        assert screen.overview.error is not None
        text = flat(screen_text(app))
        assert "Connection to server failed" in text
        assert "Fix:" in text
        assert_no_secret(app, canary)


class _CrashingMigration:
    """Fault injection: the engine object itself raises (a bug), which the worker reports."""

    def __init__(self, settings, emit):
        self.emit = emit

    def run(self):
        raise RuntimeError("simulated crash in the engine")

    def cancel(self):
        pass


async def test_a_crashing_worker_shows_an_error_dialog_not_a_dead_screen(db18, settings_for):
    app = make_app(settings_for(db18), migration_factory=_CrashingMigration)
    async with app.run_test(size=(100, 30)) as pilot:
        await target_ready(app, pilot)
        await pilot.press("m")
        await settle(app, pilot)
        assert isinstance(app.screen, ErrorDialog)
        assert "Something went wrong" in screen_text(app)
        text = widget_text(app.screen, ".dialog-body")
        assert "Unexpected error: RuntimeError: simulated crash in the engine" in text
        assert "Fix:" in text and "Traceback" not in text
        await pilot.press("enter")
        await pilot.pause()
        migrate = app.screen
        assert isinstance(migrate, MigrateScreen)
        assert not migrate.running
        assert "stopped unexpectedly" in flat(screen_text(app))
        await pilot.press("escape")
        await target_ready(app, pilot)
        assert app.screen is app.target_screen
    assert not db18.table_exists()


async def test_fixing_the_configuration_and_trying_again(tmp_path, db18, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    env = tmp_path / ".env"
    env.write_text("DATABASE_URL=\n")
    app = MigrateApp(wizard_source(env_file=str(env)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ConfigErrorScreen)
        assert "DATABASE_URL is not set." in flat(screen_text(app))
        env.write_text(f"DATABASE_URL={db18.url}\n")  # the operator fixes .env
        await pilot.press("r")
        screen = await target_ready(app, pilot)
        assert app.screen is screen and app.config_error is None
        assert screen.overview.error is None and screen.overview.state == "absent"
        await pilot.press("q")
    assert app.return_code == exit_codes.OK
