"""``migrate-tui backup``: a verified pg_dump of the whole database, headless.

Progress is a live bar on a terminal and plain lines otherwise; at the end it
prints the path, size and sha256. Also the checklist → backup part of ``run``
(:func:`before_migration`).
Exit codes: 0 written and verified, 1 failed (nothing kept), 130 cancelled, 78 configuration.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import TextIO

from .. import audit, exit_codes
from .check import MARKS, add_backup_location
from .common import add_target_options, print_error, run_cancellable, target

SKIP_WARNING = (
    "⚠️  BACKUP SKIPPED (--skip-backup): no backup of the database is made before this migration.",
    "   If anything goes wrong you will have no copy of the current database to restore from.",
)


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("backup", help="pg_dump the whole database to a verified backup file")
    add_target_options(parser)
    add_backup_location(parser)
    audit.add_option(parser)
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options ``run`` gets for its checklist → backup → migration flow."""
    add_backup_location(parser)
    parser.add_argument("--skip-backup", action="store_true",
                        help="do NOT back up the database before migrating (not recommended)")


class BackupView:
    """Prints backup events: a live bar on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO | None = None, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._last_line = 0.0
        self._last_decile = -1
        self._last_table: str | None = None
        self._bar_shown = False

    def line(self, text: str = "") -> None:
        if self._bar_shown:
            self.out.write("\r\x1b[2K")
            self._bar_shown = False
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        from ..backup import BackupFinished, BackupProgress, BackupStarted, BackupVerifying, human_bytes

        if isinstance(event, BackupStarted):
            for path in event.removed:
                self.line(f"🧹 Removed a temporary file left by a killed run: {path}")
            self.line(f"💾 Backing up {event.database} ({human_bytes(event.database_bytes)}, "
                      f"{event.tables_total} tables) with pg_dump {event.tool.version}, {event.format} format")
            self.line(f"  To: {event.path}")
        elif isinstance(event, BackupProgress):
            self.progress(event, human_bytes)
        elif isinstance(event, BackupVerifying):
            self.line(f"  Verifying: {event.method}…")
        elif isinstance(event, BackupFinished):
            self.finished(event, human_bytes)

    def progress(self, event, human_bytes) -> None:
        eta = f"ETA {_clock(event.eta_s)}" if event.eta_s is not None else "ETA --:--"
        text = (f"{event.fraction * 100:3.0f}%  {event.tables_done}/{event.tables_total} tables  "
                f"{human_bytes(event.bytes_written)}  {eta}  {event.current_table or ''}").rstrip()
        if self.tty:
            width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
            filled = int(event.fraction * 20)
            bar = f"  [{'█' * filled}{'·' * (20 - filled)}] {text}"
            self.out.write("\r\x1b[2K" + bar[:width])
            self.out.flush()
            self._bar_shown = True
            return
        decile = int(event.fraction * 10)
        now = time.monotonic()
        changed = event.current_table != self._last_table and now - self._last_line >= 2.0
        if decile > self._last_decile or changed:
            self._last_decile = max(decile, self._last_decile)
            self._last_table = event.current_table
            self._last_line = now
            self.line(f"  {text}")

    def finished(self, event, human_bytes) -> None:
        if event.ok:
            self.line(f"✓ Backup written and verified: {event.path}")
            self.line(f"  Size: {human_bytes(event.size)} ({event.size:,} bytes)")
            self.line(f"  SHA-256: {event.sha256}")
            self.line(f"  Manifest: {event.manifest}")
            self.line(f"  Took {event.elapsed_s:.1f} s (verification {event.verify_s:.2f} s)")
        elif event.outcome == "cancelled":
            self.line(f"⏹  {event.message}.")
        else:
            kept = "the partial file was deleted" if "partial file was deleted" in event.message \
                else "no backup file was kept"
            self.line(f"✗ Backup failed — {kept}.")  # the error lines below say why
            if event.error is not None:
                print_error(event.error, self.out)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def run_backup(settings, *, backup_dir, fmt: str, tool=None, out: TextIO | None = None, audit_log=None,
               trust_dir: bool = False):
    """Run a backup with live output; Ctrl+C / SIGTERM cancel it. Returns the BackupFinished."""
    from ..backup import Backup

    view = audit.AuditLog(audit_log).tap(settings, "backup", BackupView(out))  # also recorded in the audit log
    backup = Backup(settings, view, backup_dir=backup_dir, fmt=fmt, tool=tool, trust_dir=trust_dir)
    result, _ = run_cancellable(backup.run, backup.cancel, what="stopping pg_dump and deleting the partial file")
    return result


def exit_code(result) -> int:
    if result is None:  # pragma: no cover - Backup.run always returns a result
        return exit_codes.FAILURE
    return {"ok": exit_codes.OK, "cancelled": exit_codes.CANCELLED}.get(result.outcome, exit_codes.FAILURE)


def handle(args: argparse.Namespace) -> int:
    with target(args) as settings:
        return exit_code(run_backup(settings, backup_dir=args.backup_dir, fmt=args.format,
                                    audit_log=getattr(args, "audit_log", None), trust_dir=args.trust_backup_dir))


# Checklist rows the migration itself reports, in the guide's words, before it changes anything.
DEFERRED_TO_MIGRATION = ("table", "index_names")


def before_migration(args: argparse.Namespace, settings, out: TextIO | None = None) -> int | None:
    """``run``: the checklist, then the backup. An exit code to stop with, or None to go on."""
    from ..preflight import Checklist, Status, run_checks

    out = out or sys.stdout
    print(f"🔎 Pre-migration checklist: {settings.masked_url}", file=out, flush=True)
    checklist = Checklist()
    for result in run_checks(settings, checklist, backup_dir=args.backup_dir, fmt=args.format,
                             backup=not args.skip_backup, trust_backup_dir=args.trust_backup_dir):
        if result.status is Status.WARNING:
            print(f"  Warning: {result.name}: {result.detail}", file=out, flush=True)
        elif result.status is Status.FAILURE and result.key not in DEFERRED_TO_MIGRATION:
            print(f"{MARKS['failure']} {result.name}: {result.detail}", file=out, flush=True)
            print(f"  Fix: {result.hint}", file=out, flush=True)
    blocking = [r for r in checklist.failures if r.key not in DEFERRED_TO_MIGRATION]
    if blocking:
        print("Nothing was changed.", file=out)
        print(f"❌ Migration not started - the pre-migration checklist failed ({checklist.summary()})",
              file=out, flush=True)
        return exit_codes.FAILURE
    counts = checklist.summary().split(" — ")[0]
    if checklist.failures:  # only the ones the migration reports itself, in the guide's words
        names = ", ".join(r.name for r in checklist.failures)
        print(f"Pre-migration checklist: {counts}; the migration stops on: {names} (see below)", file=out, flush=True)
    else:
        print(f"✓ Pre-migration checklist passed: {counts}", file=out, flush=True)
    if args.skip_backup:
        for text in SKIP_WARNING:
            print(text, file=out, flush=True)
            print(text, file=sys.stderr, flush=True)
    elif checklist.table_state == "valid" or checklist.failures:
        print("  Backup not needed: the migration will not change anything (see below).", file=out, flush=True)
    else:
        result = run_backup(settings, backup_dir=args.backup_dir, fmt=args.format, tool=checklist.pg_dump, out=out,
                            audit_log=getattr(args, "audit_log", None), trust_dir=args.trust_backup_dir)
        if result is None or not result.ok:
            print("Nothing was changed: the migration does not start without a verified backup "
                  "(or pass --skip-backup).", file=out, flush=True)
            return exit_code(result)
    print(file=out, flush=True)
    return None
