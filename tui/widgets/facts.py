"""Labelled facts: labels in a column on the left, values wrapping under themselves on the right.

One widget (not a grid of Statics) so the Target screen's first frame stays light.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from .prose import wrap


class FactList(Widget):
    """``set_facts([(label, value), ...])``; a value may be a str or Content, with newlines."""

    DEFAULT_CSS = """
    FactList { height: auto; }
    """

    def __init__(self, facts: list[tuple[str, str | Content]] | None = None, *, gap: int = 2,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.gap = gap
        self._facts: list[tuple[str, Content]] = []
        self.set_facts(facts or [])

    def set_facts(self, facts: list[tuple[str, str | Content]]) -> None:
        self._facts = [(label, value if isinstance(value, Content) else Content(value)) for label, value in facts]
        self.refresh(layout=True)

    @property
    def text(self) -> str:
        """The facts as plain text (for tests and logs)."""
        return "\n".join(f"{label}: {value.plain}" for label, value in self._facts)

    def _lines(self, width: int) -> list[Content]:
        label_width = max((len(label) for label, _ in self._facts), default=0) + self.gap
        value_width = max(12, width - label_width)
        lines: list[Content] = []
        for label, value in self._facts:
            if any(len(word) > value_width for word in value.plain.split()):
                # A word (a URL, a path) wider than the value column: on lines of its own, whole where it fits.
                lines.append(Content.assemble((label, "bold")))
                lines.extend(Content("  ") + line for line in wrap(value, max(12, width - 2)))
                continue
            for i, line in enumerate(wrap(value, value_width) or [Content("")]):
                head = "" if i else label
                lines.append(Content.assemble((head.ljust(label_width), "bold"), line))
        return lines

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.content_region.width or self.size.width))
