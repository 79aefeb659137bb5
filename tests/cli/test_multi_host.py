"""Multi-host DATABASE_URLs (libpq's host lists), as an operator with a fail-over pair writes them.

The first host refuses connections (a closed port), the real server is second: every command works, as
psql does, and what the tool shows (check's Connection row, the audit log's target) names the host it
actually connected to, never the whole list as if it were one host; the password stays hidden."""

from __future__ import annotations

import json
import re

import pytest
from cli_support import cli_env, run_cli
from harness import CANARY

from migration import exit_codes
from migration.pgserver import free_port

pytestmark = pytest.mark.timeout(240)


def _real(db) -> tuple[str, int]:
    match = re.search(r"@([^:/]+):(\d+)/", db.url)
    return match.group(1), int(match.group(2))


def _url_form(db) -> tuple[str, str]:
    host, port = _real(db)
    closed = free_port()
    return (f"postgresql://app_user:{CANARY}@127.0.0.1:{closed},{host}:{port}/{db.name}",
            f"127.0.0.1:{closed},{host}:{port}")


def _key_value_form(db) -> str:
    host, port = _real(db)
    return f"host=127.0.0.1,{host} port={free_port()},{port} user=app_user password={CANARY} dbname={db.name}"


def test_every_command_works_through_a_host_list(db, tmp_path):
    url, listed = _url_form(db)
    host, port = _real(db)
    env = cli_env(url)

    check = run_cli("check", cwd=tmp_path, env=env)
    assert check.returncode == exit_codes.OK, check.output
    connection = next(line for line in check.stdout.splitlines() if "Connection:" in line)
    assert f" at {host}:{port}/{db.name} as app_user" in connection, connection
    assert listed in connection  # and says it was picked from the list
    assert "SSL: not in use (local connection)" in check.stdout
    assert f"postgresql://app_user:****@{listed}/{db.name}" in check.stdout

    backup = run_cli("backup", cwd=tmp_path, env=env)
    assert backup.returncode == exit_codes.OK, backup.output
    manifest = json.loads(next((tmp_path / "backups").glob("backup_*.manifest.json")).read_text())
    assert (manifest["host"], manifest["port"]) == (host, str(port))

    run = run_cli("run", "--yes", cwd=tmp_path, env=env)
    assert run.returncode == exit_codes.OK, run.output
    with db.app() as conn:
        conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a.sql', 'k/a', 1)")

    rollback = run_cli("rollback", "--yes", cwd=tmp_path, env=env)
    assert rollback.returncode == exit_codes.OK, rollback.output
    assert not db.table_exists()
    copy = next((tmp_path / "backups").glob("public.database_backups-before-rollback-*.sql"))
    restored = run_cli("rollback", "--restore", str(copy), cwd=tmp_path, env=env)
    assert restored.returncode == exit_codes.OK, restored.output
    assert db.scalar("SELECT count(*) FROM public.database_backups") == 1

    text = (tmp_path / "migrate-tui.log").read_text()
    assert CANARY not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert {e["operation"] for e in entries} == {"check", "backup", "drill", "rehearse", "migrate", "rollback",
                                                 "restore"}
    finals = [e for e in entries if e["event"].endswith("Finished")]
    for entry in finals:  # once connected, the target names the server that answered
        assert entry["target"] == f"postgresql://app_user:****@{host}:{port}/{db.name}", entry
        assert entry["server"] == f"{host}:{port}"


def test_key_value_host_lists_work_too(db18, tmp_path):
    env = cli_env(_key_value_form(db18))
    host, port = _real(db18)
    check = run_cli("check", cwd=tmp_path, env=env)
    assert check.returncode == exit_codes.OK, check.output
    assert f" at {host}:{port}/{db18.name} as app_user" in check.stdout
    for args in (("backup",), ("run", "--yes"), ("rollback", "--yes")):
        result = run_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == exit_codes.OK, (args, result.output)
    assert not db18.table_exists()


def test_the_masked_key_value_host_list_pairs_hosts_with_their_ports():
    from migration.redact import mask_url

    masked = mask_url(f"host=a.example,b.example port=5433,5432 user=u password={CANARY} dbname=d")
    assert masked == "postgresql://u:****@a.example:5433,b.example:5432/d"
