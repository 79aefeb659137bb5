"""An error as a modal dialog (a crashed worker, an operation that could not start), and the one way every
screen shows an :class:`migration.errors.OperatorError`: what went wrong and how to fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from migration.errors import OperatorError


def error_content(error: "OperatorError") -> Content:
    code = f" (SQLSTATE {error.sqlstate})" if error.sqlstate else ""
    parts = [Content.from_markup("[b]Error:[/b] $m$code", m=error.message, code=code)]
    if error.detail:
        parts.append(Content.from_markup("[b]Detail:[/b] $d", d=error.detail))
    parts.append(Content.from_markup("[b]Fix:[/b] $h", h=error.hint))
    return Content("\n\n").join(parts)


class ErrorDialog(ModalScreen[None]):
    """Something failed outside the normal flow (for example a worker crashed)."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape,enter,o", "dismiss_dialog", "OK")]

    def __init__(self, title: str, error: "OperatorError", note: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text, self.error, self.note = title, error, note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -error", id="error-dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(error_content(self.error), classes="dialog-body")
            if self.note:
                yield Static(self.note, classes="dialog-note", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", id="ok", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_dismiss_dialog(self) -> None:
        self.dismiss(None)
