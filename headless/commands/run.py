"""``migrate-tui run``: the checklist, a verified backup, then the migration, headless, printing the
guide's Expected Output. The checklist's rule is the wizard's (:attr:`Checklist.blocking`): any
failure stops before the backup, and nothing is changed."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from migration import audit, exit_codes
from migration.errors import ConfigError

from ..options import add_audit_option, add_backup_location, add_target_options, backup_options
from ..printers.checklist import MARKS
from ..running import run_cancellable, target
from .backup import run_backup

SKIP_WARNING = (
    "⚠️  BACKUP SKIPPED (--skip-backup): no backup of the database is made before this migration.",
    "   If anything goes wrong you will have no copy of the current database to restore from.",
)


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("run", help="run the migration headless (for scripts and CI)")
    add_target_options(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every step with its timing")
    add_audit_option(parser)
    add_backup_location(parser)
    parser.add_argument("--skip-backup", action="store_true",
                        help="do NOT back up the database before migrating (not recommended)")
    return parser


def handle(args: argparse.Namespace) -> int:
    from migration.runner import Migration

    from ..printers.migrate import Printer

    if not args.yes and not sys.stdin.isatty():  # before anything starts (the demo database included)
        raise ConfigError("Refusing to change the database without confirmation.",
                          "Pass --yes to run non-interactively, e.g. migrate-tui run --yes")
    with target(args) as settings:
        if not args.yes:
            answer = input(f"Apply the migration to {settings.masked_url} (schema {settings.schema})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Aborted; nothing was changed.")
                return exit_codes.FAILURE
        stop = before_migration(args, settings)  # the checklist, then a verified backup
        if stop is not None:
            return stop
        printer = Printer(verbose=args.verbose)
        log = audit.AuditLog(getattr(args, "audit_log", None))
        migration = Migration(settings, log.tap(settings, "migrate", printer))
        return exit_codes.for_outcome(run_cancellable(migration).outcome)


def before_migration(args: argparse.Namespace, settings, out: TextIO | None = None) -> int | None:
    """The checklist, then the backup: an exit code to stop with, or None to go on."""
    from migration.events import CheckCompleted, Status
    from migration.preflight import Preflight

    out = out or sys.stdout
    print(f"🔎 Pre-migration checklist: {settings.masked_url}", file=out, flush=True)

    def show(event) -> None:
        if isinstance(event, CheckCompleted):
            result = event.result
            if result.status is Status.WARNING:
                print(f"  Warning: {result.name}: {result.detail}", file=out, flush=True)
            elif result.status is Status.FAILURE:  # the detail is the error, in the guide's words where it has some
                print(f"{MARKS['failure']} {result.name}", file=out, flush=True)
                print(f"Error: {result.detail}", file=out, flush=True)
                print(f"  Fix: {result.hint}", file=out, flush=True)

    options = backup_options(args)
    log = audit.AuditLog(getattr(args, "audit_log", None))
    preflight = Preflight(settings, log.tap(settings, "check", show), options=options,
                          with_backup=not args.skip_backup)
    checked = run_cancellable(preflight, "stopping the checks")
    checklist = preflight.checklist
    if not checked.ok:
        print("Nothing was changed.", file=out)
        print(f"❌ Migration not started - the pre-migration checklist failed ({checklist.summary()})",
              file=out, flush=True)
        return exit_codes.for_outcome(checked.outcome)
    counts = checklist.summary().split(" — ")[0]
    print(f"✓ Pre-migration checklist passed: {counts}", file=out, flush=True)
    if args.skip_backup:
        for text in SKIP_WARNING:
            print(text, file=out, flush=True)
            print(text, file=sys.stderr, flush=True)
    elif checklist.table_state == "valid":
        print("  Backup not needed: the migration will not change anything (see below).", file=out, flush=True)
    else:
        result = run_backup(settings, options, tool=checklist.pg_dump, out=out,
                            audit_log=getattr(args, "audit_log", None))
        if not result.ok:
            print("Nothing was changed: the migration does not start without a verified backup "
                  "(or pass --skip-backup).", file=out, flush=True)
            return exit_codes.for_outcome(result.outcome)
    print(file=out, flush=True)
    return None
