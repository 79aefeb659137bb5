"""Missing or invalid configuration: what is wrong, how to fix it, nothing attempted (exit code 78)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Footer, Static

from ..widgets.prose import Prose
from ..widgets.top_bar import TopBar
from .base import WizardScreen

from ..dialogs.error import error_content

if TYPE_CHECKING:
    from migration.errors import OperatorError


class ConfigErrorScreen(WizardScreen):
    """Missing or invalid configuration: nothing was attempted. Quitting exits with code 78."""

    CSS_PATH = "../dialogs/dialogs.tcss"
    BINDINGS = [Binding("r", "app.retry_settings", "Try again"),
                Binding("q,escape", "app.quit", "Quit")]
    BODY = "#config-error-body"

    def __init__(self, error: "OperatorError") -> None:
        super().__init__(id="config-error")
        self.error = error

    def compose(self) -> ComposeResult:
        yield TopBar()
        with VerticalScroll(id="config-error-body"):
            yield Static("Configuration problem", classes="section-title -error")
            yield Prose(error_content(self.error), id="config-error-text")
            yield Prose("Nothing was changed: the wizard did not connect to any database.\n"
                         "Configuration is read from the environment and from .env (or --env-file PATH).\n"
                         "To try the wizard without a database of your own: migrate-tui --demo",
                        classes="dialog-note", markup=False)
        with Horizontal(classes="dialog-buttons"):
            yield Button("Try again (r)", id="retry", variant="primary", action="app.retry_settings", compact=True)
            yield Button("Quit (q)", id="quit", variant="error", action="app.quit", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Configuration error"
