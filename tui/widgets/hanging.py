"""Hanging-indent wrapping shared by the step panels and the checklist rows.

Each part keeps its own indent; the lines a part wraps onto are indented two columns more,
so the mark column on the left stays clear.
"""

from __future__ import annotations

from typing import Iterable

from textual.content import Content


def hanging_lines(parts: Iterable[tuple[int, Content]], width: int) -> list[Content]:
    """``(indent, content)`` parts wrapped to ``width`` columns, one Content per screen line."""
    lines: list[Content] = []
    for indent, content in parts:
        for i, line in enumerate(content.wrap(max(10, width - indent - 2)) or [Content("")]):
            pad = indent + (2 if i else 0)
            lines.append(Content(" " * pad) + line if pad else line)
    return lines
