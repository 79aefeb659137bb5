"""A checkbox that says its state without colour: ``[✓]`` when ticked, ``[ ]`` when not.

Textual's Checkbox draws ``▐X▌`` in both states and tells them apart by colour only, which
NO_COLOR (and many a monochrome jump-host terminal) loses.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class Tick(Checkbox):
    BUTTON_LEFT = "["
    BUTTON_RIGHT = "]"

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble("[", ("✓" if self.value else " ", style), "]")
