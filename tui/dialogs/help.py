"""Help (? / F1): what this wizard does and the keys of the screen it was opened from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.prose import Prose

GLOBAL_KEYS = [
    ("? / F1", "this help"),
    ("PgUp PgDn Home End", "scroll the screen's content (↑ ↓ too)"),
    ("c", "copy the command or path shown, where there is one"),
    ("Ctrl+P", "command palette: every action by name"),
    ("Ctrl+T", "switch between the dark and the light theme"),
    ("Tab / Shift+Tab", "move between buttons and boxes"),
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
        from migration.version import version

        with Vertical(classes="dialog", id="help-dialog"):
            yield Static(f"Help — migrate-tui {version()}", classes="dialog-title", id="help-title", markup=False)
            with VerticalScroll(id="help-body"):
                yield Prose(ABOUT, classes="dialog-body", markup=False)
                yield Prose(_table(f"Keys on the {self.screen_name} screen", self.keys), id="help-screen-keys",
                            hang=_key_width(self.keys))  # a wrapped description stays under itself
                yield Prose(_table("Everywhere", GLOBAL_KEYS), id="help-global-keys", hang=_key_width(GLOBAL_KEYS))
            yield Static("Escape closes; ↑ ↓ PgUp PgDn scroll.", classes="dialog-note", id="help-note")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()  # the scroll keys work at once

    def action_close(self) -> None:
        self.dismiss(None)


def _key_width(rows: list[tuple[str, str]]) -> int:
    return max((len(k) for k, _ in rows), default=8) + 2


def _table(title: str, rows: list[tuple[str, str]]) -> Content:
    width = _key_width(rows)
    lines = [Content.from_markup("[b]$t[/b]", t=title)]
    lines += [Content.from_markup("  [b]$k[/b]$d", k=key.ljust(width), d=desc) for key, desc in rows]
    return Content("\n").join(lines)
