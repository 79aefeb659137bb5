"""Checklist: the guide's Pre-Migration Checklist, one row per check, filled in live.

The engine's :class:`migration.preflight.Preflight` runs through
:meth:`WizardScreen.run_operation`; each result arrives as it completes. ``r`` re-runs; Continue
stays disabled while the checklist blocks (:attr:`Checklist.blocking`, the rule ``run`` uses too),
and while warnings are not acknowledged (``a``). Continue opens the Backup screen (or Migrate,
when nothing will change).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Footer, Static

from ..messages import EngineEvent
from ..widgets.prose import Prose, hanging_lines
from ..widgets.tick import Tick
from ..widgets.top_bar import TopBar
from .base import WizardScreen

if TYPE_CHECKING:
    from migration.events import CheckResult, Checklist
    from migration.options import BackupOptions
    from migration.settings import Settings

MARKS = {"ok": "✓", "info": "ℹ", "warning": "⚠", "failure": "✗"}
STYLES = {"ok": "green", "info": "blue", "warning": "yellow", "failure": "bold red"}
# The box says its state itself ([✓] / [ ]): the label can be short enough for the button row at 80 columns.
ACK_LABEL = "Warnings read (a)"


class CheckRows(VerticalScroll):
    """The check rows. A row it is asked to show stays in view when its own height changes later
    (the summary below it grows when the checks complete): the final scroll does not depend on
    which of the two happens first."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown: Widget | None = None

    def show(self, row: Widget | None) -> None:
        self.shown = row
        if row is not None:
            self.call_after_refresh(self._scroll_to_shown)

    def _scroll_to_shown(self) -> None:
        if self.shown is not None and self.shown.is_attached:
            self.shown.scroll_visible(animate=False, top=True)

    def on_resize(self) -> None:
        self._scroll_to_shown()


def row_text(result: "CheckResult") -> Text:
    status = result.status.value
    text = Text()
    text.append(f"{MARKS[status]} ", style=STYLES[status])
    text.append(result.name, style="bold")
    text.append(f"  {result.detail}")
    if result.hint and status != "ok":
        label = "Later" if status == "info" else "Fix"  # a note for after the migration is not a fix
        text.append(f"\n  {label}: {result.hint}", style="italic")
    return text


class CheckRow(Static):
    """One check; wrapped lines get a hanging indent, like the step panels, so the mark column stays clear."""

    def _lines(self, width: int) -> list[Content]:
        parts = Content.from_rich_text(self.content).split("\n")
        indents = [len(part.plain) - len(part.plain.lstrip(" ")) for part in parts]
        return hanging_lines(((indent, part[indent:]) for indent, part in zip(indents, parts)), width)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.content_region.width or self.size.width))


class ChecklistScreen(WizardScreen):
    CSS_PATH = "checklist.tcss"
    BINDINGS = [
        Binding("enter", "continue", "Continue", key_display="Enter", priority=True),
        Binding("r", "rerun", "Re-run"),
        Binding("a", "acknowledge", "Acknowledge"),
        Binding("escape,t", "app.back_to_target", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]
    step = "checklist"
    BODY = "#checks"

    def __init__(self, settings: "Settings", *, options: "BackupOptions | None" = None,
                 checks: Callable | None = None, next_screen: Callable | None = None) -> None:
        """``checks(settings, checklist, **options)`` yields results (default: the engine's run_checks);
        ``next_screen(checklist)`` builds the screen Continue opens (default: Backup, or Migrate)."""
        super().__init__(id="checklist")
        self.settings = settings
        self.options = options
        self._checks = checks
        self._next_screen = next_screen
        self.checklist: Checklist | None = None
        self.running = False
        self.acknowledged = False

    def compose(self) -> ComposeResult:
        yield TopBar()
        yield Prose(f"Pre-migration checklist for {self.settings.masked_url} (schema {self.settings.schema})",
                    id="checklist-target", markup=False)
        yield CheckRows(id="checks")
        yield Prose("", id="checklist-summary", markup=False)
        with Horizontal(id="checklist-actions"):
            yield Button("Continue (Enter)", id="continue", variant="primary", action="screen.continue",
                         compact=True, disabled=True)
            yield Tick(ACK_LABEL, id="acknowledge", compact=True)
            yield Button("Re-run (r)", id="rerun", action="screen.rerun", compact=True)
            yield Button("Back (Esc)", id="back", action="app.back_to_target", compact=True)
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        self.sub_title = "Checklist"
        self.query_one("#acknowledge").display = False
        await self.action_rerun()

    # -- running the checks ----------------------------------------------------------
    async def action_rerun(self) -> None:
        if self.running:
            return
        self.running = True
        self.checklist = None
        self.acknowledged = False
        rows = self.query_one("#checks", CheckRows)
        rows.show(None)
        await rows.remove_children()  # before new rows reuse the ids
        self.query_one("#checklist-summary", Static).update("Running the checks…")
        self.query_one("#acknowledge", Checkbox).value = False
        self.query_one("#acknowledge").display = False
        self._update_continue()
        if self.run_operation(self._build, self.settings, audit="check") is None:
            self.running = False
            self.query_one("#checklist-summary", Static).update("Nothing was started: the audit log cannot be "
                                                                "written.")

    def _build(self, emit):
        from migration.preflight import Preflight, run_checks

        options = self.options or self.app.options.backup
        return Preflight(self.settings, emit, options=options, checks=self._checks or run_checks,
                         drill=self.app.options.drill)

    def worker_failed(self, worker) -> None:
        if worker.group == "operation":
            self.running = False
            self.query_one("#checklist-summary", Static).update("The checks stopped unexpectedly; press r to retry.")
            self._update_continue()

    async def on_engine_event(self, message: EngineEvent) -> None:
        from migration.events import CheckCompleted, ChecklistFinished

        if not self.current(message):
            return
        if isinstance(message.event, CheckCompleted):
            await self._add_row(message.event.result)
        elif isinstance(message.event, ChecklistFinished):
            self._completed(message.event.checklist)

    async def _add_row(self, result: "CheckResult") -> None:
        container = self.query_one("#checks", VerticalScroll)
        previous = container.children[-1] if container.children else None
        if previous is None or getattr(previous, "group_name", None) != result.group:
            title = Static(result.group, classes="check-group")
            title.group_name = result.group  # type: ignore[attr-defined]
            await container.mount(title)
        row = CheckRow(row_text(result), classes=f"check-row -{result.status.value}", id=f"check-{result.key}")
        row.group_name = result.group  # type: ignore[attr-defined]
        await container.mount(row)

    def _completed(self, checklist: "Checklist") -> None:
        self.running = False
        self.checklist = checklist
        if checklist.blocking:
            self.mark_step("failed")
        self._update_summary()
        self.query_one("#acknowledge").display = bool(checklist.warnings) and not checklist.blocking
        self._update_continue()
        if self.can_continue:
            self.query_one("#continue", Button).focus()
        elif checklist.blocking:  # show the first thing to fix
            self.query_one("#checks", CheckRows).show(self.query_one(f"#check-{checklist.blocking[0].key}"))

    # -- continuing ---------------------------------------------------------------------
    @property
    def can_continue(self) -> bool:
        cl = self.checklist
        return (cl is not None and not self.running and not cl.blocking
                and (self.acknowledged or not cl.warnings))

    def _update_continue(self) -> None:
        self.query_one("#continue", Button).disabled = not self.can_continue
        self.refresh_bindings()

    def _update_summary(self) -> None:
        checklist = self.checklist
        if checklist is None:
            return
        summary = checklist.summary()
        if checklist.failures:
            summary += " — Continue is disabled until every failure is fixed (then press r)."
        elif checklist.warnings and self.acknowledged:
            summary += " — warnings acknowledged: press Enter to continue."
        elif checklist.warnings:
            summary += " — acknowledge the warnings (a) to continue."
        self.query_one("#checklist-summary", Static).update(summary)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.acknowledged = event.value
        self._update_summary()
        self._update_continue()

    def action_acknowledge(self) -> None:
        if self.checklist is not None and self.checklist.warnings and self.checklist.passed:
            box = self.query_one("#acknowledge", Checkbox)
            box.value = not box.value

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "continue":
            if not self.enter_is_free("continue"):
                return False  # Enter presses the focused button or box
            return True if self.can_continue else None
        if action == "rerun":
            return None if self.running else True
        if action == "acknowledge":
            return bool(self.checklist and self.checklist.warnings and self.checklist.passed)
        return super().check_action(action, parameters)

    def action_continue(self) -> None:
        if not self.can_continue:
            return
        assert self.checklist is not None
        self.mark_step("done")
        if self._next_screen is not None:
            self.app.push_screen(self._next_screen(self.checklist))
            return
        if self.checklist.table_state == "valid":
            from .migrate import MigrateScreen

            self.app.notify("The table already exists and is valid: nothing will change, so no backup is needed.")
            self.app.journey.mark("backup", "skipped")
            self.app.push_screen(MigrateScreen(self.settings))
            return
        from .backup import BackupScreen

        self.app.push_screen(BackupScreen(self.settings, tool=self.checklist.pg_dump, options=self.options))
