"""Result: success / not needed / failed / cancelled in the guide's words, the backup it made, the catalog read
back, and the way on: the guide's Post-Migration Steps (p)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Footer

from ..dialogs.error import error_content
from ..widgets.copy_line import CopyLine
from ..widgets.prose import Prose
from ..widgets.top_bar import TopBar
from .base import WizardScreen

if TYPE_CHECKING:
    from migration.events import RunFinished


class ResultScreen(WizardScreen):
    CSS_PATH = "result.tcss"
    BINDINGS = [
        Binding("p", "post_migration", "Post-migration"),
        Binding("t,escape", "app.back_to_target", "Target"),
        Binding("d", "app.rollback", "Rollback"),
        Binding("l", "app.audit_log", "Audit log"),
        Binding("q", "app.quit", "Quit"),
    ]
    step = "result"
    BODY = "#result-body"

    def __init__(self, result: "RunFinished", failed_step: str | None = None) -> None:
        super().__init__(id="result")
        self.result = result
        self.failed_step = failed_step  # e.g. "Step 5/8 Index Creation", from the Migrate screen

    @property
    def migrated(self) -> bool:
        """The table is there and valid: the post-migration steps apply."""
        return self.result.outcome.value in ("success", "not_needed")

    def compose(self) -> ComposeResult:
        r = self.result
        kind = {"success": "-success", "not_needed": "-success", "cancelled": "-warning"}.get(
            r.outcome.value, "-error")
        yield TopBar()
        with VerticalScroll(id="result-body"):
            yield Prose(headline(r), id="result-headline", classes=kind, markup=False)
            yield Prose(outcome_text(r), id="result-text")
            if r.error is not None and r.outcome.value != "success":
                if self.failed_step and r.outcome.value != "cancelled":
                    yield Prose(f"{self.failed_step} failed.", id="result-step", markup=False)
                yield Prose(error_content(r.error), id="result-error")
            yield from self._backup()
            if self.migrated:
                yield Prose(Content.from_markup(
                    "[b]Next:[/b] the guide's Post-Migration Steps — verify the table, add CRON_SECRET, deploy "
                    "and test the backup system. Press [b]p[/b]."), id="result-next")
            if r.report is not None and r.report.exists:
                yield Prose("Verification (read back from the catalog)", classes="section-title", markup=False)
                yield Prose(verification(r), id="result-verification")
        with Horizontal(id="result-actions"):
            if self.migrated:
                yield Button("Post-migration (p)", id="post", variant="primary", action="screen.post_migration",
                             compact=True)
            yield Button("Back to target (t)", id="back", variant="default" if self.migrated else "primary",
                         action="app.back_to_target", compact=True)
            yield Button("Quit (q)", id="quit", action="app.quit", compact=True)
        yield Footer(compact=True)

    def _backup(self) -> ComposeResult:
        """The backup made before this run (the Backup screen's), repeated here with its path to copy."""
        journey = self.app.journey
        if journey.backup is not None:
            yield Prose("Backup made before the migration (c copies its path):", id="result-backup",
                        markup=False)
            yield CopyLine(str(journey.backup.path), what="backup's path", id="result-backup-path")
        elif journey.backup_skipped:
            yield Prose(Content.from_markup("[b $warning]Backup skipped:[/] no copy of the database was made "
                                            "before this run."), id="result-backup")
        elif journey.ended.get("backup") == "skipped":  # the table was already there: nothing was to change
            yield Prose("No backup was made: the checklist found the table already there, so nothing was going "
                        "to change.", id="result-backup", markup=False)

    def on_mount(self) -> None:
        self.sub_title = "Result"
        self.query_one("#post" if self.migrated else "#back", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "post_migration":
            return self.migrated
        return super().check_action(action, parameters)

    def action_post_migration(self) -> None:
        if not self.migrated:
            return
        from .post_migration import PostMigrationScreen

        self.mark_step("done")
        self.app.push_screen(PostMigrationScreen(self.app.settings))


def headline(r: "RunFinished") -> str:
    """The guide's final line for the outcome (the same words as the headless printer)."""
    value = r.outcome.value
    if value == "success":
        return f"🎉 {r.message}"
    if value == "not_needed":
        return f"✅ {r.message}"
    if value == "cancelled":
        return "⏹  Cancelled"
    return "❌ Migration failed" + (" - another migration is running" if value == "busy" else "")


def outcome_text(r: "RunFinished") -> Content:
    from migration.guide import SUCCESS_LINES

    value = r.outcome.value
    if value == "success":
        return Content("\n".join(SUCCESS_LINES))
    if value == "not_needed":
        notes = [f"Note: {d}" for d in (r.report.differences if r.report else ())]
        return Content("\n".join(["Nothing was changed: the table is already there with the right structure.",
                                  *notes]))
    if r.rolled_back:
        return Content.from_markup("[b]↩️  $m[/b]", m=r.message)
    return Content.from_markup("[b]$m.[/b] The migration stopped before changing anything.", m=r.message)


def verification(r: "RunFinished") -> Content:
    report = r.report
    assert report is not None
    width = max(len(c.name) for c in report.columns) + 2 if report.columns else 10
    lines = [Content.from_markup(f"[b]{len(report.columns)} columns[/b]")]
    for c in report.columns:
        extra = (" NOT NULL" if c.not_null else "") + (f" DEFAULT {c.default}" if c.default else "")
        lines.append(Content.from_markup("  ✓ $n[dim]$t$e[/dim]", n=c.name.ljust(width), t=c.type, e=extra))
    lines.append(Content.from_markup(f"[b]{len(report.indexes)} indexes[/b]"))
    for ix in report.indexes:
        lines.append(Content.from_markup("  ✓ $n", n=ix.name))
    return Content("\n").join(lines)
