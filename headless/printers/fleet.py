"""Headless output of a fleet run: one line per target's milestone (prefixed with its name), each target's error
with its fix, then the summary table (target, wave, outcome, duration, backup, message). Every line goes through
:func:`migration.redact.redact` with the fleet's secrets as a safety net (the engine's own texts have none)."""

from __future__ import annotations

import sys
from typing import TextIO

from migration.backup import human_bytes
from migration.events import (
    BackupFinished,
    ChecklistFinished,
    DrillFinished,
    Dropped,
    RehearsalFinished,
    RunFinished,
    SafetyCopyFinished,
    SafetyCopySkipped,
)
from migration.fleet import (
    DrillSkipped,
    FleetFinished,
    TargetEvent,
    TargetFinished,
    TargetSkipped,
    TargetStarted,
    WaveStarted,
)
from migration.outcome import Finished, Outcome
from migration.redact import redact

MARKS = {Outcome.SUCCESS: "✅", Outcome.NOT_NEEDED: "✅", Outcome.BUSY: "⏳", Outcome.CANCELLED: "⛔"}
WORDS = {Outcome.SUCCESS: "ok", Outcome.NOT_NEEDED: "not needed", Outcome.BUSY: "busy",
         Outcome.CANCELLED: "cancelled", Outcome.FAILED: "failed"}
MESSAGE_WIDTH = 70


def word(outcome: Outcome) -> str:
    return WORDS.get(outcome, outcome.value.replace("_", " "))


class FleetPrinter:
    def __init__(self, action: str, secrets: list[str], out: TextIO | None = None, quiet: bool = False) -> None:
        self.action, self.secrets, self.quiet = action, secrets, quiet
        self.out = out or sys.stdout

    def line(self, text: str = "", err: bool = False) -> None:
        print(redact(text, self.secrets), file=sys.stderr if err else self.out, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, TargetEvent) and isinstance(event.event, DrillSkipped):
            self._skipped(event.target, event.event)
            return
        if self.quiet:
            return
        if isinstance(event, WaveStarted):
            self.line()
            self.line(f"🌊 Wave '{event.wave}': {', '.join(event.targets)}")
        elif isinstance(event, TargetStarted):
            self.line(f"[{event.target}] ▶ {self.action} {event.url}")
        elif isinstance(event, TargetEvent):
            self._step(event.target, event.event)
        elif isinstance(event, TargetFinished):
            mark = MARKS.get(event.outcome, "❌")
            took = f"{event.elapsed_ms / 1000:.1f} s"
            if event.ok or event.error is None:
                self.line(f"[{event.target}] {mark} {word(event.outcome)} ({took}): {event.message}")
            else:
                self.line(f"[{event.target}] {mark} {word(event.outcome)} at the {event.stage} ({took})")
                for text in event.error.lines():
                    self.line(f"[{event.target}] {text}" if text.startswith("Error") else text)
        elif isinstance(event, TargetSkipped):
            self.line(f"[{event.target}] ⏭  skipped: {event.reason}")

    def _skipped(self, name: str, event: DrillSkipped) -> None:
        """Loudly, as `run` says it: on stdout (unless --json) and on stderr."""
        for text in (f"[{name}] ⚠️  DRILL AND REHEARSAL SKIPPED ({event.reason}).", f"   Risk: {event.risk}."):
            if not self.quiet:
                self.line(text)
            self.line(text, err=True)

    def _step(self, name: str, event) -> None:
        if isinstance(event, ChecklistFinished) and event.ok and self.action != "check":
            self.line(f"[{name}]   ✓ checklist: {event.message}")
        elif isinstance(event, BackupFinished) and event.ok:
            size = human_bytes(event.size)
            self.line(f"[{name}]   ✓ backup: {event.path} ({size}, sha256 {str(event.sha256)[:12]}…)")
        elif isinstance(event, (DrillFinished, RehearsalFinished)) and event.ok:
            what = "drill" if isinstance(event, DrillFinished) else "rehearsal"
            self.line(f"[{name}]   ✓ {what}: {event.message}")
        elif isinstance(event, RunFinished) and event.ok:
            self.line(f"[{name}]   ✓ migration: {event.message}")
        elif isinstance(event, SafetyCopyFinished):  # the rollback's, as `rollback` prints it
            self.line(f"[{name}]   ✓ safety copy: {event.copy.path} ({event.copy.rows} rows)")
            for lost in event.copy.not_kept:
                self.line(f"[{name}]   ⚠️  not in the copy (cannot be recreated): {lost}")
        elif isinstance(event, SafetyCopySkipped):
            self.line(f"[{name}]   ⚠️  no safety copy: {event.reason}")
        elif isinstance(event, Dropped):
            self.line(f"[{name}]   ✓ dropped: {event.statement}")
            for label in event.dependents:
                self.line(f"[{name}]     also dropped: {label}")

    def summary(self, result: FleetFinished, order: list[str]) -> None:
        """The table, in the fleet file's order."""
        rows = [(r.target, r.wave, word(r.outcome), f"{r.elapsed_ms / 1000:.1f} s", r.backup_path or "-",
                 _short(_why(r))) for r in result.results]
        rows += [(s.target, s.wave, "skipped", "-", "-", _short(s.reason)) for s in result.skipped]
        position = {name: i for i, name in enumerate(order)}
        rows.sort(key=lambda row: position.get(row[0], 0))
        header = ("TARGET", "WAVE", "OUTCOME", "DURATION", "BACKUP", "MESSAGE")
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        self.line()
        self.line(f"Fleet {self.action} summary")
        for row in [header, *rows]:
            self.line("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        self.line()
        self.line(f"{MARKS.get(result.outcome, '❌')} Fleet {result.message}")
        if result.error is not None:
            for text in result.error.lines():
                self.line(text)


def _why(result: TargetFinished) -> str:
    """The table's message: what went wrong for a failure (the error), else how it ended."""
    if result.outcome in (Outcome.FAILED, Outcome.BUSY) and result.error is not None:
        return result.error.message
    return result.message


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_WIDTH else text[: MESSAGE_WIDTH - 1] + "…"


def as_json(result: FleetFinished, action: str, path: str, exit_code: int, order: list[str]) -> dict:
    def error(finished: Finished):
        return None if finished.error is None else {"message": finished.error.message, "hint": finished.error.hint}

    position = {name: i for i, name in enumerate(order)}
    targets = [{"name": r.target, "wave": r.wave, "outcome": r.outcome.value, "stage": r.stage,
                "duration_ms": round(r.elapsed_ms, 1), "backup_path": r.backup_path, "message": r.message,
                "error": error(r)} for r in result.results]
    targets += [{"name": s.target, "wave": s.wave, "outcome": "skipped", "stage": None, "duration_ms": None,
                 "backup_path": None, "message": s.reason, "error": None} for s in result.skipped]
    targets.sort(key=lambda t: position.get(t["name"], 0))
    return {"file": path, "action": action, "outcome": result.outcome.value, "exit_code": exit_code,
            "message": result.message, "error": error(result), "targets": targets}
