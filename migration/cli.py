"""Headless command line: ``migrate-tui run|sql ...``.

The wizard (no subcommand) lives in :mod:`tui`; its launcher is passed in by
``tui.entry`` so this module never imports Textual.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator, Sequence

from . import exit_codes
from .errors import ConfigError, MigrateError, OperatorError
from .settings import Settings, load_settings

Wizard = Callable[[argparse.Namespace], int]
SUBCOMMANDS = ("run", "sql")


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--env-file", metavar="PATH", default=default,
                        help="read configuration from this .env file (default: ./.env when present)")
    parser.add_argument("--demo", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="use a throwaway embedded PostgreSQL with sample data instead of DATABASE_URL")
    parser.add_argument("--schema", default=default, help="target schema (default: public)")
    parser.add_argument("--lock-timeout", type=int, metavar="MS", default=default,
                        help="SET LOCAL lock_timeout for the migration (default: 5000)")
    parser.add_argument("--statement-timeout", type=int, metavar="MS", default=default,
                        help="SET LOCAL statement_timeout for the migration (default: 60000)")
    parser.add_argument("--lock-wait", type=float, metavar="SECONDS", default=default,
                        help="how long to wait for another running migration (default: 10)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migrate-tui",
        description="Safely add the database_backups table to a PostgreSQL database. "
                    "Without a command, opens the interactive wizard.",
    )
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run the migration headless (for scripts and CI)")
    _common(run, suppress=True)
    run.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    run.add_argument("--verbose", "-v", action="store_true", help="print every step with its timing")
    sql = sub.add_parser("sql", help="print the exact SQL the migration runs (dry run, no connection)")
    _common(sql, suppress=True)
    return parser


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


def print_error(error: OperatorError, out=None) -> None:
    out = out or sys.stderr
    for text in error.lines():
        print(text, file=out, flush=True)


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[Settings]:
    """Settings for the command; with --demo, a demo database lives for the block."""
    if not getattr(args, "demo", False):
        yield settings_from_args(args)
        return
    from .demo import DemoDatabase

    demo = DemoDatabase()
    print("Starting the demo database (embedded PostgreSQL)…", file=sys.stderr, flush=True)
    try:
        url = demo.start()
        yield settings_from_args(args, database_url=url)
    finally:
        demo.stop()


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP behave like Ctrl+C (KeyboardInterrupt) for the block."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_cancellable(work: Callable[[], object], cancel: Callable[[], None]) -> tuple[object, bool]:
    """Run ``work`` in a thread; Ctrl+C/SIGTERM call ``cancel`` and wait. Returns (result, interrupted)."""
    box: dict[str, object] = {}

    def target_fn() -> None:
        box["result"] = work()

    thread = threading.Thread(target=target_fn, name="migrate-tui-engine", daemon=True)
    interrupted = False
    with interrupts_raise():
        thread.start()
        while thread.is_alive():
            try:
                thread.join(0.1)
            except KeyboardInterrupt:
                if not interrupted:
                    print("\nCancelling: stopping the running statement and rolling back…", file=sys.stderr,
                          flush=True)
                interrupted = True
                cancel()
    return box.get("result"), interrupted


def cmd_run(args: argparse.Namespace) -> int:
    from .printer import Printer
    from .runner import Migration

    with target(args) as settings:
        if not args.yes:
            if not sys.stdin.isatty():
                raise ConfigError("Refusing to change the database without confirmation.",
                                  "Pass --yes to run non-interactively, e.g. migrate-tui run --yes")
            answer = input(f"Apply the migration to {settings.masked_url} (schema {settings.schema})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Aborted; nothing was changed.")
                return exit_codes.FAILURE
        printer = Printer(verbose=args.verbose)
        migration = Migration(settings, printer)
        result, interrupted = run_cancellable(migration.run, migration.cancel)
        if result is None:  # pragma: no cover - the runner always returns a result
            return exit_codes.FAILURE
        return exit_codes.BY_OUTCOME[result.outcome]


def cmd_sql(args: argparse.Namespace) -> int:
    from .plan import render_plan

    settings = Settings(database_url="", schema=load_schema(args))
    sys.stdout.write(render_plan(settings))
    return exit_codes.OK


def load_schema(args: argparse.Namespace) -> str:
    from .settings import DEFAULT_SCHEMA, check_identifier

    return check_identifier(getattr(args, "schema", None) or DEFAULT_SCHEMA)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"run": cmd_run, "sql": cmd_sql}


def main(argv: Sequence[str] | None = None, wizard: Wizard | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            if wizard is None:
                parser.print_help()
                return exit_codes.USAGE
            return wizard(args)
        return COMMANDS[args.command](args)
    except MigrateError as exc:
        print_error(exc.error)
        return exit_codes.CONFIG if isinstance(exc, ConfigError) else exit_codes.FAILURE
    except KeyboardInterrupt:
        print("\nInterrupted; nothing was changed.", file=sys.stderr)
        return exit_codes.CANCELLED
    except Exception as exc:  # noqa: BLE001 - never a traceback on the operator's terminal
        from .errors import explain

        print_error(explain(exc))
        return exit_codes.FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
