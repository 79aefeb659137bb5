"""Headless output of the pre-migration checklist: one line per check, its fix when it is not ok."""

from __future__ import annotations

from typing import TextIO

MARKS = {"ok": "✓", "info": "ℹ", "warning": "⚠️ ", "failure": "✗"}


def print_row(result, out: TextIO) -> None:
    print(f"  {MARKS[result.status.value]} {result.name}: {result.detail}", file=out, flush=True)
    if result.hint and result.status.value != "ok":
        label = "Later" if result.status.value == "info" else "Fix"  # a note for after the migration is not a fix
        print(f"      {label}: {result.hint}", file=out, flush=True)
