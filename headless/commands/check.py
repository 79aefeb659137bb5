"""``migrate-tui check``: the pre-migration checklist, headless (changes nothing).

Exit codes: 0 when every check is ok or only warns, 1 on a failure, 78 on bad configuration.
"""

from __future__ import annotations

import argparse
import json
import sys

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
from ..printers.checklist import print_row
from ..running import target


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("check", help="run the pre-migration checklist (read-only; changes nothing)")
    add_target_options(parser)
    add_backup_location(parser)
    add_dump_options(parser)
    add_drill_choice(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_audit_option(parser)
    return parser


class _Rows:
    """Prints each check as it completes, under its group's heading."""

    def __init__(self, out) -> None:
        self.out, self.group = out, None

    def __call__(self, event) -> None:
        from migration.events import CheckCompleted

        if isinstance(event, CheckCompleted):
            result = event.result
            if result.group != self.group:
                self.group = result.group
                print(f"\n{self.group}", file=self.out, flush=True)
            print_row(result, self.out)


def handle(args: argparse.Namespace) -> int:
    from migration.events import Status
    from migration.preflight import Preflight

    try:
        with target(args) as settings:
            log = audit.AuditLog(getattr(args, "audit_log", None)).ensure()
            out = sys.stdout
            if not args.json:
                print(f"Pre-migration checklist for {settings.masked_url} (schema {settings.schema})", file=out)
            rows = (lambda event: None) if args.json else _Rows(out)
            preflight = Preflight(settings, log.tap(settings, "check", rows), options=backup_options(args),
                                  drill=drill_options(args))
            result = preflight.run()
            checklist = preflight.checklist
            if args.json:
                statuses = (("ok", Status.OK), ("info", Status.INFO), ("warning", Status.WARNING),
                            ("failure", Status.FAILURE))
                document = {
                    "target": settings.masked_url,
                    "schema": settings.schema,
                    "passed": result.ok,
                    "summary": {name: checklist.count(status) for name, status in statuses},
                    "checks": [r.as_dict() for r in checklist.results],
                }
                print(json.dumps(document, indent=2, ensure_ascii=False))
            else:
                print(f"\nSummary: {checklist.summary()}", file=out, flush=True)
    except ConfigError as exc:
        if not args.json:
            raise
        print(json.dumps({"passed": False, "error": {"message": exc.error.message, "hint": exc.error.hint,
                                                     "detail": exc.error.detail}}, indent=2, ensure_ascii=False))
        return exit_codes.CONFIG
    return exit_codes.for_outcome(result.outcome)
