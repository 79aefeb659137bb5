"""``migrate-tui run``: the checklist, a verified backup, its restore drill and a rehearsal of the migration on
the restored copy, then the migration, headless, printing the guide's Expected Output. The checklist's
rule is the wizard's (:attr:`Checklist.blocking`): any failure stops before the backup, and nothing is
changed; a drill or rehearsal that fails stops before production is touched.

The drill and the rehearsal run by default for databases up to ``--drill-max-size`` (10 GB): they need
about the database's size in the temp directory and take roughly as long as a restore (the checklist
says how long). Above it, or with ``--skip-drill`` / ``--skip-rehearsal``, they are skipped with the
risk stated, in the output, the audit log and the backup's manifest."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from migration import audit, exit_codes
from migration.errors import ConfigError

from ..options import (
    add_audit_option,
    add_backup_location,
    add_drill_choice,
    add_dump_options,
    add_target_options,
    backup_options,
    drill_options,
)
from ..printers.checklist import MARKS
from ..running import run_cancellable, target
from .backup import run_backup

SKIP_WARNING = (
    "⚠️  BACKUP SKIPPED (--skip-backup): no backup of the database is made before this migration.",
    "   If anything goes wrong you will have no copy of the current database to restore from.",
    "   Nor is there a drill or a rehearsal: without a backup there is no copy to restore and rehearse on.",
)
DRILL_RISK = ("the backup was verified (sha256, complete) but not restored: if it does not load (a missing "
              "extension, a role, a dump taken with the wrong tool) you find out only when you need it")
REHEARSAL_RISK = "the migration and its rollback were not tried on a copy of this database: production is the first"


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("run", help="run the migration headless (for scripts and CI)")
    add_target_options(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every step with its timing")
    add_audit_option(parser)
    add_backup_location(parser)
    add_dump_options(parser)
    parser.add_argument("--skip-backup", action="store_true",
                        help="do NOT back up the database before migrating (not recommended)")
    add_drill_choice(parser)
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
                          with_backup=not args.skip_backup, drill=drill_options(args))
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
        stop = prove_backup(args, settings, result.path, checklist.database_bytes, out)
        if stop is not None:
            return stop
    print(file=out, flush=True)
    return None


def prove_backup(args: argparse.Namespace, settings, path: str, database_bytes: int | None, out: TextIO) -> int | None:
    """The drill and the rehearsal (by default below --drill-max-size): an exit code to stop with, or None."""
    from migration.backup import human_bytes
    from migration.events import DrillFinished

    from .rehearse import drill_and_rehearse, run_drill

    options = drill_options(args)
    audit_log = getattr(args, "audit_log", None)
    if not options.wanted(database_bytes):
        reason = "--skip-drill" if options.enabled is False else (
            f"the database is {human_bytes(database_bytes or 0)}, above the drill size limit "
            f"{human_bytes(options.max_bytes)} (--drill-max-size); pass --drill to run them")
        _skipped(settings, path, audit_log, out, "DRILL AND REHEARSAL SKIPPED", reason, DRILL_RISK, "drill")
        return None
    print(file=out, flush=True)
    if options.rehearse:
        result = drill_and_rehearse(settings, options, path, out=out, audit_log=audit_log)
    else:
        _, result = run_drill(settings, options, path, out=out, audit_log=audit_log)
        if result.ok:
            _skipped(settings, path, audit_log, out, "REHEARSAL SKIPPED", "--skip-rehearsal", REHEARSAL_RISK,
                     "rehearsal")
    if result.ok:
        return None
    if result.outcome.value != "cancelled":
        what = "the backup did not prove it restores" if isinstance(result, DrillFinished) \
            else "the rehearsal on a copy of the database failed"
        print(f"Nothing was changed: the production migration does not start, because {what}.", file=out, flush=True)
        print(f"  Fix the cause (above), or pass {'--skip-drill' if isinstance(result, DrillFinished) else '--skip-rehearsal'}"
              " to migrate without this proof.", file=out, flush=True)
    return exit_codes.for_outcome(result.outcome)


def _skipped(settings, path: str, audit_log, out: TextIO, title: str, reason: str, risk: str, key: str) -> None:
    """Say so loudly, in the audit log and in the backup's manifest."""
    from pathlib import Path

    from migration.backup.manifest import record

    for text in (f"⚠️  {title} ({reason}).", f"   Risk: {risk}."):
        print(text, file=out, flush=True)
        print(text, file=sys.stderr, flush=True)
    entry = {"skipped": True, "reason": reason, "risk": risk}
    audit.AuditLog(audit_log).record(settings, "drill" if key == "drill" else "rehearse",
                                     "DrillSkipped" if key == "drill" else "RehearsalSkipped", **entry)
    try:
        record(Path(path), key, entry, settings.secrets())
        if key == "drill":
            record(Path(path), "rehearsal", entry, settings.secrets())
    except Exception:  # noqa: BLE001 - the skip is in the output and the audit log already
        pass
