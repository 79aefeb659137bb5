"""The ``migrate-tui`` console script: the wizard without a subcommand, else the headless CLI.

The wizard's own start-up path is kept light (time to first frame, benchmarks/startup.py):
when the command line holds only the shared target options, it is parsed here and the
wizard starts without importing the headless commands (and with them psycopg). The wizard gets
the operator's options as engine objects (Settings through ``load``, and OperatorOptions), never
this package: :mod:`tui` does not import the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import threading
from typing import Sequence

CONFIG_EXIT = 78  # migration.exit_codes.CONFIG (not imported here: it pulls in psycopg)
_wizard_started = False  # console() leaves the interpreter's normal shutdown to the wizard


def launch_wizard(args: argparse.Namespace) -> int:
    try:
        setup = wizard_setup(args)  # a bad option value is reported first, terminal or not
    except Exception as exc:
        for problem in getattr(exc, "problems", ()):  # a fleet file's: every one of them (FleetFileError)
            print(f"  - {problem}", file=sys.stderr, flush=True)
        raise
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("Error: the wizard needs an interactive terminal (stdin and stdout are not a TTY).", file=sys.stderr)
        print("  Fix: run headless instead: migrate-tui run --yes  (or migrate-tui run --demo --yes)",
              file=sys.stderr)
        return CONFIG_EXIT
    from tui.app import run_app

    global _wizard_started
    _wizard_started = True
    return run_app(*setup)


def wizard_setup(args: argparse.Namespace):
    """What the wizard gets from the command line: its settings source, the operations' options, the audit log."""
    from tui.target_source import DemoSource, SettingsSource

    def load(database_url: str | None = None):
        """Called in the wizard's settings worker, after the first frame."""
        from .options import settings_from_args

        return settings_from_args(args, database_url=database_url)

    if getattr(args, "fleet", None) is not None or getattr(args, "demo_fleet", False):
        return _fleet_source(args), _operator_options(args), getattr(args, "audit_log", None)
    _no_fleet_options(args)
    source = DemoSource(load) if getattr(args, "demo", False) else SettingsSource(load)
    return source, _operator_options(args), getattr(args, "audit_log", None)


def _fleet_source(args: argparse.Namespace):
    """``--fleet FILE`` (read and checked now: every problem reported, exit 78, before the wizard starts) or
    ``--demo-fleet`` (the demo fleet starts in the wizard, after its first frame)."""
    from migration.errors import ConfigError
    from tui.fleet_source import DemoFleetSource, FleetSource

    if sum(bool(getattr(args, name, None)) for name in ("fleet", "demo_fleet", "demo")) > 1:
        raise ConfigError("--fleet, --demo-fleet and --demo each open a different wizard; nothing was started.",
                          "Give one of them: migrate-tui --fleet FILE, migrate-tui --demo-fleet or migrate-tui --demo.")
    lock_wait = getattr(args, "lock_wait", None)
    select = _fleet_selection(args)
    if getattr(args, "demo_fleet", False):
        if getattr(args, "only", None):
            from migration.demo import DEMO_FLEET

            _only_known(args.only, [name for name, _ in DEMO_FLEET], "the demo fleet")
        return DemoFleetSource(lock_wait, select=select)
    from migration.fleet import read_fleet

    fleet = select(read_fleet(args.fleet, lock_wait=lock_wait))
    return FleetSource(lambda: fleet, selection=select.description)


def _no_fleet_options(args: argparse.Namespace) -> None:
    """The Fleet screen's options open no wizard of their own: refused (rather than ignored) without a fleet."""
    from .options import FLEET_WIZARD_OPTIONS

    given = [name for name in FLEET_WIZARD_OPTIONS if _given(getattr(args, name, None))]
    if given:
        from migration.errors import ConfigError

        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(f"{flag} is an option of the Fleet screen, but no fleet was given; nothing was started.",
                          f"Add --fleet FILE (or --demo-fleet): migrate-tui --fleet FILE {flag} ...; or leave {flag} "
                          "out.")


class _Selection:
    """The fleet command's selection (:class:`migration.fleet.shard.Selection`), checked now (exit 78) and applied
    when the fleet is read; the wizard has nothing to show for an empty one (a configuration error)."""

    def __init__(self, only, shard) -> None:
        from migration.fleet.shard import Selection

        self._select = Selection(only, shard)
        self.description = self._select.description

    def __call__(self, fleet):
        fleet = self._select(fleet)
        if not fleet.targets:
            from migration.errors import ConfigError

            raise ConfigError(f"No target of {fleet.path} is in this selection ({self.description}); nothing to do.",
                              "Pick another shard, or other names with --only.")
        return fleet


def _fleet_selection(args: argparse.Namespace) -> _Selection:
    from migration.errors import ConfigError
    from migration.fleet.shard import parse_shard

    from .options import fleet_options

    fleet_options(args)  # --concurrency: a bad value is reported now, before anything starts
    count = getattr(args, "shard_count", None)
    if count is not None:
        text = str(count).strip()
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"--shard-count must be a whole number of 1 or more, got '{count}'.",
                              "Pass --shard-count N (the number of shards; $JOB_COMPLETION_INDEX gives K).")
        count = int(text)
    return _Selection(getattr(args, "only", None), parse_shard(getattr(args, "shard", None), count, os.environ))


def _only_known(names: list[str], known: list[str], what: str) -> None:
    unknown = [n for n in names if n not in known]
    if unknown:
        from migration.errors import ConfigError

        raise ConfigError(f"--only names no target of {what}: {', '.join(unknown)}.",
                          f"Use the names of its targets: {', '.join(sorted(known))}.")


# What reaches the wizard's operations as OperatorOptions (the audit log goes to the app itself).
_OPERATION_OPTIONS = ("lock_timeout", "backup_dir", "format", "trust_backup_dir", "retries", "no_table_backup",
                      "jobs", "compress", "exact", "skip_drill", "skip_rehearsal", "drill", "drill_max_size",
                      "drill_url", "concurrency", "keep_going")


def _given(value) -> bool:
    """An option on the command line: anything but its absence (None) or an unset flag (False); 0 counts."""
    return value is not None and value is not False


def _operator_options(args: argparse.Namespace):
    """The options every operation of the wizard uses, from the same command line as the headless ones."""
    if not any(_given(getattr(args, name, None)) for name in _OPERATION_OPTIONS):
        return None  # the defaults: nothing to import before the first frame
    from .options import backup_options, drill_options, fleet_options, rollback_options
    from migration.options import OperatorOptions

    return OperatorOptions(backup=backup_options(args), rollback=rollback_options(args), drill=drill_options(args),
                           fleet=fleet_options(args))


def _wizard_args(argv: list[str]) -> argparse.Namespace | None:
    """The parsed options when argv asks for the wizard (no command, no --help), else None."""
    if argv in ([], ["--demo"]):
        # The everyday launches need no parser (settings_from_args defaults every other option);
        # the engine's modules then load in the settings worker, after the first frame.
        return argparse.Namespace(demo=bool(argv), command=None)
    from .options import add_target_options, add_wizard_options

    parser = argparse.ArgumentParser(prog="migrate-tui", add_help=False)
    add_target_options(parser, suppress=False)
    add_wizard_options(parser)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args, extra = parser.parse_known_args(argv)
    except SystemExit:  # a bad option value: the full parser reports it
        return None
    if extra:
        return None
    args.command = None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["--version"], ["-V"]):
        from migration.version import version

        print(f"migrate-tui {version()}")
        return 0
    args = _wizard_args(argv)
    if args is not None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(errors="replace")  # type: ignore[union-attr]
        try:
            return launch_wizard(args)
        except KeyboardInterrupt:
            print("\nInterrupted; nothing was changed.", file=sys.stderr)
            return 130
        except Exception as exc:  # noqa: BLE001 - never a traceback on the operator's terminal
            from migration.errors import ConfigError, MigrateError, explain

            from .running import print_error

            print_error(exc.error if isinstance(exc, MigrateError) else explain(exc))
            return CONFIG_EXIT if isinstance(exc, ConfigError) else 1
    from .main import main as cli_main

    return cli_main(argv, wizard=launch_wizard)


def console() -> None:
    """The ``migrate-tui`` console script: :func:`main`, then exit.

    Python's own shutdown (tearing down psycopg and every other imported module) takes tens of
    milliseconds after a headless command has finished; a backup or check in a script pays it on
    every call. Everything a command writes is closed by then, so once the output is flushed the
    process ends at once — unless another thread is still alive (then the normal exit handles it).
    Output that cannot be flushed makes the exit code 120, as Python's own exit does. The wizard
    always takes the normal exit.
    """
    code = main()
    if _wizard_started or any(t.is_alive() for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)  # a thread may still be writing: let the interpreter end it as usual
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # output lost (closed pipe, full disk): say so, as Python would
        os._exit(code or 120)
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
