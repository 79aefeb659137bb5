"""The pre-migration checklist on real PostgreSQL: every check in its ok and its failing state."""

from __future__ import annotations

import json
import socket

import pytest
from engine_support import catalog_snapshot, run

from migration.options import BackupOptions
from migration.preflight import Status, check_disk, run_checklist
from migration.settings import load_settings

pytestmark = pytest.mark.timeout(120)

GOOD_ENV = {"CRON_SECRET": "c" * 40, "CLOUDFLARE_ACCESS_KEY_ID": "key-id", "CLOUDFLARE_SECRET_ACCESS_KEY": "secret"}
EVERY_KEY = ["env_file", "database_url", "cron_secret", "cloudflare_access_key_id", "cloudflare_secret_access_key",
             "connection", "latency", "ssl", "pooler", "schema_create", "primary", "read_write", "table",
             "index_names", "pg_dump", "backup_read", "backup_dir", "disk_space", "backup_format", "drill", "drill_room"]


def settings(db, environ=None, **overrides):
    return load_settings(database_url=overrides.pop("database_url", db.url), environ=environ or {}, **overrides)


def test_every_check_ok_on_a_healthy_database(db, tmp_path):
    before = catalog_snapshot(db)
    checklist = run_checklist(settings(db, GOOD_ENV), options=BackupOptions(backup_dir=tmp_path / "backups"))
    assert [r.key for r in checklist.results] == EVERY_KEY
    assert [r for r in checklist.results if r.status is not Status.OK] == []
    assert checklist.passed and checklist.table_state == "absent"
    assert checklist.summary().startswith(f"{len(EVERY_KEY)} ok, 0 warnings, 0 failures")
    connection = checklist.by_key("connection").detail
    major = db.scalar("SELECT current_setting('server_version_num')::int / 10000")
    assert f"PostgreSQL {major}." in connection and "server time 20" in connection and "as app_user" in connection
    assert "ms (median of 5)" in checklist.by_key("latency").detail
    assert checklist.pg_dump is not None and checklist.pg_dump.major >= major
    # Side-effect free: nothing created in the database, not even the backup directory.
    assert catalog_snapshot(db) == before
    assert not (tmp_path / "backups").exists()


def test_optional_variables_missing_or_short_are_for_later_never_warnings(db, tmp_path):
    """Needed only after the migration (the guide adds them then): shown, never blocking, nothing to acknowledge."""
    checklist = run_checklist(settings(db, {"CRON_SECRET": "too-short"}), options=BackupOptions(backup_dir=tmp_path))
    cron = checklist.by_key("cron_secret")
    assert cron.status is Status.INFO and "only 9 characters" in cron.detail and "32" in cron.detail
    assert "migrate-tui cron-secret --force" in cron.hint
    for key in ("cloudflare_access_key_id", "cloudflare_secret_access_key"):
        row = checklist.by_key(key)
        assert row.status is Status.INFO
        assert "needed by the backup system after the migration" in row.detail
    assert checklist.passed and not checklist.warnings and len(checklist.notes) == 3
    assert ", 3 for later, 0 warnings, 0 failures" in checklist.summary()
    assert "too-short" not in json.dumps([r.as_dict() for r in checklist.results])


def test_env_file_is_named(db, tmp_path):
    env_file = tmp_path / "prod.env"
    env_file.write_text(f"DATABASE_URL={db.url}\n")
    checklist = run_checklist(load_settings(env_file, environ={}), options=BackupOptions(backup_dir=tmp_path))
    assert checklist.by_key("env_file").detail == f"loaded {env_file.resolve()}"
    url_row = checklist.by_key("database_url")
    assert url_row.status is Status.OK and "app_user:****@" in url_row.detail


def test_no_create_privilege_fails_with_the_guides_grant(db, tmp_path, canary):
    db.execute("ALTER SCHEMA public OWNER TO postgres")
    db.execute("REVOKE CREATE ON SCHEMA public FROM app_user")
    checklist = run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path))
    row = checklist.by_key("schema_create")
    assert row.status is Status.FAILURE and not checklist.passed
    assert "app_user has no CREATE privilege on schema public" in row.detail
    assert row.hint == "Ask an administrator to run: GRANT CREATE ON SCHEMA public TO app_user;"
    # The hint is the fix: applying it turns the row green.
    db.execute(row.hint.split("run: ", 1)[1])
    assert run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path)).by_key("schema_create").status is Status.OK


def test_missing_schema_fails(db, tmp_path):
    row = run_checklist(settings(db, schema="nowhere"), options=BackupOptions(backup_dir=tmp_path)).by_key("schema_create")
    assert row.status is Status.FAILURE and "schema nowhere does not exist" in row.detail
    assert "--schema" in row.hint


def test_read_only_database_fails(db, tmp_path):
    db.execute(f'ALTER DATABASE "{db.name}" SET default_transaction_read_only = on')
    checklist = run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path))
    row = checklist.by_key("read_write")
    assert row.status is Status.FAILURE and "read-only" in row.detail
    assert f'ALTER DATABASE "{db.name}" SET default_transaction_read_only = off;' in row.hint
    assert checklist.by_key("primary").status is Status.OK  # a primary, just read-only sessions
    # CREATE privilege alone would have said yes: that is why the session check exists.
    assert checklist.by_key("schema_create").status is Status.OK
    assert not checklist.passed


def test_existing_valid_table_is_ok_and_missing_column_fails(db, settings_for, tmp_path):
    result, _ = run(settings_for(db))
    assert result.outcome.value == "success"
    checklist = run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path))
    assert checklist.table_state == "valid"
    assert checklist.by_key("table").status is Status.OK
    assert "migration is not needed" in checklist.by_key("table").detail

    db.execute("ALTER TABLE database_backups DROP COLUMN metadata")
    checklist = run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path))
    row = checklist.by_key("table")
    assert checklist.table_state == "invalid" and row.status is Status.FAILURE
    assert "Required column metadata is missing from database_backups table" in row.detail
    assert 'DROP TABLE "public"."database_backups" CASCADE' in row.hint


def test_index_name_taken_by_another_table_fails(db, tmp_path):
    with db.app() as conn:
        conn.execute("CREATE TABLE jobs (status text)")
        conn.execute("CREATE INDEX idx_database_backups_status ON jobs(status)")
    row = run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path)).by_key("index_names")
    assert row.status is Status.FAILURE
    assert "idx_database_backups_status (used by public.jobs)" in row.detail


def test_unreachable_server_is_one_failed_row_and_pg_dump_is_still_reported(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://app:Canary-unreach-pw@127.0.0.1:{port}/db?connect_timeout=3"
    checklist = run_checklist(load_settings(database_url=url, environ={}), options=BackupOptions(backup_dir=tmp_path))
    row = checklist.by_key("connection")
    assert row.status is Status.FAILURE and "Verify DATABASE_URL is correct" in row.hint
    assert checklist.by_key("pg_dump") is not None
    assert "Canary-unreach-pw" not in json.dumps([r.as_dict() for r in checklist.results])


def test_a_table_pg_dump_cannot_read_fails_before_the_backup(db, tmp_path):
    db.execute("CREATE TABLE payroll (amount int)")  # owned by the admin: app_user may not read it
    checklist = run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path))
    row = checklist.by_key("backup_read")
    assert row.status is Status.FAILURE and "app_user cannot read 1 relation: public.payroll" in row.detail
    assert "GRANT pg_read_all_data TO app_user;" in row.hint
    db.execute("GRANT SELECT ON payroll TO app_user")
    assert run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path)).by_key("backup_read").status is Status.OK
    # Without a backup the check is not needed.
    assert run_checklist(settings(db), options=BackupOptions(backup_dir=tmp_path), with_backup=False).by_key("backup_read") is None


def test_disk_space_against_database_size(tmp_path):
    assert check_disk(tmp_path / "backups", 1024).status is Status.OK
    free = __import__("shutil").disk_usage(tmp_path).free
    full = check_disk(tmp_path / "backups", free * 4)
    assert full.status is Status.FAILURE and "may not fit" in full.detail and "--backup-dir" in full.hint
    assert check_disk(tmp_path, int(free * 0.7)).status is Status.WARNING
