"""``migrate-tui verify`` and ``migrate-tui cron-secret``: the guide's Post-Migration Steps, headless."""

from __future__ import annotations

import json
import stat

import pytest
from cli_support import cli_env, lines_in_order, run_cli
from engine.engine_support import catalog_snapshot

from migration import exit_codes
from migration.env_file import read_env_file

pytestmark = pytest.mark.timeout(180)


def test_verify_is_read_only_and_exits_0_only_when_everything_matches(db, tmp_path):
    env = cli_env(db.url)
    missing = run_cli("verify", cwd=tmp_path, env=env)
    assert missing.returncode == exit_codes.FAILURE
    assert "Error: Table public.database_backups does not exist" in missing.stdout
    assert "Fix: Run the migration first" in missing.stdout

    assert run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=env).returncode == exit_codes.OK
    before = catalog_snapshot(db)
    ok = run_cli("verify", cwd=tmp_path, env=env)
    assert ok.returncode == exit_codes.OK, ok.output
    lines_in_order(ok.stdout, [
        "🔎 Verify Migration Success: public.database_backups",
        "-- Check table exists",
        "SELECT table_name FROM information_schema.tables",
        "WHERE table_schema = 'public' AND table_name = 'database_backups';",
        " database_backups", "(1 row)",
        "-- Check table structure (\\d database_backups)",
        "Columns:", "  ✓ id ", "  ✓ filename ", "  ✓ backup_type ",
        "Indexes:", "  ✓ idx_database_backups_created_at ",
        "Constraints:", "  ✓ PRIMARY KEY ", "  ✓ UNIQUE ",
        "Sequence:", "  ✓ database_backups_id_seq ",
        "✅ Migration verified: All ",
    ])
    assert "✗" not in ok.stdout
    document = json.loads(run_cli("verify", "--json", cwd=tmp_path, env=env).stdout)
    assert document["verified"] is True and all(line["ok"] for line in document["lines"])
    assert catalog_snapshot(db) == before

    db.execute("ALTER TABLE database_backups ALTER COLUMN created_by DROP DEFAULT")
    bad = run_cli("verify", cwd=tmp_path, env=env)
    assert bad.returncode == exit_codes.FAILURE
    assert "  ✗ created_by " in bad.stdout and "expected: text NOT NULL DEFAULT 'system'::text" in bad.stdout
    assert "❌ 1 of " in bad.stdout


ENV_TEXT = ("# Production\r\nexport DATABASE_URL='postgresql://app:pw@db:5432/shop'\r\n\r\n"
            "CLOUDFLARE_ACCESS_KEY_ID=abc # R2\r\n")


def test_cron_secret_adds_a_secret_keeps_the_file_and_never_shows_it(tmp_path):
    env_file = tmp_path / "prod.env"
    env_file.write_bytes(ENV_TEXT.encode())
    audit = tmp_path / "audit.log"
    env = cli_env(MIGRATE_AUDIT_LOG=str(audit))
    first = run_cli("cron-secret", "--env-file", str(env_file), cwd=tmp_path, env=env)
    assert first.returncode == exit_codes.OK, first.output
    value = read_env_file(env_file)["CRON_SECRET"]
    assert env_file.read_bytes() == ENV_TEXT.encode() + f"CRON_SECRET={value}\r\n".encode()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"✓ CRON_SECRET added to {env_file} (line 5): …{value[-4:]} (64 characters)" in first.stdout

    again = run_cli("cron-secret", "--env-file", str(env_file), cwd=tmp_path, env=env)
    assert again.returncode == exit_codes.FAILURE
    assert "already sets CRON_SECRET (line 5); it was not changed" in again.output and "--force" in again.output
    assert read_env_file(env_file)["CRON_SECRET"] == value

    forced = run_cli("cron-secret", "--env-file", str(env_file), "--force", cwd=tmp_path, env=env)
    assert forced.returncode == exit_codes.OK and "replaced in" in forced.stdout
    new = read_env_file(env_file)["CRON_SECRET"]
    assert new != value and env_file.read_bytes().startswith(ENV_TEXT.encode())
    log = audit.read_text()
    assert [json.loads(line)["event"] for line in log.splitlines()] == [
        "CronSecretWritten", "CronSecretKept", "CronSecretWritten"]
    for secret in (value, new):
        assert secret not in log and secret not in first.output + again.output + forced.output


def test_cron_secret_creates_dot_env_in_the_working_directory(tmp_path):
    result = run_cli("cron-secret", cwd=tmp_path, env=cli_env(MIGRATE_AUDIT_LOG=str(tmp_path / "a.log")))
    assert result.returncode == exit_codes.OK, result.output
    assert "✓ CRON_SECRET written to a new file .env (line 1)" in result.stdout
    assert len(read_env_file(tmp_path / ".env")["CRON_SECRET"]) == 64
