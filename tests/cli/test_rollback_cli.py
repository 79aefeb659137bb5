"""``migrate-tui rollback`` / ``log`` as an operator or a script runs them: output and exit codes."""

from __future__ import annotations

import hashlib
import json
import signal
import stat
from pathlib import Path

import psycopg
import pytest
from cli_support import cli_env, finish, run_cli, start_cli
from engine.engine_support import wait_until

from migration import exit_codes

pytestmark = pytest.mark.timeout(120)


def _migrate(db, tmp_path) -> None:
    result = run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == 0, result.output
    with db.app() as conn:
        conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a.sql', 'k/a', 1)")


def test_absent_table_is_nothing_to_roll_back(db18, tmp_path):
    for args in (("rollback",), ("rollback", "--yes")):
        result = run_cli(*args, cwd=tmp_path, env=cli_env(db18.url))
        assert result.returncode == exit_codes.OK, result.output
        assert "Nothing to roll back: table public.database_backups does not exist." in result.stdout


def test_preview_then_yes_drops_with_a_safety_copy_and_audit_lines(db18, tmp_path, canary):
    _migrate(db18, tmp_path)
    preview = run_cli("rollback", cwd=tmp_path, env=cli_env(db18.url))
    assert preview.returncode == exit_codes.OK, preview.output
    assert "Table public.database_backups: 1 rows" in preview.stdout
    assert "No other objects depend on it" in preview.stdout
    assert "This was a preview; nothing was changed." in preview.stdout
    assert db18.table_exists()

    done = run_cli("rollback", "--yes", cwd=tmp_path, env=cli_env(db18.url))
    assert done.returncode == exit_codes.OK, done.output
    assert "✓ Safety copy written and verified: backups/public.database_backups-before-rollback-" in done.stdout
    assert 'Restore it with: ' in done.stdout and '"$DATABASE_URL"' in done.stdout
    assert '✓ Dropped: DROP TABLE IF EXISTS "public"."database_backups";' in done.stdout
    assert "✅ Table public.database_backups was dropped" in done.stdout
    assert not db18.table_exists()
    copies = list((tmp_path / "backups").glob("public.database_backups-before-rollback-*.sql"))
    assert len(copies) == 1 and stat.S_IMODE(copies[0].stat().st_mode) == 0o600

    log = tmp_path / "migrate-tui.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert canary not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert {"migrate", "rollback"} <= {e["operation"] for e in entries}
    final = [e for e in entries if e["event"] == "RollbackFinished"]
    assert [e["outcome"] for e in final] == ["success"]
    assert final[0]["backup_path"].endswith(copies[0].name)

    shown = run_cli("log", "--tail", "2", cwd=tmp_path, env=cli_env())
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 2
    assert "rollback  RollbackFinished  success" in shown.stdout


def test_dependents_need_cascade(db18, tmp_path):
    _migrate(db18, tmp_path)
    with db18.app() as conn:
        conn.execute("CREATE VIEW v_backups AS SELECT * FROM database_backups")
    refused = run_cli("rollback", "--yes", cwd=tmp_path, env=cli_env(db18.url))
    assert refused.returncode == exit_codes.FAILURE, refused.output
    assert "- view public.v_backups" in refused.stdout
    assert "  Fix: re-run with --cascade" in refused.stdout
    assert db18.table_exists() and not (tmp_path / "backups").exists()

    done = run_cli("rollback", "--yes", "--cascade", "--no-table-backup", "--audit-log", "custom.log",
                   cwd=tmp_path, env=cli_env(db18.url))
    assert done.returncode == exit_codes.OK, done.output
    assert "⚠️  No safety copy" in done.stdout and "also dropped: view public.v_backups" in done.stdout
    assert not db18.table_exists() and not db18.scalar("SELECT to_regclass('public.v_backups') IS NOT NULL")
    assert (tmp_path / "custom.log").exists()


def test_lock_timeout_exhausted_exits_1_naming_the_blocker(db18, tmp_path):
    _migrate(db18, tmp_path)
    with psycopg.connect(db18.url, autocommit=True, application_name="busy-app") as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM database_backups")
        result = run_cli("rollback", "--yes", "--lock-timeout", "200", "--retries", "1", cwd=tmp_path,
                         env=cli_env(db18.url))
        holder.execute("ROLLBACK")
    assert result.returncode == exit_codes.FAILURE, result.output
    assert "Lock not granted within the lock timeout (attempt 1/2)" in result.stdout
    assert "busy-app user app_user, holds AccessShareLock, idle in transaction" in result.stdout
    assert "SQLSTATE 55P03" in result.stdout
    assert db18.table_exists()


def test_ctrl_c_while_waiting_rolls_back_and_exits_130(db18, tmp_path):
    _migrate(db18, tmp_path)
    with psycopg.connect(db18.url, autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM database_backups")
        proc = start_cli("rollback", "--yes", "--lock-timeout", "60000", cwd=tmp_path, env=cli_env(db18.url))
        try:
            wait_until(lambda: db18.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'migrate-tui rollback' "
                "AND wait_event_type = 'Lock'"), 60, "the DROP to wait for its lock")
            proc.send_signal(signal.SIGINT)
            result = finish(proc, timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        holder.execute("ROLLBACK")
    assert result.returncode == exit_codes.CANCELLED, result.output
    assert "Cancelling" in result.stderr and "Cancelled; nothing was dropped (the catalog still shows public.database_backups)." in result.stdout
    assert db18.table_exists()


def test_bad_retries_is_a_usage_error(tmp_path):
    result = run_cli("rollback", "--retries", "-1", cwd=tmp_path, env=cli_env("postgresql://u@127.0.0.1/db"))
    assert result.returncode == exit_codes.USAGE


@pytest.mark.parametrize("args", [("run", "--lock-timeout", "abc"), ("frobnicate",), ("check", "--cascade"),
                                  ("fleet", "fleet.toml", "run", "--concurrency", "0"), ("rollback", "--format", "x")])
def test_a_usage_error_says_what_is_wrong_and_how_to_fix_it(tmp_path, args):
    result = run_cli(*args, cwd=tmp_path, env=cli_env("postgresql://u@127.0.0.1/db"), explained=False)
    assert result.returncode == exit_codes.USAGE, result.output
    error, fix = [line.strip() for line in result.stderr.splitlines()[-2:]]
    assert error.startswith("Error: ") and fix.startswith("Fix: ") and "--help" in fix, result.stderr


@pytest.mark.parametrize("command", [("rollback", "--yes"), ("fleet", "fleet.toml", "rollback", "--yes")])
def test_accept_loss_without_cascade_is_refused_before_anything_starts(tmp_path, command):
    """Alone it would change nothing, silently: the operator is told, and nothing is attempted (the URL's
    server does not exist: a connection attempt would be a different error)."""
    (tmp_path / "fleet.toml").write_text('[[target]]\nname = "a"\nurl = "postgresql://u@127.0.0.1:1/db"\n')
    (tmp_path / "fleet.toml").chmod(0o600)
    result = run_cli(*command, "--accept-loss", cwd=tmp_path, env=cli_env("postgresql://u@127.0.0.1:1/db"))
    assert result.returncode == exit_codes.CONFIG, result.output
    assert "--accept-loss only widens --cascade" in result.output and "--cascade --accept-loss" in result.output


def test_every_operation_is_in_the_audit_log(db18, tmp_path, canary):
    env = cli_env(db18.url, MIGRATE_AUDIT_LOG=str(tmp_path / "audit" / "ops.log"))
    for args in (("check",), ("backup",), ("run", "--yes"), ("rollback", "--yes")):
        result = run_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, (args, result.output)
    log = tmp_path / "audit" / "ops.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert canary not in text
    entries = [json.loads(line) for line in text.splitlines()]
    # run --yes drills the backup and rehearses the migration on the copy first (by default at this size)
    assert {"check", "backup", "drill", "rehearse", "migrate", "rollback"} == {e["operation"] for e in entries}
    assert not any(e["event"].endswith("Progress") for e in entries)
    finals = {e["operation"]: e for e in entries
              if e["event"] in ("ChecklistFinished", "BackupFinished", "RunFinished", "RollbackFinished")}
    assert finals["check"]["outcome"] == "success"
    assert finals["migrate"]["outcome"] == "success" and finals["rollback"]["outcome"] == "success"
    drilled = [e for e in entries if e["event"] in ("DrillFinished", "RehearsalFinished")]
    assert [e["outcome"] for e in drilled] == ["success", "success"], drilled
    backups = [e for e in entries if e["operation"] == "backup" and e["event"] == "BackupFinished"]
    assert len(backups) == 2  # `backup`, and the one `run --yes` takes first
    for entry in backups:
        path = tmp_path / entry["backup_path"] if not entry["backup_path"].startswith("/") else entry["backup_path"]
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert entry["sha256"] == digest
    assert not (tmp_path / "migrate-tui.log").exists()  # MIGRATE_AUDIT_LOG was honoured


def test_restore_undoes_the_rollback_from_its_safety_copy(db18, tmp_path, canary):
    _migrate(db18, tmp_path)
    assert run_cli("rollback", "--yes", cwd=tmp_path, env=cli_env(db18.url)).returncode == 0
    copy = next((tmp_path / "backups").glob("public.database_backups-before-rollback-*.sql"))
    done = run_cli("rollback", "--restore", str(copy), cwd=tmp_path, env=cli_env(db18.url))
    assert done.returncode == exit_codes.OK, done.output
    assert "✅ Table public.database_backups restored from the safety copy: 1 rows, structure verified." in done.stdout
    assert db18.scalar("SELECT filename FROM database_backups") == "a.sql"
    again = run_cli("rollback", "--restore", str(copy), cwd=tmp_path, env=cli_env(db18.url))
    assert again.returncode == exit_codes.FAILURE and "already exists; nothing was restored" in again.stdout
    entries = [json.loads(line) for line in (tmp_path / "migrate-tui.log").read_text().splitlines()]
    assert [e["outcome"] for e in entries if e["event"] == "RestoreFinished"] == ["success", "failed"]
    assert canary not in (tmp_path / "migrate-tui.log").read_text()
