"""Help (? / F1): what this wizard does and the keys of the screen it was opened from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

GLOBAL_KEYS = [
    ("? / F1", "this help"),
    ("Ctrl+P", "command palette: every action by name"),
    ("Ctrl+T", "switch between the dark and the light theme"),
    ("Tab / Shift+Tab", "move between buttons"),
    ("Ctrl+Q", "quit (asks first while a migration runs)"),
]

ABOUT = ("migrate-tui adds the database_backups table and its three indexes in one transaction, "
         "following the Database Migration Guide step by step. Any failure or a cancel rolls everything back.")


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, keys: list[tuple[str, str]], screen_name: str) -> None:
        super().__init__(classes="dialog-screen")
        self.keys, self.screen_name = keys, screen_name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-dialog"):
            yield Static("Help", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(ABOUT, classes="dialog-body", markup=False)
                yield Static(_table(f"Keys on the {self.screen_name} screen", self.keys), id="help-screen-keys")
                yield Static(_table("Everywhere", GLOBAL_KEYS), id="help-global-keys")
            yield Static("Press Escape to close.", classes="dialog-note")

    def action_close(self) -> None:
        self.dismiss(None)


def _table(title: str, rows: list[tuple[str, str]]) -> Content:
    width = max((len(k) for k, _ in rows), default=8) + 2
    lines = [Content.from_markup("[b]$t[/b]", t=title)]
    lines += [Content.from_markup("  [b]$k[/b]$d", k=key.ljust(width), d=desc) for key, desc in rows]
    return Content("\n").join(lines)
