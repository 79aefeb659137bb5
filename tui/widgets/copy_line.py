"""A command or a path meant to be copied: whole, on a line of its own, copied with one key.

It never wraps. When the line is too narrow, the longest path in it loses its middle (``…``), so
its start and its file name stay readable; what ``c`` copies (the terminal clipboard, as the SQL
screen does) is always the whole text. A screen's ``c`` copies the focused CopyLine, or its first
one (:meth:`tui.screens.base.WizardScreen.action_copy`).
"""

from __future__ import annotations

from textual.binding import Binding
from textual.content import Content
from textual.widget import Widget

ELLIPSIS = "…"
KEEP_HEAD = 6  # characters a shortened path keeps at its start (at least)
KEEP_TAIL = 12  # and at its end: the file name's end


def fit_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: the longest path-like words lose their middle first, then the
    whole text does. Unchanged when it fits."""
    if len(text) <= width or width <= 0:
        return text
    words = text.split(" ")
    excess = len(text) - width
    order = sorted((i for i, w in enumerate(words) if "/" in w or len(w) > 24), key=lambda i: -len(words[i]))
    for i in order:
        word = words[i]
        room = len(word) - excess - 1  # what the word keeps, besides the ellipsis
        if room >= KEEP_HEAD + KEEP_TAIL:
            tail = max(KEEP_TAIL, room * 3 // 5)  # the file name matters most
            words[i] = word[: room - tail] + ELLIPSIS + word[len(word) - tail:]
            return " ".join(words)
        if len(word) > KEEP_HEAD + KEEP_TAIL + 1:  # shorten it as far as it goes, then the next one
            short = word[:KEEP_HEAD] + ELLIPSIS + word[len(word) - KEEP_TAIL:]
            excess -= len(word) - len(short)
            words[i] = short
    text = " ".join(words)
    if len(text) <= width:
        return text
    keep = max(1, width - 1)
    head = keep // 3  # the end (a file name) matters more than the start
    return text[:head] + ELLIPSIS + text[len(text) - (keep - head):]


class CopyLine(Widget, can_focus=True):
    """``CopyLine(text, label="Backup")``: ``label`` dim before the text; ``c`` copies ``text``. A text of several
    lines (a statement as the guide writes it) shows each on a line of its own, none wrapped."""

    DEFAULT_CSS = """
    CopyLine { height: auto; width: 1fr; padding: 0 1; background: $boost; }
    CopyLine:focus { background: $accent 30%; text-style: bold; }
    """
    BINDINGS = [Binding("c", "copy", "Copy", show=False)]

    def __init__(self, text: str, *, label: str = "", what: str = "", id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.text = text
        self.label = label
        self.what = what or label or "text"

    def set_text(self, text: str) -> None:
        self.text = text
        self.refresh()

    @property
    def shown(self) -> str:
        """What the line shows at its current width (the text, perhaps shortened in the middle)."""
        return "\n".join(fit_middle(line, self._room()) for line in self.text.split("\n"))

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, self.text.count("\n") + 1)

    def _room(self) -> int:
        width = self.content_region.width or self.size.width or 80
        return width - (len(self.label) + 1 if self.label else 0)

    def render(self) -> Content:
        parts = [(f"{self.label} ", "dim")] if self.label else []
        pad = " " * (len(self.label) + 1) if self.label else ""
        return Content.assemble(*parts, self.shown.replace("\n", "\n" + pad))

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.app.notify(f"Copied the {self.what} to the clipboard.", title="Copied", timeout=3)
