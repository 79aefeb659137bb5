"""``migrate-tui check``: the pre-migration checklist, headless (changes nothing).

Exit codes: 0 when every check is ok or only warns, 1 on a failure, 78 on bad configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from .. import audit, exit_codes
from ..errors import ConfigError
from ..settings import DEFAULT_BACKUP_DIR
from .common import add_target_options, target

MARKS = {"ok": "✓", "warning": "⚠️ ", "failure": "✗"}


def add_backup_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backup-dir", metavar="DIR", default=DEFAULT_BACKUP_DIR,
                        help="where backups are written (default: ./backups)")
    parser.add_argument("--format", choices=("plain", "custom"), default="plain",
                        help="plain SQL (.sql, the guide's format) or pg_dump custom format (.dump)")
    add_trust_option(parser)


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-backup-dir", action="store_true",
                        help="accept a backup directory that is a system directory or belongs to another user "
                             "(RISK: files there may be overwritten or exposed, and its owner can read or replace "
                             "your backups)")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("check", help="run the pre-migration checklist (read-only; changes nothing)")
    add_target_options(parser)
    add_backup_location(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    audit.add_option(parser)
    return parser


def print_row(result, out: TextIO) -> None:
    print(f"  {MARKS[result.status.value]} {result.name}: {result.detail}", file=out, flush=True)
    if result.hint and result.status.value != "ok":
        print(f"      Fix: {result.hint}", file=out, flush=True)


def handle(args: argparse.Namespace) -> int:
    from ..preflight import Checklist, run_checks

    try:
        with target(args) as settings:
            log = audit.AuditLog.from_args(args).ensure()
            checklist = Checklist()
            checks = run_checks(settings, checklist, backup_dir=args.backup_dir, fmt=args.format,
                                trust_backup_dir=args.trust_backup_dir)
            if args.json:
                for _ in checks:
                    pass
                document = {
                    "target": settings.masked_url,
                    "schema": settings.schema,
                    "passed": checklist.passed,
                    "summary": {s: checklist.count(st) for s, st in _statuses()},
                    "checks": [r.as_dict() for r in checklist.results],
                }
                print(json.dumps(document, indent=2, ensure_ascii=False))
            else:
                out = sys.stdout
                print(f"Pre-migration checklist for {settings.masked_url} (schema {settings.schema})", file=out)
                group = None
                for result in checks:
                    if result.group != group:
                        group = result.group
                        print(f"\n{group}", file=out, flush=True)
                    print_row(result, out)
                print(f"\nSummary: {checklist.summary()}", file=out, flush=True)
            log.record(settings, "check", "ChecklistFinished", outcome="passed" if checklist.passed else "failed",
                       summary=checklist.summary(), checks=[r.as_dict() for r in checklist.results])
    except ConfigError as exc:
        if not args.json:
            raise
        print(json.dumps({"passed": False, "error": {"message": exc.error.message, "hint": exc.error.hint,
                                                     "detail": exc.error.detail}}, indent=2, ensure_ascii=False))
        return exit_codes.CONFIG
    return exit_codes.OK if checklist.passed else exit_codes.FAILURE


def _statuses():
    from ..preflight import Status

    return [("ok", Status.OK), ("warning", Status.WARNING), ("failure", Status.FAILURE)]
