"""Post-migration: the guide's "Post-Migration Steps", done in the wizard.

1. Verify Migration Success — the engine's :class:`migration.verify.Verify` (read-only) through
   :meth:`WizardScreen.run_operation`: the guide's query and ``\\d database_backups``, each line ✓/✗.
2. Add Environment Variables — ``g`` writes a random CRON_SECRET into the .env in use
   (:func:`migration.cron_secret.add_cron_secret`); an existing one is replaced only after an explicit
   "Replace"; the value is never shown (only its last four characters).
3. Deploy Application and 4. Test Backup System — the guide's steps as boxes the operator ticks.
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
from textual.widgets import Button, Checkbox, Footer

from ..dialogs.confirm import ConfirmDialog
from ..dialogs.error import error_content
from ..messages import EngineEvent
from ..widgets.copy_line import CopyLine
from ..widgets.panel import Panel
from ..widgets.prose import Prose
from ..widgets.tick import Tick
from ..widgets.top_bar import TopBar
from .base import WizardScreen

if TYPE_CHECKING:
    from migration.settings import Settings

SECTIONS = (("Column", "Columns"), ("Index", "Indexes"), ("Constraint", "Constraints"), ("Sequence", "Sequence"))


class SecretRead(Message):
    """What the .env holds now: (set, line), or the error that keeps it from being read or written."""

    def __init__(self, state: tuple[bool, int] | None, error=None, written=None) -> None:
        super().__init__()
        self.state, self.error, self.written = state, error, written


class PostMigrationScreen(WizardScreen):
    CSS_PATH = "post_migration.tcss"
    BINDINGS = [
        Binding("v", "verify", "Verify again"),
        Binding("g", "cron_secret", "CRON_SECRET"),
        Binding("escape", "app.pop_screen", "Back"),
        Binding("t", "app.back_to_target", "Target"),
        Binding("q", "app.quit", "Quit"),
    ]
    step = "after"
    BODY = "#post-body"

    def __init__(self, settings: "Settings", *, verify_factory=None) -> None:
        """``verify_factory(settings, emit)`` replaces the engine's Verify (snapshot tests: replayed events)."""
        super().__init__(id="post-migration")
        from migration.cron_secret import env_path

        self.settings = settings
        self._factory = verify_factory
        self.env_path: Path = env_path(None, settings.env_file)
        self.verified = None  # the last VerifyFinished
        self.secret: tuple[bool, int] | None = None  # (set, line) in the .env, once read
        self.writing = False

    def compose(self) -> ComposeResult:
        from migration.guide import DEPLOY_STEP, TEST_STEPS
        from migration.verify import guide_query

        yield TopBar()
        with VerticalScroll(id="post-body"):
            yield Panel(
                "1. Verify Migration Success",
                Prose("The guide's query (c copies it), then \\d database_backups read from the catalog and "
                      "checked against the guide's definition:", markup=False),
                CopyLine(guide_query(self.settings.schema), what="guide's query", id="post-query"),
                Prose("Reading the catalog…", id="post-listed", markup=False),
                Prose("", id="post-describe"),
                Prose("", id="post-verdict"),
                id="post-verify")
            yield Panel(
                "2. Add Environment Variables",
                Prose("", id="post-env"),
                Prose("", id="post-env-result"),
                id="post-secret")
            yield Panel("3. Deploy Application", Tick(DEPLOY_STEP, id="tick-deploy", compact=True), id="post-deploy")
            yield Panel(
                "4. Test Backup System",
                *(Tick(text, id=f"tick-test-{i}", compact=True) for i, text in enumerate(TEST_STEPS, 1)),
                Prose("Tab moves to a box, Space ticks it.", classes="post-hint", markup=False),
                id="post-test")
        with Horizontal(id="post-actions"):
            yield Button("Verify again (v)", id="post-verify-again", action="screen.verify", compact=True)
            yield Button("Generate CRON_SECRET (g)", id="post-generate", variant="primary",
                         action="screen.cron_secret", compact=True)
            yield Button("Back (Esc)", id="post-back", action="app.pop_screen", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Post-migration"
        self._env_text()
        self.action_verify()
        self._read_secret()

    # -- 1. verify ------------------------------------------------------------------------------
    def action_verify(self) -> None:
        if self.operation_running:
            return
        self.query_one("#post-listed", Prose).update("Reading the catalog…")
        self.query_one("#post-describe", Prose).update("")
        self.query_one("#post-verdict", Prose).update("")
        self.query_one("#post-verify", Panel).set_state("")
        if self.run_operation(self._build, self.settings, audit="verify") is None:
            self.query_one("#post-listed", Prose).update("Nothing was started: the audit log cannot be written.")
        self.refresh_bindings()

    def _build(self, emit):
        if self._factory is not None:
            return self._factory(self.settings, emit)
        from migration.verify import Verify

        return Verify(self.settings, emit)

    def on_engine_event(self, message: EngineEvent) -> None:
        from migration.events import TableDescribed, TableListed, VerifyFinished

        if not self.current(message):
            return
        event = message.event
        if isinstance(event, TableListed):
            rows = len(event.rows)
            text = (f"✓ It lists {event.rows[0]} ({rows} row)." if event.ok
                    else f"✗ It lists {rows} rows: the table is not there (or your role may not see it).")
            self.query_one("#post-listed", Prose).update(text)
        elif isinstance(event, TableDescribed):
            self.query_one("#post-describe", Prose).update(described(event.lines))
        elif isinstance(event, VerifyFinished):
            self.verified = event
            verdict = [Content.assemble((("✅ " if event.ok else "❌ ") + event.message,
                                         "bold $success" if event.ok else "bold $error"))]
            if event.error is not None and not event.ok:
                verdict.append(error_content(event.error))
            self.query_one("#post-verdict", Prose).update(Content("\n\n").join(verdict))
            self.query_one("#post-verify", Panel).set_state("success" if event.ok else "error")
            self._progress()

    def worker_failed(self, worker) -> None:
        if worker.group == "operation":
            self.query_one("#post-verdict", Prose).update("The verification stopped unexpectedly; press v to retry.")
            self.refresh_bindings()

    # -- 2. CRON_SECRET ----------------------------------------------------------------------------
    def _env_text(self) -> None:
        where = (f"the .env in use, {shown(self.env_path)}" if self.settings.env_file is not None
                 else f"{shown(self.env_path)} in the working directory (no .env file is in use"
                      + (": the demo configures itself)" if self.settings.demo else ")"))
        state = self.secret
        if state is None:
            now = "Reading it…"
        elif state[0]:
            now = (f"CRON_SECRET is set there (line {state[1]}). g replaces it — only after you choose Replace; "
                   "the application then needs the new value.")
        else:
            now = ("CRON_SECRET is not set there. g adds a random one (32 random bytes, 64 hex digits); every "
                   "other line stays as it is.")
        self.query_one("#post-env", Prose).update(Content.from_markup("The guide: add CRON_SECRET to $w.\n$n",
                                                                      w=where, n=now))

    @work(thread=True, exit_on_error=False, group="cron-secret", exclusive=True)
    def _read_secret(self) -> None:
        from migration.cron_secret import existing_secret
        from migration.errors import explain

        try:
            self.post_message(SecretRead(existing_secret(self.env_path)))
        except Exception as exc:  # noqa: BLE001 - shown with its fix
            self.post_message(SecretRead(None, explain(exc)))

    def on_secret_read(self, message: SecretRead) -> None:
        message.stop()
        self.writing = False
        result = self.query_one("#post-env-result", Prose)
        if message.error is not None:
            result.update(error_content(message.error))
            self.query_one("#post-secret", Panel).set_state("error")
        if message.written is not None:
            w = message.written
            verb = "written to a new file" if w.created else ("replaced in" if w.replaced else "added to")
            result.update(Content.from_markup(
                "[b $success]✓ CRON_SECRET $v $p[/] (line $l): $m, mode 0600. Deploy the application with it.",
                v=verb, p=shown(w.path), l=str(w.line), m=w.masked))
            self.secret = (True, w.line)
        elif message.state is not None:
            self.secret = message.state
        if self.secret is not None and self.secret[0]:
            self.query_one("#post-secret", Panel).set_state("success")
        self._env_text()
        self._progress()
        self.refresh_bindings()

    def action_cron_secret(self) -> None:
        if self.writing or self.secret is None:
            return
        replace = self.secret[0]
        if replace:
            dialog = ConfirmDialog(
                "Replace the existing CRON_SECRET?",
                f"{shown(self.env_path)} already sets CRON_SECRET (line {self.secret[1]}). A new random value "
                "replaces it; "
                "the application's cron jobs keep using the old one until you deploy the new one.",
                yes="Replace", no="Keep it")
        else:
            dialog = ConfirmDialog(
                "Add CRON_SECRET?",
                f"A random CRON_SECRET (32 random bytes) is added to {shown(self.env_path)}; every other line stays as it "
                "is, and the file is written 0600. The value is not shown here.",
                yes="Add it", no="Not now", yes_variant="success")

        def answered(yes: bool | None) -> None:
            if yes:
                self.writing = True
                self.refresh_bindings()
                self._write_secret(replace)

        self.app.push_screen(dialog, answered)

    @work(thread=True, exit_on_error=False, group="cron-secret", exclusive=True)
    def _write_secret(self, replace: bool) -> None:
        from migration.audit import AuditLog
        from migration.cron_secret import add_cron_secret
        from migration.errors import explain

        log = AuditLog(self.app.audit_log_path)
        try:
            written = add_cron_secret(self.env_path, replace=replace)
        except Exception as exc:  # noqa: BLE001 - shown with its fix; nothing was written
            error = explain(exc)
            log.record(self.settings, "cron-secret", "CronSecretKept", path=str(self.env_path), message=error.message)
            self.post_message(SecretRead(self.secret, error))
            return
        log.record(self.settings, "cron-secret", "CronSecretWritten", outcome="success", path=str(written.path),
                   created=written.created, replaced=written.replaced, length=written.length, line=written.line)
        self.post_message(SecretRead(None, written=written))

    # -- 3 and 4: the operator's ticks ---------------------------------------------------------------
    @on(Checkbox.Changed)
    def _ticked(self, event: Checkbox.Changed) -> None:
        self._progress()

    def _progress(self) -> None:
        """The step is done when the table is verified, CRON_SECRET is set and every box is ticked."""
        for panel_id in ("#post-deploy", "#post-test"):
            panel = self.query_one(panel_id, Panel)
            ticks = list(panel.query(Tick).results(Tick))
            panel.set_state("success" if all(t.value for t in ticks) else "")
        verified = self.verified is not None and self.verified.ok
        secret = self.secret is not None and self.secret[0]
        ticked = all(t.value for t in self.query(Tick).results(Tick))
        journey = self.app.journey
        if self.verified is not None and not self.verified.ok:
            self.mark_step("failed")
        elif verified and secret and ticked:
            self.mark_step("done")
        elif journey.ended.get(self.step):
            journey.ended.pop(self.step, None)
            self.refresh_path()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "verify":
            return None if self.operation_running else True
        if action == "cron_secret":
            return None if self.writing or self.secret is None else True
        return super().check_action(action, parameters)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()  # the button's own action= already ran


def shown(path: Path) -> str:
    """A path as the operator reads it best: relative to the working directory when it is inside it."""
    import os

    absolute = os.path.abspath(path)
    here = os.getcwd()
    return os.path.relpath(absolute, here) if absolute.startswith(here + os.sep) else str(path)


def described(lines) -> Content:
    """``\\d database_backups`` as lines with ✓/✗; a mismatch says what the guide expects."""
    out: list[Content] = []
    for section, title in SECTIONS:
        rows = [line for line in lines if line.section == section]
        if not rows:
            continue
        width = max(len(line.name) for line in rows) + 2
        out.append(Content.from_markup("[b]$t[/b]", t=title))
        for line in rows:
            style = "$success" if line.ok else "$error"
            out.append(Content.assemble("  ", (line.mark, style), " ", line.name.ljust(width),
                                        (line.actual or "missing", "" if line.ok else "bold")))
            if not line.ok:
                out.append(Content.assemble("    ", " " * width, ("expected: ", "dim"), line.expected))
    return Content("\n").join(out)
