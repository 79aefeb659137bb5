"""The base class of the wizard's screens: the one way a screen runs an engine operation, and a crashed
worker becomes an error dialog, never a dead screen.

Every operation (checklist, backup, migration, rollback, restore) goes through
:meth:`WizardScreen.run_operation`: it is built around an ``emit`` that posts each engine event to
the screen as :class:`tui.messages.EngineEvent` (thread-safe) and records it in the audit log, run
in a thread worker, registered with the app (which cancels every running operation on quit,
SIGTERM and SIGHUP, and exits once they have wound down), cancelled off the UI thread
(:meth:`cancel_operation`), and cancelled when the screen goes away. Its Finished event is the
last EngineEvent; the worker's end is :class:`tui.messages.OperationEnded`.
``Worker.StateChanged`` does not bubble, so each screen reports its own crashed workers.

Every screen also shares: the top bar (:class:`tui.widgets.top_bar.TopBar`, the wizard's path on the
screens of its steps, ``step``), PageUp/PageDown/Home/End/Up/Down that scroll the screen's content
(its ``BODY``) wherever the focus is, and ``c`` that copies the focused (or first) command or path
(:class:`tui.widgets.copy_line.CopyLine`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

from textual import work
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from ..messages import EngineEvent, OperationEnded

if TYPE_CHECKING:
    from migration.operation import Operation
    from migration.settings import Settings


SCROLL_KEYS = {"pageup": "page_up", "pagedown": "page_down", "home": "scroll_home", "end": "scroll_end",
               "up": "scroll_up", "down": "scroll_down"}


class WizardScreen(Screen):
    BINDINGS = [
        *(Binding(key, f"scroll_body('{how}')", show=False) for key, how in SCROLL_KEYS.items()),
        Binding("c", "copy", "Copy", show=False),  # each screen says next to what it copies
    ]
    step: str | None = None  # its step on the wizard's path (tui.journey.STEPS), if it is one
    BODY = "VerticalScroll"  # what the scroll keys scroll: the screen's main content

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.operation: Operation | None = None  # the engine operation this screen runs now
        self.operation_done = True
        self.run_count = 0  # operations started here; EngineEvent.run says which one an event is from

    # -- the path, scrolling, copying -------------------------------------------------------------
    def on_screen_resume(self) -> None:
        journey = getattr(self.app, "journey", None)
        if self.step is not None and journey is not None:
            if self.step == journey.steps[0]:
                journey.restart()
            else:
                journey.at(self.step)
            self.refresh_path()

    def mark_step(self, how: str) -> None:
        """This screen's step ended: done, failed or skipped (shown in the path at once)."""
        journey = getattr(self.app, "journey", None)
        if self.step is not None and journey is not None:
            journey.mark(self.step, how)
            self.refresh_path()

    def refresh_path(self) -> None:
        from ..widgets.top_bar import TopBar

        for bar in self.query(TopBar).results(TopBar):
            bar.refresh()

    def body(self):
        """The scrollable content the scroll keys move (None: nothing to scroll)."""
        found = self.query(self.BODY)
        return next((w for w in found if w.display), None)

    def action_scroll_body(self, how: str) -> None:
        body = self.body()
        if body is not None:
            getattr(body, f"action_{how}")()

    def enter_is_free(self, primary: str) -> bool:
        """Enter may run the screen's main action (its binding is a priority one): not while another
        button, box or field has the focus — Enter then presses that one, as it says."""
        from textual.widgets import Button, Checkbox, Input

        focused = self.focused
        return not (isinstance(focused, (Button, Checkbox, Input)) and focused.id != primary)

    def copy_lines(self) -> list:
        from ..widgets.copy_line import CopyLine

        return [line for line in self.query(CopyLine).results(CopyLine) if line.display and line.text]

    def can_copy(self) -> bool:
        """c copies something here (override when a screen copies what is not a CopyLine)."""
        return bool(self.copy_lines())

    def action_copy(self) -> None:
        from ..widgets.copy_line import CopyLine

        focused = self.focused
        target = focused if isinstance(focused, CopyLine) else next(iter(self.copy_lines()), None)
        if target is not None:
            target.action_copy()

    # -- engine operations ----------------------------------------------------------------------
    def run_operation(self, build: Callable[[Callable], "Operation"], settings: "Settings | None" = None,
                      audit: str | None = None, target=None) -> "Operation | None":
        """Start an engine operation; its events arrive as EngineEvent (at ``target``, a widget of the screen,
        when given: e.g. the Backup screen's drill panel). ``audit``: the audit log's name for it (None: not
        recorded). None when the audit log cannot be written (an error dialog says why)."""
        from migration.events import PoolerDetected

        self.run_count += 1
        run = self.run_count
        receiver = target if target is not None else self

        def emit(event) -> None:  # called by the engine in the worker thread (post_message is thread-safe)
            if isinstance(event, PoolerDetected):  # what a pooler means for this operation, on every screen
                self.app.notify(event.text, title="Connection pooler", severity="warning", timeout=30)
            receiver.post_message(EngineEvent(event, None if self.app.deterministic else datetime.now(), run))

        if audit is not None and settings is not None:
            emit = self.app.audit_tap(settings, audit, emit)
            if emit is None:
                return None
        operation = build(emit)
        self.operation, self.operation_done = operation, False
        self.app.operation_started(operation)
        self._operation_worker(operation)
        return operation

    @property
    def operation_running(self) -> bool:
        return self.operation is not None and not self.operation_done

    def cancel_operation(self) -> None:
        """Cancel the running operation, off the UI thread (cancel_safe may wait for the server)."""
        if self.operation_running:
            self.app.cancel_operation(self.operation)

    def current(self, message: EngineEvent) -> bool:
        """The event comes from the operation the screen runs now (not from an earlier run)."""
        return message.run == self.run_count

    @work(thread=True, exit_on_error=False, group="operation")
    def _operation_worker(self, operation: "Operation") -> None:
        result = None
        try:
            result = operation.run()
        finally:
            self.app.post_message(OperationEnded(operation, result))  # thread-safe, never blocks the worker

    def operation_ended(self, operation: "Operation") -> None:
        """The app tells the screen its operation's worker has ended (after its last event)."""
        if operation is self.operation:
            self.operation_done = True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "copy":
            return self.can_copy()
        return True

    def on_unmount(self) -> None:
        """Leaving the screen (Back, quit, SIGTERM, a crash) never leaves its operation running."""
        self.cancel_operation()

    # -- crashed workers --------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.app.report_worker_error(event.worker)
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker) -> None:
        """Override to leave a 'running' state when one of this screen's workers crashed."""
