"""``migrate-tui rollback``: preview the guide's Manual Rollback; with ``--yes`` perform it safely.

Without ``--yes`` it prints the preview and stops (exit 0). With ``--yes`` it takes a
safety copy, drops the table under a bounded lock wait and verifies the catalog.
Objects that depend on the table additionally need ``--cascade``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from .. import audit, exit_codes
from ..rollback_events import (
    Dropped,
    LockAcquired,
    LockTimedOut,
    Preview,
    PreviewReady,
    RollbackFinished,
    RollbackOutcome,
    RollbackStarted,
    SafetyCopyFinished,
    SafetyCopySkipped,
    SafetyCopyStarted,
    Verified,
    WaitingForLock,
)
from .common import add_target_options, run_cancellable, target

BY_OUTCOME = {
    RollbackOutcome.DROPPED: exit_codes.OK,
    RollbackOutcome.NOTHING: exit_codes.OK,
    RollbackOutcome.NEEDS_CONFIRMATION: exit_codes.FAILURE,
    RollbackOutcome.CHANGED: exit_codes.FAILURE,
    RollbackOutcome.FAILED: exit_codes.FAILURE,
    RollbackOutcome.CANCELLED: exit_codes.CANCELLED,
    RollbackOutcome.BUSY: exit_codes.BUSY,
}


def add_parser(sub) -> argparse.ArgumentParser:
    from ..rollback_events import DEFAULT_RETRIES
    from ..settings import DEFAULT_BACKUP_DIR

    parser = sub.add_parser("rollback", help="preview (and with --yes perform) the manual rollback: DROP the table")
    add_target_options(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="perform the rollback (without it: preview only)")
    parser.add_argument("--cascade", action="store_true",
                        help="also drop the objects the preview lists as depending on the table")
    parser.add_argument("--no-table-backup", action="store_true",
                        help="do not take a pg_dump safety copy of the table first")
    parser.add_argument("--backup-dir", metavar="DIR", type=Path, default=DEFAULT_BACKUP_DIR,
                        help=f"where the safety copy is written (default: ./{DEFAULT_BACKUP_DIR})")
    parser.add_argument("--retries", type=int, metavar="N", default=DEFAULT_RETRIES,
                        help=f"further attempts after a lock timeout, with backoff (default: {DEFAULT_RETRIES})")
    parser.add_argument("--trust-backup-dir", action="store_true",
                        help="accept a backup directory that is a system directory or belongs to another user "
                             "(RISK: files there may be overwritten or exposed, and its owner can read or replace "
                             "the safety copy)")
    # --lock-timeout MS is one of the shared target options; for the rollback its default is 3000 ms.
    parser.add_argument("--restore", metavar="FILE", type=Path, default=None,
                        help="undo a rollback: restore the table from its safety copy (then verify it)")
    audit.add_option(parser)
    return parser


def handle(args: argparse.Namespace) -> int:
    from ..rollback import Rollback, RollbackOptions, DEFAULT_LOCK_TIMEOUT_MS

    if args.retries < 0:
        print("Error: --retries must be 0 or more.", file=sys.stderr)
        return exit_codes.USAGE
    log = audit.AuditLog.from_args(args)
    if args.restore is not None:
        return _restore(args, log)
    with target(args) as settings:
        lock_timeout = getattr(args, "lock_timeout", None) or DEFAULT_LOCK_TIMEOUT_MS
        options = RollbackOptions(lock_timeout_ms=lock_timeout, retries=args.retries,
                                  table_backup=not args.no_table_backup, backup_dir=args.backup_dir,
                                  trust_backup_dir=args.trust_backup_dir)
        printer = RollbackPrinter(perform=args.yes, cascade=args.cascade)
        emit = log.tap(settings, "rollback", printer)
        if not args.yes:
            return _preview_only(settings, options, emit, printer)
        rollback = Rollback(settings, emit, options)
        result, _ = run_cancellable(lambda: rollback.run(cascade=args.cascade), rollback.cancel,
                                    "stopping the DROP and rolling back")
        if not isinstance(result, RollbackFinished):  # pragma: no cover - run() always returns a result
            return exit_codes.FAILURE
        return BY_OUTCOME[result.outcome]


def _restore(args: argparse.Namespace, log: "audit.AuditLog") -> int:
    from ..rollback_restore import Restore

    with target(args) as settings:
        log.ensure()
        print(f"↩️  Restoring {settings.schema}.database_backups from {args.restore}")
        print(f"Database: {settings.masked_url}")
        restore = Restore(settings, args.restore)
        result, _ = run_cancellable(restore.run, restore.cancel, "stopping psql; nothing is kept")
        log.record(settings, "restore", "RestoreFinished", outcome=result.outcome, message=result.message,
                   error=result.error, elapsed_ms=result.elapsed_ms, path=result.path, rows=result.rows)
        if result.ok:
            print(f"✅ {result.message}")
            return exit_codes.OK
        if result.error is not None:
            for text in result.error.lines():
                print(text)
        print(("⏹  " if result.outcome == "cancelled" else "❌ ") + result.message)
        return exit_codes.CANCELLED if result.outcome == "cancelled" else exit_codes.FAILURE


def _preview_only(settings, options, emit, printer: "RollbackPrinter") -> int:
    from ..rollback import read_preview

    from ..schema import TABLE

    emit(RollbackStarted(settings.masked_url, settings.schema, TABLE.name))
    preview = read_preview(settings, lock_timeout_ms=options.lock_timeout_ms)
    emit(PreviewReady(preview))
    if not preview.exists:
        printer.line(f"✅ Nothing to roll back: table {preview.qualified} does not exist.")
        return exit_codes.OK
    printer.line()
    printer.line("This was a preview; nothing was changed. To perform it:")
    printer.line("  migrate-tui rollback --yes" + (" --cascade" if preview.dependents else ""))
    return exit_codes.OK


class RollbackPrinter:
    """Headless output of a rollback (preview, copy, lock waits, result)."""

    def __init__(self, out: TextIO | None = None, perform: bool = True, cascade: bool = False) -> None:
        self.out = out or sys.stdout
        self.perform = perform
        self.cascade = cascade
        self._last_blockers: tuple[int, ...] | None = None

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, RollbackStarted):
            self.line(f"↩️  Manual rollback: drop table {event.schema}.{event.table}")
            self.line(f"Database: {event.masked_url}")
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
        self.line(f"Table {p.qualified}: {p.row_count} rows, {p.size_pretty} on disk (PostgreSQL {p.server_version})")
        self.line("  Indexes: " + (", ".join(p.indexes) or "none"))
        self.line(f"  Sequence: {p.sequence or 'none'}")
        if p.dependents:
            self.line(f"  CASCADE would also remove {len(p.dependents)} dependent object(s):")
            for dep in p.dependents:
                self.line(f"    - {dep.label}")
        else:
            self.line("  No other objects depend on it (a plain DROP TABLE, no CASCADE).")
        self.line(f"  SQL: {p.drop_sql};")

    def finished(self, event: RollbackFinished) -> None:
        outcome = event.outcome
        if outcome is RollbackOutcome.DROPPED:
            self.line()
            self.line(f"✅ {event.message}")
            if event.copy:
                self.line(f"To restore the table: {event.copy.restore_command}")
            return
        if outcome is RollbackOutcome.NOTHING:
            self.line(f"✅ {event.message}")
            return
        if outcome is RollbackOutcome.NEEDS_CONFIRMATION:
            self.line(f"✗ {event.message}")
            for label in event.details:
                self.line(f"    - {label}")
            self.line("  Re-run with --cascade to drop the objects listed above together with the table.")
            return
        if event.error:
            for text in event.error.lines():
                self.line(text)
        mark = "⏹ " if outcome is RollbackOutcome.CANCELLED else "❌"
        self.line(f"{mark} {event.message}")
