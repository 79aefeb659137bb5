"""Audit log: one row per operation (check, backup, migration, rollback, restore, verify, CRON_SECRET), newest
first, in columns that fit 80; Enter shows the highlighted operation's events, with step names; ``f`` and
``o`` filter by operation and by outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Button, DataTable, Footer

from ..widgets.prose import GLUE, Prose
from ..widgets.top_bar import TopBar
from .base import WizardScreen

MAX_ENTRIES = 5000
# (title, width); "What" takes the rest of the line.
COLUMNS = (("When (UTC)", 16), ("Operation", 11), ("Outcome", 10), ("Took", 8))
NO_OUTCOME = "unfinished"  # no Finished event recorded (the run was killed, or it is still running)


@dataclass
class AuditOperation:
    """The entries of one run of one operation, oldest first."""

    run: str
    entries: list[dict] = field(default_factory=list)

    @property
    def first(self) -> dict:
        return self.entries[0]

    @property
    def last(self) -> dict:
        return self.entries[-1]

    @property
    def operation(self) -> str:
        return str(self.first.get("operation", "?"))

    @property
    def outcome(self) -> str:
        ended = next((e for e in reversed(self.entries) if e.get("outcome")), None)
        return str(ended["outcome"]) if ended else NO_OUTCOME

    @property
    def took(self) -> str:
        ended = next((e for e in reversed(self.entries) if e.get("outcome")), None)
        ms = ended.get("duration_ms") if ended else None
        if not isinstance(ms, (int, float)):
            return ""
        return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"  # (a table cell never wraps)

    @property
    def when(self) -> str:
        return str(self.first.get("time", ""))[:16].replace("T", " ")

    @property
    def summary(self) -> str:
        """What happened, in a line: the failed step and the message of the end, or the backup's path."""
        from migration.audit import details

        ended = next((e for e in reversed(self.entries) if e.get("outcome")), None)
        failed = next((e for e in self.entries if e.get("event") == "StepFailed"), None)
        parts = []
        if failed is not None:
            parts.extend(details(failed)[:1])
        if ended is not None:
            parts.extend(p for p in details(ended) if p not in parts)
        elif self.entries:
            parts.append(f"last event: {self.last.get('event', '?')}")
        return " — ".join(parts)


def group_operations(entries: list[dict]) -> list[AuditOperation]:
    """Entries (oldest first) grouped by run, newest operation first."""
    groups: dict[str, AuditOperation] = {}
    for number, entry in enumerate(entries):
        run = str(entry.get("run") or f"line-{number}")
        groups.setdefault(run, AuditOperation(run)).entries.append(entry)
    return list(reversed(groups.values()))


class AuditLogScreen(WizardScreen):
    CSS_PATH = "audit_log.tcss"
    BINDINGS = [
        Binding("enter", "toggle_events", "Events", key_display="Enter", priority=True),
        Binding("f", "filter_operation", "Operation"),
        Binding("o", "filter_outcome", "Outcome"),
        Binding("r", "reload", "Reload"),
        Binding("escape,b", "app.pop_screen", "Back"),
    ]
    BODY = "#audit-log-events-box"

    def __init__(self, path: Path | str | None = None) -> None:
        super().__init__(id="audit-log")
        from migration import audit

        self.path = Path(path) if path is not None else audit.default_path()
        self.entries: list[dict] = []
        self.operations: list[AuditOperation] = []
        self.shown: list[AuditOperation] = []  # after the filters, in the table's order
        self.operation_filter: str | None = None
        self.outcome_filter: str | None = None
        self.expanded = False

    def compose(self) -> ComposeResult:
        yield TopBar()
        yield Prose("", id="audit-log-status", markup=False)
        yield DataTable(id="audit-log-table", zebra_stripes=True, cursor_type="row")
        yield VerticalScroll(Prose("", id="audit-log-events", hang=14), id="audit-log-events-box")
        with Horizontal(id="audit-log-actions"):
            yield Button("Reload (r)", id="audit-log-reload", action="screen.reload", compact=True)
            yield Button("Back (Esc)", id="audit-log-back", variant="primary", action="app.pop_screen",
                         compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Audit log"
        self.query_one("#audit-log-events-box").display = False
        self.action_reload()
        self.query_one(DataTable).focus()

    # -- reading and filtering ----------------------------------------------------------------------
    def action_reload(self) -> None:
        from migration import audit

        self.entries = audit.read(self.path, tail=MAX_ENTRIES)
        self.operations = group_operations(self.entries)
        self._fill()

    def _fill(self) -> None:
        self.shown = [op for op in self.operations
                      if (self.operation_filter is None or op.operation == self.operation_filter)
                      and (self.outcome_filter is None or op.outcome == self.outcome_filter)]
        table = self.query_one(DataTable)
        table.clear(columns=True)
        widths = self._widths()
        for (title, _), width in zip((*COLUMNS, ("What", 0)), widths):
            table.add_column(title, width=width)
        what = widths[-1]
        for op in self.shown:
            table.add_row(op.when, op.operation, op.outcome, op.took, _fit(op.summary, what), key=op.run)
        self._status()
        self._show_events()

    def _widths(self) -> list[int]:
        """Column widths that fit the screen: the last column takes what the others leave."""
        total = (self.size.width or self.app.size.width) - 2  # the table's margin
        fixed = [w for _, w in COLUMNS]
        padding = 2 * (len(fixed) + 1)  # DataTable pads each cell by one on both sides
        return [*fixed, max(12, total - sum(fixed) - padding - 1)]

    def on_resize(self) -> None:
        if self.is_mounted and self.operations:
            self._fill()

    def _status(self) -> None:
        count, ops = len(self.entries), len(self.operations)
        if not count:
            text = f"{self.path}: no entries yet (every check, backup, migration and rollback adds some)"
        else:
            shown = "" if len(self.shown) == ops else f", {len(self.shown)} shown"
            filters = (f"operation {self.operation_filter or 'any'} (f), outcome {self.outcome_filter or 'any'} (o)")
            targets = sorted({str(e.get("target")) for e in self.entries if e.get("target")})
            target = f"\nTarget: {targets[0]}" if len(targets) == 1 else ""
            text = (f"{self.path}: {ops} operation{'s' if ops != 1 else ''} ({count} events){shown}, newest first; "
                    f"{filters}; Enter shows the events.{target}")
        self.query_one("#audit-log-status", Prose).update(text)

    def _cycle(self, current: str | None, values: list[str]) -> str | None:
        options: list[str | None] = [None, *values]
        return options[(options.index(current) + 1) % len(options)] if current in options else None

    def action_filter_operation(self) -> None:
        self.operation_filter = self._cycle(self.operation_filter,
                                            sorted({op.operation for op in self.operations}))
        self._fill()

    def action_filter_outcome(self) -> None:
        self.outcome_filter = self._cycle(self.outcome_filter, sorted({op.outcome for op in self.operations}))
        self._fill()

    # -- one operation's events -------------------------------------------------------------------
    def action_toggle_events(self) -> None:
        self.expanded = not self.expanded and bool(self.shown)
        self.query_one("#audit-log-events-box").display = self.expanded
        self.query_one(DataTable).set_class(self.expanded, "-with-events")
        self._show_events()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_events()

    def selected(self) -> AuditOperation | None:
        table = self.query_one(DataTable)
        if not self.shown or table.cursor_row is None or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def _show_events(self) -> None:
        if not self.expanded:
            return
        op = self.selected()
        self.query_one("#audit-log-events", Prose).update(events_text(op) if op else Content(""))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_events":
            return bool(self.shown) and self.enter_is_free("audit-log-table")
        if action in ("filter_operation", "filter_outcome"):
            return bool(self.operations)
        return super().check_action(action, parameters)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()  # the button's own action= already ran


def events_text(op: AuditOperation) -> Content:
    from migration.audit import details

    first = op.first
    head = Content.from_markup(
        "[b]$o[/b] by $u on $t (schema $s), migrate-tui $v, run $r", o=op.operation, u=str(first.get("operator", "?")),
        t=str(first.get("target") or "no database"), s=str(first.get("schema") or "-"),
        v=str(first.get("version") or "?"), r=op.run)
    lines = [head]
    for entry in op.entries:
        time = str(entry.get("time", ""))[11:23]
        extra = [f"{entry['outcome']}"] if entry.get("outcome") else []
        if isinstance(entry.get("duration_ms"), (int, float)):
            extra.append(f"{entry['duration_ms']:.0f}{GLUE}ms")
        text = " — ".join([*details(entry), *extra])
        lines.append(Content.from_markup("  $t  [b]$e[/b]$x", t=time, e=str(entry.get("event", "?")),
                                         x=f"  {text}" if text else ""))
    return Content("\n").join(lines)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"
