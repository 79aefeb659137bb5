"""A titled section of a screen (the Backup screen's panels, the Post-migration steps).

``Panel(title, *children, id=...)``; ``panel.set_state("success" | "warning" | "error" | "")`` colours
its left border (the title carries a mark in words or symbols too: colour is never the only sign).
"""

from __future__ import annotations

from textual.containers import Vertical
from textual.widgets import Static


class Panel(Vertical):
    DEFAULT_CSS = """
    Panel { height: auto; margin: 1 0 0 0; padding: 0 1; border-left: thick $panel-lighten-2; }
    Panel:first-child { margin: 0; }
    Panel.-success { border-left: thick $success; }
    Panel.-warning { border-left: thick $warning; }
    Panel.-error { border-left: thick $error; }
    Panel > .panel-title { text-style: bold; color: $accent; }
    """

    def __init__(self, title: str, *children, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Static(title, classes="panel-title", markup=False), *children, id=id, classes=classes)
        self.title_text = title

    def set_title(self, title: str) -> None:
        self.title_text = title
        self.query_one(".panel-title", Static).update(title)

    def set_state(self, state: str) -> None:
        for name in ("success", "warning", "error"):
            self.set_class(state == name, f"-{name}")
