"""Result: success / not needed / failed / cancelled in the guide's words, the catalog read back, next steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Footer, Header, Static

from .base import WizardScreen
from ..dialogs.error import error_content

if TYPE_CHECKING:
    from migration.events import RunFinished


class ResultScreen(WizardScreen):
    CSS_PATH = "result.tcss"
    BINDINGS = [
        Binding("t,escape", "app.back_to_target", "Back to target"),
        Binding("d", "app.rollback", "Rollback"),
        Binding("l", "app.audit_log", "Audit log"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, result: "RunFinished", failed_step: str | None = None) -> None:
        super().__init__(id="result")
        self.result = result
        self.failed_step = failed_step  # e.g. "Step 5/8 Index Creation", from the Migrate screen

    def compose(self) -> ComposeResult:
        r = self.result
        kind = {"success": "-success", "not_needed": "-success", "cancelled": "-warning"}.get(
            r.outcome.value, "-error")
        yield Header()
        with VerticalScroll(id="result-body"):
            yield Static(headline(r), id="result-headline", classes=kind)
            yield Static(outcome_text(r), id="result-text")
            if r.error is not None and r.outcome.value != "success":
                if self.failed_step and r.outcome.value != "cancelled":
                    yield Static(f"{self.failed_step} failed.", id="result-step", markup=False)
                yield Static(error_content(r.error), id="result-error")
            steps = next_steps(r)
            if steps:
                yield Static(steps, id="result-next", markup=False)
            if r.report is not None and r.report.exists:
                yield Static("Verification (read back from the catalog)", classes="section-title")
                yield Static(verification(r), id="result-verification")
        with Horizontal(id="result-actions"):
            yield Button("Back to target (t)", id="back", variant="primary", action="app.back_to_target", compact=True)
            yield Button("Quit (q)", id="quit", action="app.quit", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Result"
        self.query_one("#back", Button).focus()


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


def next_steps(r: "RunFinished") -> str:
    from migration.guide import NEXT_STEPS

    if r.outcome.value in ("success", "not_needed"):
        return "\n".join(NEXT_STEPS)
    return ""
