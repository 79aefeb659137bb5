"""``migrate-tui fleet FILE check|run|rollback|verify``: the same operation on every database of a fleet file.

Waves run in the file's order; inside a wave up to ``--concurrency`` targets at once (default 4), each through
the same engine operations as the single-database command (``run``: checklist → backup into
``--backup-dir/NAME`` → drill and rehearsal where configured → migration). A wave with a target that did not end
ok stops the later waves unless ``--keep-going``. Ctrl+C / SIGTERM cancel every running target: each ends fully
migrated or untouched. ``--shard K/N`` (or ``$JOB_COMPLETION_INDEX`` with ``--shard-count N``) runs one
deterministic part of the fleet (:mod:`migration.fleet.shard`). ``rollback --cascade [--accept-loss]`` confirms
what ``migrate-tui rollback --yes --cascade [--accept-loss]`` confirms, per target: the objects its own preview
shows depending on its table (without ``--cascade`` such a target needs confirmation and nothing is dropped there).

Exit codes: 0 every target ok or not needed, 1 any failed (or skipped after a failed wave), 75 any busy
(another migration held its lock), 130 cancelled, 78 the fleet file or an option is wrong (nothing attempted).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from migration import audit, exit_codes
from migration.options import DEFAULT_FLEET_CONCURRENCY, DEFAULT_RETRIES, MAX_FLEET_CONCURRENCY
from migration.errors import ConfigError

from ..options import (
    add_audit_option,
    add_backup_location,
    add_drill_choice,
    add_dump_options,
    backup_options,
    check_accept_loss,
    drill_options,
    non_negative,
    rollback_options,
)
from ..running import print_error, run_cancellable

ACTIONS = ("check", "run", "rollback", "verify")
CHANGES = ("run", "rollback")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 1 <= value <= MAX_FLEET_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_FLEET_CONCURRENCY}")
    return value


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("fleet", help="check, migrate, roll back or verify every database of a fleet file")
    parser.add_argument("file", metavar="FILE", help="the fleet file (TOML; see README.md, Fleets)")
    parser.add_argument("action", choices=ACTIONS, help="what to do on every target")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (run, rollback)")
    parser.add_argument("--concurrency", type=_positive, metavar="N", default=DEFAULT_FLEET_CONCURRENCY,
                        help=f"targets of a wave at once (default {DEFAULT_FLEET_CONCURRENCY})")
    parser.add_argument("--keep-going", action="store_true",
                        help="go on with the later waves after a target failed (default: stop after that wave)")
    parser.add_argument("--only", nargs="+", action="extend", metavar="NAME", default=None,
                        help="only these targets (by name)")
    parser.add_argument("--shard", metavar="K/N", default=None,
                        help="only shard K of N (K from 0): targets sorted by name, position i goes to shard i mod N")
    parser.add_argument("--shard-count", type=_positive, metavar="N", default=None,
                        help="with $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) as K: run shard K of N")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (nothing else on stdout)")
    parser.add_argument("--cascade", action="store_true",
                        help="rollback: also drop the objects that depend on each target's table (as rollback "
                             "--cascade: what each target's own preview lists; never another role's objects)")
    parser.add_argument("--accept-loss", action="store_true",
                        help="rollback, with --cascade: also drop dependents no safety copy can hold (marked NOT "
                             "recoverable, e.g. a column of another table of the table's row type)")
    parser.add_argument("--no-table-backup", action="store_true",
                        help="rollback: do not take a pg_dump safety copy of each target's table first")
    parser.add_argument("--retries", type=non_negative, metavar="N", default=None,
                        help=f"rollback: further attempts after a lock timeout, with backoff (default: "
                             f"{DEFAULT_RETRIES})")
    parser.add_argument("--lock-wait", type=float, metavar="SECONDS", default=None,
                        help="how long each target waits for another running migration (overrides the file's "
                             "lock_wait; default 10)")
    add_audit_option(parser)
    add_backup_location(parser)
    add_dump_options(parser)
    add_drill_choice(parser)
    return parser


def handle(args: argparse.Namespace) -> int:
    from migration.fleet import FleetFileError, read_fleet
    from migration.fleet.shard import Selection, parse_shard

    try:
        if args.action in CHANGES and not args.yes and not sys.stdin.isatty():
            raise ConfigError(f"Refusing to {args.action} a fleet without confirmation.",
                              f"Pass --yes to run non-interactively, e.g. migrate-tui fleet {args.file} "
                              f"{args.action} --yes")
        _rollback_only(args)
        select = Selection(args.only, parse_shard(args.shard, args.shard_count, os.environ))
        fleet = select(read_fleet(args.file, lock_wait=args.lock_wait))
        options = dict(backup=backup_options(args), drill=drill_options(args), rollback=rollback_options(args))
        log = audit.AuditLog(getattr(args, "audit_log", None)).ensure()
    except FleetFileError as exc:
        return _refused(args, exc, exc.problems)
    except ConfigError as exc:
        return _refused(args, exc, ())
    if not fleet.targets:
        print(f"No target of {args.file} is in this shard ({args.shard or args.shard_count}); nothing to do.")
        return exit_codes.OK
    if args.action in CHANGES and not args.yes:
        answer = input(f"{args.action.capitalize()} {len(fleet.targets)} target(s) of {args.file} "
                       f"({', '.join(t.name for t in fleet.targets)}){_cascading(args)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Aborted; nothing was changed.")
            return exit_codes.FAILURE
    return _run(args, fleet, log, options)


def _run(args, fleet, log, options) -> int:
    from migration.children import remove_stale_passfiles
    from migration.drill.local import remove_stale
    from migration.fleet import FleetRun

    from ..printers.fleet import FleetPrinter, as_json

    for path in [*remove_stale_passfiles(), *remove_stale()]:
        print(f"🧹 Removed what a killed migrate-tui run left behind: {path}", file=sys.stderr, flush=True)
    printer = FleetPrinter(args.action, fleet.secrets(), quiet=args.json)
    if not args.json:
        waves = ", ".join(fleet.waves)
        printer.line(f"Fleet {args.file}: {len(fleet.targets)} target(s), waves {waves}; {args.action}, "
                     f"up to {args.concurrency} at once{_cascading(args)}")
    fleet_run = FleetRun(fleet, args.action, printer, concurrency=args.concurrency, keep_going=args.keep_going,
                         audit=log, cascade=args.cascade, accept_loss=args.accept_loss, **options)
    result = run_cancellable(fleet_run, "cancelling every running target (each rolls back)")
    code = exit_codes.for_outcome(result.outcome)
    if result.skipped and code == exit_codes.OK:  # skipped after a failed wave: only with a failure, never ok
        code = exit_codes.FAILURE
    order = [t.name for t in fleet.targets]
    if args.json:
        print(json.dumps(as_json(result, args.action, str(args.file), code, order), indent=2, ensure_ascii=False))
    else:
        printer.summary(result, order)
    return code


def _rollback_only(args) -> None:
    """The rollback's own options (--cascade, --accept-loss, --no-table-backup, --retries): given to another action
    they would be ignored, so they are refused."""
    check_accept_loss(args, f"migrate-tui fleet {args.file} rollback")
    for flag, given in (("--cascade", args.cascade), ("--accept-loss", args.accept_loss),
                        ("--no-table-backup", args.no_table_backup), ("--retries", args.retries is not None)):
        if given and args.action != "rollback":
            raise ConfigError(f"{flag} is an option of the fleet's rollback, not of {args.action}; nothing was "
                              "started.", f"Leave {flag} out, or roll back: migrate-tui fleet {args.file} rollback "
                              f"--yes {flag}")


def _cascading(args) -> str:
    """What --cascade / --accept-loss add to a rollback, in the prompt and the first line."""
    if args.action != "rollback" or not args.cascade:
        return ""
    return (", with --cascade: the objects each target's preview lists as depending on its table are dropped "
            "with it (kept in its safety copy" + ("; --accept-loss: also those no copy can hold, gone for good)"
                                                  if args.accept_loss else "; none that no copy can hold)"))


def _refused(args, exc: ConfigError, problems: tuple[str, ...]) -> int:
    if args.json:
        print(json.dumps({"file": str(args.file), "action": args.action, "outcome": "refused",
                          "exit_code": exit_codes.CONFIG, "problems": list(problems),
                          "error": {"message": exc.error.message, "hint": exc.error.hint}}, indent=2,
                         ensure_ascii=False))
        return exit_codes.CONFIG
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr, flush=True)
    print_error(exc.error)
    return exit_codes.CONFIG
