"""``migrate-tui check``, ``migrate-tui backup`` and ``run --yes`` (checklist → backup → migration), headless.

run_cli() asserts that no traceback and no canary password reach stdout or stderr.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
from pathlib import Path

import pytest
from engine.engine_support import catalog_snapshot
from cli_support import cli_env, finish, lines_in_order, run_cli, start_cli
from engine.engine_support import wait_until

from migration import exit_codes

pytestmark = pytest.mark.timeout(180)

CRON = "Canary-cron-secret-9d9d-long-enough-0123456789"


def test_check_prints_the_checklist_and_exits_0(db, tmp_path):
    result = run_cli("check", cwd=tmp_path, env=cli_env(db.url, CRON_SECRET="short"))
    assert result.returncode == exit_codes.OK, result.output
    lines_in_order(result.stdout, [
        "Pre-migration checklist for postgresql://app_user:****@",
        "Environment", "  ✓ DATABASE_URL: valid", "  ℹ CRON_SECRET: set, but only 5 characters long",
        "Connection", "  ✓ Connection: PostgreSQL ",
        "Permissions", "  ✓ CREATE on schema public",
        "Table", "  ✓ Table database_backups: absent",
        "Backup", "  ✓ pg_dump: ", "  ✓ Backup directory: backups (will be created, mode 0700)", "  ✓ Disk space: ",
        "  ✓ Backup format: plain", "Drill", "  ✓ Restore drill: into a throwaway PostgreSQL ",
        "  ✓ Drill room and time: needs about ",
        "Summary: 18 ok, 3 for later, 0 warnings, 0 failures — ready to migrate",
    ])
    assert not (tmp_path / "backups").exists() and not db.table_exists()


def test_check_json_and_exit_1_on_a_failure(db, tmp_path):
    env = cli_env(db.url, CRON_SECRET=CRON)
    ok = run_cli("check", "--json", cwd=tmp_path, env=env, secrets=(CRON,))
    document = json.loads(ok.stdout)
    assert ok.returncode == 0 and document["passed"] is True
    assert document["target"].startswith("postgresql://app_user:****@")
    assert {c["key"]: c["status"] for c in document["checks"]}["cron_secret"] == "ok"
    assert document["summary"]["failure"] == 0

    db.execute("ALTER SCHEMA public OWNER TO postgres")
    db.execute("REVOKE CREATE ON SCHEMA public FROM app_user")
    failed = run_cli("check", "--json", cwd=tmp_path, env=env, secrets=(CRON,))
    assert failed.returncode == exit_codes.FAILURE
    row = next(c for c in json.loads(failed.stdout)["checks"] if c["key"] == "schema_create")
    assert row["status"] == "failure" and row["hint"].endswith("GRANT CREATE ON SCHEMA public TO app_user;")
    text = run_cli("check", cwd=tmp_path, env=env, secrets=(CRON,))
    assert text.returncode == exit_codes.FAILURE
    assert "      Fix: Ask an administrator to run: GRANT CREATE ON SCHEMA public TO app_user;" in text.stdout


def test_check_bad_configuration_exits_78(tmp_path):
    result = run_cli("check", cwd=tmp_path, env=cli_env())
    assert result.returncode == exit_codes.CONFIG and "DATABASE_URL is not set" in result.output
    as_json = run_cli("check", "--json", cwd=tmp_path, env=cli_env())
    assert as_json.returncode == exit_codes.CONFIG
    assert json.loads(as_json.stdout)["error"]["message"] == "DATABASE_URL is not set."


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_backup_prints_path_size_and_sha256(db, tmp_path, fmt):
    with db.app() as conn:
        conn.execute("CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 5000) g")
    result = run_cli("backup", "--format", fmt, "--backup-dir", "out", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.OK, result.output
    path = Path(tmp_path, re.search(r"^✓ Backup written and verified: (\S+)$", result.stdout, re.M).group(1))
    assert path.parent == tmp_path / "out" and path.suffix == (".sql" if fmt == "plain" else ".dump")
    digest = re.search(r"^  SHA-256: ([0-9a-f]{64})$", result.stdout, re.M).group(1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert f"  Size: " in result.stdout and f"({path.stat().st_size:,} bytes)" in result.stdout
    lines_in_order(result.stdout, ["💾 Backing up ", "  To: ", "  100%  1/1 tables", "  Verifying: ", "✓ Backup"])


def test_backup_ctrl_c_cancels_and_leaves_no_file(db, tmp_path):
    with db.app() as conn:
        conn.execute("CREATE TABLE items (id int)")
    with db.admin() as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        proc = start_cli("backup", cwd=tmp_path, env=cli_env(db.url))
        try:
            wait_until(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name ~ "
                                         "'^migrate-tui-backup-[0-9]+-' AND wait_event_type = 'Lock'"), 60,
                       "pg_dump (not the size query before it) to wait on the lock")
            proc.send_signal(signal.SIGINT)
            result = finish(proc, timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        locker.execute("ROLLBACK")
    assert result.returncode == exit_codes.CANCELLED, result.output
    assert "Cancelling: stopping pg_dump and deleting the partial file" in result.stderr
    assert "⏹  Backup cancelled; the partial file was deleted." in result.stdout
    assert list((tmp_path / "backups").iterdir()) == []


def test_run_makes_a_verified_backup_before_migrating(db, tmp_path):
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.OK, result.output
    lines_in_order(result.stdout, [
        "🔎 Pre-migration checklist: postgresql://app_user:****@",
        "✓ Pre-migration checklist passed: 18 ok, 3 for later, 0 warnings, 0 failures",
        "💾 Backing up ", "✓ Backup written and verified: backups/backup_before_migration_",
        "🚀 Starting safe migration", "🎉 Migration completed successfully!",
    ])
    dumps = list((tmp_path / "backups").glob("backup_before_migration_*.sql"))
    assert len(dumps) == 1 and b"database_backups" not in dumps[0].read_bytes()  # taken before the change
    assert db.table_exists()


def test_run_stops_before_any_change_when_a_check_fails(db, tmp_path):
    db.execute(f'ALTER DATABASE "{db.name}" SET default_transaction_read_only = on')
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.FAILURE
    assert "✗ Read-write session\nError: sessions are read-only" in result.stdout
    assert "Nothing was changed." in result.stdout
    assert "❌ Migration not started - the pre-migration checklist failed" in result.stdout
    assert "🚀" not in result.stdout and not (tmp_path / "backups").exists()
    assert not db.table_exists()


def test_run_skip_backup_says_so_loudly(db, tmp_path):
    result = run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.OK, result.output
    for stream in (result.stdout, result.stderr):
        assert "⚠️  BACKUP SKIPPED (--skip-backup)" in stream
        assert "no copy of the current database to restore from" in stream
    assert not (tmp_path / "backups").exists() and db.table_exists()


def test_run_does_not_migrate_when_the_backup_cannot_read_a_table(db, tmp_path):
    db.execute("CREATE TABLE payroll (amount int)")  # unreadable for app_user: pg_dump would fail
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.FAILURE
    assert "✗ Readable by pg_dump\nError: app_user cannot read 1 relation: public.payroll" in result.stdout
    assert "Nothing was changed." in result.stdout
    assert "🚀" not in result.stdout and not db.table_exists()
    assert not (tmp_path / "backups").exists()


def test_run_does_not_migrate_when_the_backup_fails(db, tmp_path):
    """A failure the checklist cannot foresee: pg_dump dies with an I/O error after it started."""
    from migration.pgtools import Locator

    major = db.scalar("SELECT current_setting('server_version_num')::int / 10000")
    real = Locator({"PATH": ""}).find("pg_dump", major).chosen
    fake = tmp_path / "pg_dump"
    fake.write_text(f"""#!/bin/sh
[ "$1" = "--version" ] && exec "{real.path}" --version
echo "pg_dump: error: could not write to output file: Input/output error" >&2
exit 1
""")
    fake.chmod(0o755)
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url, PG_DUMP=str(fake)))
    assert result.returncode == exit_codes.FAILURE, result.output
    assert "✗ Backup failed — the partial file was deleted." in result.stdout
    assert "could not write to output file: Input/output error" in result.stdout
    assert "the migration does not start without a verified backup" in result.stdout
    assert "🚀" not in result.stdout and not db.table_exists()
    assert list((tmp_path / "backups").iterdir()) == []


def test_backup_on_a_terminal_draws_a_live_progress_bar(db, tmp_path):
    """On a TTY the progress is one line redrawn in place (\\r + erase line), then the summary."""
    import os
    import pty
    import subprocess

    from cli_support import COMMAND

    with db.app() as conn:
        conn.execute("CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 5000) g")
    master, slave = pty.openpty()
    proc = subprocess.Popen([*COMMAND, "backup"], cwd=tmp_path, env=cli_env(db.url), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(60) == exit_codes.OK
    output = b"".join(chunks).decode("utf-8", "replace")
    assert "\r\x1b[2K  [████████████████████] 100%  1/1 tables" in output
    assert "✓ Backup written and verified: backups/backup_before_migration_" in output
    assert "Canary" not in output


def test_run_stops_on_an_invalid_table_before_the_backup_in_the_guides_words(db, tmp_path):
    """The one checklist rule (run and the wizard alike): a table with a different structure is a failure,
    reported in the guide's words, and nothing is attempted: no backup, no migration."""
    with db.app() as conn:
        conn.execute("CREATE TABLE database_backups (id serial PRIMARY KEY, filename text NOT NULL UNIQUE)")
    before = catalog_snapshot(db)
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.FAILURE
    lines_in_order(result.stdout, [
        "🔎 Pre-migration checklist: ", "✗ Table database_backups",
        "Error: Table database_backups already exists with a different structure",
        "  Fix: The table exists but has wrong structure. Either: 1. Drop the existing table",
        "Nothing was changed.", "❌ Migration not started - the pre-migration checklist failed",
    ])
    assert "🚀" not in result.stdout and "✓ Pre-migration checklist passed" not in result.stdout
    assert not (tmp_path / "backups").exists()
    assert catalog_snapshot(db) == before
