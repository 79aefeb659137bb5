"""``migrate-tui drill [BACKUP]``: prove a backup restores. Without BACKUP, a verified backup is taken first.

The backup is restored into a throwaway local PostgreSQL the tool starts itself (or ``--drill-url``,
an empty database on a scratch server) and compared with the source: every table's rows, every
object. Exit codes: 0 it restores and matches, 1 it does not (named, with the fix), 130 cancelled
(the throwaway server is removed either way), 78 configuration.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from migration import audit, exit_codes

from ..options import (
    add_audit_option,
    add_backup_location,
    add_dump_options,
    add_drill_url,
    add_target_options,
    backup_options,
    drill_options,
)
from ..printers.drill import DrillView
from ..running import run_cancellable, target
from .backup import run_backup


def add_parser(sub) -> argparse.ArgumentParser:
    return add_backup_proof_parser(
        sub, "drill", "restore a backup into a throwaway PostgreSQL and compare it with the source",
        "a backup written by migrate-tui (default: take a verified backup now, then drill it)")


def add_backup_proof_parser(sub, name: str, help: str, backup_help: str) -> argparse.ArgumentParser:
    """``drill`` and ``rehearse``: [BACKUP], the target, where a new backup goes and how, --drill-url, the log."""
    parser = sub.add_parser(name, help=help)
    parser.add_argument("backup", nargs="?", metavar="BACKUP", help=backup_help)
    add_target_options(parser)
    add_backup_location(parser)
    add_dump_options(parser)
    add_drill_url(parser)
    add_audit_option(parser)
    return parser


def run_drill(settings, options, backup, *, keep: bool = False, out: TextIO | None = None, audit_log=None):
    """Run a drill with live output; Ctrl+C / SIGTERM cancel it (the throwaway server goes). (Drill, DrillFinished)."""
    from migration.drill.drill import Drill

    view = audit.AuditLog(audit_log).tap(settings, "drill", DrillView(out))
    drill = Drill(settings, view, backup, options, keep=keep)
    return drill, run_cancellable(drill, "stopping the restore and removing the throwaway server")


def backup_to_drill(args: argparse.Namespace, settings, out: TextIO | None = None):
    """The backup named on the command line, or a new verified one: (path, None) or (None, exit code)."""
    if args.backup:
        return args.backup, None
    result = run_backup(settings, backup_options(args), out=out, audit_log=getattr(args, "audit_log", None))
    if not result.ok:
        return None, exit_codes.for_outcome(result.outcome)
    print(file=out, flush=True)
    return result.path, None


def handle(args: argparse.Namespace) -> int:
    return prove_backup(args, lambda settings, options, path, audit_log:
                        run_drill(settings, options, path, audit_log=audit_log)[1])


def prove_backup(args: argparse.Namespace, prove) -> int:
    """``drill`` and ``rehearse``: the backup named (or a new verified one), then ``prove(settings, options,
    path, audit_log)`` → its Finished; the exit code of whichever ended the command."""
    with target(args) as settings:
        options = drill_options(args)
        audit_log = getattr(args, "audit_log", None)
        audit.AuditLog(audit_log).ensure()
        path, stop = backup_to_drill(args, settings)
        if stop is not None:
            return stop
        return exit_codes.for_outcome(prove(settings, options, path, audit_log).outcome)
