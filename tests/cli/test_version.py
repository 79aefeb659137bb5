"""``migrate-tui --version``: the package's version, at once (nothing heavy imported); the audit log's
records carry it too."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

from cli_support import cli_env, run_cli

from migration import exit_codes
from migration.audit import AuditLog

VERSION = version("migrate-tui")


def test_version_flag(tmp_path):
    for flag in ("--version", "-V"):
        result = run_cli(flag, cwd=tmp_path, env=cli_env())
        assert result.returncode == exit_codes.OK and result.stdout == f"migrate-tui {VERSION}\n"
    result = run_cli("--version", "check", cwd=tmp_path, env=cli_env())  # argparse's own, with a command
    assert result.returncode == exit_codes.OK and result.stdout == f"migrate-tui {VERSION}\n"


def test_version_imports_neither_the_driver_nor_textual():
    code = ("import sys; from headless.entry import main; main(['--version']); "
            "print(sorted(m for m in ('psycopg', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [f"migrate-tui {VERSION}", "[]"]


def test_every_audit_record_names_the_version(tmp_path):
    log = AuditLog(tmp_path / "audit.log")
    log.record(None, "cron-secret", "CronSecretWritten", path=".env")
    assert json.loads((tmp_path / "audit.log").read_text())["version"] == VERSION
