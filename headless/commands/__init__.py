"""Headless subcommands: one module each, with ``add_parser(subparsers)`` and ``handle(args) -> int``.

To add a command, write its module here and list it in COMMANDS.
"""

COMMANDS = ("run", "sql", "rollback", "log", "check", "backup", "drill", "rehearse", "verify", "cron-secret",
            "fleet")
