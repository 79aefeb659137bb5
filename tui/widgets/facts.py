"""A two-column grid of labelled facts: labels on the left, values wrapping on the right."""

from __future__ import annotations

from textual.containers import Grid
from textual.content import Content
from textual.widgets import Static


class FactList(Grid):
    """``set_facts([(label, value), ...])``; a value may be a str (shown as is) or Content."""

    DEFAULT_CSS = """
    FactList {
        grid-size: 2;
        grid-columns: auto 1fr;
        grid-gutter: 0 2;
        grid-rows: auto;
        height: auto;
    }
    FactList > .fact-label { text-style: bold; width: auto; }
    FactList > .fact-value { width: 1fr; }
    """

    def __init__(self, facts: list[tuple[str, str | Content]] | None = None, *,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._facts = facts or []

    def on_mount(self) -> None:
        self.set_facts(self._facts)

    def set_facts(self, facts: list[tuple[str, str | Content]]) -> None:
        """Update the values in place (same labels) or rebuild the grid."""
        self._facts = facts
        labels = [s for s in self.query(".fact-label").results(Static)]
        values = [s for s in self.query(".fact-value").results(Static)]
        if [str(s.content) for s in labels] == [label for label, _ in facts] and len(values) == len(facts):
            for static, (_, value) in zip(values, facts):
                static.update(value if isinstance(value, Content) else Content(value))
            return
        self.remove_children()
        widgets = []
        for label, value in facts:
            widgets.append(Static(label, classes="fact-label", markup=False))
            widgets.append(Static(value if isinstance(value, Content) else Content(value), classes="fact-value"))
        self.mount(*widgets)
