"""Headless command line: ``migrate-tui COMMAND ...`` (one module per command in :mod:`headless.commands`).

The wizard (no subcommand) lives in :mod:`tui`; its launcher is passed in by
:mod:`headless.entry`, so nothing here imports Textual.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from typing import Callable, Sequence

from migration import exit_codes
from migration.errors import ConfigError, MigrateError, explain

from .commands import COMMANDS
from .options import WIZARD_OPTIONS, add_target_options, add_wizard_options
from .running import print_error

Wizard = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error said as every other error is: what is wrong and how to fix it (exit 2).
    Sub-commands' parsers are of the same class (argparse makes them with ``type(parent)``)."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix("migrate-tui").strip()
        print(f"Error: {message[:1].upper()}{message[1:]}.\n  Fix: correct the command line; "
              f"`migrate-tui {command + ' ' if command else ''}--help` lists the options and their values.",
              file=sys.stderr)
        self.exit(exit_codes.USAGE)


def _module(name: str):
    return importlib.import_module(f"{__package__}.commands.{name.replace('-', '_')}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="migrate-tui",
        description="Safely add the database_backups table to a PostgreSQL database. "
                    "Without a command, opens the interactive wizard.",
    )
    from migration.version import version

    parser.add_argument("--version", "-V", action="version", version=f"migrate-tui {version()}")
    add_target_options(parser, suppress=False)
    add_wizard_options(parser, dest_prefix="wizard_")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        _module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, wizard: Wizard | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
    parser = build_parser()
    args = parser.parse_args(argv)
    given = [name for name in WIZARD_OPTIONS if getattr(args, f"wizard_{name}") is not None
             and getattr(args, f"wizard_{name}") is not False]  # (--retries 0 is given)
    if args.command is not None and {"fleet", "demo_fleet"} & set(given):
        parser.error("--fleet and --demo-fleet open the wizard (without a command); on the command line: "
                     "migrate-tui fleet FILE check|run|rollback|verify")
    if args.command is not None and given:  # before the command they would be silently ignored
        parser.error(f"--{given[0].replace('_', '-')} goes after the command (migrate-tui {args.command} "
                     f"--{given[0].replace('_', '-')} ...)")
    if args.command is None:  # the wizard's options under their own names
        for name in WIZARD_OPTIONS:
            setattr(args, name, getattr(args, f"wizard_{name}"))
    try:
        if args.command is None:
            if wizard is None:
                parser.print_help()
                return exit_codes.USAGE
            return wizard(args)
        return _module(args.command).handle(args)
    except MigrateError as exc:
        print_error(exc.error)
        return exit_codes.CONFIG if isinstance(exc, ConfigError) else exit_codes.FAILURE
    except KeyboardInterrupt:
        print("\nInterrupted; nothing was changed.", file=sys.stderr)
        return exit_codes.CANCELLED
    except Exception as exc:  # noqa: BLE001 - never a traceback on the operator's terminal
        print_error(explain(exc))
        return exit_codes.FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
