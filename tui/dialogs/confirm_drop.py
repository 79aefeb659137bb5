"""The rollback's confirmation: names everything that will be dropped and asks for the table name.

``push_screen(ConfirmDropDialog(preview, safety_copy=True), callback)`` → ``True`` only when
the operator typed the table name and pressed Drop (or Enter); Escape / Cancel → ``False``.
The Drop button stays disabled until the typed text matches; the input has the focus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

if TYPE_CHECKING:
    from migration.events import Preview


def drop_summary(preview: "Preview", safety_copy: bool) -> Content:
    """What the DROP removes, in plain words (also used by the rollback screen)."""
    lines: list[Content] = [
        Content.from_markup("[b]Table[/b] $t — $r rows, $s on disk", t=preview.qualified, r=str(preview.row_count),
                            s=preview.size_pretty),
    ]
    if preview.dependents:
        lines.append(Content.from_markup(
            "[b $error]CASCADE also removes $n other object(s):[/]", n=str(len(preview.dependents))))
        for dep in preview.dependents:
            if not dep.ours or (safety_copy and not dep.recoverable):  # refused, or lost for good: say so
                lines.append(Content.from_markup("  • $d — [b $error]$f[/]", d=dep.label, f=dep.fate))
            else:
                lines.append(Content.from_markup("  • $d", d=dep.label))

    else:
        lines.append(Content("Nothing else depends on it: a plain DROP TABLE (no CASCADE)."))
    prefix = f"{preview.schema}."
    if preview.indexes:
        names = [n[len(prefix):] if n.startswith(prefix) else n for n in preview.indexes]
        lines.append(Content.from_markup("[b]Indexes ($n)[/b] $i", n=str(len(names)), i=", ".join(names)))
    if preview.sequence:
        lines.append(Content.from_markup("[b]Sequence[/b] $s", s=preview.sequence))
    kept = sum(1 for d in preview.dependents if d.ours and d.recoverable)
    if safety_copy and kept:
        lines.append(Content(f"A safety copy of the table and of what recreates those {kept} object(s) (pg_dump) is "
                             "written and verified first; a restore brings them back."))
    elif safety_copy:
        lines.append(Content("A safety copy of the table (pg_dump) is written and verified first."))
    else:
        lines.append(Content.from_markup("[b $warning]No safety copy will be taken.[/]"))
    return Content("\n").join(lines)


class ConfirmDropDialog(ModalScreen[bool]):
    CSS_PATH = "confirm_drop.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, preview: "Preview", *, safety_copy: bool = True) -> None:
        super().__init__(classes="dialog-screen", id="confirm-drop")
        self.preview = preview
        self.safety_copy = safety_copy

    @property
    def expected(self) -> str:
        return self.preview.table

    def compose(self) -> ComposeResult:
        p = self.preview
        with Vertical(classes="dialog -error", id="confirm-drop-dialog"):
            yield Static(Content.from_markup("[b]Drop table $t?[/b]", t=p.qualified), classes="dialog-title")
            with VerticalScroll(id="confirm-drop-body"):
                yield Static(drop_summary(p, self.safety_copy), id="confirm-drop-summary")
            yield Static(Content.from_markup("Type the table name [b]$t[/b] to confirm:", t=self.expected),
                         id="confirm-drop-prompt")
            # Not the name itself: an empty field showing "database_backups" looks already filled in.
            yield Input(placeholder="type the name here", id="confirm-drop-input")
            yield Static("", id="confirm-drop-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Drop table", id="confirm-drop-yes", variant="error", disabled=True, compact=True)
                yield Button("Cancel (Esc)", id="confirm-drop-no", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-drop-hint").display = False
        self.query_one("#confirm-drop-input", Input).focus()

    def matches(self) -> bool:
        return self.query_one("#confirm-drop-input", Input).value.strip() == self.expected

    @on(Input.Changed, "#confirm-drop-input")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm-drop-yes", Button).disabled = not self.matches()
        self._hint("")

    @on(Input.Submitted, "#confirm-drop-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.matches():
            self.dismiss(True)
        else:  # never silent: say what Enter is waiting for
            self._hint(f"Type {self.expected} exactly to enable Drop (Esc cancels).")

    def _hint(self, text: str) -> None:
        hint = self.query_one("#confirm-drop-hint", Static)
        hint.update(Content(text))
        hint.display = bool(text)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm-drop-yes" and self.matches():
            self.dismiss(True)
        elif event.button.id == "confirm-drop-no":
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
