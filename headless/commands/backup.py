"""``migrate-tui backup``: a verified pg_dump of the whole database, headless.

Progress is a live bar on a terminal and plain lines otherwise; at the end it prints the path,
size and sha256. Exit codes: 0 written and verified, 1 failed (nothing kept), 130 cancelled,
78 configuration.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from migration import audit, exit_codes

from ..options import add_audit_option, add_backup_location, add_dump_options, add_target_options, backup_options
from ..printers.backup import BackupView
from ..running import run_cancellable, target


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("backup", help="pg_dump the whole database to a verified backup file")
    add_target_options(parser)
    add_backup_location(parser)
    add_dump_options(parser)
    add_audit_option(parser)
    return parser


def run_backup(settings, options, *, tool=None, out: TextIO | None = None, audit_log=None):
    """Run a backup with live output; Ctrl+C / SIGTERM cancel it. Returns the BackupFinished."""
    from migration.backup import Backup

    view = audit.AuditLog(audit_log).tap(settings, "backup", BackupView(out))  # also recorded in the audit log
    return run_cancellable(Backup(settings, view, options, tool=tool),
                           "stopping pg_dump and deleting the partial file")


def handle(args: argparse.Namespace) -> int:
    with target(args) as settings:
        result = run_backup(settings, backup_options(args), audit_log=getattr(args, "audit_log", None))
        return exit_codes.for_outcome(result.outcome)
