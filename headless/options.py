"""The command-line options, and what they become for the engine: Settings and each operation's options.

The wizard gets the same objects (built here by :mod:`headless.entry`), so an option given on the
command line reaches the wizard's operation exactly as it reaches the headless command's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from migration.audit import DEFAULT_PATH, ENV_VAR
from migration.options import DEFAULT_RETRIES, DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS, FORMATS, BackupOptions, RollbackOptions
from migration.settings import DEFAULT_BACKUP_DIR, Settings, load_settings


def add_target_options(parser: argparse.ArgumentParser, suppress: bool = True) -> None:
    """Options valid both before and after the subcommand (``--demo run`` and ``run --demo``)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--env-file", metavar="PATH", default=default,
                        help="read configuration from this .env file (default: ./.env when present)")
    parser.add_argument("--demo", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="use a throwaway embedded PostgreSQL with sample data instead of DATABASE_URL")
    parser.add_argument("--schema", default=default, help="target schema (default: public)")
    parser.add_argument("--lock-timeout", type=int, metavar="MS", default=default,
                        help="SET LOCAL lock_timeout for changes (default: 5000; the rollback's DROP: "
                             f"{DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS})")
    parser.add_argument("--statement-timeout", type=int, metavar="MS", default=default,
                        help="SET LOCAL statement_timeout for changes (default: 60000)")
    parser.add_argument("--lock-wait", type=float, metavar="SECONDS", default=default,
                        help="how long to wait for another running migration (default: 10)")


# The options of the headless commands that the wizard's operations take too (without a command).
WIZARD_OPTIONS = ("backup_dir", "format", "trust_backup_dir", "retries", "no_table_backup", "audit_log")


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_wizard_options(parser: argparse.ArgumentParser, dest_prefix: str = "") -> None:
    """The headless commands' options, for the wizard's same operations (checklist, backup, rollback, audit).
    ``dest_prefix``: the top-level parser keeps them apart from a command's own options of the same name."""
    group = parser.add_argument_group("wizard options (without a command; each command takes its own)")
    group.add_argument("--backup-dir", dest=dest_prefix + "backup_dir", metavar="DIR", type=Path, default=None,
                       help="where the backup and the rollback's safety copy are written (default: ./backups)")
    group.add_argument("--format", dest=dest_prefix + "format", choices=tuple(FORMATS), default=None,
                       help="the backup's format: plain SQL (.sql, the guide's) or pg_dump custom (.dump)")
    group.add_argument("--trust-backup-dir", dest=dest_prefix + "trust_backup_dir", action="store_true",
                       help="accept a backup directory that is a system directory or another user's (RISK)")
    group.add_argument("--retries", dest=dest_prefix + "retries", type=non_negative, metavar="N", default=None,
                       help=f"the rollback's further attempts after a lock timeout (default: {DEFAULT_RETRIES})")
    group.add_argument("--no-table-backup", dest=dest_prefix + "no_table_backup", action="store_true",
                       help="the rollback's safety copy starts switched off")
    group.add_argument("--audit-log", dest=dest_prefix + "audit_log", metavar="PATH", default=None,
                       help=f"append the audit log here (default: ${ENV_VAR} or ./{DEFAULT_PATH})")


def add_audit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audit-log", metavar="PATH", default=None,
                        help=f"append the audit log here (default: ${ENV_VAR} or ./{DEFAULT_PATH}; "
                             "/dev/null keeps none)")


def add_backup_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backup-dir", metavar="DIR", type=Path, default=DEFAULT_BACKUP_DIR,
                        help="where backups are written (default: ./backups)")
    parser.add_argument("--format", choices=tuple(FORMATS), default="plain",
                        help="plain SQL (.sql, the guide's format) or pg_dump custom format (.dump)")
    add_trust_option(parser)


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-backup-dir", action="store_true",
                        help="accept a backup directory that is a system directory or belongs to another user "
                             "(RISK: files there may be overwritten or exposed, and its owner can read or replace "
                             "your backups)")


def settings_from_args(args: argparse.Namespace, *, database_url: str | None = None) -> Settings:
    return load_settings(
        getattr(args, "env_file", None),
        schema=getattr(args, "schema", None),
        lock_timeout_ms=getattr(args, "lock_timeout", None),
        statement_timeout_ms=getattr(args, "statement_timeout", None),
        lock_wait_s=getattr(args, "lock_wait", None),
        database_url=database_url,
        demo=bool(getattr(args, "demo", False)),
    )


def backup_options(args: argparse.Namespace) -> BackupOptions:  # (the wizard's too: WIZARD_OPTIONS)
    return BackupOptions(backup_dir=Path(getattr(args, "backup_dir", None) or DEFAULT_BACKUP_DIR),
                         fmt=getattr(args, "format", None) or "plain",
                         trust_dir=bool(getattr(args, "trust_backup_dir", False)))


def rollback_options(args: argparse.Namespace) -> RollbackOptions:
    return RollbackOptions(
        lock_timeout_ms=getattr(args, "lock_timeout", None) or DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS,
        retries=DEFAULT_RETRIES if getattr(args, "retries", None) is None else args.retries,
        table_backup=not getattr(args, "no_table_backup", False),
        backup_dir=Path(getattr(args, "backup_dir", None) or DEFAULT_BACKUP_DIR),
        trust_backup_dir=bool(getattr(args, "trust_backup_dir", False)))
