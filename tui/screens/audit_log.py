"""Audit log: every check, backup, migration and rollback recorded in the JSON-lines log, newest first."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Header, Static

from .base import WizardScreen

MAX_ENTRIES = 1000


def _details(entry: dict) -> str:
    from migration.audit import details

    return " — ".join(details(entry))


class AuditLogScreen(WizardScreen):
    CSS_PATH = "audit_log.tcss"
    BINDINGS = [
        Binding("r", "reload", "Reload"),
        Binding("escape,b", "app.pop_screen", "Back"),
    ]

    def __init__(self, path: Path | str | None = None) -> None:
        super().__init__(id="audit-log")
        from migration import audit

        self.path = Path(path) if path is not None else audit.default_path()
        self.entries: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="audit-log-status")
        yield DataTable(id="audit-log-table", zebra_stripes=True, cursor_type="row")
        with Horizontal(id="audit-log-actions"):
            yield Button("Reload (r)", id="audit-log-reload", action="screen.reload", compact=True)
            yield Button("Back (Esc)", id="audit-log-back", variant="primary", action="app.pop_screen",
                         compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Audit log"
        table = self.query_one(DataTable)
        table.add_columns("Time (UTC)", "Operation", "Event", "Outcome", "ms", "By", "Target", "Details")
        self.action_reload()
        table.focus()

    def action_reload(self) -> None:
        from migration import audit

        self.entries = audit.read(self.path, tail=MAX_ENTRIES)
        table = self.query_one(DataTable)
        table.clear()
        for entry in reversed(self.entries):
            duration = entry.get("duration_ms")
            table.add_row(
                str(entry.get("time", ""))[:19].replace("T", " "), str(entry.get("operation", "")),
                str(entry.get("event", "")), str(entry.get("outcome") or ""),
                "" if duration is None else f"{duration:.0f}", str(entry.get("operator", "")),
                str(entry.get("target") or ""), _details(entry),
            )
        count = len(self.entries)
        self.query_one("#audit-log-status", Static).update(
            f"{self.path}: {count} entr{'y' if count == 1 else 'ies'}, newest first"
            if count else f"{self.path}: no entries yet (every check, backup, migration and rollback adds some)")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()  # the button's own action= already ran
