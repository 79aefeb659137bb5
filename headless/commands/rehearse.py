"""``migrate-tui rehearse [BACKUP]``: drill the backup (without BACKUP, take one first), then rehearse the
migration on the restored copy: the guide's eight steps with their verification, the rollback (safety
copy, DROP, verification) and the restore of the safety copy, each with its timing on real data.

The production database is only read (by the backup). Exit codes: 0 every phase succeeded on the
copy, 1 the drill or a phase failed (named), 130 cancelled (the copy is removed either way), 78
configuration.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from migration import audit

from ..printers.rehearsal import RehearsalView
from ..running import interrupts_raise, run_cancellable
from .drill import add_backup_proof_parser, prove_backup, run_drill


def add_parser(sub) -> argparse.ArgumentParser:
    return add_backup_proof_parser(
        sub, "rehearse", "drill a backup, then rehearse the migration and its rollback on the restored copy "
                         "(production is only read)", "a backup written by migrate-tui (default: take a verified "
                                                      "backup now)")


def drill_and_rehearse(settings, options, backup, *, out: TextIO | None = None, audit_log=None):
    """The drill (keeping its copy), then the rehearsal on it; the copy is removed whatever happens.
    Returns the last Finished (the drill's when it failed, else the rehearsal's)."""
    from migration.drill.rehearsal import Rehearsal

    drill = None
    try:
        with interrupts_raise():  # between the two, SIGTERM still unwinds through the finally below
            drill, result = run_drill(settings, options, backup, keep=True, out=out, audit_log=audit_log)
            if not result.ok or drill.copy is None:
                return result
            print(file=out, flush=True)
            view = audit.AuditLog(audit_log).tap(settings, "rehearse", RehearsalView(out))
            rehearsal = Rehearsal(settings, view, drill.copy, drill.manifest, drill.backup)
            drill.copy = None  # the rehearsal owns it now, and removes it
            return run_cancellable(rehearsal, "stopping the rehearsal and removing the throwaway copy")
    finally:
        if drill is not None and drill.copy is not None:
            drill.copy.cleanup()


def handle(args: argparse.Namespace) -> int:
    return prove_backup(args, lambda settings, options, path, audit_log:
                        drill_and_rehearse(settings, options, path, audit_log=audit_log))
