"""One of the guide's eight steps as a panel: pending → running → done / skipped / failed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widget import Widget

from .prose import hanging_lines

if TYPE_CHECKING:
    from migration.errors import OperatorError

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ICONS = {"pending": "○", "done": "✓", "warning": "⚠", "skipped": "–", "failed": "✗", "cancelled": "⏹"}


class StepPanel(Widget):
    """Shows one step. ``deterministic`` freezes the spinner and hides timings (snapshots)."""

    def __init__(self, number: int, title: str, description: str, *, deterministic: bool = False,
                 id: str | None = None) -> None:
        super().__init__(id=id, classes="step -pending")
        self.number = number
        self.title = title
        self.description = description
        self.deterministic = deterministic
        self.state = "pending"
        self.message = ""
        self.details: tuple[str, ...] = ()
        self.elapsed_ms: float | None = None
        self.error: OperatorError | None = None
        self.waiting: tuple[str, ...] = ()  # while running: the sessions it waits for
        self._started = 0.0
        self._frame = 0
        self._timer = None

    def on_mount(self) -> None:
        self._render_panel()

    # -- state changes (called by the migrate screen) ------------------------------
    def start(self) -> None:
        self._set_state("running")
        self._started = time.monotonic()
        if not self.deterministic:
            self._timer = self.set_interval(0.1, self._tick)
        self._render_panel()

    @property
    def running_for(self) -> float:
        return time.monotonic() - self._started if self.state == "running" else 0.0

    def set_waiting(self, lines: tuple[str, ...]) -> None:
        if self.state == "running" and lines != self.waiting:
            self.waiting = lines
            self._render_panel()

    def finish(self, message: str, details: tuple[str, ...], elapsed_ms: float, warning: bool = False) -> None:
        self._stop_timer()
        self._set_state("warning" if warning else "done")
        self.message, self.details, self.elapsed_ms = message, details, elapsed_ms
        self._render_panel()

    def skip(self, reason: str) -> None:
        self._stop_timer()
        self._set_state("skipped")
        self.message = reason
        self._render_panel()

    def fail(self, error: "OperatorError", elapsed_ms: float, cancelled: bool = False) -> None:
        self._stop_timer()
        self._set_state("cancelled" if cancelled else "failed")
        self.error, self.elapsed_ms = error, elapsed_ms
        self._render_panel()

    # -- rendering --------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.remove_class(f"-{self.state}")
        self.state = state
        self.add_class(f"-{state}")

    def _stop_timer(self) -> None:
        self.waiting = ()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        self._frame += 1
        self._render_panel()

    def _status(self) -> str:
        if self.state == "running":
            if self.deterministic:
                return "running"
            return f"running {time.monotonic() - self._started:.1f} s"
        if self.state in ("done", "warning", "failed", "cancelled") and self.elapsed_ms is not None \
                and not self.deterministic:
            if self.state in ("failed", "cancelled"):
                return f"{self.state} after {self.elapsed_ms:.0f} ms"
            return f"done in {self.elapsed_ms:.0f} ms"
        if self.state == "skipped" and self.message:
            return f"skipped: {self.message}"
        return {"warning": "done"}.get(self.state, self.state)

    def _render_panel(self) -> None:
        icon = SPINNER[self._frame % len(SPINNER)] if self.state == "running" else ICONS[self.state]
        # (indent, content): wrapped lines keep their indent, plus two for a hanging indent.
        parts: list[tuple[int, Content]] = [(0, Content.from_markup(
            "[b]$icon $number/8 $title[/b] [dim]·[/dim] $description  [dim italic]$status[/]",
            icon=icon, number=str(self.number), title=self.title, description=self.description,
            status=self._status()))]
        if self.state == "running" and self.waiting:
            parts.extend((2, Content.from_markup("[$warning]$w[/]", w=w)) for w in self.waiting)
        if self.state in ("done", "warning") and self.message:
            parts.append((2, Content(self.message)))
            parts.extend((4, Content.from_markup("[dim]$d[/dim]", d=d)) for d in self.details)
        if self.state in ("failed", "cancelled") and self.error is not None:
            err = self.error
            code = f" (SQLSTATE {err.sqlstate})" if err.sqlstate else ""
            parts.append((2, Content.from_markup("[b]Error:[/b] $m$code", m=err.message, code=code)))
            if err.detail:
                parts.append((2, Content.from_markup("Detail: $d", d=err.detail)))
            parts.append((2, Content.from_markup("[b]Fix:[/b] $h", h=err.hint)))
        self._parts = parts
        self.refresh(layout=True)

    @property
    def text(self) -> str:
        """The panel as plain text (tests, logs)."""
        return "\n".join(" " * indent + content.plain for indent, content in getattr(self, "_parts", []))

    def _lines(self, width: int) -> list[Content]:
        return hanging_lines(getattr(self, "_parts", []), width)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.content_region.width or self.size.width))
