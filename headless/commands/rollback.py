"""``migrate-tui rollback``: preview the guide's Manual Rollback; with ``--yes`` perform it safely.

Without ``--yes`` it prints the preview and stops (exit 0; 1 when the name is not a table it may
drop). With ``--yes`` it takes a safety copy, drops the table under a bounded lock wait and
verifies the catalog. Objects that depend on the table additionally need ``--cascade``.
``--restore FILE`` undoes it from the safety copy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from migration import audit, exit_codes
from migration.options import DEFAULT_RETRIES

from ..options import (
    add_audit_option,
    add_target_options,
    add_trust_option,
    check_accept_loss,
    non_negative,
    rollback_options,
)
from ..printers.rollback import RestorePrinter, RollbackPrinter
from ..running import print_error, run_cancellable, target


def add_parser(sub) -> argparse.ArgumentParser:
    from migration.settings import DEFAULT_BACKUP_DIR

    parser = sub.add_parser("rollback", help="preview (and with --yes perform) the manual rollback: DROP the table")
    add_target_options(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="perform the rollback (without it: preview only)")
    parser.add_argument("--cascade", action="store_true",
                        help="also drop the objects the preview lists as depending on the table")
    parser.add_argument("--accept-loss", action="store_true",
                        help="with --cascade: also drop dependents no safety copy can hold (the preview marks them "
                             "NOT recoverable, e.g. a column of another table of the table's row type)")
    parser.add_argument("--no-table-backup", action="store_true",
                        help="do not take a pg_dump safety copy of the table first")
    parser.add_argument("--backup-dir", metavar="DIR", type=Path, default=DEFAULT_BACKUP_DIR,
                        help=f"where the safety copy is written (default: ./{DEFAULT_BACKUP_DIR})")
    add_trust_option(parser)
    parser.add_argument("--retries", type=non_negative, metavar="N", default=DEFAULT_RETRIES,
                        help=f"further attempts after a lock timeout, with backoff (default: {DEFAULT_RETRIES})")
    # --lock-timeout MS is one of the shared target options; for the rollback its default is 3000 ms.
    parser.add_argument("--restore", metavar="FILE", type=Path, default=None,
                        help="undo a rollback: restore the table from its safety copy (then verify it)")
    add_audit_option(parser)
    return parser


def handle(args: argparse.Namespace) -> int:
    from migration.rollback import Restore, Rollback

    check_accept_loss(args, "migrate-tui rollback")
    log = audit.AuditLog(getattr(args, "audit_log", None))
    with target(args) as settings:
        log.ensure()
        if args.restore is not None:
            restore = Restore(settings, args.restore, log.tap(settings, "restore", RestorePrinter()))
            result = run_cancellable(restore, "stopping psql; nothing is kept")
            return exit_codes.for_outcome(result.outcome)
        printer = RollbackPrinter(perform=args.yes, cascade=args.cascade, copy=not args.no_table_backup)
        emit = log.tap(settings, "rollback", printer)
        options = rollback_options(args)
        if not args.yes:
            return _preview_only(settings, options, emit, printer)
        rollback = Rollback(settings, emit, options, cascade=args.cascade, accept_loss=args.accept_loss)
        result = run_cancellable(rollback, "stopping the DROP and rolling back")
        return exit_codes.for_outcome(result.outcome)


def _preview_only(settings, options, emit, printer: RollbackPrinter) -> int:
    from migration.events import PoolerDetected, PreviewReady, RollbackStarted
    from migration.pooler import detect_for
    from migration.rollback import read_preview
    from migration.rollback.preview import not_ours
    from migration.schema import TABLE

    emit(RollbackStarted(settings.masked_url, settings.schema, TABLE.name))
    pooler = detect_for(settings)
    if pooler.present:
        emit(PoolerDetected("rollback", pooler, pooler.describe("rollback")))
    preview = read_preview(settings, lock_timeout_ms=options.lock_timeout_ms)
    emit(PreviewReady(preview))
    if not preview.exists:
        printer.line(f"✅ Nothing to roll back: table {preview.qualified} does not exist.")
        return exit_codes.OK
    refused = not_ours(preview, what="a rollback would not drop it")
    if refused is not None:
        print_error(refused, printer.out)
        return exit_codes.FAILURE
    printer.line()
    if preview.others:
        owners = ", ".join(sorted({d.owner for d in preview.others}))
        printer.line(f"This was a preview; nothing was changed. A rollback would refuse: objects owned by {owners} "
                     "depend on the table, and migrate-tui never drops another role's objects.")
        printer.line(f"  Fix: ask {owners} to drop or change them first (or run the rollback as that role).")
        return exit_codes.OK
    printer.line("This was a preview; nothing was changed. To perform it:")
    lossy = preview.lost and options.table_backup
    printer.line("  migrate-tui rollback --yes" + (" --cascade" if preview.dependents else "")
                 + (" --accept-loss" if lossy else ""))
    return exit_codes.OK
