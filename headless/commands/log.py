"""``migrate-tui log``: print the audit log (every check, backup, migration and rollback)."""

from __future__ import annotations

import argparse
import json

from migration import audit, exit_codes

from ..options import add_audit_option


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("log", help="print the audit log of every operation")
    add_audit_option(parser)
    parser.add_argument("--tail", type=int, metavar="N", default=None, help="only the last N entries")
    parser.add_argument("--json", action="store_true", help="print the raw JSON lines")
    parser.add_argument("--target", metavar="NAME", default=None,
                        help="only the entries of this fleet target (its name in the fleet file)")
    return parser


def handle(args: argparse.Namespace) -> int:
    path = args.audit_log or audit.default_path()
    entries = audit.read(path, tail=None if args.target else args.tail)
    if args.target:
        entries = [entry for entry in entries if entry.get("target_name") == args.target]
        if args.tail is not None:
            entries = entries[-args.tail:] if args.tail > 0 else []
        if not entries:
            print(f"The audit log {path} has no entry of the fleet target {args.target}.")
            return exit_codes.OK
    if not entries:
        print(f"The audit log {path} is empty or does not exist yet.")
        return exit_codes.OK
    for entry in entries:
        print(json.dumps(entry, ensure_ascii=False) if args.json else audit.describe(entry))
    return exit_codes.OK
