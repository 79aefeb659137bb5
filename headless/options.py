"""The command-line options, and what they become for the engine: Settings and each operation's options.

The wizard gets the same objects (built here by :mod:`headless.entry`), so an option given on the
command line reaches the wizard's operation exactly as it reaches the headless command's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from migration.audit import DEFAULT_PATH, ENV_VAR
import os

from migration.errors import ConfigError
from migration.options import (
    COMPRESSIONS,
    DEFAULT_FLEET_CONCURRENCY,
    DEFAULT_DRILL_MAX_BYTES,
    DEFAULT_RETRIES,
    DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS,
    FORMATS,
    MAX_JOBS,
    BackupOptions,
    DrillOptions,
    FleetOptions,
    RollbackOptions,
    default_jobs,
    parse_concurrency,
    parse_size,
)
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
WIZARD_OPTIONS = ("backup_dir", "format", "trust_backup_dir", "jobs", "compress", "exact", "skip_drill",
                  "skip_rehearsal", "drill", "drill_max_size", "drill_url", "retries", "no_table_backup", "audit_log",
                  "fleet", "demo_fleet") + ("concurrency", "keep_going", "only", "shard", "shard_count")
# Of those, the Fleet screen's own (as `fleet FILE run` takes them): without --fleet / --demo-fleet they are refused.
FLEET_WIZARD_OPTIONS = ("concurrency", "keep_going", "only", "shard", "shard_count")


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_wizard_options(parser: argparse.ArgumentParser, dest_prefix: str = "") -> None:
    """The headless commands' options, for the wizard's same operations (checklist, backup, drill, rollback, audit).
    ``dest_prefix``: the top-level parser keeps them apart from a command's own options of the same name."""
    group = parser.add_argument_group("wizard options (without a command; each command takes its own)")
    group.add_argument("--backup-dir", dest=dest_prefix + "backup_dir", metavar="DIR", type=Path, default=None,
                       help="where the backup and the rollback's safety copy are written (default: ./backups)")
    group.add_argument("--format", dest=dest_prefix + "format", choices=tuple(FORMATS), default=None,
                       help="the backup's format: plain SQL (.sql, the guide's), pg_dump custom (.dump) or "
                            "directory (.dir, with --jobs)")
    group.add_argument("--trust-backup-dir", dest=dest_prefix + "trust_backup_dir", action="store_true",
                       help="accept a backup directory that is a system directory or another user's (RISK)")
    group.add_argument("--jobs", "-j", dest=dest_prefix + "jobs", type=_jobs, metavar="N", default=None,
                       help="parallel jobs of a directory backup's pg_dump and of the drill's restore")
    group.add_argument("--compress", dest=dest_prefix + "compress", choices=COMPRESSIONS, default=None,
                       help="compression of a custom or directory backup")
    group.add_argument("--exact", dest=dest_prefix + "exact", action="store_true",
                       help="count the source's rows in the dump's snapshot too (extra reads on the server)")
    group.add_argument("--skip-drill", dest=dest_prefix + "skip_drill", action="store_true",
                       help="the Backup screen does not restore the backup on a throwaway copy (RISK)")
    group.add_argument("--skip-rehearsal", dest=dest_prefix + "skip_rehearsal", action="store_true",
                       help="drill the backup but do not rehearse the migration on the copy")
    group.add_argument("--drill", dest=dest_prefix + "drill", action="store_true",
                       help="drill and rehearse even above --drill-max-size")
    group.add_argument("--drill-max-size", dest=dest_prefix + "drill_max_size", metavar="SIZE", default=None,
                       help=f"drill by default only below this size (default {DEFAULT_DRILL_MAX_BYTES // 1024 ** 3}GB)")
    group.add_argument("--drill-url", dest=dest_prefix + "drill_url", metavar="URL", default=None,
                       help="drill on this empty scratch database (no password in it: ~/.pgpass or MIGRATE_DRILL_URL)")
    group.add_argument("--retries", dest=dest_prefix + "retries", type=non_negative, metavar="N", default=None,
                       help=f"the rollback's further attempts after a lock timeout (default: {DEFAULT_RETRIES})")
    group.add_argument("--no-table-backup", dest=dest_prefix + "no_table_backup", action="store_true",
                       help="the rollback's safety copy starts switched off")
    group.add_argument("--audit-log", dest=dest_prefix + "audit_log", metavar="PATH", default=None,
                       help=f"append the audit log here (default: ${ENV_VAR} or ./{DEFAULT_PATH})")
    group.add_argument("--fleet", dest=dest_prefix + "fleet", metavar="FILE", default=None,
                       help="open the Fleet screen on this fleet file (see migrate-tui fleet)")
    group.add_argument("--demo-fleet", dest=dest_prefix + "demo_fleet", action="store_true",
                       help="open the Fleet screen on a demo fleet: six databases on a throwaway embedded server")
    # The Fleet screen's options, as `fleet FILE run` takes them; their values are checked (exit 78, with a fix)
    # before the wizard starts: headless.entry.
    group.add_argument("--concurrency", dest=dest_prefix + "concurrency", metavar="N", default=None,
                       help="Fleet screen: targets of a wave at once (default 4)")
    group.add_argument("--keep-going", dest=dest_prefix + "keep_going", action="store_true",
                       help="Fleet screen: a failed target does not stop the later waves")
    group.add_argument("--only", dest=dest_prefix + "only", nargs="+", action="extend", metavar="NAME", default=None,
                       help="Fleet screen: only these targets (by name)")
    group.add_argument("--shard", dest=dest_prefix + "shard", metavar="K/N", default=None,
                       help="Fleet screen: only shard K of N (as migrate-tui fleet --shard)")
    group.add_argument("--shard-count", dest=dest_prefix + "shard_count", metavar="N", default=None,
                       help="Fleet screen: with $JOB_COMPLETION_INDEX as K, shard K of N")


def add_audit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audit-log", metavar="PATH", default=None,
                        help=f"append the audit log here (default: ${ENV_VAR} or ./{DEFAULT_PATH}; "
                             "/dev/null keeps none)")


def add_backup_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backup-dir", metavar="DIR", type=Path, default=DEFAULT_BACKUP_DIR,
                        help="where backups are written (default: ./backups)")
    parser.add_argument("--format", choices=tuple(FORMATS), default="plain",
                        help="plain SQL (.sql, the guide's format), pg_dump custom format (.dump) or directory format "
                             "(.dir, with --jobs: for large databases)")
    add_trust_option(parser)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_JOBS}")
    return value


def add_dump_options(parser: argparse.ArgumentParser) -> None:
    """How the backup is dumped (with --format directory) and checked; --jobs also sets the drill's restore jobs."""
    parser.add_argument("--jobs", "-j", type=_jobs, metavar="N", default=None,
                        help=f"parallel jobs: pg_dump --jobs for --format directory (default {default_jobs()}), and "
                             f"pg_restore --jobs / counting connections for the drill (default {default_jobs()})")
    parser.add_argument("--compress", choices=COMPRESSIONS, default=None,
                        help="compression of a custom or directory dump (lz4/zstd need pg_dump 16+ built with them; "
                             "default for directory: lz4 where available, else none)")
    parser.add_argument("--exact", action="store_true",
                        help="also count every table's rows on the source, in the dump's own snapshot (extra reads on "
                             "the server), and compare the drilled copy with those counts")


def add_drill_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--drill-url", metavar="URL", default=None,
                        help="drill on this empty database of a scratch server instead of a throwaway local one (no "
                             "password in it: use ~/.pgpass, or set MIGRATE_DRILL_URL instead of this option)")


def add_drill_choice(parser: argparse.ArgumentParser) -> None:
    """run: whether the backup is drilled and the migration rehearsed before production."""
    parser.add_argument("--skip-drill", action="store_true",
                        help="do NOT restore the backup on a throwaway copy first (nor rehearse): its restorability "
                             "stays unproven")
    parser.add_argument("--skip-rehearsal", action="store_true",
                        help="drill the backup but do NOT rehearse the migration and its rollback on the copy")
    parser.add_argument("--drill", action="store_true",
                        help="drill and rehearse even above --drill-max-size")
    parser.add_argument("--drill-max-size", metavar="SIZE", default=None,
                        help="drill and rehearse by default only below this database size (default "
                             f"{DEFAULT_DRILL_MAX_BYTES // 1024 ** 3}GB, or MIGRATE_DRILL_MAX_SIZE)")
    add_drill_url(parser)


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
    fmt = getattr(args, "format", None) or "plain"
    jobs = getattr(args, "jobs", None)
    return BackupOptions(backup_dir=Path(getattr(args, "backup_dir", None) or DEFAULT_BACKUP_DIR), fmt=fmt,
                         trust_dir=bool(getattr(args, "trust_backup_dir", False)),
                         jobs=(jobs or default_jobs()) if fmt == "directory" else 1,
                         compress=getattr(args, "compress", None), exact=bool(getattr(args, "exact", False)))


def drill_options(args: argparse.Namespace) -> DrillOptions:
    url = getattr(args, "drill_url", None)
    if url:
        from migration.url import plain_url, conninfo

        plain = plain_url(url)
        if (plain.password if plain is not None else conninfo(url).get("password")):
            raise ConfigError("--drill-url has a password in it: the command line is readable by every user of this "
                              "machine (/proc/<pid>/cmdline).",
                              "Set MIGRATE_DRILL_URL=postgresql://USER:PASSWORD@HOST/DB in the environment instead, or "
                              "put the password in ~/.pgpass and leave it out of --drill-url.")
    url = url or os.environ.get("MIGRATE_DRILL_URL") or None
    size = getattr(args, "drill_max_size", None) or os.environ.get("MIGRATE_DRILL_MAX_SIZE")
    enabled = False if getattr(args, "skip_drill", False) else (True if getattr(args, "drill", False) else None)
    return DrillOptions(enabled=enabled, rehearse=not getattr(args, "skip_rehearsal", False),
                        max_bytes=parse_size(size, "--drill-max-size" if getattr(args, "drill_max_size", None)
                                             else "MIGRATE_DRILL_MAX_SIZE") if size else DEFAULT_DRILL_MAX_BYTES,
                        jobs=getattr(args, "jobs", None) or default_jobs(), drill_url=url,
                        exact=bool(getattr(args, "exact", False)))


def fleet_options(args: argparse.Namespace) -> FleetOptions:
    concurrency = getattr(args, "concurrency", None)
    return FleetOptions(
        concurrency=DEFAULT_FLEET_CONCURRENCY if concurrency is None else parse_concurrency(concurrency),
        keep_going=bool(getattr(args, "keep_going", False)))


def rollback_options(args: argparse.Namespace) -> RollbackOptions:
    return RollbackOptions(
        lock_timeout_ms=getattr(args, "lock_timeout", None) or DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS,
        retries=DEFAULT_RETRIES if getattr(args, "retries", None) is None else args.retries,
        table_backup=not getattr(args, "no_table_backup", False),
        backup_dir=Path(getattr(args, "backup_dir", None) or DEFAULT_BACKUP_DIR),
        trust_backup_dir=bool(getattr(args, "trust_backup_dir", False)))


def check_accept_loss(args: argparse.Namespace, command: str) -> None:
    """--accept-loss widens what --cascade drops: alone it would be silently ignored (ConfigError, exit 78)."""
    if getattr(args, "accept_loss", False) and not getattr(args, "cascade", False):
        raise ConfigError("--accept-loss only widens --cascade (dependents no safety copy can hold); alone it does "
                          "nothing, and nothing was started.",
                          f"Add --cascade to drop the dependents too ({command} --yes --cascade --accept-loss), or "
                          "leave --accept-loss out.")
