"""Headless output of a rehearsal: each phase on the restored copy with its steps and timings, then the verdict."""

from __future__ import annotations

import sys
from typing import TextIO

from migration.events import (
    Dropped,
    Outcome,
    RehearsalFinished,
    RehearsalPhaseFinished,
    RehearsalPhaseStarted,
    RehearsalStarted,
    Rehearsed,
    RestoreFinished,
    SafetyCopyFinished,
    StepFailed,
    StepFinished,
    Verified,
)

from ..running import print_error

TITLES = {"migrate": "Migration (the guide's 8 steps)", "rollback": "Rollback (safety copy, DROP, verification)",
          "restore": "Restore of the safety copy"}


class RehearsalView:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, RehearsalStarted):
            self.line(f"🎭 Rehearsal on the restored copy ({event.copy}); production is not touched")
        elif isinstance(event, RehearsalPhaseStarted):
            self.line(f"  {TITLES.get(event.phase, event.phase)}")
        elif isinstance(event, Rehearsed):
            self.inner(event.event)
        elif isinstance(event, RehearsalPhaseFinished):
            r = event.result
            mark = "✓" if r.ok else ("⏹ " if r.outcome is Outcome.CANCELLED else "✗")
            self.line(f"  {mark} {r.message} ({r.elapsed_ms:.0f} ms)")
        elif isinstance(event, RehearsalFinished):
            self.finished(event)

    def inner(self, event) -> None:
        if isinstance(event, StepFinished):
            self.line(f"      ✓ {event.step.value}/8 {event.step.title:<19} {event.elapsed_ms:8.1f} ms  {event.message}")
        elif isinstance(event, StepFailed):
            self.line(f"      ✗ {event.step.value}/8 {event.step.title:<19} {event.elapsed_ms:8.1f} ms  "
                      f"{event.error.message}")
        elif isinstance(event, SafetyCopyFinished):
            self.line(f"      ✓ safety copy: {event.copy.rows} rows, {event.copy.size_bytes:,} bytes "
                      f"({event.copy.elapsed_ms:.0f} ms)")
        elif isinstance(event, Dropped):
            self.line(f"      ✓ {event.statement} ({event.elapsed_ms:.1f} ms)")
        elif isinstance(event, Verified):
            self.line(f"      ✓ verified: {event.checks[0]}" + (f" (and {len(event.checks) - 1} more checks)"
                                                              if len(event.checks) > 1 else ""))
        elif isinstance(event, RestoreFinished) and event.ok:
            self.line(f"      ✓ restored: {event.rows} rows, sha256 {event.sha256[:12]}…")

    def finished(self, event: RehearsalFinished) -> None:
        if event.ok:
            self.line(f"✓ Rehearsal passed: {event.message[0].lower()}{event.message[1:]}")
        elif event.outcome is Outcome.CANCELLED:
            self.line(f"⏹  {event.message}.")
        else:
            self.line(f"✗ {event.message}")
            if event.error is not None:
                print_error(event.error, self.out)
        if event.removed:
            self.line("  The throwaway copy was removed.")
        if event.manifest_updated:
            self.line("  The result is recorded in the backup's manifest.")
