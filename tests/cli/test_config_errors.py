"""Bad configuration: exit 78 (exit_codes.CONFIG), a message and a Fix line, no traceback, nothing touched."""

from __future__ import annotations

import pytest
from cli_support import cli_env, run_cli

from migration import exit_codes

pytestmark = pytest.mark.timeout(120)


def assert_config_error(result, *expected: str) -> None:
    assert result.returncode == exit_codes.CONFIG == 78, result.output
    assert "Error: " in result.stderr
    assert "\n  Fix: " in result.stderr
    for text in expected:
        assert text in result.output, result.output
    assert "🚀" not in result.stdout  # nothing was attempted


def test_no_database_url(tmp_path):
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env())
    assert_config_error(result, "DATABASE_URL is not set", "--demo")


def test_prisma_schema_parameter(db, tmp_path):
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url + "?schema=x"))
    assert_config_error(result, "'schema'", "--schema")
    assert not db.table_exists()


def test_pgbouncer_parameter(db, tmp_path):
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url + "?sslmode=disable&pgbouncer=true"))
    assert_config_error(result, "'pgbouncer'")


def test_mysql_url(tmp_path):
    result = run_cli("run", "--yes", cwd=tmp_path,
                     env=cli_env("mysql://root:Canary-mysql-pw-91@db.example.com:3306/shop"))
    assert_config_error(result, "mysql://", "postgresql://")
    assert "Canary-mysql-pw-91" not in result.output


def test_missing_env_file(tmp_path):
    result = run_cli("run", "--yes", "--env-file", str(tmp_path / "nope.env"), cwd=tmp_path, env=cli_env())
    assert_config_error(result, "nope.env", "--env-file")


def test_invalid_port(tmp_path):
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env("postgresql://u:Canary-port-pw-55@host:notaport/db"))
    assert_config_error(result, "port")
    assert "Canary-port-pw-55" not in result.output


def test_invalid_schema_name(db, tmp_path):
    result = run_cli("run", "--yes", "--schema", "bad-name;drop", cwd=tmp_path, env=cli_env(db.url))
    assert_config_error(result, "not a valid schema name")


def test_bad_timeout_in_env(db, tmp_path):
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url, MIGRATE_LOCK_TIMEOUT_MS="soon"))
    assert_config_error(result, "MIGRATE_LOCK_TIMEOUT_MS")


def test_run_without_yes_and_without_a_tty_refuses(db, tmp_path):
    result = run_cli("run", cwd=tmp_path, env=cli_env(db.url))
    assert_config_error(result, "--yes")
    assert not db.table_exists()


def test_unreachable_server_is_a_failure_not_a_config_error(tmp_path):
    """Connecting is attempted, fails cleanly with the guide's 'Connection Failed' fix."""
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://app:Canary-unreach-pw-77@127.0.0.1:{port}/db?connect_timeout=3"
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(url), secrets=("Canary-unreach-pw-77",))
    assert result.returncode == exit_codes.FAILURE, result.output
    assert "Connection to server failed" in result.output or "connection" in result.output.lower()
    assert "Verify DATABASE_URL is correct" in result.output
    assert "Nothing was changed" in result.output
