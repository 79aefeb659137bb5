"""Rollback: the preview, a typed confirmation, then live progress of the safety copy and the DROP.

The engine (:class:`migration.rollback.Rollback`, then :class:`migration.rollback.Restore` for
the undo) runs through :meth:`WizardScreen.run_operation`; its events arrive as EngineEvent and
are also appended to the audit log. The screen never builds SQL: what it shows comes from the
engine's preview. Its options are the command line's (``--lock-timeout`` and the others).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Checkbox, Footer, Header, Static
from textual.worker import Worker

from ..messages import EngineEvent
from ..dialogs.confirm_drop import ConfirmDropDialog, drop_summary
from .base import WizardScreen
from ..dialogs.error import error_content

if TYPE_CHECKING:
    from migration.events import Preview, RollbackFinished
    from migration.options import RollbackOptions
    from migration.settings import Settings

STEPS = (("copy", "Safety copy"), ("lock", "Lock"), ("drop", "Drop"), ("verify", "Verify"))
MARKS = {"pending": ("·", "dim"), "running": ("…", "$accent"), "done": ("✓", "$success"),
         "warning": ("⚠", "$warning"), "skipped": ("-", "dim"), "failed": ("✗", "$error")}


class RollbackPreviewLoaded(Message):
    def __init__(self, preview: "Preview | None", error=None) -> None:
        super().__init__()
        self.preview = preview
        self.error = error  # migration.errors.OperatorError


class RollbackScreen(WizardScreen):
    CSS_PATH = "rollback.tcss"
    BINDINGS = [
        Binding("d", "drop", "Roll back…"),
        Binding("r", "refresh", "Refresh preview"),
        Binding("l", "audit_log", "Audit log"),
        Binding("u", "restore", "Restore the copy"),
        Binding("escape", "escape", "Cancel / back"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, settings: "Settings", *, options: "RollbackOptions | None" = None,
                 audit_log: Path | None = None, reader=None) -> None:
        """``reader(settings) -> Preview`` replaces the catalog read (snapshot tests only)."""
        super().__init__(id="rollback")
        self.settings = settings
        self.reader = reader
        self.options = options
        self.audit_log = audit_log
        self.preview: Preview | None = None
        self.result: RollbackFinished | None = None
        self.running = False
        self.cancelling = False
        self.restoring = False
        self.restored = False  # the safety copy was restored: it is spent
        self.audit_path: Path | None = None  # where this screen's operations were recorded
        self.restore_note: str | None = None  # shown as the status once the preview is read again
        self._steps: dict[str, tuple[str, str]] = {}

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="rollback-body"):
            yield Static("Reading what a rollback would drop…", id="rollback-status")
            yield Static("", id="rollback-preview")
            yield Static("", id="rollback-sql")
            yield Checkbox("Take a safety copy of the table first (pg_dump, verified)", True, id="rollback-copy",
                           compact=True)
            yield Static("", id="rollback-progress")
            yield Static("", id="rollback-blockers")
            yield Static("", id="rollback-result")
        with Horizontal(id="rollback-actions"):
            yield Button("Roll back… (d)", id="rollback-drop", variant="error", action="screen.drop",
                         disabled=True, compact=True)
            yield Button("Cancel (Esc)", id="rollback-cancel", variant="warning", action="screen.cancel_rollback",
                         compact=True)
            yield Button("Restore the copy (u)", id="rollback-restore", variant="success", action="screen.restore",
                         compact=True)
            yield Button("Refresh (r)", id="rollback-refresh", action="screen.refresh", compact=True)
            yield Button("Audit log (l)", id="rollback-log", action="screen.audit_log", compact=True)
            yield Button("Back (Esc)", id="rollback-back", variant="primary", action="screen.escape",
                         compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Rollback"
        self.query_one("#rollback-cancel").display = False
        self.query_one("#rollback-progress").display = False
        self.query_one("#rollback-copy").display = False
        self.query_one("#rollback-restore").display = False
        self.action_refresh()

    # -- preview ----------------------------------------------------------------------
    def action_refresh(self) -> None:
        if self.running:
            return
        self.result = None
        self.restored = False
        self._status("Reading what a rollback would drop…", "busy")
        self.query_one("#rollback-result", Static).update("")
        self.query_one("#rollback-drop", Button).disabled = True
        self._load_preview()

    @work(thread=True, exit_on_error=False, group="rollback-preview", exclusive=True)
    def _load_preview(self) -> None:
        from migration.errors import explain
        from migration.rollback import read_preview

        timeout = self.rollback_options.lock_timeout_ms
        try:
            preview = (self.reader(self.settings) if self.reader is not None
                       else read_preview(self.settings, lock_timeout_ms=timeout))
        except Exception as exc:  # noqa: BLE001 - shown on the screen with a fix hint
            self.post_message(RollbackPreviewLoaded(None, explain(exc, secrets=self.settings.secrets(),
                                                                  schema=self.settings.schema)))
            return
        self.post_message(RollbackPreviewLoaded(preview))

    def on_rollback_preview_loaded(self, message: RollbackPreviewLoaded) -> None:
        message.stop()
        self.preview = p = message.preview
        body = self.query_one("#rollback-preview", Static)
        sql = self.query_one("#rollback-sql", Static)
        copy = self.query_one("#rollback-copy", Checkbox)
        if p is None:
            self._status("The database could not be read. Fix the problem below, then press r.", "error")
            body.update(error_content(message.error))
            sql.update("")
            copy.display = False
        elif self.restore_note is not None:
            self._status(self.restore_note, "ok")
            self.restore_note = None
            body.update(drop_summary(p, safety_copy=copy.value) if p.exists else Content(""))
            sql.update(Content.from_markup("[dim]SQL:[/dim] $s;", s=p.drop_sql) if p.exists else "")
            copy.display = sql.display = p.exists
        elif p.exists and (not p.is_table or not p.can_drop):  # never read from, never offered for a drop
            self._status(f"No rollback: {p.qualified} is not a table of yours.", "error")
            body.update(error_content(_not_ours(p)))
            sql.update("")
            copy.display = False
        elif not p.exists:
            self._status(f"Nothing to roll back: table {p.qualified} does not exist.", "ok")
            body.update(Content("The migration has not been applied to this schema (or was already rolled back)."))
            sql.update("")
            copy.display = False
        else:
            cascade = " It also removes the objects that depend on it." if p.dependents else ""
            self._status(f"A rollback drops {p.qualified} and everything in it.{cascade} Press d to continue.",
                         "warning")
            body.update(drop_summary(p, safety_copy=copy.value))
            sql.update(Content.from_markup("[dim]SQL:[/dim] $s;", s=p.drop_sql))
            copy.display = True
            sql.display = True
        self._update_buttons()

    @on(Checkbox.Changed, "#rollback-copy")
    def _copy_toggled(self, event: Checkbox.Changed) -> None:
        if self.preview is not None and self.preview.exists:
            self.query_one("#rollback-preview", Static).update(drop_summary(self.preview, event.value))

    # -- confirmation and run ---------------------------------------------------------------
    @property
    def rollback_options(self) -> "RollbackOptions":
        """The options this screen runs with: its own (tests), else the command line's."""
        return self.options or self.app.options.rollback

    def _droppable(self) -> bool:
        p = self.preview
        return p is not None and p.exists and p.is_table and p.can_drop

    def action_drop(self) -> None:
        p = self.preview
        if self.running or not self._droppable() or self.result is not None:
            return
        safety = self.query_one("#rollback-copy", Checkbox).value
        confirmed = p.dependent_keys

        def answered(yes: bool | None) -> None:
            if yes:
                self._start(confirmed, safety)

        self.app.push_screen(ConfirmDropDialog(p, safety_copy=safety), answered)

    def _start(self, confirmed: frozenset[str], safety: bool) -> None:
        from dataclasses import replace

        from migration.rollback import Rollback

        options = replace(self.rollback_options, table_backup=safety)
        started = self.run_operation(lambda emit: Rollback(self.settings, emit, options, confirmed=confirmed),
                                     self.settings, audit="rollback")
        if started is None:  # the audit log cannot be written: an error dialog says why
            self._status("The rollback did not start: the audit log cannot be written.", "error")
            return
        self.audit_path = self.app.audit_log_path
        self.running, self.cancelling = True, False
        self._steps = {key: ("pending", "") for key, _ in STEPS}
        self.query_one("#rollback-copy").display = False
        self.query_one("#rollback-sql").display = False
        self.query_one("#rollback-progress").display = True
        self._render_steps()
        self.call_after_refresh(self._scroll_to_end)
        self._status("Rolling back…", "busy")
        self._update_buttons()

    def worker_failed(self, worker: Worker) -> None:
        if worker.group == "operation":
            self.running = self.restoring = False
            self._status("The rollback stopped unexpectedly; see the error dialog. Its transaction was rolled back.",
                         "error")
            self._update_buttons()

    def action_cancel_rollback(self) -> None:
        if not self.running or self.cancelling:
            return
        self.cancelling = True
        self._status("Cancelling: stopping the DROP and rolling back…", "warning")
        self._update_buttons()
        self.cancel_operation()  # off the UI thread

    def action_quit(self) -> None:
        """q: leave the wizard; a running rollback is cancelled first (its transaction rolls back)."""
        self.app.action_quit()

    async def action_escape(self) -> None:
        if self.running:
            self.action_cancel_rollback()
        else:
            await self.app.run_action("back_to_target")

    def action_audit_log(self) -> None:
        from .audit_log import AuditLogScreen

        self.app.push_screen(AuditLogScreen(self.audit_path or self.audit_log or self.app.audit_log_path))

    # -- undo: restore the safety copy -----------------------------------------------------------
    def action_restore(self) -> None:
        if not self._can_restore():
            return
        from ..dialogs.confirm import ConfirmDialog

        copy = self.result.copy

        def answered(yes: bool | None) -> None:
            if yes:
                self._restore(copy.path)

        self.app.push_screen(ConfirmDialog(
            "Restore the table from the safety copy?",
            f"{copy.path} ({copy.rows} rows) is run in one transaction; the table, its rows, indexes and sequence "
            "come back exactly as they were copied" + (f", then the {len(copy.dependents)} object(s) dropped with it, "
                                                       "each in a transaction of its own." if copy.dependents else "."),
            yes="Restore", no="Not now", yes_variant="success"), answered)

    def _restore(self, path: str) -> None:
        from migration.rollback import Restore

        if self.run_operation(lambda emit: Restore(self.settings, path, emit), self.settings,
                              audit="restore") is None:
            return
        self.restoring = True
        self._status("Restoring the table from the safety copy…", "busy")
        self._update_buttons()

    def _restored(self, r) -> None:
        """The restore's RestoreFinished."""
        self.restoring = False
        self.restored = r.ok
        self._status(("✅ " if r.ok else "❌ ") + r.message, "ok" if r.ok else "error")
        if r.error is not None and not r.ok:
            self.query_one("#rollback-result", Static).update(error_content(r.error))
        if r.ok:  # the drop result and its restore hint are stale now: show the restore and read the table again
            parts = [Content.assemble(("✅ " + r.message, "bold $success"))]
            if self.audit_path is not None:
                parts.append(Content.from_markup("[dim]Recorded in the audit log $p (press l).[/dim]",
                                                 p=str(self.audit_path)))
            self.query_one("#rollback-result", Static).update(Content("\n\n").join(parts))
            self.query_one("#rollback-progress").display = False
            self.result = None  # restored stays True: the copy is spent
            self.restore_note = "✅ " + r.message
            self._load_preview()
        self._update_buttons()

    def _can_restore(self) -> bool:
        from migration.events import Outcome

        r = self.result
        return (r is not None and r.outcome is Outcome.SUCCESS and r.copy is not None
                and not self.restoring and not self.restored)

    # -- engine events -------------------------------------------------------------------------
    def on_engine_event(self, message: EngineEvent) -> None:
        from migration import events as ev

        message.stop()
        if not self.current(message):
            return
        e = message.event
        det = self.app.deterministic
        if isinstance(e, ev.SafetyCopyStarted):
            for path in e.removed:
                self.app.notify(f"Removed a temporary file left by a killed run: {path}", timeout=10)
            self._step("copy", "running", f"pg_dump → {e.path}")
        elif isinstance(e, ev.SafetyCopyFinished):
            c = e.copy
            self._step("copy", "done", f"{c.path} — {c.rows} rows, {c.size_bytes:,} bytes, verified; "
                       f"sha256 {c.sha256[:16]}…")
        elif isinstance(e, ev.SafetyCopySkipped):
            self._step("copy", "skipped", "no safety copy (turned off)")
        elif isinstance(e, ev.WaitingForLock):
            waited = "" if det else f", waiting {e.waited_ms / 1000:.1f} s"
            self._step("lock", "running", f"waiting for the lock (attempt {e.attempt}/{e.attempts}{waited}); "
                       "other sessions use the table:")
            self._blockers(e.blockers, det)
        elif isinstance(e, ev.LockTimedOut):
            retry = f"; retrying in {e.retry_in_s:.1f} s" if e.retry_in_s is not None else "; no retries left"
            self._step("lock", "warning", f"not granted within the lock timeout (attempt {e.attempt}/{e.attempts})"
                       f"{retry} — readers were not kept waiting")
            self._blockers(e.blockers, det)
        elif isinstance(e, ev.LockAcquired):
            self._step("lock", "done", f"lock acquired (attempt {e.attempt})")
            self._blockers((), det)
        elif isinstance(e, ev.Dropped):
            extra = f" — also dropped {len(e.dependents)} dependent object(s)" if e.dependents else ""
            self._step("drop", "done", e.statement + extra)
        elif isinstance(e, ev.Verified):
            self._step("verify", "done", f"{len(e.checks)} checks: the table, its indexes and sequence are gone")
        elif isinstance(e, ev.RollbackFinished):
            self._finished(e)
        elif isinstance(e, ev.RestoreFinished):
            self._restored(e)

    def _finished(self, result: "RollbackFinished") -> None:
        from migration.events import Outcome as O

        self.result = result
        self.running = self.cancelling = False
        for key, (state, text) in list(self._steps.items()):
            if state in ("running", "pending") and result.outcome is not O.SUCCESS:
                self._steps[key] = ("failed" if state == "running" else "skipped", text)
        self._render_steps()
        self._blockers((), True)
        kind = {O.SUCCESS: "ok", O.NOT_NEEDED: "ok", O.CANCELLED: "warning"}.get(result.outcome, "error")
        headline = {O.SUCCESS: "✅ ", O.NOT_NEEDED: "✅ ", O.CANCELLED: "⏹  "}.get(result.outcome, "❌ ")
        self._status(headline + result.message, kind)
        style = {"ok": "$success", "warning": "$warning"}.get(kind, "$error")
        parts: list[Content] = [Content.assemble((headline + result.message, f"bold {style}"))]
        if result.error is not None and result.outcome is not O.SUCCESS:
            parts.append(error_content(result.error))
        if result.copy is not None:
            parts.append(self._restore_hint(result.copy))
        if self.audit_path is not None:
            parts.append(Content.from_markup("[dim]Recorded in the audit log $p (press l).[/dim]",
                                             p=str(self.audit_path)))
        self.query_one("#rollback-result", Static).update(Content("\n\n").join(parts))
        if result.outcome is O.CHANGED:
            self.call_after_refresh(self.action_refresh)  # the preview is stale: show the new one
        self._update_buttons()
        self.query_one("#rollback-back", Button).focus()
        self.call_after_refresh(self._scroll_to_end)  # the outcome and the restore command in view

    def _restore_hint(self, copy) -> Content:
        """The restore command on lines of its own, broken only between words so it can be copied."""
        psql, _, _ = copy.restore_command.partition(' "$DATABASE_URL"')
        lines = [Content.from_markup("[b]To restore the table:[/b] press u here, or run in a shell:"),
                 Content('  psql "$DATABASE_URL" -v ON_ERROR_STOP=1 \\'),
                 Content(f"    -f {shlex.quote(copy.path)}")]
        if psql and psql != "psql":
            lines.append(Content.from_markup("[dim]where psql is:[/dim]\n  $p", p=psql))
        if self.settings.demo:
            lines.append(Content.from_markup(
                "[b $warning]Demo:[/] the demo database disappears when you quit, so restore with u here."))
        return Content("\n").join(lines)

    def _scroll_to_end(self) -> None:
        self.query_one("#rollback-body", VerticalScroll).scroll_end(animate=False)

    # -- helpers ------------------------------------------------------------------------------
    def _step(self, key: str, state: str, text: str) -> None:
        self._steps[key] = (state, text)
        self._render_steps()

    def _render_steps(self) -> None:
        lines = []
        for key, title in STEPS:
            state, text = self._steps.get(key, ("pending", ""))
            mark, style = MARKS[state]
            lines.append(Content.assemble((f"{mark} ", style), (f"{title:<12}", "bold"), text))
        self.query_one("#rollback-progress", Static).update(Content("\n").join(lines))

    def _blockers(self, blockers, deterministic: bool) -> None:
        if blockers:
            self.call_after_refresh(self._scroll_to_end)
        widget = self.query_one("#rollback-blockers", Static)
        lines = []
        for b in blockers:
            age = "" if deterministic or b.xact_age_s is None else f", transaction open {b.xact_age_s:.1f} s"
            lines.append(Content.from_markup("  • pid $pid [b]$app[/b] user $u, $s$age: [dim]$q[/dim]",
                                             pid=str(b.pid), app=b.application_name or "(no name)", u=b.user or "?",
                                             s=b.state or "?", age=age, q=b.query or "(no query)"))
        widget.update(Content("\n").join(lines))
        widget.set_class(bool(lines), "-shown")

    def _status(self, text: str, kind: str) -> None:
        status = self.query_one("#rollback-status", Static)
        status.update(Content(text))
        for k in ("busy", "ok", "warning", "error"):
            status.set_class(k == kind, f"-{k}")

    def _update_buttons(self) -> None:
        can_drop = not self.running and self.result is None and self._droppable()
        self.query_one("#rollback-drop", Button).disabled = not can_drop
        self.query_one("#rollback-drop").display = not self._nothing_to_drop()
        self.query_one("#rollback-cancel").display = self.running
        self.query_one("#rollback-cancel", Button).disabled = self.cancelling
        self.query_one("#rollback-refresh", Button).disabled = self.running
        self.query_one("#rollback-back", Button).disabled = self.running
        self.query_one("#rollback-restore").display = self._can_restore() or self.restoring
        self.query_one("#rollback-restore", Button).disabled = not self._can_restore()
        if can_drop:
            self.query_one("#rollback-drop", Button).focus()
        self.refresh_bindings()

    def _nothing_to_drop(self) -> bool:
        from migration.events import Outcome

        if self.running:
            return False
        if self.result is not None and self.result.outcome in (Outcome.SUCCESS, Outcome.NOT_NEEDED):
            return True
        return self.preview is not None and not self._droppable() and self.result is None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "drop":
            if self._nothing_to_drop():
                return False  # hidden: the table is gone (or never was)
            return True if (not self.running and self.result is None and self._droppable()) else None
        if action == "refresh":
            return None if self.running else True
        if action == "restore":
            return True if self._can_restore() else False  # hidden until there is a copy to restore
        return True

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()  # the button's own action= already ran


def _not_ours(p: "Preview"):
    """Why a relation named like the table is not offered for a rollback (never read, never dropped)."""
    from migration.rollback.preview import not_ours

    return not_ours(p, what="a rollback does not drop it")
