"""No password (the canary, or a wrong one) ever reaches stdout or stderr of the headless commands.

run_cli() itself asserts the canary is absent from every CLI run in this suite; these tests add
the failure paths that are most likely to echo a connection string.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from cli_support import cli_env, run_cli

from migration import exit_codes

pytestmark = pytest.mark.timeout(120)

WRONG = "Wrong-canary-pw-0c4f1a-DO-NOT-LEAK"
WRONG_SPECIAL = "Wr@ng:canary/pw?%#-DO-NOT-LEAK"


@pytest.mark.parametrize("password", [WRONG, WRONG_SPECIAL], ids=["plain", "special-chars"])
def test_wrong_password_is_not_echoed(db, tmp_path, password):
    url = db.server.url(db.name, password=password)
    assert quote(password, safe="") in url
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(url),
                     secrets=(password, quote(password, safe=""), quote(password)))
    assert result.returncode == exit_codes.FAILURE, result.output
    assert "password authentication failed" in result.output
    assert "Check the user and password in DATABASE_URL" in result.output
    assert "postgresql://app_user:****@" in result.output


def test_wrong_password_in_key_value_form_is_not_echoed(db, tmp_path):
    port = db.server.url(db.name).rsplit(":", 1)[1].split("/")[0]
    dsn = f"host=127.0.0.1 port={port} dbname={db.name} user=app_user password={WRONG}"
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(dsn), secrets=(WRONG,))
    assert result.returncode == exit_codes.FAILURE
    assert "password authentication failed" in result.output


def test_unknown_parameter_error_does_not_echo_the_url(db, tmp_path, canary):
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url + "?schema=app&pgbouncer=true"))
    assert result.returncode == exit_codes.CONFIG  # run_cli checked the canary is absent


def test_malformed_url_does_not_echo_the_password(tmp_path):
    url = f"postgresql://user:{WRONG}@host/db?sslmode=bogus-mode"
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(url), secrets=(WRONG,))
    assert result.returncode in (exit_codes.CONFIG, exit_codes.FAILURE)
    assert "Fix:" in result.output


def test_success_and_failure_runs_never_print_the_canary(db, tmp_path, canary):
    env = cli_env(db.url, CRON_SECRET="Canary-cron-secret-3a3a")
    for _ in range(2):  # success, then not needed
        result = run_cli("run", "--yes", "--verbose", cwd=tmp_path, env=env, secrets=("Canary-cron-secret-3a3a",))
        assert result.returncode == exit_codes.OK
    assert canary not in result.output
