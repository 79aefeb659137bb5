"""The migrate-tui wizard: a Textual app over the UI-free engine in :mod:`migration`.

Flow: Target (default screen) → [Checklist → Backup when ``preflight``, the real
app] → Migrate → Result, each pushed; SQL preview, Rollback, Audit log and Help
are pushed from Target or Result; ``back_to_target`` pops back to Target and
reads the server again. A configuration problem shows ConfigErrorScreen.
Start-up: the first frame never waits for the database or imports the engine —
the settings (or the demo database) arrive from ``resolve_settings`` after it.

How to plug in a new screen (checklist, backup, rollback, audit log, ...)
--------------------------------------------------------------------------
1. Write ``tui/screens/<name>.py`` with a ``WizardScreen`` subclass (styles in
   ``tui/screens/<name>.tcss`` via ``CSS_PATH``). Take what it needs in its
   constructor (usually ``self.app.settings``); import engine modules inside
   functions so start-up stays fast.
2. Add an action: a ``WizardAction("backup", "Backup", "b", "help text")`` in
   :mod:`tui.actions`, appended to ``TARGET_ACTIONS`` (a button + key on the
   Target screen) and/or ``PALETTE_ACTIONS`` (command palette, Ctrl+P), and an
   ``action_backup`` method on :class:`MigrateApp` that pushes the screen::

       def action_backup(self) -> None:
           from .screens.backup import BackupScreen
           self.push_screen(BackupScreen(self.settings))

   Gate it in :meth:`MigrateApp.check_action` if it needs settings (it gets
   disabled until they are known) — the default gate already covers every
   action named in ``NEEDS_SETTINGS``.
3. Engine work (database, pg_dump) runs in a thread worker on the screen::

       @work(thread=True, exit_on_error=False, group="backup", exclusive=True)
       def _run(self) -> None:
           result = engine_call(self.app.settings, emit=lambda e: self.post_message(EngineEvent(e)))
           self.post_message(BackupDone(result))      # post_message is thread-safe

   Expected failures are engine results (an OperatorError inside), shown on
   the screen. Subclass :class:`tui.screens.base.WizardScreen`: an unexpected
   exception in one of its workers then reaches
   :meth:`MigrateApp.report_worker_error`, which shows an ErrorDialog with a
   message and a fix hint (``Worker.StateChanged`` does not bubble); override
   ``worker_failed(worker)`` if the screen must leave a "running" state.
   Typed messages live in :mod:`tui.messages`. Confirmations:
   ``push_screen(ConfirmDialog(title, message), callback)``. Cancellation: an
   engine ``cancel()`` called from a thread worker (it may block on
   ``cancel_safe``), never on the UI thread.
4. Finish by ``self.app.run_action("back_to_target")`` (it pops in the app's own loop) or a Back binding
   (``Binding("escape", "app.pop_screen", "Back")``).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import TYPE_CHECKING, Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from .actions import PALETTE_ACTIONS
from .messages import OperationEnded, SettingsFailed, SettingsReady
from .screens.base import WizardScreen
from .screens.target import TargetScreen
from .target_source import SettingsSource, fixed

if TYPE_CHECKING:
    from pathlib import Path

    from migration.errors import OperatorError
    from migration.events import RunFinished
    from migration.options import OperatorOptions
    from migration.overview import TargetOverview
    from migration.settings import Settings

NEEDS_SETTINGS = {"migrate", "show_sql", "refresh", "rollback"}
DARK, LIGHT = "textual-dark", "textual-light"


class MigrateApp(App):
    # The default screen's CSS_PATH is not loaded by Textual (only pushed screens' are): list it here.
    CSS_PATH = ["app.tcss", "screens/target.tcss"]
    TITLE = "migrate-tui"
    SUB_TITLE = "Add database_backups table"
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, source: SettingsSource | None = None, *, settings: "Settings | None" = None,
                 describe: Callable[["Settings"], "TargetOverview"] | None = None,
                 migration_factory: Callable | None = None, deterministic: bool = False,
                 handle_signals: bool = False, theme: str = DARK, audit_log: "Path | None" = None,
                 preflight: bool = False, options: "OperatorOptions | None" = None) -> None:
        """``source`` gives the settings (DATABASE_URL or the demo database); tests pass ``settings``.

        ``describe`` and ``migration_factory`` default to the engine's
        describe_target and Migration; ``deterministic`` hides clocks and timings
        (snapshots and screenshots).
        """
        super().__init__()
        if source is None:
            source = fixed(settings) if settings is not None else SettingsSource()
        self.source = source
        self.settings: Settings | None = None
        self.config_error: OperatorError | None = None
        self.last_result: RunFinished | None = None
        self.deterministic = deterministic
        self._audit_log = audit_log  # None: $MIGRATE_AUDIT_LOG or ./migrate-tui.log
        self._describe = describe
        self._migration_factory = migration_factory
        self._handle_signals = handle_signals
        self.theme = theme
        self.preflight = preflight  # Migrate goes Checklist -> Backup -> Migrate (the real app; tests opt in)
        self._options = options
        from .journey import STEPS, Journey

        self.journey = Journey(STEPS if preflight else tuple(s for s in STEPS if s not in ("checklist", "backup")))
        self.running_operations: list = []  # engine operations whose workers have not ended
        self._leaving: int | None = None  # set once quitting: -1 (exit code from the outcome) or the code

    # -- engine entry points (injectable) ---------------------------------------
    def describe(self, settings: "Settings") -> "TargetOverview":
        if self._describe is not None:
            return self._describe(settings)
        from migration.overview import describe_target

        return describe_target(settings)

    @property
    def options(self) -> "OperatorOptions":
        """The operator's options for every operation (the command line's; defaults otherwise)."""
        if self._options is None:
            from migration.options import OperatorOptions

            self._options = OperatorOptions()
        return self._options

    @property
    def audit_log_path(self) -> "Path":
        from migration.audit import default_path

        return self._audit_log or default_path()

    def audit_tap(self, settings: "Settings", operation: str, emit):
        """``emit`` that also records each event in the audit log; None (an error dialog says why) when the
        log cannot be written: as for every headless command, nothing starts unrecorded."""
        from migration.audit import AuditLog
        from migration.errors import MigrateError, explain

        try:
            return AuditLog(self.audit_log_path).tap(settings, operation, emit)
        except MigrateError as exc:
            from .dialogs.error import ErrorDialog

            self.push_screen(ErrorDialog("Nothing was started", exc.error))
            return None
        except Exception as exc:  # noqa: BLE001 - shown with a fix, never a traceback
            from .dialogs.error import ErrorDialog

            self.push_screen(ErrorDialog("Nothing was started", explain(exc)))
            return None

    def migration_factory(self, settings: "Settings", emit):
        if self._migration_factory is not None:
            return self._migration_factory(settings, emit)
        from migration.runner import Migration

        return Migration(settings, emit)

    # -- engine operations: one registry, cancelled off the UI thread -----------------------------
    def operation_started(self, operation) -> None:
        self.running_operations.append(operation)

    def cancel_operation(self, operation) -> None:
        """``operation.cancel()`` in a thread of its own: it may wait for the server (cancel_safe)."""
        threading.Thread(target=operation.cancel, name="migrate-tui-cancel", daemon=True).start()

    def on_operation_ended(self, message: OperationEnded) -> None:
        operation = message.operation
        if operation in self.running_operations:
            self.running_operations.remove(operation)
        if message.result is not None:
            self.record_result(message.result)
        for screen in self.screen_stack:
            if isinstance(screen, WizardScreen):
                screen.operation_ended(operation)
        if self._leaving is not None and not self.running_operations:
            self.exit(return_code=self._leaving if self._leaving >= 0 else self.exit_code)

    def leave(self, code: int | None = None) -> None:
        """Quit: every running operation is cancelled first (it rolls back, deletes its partial files) and the
        wizard exits once they have all ended. ``code``: the exit code (default: from the last outcome)."""
        if not self.running_operations:
            self.exit(return_code=self.exit_code if code is None else code)
            return
        self._leaving = -1 if code is None else code
        for operation in list(self.running_operations):
            self.cancel_operation(operation)

    # -- start-up -------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        self.target_screen = TargetScreen()
        return self.target_screen

    def on_mount(self) -> None:
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                try:
                    loop.add_signal_handler(sig, self._terminate)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass

    def on_ready(self) -> None:
        """After the first frame is on the screen: read the settings (the worker imports psycopg)."""
        self.resolve_settings()

    @work(thread=True, exit_on_error=False, group="settings", exclusive=True)
    def resolve_settings(self) -> None:
        """Read the configuration (or start the demo database) without holding up the first frame."""
        from migration.errors import MigrateError, explain

        from migration.children import remove_stale_passfiles

        for path in remove_stale_passfiles():
            self.call_from_thread(self.notify, f"Removed a password file left by a killed run: {path}", timeout=10)
        try:
            settings = self.source()
        except MigrateError as exc:
            self.post_message(SettingsFailed(exc.error))
            return
        except Exception as exc:  # noqa: BLE001 - shown as a configuration screen, never a traceback
            self.post_message(SettingsFailed(explain(exc)))
            return
        self.post_message(SettingsReady(settings))

    def on_settings_ready(self, message: SettingsReady) -> None:
        self.settings = message.settings
        self.target_screen.load_overview()

    def on_settings_failed(self, message: SettingsFailed) -> None:
        from .screens.config_error import ConfigErrorScreen

        self.config_error = message.error
        self.target_screen.settings_failed()
        self.push_screen(ConfigErrorScreen(message.error))

    def action_retry_settings(self) -> None:
        """From the configuration screen, after the operator fixed .env or the environment."""
        from .screens.config_error import ConfigErrorScreen

        if not isinstance(self.screen, ConfigErrorScreen):
            return
        self.config_error = None
        self.call_later(self._retry_settings)

    async def _retry_settings(self) -> None:
        await self._pop_to_target()
        self.target_screen.show_pending()
        self.resolve_settings()

    # -- navigation -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in NEEDS_SETTINGS:
            if self.settings is None or self.migration_running:
                return None  # shown, but disabled
        return True

    @property
    def migration_running(self) -> bool:
        """An engine operation runs (the wizard's navigation waits for it)."""
        return bool(self.running_operations)

    def action_migrate(self) -> None:
        if self.check_action("migrate", ()) is not True:
            return
        self.call_later(self._migrate)

    async def _migrate(self) -> None:
        from .screens.migrate import MigrateScreen

        await self._pop_to_target()
        self.journey.mark("target", "done")
        if self.preflight:
            from .screens.checklist import ChecklistScreen

            await self.push_screen(ChecklistScreen(self.settings))
            return
        await self.push_screen(MigrateScreen(self.settings))

    async def action_rollback(self) -> None:
        if self.check_action("rollback", ()) is not True:
            return
        from .screens.rollback import RollbackScreen

        self.push_screen(RollbackScreen(self.settings, audit_log=self.audit_log_path))

    def action_audit_log(self) -> None:
        from .screens.audit_log import AuditLogScreen

        self.push_screen(AuditLogScreen(self.audit_log_path))

    def action_show_sql(self) -> None:
        if self.check_action("show_sql", ()) is not True:
            return
        from .screens.sql import SqlScreen

        self.push_screen(SqlScreen(self.settings))

    def action_refresh(self) -> None:
        if self.check_action("refresh", ()) is True and self.screen is self.target_screen:
            self.target_screen.load_overview()

    def show_result(self, result: "RunFinished", failed_step: str | None = None) -> None:
        from .screens.result import ResultScreen

        self.push_screen(ResultScreen(result, failed_step))

    def action_back_to_target(self) -> None:
        if self.migration_running:
            return
        self.call_later(self._back_to_target)

    async def _back_to_target(self) -> None:
        await self._pop_to_target()
        self.target_screen.load_overview()

    async def _pop_to_target(self) -> None:
        """Pop every screen above Target. Only ever awaited in the app's own message loop (``call_later``):
        an action runs in the task of whatever started it, and a button on a screen being popped would
        wait for its own removal — the wizard froze that way after a failed rollback."""
        while len(self.screen_stack) > 1 and self.screen is not self.target_screen:
            await self.pop_screen()

    def action_help(self) -> None:
        from .dialogs.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        keys: list[tuple[str, str]] = []
        for key, active in self.active_bindings.items():
            b = active.binding
            if b.description and b.show and active.enabled and b.action not in ("help", "app.help"):
                keys.append((self.get_key_display(b), b.tooltip or b.description))
        self.push_screen(HelpScreen(keys, (self.screen.sub_title or "current").lower()))

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.current_theme.dark else DARK

    # Textual's own palette entries that the wizard has its own of: Help (not "Keys"), Toggle theme (not "Theme").
    REPLACED_COMMANDS = {"Keys", "Theme"}

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for action in PALETTE_ACTIONS:
            if self.check_action(action.name, ()) is True:
                yield SystemCommand(action.label, action.help, lambda a=action.name: self.run_action(a))
        if screen is not self.target_screen and not self.migration_running:
            yield SystemCommand("Back to target", "Return to the Target screen and read the server again",
                                lambda: self.run_action("back_to_target"))
        yield SystemCommand("Help", "Show the keys and what the wizard does", self.action_help)
        yield SystemCommand("Toggle theme", "Switch between the dark and the light theme", self.action_toggle_theme)
        for command in super().get_system_commands(screen):
            if command.title not in self.REPLACED_COMMANDS:
                yield command

    # -- results, errors and leaving --------------------------------------------------
    def record_result(self, result) -> None:
        """The last Finished of any operation decides the wizard's exit code."""
        self.last_result = result

    @property
    def exit_code(self) -> int:
        from migration import exit_codes

        if self.config_error is not None:
            return exit_codes.CONFIG
        if self.last_result is not None:
            return exit_codes.for_outcome(self.last_result.outcome)
        return exit_codes.OK

    def exit_with_result(self) -> None:
        self.leave()

    def action_quit(self) -> None:
        """q / Ctrl+Q: asks first while an operation runs (it is cancelled and rolls back), then leaves."""
        if self._leaving is not None:
            return
        if not self.running_operations:
            self.exit(return_code=self.exit_code)
            return
        from .dialogs.confirm import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if yes:
                self.leave()

        self.push_screen(ConfirmDialog(
            "Quit while it runs?", "What runs now is cancelled first: the running statement is stopped, the "
            "transaction rolled back, a partial file deleted. The wizard closes afterwards.",
            yes="Yes, cancel and quit", no="No, keep going"), answered)

    def _terminate(self) -> None:
        """SIGTERM / SIGHUP, in any state: like Ctrl+C in a headless command — cancel what runs (everything
        rolls back), then exit 130; the demo database is stopped by run_app on the way out."""
        self.leave(130)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers; screens forward theirs (WizardScreen) to report_worker_error."""
        if event.state is WorkerState.ERROR:
            self.report_worker_error(event.worker)

    def secrets(self) -> list[str]:
        """What no error text may show (the target's password)."""
        return self.settings.secrets() if self.settings else []

    def report_worker_error(self, worker: Worker) -> None:
        """An unexpected exception in a worker: an error dialog with a message and a fix hint."""
        from migration.errors import explain

        from .dialogs.error import ErrorDialog

        error = explain(worker.error, secrets=self.secrets())
        self.push_screen(ErrorDialog(
            "Something went wrong in the background", error,
            "The database is as the engine leaves it after any failure: uncommitted work is rolled back."))


class FleetApp(MigrateApp):
    """The wizard on a fleet (``--fleet FILE``, ``--demo-fleet``): the Fleet screen instead of one target. The
    fleet comes from its source in a worker, after the first frame (the demo fleet starts a server)."""

    SUB_TITLE = "Fleet"

    def __init__(self, source, *, concurrency: int | None = None, **kwargs) -> None:
        super().__init__(source, **kwargs)
        self.fleet = None
        self.concurrency = concurrency

    def get_default_screen(self) -> Screen:
        from .screens.fleet import FleetScreen

        self.target_screen = None  # type: ignore[assignment]
        self.fleet_screen = FleetScreen(self.concurrency)
        return self.fleet_screen

    def on_ready(self) -> None:
        self.resolve_settings()

    @work(thread=True, exit_on_error=False, group="settings", exclusive=True)
    def resolve_settings(self) -> None:
        from migration.children import remove_stale_passfiles
        from migration.errors import MigrateError, explain

        from .screens.fleet import FleetReady

        for path in remove_stale_passfiles():
            self.call_from_thread(self.notify, f"Removed a password file left by a killed run: {path}", timeout=10)
        try:
            fleet = self.source()
        except MigrateError as exc:
            self.post_message(SettingsFailed(exc.error))
            return
        except Exception as exc:  # noqa: BLE001 - shown as a configuration screen, never a traceback
            self.post_message(SettingsFailed(explain(exc)))
            return
        self.post_message(FleetReady(fleet))

    def on_fleet_ready(self, message) -> None:
        self.fleet = message.fleet
        self.fleet_screen.fleet_ready(message.fleet)

    def on_settings_failed(self, message: SettingsFailed) -> None:
        from .screens.config_error import ConfigErrorScreen

        self.config_error = message.error
        self.push_screen(ConfigErrorScreen(message.error))

    def action_retry_settings(self) -> None:
        from .screens.config_error import ConfigErrorScreen

        if isinstance(self.screen, ConfigErrorScreen):
            self.config_error = None
            self.pop_screen()
            self.resolve_settings()

    def action_back_to_target(self) -> None:
        """No single target here."""

    def secrets(self) -> list[str]:
        return self.fleet.secrets() if self.fleet is not None else []

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Back to target":
                yield command


def wizard_app(source: SettingsSource, options: "OperatorOptions | None" = None,
               audit_log: "Path | str | None" = None, **kwargs) -> MigrateApp:
    """The wizard as ``migrate-tui [--demo] [options]`` builds it (tests build it the same way); the Fleet screen
    for a fleet source (``--fleet FILE``, ``--demo-fleet``: :mod:`tui.fleet_source`)."""
    from pathlib import Path

    if getattr(source, "fleet", False):
        return FleetApp(source, options=options, audit_log=Path(audit_log) if audit_log else None, **kwargs)
    return MigrateApp(source, preflight=True, options=options, audit_log=Path(audit_log) if audit_log else None,
                      **kwargs)


def run_app(source: SettingsSource, options: "OperatorOptions | None" = None,
            audit_log: "Path | str | None" = None) -> int:
    """The wizard for ``migrate-tui [--demo] [options]``: returns an exit code from migration.exit_codes."""
    app = wizard_app(source, options, audit_log, handle_signals=True)
    try:
        app.run()
    except KeyboardInterrupt:
        return 130  # migration.exit_codes.CANCELLED (not imported before the first frame)
    finally:
        wind_down(app.running_operations)  # whatever way the app ended: nothing is left half done
        source.close()  # the demo database goes away on exit, Ctrl+C, SIGTERM and crashes alike
    code = app.return_code
    return 1 if code is None else code  # exit_codes.FAILURE when the app died without one


def wind_down(operations, timeout_s: float = 60) -> None:
    """Cancel operations still running when the app has ended, and wait for each to report."""
    for operation in list(operations):
        operation.cancel()
    for operation in list(operations):
        done = getattr(operation, "done", None)
        if done is not None:
            done.wait(timeout_s)
