"""Where the operator is on the wizard's path: Target › Checklist › Backup › Migrate › Result › Post-migration.

One :class:`Journey` per app (``app.journey``): each wizard screen says when it is the current step
(:meth:`Journey.at`) and how its step ended (:meth:`Journey.mark`); the top bar of every screen
(:class:`tui.widgets.top_bar.TopBar`) draws it. Going back to Target starts a new path. What later
screens need from earlier ones travels here too (the backup that was made, the run's result).
"""

from __future__ import annotations

from typing import Any

STEPS = ("target", "checklist", "backup", "migrate", "result", "after")
LABELS = {"target": "Target", "checklist": "Checklist", "backup": "Backup", "migrate": "Migrate",
          "result": "Result", "after": "Post-migration"}
SHORT = {"checklist": "Checks", "after": "After"}
# How a step ended: its mark in the path (readable without colour) and its colour.
MARKS = {"done": ("✓", "$success"), "failed": ("✗", "$error"), "skipped": ("–", "$warning"),
         "current": ("●", "$accent"), None: ("○", "dim")}


class Journey:
    """(A plain class: it is built before the first frame.)"""

    def __init__(self, steps: tuple[str, ...] = STEPS) -> None:
        self.steps = steps
        self.current = "target"
        self.ended: dict[str, str] = {}  # step -> done / failed / skipped
        self.backup: Any = None  # the BackupFinished of this path's backup (None: none was made yet)
        self.backup_skipped = False
        self.result: Any = None  # the migration's RunFinished

    def at(self, step: str) -> None:
        """``step``'s screen is shown: it is the current step (an earlier end of it is forgotten)."""
        if step in self.steps:
            self.current = step
            self.ended.pop(step, None)

    def mark(self, step: str, how: str) -> None:
        """How ``step`` ended: done, failed or skipped."""
        if step in self.steps:
            self.ended[step] = how

    def restart(self) -> None:
        """Back at Target: a new path."""
        self.current = "target"
        self.ended.clear()
        self.backup, self.backup_skipped, self.result = None, False, None

    def state(self, step: str) -> str | None:
        """done / failed / skipped / current, or None (not reached)."""
        if step in self.ended:
            return self.ended[step]
        return "current" if step == self.current else None
