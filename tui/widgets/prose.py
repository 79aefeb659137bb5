"""How the wizard wraps text: one place, so every screen wraps alike.

- A number stays with its unit (``15 ms``, ``468.2 kB``, ``3,412 bytes``): the space between them is
  never a line break. Text can also glue two words itself with :data:`GLUE` (a no-break space).
- A wrapped line keeps the indent of its line, plus the width of a list marker it starts with
  (``1. ``, ``• ``, ``✓ ``), so numbered steps and bullets hang under their text, never at the margin.
- Commands and paths meant to be copied are not prose: :class:`tui.widgets.copy_line.CopyLine`
  shows them on a line of their own.

:class:`Prose` is a Static that wraps this way; :func:`hanging_lines` serves widgets that lay out
their own lines (the step panels, the checklist rows).
"""

from __future__ import annotations

import functools
import re
from typing import Iterable

from textual.content import Content
from textual.widgets import Static

GLUE = "\u00a0"  # written by callers between words that must stay on one line
_HOLD = "\ue000"  # stands for a kept space while wrapping: one cell wide, and not whitespace to the wrapper
UNITS = r"(?:ms|s|kB|MB|GB|TB|KiB|MiB|GiB|B|bytes?|rows?|%|characters|chars|seconds?|minutes?|hours?|tables?)"


@functools.lru_cache(maxsize=None)
def _patterns() -> tuple[re.Pattern, re.Pattern]:
    """(a space between a number and its unit, a list marker); compiled on first use, not before the first frame."""
    return (re.compile(rf"(?<=\d) (?={UNITS}(?![\w]))"),
            re.compile(r"(?:\d{1,2}[.)]|[•·\-*✓✗⚠○–]|\[[ x✓]\]) "))


def keep_units(text: str) -> str:
    """``text`` with every number glued to the unit after it."""
    return _patterns()[0].sub(GLUE, text)


def _hold(content: Content) -> Content:
    text = keep_units(content.plain).replace(GLUE, _HOLD)
    return content if text == content.plain else Content(text, list(content.spans), content.cell_length)


def _release(content: Content) -> Content:
    text = content.plain
    return content if _HOLD not in text else Content(text.replace(_HOLD, " "), list(content.spans),
                                                     content.cell_length)


def _shorten_long_words(content: Content, room: int) -> Content:
    """A word (a path, a URL) longer than a whole line loses its middle instead of being cut across lines."""
    text = content.plain
    if len(text) <= room:
        return content
    pieces: list[Content] = []
    last = 0
    for match in re.finditer(r"[^ ]+", text):
        start, end = match.span()
        if end - start > room:
            keep = max(2, room - 1)
            head = keep // 3  # a file name's end says more than its directory
            pieces += [content[last:start + head], Content("…"), content[end - (keep - head):end]]
            last = end
    if not pieces:
        return content
    pieces.append(content[last:])
    return Content("").join(pieces)


def wrap_line(content: Content, width: int, hang: int | None = None) -> list[Content]:
    """One line of text (no newline) wrapped to ``width``. Wrapped lines are indented like the line, plus
    ``hang`` (default: the width of the list marker the line starts with, if any)."""
    plain = content.plain
    indent = len(plain) - len(plain.lstrip(" "))
    body = content[indent:]
    if hang is None:
        marker = _patterns()[1].match(body.plain)
        hang = len(marker.group(0)) if marker else 0
    room = max(8, width - indent - hang)
    head_room = room + hang
    held = _shorten_long_words(_hold(body), room)
    if held.cell_length <= head_room:
        return [_release(content[:indent] + held if indent else held)]
    first, *rest = held.wrap(head_room) or [Content("")]
    lines = [Content(" " * indent) + first if indent else first]
    tail = held[len(first.plain):] if rest else Content("")
    tail = tail[len(tail.plain) - len(tail.plain.lstrip(" ")):]
    for line in tail.wrap(room) if tail.plain else []:
        lines.append(Content(" " * (indent + hang)) + line)
    return [_release(line) for line in lines]


def wrap(content: Content | str, width: int, hang=None) -> list[Content]:
    """Text (newlines allowed) as screen lines of at most ``width`` cells. ``hang``: a number of columns, None
    (the list marker's width), or a function of each line's text giving either."""
    if isinstance(content, str):
        content = Content(content)
    lines: list[Content] = []
    for part in content.split("\n", allow_blank=True):
        line_hang = hang(part.plain) if callable(hang) else hang
        lines.extend(wrap_line(part, width, line_hang) if part.plain.strip() else [Content("")])
    return lines


def hanging_lines(parts: Iterable[tuple[int, Content]], width: int) -> list[Content]:
    """``(indent, content)`` parts, each wrapped with two more columns of indent on its wrapped lines
    (the mark column of a step panel or a checklist row stays clear)."""
    lines: list[Content] = []
    for indent, content in parts:
        for line in wrap_line(Content(" " * indent) + content if indent else content, width, hang=2):
            lines.append(line)
    return lines


def as_content(value, markup: bool = True) -> Content:
    if isinstance(value, Content):
        return value
    if type(value).__name__ == "Text":  # a Rich Text (rich.text is not imported before the first frame)
        return Content.from_rich_text(value)
    return Content.from_markup(str(value)) if markup else Content(str(value))


class Prose(Static):
    """A Static that wraps the wizard's way (units kept, hanging indents)."""

    def __init__(self, content="", *, hang=None, markup: bool = True, **kwargs) -> None:
        super().__init__(content, markup=markup, **kwargs)
        self.hang = hang

    @property
    def text(self) -> str:
        """The text as it reads, without wrapping (tests, logs)."""
        return as_content(self.content, self._render_markup).plain

    def _lines(self, width: int) -> list[Content]:
        return wrap(as_content(self.content, self._render_markup), width, self.hang)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width)) if self.text else 0

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.content_region.width or self.size.width))


class RichLine:
    """A Rich renderable for a RichLog line that wraps the wizard's way: numbers keep their units, and wrapped
    lines hang ``hang`` columns in (under the text after a timestamp)."""

    def __init__(self, text, hang: int = 0) -> None:
        self.text, self.hang = text, hang

    def __rich_console__(self, console, options):
        from rich.text import Text

        width = max(12, options.max_width)
        held = self.text.copy()
        held.plain = keep_units(held.plain).replace(GLUE, _HOLD)
        first, *rest = held.wrap(console, width) or [Text("")]
        lines = [first]
        if rest:
            tail = held[len(first.plain):]
            tail = tail[len(tail.plain) - len(tail.plain.lstrip(" ")):]
            for line in tail.wrap(console, max(8, width - self.hang)):
                lines.append(Text(" " * self.hang) + line)
        for line in lines:
            line.plain = line.plain.replace(_HOLD, " ")
            line.rstrip()
            yield line
