"""Backup: a verified pg_dump of the whole database before the migration, with live progress.

The engine's :class:`migration.backup.Backup` runs through :meth:`WizardScreen.run_operation`; its
events (progress, verifying, finished) arrive as EngineEvent. Escape asks, then cancels (pg_dump
stops, the partial file is deleted). Skip needs a confirmation that says what is at risk.
Once the backup is verified, the drill and the rehearsal run below it (:mod:`tui.widgets.drill_panel`);
Continue opens the Migrate screen only after they pass or were skipped knowingly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Footer, ProgressBar, Static

from ..dialogs.confirm import ConfirmDialog
from ..messages import EngineEvent
from ..widgets.copy_line import CopyLine
from ..widgets.drill_panel import ProofPanels
from ..widgets.panel import Panel
from ..widgets.prose import GLUE, Prose
from ..widgets.top_bar import TopBar
from .base import WizardScreen

if TYPE_CHECKING:
    from migration.events import BackupFinished
    from migration.options import BackupOptions, DrillOptions
    from migration.settings import Settings

SKIP_RISK = (
    "Without a backup there is no copy of {database} to go back to if anything goes wrong "
    "during or after the migration. The migration only adds a table inside one transaction, "
    "but the guide recommends a backup before any change to production."
)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class BackupScreen(WizardScreen):
    """The backup as a panel in a scrollable body: more panels (e.g. a restore drill) are added by
    yielding them from :meth:`compose_panels`."""

    CSS_PATH = "backup.tcss"
    BINDINGS = [
        Binding("enter", "continue", "Continue", key_display="Enter", priority=True),
        Binding("escape", "cancel_backup", "Cancel"),  # while pg_dump or the drill runs; the next one otherwise
        Binding("escape", "back", "Back"),
        Binding("ctrl+c", "cancel_backup", "Cancel", show=False, priority=True),
        Binding("k", "skip", "Skip"),
        Binding("r", "retry", "Retry"),
        Binding("d", "drill", "Drill"),
        Binding("x", "skip_proof", "Skip drill"),
        Binding("q", "app.quit", "Quit"),
    ]
    step = "backup"
    BODY = "#backup-body"

    def __init__(self, settings: "Settings", *, tool=None, options: "BackupOptions | None" = None,
                 backup_factory: Callable | None = None, next_screen: Callable | None = None,
                 drill: "DrillOptions | None" = None) -> None:
        """``backup_factory(settings, emit)`` returns an object with run() and cancel() (default: the engine's
        Backup with ``options``); ``next_screen()`` builds the screen Continue / Skip opens (default: Migrate)."""
        super().__init__(id="backup")
        self.settings = settings
        self.tool = tool
        self.options = options
        self._factory = backup_factory
        self._next_screen = next_screen
        self._drill_options = drill  # None: the app's (the drill and rehearsal run below the size limit)
        self.result: BackupFinished | None = None
        self.running = False
        self.cancelling = False
        self.skipped = False

    def compose(self) -> ComposeResult:
        yield TopBar()
        with VerticalScroll(id="backup-body"):
            yield from self.compose_panels()
        with Horizontal(id="backup-actions"):
            yield Button("Continue to migrate (Enter)", id="continue", variant="primary", action="screen.continue",
                         compact=True)
            yield Button("Cancel (Esc)", id="cancel", variant="error", action="screen.cancel_backup", compact=True)
            yield Button("Retry (r)", id="retry", action="screen.retry", compact=True)
            yield Button("Skip backup (k)", id="skip", variant="warning", action="screen.skip", compact=True)
            yield Button("Back (Esc)", id="back", action="screen.back", compact=True)
        yield Footer(compact=True)

    def compose_panels(self) -> ComposeResult:
        """The panels of the body, top to bottom."""
        yield Panel(
            "Backup current database (recommended by the guide)",
            Prose(f"Target: {self.settings.masked_url}", id="backup-target", markup=False),
            Prose("Preparing pg_dump…", id="backup-file", markup=False),
            ProgressBar(total=100, show_eta=False, id="backup-progress"),
            Prose("", id="backup-status", markup=False),
            CopyLine("", label="File    ", what="backup's path", id="backup-path"),
            CopyLine("", label="SHA-256 ", what="backup's SHA-256", id="backup-sha256"),
            CopyLine("", label="Manifest", what="manifest's path", id="backup-manifest"),
            Prose("", id="backup-result", markup=False),
            id="backup-panel")
        yield ProofPanels(self.settings, self._drill_options, id="proof")

    def on_mount(self) -> None:
        self.sub_title = "Backup"
        self.start()

    # -- running -------------------------------------------------------------------------
    def start(self) -> None:
        self.result = None
        self.running, self.cancelling = True, False
        self.query_one("#backup-progress", ProgressBar).update(progress=0)
        self.query_one("#backup-result", Static).update("")
        for line in self.query("#backup-panel CopyLine").results(CopyLine):
            line.set_text("")
        self.query_one("#backup-panel", Panel).set_state("")
        self.query_one("#backup-status", Static).update("Reading the database size…")
        self._buttons()
        if self.run_operation(self._build, self.settings, audit="backup") is None:
            self.running = False
            self.query_one("#backup-status", Static).update("Nothing was started: the audit log cannot be written.")
            self._buttons()

    def _build(self, emit):
        if self._factory is not None:
            return self._factory(self.settings, emit)
        from migration.backup import Backup

        return Backup(self.settings, emit, self.options or self.app.options.backup, tool=self.tool)

    def worker_failed(self, worker) -> None:
        if worker.group == "operation" and self.running:
            self.running = False
            self.query_one("#backup-status", Static).update("The backup stopped unexpectedly; retry or skip.")
            self._buttons()

    def on_engine_event(self, message: EngineEvent) -> None:
        from migration.backup import human_bytes
        from migration.events import BackupFinished, BackupProgress, BackupStarted, BackupVerifying

        event = message.event
        status = self.query_one("#backup-status", Static)
        if isinstance(event, BackupStarted):
            for path in event.removed:
                self.app.notify(f"Removed a temporary file left by a killed run: {path}", timeout=10)
            self.query_one("#backup-file", Static).update(
                f"pg_dump {event.tool.version} → {event.path}\n"
                f"{event.database}: {human_bytes(event.database_bytes)}, {event.tables_total} tables, "
                f"{event.format} format")
        elif isinstance(event, BackupProgress):
            self.query_one("#backup-progress", ProgressBar).update(progress=round(event.fraction * 100, 1))
            eta = "--:--" if self.app.deterministic else _clock(event.eta_s)
            status.update(f"Tables {event.tables_done}/{event.tables_total} · {human_bytes(event.bytes_written)} "
                          f"written · ETA{GLUE}{eta}\nCurrent table: {event.current_table or '—'}")
        elif isinstance(event, BackupVerifying):
            self.query_one("#backup-progress", ProgressBar).update(progress=100)
            status.update(f"Verifying: {event.method}…")
        elif isinstance(event, BackupFinished):
            self._finished(event, human_bytes)

    def _finished(self, result: "BackupFinished", human_bytes) -> None:
        self.result = result
        self.running = self.cancelling = False
        box = self.query_one("#backup-result", Static)
        panel = self.query_one("#backup-panel", Panel)
        journey = self.app.journey
        if result.ok:
            took = "" if self.app.deterministic else f" in {result.elapsed_s:.1f} s"
            self.query_one("#backup-status", Static).update(f"✓ Backup written and verified{took}")
            self.query_one("#backup-path", CopyLine).set_text(str(result.path))
            self.query_one("#backup-sha256", CopyLine).set_text(str(result.sha256))
            self.query_one("#backup-manifest", CopyLine).set_text(str(result.manifest))
            box.update(f"{human_bytes(result.size)} ({result.size:,} bytes). c copies the path (Tab: the others).")
            panel.set_state("success")
            journey.backup, journey.backup_skipped = result, False
            self.mark_step("done")
            self.query_one(ProofPanels).start(result)
        else:
            cancelled = result.outcome.value == "cancelled"
            self.query_one("#backup-status", Static).update(f"{'⏹' if cancelled else '✗'} {result.message}")
            text = Text()
            if result.error is not None and not cancelled:
                for line in result.error.lines():
                    text.append(line + "\n")
            text.append("Retry (r), skip the backup (k), or go back (Esc).")
            box.update(text)
            panel.set_state("warning" if cancelled else "error")
            self.mark_step("failed")
        self._buttons()

    def on_proof_panels_changed(self, message: ProofPanels.Changed) -> None:
        self._buttons()

    @property
    def may_continue(self) -> bool:
        """The backup is verified and its proof passed, was skipped knowingly, or is off for this size."""
        proof = self.query_one(ProofPanels)
        return self.result is not None and self.result.ok and (proof.ready or proof.needs_consent)

    @property
    def busy(self) -> bool:
        return self.running or self.query_one(ProofPanels).running

    def _buttons(self) -> None:
        done_ok = self.result is not None and self.result.ok
        self.query_one("#continue").display = self.may_continue
        self.query_one("#cancel").display = self.busy
        self.query_one("#back").display = not self.busy
        self.query_one("#retry").display = not self.running and not done_ok
        self.query_one("#skip").display = not done_ok
        for line in self.query("#backup-panel CopyLine").results(CopyLine):
            line.display = done_ok
        # While the drill has not passed, the body (Enter does nothing there; d, x and Esc say what does).
        focus = "#continue" if self.may_continue else ("#cancel" if self.busy else (
            "#backup-body" if done_ok else "#retry"))
        self.query_one(focus).focus()
        self.refresh_bindings()

    # -- actions ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        done_ok = self.result is not None and self.result.ok
        proof = self.query_one(ProofPanels)
        if action == "continue":
            return self.may_continue and self.enter_is_free("continue")
        if action == "drill":  # run, or run again, the drill (and the rehearsal)
            return done_ok and not proof.running and proof.state != "passed"
        if action == "skip_proof":
            return done_ok and not proof.ready
        if action == "cancel_backup":  # shown while pg_dump or the drill runs (greyed while being cancelled)
            if proof.running:
                return True
            return (None if self.cancelling else True) if self.running else False
        if action == "back":
            return not self.busy
        if action == "retry":  # hidden unless the backup failed or was cancelled
            return not self.running and not done_ok
        if action == "skip":
            return not done_ok
        return super().check_action(action, parameters)

    def action_continue(self) -> None:
        proof = self.query_one(ProofPanels)
        if self.result is not None and self.result.ok and proof.needs_consent:
            proof.skip(then=self._go_on)  # the drill was off for this size: continuing skips it, knowingly
        elif self.result is not None and self.result.ok and proof.ready:
            self._go_on()

    def action_drill(self) -> None:
        self.query_one(ProofPanels).drill()

    def action_skip_proof(self) -> None:
        self.query_one(ProofPanels).skip()

    def _go_on(self) -> None:
        if self._next_screen is not None:
            self.app.push_screen(self._next_screen())
            return
        from .migrate import MigrateScreen

        self.app.push_screen(MigrateScreen(self.settings))

    def action_retry(self) -> None:
        if not self.running and not (self.result and self.result.ok):
            self.start()

    def action_back(self) -> None:
        if not self.busy:
            self.app.pop_screen()

    def action_cancel_backup(self) -> None:
        if not self.running and self.query_one(ProofPanels).running:
            self.query_one(ProofPanels).cancel()
            return
        if not self.running or self.cancelling:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel_now()

        self.app.push_screen(ConfirmDialog(
            "Cancel the backup?", "pg_dump is stopped and the partial file is deleted. Nothing in the database "
            "changes.", yes="Yes, cancel", no="No, keep going"), answered)

    def cancel_now(self) -> None:
        if self.running and not self.cancelling:
            self.cancelling = True
            self.query_one("#backup-status", Static).update("⏹  Cancelling: stopping pg_dump…")
            self.refresh_bindings()
            self.cancel_operation()  # off the UI thread

    def action_skip(self) -> None:
        if self.result is not None and self.result.ok:
            return
        database = self.settings.target["dbname"]

        def answered(yes: bool | None) -> None:
            if yes:
                if self.running:
                    self.cancel_now()
                self.skipped = True
                self.app.journey.backup, self.app.journey.backup_skipped = None, True
                self.mark_step("skipped")
                self.app.notify("Backup skipped: no copy of the database was made.", severity="warning")
                self._go_on()

        self.app.push_screen(ConfirmDialog(
            "Skip the backup?", SKIP_RISK.format(database=database), yes="Yes, skip the backup",
            no="No, make the backup"), answered)
