"""Migrate: the guide's eight steps as live panels, a timestamped log, and cancellation.

The engine (migration.runner.Migration) runs through :meth:`WizardScreen.run_operation`; every
event it emits arrives here as an :class:`tui.messages.EngineEvent`. Escape / Ctrl+C while it runs
asks for confirmation, then the cancel stops the running statement and everything is rolled back.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Footer, RichLog, Static
from textual.worker import Worker

from ..messages import EngineEvent, LockWaits
from ..widgets.prose import Prose, RichLine
from ..widgets.step_panel import StepPanel
from ..widgets.top_bar import TopBar
from .base import WizardScreen
from ..dialogs.confirm import ConfirmDialog

if TYPE_CHECKING:
    from migration.events import RunFinished
    from migration.settings import Settings

LOCK_POLL_S = 1.0  # a step running longer than this is checked for lock waits, every second


OUTCOME_BANNER = {
    "success": ("🎉 Migration completed successfully!", "-success"),
    "not_needed": ("✅ Migration not needed - table already exists and is valid", "-success"),
    "failed": ("❌ Migration failed", "-error"),
    "busy": ("❌ Migration failed - another migration is running", "-error"),
    "cancelled": ("⏹  Cancelled", "-warning"),
}


class MigrateScreen(WizardScreen):
    CSS_PATH = "migrate.tcss"
    BINDINGS = [
        Binding("escape", "cancel_run", "Cancel"),  # while running; the next one once it is over
        Binding("escape", "back", "Back"),
        Binding("ctrl+c", "cancel_run", "Cancel", show=False, priority=True),
        Binding("enter", "show_result", "Result", key_display="Enter", priority=True),
        Binding("q", "app.quit", "Quit"),
    ]
    step = "migrate"
    BODY = "#steps"

    def __init__(self, settings: "Settings") -> None:
        super().__init__(id="migrate")
        self.settings = settings
        self.result: RunFinished | None = None
        self.cancelling = False
        self.crashed = False
        self._failed_panel: StepPanel | None = None

    @property
    def running(self) -> bool:
        return self.result is None and not self.crashed

    def compose(self) -> ComposeResult:
        from migration.events import Step

        det = self.app.deterministic
        yield TopBar()
        with VerticalScroll(id="steps"):
            for step in Step:
                yield StepPanel(step.value, step.title, step.description, deterministic=det, id=f"step-{step.value}")
        yield Prose("", id="banner", markup=False)
        with Horizontal(id="migrate-actions"):
            yield Button("See the result (Enter)", id="see-result", variant="primary", action="screen.show_result", compact=True)
            yield Button("Cancel (Esc)", id="cancel", variant="error", action="screen.cancel_run", compact=True)
        yield RichLog(id="log", wrap=True, markup=False, highlight=False, min_width=40, auto_scroll=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self.refresh_bindings)  # the footer from the first frame on
        self.sub_title = "Migrate"
        self.query_one("#see-result").display = False
        started = self.run_operation(lambda emit: self.app.migration_factory(self.settings, emit), self.settings,
                                     audit="migrate")
        if started is None:  # the audit log cannot be written: nothing started
            self.crashed = True
            self._banner("Nothing was started: the audit log cannot be written (see the error).", "-error")
            self.query_one("#cancel").display = False
            return
        if not self.app.deterministic:
            self.set_interval(LOCK_POLL_S, self._poll_locks)

    def worker_failed(self, worker: Worker) -> None:
        if worker.group == "operation" and self.result is None:
            # The app shows the error dialog; this screen stops waiting for events that will not come.
            self.crashed = True
            self._log("✗ The migration worker stopped unexpectedly; see the error dialog.")
            self._banner("❌ Migration stopped unexpectedly - any open transaction was rolled back by the server",
                         "-error")
            self.query_one("#cancel").display = False
            self.refresh_bindings()

    # -- a step that waits: who holds the lock ---------------------------------------
    def _poll_locks(self) -> None:
        panel = next((p for p in self.query(StepPanel).results(StepPanel) if p.state == "running"), None)
        if panel is not None and self.running and panel.running_for >= LOCK_POLL_S:
            self._check_locks(panel.number)

    @work(thread=True, exit_on_error=False, group="locks", exclusive=True)
    def _check_locks(self, number: int) -> None:
        from migration.overview import lock_waits

        self.post_message(LockWaits(number, lock_waits(self.settings)))

    def on_lock_waits(self, message: LockWaits) -> None:
        panel = self.query_one(f"#step-{message.step}", StepPanel)
        lines: tuple[str, ...] = ()
        if message.blockers:
            lines = ("Waiting for a lock held by:",
                     *(f"  {b.describe()}" for b in message.blockers),
                     f"It goes on when they finish, or gives up after lock_timeout "
                     f"({self.settings.lock_timeout_ms} ms); Esc cancels.")
        if lines != panel.waiting:
            panel.set_waiting(lines)
            self.call_after_refresh(panel.scroll_visible, animate=False)

    # -- engine events ------------------------------------------------------------
    def on_engine_event(self, message: EngineEvent) -> None:
        from migration import events as ev

        event, at = message.event, message.at
        stamp = at.strftime("%H:%M:%S.%f")[:-3] if at else "--:--:--.---"
        if isinstance(event, ev.RunStarted):
            self._log(f"🚀 Starting safe migration: Add {event.table} table", stamp)
            self._log(f"Database: {event.masked_url}   Schema: {event.schema}", stamp)
        elif isinstance(event, ev.StepStarted):
            panel = self._panel(event.step)
            panel.start()
            self.call_after_refresh(panel.scroll_visible, animate=False)
            self._log(f"… Step {event.step.value}/8 {event.step.title}", stamp)
        elif isinstance(event, ev.StepFinished):
            self._panel(event.step).finish(event.message, event.details, event.elapsed_ms, event.warning)
            mark = "⚠️ " if event.warning else "✓"
            took = "" if self.app.deterministic else f" ({event.elapsed_ms:.1f} ms)"
            self._log(f"{mark} {event.message}{took}", stamp)
            for detail in event.details:
                self._log(f"    {detail}", stamp)
        elif isinstance(event, ev.StepSkipped):
            self._panel(event.step).skip(event.reason)
            self._log(f"- Step {event.step.value}/8 {event.step.title} skipped: {event.reason}", stamp)
        elif isinstance(event, ev.StepFailed):
            panel = self._panel(event.step)
            panel.fail(event.error, event.elapsed_ms, cancelled=self.cancelling)
            self._failed_panel = panel
            self._log(f"✗ Step {event.step.value}/8 {event.step.title} failed", stamp)
            for text in event.error.lines():
                self._log(text, stamp)
        elif isinstance(event, ev.Notice):
            self._log(f"Notice: {event.message}", stamp)
        elif isinstance(event, ev.RunFinished):
            self._finished(event, stamp)

    def _finished(self, result: "RunFinished", stamp: str) -> None:
        self.result = result
        self.app.journey.result = result
        self.mark_step("done" if result.outcome.ok else "failed")
        title, kind = OUTCOME_BANNER[result.outcome.value]
        text = title
        if result.outcome.value in ("failed", "busy", "cancelled"):
            text += f" - {result.message}"
        self._banner(text, kind)
        self._log(text, stamp)
        self.query_one("#cancel").display = False
        see = self.query_one("#see-result", Button)
        see.display = True
        see.focus()
        self.refresh_bindings()
        failed = self._failed_panel
        if failed is not None:  # after the later panels turned 'skipped' and the layout settled
            self.call_after_refresh(failed.scroll_visible, animate=False, top=True)
        else:  # the last steps and their messages in view
            self.call_after_refresh(self.query_one("#steps", VerticalScroll).scroll_end, animate=False)

    # -- actions --------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show_result":
            return self.result is not None and self.enter_is_free("see-result")
        if action == "cancel_run":
            return self.running and not self.cancelling
        if action == "back":
            return not self.running
        return super().check_action(action, parameters)

    async def action_back(self) -> None:
        await self.app.run_action("back_to_target")

    def action_cancel_run(self) -> None:
        if not self.running or self.cancelling:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel_now()

        self.app.push_screen(ConfirmDialog(
            "Cancel the migration?",
            "The running statement is stopped and the transaction is rolled back: nothing of this run is kept.",
            yes="Yes, cancel", no="No, keep going"), answered)

    def cancel_now(self) -> None:
        if not self.running or self.cancelling:
            return
        self.cancelling = True
        self._banner("⏹  Cancelling: stopping the running statement and rolling back…", "-warning")
        self._log("Cancel requested: stopping the running statement and rolling back…")
        self.refresh_bindings()
        self.cancel_operation()  # off the UI thread

    def action_show_result(self) -> None:
        if self.result is not None:
            failed = self._failed_panel
            step = f"Step {failed.number}/8 {failed.title}" if failed is not None else None
            self.app.show_result(self.result, step)

    # -- helpers ------------------------------------------------------------------
    def _panel(self, step) -> StepPanel:
        return self.query_one(f"#step-{step.value}", StepPanel)

    def _log(self, text: str, stamp: str | None = None) -> None:
        if stamp is None:
            stamp = "--:--:--.---" if self.app.deterministic else datetime.now().strftime("%H:%M:%S.%f")[:-3]
        self.query_one("#log", RichLog).write(RichLine(Text.assemble((stamp, "dim"), "  ", text), hang=len(stamp) + 2))

    def _banner(self, text: str, kind: str) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(Content(text))
        banner.set_classes(kind)
        banner.add_class("-shown")
