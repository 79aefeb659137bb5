"""``migrate-tui cron-secret``: the guide's post-migration "Add Environment Variables", headless.

Writes a random CRON_SECRET (32 random bytes, 64 hex digits) into the .env file (``--env-file PATH``,
default ./.env; created 0600 when missing), keeping every other line byte for byte. An existing
CRON_SECRET is only replaced with ``--force``. The value is never printed: only its length and last
four characters. Exit codes: 0 written, 1 refused (an existing secret, an unsafe file), 78 configuration.
"""

from __future__ import annotations

import argparse

from migration import audit, exit_codes

from ..options import add_audit_option


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("cron-secret", help="add a random CRON_SECRET to the .env file (post-migration step)")
    parser.add_argument("--env-file", metavar="PATH", default=None,
                        help="the .env file to write (default: ./.env; created 0600 when missing)")
    parser.add_argument("--force", action="store_true", help="replace a CRON_SECRET that is already set")
    add_audit_option(parser)
    return parser


def handle(args: argparse.Namespace) -> int:
    from migration.cron_secret import CronSecretExists, add_cron_secret, env_path

    from ..running import print_error

    path = env_path(args.env_file, None)
    log = audit.AuditLog(getattr(args, "audit_log", None)).ensure()
    try:
        written = add_cron_secret(path, replace=args.force)
    except CronSecretExists as exc:
        log.record(None, "cron-secret", "CronSecretKept", path=str(path), message=exc.error.message)
        print_error(exc.error)
        return exit_codes.FAILURE
    log.record(None, "cron-secret", "CronSecretWritten", outcome="success", path=str(written.path),
               created=written.created, replaced=written.replaced, length=written.length, line=written.line)
    verb = "written to a new file" if written.created else ("replaced in" if written.replaced else "added to")
    print(f"✓ CRON_SECRET {verb} {written.path} (line {written.line}): {written.masked}, mode 0600")
    print("  Next: deploy your application with it (the guide's Post-Migration Steps 3 and 4).")
    return exit_codes.OK
