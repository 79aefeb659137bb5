"""``migrate-tui run``: the migration, headless, printing the guide's Expected Output."""

from __future__ import annotations

import argparse
import sys

from .. import audit, exit_codes
from ..errors import ConfigError
from .backup import add_run_options, before_migration
from .common import add_target_options, run_cancellable, target


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("run", help="run the migration headless (for scripts and CI)")
    add_target_options(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every step with its timing")
    audit.add_option(parser)
    add_run_options(parser)  # checklist -> backup -> migration: --skip-backup, --backup-dir, --format
    return parser


def handle(args: argparse.Namespace) -> int:
    from ..printer import Printer
    from ..runner import Migration

    with target(args) as settings:
        if not args.yes:
            if not sys.stdin.isatty():
                raise ConfigError("Refusing to change the database without confirmation.",
                                  "Pass --yes to run non-interactively, e.g. migrate-tui run --yes")
            answer = input(f"Apply the migration to {settings.masked_url} (schema {settings.schema})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Aborted; nothing was changed.")
                return exit_codes.FAILURE
        stop = before_migration(args, settings)  # the checklist, then a verified backup
        if stop is not None:
            return stop
        printer = Printer(verbose=args.verbose)
        migration = Migration(settings, audit.AuditLog.from_args(args).tap(settings, "migrate", printer))
        result, _ = run_cancellable(migration.run, migration.cancel)
        if result is None:  # pragma: no cover - the runner always returns a result
            return exit_codes.FAILURE
        return exit_codes.BY_OUTCOME[result.outcome]
