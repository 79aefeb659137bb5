"""SQL preview: exactly what a run executes (migration.plan.render_plan), highlighted and copyable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from ..widgets.prose import Prose
from ..widgets.top_bar import TopBar

from .base import WizardScreen

if TYPE_CHECKING:
    from migration.settings import Settings


class SqlScreen(WizardScreen):
    CSS_PATH = "sql.tcss"
    BODY = "#sql-scroll"
    BINDINGS = [
        Binding("c", "copy", "Copy SQL"),
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, settings: "Settings") -> None:
        super().__init__(id="sql")
        from migration.plan import render_plan

        self.sql = render_plan(settings)

    def compose(self) -> ComposeResult:
        yield TopBar()
        yield Prose("The exact SQL the migration runs, in one transaction (dry run: nothing is executed here). "
                    "Press c to copy it.", id="sql-intro", markup=False)
        with VerticalScroll(id="sql-scroll"):
            yield Static(self._highlighted(), id="sql-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "SQL preview"
        self.query_one("#sql-scroll").focus()
        self.watch(self.app, "theme", lambda _: self._rehighlight(), init=False)

    def _highlighted(self):
        from rich.syntax import Syntax

        theme = self.app.current_theme
        # The screen's own background behind the code (no per-token boxes), pygments colours on top.
        background = self.app.theme_variables.get("surface") or theme.surface or theme.background
        return Syntax(self.sql, "sql", theme="monokai" if theme.dark else "friendly", word_wrap=True,
                      background_color=background)

    def _rehighlight(self) -> None:
        self.query_one("#sql-text", Static).update(self._highlighted())

    def can_copy(self) -> bool:
        return True

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.sql)
        self.notify(f"Copied {len(self.sql.splitlines())} lines of SQL to the clipboard.", title="SQL copied")
