"""Headless output of a rollback (preview, safety copy, lock waits, result) and of a restore."""

from __future__ import annotations

import sys
from typing import TextIO

from migration.events import (
    Dropped,
    LockAcquired,
    LockTimedOut,
    Outcome,
    PoolerDetected,
    Preview,
    PreviewReady,
    RestoreFinished,
    RestoreStarted,
    RollbackFinished,
    RollbackStarted,
    SafetyCopyFinished,
    SafetyCopySkipped,
    SafetyCopyStarted,
    Verified,
    WaitingForLock,
)


class RollbackPrinter:
    """Headless output of a rollback (preview, copy, lock waits, result)."""

    def __init__(self, out: TextIO | None = None, perform: bool = True, cascade: bool = False,
                 copy: bool = True) -> None:
        self.out = out or sys.stdout
        self.perform = perform
        self.cascade = cascade
        self.copy = copy  # a safety copy will be taken (not --no-table-backup)
        self._last_blockers: tuple[int, ...] | None = None

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, RollbackStarted):
            self.line(f"↩️  Manual rollback: drop table {event.schema}.{event.table}")
            self.line(f"Database: {event.masked_url}")
        elif isinstance(event, PoolerDetected):
            self.line(f"🔀 Connection pooler — {event.text}")
        elif isinstance(event, PreviewReady):
            self.preview(event.preview)
        elif isinstance(event, SafetyCopyStarted):
            for path in event.removed:
                self.line(f"🧹 Removed a temporary file left by a killed run: {path}")
            self.line(f"… Safety copy of the table with {event.pg_dump}")
        elif isinstance(event, SafetyCopyFinished):
            c = event.copy
            self.line(f"✓ Safety copy written and verified: {c.path}")
            self.line(f"  {c.rows} rows, {c.size_bytes} bytes, sha256 {c.sha256}")
            if c.dependents:
                self.line(f"  Also holds the definitions of {len(c.dependents)} dependent object(s): "
                          + "; ".join(c.dependents))
            for lost in c.not_kept:
                self.line(f"⚠️  Not in the copy (cannot be recreated): {lost}")
            self.line(f"  Restore it with: {c.restore_command}")
        elif isinstance(event, SafetyCopySkipped):
            self.line(f"⚠️  No safety copy: {event.reason}")
        elif isinstance(event, WaitingForLock):
            pids = tuple(b.pid for b in event.blockers)
            if pids != self._last_blockers:
                self._last_blockers = pids
                self.line(f"… Waiting for the lock (attempt {event.attempt}/{event.attempts}); blocked by:")
                for b in event.blockers:
                    self.line(f"    {b.describe()}")
        elif isinstance(event, LockTimedOut):
            self._last_blockers = None
            self.line(f"⚠️  Lock not granted within the lock timeout (attempt {event.attempt}/{event.attempts}); "
                      "other sessions were not kept waiting.")
            for b in event.blockers:
                self.line(f"    {b.describe()}")
            if event.retry_in_s is not None:
                self.line(f"  Retrying in {event.retry_in_s:.1f} s…")
        elif isinstance(event, LockAcquired):
            self.line(f"✓ Lock acquired (attempt {event.attempt}, {event.waited_ms:.0f} ms)")
        elif isinstance(event, Dropped):
            self.line(f"✓ Dropped: {event.statement}")
            for label in event.dependents:
                self.line(f"  also dropped: {label}")
        elif isinstance(event, Verified):
            self.line("✓ Verified in the catalog: " + "; ".join(event.checks))
        elif isinstance(event, RollbackFinished):
            self.finished(event)

    def preview(self, p: Preview) -> None:
        if not p.exists:
            return
        if not p.is_table:  # never read from: only what the catalog says it is
            self.line(f"{p.qualified} is a {p.kind} owned by {p.owner}, not a table: migrate-tui does not read "
                      "from it or drop it.")
            return
        if not p.can_drop:
            self.line(f"Table {p.qualified} belongs to {p.owner}: only its owner can drop it; it was not read.")
            return
        self.line(f"Table {p.qualified}: {p.row_count} rows, {p.size_pretty} on disk (PostgreSQL {p.server_version})")
        self.line("  Indexes: " + (", ".join(p.indexes) or "none"))
        self.line(f"  Sequence: {p.sequence or 'none'}")
        if p.dependents:
            self.line(f"  CASCADE would also remove {len(p.dependents)} dependent object(s):")
            for dep in p.dependents:
                fate = dep.fate if self.copy or not dep.ours else "no safety copy: gone for good"
                self.line(f"    - {dep.label} — {fate}")
        else:
            self.line("  No other objects depend on it (a plain DROP TABLE, no CASCADE).")
        self.line(f"  SQL: {p.drop_sql};")

    def finished(self, event: RollbackFinished) -> None:
        outcome = event.outcome
        if outcome is Outcome.SUCCESS:
            self.line()
            if event.error:  # dropped, as the catalog read after a later error confirms
                for text in event.error.lines():
                    self.line(text)
            self.line(f"✅ {event.message}")
            if event.copy:
                self.line(f"To restore the table: {event.copy.restore_command}")
            return
        if outcome is Outcome.NOT_NEEDED:
            self.line(f"✅ {event.message}")
            return
        if outcome is Outcome.NEEDS_CONFIRMATION:
            self.line(f"✗ {event.message}")
            for label in event.details:
                self.line(f"    - {label}")
            if event.error is not None and "--accept-loss" in event.error.hint and "Review them" not in \
                    event.error.hint:
                self.line("  Fix: re-run with --cascade --accept-loss to drop them anyway (no copy can bring back the "
                          "objects marked NOT recoverable), or change them yourself first.")
            else:
                self.line("  Fix: re-run with --cascade to drop the objects listed above together with the table"
                          + (" (and --accept-loss for those marked NOT recoverable)." if event.error is not None
                             and "--accept-loss" in event.error.hint else "."))
            return
        if event.error:
            for text in event.error.lines():
                self.line(text)
        mark = "⏹ " if outcome is Outcome.CANCELLED else "❌"
        self.line(f"{mark} {event.message}")


class RestorePrinter:
    """Headless output of a restore of the safety copy."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, RestoreStarted):
            self.line(f"↩️  Restoring {event.schema}.{event.table} from {event.path}")
            self.line(f"Database: {event.masked_url}")
        elif isinstance(event, PoolerDetected):
            self.line(f"🔀 Connection pooler — {event.text}")
        elif isinstance(event, RestoreFinished):
            for key in event.recreated:
                self.line(f"✓ Recreated: {key}")
            for line in event.not_recreated:
                self.line(f"✗ Could not recreate: {line}")
            if event.error is not None:
                for text in event.error.lines():
                    self.line(text)
            mark = "✅ " if event.ok else ("⏹  " if event.outcome is Outcome.CANCELLED else "❌ ")
            self.line(mark + event.message)
