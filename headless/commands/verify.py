"""``migrate-tui verify``: the guide's post-migration "Verify Migration Success", headless and read-only.

Runs the guide's query (``information_schema.tables``) and prints ``\\d database_backups`` from the
catalog, each line ✓/✗ against the guide's definition. Exit codes: 0 only when the table exists and
everything matches, 1 otherwise, 78 configuration, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json

from migration import audit, exit_codes

from ..options import add_audit_option, add_target_options
from ..printers.verify import VerifyPrinter
from ..running import run_cancellable, target


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("verify", help="verify the migration as the guide's Post-Migration Steps do (read-only)")
    add_target_options(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_audit_option(parser)
    return parser


def handle(args: argparse.Namespace) -> int:
    from migration.verify import Verify

    with target(args) as settings:
        log = audit.AuditLog(getattr(args, "audit_log", None)).ensure()
        show = (lambda event: None) if args.json else VerifyPrinter()
        result = run_cancellable(Verify(settings, log.tap(settings, "verify", show)), "stopping the verification")
        if args.json:
            print(json.dumps({
                "target": settings.masked_url, "schema": settings.schema, "verified": result.ok,
                "message": result.message, "found": result.found,
                "lines": [{"section": line.section, "name": line.name, "actual": line.actual,
                           "expected": line.expected, "ok": line.ok} for line in result.lines],
                "error": None if result.error is None else {"message": result.error.message,
                                                            "hint": result.error.hint},
            }, indent=2, ensure_ascii=False))
        return exit_codes.for_outcome(result.outcome)
