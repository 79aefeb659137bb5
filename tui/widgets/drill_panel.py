"""The Backup screen's proof of the backup: the restore drill, then the rehearsal of the migration on the copy.

:class:`ProofPanels` starts once the backup is verified (:meth:`ProofPanels.start`). The drill
(:class:`migration.drill.drill.Drill`) restores it into a throwaway PostgreSQL and compares it
with the source — live progress (tables, rows, bytes), then the comparison table; the rehearsal
(:class:`migration.drill.rehearsal.Rehearsal`) runs the guide's eight steps, the rollback and the
restore of its safety copy on that copy — each with its timing. Both run through the screen's
:meth:`~tui.screens.base.WizardScreen.run_operation` with this widget as the events' target, so
they are recorded in the audit log and cancelled with the screen. Either can be cancelled
(Escape), retried (d) or skipped knowingly (x, a confirmation that states the risk, recorded in
the audit log and the backup's manifest). :attr:`ready` says whether production may go on: both
passed, or what did not was skipped knowingly. Every change posts :class:`ProofPanels.Changed`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import ProgressBar, Static

from ..messages import EngineEvent

if TYPE_CHECKING:
    from migration.options import DrillOptions
    from migration.settings import Settings

DRILL_RISK = ("The backup was verified (sha256, complete) but not restored: if it does not load (a missing "
              "extension, a role, a dump taken with the wrong tool), you find out only when you need it.")
REHEARSAL_RISK = "The migration and its rollback were not tried on a copy of this database: production is the first."


class ProofPanels(Vertical):
    DEFAULT_CSS = """
    ProofPanels { height: auto; display: none; }
    ProofPanels.-shown { display: block; }
    ProofPanels .proof-title { text-style: bold; margin: 1 0 0 0; }
    ProofPanels Static { height: auto; }
    ProofPanels ProgressBar { margin: 0 0 0 2; }
    ProofPanels .proof-result { padding: 0 1; margin: 0 0 0 0; }
    ProofPanels .proof-result.-success { border-left: thick $success; }
    ProofPanels .proof-result.-warning { border-left: thick $warning; }
    ProofPanels .proof-result.-error { border-left: thick $error; }
    """

    class Changed(Message):
        """The proof's state changed (running, passed, failed, skipped): the screen re-checks Continue."""

    def __init__(self, settings: "Settings", options: "DrillOptions | None" = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self._options = options
        self.backup: str | None = None
        self.database_bytes = 0
        self.state = "waiting"  # waiting, drilling, rehearsing, passed, failed, cancelled, skipped, off
        self.skipped_knowingly = False
        self.drill_result = None
        self.rehearsal_result = None
        self._drill = None  # the Drill operation (its kept copy goes to the rehearsal)
        self._lines: list[str] = []
        self._checks: list = []
        self._steps: list[str] = []

    @property
    def options(self) -> "DrillOptions":
        return self._options if self._options is not None else self.app.options.drill

    def compose(self) -> ComposeResult:
        yield Static("Restore drill: does the backup restore? (on a throwaway copy)", classes="proof-title",
                     markup=False)
        yield Static("", id="drill-status", markup=False)
        yield ProgressBar(total=100, show_eta=False, id="drill-progress")
        yield Static("", id="drill-table", markup=False)
        yield Static("", id="drill-result", classes="proof-result", markup=False)
        yield Static("Rehearsal: the migration, its rollback and restore, on the copy", classes="proof-title",
                     id="rehearsal-title", markup=False)
        yield Static("", id="rehearsal-steps", markup=False)
        yield Static("", id="rehearsal-result", classes="proof-result", markup=False)

    # -- what the screen asks ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state in ("drilling", "rehearsing")

    @property
    def ready(self) -> bool:
        """Production may go on: the proof passed, or what did not pass was skipped knowingly."""
        return self.state == "passed" or (self.state == "skipped" and self.skipped_knowingly)

    @property
    def needs_consent(self) -> bool:
        """The drill is off by default for this size: Continue asks first (then it counts as skipped knowingly)."""
        return self.state == "off"

    def start(self, result) -> None:
        """The backup is verified (a BackupFinished): drill it, unless the options say otherwise."""
        self.backup, self.database_bytes = result.path, result.database_bytes
        self.add_class("-shown")
        options = self.options
        if options.enabled is False:
            self._set("skipped", knowingly=True, follow=False)  # the backup's path stays in view
            self._show_skip("Skipped (--skip-drill)", DRILL_RISK)
            self._record_skip("drill", "--skip-drill", DRILL_RISK)
        elif not options.wanted(self.database_bytes):
            from migration.backup import human_bytes

            self._set("off", follow=False)
            self._show_skip(f"Not run by default: the database is {human_bytes(self.database_bytes)}, above the drill "
                            f"size limit {human_bytes(options.max_bytes)}. Press d to run it.", DRILL_RISK)
        else:
            self.drill()

    # -- running ------------------------------------------------------------------------------------------
    def drill(self) -> None:
        if self.running or self.backup is None:
            return
        self._reset()
        self._set("drilling")
        self.query_one("#drill-status", Static).update("Starting a throwaway PostgreSQL…")
        backup, options = self.backup, self.options

        def build(emit):
            from migration.drill.drill import Drill

            self._drill = Drill(self.settings, emit, backup, options, keep=options.rehearse)
            return self._drill

        if self.screen.run_operation(build, self.settings, audit="drill", target=self) is None:
            self._set("failed")
            self.query_one("#drill-status", Static).update("Nothing was started: the audit log cannot be written.")

    def _rehearse(self) -> None:
        drill = self._drill
        if drill is None or drill.copy is None:
            return
        copy, drill.copy = drill.copy, None  # the rehearsal owns it now, and removes it
        self._set("rehearsing")
        self.query_one("#rehearsal-steps", Static).update("Starting…")

        def build(emit):
            from migration.drill.rehearsal import Rehearsal

            return Rehearsal(self.settings, emit, copy, drill.manifest, drill.backup)

        if self.screen.run_operation(build, self.settings, audit="rehearse", target=self) is None:
            threading.Thread(target=copy.cleanup, name="migrate-tui-copy-cleanup").start()
            self._set("failed")

    def cancel(self) -> None:
        if self.running:
            self.query_one("#drill-status" if self.state == "drilling" else "#rehearsal-steps", Static).update(
                "⏹  Cancelling: stopping it and removing the throwaway copy…")
            self.screen.cancel_operation()

    def skip(self, then=None) -> None:
        """x: skip what has not passed (the drill and the rehearsal, or the rehearsal), after a confirmation;
        ``then()`` once it is skipped (Continue, when the drill was off for this size)."""
        from ..dialogs.confirm import ConfirmDialog

        if self.ready and not self.needs_consent:
            return
        only_rehearsal = self.drill_result is not None and self.drill_result.ok
        title = "Skip the rehearsal?" if only_rehearsal else "Skip the drill and the rehearsal?"
        risk = REHEARSAL_RISK if only_rehearsal else DRILL_RISK + " " + REHEARSAL_RISK

        def answered(yes: bool | None) -> None:
            if yes:
                self.skip_knowingly(only_rehearsal)
                if then is not None:
                    then()

        self.app.push_screen(ConfirmDialog(title, risk, yes="Yes, skip it", no="No, keep it"), answered)

    def skip_knowingly(self, only_rehearsal: bool = False) -> None:
        if self.running:
            self.screen.cancel_operation()
        self._set("skipped", knowingly=True)
        key, risk = ("rehearsal", REHEARSAL_RISK) if only_rehearsal else ("drill", DRILL_RISK)
        self._show_skip("Skipped knowingly", risk, rehearsal=only_rehearsal)
        self._record_skip(key, "skipped in the wizard", risk)

    # -- engine events ---------------------------------------------------------------------------------------
    def on_engine_event(self, message: EngineEvent) -> None:
        message.stop()
        if not self.screen.current(message):
            return
        from migration import events as ev

        event = message.event
        if isinstance(event, ev.DrillStarted):
            for path in event.removed:
                self.app.notify(f"Removed a throwaway server left by a killed run: {path}", timeout=10)
        elif isinstance(event, ev.DrillPhase):
            if event.elapsed_ms is not None and event.phase != "compare":
                self._lines.append(f"✓ {event.message}{self._took(event.elapsed_ms)}")
                self._show_lines()
        elif isinstance(event, ev.DrillProgress):
            self._progress(event)
        elif isinstance(event, ev.DrillTableChecked):
            self._checks.append(event.check)
            self._show_table()
        elif isinstance(event, ev.DrillCompared):
            self._compared(event)
        elif isinstance(event, ev.DrillFinished):
            self._drill_finished(event)
        elif isinstance(event, ev.Rehearsed):
            self._rehearsed(event.phase, event.event)
        elif isinstance(event, ev.RehearsalPhaseFinished):
            r = event.result
            mark = "✓" if r.ok else "✗"
            self._steps.append(f"{mark} {r.phase.capitalize()}: {r.message}{self._took(r.elapsed_ms)}")
            self.query_one("#rehearsal-steps", Static).update("\n".join(self._steps))
            self._follow()
        elif isinstance(event, ev.RehearsalFinished):
            self._rehearsal_finished(event)

    def _progress(self, event) -> None:
        from migration.backup import human_bytes

        self.query_one("#drill-progress", ProgressBar).update(progress=round(event.fraction * 100, 1))
        read = f" · {human_bytes(event.bytes_done)} read" if event.bytes_total else ""
        running = f"\nRestoring: {', '.join(event.running)}" if event.running else ""
        self.query_one("#drill-status", Static).update(
            f"Tables {event.tables_done}/{event.tables_total} · {event.rows_done:,}/{event.rows_total:,} rows"
            f"{read}{running}")

    def _compared(self, event) -> None:
        from migration.catalog_objects import describe_counts

        kinds = describe_counts(event.object_counts)
        if event.differences:
            self._lines.append(f"✗ Objects: {len(event.differences)} differ from the source's")
            self._lines += [f"    {d.describe()}" for d in event.differences[:8]]
        else:
            self._lines.append(f"✓ Objects as in the source: {kinds}")
        self._show_lines()

    def _drill_finished(self, result) -> None:
        self.drill_result = result
        self.query_one("#drill-progress", ProgressBar).update(progress=100)
        box = self.query_one("#drill-result", Static)
        if result.ok:
            box.update(f"✓ Drill passed: the backup restores{self._took(result.elapsed_ms)}")
            box.set_classes("proof-result -success")
            if result.kept:
                self._rehearse()
                return
            self._set("passed" if self.options.rehearse else "skipped", knowingly=not self.options.rehearse)
            if not self.options.rehearse:
                self._show_skip("Skipped (--skip-rehearsal)", REHEARSAL_RISK, rehearsal=True)
                self._record_skip("rehearsal", "--skip-rehearsal", REHEARSAL_RISK)
            return
        cancelled = result.outcome.value == "cancelled"
        text = f"{'⏹' if cancelled else '✗'} {result.message}"
        if result.error is not None and not cancelled:
            text += "\n" + "\n".join(result.error.lines())
        box.update(text + "\nRetry the drill (d), skip it knowingly (x), or go back (Esc).")
        box.set_classes("proof-result " + ("-warning" if cancelled else "-error"))
        self._set("cancelled" if cancelled else "failed")

    def _rehearsed(self, phase: str, event) -> None:
        from migration import events as ev

        if isinstance(event, ev.StepFinished):
            self._steps.append(f"  ✓ {event.step.value}/8 {event.step.title:<19}{self._took(event.elapsed_ms, ms=True)}")
        elif isinstance(event, ev.StepFailed):
            self._steps.append(f"  ✗ {event.step.value}/8 {event.step.title}: {event.error.message}")
        else:
            return
        self.query_one("#rehearsal-steps", Static).update("\n".join(self._steps))

    def _rehearsal_finished(self, result) -> None:
        self.rehearsal_result = result
        box = self.query_one("#rehearsal-result", Static)
        if result.ok:
            box.update(f"✓ Rehearsal passed on a copy of the database{self._took(result.elapsed_ms)}; the copy was "
                       "removed")
            box.set_classes("proof-result -success")
            self._set("passed")
            return
        cancelled = result.outcome.value == "cancelled"
        text = f"{'⏹' if cancelled else '✗'} {result.message}"
        if result.error is not None and not cancelled:
            text += "\n" + "\n".join(result.error.lines())
        box.update(text + "\nProduction is not migrated after a failed rehearsal: retry (d), skip it knowingly (x), "
                          "or go back (Esc).")
        box.set_classes("proof-result " + ("-warning" if cancelled else "-error"))
        self._set("cancelled" if cancelled else "failed")

    # -- helpers ----------------------------------------------------------------------------------------------
    def _took(self, elapsed_ms: float, ms: bool = False) -> str:
        if self.app.deterministic:
            return ""
        return f" ({elapsed_ms:.1f} ms)" if ms else f" ({elapsed_ms / 1000:.1f} s)"

    def _set(self, state: str, knowingly: bool = False, follow: bool = True) -> None:
        self.state = state
        self.skipped_knowingly = knowingly
        self.post_message(self.Changed())
        if follow:
            self._follow()

    def _reset(self) -> None:
        self._lines, self._checks, self._steps = [], [], []
        self.drill_result = self.rehearsal_result = None
        self.query_one("#drill-progress", ProgressBar).update(progress=0)
        self._show_drill_parts(True)
        for selector in ("#drill-table", "#drill-result", "#rehearsal-steps", "#rehearsal-result"):
            box = self.query_one(selector, Static)
            box.update("")
            box.set_classes("proof-result" if "result" in selector else "")

    def _follow(self) -> None:
        """Keep the newest line in view while the proof runs (the screen scrolls; 80x24 shows a part of it)."""
        parent = self.parent
        if parent is not None and hasattr(parent, "scroll_end"):
            self.call_after_refresh(parent.scroll_end, animate=False)

    def _show_lines(self) -> None:
        self.query_one("#drill-status", Static).update("\n".join(self._lines))
        self._follow()

    def _show_table(self) -> None:
        checks = sorted(self._checks, key=lambda c: c.table)
        width = max([len("table")] + [len(c.table) for c in checks])
        rows = [f"{'table'.ljust(width)}  {'in backup':>10}  {'restored':>10}"]
        for c in checks:
            restored = "missing" if c.rows_restored is None else f"{c.rows_restored:,}"
            rows.append(f"{c.table.ljust(width)}  {c.rows_backup:>10,}  {restored:>10}  {'✓' if c.ok else '✗'}")
        self.query_one("#drill-table", Static).update("\n".join(rows))

    def _show_drill_parts(self, shown: bool) -> None:
        """The progress bar and the rehearsal's lines: only once a drill has run (not for a skipped one)."""
        for selector in ("#drill-status", "#drill-progress", "#drill-table", "#rehearsal-title", "#rehearsal-steps",
                         "#rehearsal-result"):
            self.query_one(selector).display = shown

    def _show_skip(self, what: str, risk: str, rehearsal: bool = False) -> None:
        if not rehearsal and self.drill_result is None:
            self._show_drill_parts(False)  # nothing was restored: no bar at 0%, no rehearsal to speak of
        box = self.query_one("#rehearsal-result" if rehearsal else "#drill-result", Static)
        box.update(f"⚠ {what}\nRisk: {risk}")
        box.set_classes("proof-result -warning")

    def _record_skip(self, key: str, reason: str, risk: str) -> None:
        """The skip goes into the audit log and the backup's manifest (off the UI thread)."""
        backup, settings, log = self.backup, self.settings, self.app.audit_log_path

        def record() -> None:
            from pathlib import Path

            from migration.audit import AuditLog
            from migration.backup.manifest import record as in_manifest

            entry = {"skipped": True, "reason": reason, "risk": risk}
            try:
                AuditLog(log).record(settings, "drill" if key == "drill" else "rehearse",
                                     "DrillSkipped" if key == "drill" else "RehearsalSkipped", **entry)
                if backup:
                    in_manifest(Path(backup), key, entry, settings.secrets())
                    if key == "drill":
                        in_manifest(Path(backup), "rehearsal", entry, settings.secrets())
            except Exception:  # noqa: BLE001 - the skip is on the screen; the record is best effort
                pass

        self.run_worker(record, thread=True, group="proof-record", exit_on_error=False)

    def on_unmount(self) -> None:
        """A copy kept for a rehearsal that never started is removed (off the UI thread)."""
        drill = self._drill
        if drill is not None and drill.copy is not None:
            copy, drill.copy = drill.copy, None
            threading.Thread(target=copy.cleanup, name="migrate-tui-copy-cleanup").start()
