"""The top line of every screen: the wizard's path on its steps' screens, the screen's name elsewhere.

On a step of the path (``screen.step``, see :mod:`tui.journey`)::

    ✓ Target › ✓ Checklist › ✓ Backup › ● Migrate › ○ Result › ○ Post-migration

the current step in reverse video, each ended step with its mark (✓ done, ✗ failed, – skipped):
readable without colour (NO_COLOR). Narrow terminals get shorter names, then only the steps
around the current one. Other screens (SQL, Rollback, Audit log) show ``migrate-tui — <name>``.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from ..journey import LABELS, MARKS, SHORT

TITLE = "migrate-tui"
SEPARATOR = " › "


class TopBar(Widget):
    DEFAULT_CSS = """
    TopBar { dock: top; height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def render(self) -> Content:
        width = self.content_region.width or self.size.width or 80
        step = getattr(self.screen, "step", None)
        journey = getattr(self.app, "journey", None)
        if step is None or journey is None or step not in journey.steps:
            name = self.screen.sub_title or ""
            return Content.assemble((TITLE, "bold"), (f" — {name}" if name else "", ""))
        return path_line(journey, step, width)


def _item(journey, step: str, here: str, short: bool) -> Content:
    ended = journey.ended.get(step)
    mark, colour = MARKS[ended if ended else ("current" if step == here else None)]
    label = SHORT.get(step, LABELS[step]) if short else LABELS[step]
    if step == here:
        return Content.assemble((f" {mark} {label} ", f"bold reverse {colour if ended else '$accent'}"))
    return Content.assemble((mark, colour), f" {label}")


def path_line(journey, here: str, width: int) -> Content:
    """The path as one line of at most ``width`` cells."""
    for short in (False, True):
        items = [_item(journey, s, here, short) for s in journey.steps]
        line = Content(SEPARATOR).join(items)
        if line.cell_length <= width:
            title = Content.assemble((TITLE, "bold"), "  ")
            return title + line if line.cell_length + title.cell_length <= width else line
    # Still too wide: the current step with its neighbours.
    index = journey.steps.index(here)
    lo, hi = max(0, index - 1), min(len(journey.steps), index + 2)
    items = [_item(journey, s, here, True) for s in journey.steps[lo:hi]]
    head = Content("… › " if lo > 0 else "")
    tail = Content(" › …" if hi < len(journey.steps) else "")
    return head + Content(SEPARATOR).join(items) + tail
