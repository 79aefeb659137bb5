"""Headless output of the post-migration verification: the guide's query and its rows as psql prints them, then
``\\d database_backups`` with ✓/✗ against the guide's definition, then the verdict."""

from __future__ import annotations

import sys
from typing import TextIO

from migration.events import Outcome, TableDescribed, TableListed, VerifyFinished, VerifyStarted

SECTIONS = (("Column", "Columns"), ("Index", "Indexes"), ("Constraint", "Constraints"), ("Sequence", "Sequence"))


class VerifyPrinter:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, VerifyStarted):
            self.line(f"🔎 Verify Migration Success: {event.schema}.{event.table}")
            self.line(f"Database: {event.masked_url}")
        elif isinstance(event, TableListed):
            self.line()
            self.line("-- Check table exists")
            self.line(event.query)
            self.line(" table_name")
            self.line("-" * 18)
            for row in event.rows:
                self.line(f" {row}")
            self.line(f"({len(event.rows)} row{'' if len(event.rows) == 1 else 's'})")
        elif isinstance(event, TableDescribed):
            self.describe(event.lines)
        elif isinstance(event, VerifyFinished):
            self.line()
            if event.error is not None:
                for text in event.error.lines():
                    self.line(text)
            mark = "✅" if event.ok else ("⏹ " if event.outcome is Outcome.CANCELLED else "❌")
            self.line(f"{mark} {event.message}")

    def describe(self, lines) -> None:
        self.line()
        self.line("-- Check table structure (\\d database_backups), against the guide's definition")
        width = max((len(line.name) for line in lines), default=10) + 2
        for section, title in SECTIONS:
            rows = [line for line in lines if line.section == section]
            if not rows:
                continue
            self.line(f"{title}:")
            for line in rows:
                shown = line.actual or "missing"
                self.line(f"  {line.mark} {line.name.ljust(width)}{shown}")
                if not line.ok:
                    self.line(f"    {' ' * width}expected: {line.expected}")
