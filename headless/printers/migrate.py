"""The migration's headless printer: turns its events into the guide's "Expected Output"."""

from __future__ import annotations

import sys
from typing import TextIO

from migration.events import (
    MigrateEvent,
    Notice,
    Outcome,
    PoolerDetected,
    RunFinished,
    RunStarted,
    Step,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from migration.guide import NEXT_STEPS, SUCCESS_LINES

class Printer:
    """Call with each event. ``verbose`` also prints quiet steps, skips and timings."""

    def __init__(self, out: TextIO | None = None, verbose: bool = False) -> None:
        self.out = out or sys.stdout
        self.verbose = verbose
        self.closed = False  # the reader went away (e.g. `| head`)

    def line(self, text: str = "") -> None:
        """Print; if the output is gone, stay silent: the migration's outcome must not depend on a pipe."""
        if self.closed:
            return
        try:
            print(text, file=self.out, flush=True)
        except (OSError, ValueError):  # BrokenPipeError, or a closed file
            self.closed = True
            _silence(self.out)

    def __call__(self, event: MigrateEvent) -> None:
        timing = (lambda ms: f" ({ms:.1f} ms)") if self.verbose else (lambda ms: "")
        if isinstance(event, RunStarted):
            self.line(f"🚀 Starting safe migration: Add {event.table} table")
            self.line(f"Database: {event.masked_url}")
            if event.schema != "public" or self.verbose:
                self.line(f"Schema: {event.schema}")
        elif isinstance(event, StepStarted):
            if self.verbose:
                self.line(f"… Step {event.step.value}/8 {event.step.title}")
        elif isinstance(event, StepFinished):
            if event.quiet and not self.verbose:
                return
            mark = "⚠️ " if event.warning else "✓"
            self.line(f"{mark} {event.message}{timing(event.elapsed_ms)}")
            if self.verbose or event.step is Step.CONNECTION_TEST:
                for detail in event.details:
                    self.line(f"  {detail}")
        elif isinstance(event, StepSkipped):
            if self.verbose:
                self.line(f"- Step {event.step.value}/8 {event.step.title} skipped: {event.reason}")
        elif isinstance(event, StepFailed):
            self.line(f"✗ Step {event.step.value}/8 {event.step.title} failed{timing(event.elapsed_ms)}")
            for text in event.error.lines():
                self.line(text)
        elif isinstance(event, Notice):
            self.line(f"  Notice: {event.message}")
        elif isinstance(event, PoolerDetected):
            self.line(f"🔀 Connection pooler — {event.text}")
        elif isinstance(event, RunFinished):
            self.finished(event)

    def finished(self, event: RunFinished) -> None:
        if event.outcome is Outcome.SUCCESS:
            self.line()
            self.line(f"🎉 {event.message}")
            for text in SUCCESS_LINES:
                self.line(text)
            self.line()
            for text in NEXT_STEPS:
                self.line(text)
        elif event.outcome is Outcome.NOT_NEEDED:
            self.line(f"✅ {event.message}")
            report = event.report
            for text in report.differences if report else ():
                self.line(f"  Note: {text}")
        elif event.outcome is Outcome.CANCELLED:
            self.line(f"⏹  Cancelled — {event.message[0].lower()}{event.message[1:]}")
        else:
            self.line(f"↩️  {event.message}" if event.rolled_back else "Nothing was changed.")
            self.line("❌ Migration failed" + (" - another migration is running" if event.outcome is Outcome.BUSY
                                              else ""))


def _silence(stream: TextIO) -> None:
    """Point a broken stream's descriptor at /dev/null so the interpreter's exit flush stays quiet."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
