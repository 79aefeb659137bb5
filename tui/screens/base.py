"""The base class of the wizard's screens: a crashed worker becomes an error dialog, never a dead screen.

``Worker.StateChanged`` does not bubble, so each screen that runs workers must
report failures itself; subclass :class:`WizardScreen` and it does.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.worker import Worker, WorkerState


class WizardScreen(Screen):
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.app.report_worker_error(event.worker)
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker) -> None:
        """Override to leave a 'running' state when one of this screen's workers crashed."""
