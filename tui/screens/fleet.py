"""Fleet: one table of every target of a fleet file, live, while the same migration runs on each of them.

``migrate-tui --fleet FILE`` (or ``--demo-fleet``) opens it, with ``fleet run``'s ``--concurrency``,
``--keep-going``, ``--only`` and ``--shard`` (:class:`migration.options.FleetOptions`; the selection is the
source's, :mod:`headless.entry`). The engine's :class:`migration.fleet.FleetRun` runs through
:meth:`WizardScreen.run_operation` (every database off the UI thread; its events arrive as EngineEvent, each
target's tagged with its name) with ``wave_by_wave``: the operator starts the first wave
(``s``) and each next one (``n``) after the one before succeeded; a failed target stops the later waves
(unless ``--keep-going``).
``p`` pauses (the running targets finish, no other starts) and resumes; Escape / Ctrl+C cancels every running
target (each is rolled back by the engine); ``q`` quits (what runs is cancelled first). Enter opens a target's
log (:class:`FleetTargetScreen`). What the table shows is kept by :class:`tui.screens.fleet_board.FleetBoard`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from ..messages import EngineEvent
from ..widgets.prose import Prose
from ..widgets.top_bar import TopBar
from .base import WizardScreen
from .fleet_board import CANCELLED, FAILED, NOT_NEEDED, OK, RUNNING, SKIPPED, FleetBoard, TargetRow

if TYPE_CHECKING:
    from migration.fleet import Fleet

STYLES = {OK: "green", NOT_NEEDED: "green", FAILED: "bold red", CANCELLED: "yellow", SKIPPED: "dim",
          RUNNING: "bold"}


class FleetReady(Message):
    """The fleet is read (or the demo fleet started): posted to the app by its worker."""

    def __init__(self, fleet: "Fleet") -> None:
        super().__init__()
        self.fleet = fleet


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


class FleetScreen(WizardScreen):
    CSS_PATH = "fleet.tcss"
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("n", "next_wave", "Next wave"),
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Resume"),
        Binding("escape,ctrl+c", "cancel_all", "Cancel all", key_display="Esc", priority=True),
        Binding("l", "app.audit_log", "Audit log", show=False),
        Binding("q", "app.quit", "Quit"),
    ]
    BODY = "#fleet-table"

    def __init__(self, concurrency: int | None = None) -> None:
        super().__init__(id="fleet")
        self.fleet: Fleet | None = None
        self.board: FleetBoard | None = None
        self.concurrency = concurrency

    def compose(self) -> ComposeResult:
        yield TopBar()
        yield Prose(getattr(self.app.source, "description", "Reading the fleet file") + "…", id="fleet-file",
                    markup=False)
        yield Static("", id="fleet-wave", markup=False)
        yield Static("", id="fleet-counts", markup=False)
        yield DataTable(id="fleet-table", cursor_type="row")
        yield Prose("", id="fleet-hint", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Fleet"

    # -- the fleet arrives -------------------------------------------------------------------------
    def fleet_ready(self, fleet: "Fleet") -> None:
        self.fleet = fleet
        self.board = FleetBoard(fleet, deterministic=self.app.deterministic)
        waves = " › ".join(f"{w} ({sum(t.wave == w for t in fleet.targets)})" for w in fleet.waves)
        self.query_one("#fleet-file", Static).update(
            f"Fleet {fleet.path}: {_plural(len(fleet.targets), 'target')} in {_plural(len(fleet.waves), 'wave')}: "
            f"{waves}{self._choices()}")
        table = self.query_one("#fleet-table", DataTable)
        table.clear(columns=True)
        name_width = min(20, max([6, *(len(t.name) for t in fleet.targets)]))
        wave_width = min(12, max([4, *(len(t.wave) for t in fleet.targets)]))
        self.state_width = max(20, self.app.size.width - name_width - wave_width - 12)
        table.add_column("Target", key="target", width=name_width)
        table.add_column("Wave", key="wave", width=wave_width)
        table.add_column("State", key="state", width=self.state_width)
        for row in self.board.rows.values():
            table.add_row(_cut(row.name, name_width), _cut(row.wave, wave_width), self._state(row), key=row.name)
        table.focus()
        self._refresh_status()

    @property
    def fleet_options(self):
        """The command line's --concurrency / --keep-going (FleetOptions); a test's FleetApp(concurrency=N) wins."""
        from dataclasses import replace

        options = self.app.options.fleet
        return replace(options, concurrency=self.concurrency) if self.concurrency else options

    def _choices(self) -> str:
        """What the command line chose beyond the defaults: --only / --shard, --concurrency, --keep-going."""
        from migration.options import DEFAULT_FLEET_CONCURRENCY

        options = self.fleet_options
        parts = [getattr(self.app.source, "selection", "")]
        if options.concurrency != DEFAULT_FLEET_CONCURRENCY:
            parts.append(f"up to {options.concurrency} at once")
        if options.keep_going:
            parts.append("--keep-going")
        text = "; ".join(p for p in parts if p)
        return f" — {text}" if text else ""

    def _state(self, row: TargetRow) -> Text:
        return Text(_cut(row.state, getattr(self, "state_width", 40)), style=STYLES.get(row.kind, ""))

    def _refresh_status(self, keys: bool = True) -> None:
        """The lines above and below the table (each only when its text changed: a fleet sends many events);
        ``keys``: the footer's keys too (what is offered changes with the fleet's own events only)."""
        board = self.board
        if board is None:
            return
        hint = "Enter: a target's log."
        if board.finished is not None and board.counts()[FAILED]:
            hint = "Enter on a failed target: its error and the fix. s runs the fleet again."
        elif board.finished is not None:
            hint = "Enter: a target's log. s runs the fleet again; an already migrated target is not needed."
        for selector, text in (("#fleet-wave", board.wave_line()), ("#fleet-counts", board.counts_line()),
                               ("#fleet-hint", hint)):
            widget = self.query_one(selector, Static)
            if str(widget.content) != text:
                widget.update(text)
        if keys:
            self.refresh_bindings()

    def _refresh_row(self, name: str) -> None:
        assert self.board is not None
        self.query_one("#fleet-table", DataTable).update_cell(name, "state", self._state(self.board.rows[name]))

    # -- events ------------------------------------------------------------------------------------
    def on_engine_event(self, message: EngineEvent) -> None:
        if self.board is None or not self.current(message):
            return
        started = self.board.started
        changed = self.board.apply(message.event)
        if changed is None or not started:
            for name in self.board.rows:
                self._refresh_row(name)
        else:
            self._refresh_row(changed)
            screen = self.app.screen
            if isinstance(screen, FleetTargetScreen) and screen.row.name == changed:
                screen.refresh_log()
        from migration.fleet import TargetEvent

        self._refresh_status(keys=not isinstance(message.event, TargetEvent))  # a step's event changes no key

    def operation_ended(self, operation) -> None:
        super().operation_ended(operation)
        self._refresh_status()

    def worker_failed(self, worker) -> None:
        if worker.group == "operation" and self.board is not None:
            self.board.finished = None
            self.board.started = False
            self.query_one("#fleet-hint", Static).update("The fleet run stopped unexpectedly; press s to start again.")
            self.refresh_bindings()

    # -- keys --------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        board = self.board
        running = self.operation_running
        held = board.held if board is not None else None
        if action == "start":
            return board is not None and bool(board.rows) and not running
        if action == "next_wave":
            return running and held is not None and held.after_wave is not None
        if action == "pause":
            return running and held is None and board is not None and not board.pausing
        if action == "resume":
            return running and board is not None and (board.pausing or (
                held is not None and held.after_wave is None))
        if action == "cancel_all":
            return running
        return super().check_action(action, parameters)

    def action_start(self) -> None:
        if self.check_action("start", ()) is not True:
            return
        from ..dialogs.confirm import ConfirmDialog

        assert self.fleet is not None
        fleet = self.fleet
        first = fleet.waves[0]
        size = sum(t.wave == first for t in fleet.targets)
        options = self.fleet_options
        message = (f"{_plural(len(fleet.targets), 'target')} in {_plural(len(fleet.waves), 'wave')} "
                   f"({', '.join(fleet.waves)}) will be changed: each is checked, backed up, then migrated (one that "
                   f"is already migrated is left as it is). Wave {first} ({_plural(size, 'target')}) starts now, up "
                   f"to {options.concurrency} at once; after each wave the fleet stops until you press n. "
                   + ("With --keep-going a target that fails does not stop the later waves." if options.keep_going
                      else "A target that fails stops the later waves."))
        self.app.push_screen(ConfirmDialog(f"Migrate {_plural(len(fleet.targets), 'database')}?", message,
                                           yes=f"Yes, start wave {first}", no="No"), self._start_answered)

    def _start_answered(self, yes: bool | None) -> None:
        if not yes or self.operation_running or self.board is None:
            return
        from migration.audit import AuditLog
        from migration.errors import MigrateError, explain

        try:
            log = AuditLog(self.app.audit_log_path).ensure()  # as `fleet run`: nothing starts unrecorded
        except Exception as exc:  # noqa: BLE001 - shown with a fix, never a traceback
            from ..dialogs.error import ErrorDialog

            error = exc.error if isinstance(exc, MigrateError) else explain(exc)
            self.app.push_screen(ErrorDialog("Nothing was started", error))
            return
        self.board.start()
        for name in self.board.rows:
            self._refresh_row(name)
        self.run_operation(lambda emit: self._build(emit, log))
        self._refresh_status()

    def _build(self, emit, log):
        from migration.fleet import FleetRun

        options, fleet = self.app.options, self.fleet_options
        return FleetRun(self.fleet, "run", emit, concurrency=fleet.concurrency, keep_going=fleet.keep_going,
                        wave_by_wave=True, audit=log, backup=options.backup, drill=options.drill,
                        rollback=options.rollback)

    def action_next_wave(self) -> None:
        if self.check_action("next_wave", ()) is not True:
            return
        from ..dialogs.confirm import ConfirmDialog

        assert self.board is not None and self.board.held is not None
        held = self.board.held
        self.app.push_screen(ConfirmDialog(
            f"Start wave {held.wave}?",
            f"{_plural(len(held.waiting), 'target')} ({', '.join(held.waiting)}) will be checked, backed up and "
            "migrated.", yes=f"Yes, start wave {held.wave}", no="No"), self._go_answered)

    def _go_answered(self, yes: bool | None) -> None:
        if yes and self.check_action("next_wave", ()) is True:
            self._go()

    def _go(self) -> None:
        assert self.board is not None
        self.board.held, self.board.pausing = None, False
        self.operation.go()  # type: ignore[attr-defined] - the screen's operation is its FleetRun
        self._refresh_status()

    def action_pause(self) -> None:
        if self.check_action("pause", ()) is not True:
            return
        assert self.board is not None
        self.board.pausing = True
        self.operation.hold()  # type: ignore[attr-defined] - the screen's operation is its FleetRun
        self._refresh_status()

    def action_resume(self) -> None:
        if self.check_action("resume", ()) is True:
            self._go()

    def action_cancel_all(self) -> None:
        if self.check_action("cancel_all", ()) is not True:
            return
        from ..dialogs.confirm import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel_operation()

        self.app.push_screen(ConfirmDialog(
            "Cancel every running target?",
            "Each running target is cancelled and rolled back by the engine (a migration that has already "
            "committed stays done); no other target starts. Targets that finished stay as they are.",
            yes="Yes, cancel all", no="No, keep going"), answered)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.board is not None and event.row_key.value in self.board.rows:
            self.app.push_screen(FleetTargetScreen(self.board.rows[event.row_key.value]))


class FleetTargetScreen(WizardScreen):
    """One target of the fleet, read-only: its state and its log lines so far (updated while it runs)."""

    CSS_PATH = "fleet.tcss"
    BINDINGS = [Binding("escape,b", "app.pop_screen", "Back"), Binding("q", "app.quit", "Quit")]
    BODY = "#fleet-log"

    def __init__(self, row: TargetRow) -> None:
        super().__init__(id="fleet-target")
        self.row = row

    def compose(self) -> ComposeResult:
        yield TopBar()
        yield Prose(f"{self.row.name} (wave {self.row.wave}): {self.row.url}", id="fleet-target-title",
                    markup=False)
        yield Static("", id="fleet-target-state", markup=False)
        with VerticalScroll(id="fleet-log"):
            yield Prose("", id="fleet-log-text", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"Fleet target {self.row.name}"
        self.refresh_log()

    def refresh_log(self) -> None:
        self.query_one("#fleet-target-state", Static).update(Text(self.row.state, style=STYLES.get(self.row.kind, "")))
        text = "\n".join(self.row.log) or "Nothing yet: this target has not started."
        self.query_one("#fleet-log-text", Static).update(text)
        self.call_after_refresh(self.query_one("#fleet-log", VerticalScroll).scroll_end, animate=False)
