"""``migrate-tui sql``: print the exact SQL of the migration (dry run, no connection)."""

from __future__ import annotations

import argparse
import sys

from migration import exit_codes
from migration.settings import DEFAULT_SCHEMA, Settings, check_identifier
from ..options import add_target_options


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("sql", help="print the exact SQL the migration runs (dry run, no connection)")
    add_target_options(parser)
    return parser


def handle(args: argparse.Namespace) -> int:
    from migration.plan import render_plan

    schema = check_identifier(getattr(args, "schema", None) or DEFAULT_SCHEMA)
    sys.stdout.write(render_plan(Settings(database_url="", schema=schema)))
    return exit_codes.OK
