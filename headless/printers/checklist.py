"""Headless output of the pre-migration checklist: one line per check, its fix when it is not ok."""

from __future__ import annotations

from typing import TextIO

MARKS = {"ok": "✓", "info": "ℹ", "warning": "⚠️ ", "failure": "✗"}


def print_row(result, out: TextIO) -> None:
    print(f"  {MARKS[result.status.value]} {result.name}: {result.detail}", file=out, flush=True)
    if result.hint and result.status.value != "ok":
        print(f"      Fix: {result.hint}", file=out, flush=True)
