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
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

from textual import work
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from ..messages import EngineEvent, OperationEnded

if TYPE_CHECKING:
    from migration.operation import Operation
    from migration.settings import Settings


class WizardScreen(Screen):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.operation: Operation | None = None  # the engine operation this screen runs now
        self.operation_done = True
        self.run_count = 0  # operations started here; EngineEvent.run says which one an event is from

    # -- engine operations ----------------------------------------------------------------------
    def run_operation(self, build: Callable[[Callable], "Operation"], settings: "Settings | None" = None,
                      audit: str | None = None, target=None) -> "Operation | None":
        """Start an engine operation; its events arrive as EngineEvent (at ``target``, a widget of the screen,
        when given: e.g. the Backup screen's drill panel). ``audit``: the audit log's name for it (None: not
        recorded). None when the audit log cannot be written (an error dialog says why)."""
        self.run_count += 1
        run = self.run_count
        receiver = target if target is not None else self

        def emit(event) -> None:  # called by the engine in the worker thread (post_message is thread-safe)
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
