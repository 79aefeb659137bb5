"""Target: which server and database the migration is about to change, and what it will find.

The first frame shows at once; the settings (and, with --demo, the demo database)
and then the server facts arrive from workers (MigrateApp.resolve_settings,
:meth:`TargetScreen.load_overview`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Footer, Static

from ..actions import TARGET_ACTIONS, bindings_for
from ..messages import OverviewLoaded
from ..widgets.facts import FactList
from ..widgets.prose import Prose
from ..widgets.top_bar import TopBar
from .base import WizardScreen

if TYPE_CHECKING:
    from migration.overview import TargetOverview
    from migration.settings import Settings

PENDING = Content.from_markup("[dim]…[/dim]")
UNAVAILABLE = Content.from_markup("[dim italic]unavailable[/]")  # the server could not be read (see the error)


class TargetScreen(WizardScreen):
    CSS_PATH = "target.tcss"
    BINDINGS = bindings_for(TARGET_ACTIONS)
    step = "target"
    BODY = "#target-body"

    def __init__(self) -> None:
        super().__init__(id="target")
        self.overview: TargetOverview | None = None

    def compose(self) -> ComposeResult:
        yield TopBar()
        with VerticalScroll(id="target-body"):
            yield Prose("", id="target-status", markup=False)
            yield Prose("", id="target-error")
            yield FactList(id="target-facts")
            yield Prose("", id="target-notes", markup=False)
        yield Grid(id="target-actions")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Target"
        self.show_pending()
        # The buttons repeat the footer's keys for the mouse: they follow one frame later, so the
        # first frame (benchmarks/startup.py) is not held up by them.
        self.call_after_refresh(self._mount_buttons)

    async def _mount_buttons(self) -> None:
        await self.query_one("#target-actions", Grid).mount_all(
            Button(action.label, id=f"do-{action.name}", variant=action.variant, action=f"app.{action.name}",
                   tooltip=action.help, compact=True)
            for action in TARGET_ACTIONS)
        self._update_buttons()

    # -- filling in ---------------------------------------------------------------
    def show_pending(self) -> None:
        settings: Settings | None = self.app.settings
        source = self.app.source
        self._status(f"{source.description}…" if settings is None else "Reading the server facts…", "busy")
        self.query_one("#target-error", Static).update("")
        self.query_one("#target-notes", Static).update("")
        self._facts(settings, None)
        self._update_buttons()

    def load_overview(self) -> None:
        """(Re)read the server facts and the table state in a worker."""
        if self.app.settings is None:
            return
        self.show_pending()
        self._describe(self.app.settings)

    @work(thread=True, exit_on_error=False, group="overview", exclusive=True)
    def _describe(self, settings: "Settings") -> None:
        overview = self.app.describe(settings)
        self.post_message(OverviewLoaded(overview))

    def on_overview_loaded(self, message: OverviewLoaded) -> None:
        overview = self.overview = message.overview
        self._facts(self.app.settings, overview)
        notes = self.query_one("#target-notes", Static)
        notes.update(Content("\n").join(Content(n) for n in overview.notes))
        notes.set_class(bool(overview.notes), "-shown")
        error = self.query_one("#target-error", Static)
        if overview.error is not None:
            err = overview.error
            code = f" (SQLSTATE {err.sqlstate})" if err.sqlstate else ""
            error.update(Content.from_markup("[b]Error:[/b] $m$code\n[b]Fix:[/b] $h", m=err.message, code=code,
                                             h=err.hint))
            self._status("The server could not be read. Fix the problem below, then press r to refresh.", "error")
        else:
            error.update("")
            first = " (checklist and backup first)" if getattr(self.app, "preflight", False) else ""
            ready = {"absent": f"Ready: press m to migrate{first}, s to see the SQL.",
                     "valid": "The table is already there and valid: a run will report 'not needed'.",
                     "invalid": "The existing table has the wrong structure: a run will fail and change nothing."}
            self._status(ready.get(overview.state, ""), "ok" if overview.state != "invalid" else "error")
        error.set_class(overview.error is not None, "-shown")
        self._update_buttons()

    def settings_failed(self) -> None:
        self._status("Configuration error.", "error")

    # -- helpers ------------------------------------------------------------------
    def _status(self, text: str, kind: str) -> None:
        status = self.query_one("#target-status", Prose)
        status.update(text)
        for k in ("busy", "ok", "error"):
            status.set_class(k == kind, f"-{k}")

    def _facts(self, settings: "Settings | None", overview: "TargetOverview | None") -> None:
        facts = overview.facts if overview else None
        # Still reading: "…"; read and failed: "unavailable" (never a fact that looks like it is still coming).
        missing = UNAVAILABLE if overview is not None else PENDING
        rows: list[tuple[str, str | Content]] = [
            ("Database URL", settings.masked_url if settings else PENDING),
            ("Server", _server(settings, facts) if facts else missing),
            ("Server time", facts.server_time if facts else missing),
            ("Database / user", f"{facts.database} / {facts.user}" if facts else missing),
            ("Schema", settings.schema if settings else PENDING),
            ("Table", _state(overview) if overview else PENDING),
            ("Optional variables", _optional(settings.optional_present()) if settings else PENDING),
        ]
        self.query_one("#target-facts", FactList).set_facts(rows)

    def _update_buttons(self) -> None:
        for action in TARGET_ACTIONS:
            for button in self.query(f"#do-{action.name}").results(Button):
                button.disabled = self.app.check_action(action.name, ()) is False
        self.refresh_bindings()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()  # the button's own action= already ran


def _state(overview: "TargetOverview") -> Content:
    style = {"absent": "$success", "valid": "$warning", "invalid": "$error"}.get(overview.state, "dim")
    return Content.assemble((f"{overview.table} ", "bold"), (overview.state_text, style))


def _optional(present: dict[str, bool]) -> Content:
    parts: list[Content | tuple[str, str]] = []
    for name, ok in present.items():
        parts.append((f"{'✓' if ok else '✗'} {name} ", "$success" if ok else "$warning"))
        parts.append(("set\n" if ok else "not set\n", "dim"))
    if not all(present.values()):
        parts.append(("The backup system needs these after the migration.", "dim italic"))
    return Content.assemble(*parts).rstrip()


def _server(settings: "Settings | None", facts) -> str:
    """The version; with a host list in DATABASE_URL, also the host that answered."""
    from migration.connected import describe, lists_hosts

    if settings is None or not facts.host or not lists_hosts(settings.masked_url):
        return facts.version
    return f"{facts.version} at {describe(facts.host, facts.port)} (the first listed host that answered)"
