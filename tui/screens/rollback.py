"""Rollback: the preview, a typed confirmation, then live progress of the safety copy and the DROP.

The engine (:class:`migration.rollback.Rollback`, then :class:`migration.rollback.Restore` for
the undo) runs through :meth:`WizardScreen.run_operation`; its events arrive as EngineEvent and
are also appended to the audit log. The screen never builds SQL: what it shows comes from the
engine's preview. Its options are the command line's (``--lock-timeout`` and the others).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Checkbox, Footer, Static
from textual.worker import Worker

from ..dialogs.confirm_drop import ConfirmDropDialog, drop_summary
from ..dialogs.error import error_content
from ..messages import EngineEvent
from ..widgets.copy_line import CopyLine
from ..widgets.prose import Prose
from ..widgets.tick import Tick
from ..widgets.top_bar import TopBar
from .base import WizardScreen

if TYPE_CHECKING:
    from migration.events import Preview, RollbackFinished
    from migration.options import RollbackOptions
    from migration.settings import Settings

STEPS = (("copy", "Safety copy"), ("lock", "Lock"), ("drop", "Drop"), ("verify", "Verify"))
TITLE_WIDTH = 12
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
        Binding("d", "drop", "Roll back"),
        Binding("u", "restore", "Restore"),
        Binding("escape", "cancel_rollback", "Cancel"),  # while it runs; the next one otherwise
        Binding("escape", "back", "Back"),
        Binding("r", "refresh", "Refresh"),
        Binding("l", "audit_log", "Audit log"),
        Binding("q", "quit", "Quit"),
    ]
    BODY = "#rollback-body"

    def __init__(self, settings: "Settings", *, options: "RollbackOptions | None" = None,
                 audit_log: Path | None = None, reader=None, rollback_factory=None) -> None:
        """``reader(settings) -> Preview`` replaces the catalog read, ``rollback_factory(settings, emit, options,
        confirmed)`` the engine's Rollback (snapshot tests only: replayed events)."""
        super().__init__(id="rollback")
        self.settings = settings
        self.reader = reader
        self._factory = rollback_factory
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
        self.keep_status = False  # the next preview leaves the status (a failed rollback's headline) alone
        self.preview_after_result = False  # the preview was read again after a rollback that did not drop
        self._steps: dict[str, tuple[str, str]] = {}
        self._waiting: tuple = ()  # who the DROP waits for, shown under the Lock row

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield TopBar()
        with VerticalScroll(id="rollback-body"):
            yield Prose("Reading what a rollback would drop…", id="rollback-status", markup=False)
            yield Prose("", id="rollback-preview")
            yield Prose("", id="rollback-sql")
            yield Tick("Take a safety copy of the table first (pg_dump, verified)",
                       self.rollback_options.table_backup, id="rollback-copy", compact=True)
            yield Prose("", id="rollback-progress", hang=_step_hang)
            yield Prose("", id="rollback-result")
            yield CopyLine("", what="restore command", id="rollback-restore-command")
            yield Prose("", id="rollback-result-notes")
        with Horizontal(id="rollback-actions"):
            yield Button("Roll back… (d)", id="rollback-drop", variant="error", action="screen.drop", compact=True)
            yield Button("Cancel (Esc)", id="rollback-cancel", variant="warning", action="screen.cancel_rollback",
                         compact=True)
            yield Button("Restore the copy (u)", id="rollback-restore", variant="success", action="screen.restore",
                         compact=True)
            yield Button("Refresh (r)", id="rollback-refresh", action="screen.refresh", compact=True)
            yield Button("Audit log (l)", id="rollback-log", action="screen.audit_log", compact=True)
            yield Button("Back (Esc)", id="rollback-back", variant="primary", action="screen.back", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Rollback"
        self.query_one("#rollback-cancel").display = False
        self.query_one("#rollback-progress").display = False
        self.query_one("#rollback-copy").display = False
        self.query_one("#rollback-restore").display = False
        self.query_one("#rollback-restore-command").display = False
        self.action_refresh()

    # -- preview ----------------------------------------------------------------------
    def action_refresh(self) -> None:
        if self.running:
            return
        self.result = None
        self.restored = False
        self.preview = None
        self._status("Reading what a rollback would drop…", "busy")
        self._show_result(Content(""))
        self._update_buttons()
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
        keep, self.keep_status = self.keep_status, False
        if keep:  # after a rollback that did not drop: its headline stays, d is offered again on this preview
            self.preview_after_result = True
            status = self.query_one("#rollback-status", Static)
            saved = status.content
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
        if keep:
            status.update(saved)
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

    def _can_drop(self) -> bool:
        """d would do something: the preview allows a drop, nothing runs, and no rollback has dropped it yet
        (after one that did not, only on a preview read since)."""
        if self.running or self.restoring or not self._droppable():
            return False
        return self.result is None or (not self.result.ok and self.preview_after_result)

    def action_drop(self) -> None:
        p = self.preview
        if not self._can_drop():
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
        factory = self._factory or (lambda settings, emit, opts, deps: Rollback(settings, emit, opts, confirmed=deps))
        started = self.run_operation(lambda emit: factory(self.settings, emit, options, confirmed), self.settings,
                                     audit="rollback")
        if started is None:  # the audit log cannot be written: an error dialog says why
            self._status("The rollback did not start: the audit log cannot be written.", "error")
            return
        self.audit_path = self.app.audit_log_path
        self.running, self.cancelling = True, False
        self.result, self.preview_after_result = None, False
        self._show_result(Content(""))
        self._waiting = ()
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

    async def action_back(self) -> None:
        if not self.running:
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
        """The restore's RestoreFinished: said once, in the status line (the drop's result is stale now)."""
        self.restoring = False
        self.restored = r.ok
        self._status(("✅ " if r.ok else "❌ ") + r.message, "ok" if r.ok else "error")
        if not r.ok:
            self._show_result(error_content(r.error) if r.error is not None else Content(""), self._audit_note())
        else:  # read the table again; its preview says what is there now
            self._show_result(Content(""), self._audit_note())
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
            self._step("copy", "running", f"pg_dump →\n{e.path}")
        elif isinstance(e, ev.SafetyCopyFinished):
            c = e.copy
            self._step("copy", "done", f"{c.rows} rows, {c.size_bytes:,} bytes, verified; sha256 {c.sha256[:16]}…"
                       f"\n{c.path}")
        elif isinstance(e, ev.SafetyCopySkipped):
            self._step("copy", "skipped", "no safety copy (turned off)")
        elif isinstance(e, ev.WaitingForLock):
            waited = "" if det else f", waiting {e.waited_ms / 1000:.1f} s"
            self._waiting = e.blockers
            self._step("lock", "running", f"waiting for the lock (attempt {e.attempt}/{e.attempts}{waited}); "
                       "other sessions use the table:")
            self.call_after_refresh(self._scroll_to_end)
        elif isinstance(e, ev.LockTimedOut):
            retry = f"; retrying in {e.retry_in_s:.1f} s" if e.retry_in_s is not None else "; no retries left"
            self._waiting = e.blockers
            self._step("lock", "warning", f"not granted within the lock timeout (attempt {e.attempt}/{e.attempts})"
                       f"{retry} — readers were not kept waiting")
        elif isinstance(e, ev.LockAcquired):
            self._waiting = ()
            self._step("lock", "done", f"lock acquired (attempt {e.attempt})")
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
        if result.outcome is not O.FAILED:
            self._waiting = ()  # a failed one keeps who was in the way under the Lock row
        self._render_steps()
        kind = {O.SUCCESS: "ok", O.NOT_NEEDED: "ok", O.CANCELLED: "warning"}.get(result.outcome, "error")
        headline = {O.SUCCESS: "✅ ", O.NOT_NEEDED: "✅ ", O.CANCELLED: "⏹  "}.get(result.outcome, "❌ ")
        self._status(headline + result.message, kind)
        parts: list[Content] = []
        if result.error is not None and result.outcome is not O.SUCCESS:
            parts.append(error_content(result.error))
        notes: list[Content] = []
        if result.copy is not None and result.outcome is O.SUCCESS:
            parts.append(Content.from_markup("[b]To restore the table:[/b] press u here, or run this in a shell "
                                             "(c copies it):"))
            self.query_one("#rollback-restore-command", CopyLine).set_text(shell_lines(result.copy.restore_command))
            if self.settings.demo:
                notes.append(Content.from_markup("[b $warning]Demo:[/] the demo database disappears when you quit, "
                                                 "so restore with u here."))
        elif result.copy is not None:  # nothing was dropped: nothing to restore
            parts.append(Content.from_markup(
                "The safety copy $p was kept; the table was not dropped, so there is nothing to restore.",
                p=result.copy.path))
        notes.append(self._audit_note())
        self._show_result(Content("\n\n").join(parts), *notes)
        if result.outcome not in (O.SUCCESS, O.NOT_NEEDED):
            # Nothing was dropped: read the table again so d works on what is there now.
            self.keep_status = True
            self._load_preview()
        self._update_buttons()
        self.query_one("#rollback-back", Button).focus()
        self.call_after_refresh(self._scroll_to_end)  # the outcome and the restore command in view

    def _audit_note(self) -> Content:
        if self.audit_path is None:
            return Content("")
        return Content.from_markup("[dim]Recorded in the audit log $p (press l).[/dim]", p=str(self.audit_path))

    def _show_result(self, body: Content, *notes: Content) -> None:
        """The outcome's explanation, the restore command (when there is one to run) and notes."""
        self.query_one("#rollback-result", Static).update(body)
        command = self.query_one("#rollback-restore-command", CopyLine)
        command.display = self._can_restore() and bool(command.text)
        shown = [n for n in notes if n.plain]
        self.query_one("#rollback-result-notes", Static).update(Content("\n\n").join(shown))

    def _scroll_to_end(self) -> None:
        self.query_one("#rollback-body", VerticalScroll).scroll_end(animate=False)

    # -- helpers ------------------------------------------------------------------------------
    def _step(self, key: str, state: str, text: str) -> None:
        self._steps[key] = (state, text)
        self._render_steps()

    def _render_steps(self) -> None:
        lines = []
        det = self.app.deterministic
        for key, title in STEPS:
            state, text = self._steps.get(key, ("pending", ""))
            mark, style = MARKS[state]
            first, *more = text.split("\n")  # more: a path, on a line of its own under the step
            lines.append(Content.assemble((f"{mark} ", style), (f"{title:<{TITLE_WIDTH}}", "bold"), first))
            lines.extend(Content(f"    {extra}") for extra in more)
            if key == "lock":  # who is in the way: under the step it blocks
                lines.extend(_blocker_lines(self._waiting, det))
        self.query_one("#rollback-progress", Static).update(Content("\n").join(lines))

    def _status(self, text: str, kind: str) -> None:
        status = self.query_one("#rollback-status", Static)
        status.update(Content(text))
        for k in ("busy", "ok", "warning", "error"):
            status.set_class(k == kind, f"-{k}")

    def _update_buttons(self) -> None:
        can_drop = self._can_drop()
        self.query_one("#rollback-drop").display = can_drop  # offered only when d would drop
        self.query_one("#rollback-cancel").display = self.running
        self.query_one("#rollback-cancel", Button).disabled = self.cancelling
        self.query_one("#rollback-back").display = not self.running
        self.query_one("#rollback-refresh", Button).disabled = self.running or self.restoring
        self.query_one("#rollback-restore").display = self._can_restore() or self.restoring
        self.query_one("#rollback-restore", Button).disabled = not self._can_restore()
        command = self.query_one("#rollback-restore-command", CopyLine)
        command.display = self._can_restore() and bool(command.text)
        if can_drop and self.result is None:  # after a failed one the focus stays on Back
            self.query_one("#rollback-drop", Button).focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "drop":
            return self._can_drop()  # hidden unless it would drop
        if action == "refresh":
            return None if self.running or self.restoring else True
        if action == "restore":
            return self._can_restore()  # hidden until there is a copy to restore
        if action == "cancel_rollback":
            return (None if self.cancelling else True) if self.running else False
        if action == "back":
            return not self.running
        return super().check_action(action, parameters)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()  # the button's own action= already ran


def shell_lines(command: str) -> str:
    """The restore command as shell lines joined by backslash-newline, each short enough to stay whole at
    80 columns (the psql binary, the connection, the file); copied as it is shown, it runs as one command."""
    psql, marker, rest = command.partition(' "$DATABASE_URL"')
    options, flag, path = rest.partition(" -f ")
    if not marker or not flag:
        return command
    return " \\\n".join([psql, '"$DATABASE_URL"' + options, f"-f {path}"])


def _step_hang(line: str) -> int | None:
    """A step's row wraps under its text (past the mark and the title); other lines by their list marker."""
    return 2 + TITLE_WIDTH if line[:1] in {mark for mark, _ in MARKS.values()} else None


def _blocker_lines(blockers, deterministic: bool) -> list[Content]:
    """The sessions in the way, each with what the operator's role may not see and how to see it."""
    lines = []
    for b in blockers:
        holds = f", holds {b.holds}" if b.holds else ""
        head = Content.from_markup("  • pid $pid [b]$app[/b] user $u$h", pid=str(b.pid),
                                   app=b.application_name or "(no name)", u=b.user or "?", h=holds)
        if b.hidden:
            lines.append(head + Content.from_markup(" — [i]$n[/i]", n=b.privilege_note))
            continue
        if b.xact_age_s is None:
            age = ", no transaction"
        else:
            age = "" if deterministic else f", transaction open {b.xact_age_s:.1f} s"
        lines.append(head + Content.from_markup(", $s$age: [dim]$q[/dim]", s=b.state or "?", age=age,
                                                q=b.query or "(no query)"))
    return lines


def _not_ours(p: "Preview"):
    """Why a relation named like the table is not offered for a rollback (never read, never dropped)."""
    from migration.rollback.preview import not_ours

    return not_ours(p, what="a rollback does not drop it")
