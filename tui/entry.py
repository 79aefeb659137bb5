"""The ``migrate-tui`` console script: the wizard without a subcommand, else the headless CLI."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from migration import exit_codes
from migration.cli import main as cli_main


def launch_wizard(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("Error: the wizard needs an interactive terminal (stdin and stdout are not a TTY).", file=sys.stderr)
        print("  Fix: run headless instead: migrate-tui run --yes  (or migrate-tui run --demo --yes)",
              file=sys.stderr)
        return exit_codes.CONFIG
    from .app import run_app

    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(argv, wizard=launch_wizard)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
