"""Headless output of a restore drill: its phases, a live bar on a terminal, the comparison table, the verdict."""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from migration.events import (
    DrillCompared,
    DrillFinished,
    DrillPhase,
    DrillProgress,
    DrillStarted,
    DrillTableChecked,
    Outcome,
    TableCheck,
)

from ..running import print_error


def table_lines(checks: tuple[TableCheck, ...] | list[TableCheck], exact: bool = False) -> list[str]:
    """The comparison table: table / rows in backup / rows restored [/ rows on the source] / ✓ or ✗."""
    heads = ["table", "rows in backup", "rows restored"] + (["rows on source"] if exact else [])
    rows = [[c.table, f"{c.rows_backup:,}", "missing" if c.rows_restored is None else f"{c.rows_restored:,}"]
            + ([f"{c.rows_exact:,}" if c.rows_exact is not None else "—"] if exact else []) for c in checks]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(cells[0].ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                         for i, cell in enumerate(cells))

    out = [fmt(heads) + "   "]
    for check, cells in zip(checks, rows):
        out.append(fmt(cells) + ("  ✓" if check.ok else "  ✗"))
    return out


def objects_line(counts: tuple[tuple[str, int], ...]) -> str:
    from migration.catalog_objects import describe_counts

    return describe_counts(counts)


class DrillView:
    """Prints drill events: phases as they end, a live restore bar on a terminal, the table, the verdict."""

    def __init__(self, out: TextIO | None = None, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._bar_shown = False
        self._last_decile = -1
        self._checks: list[TableCheck] = []
        self._exact = False

    def line(self, text: str = "") -> None:
        if self._bar_shown:
            self.out.write("\r\x1b[2K")
            self._bar_shown = False
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, DrillStarted):
            self._exact = event.exact
            for path in event.removed:
                self.line(f"🧹 Removed a throwaway server left by a killed run: {path}")
            self.line(f"🧪 Restore drill: {event.backup}")
            self.line(f"  {event.format} format, from {event.source}: {event.tables_total} tables, "
                      f"{event.rows_total:,} rows" + (f"; into {event.scratch}" if event.scratch else ""))
        elif isinstance(event, DrillPhase):
            if event.elapsed_ms is not None and event.phase != "compare":  # DrillCompared says it in full
                self.line(f"  ✓ {event.message} ({event.elapsed_ms / 1000:.1f} s)")
        elif isinstance(event, DrillProgress):
            self.progress(event)
        elif isinstance(event, DrillTableChecked):
            self._checks.append(event.check)
        elif isinstance(event, DrillCompared):
            self.compared(event)
        elif isinstance(event, DrillFinished):
            self.finished(event)

    def progress(self, event: DrillProgress) -> None:
        from migration.backup import human_bytes

        read = f"  {human_bytes(event.bytes_done)}" if event.bytes_total else ""
        text = (f"{event.fraction * 100:3.0f}%  {event.tables_done}/{event.tables_total} tables  "
                f"{event.rows_done:,}/{event.rows_total:,} rows{read}  {', '.join(event.running)}").rstrip()
        if self.tty:
            width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
            filled = int(event.fraction * 20)
            self.out.write("\r\x1b[2K" + f"  [{'█' * filled}{'·' * (20 - filled)}] {text}"[:width])
            self.out.flush()
            self._bar_shown = True
        elif int(event.fraction * 10) > self._last_decile:
            self._last_decile = int(event.fraction * 10)
            self.line(f"  {text}")

    def compared(self, event: DrillCompared) -> None:
        for text in table_lines(sorted(self._checks, key=lambda c: c.table), self._exact):
            self.line(f"    {text}")
        what = objects_line(event.object_counts)
        if event.differences:
            self.line(f"  ✗ Objects: {len(event.differences)} difference{'s' if len(event.differences) != 1 else ''}"
                      f" from the source ({what})")
            for difference in event.differences[:20]:
                self.line(f"      {difference.describe()}")
        else:
            self.line(f"  ✓ Objects as in the source: {what}")
        for note in event.notes:
            self.line(f"      Note: {note}")

    def finished(self, event: DrillFinished) -> None:
        if event.ok:
            self.line(f"✓ Drill passed: {event.message[0].lower()}{event.message[1:]} ({event.elapsed_ms / 1000:.1f} s)")
        elif event.outcome is Outcome.CANCELLED:
            self.line(f"⏹  {event.message}.")
        else:
            self.line("✗ Drill failed: the backup did not prove it restores.")
            if event.error is not None:
                print_error(event.error, self.out)
        if event.roles:
            self.line(f"  Roles the dump needs (a database dump holds none; create them before a real restore): "
                      f"{', '.join(event.roles)}")
        if event.kept:
            self.line("  The restored copy stays up for the rehearsal.")
        elif event.server.startswith("the scratch database"):
            self.line(f"  The restored copy stays in {event.server}; drop it when done.")
        elif event.removed:
            self.line("  The throwaway server and its files were removed.")
        if event.manifest_updated:
            self.line("  The result is recorded in the backup's manifest.")
