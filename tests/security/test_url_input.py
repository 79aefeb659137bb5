"""DATABASE_URL as the operator types it (issue findings 5, third part, and 7).

- A raw '@' in the password (not percent-encoded): every command and the wizard stop with exit 78 and
  a percent-encoding hint; no fragment of the password on stdout, stderr, the screen or in the audit log
  (which does not even get a line).
- Control characters (newline, tab, \\x01, DEL) in DATABASE_URL, from the environment or a .env file:
  exit 78 "contains a control character", nothing of the URL echoed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cli.cli_support import run_cli
from files_support import env_for, flat, screen_text, settle

from migration import exit_codes

pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("system-tmp")]  # the CLI runs without TMPDIR: /tmp

PASSWORD = "Secret@Pw-9xQ"
FRAGMENTS = ("Secret", "Pw-9xQ", "9xQ", "Secret@Pw")
COMMANDS = [("check",), ("check", "--json"), ("run", "--yes"), ("backup",), ("rollback",), ("rollback", "--yes"),
            ("rollback", "--restore", "backups/x.sql"), ("run", "--yes", "--skip-backup")]
TWO_ATS = "Error: DATABASE_URL has more than one '@' before the host."
ENCODE_HINT = "must be percent-encoded as %40"


def raw_at_url(db, password: str = PASSWORD, tail: str = "") -> str:
    parts = urlsplit(db.url)
    return f"postgresql://app_user:{password}@{parts.hostname}:{parts.port}/{db.name}{tail}"


def assert_no_fragment(text: str, fragments=FRAGMENTS) -> None:
    for fragment in fragments:
        assert fragment not in text, f"{fragment!r} (a part of the password) is shown:\n{text}"


@pytest.mark.parametrize("source", ["environment", "env-file"])
def test_raw_at_in_the_password_stops_every_command_without_echoing_it(db18, tmp_path, source):
    url = raw_at_url(db18)
    audit = tmp_path / "audit.log"
    if source == "environment":
        env, extra = env_for(url, audit), ()
    else:
        (tmp_path / "prod.env").write_text(f"DATABASE_URL={url}\n")
        env, extra = env_for(None, audit), ("--env-file", "prod.env")
    for command in COMMANDS:
        result = run_cli(*command, *extra, cwd=tmp_path, env=env)
        assert result.returncode == exit_codes.CONFIG, (command, result.output)
        assert_no_fragment(result.output)
        if "--json" in command:
            assert "more than one '@' before the host" in result.stdout and "%40" in result.stdout
        else:
            assert TWO_ATS in result.stderr and ENCODE_HINT in result.stderr, (command, result.output)
    assert not audit.exists(), "the audit log got a line"
    assert not (tmp_path / "backups").exists()
    assert not db18.table_exists()


@pytest.mark.parametrize("password,tail", [
    ("Secret@Pw-9xQ@", ""),  # two raw '@'
    ("Secret@Pw-9xQ", "?sslmode=disable"),
    ("Secret@Pw?9xQ", ""),  # and a raw '?'
    pytest.param("Secret@Pw-9xQ/frag", ""),
    pytest.param("Secret@Pw-9xQ#frag", ""),
], ids=["two-ats", "query", "question-mark", "slash", "hash"])
def test_raw_at_with_other_special_characters_is_refused_without_echo(db18, tmp_path, password, tail):
    audit = tmp_path / "audit.log"
    for command in (("check",), ("backup",)):
        result = run_cli(*command, cwd=tmp_path, env=env_for(raw_at_url(db18, password, tail), audit))
        assert_no_fragment(result.output, ("Secret", "9xQ", "frag"))
        assert result.returncode == exit_codes.CONFIG, (command, result.output)
        assert "Error: DATABASE_URL" in result.stderr and "percent-encode" in result.stderr.replace(
            "percent-encoded", "percent-encode"), result.output
    assert not audit.exists() or not any(f in audit.read_text() for f in ("Secret", "9xQ", "frag"))


def test_a_raw_ampersand_in_a_query_password_is_not_echoed(db18, tmp_path):
    parts = urlsplit(db18.url)
    url = f"postgresql://app_user@{parts.hostname}:{parts.port}/{db18.name}?password=Secret&Pw-9xQ"
    result = run_cli("check", cwd=tmp_path, env=env_for(url, tmp_path / "audit.log"))
    assert result.returncode == exit_codes.CONFIG, result.output
    assert_no_fragment(result.output)


@pytest.mark.parametrize("source", ["environment", "env-file"])
async def test_wizard_shows_the_raw_at_error_without_the_password(db18, tmp_path, monkeypatch, source):
    from tui.app import MigrateApp
    from tui.screens.config_error import ConfigErrorScreen
    from tui.target_source import SettingsSource

    audit = tmp_path / "audit.log"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIGRATE_AUDIT_LOG", str(audit))
    url = raw_at_url(db18)
    if source == "environment":
        monkeypatch.setenv("DATABASE_URL", url)
        args = argparse.Namespace()
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        (tmp_path / ".env").write_text(f"DATABASE_URL={url}\n")
        args = argparse.Namespace(env_file=str(tmp_path / ".env"))
    from headless.options import settings_from_args  # what the console script gives the wizard

    app = MigrateApp(SettingsSource(lambda database_url=None: settings_from_args(args, database_url=database_url)))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ConfigErrorScreen)
        text = flat(screen_text(app))
        assert "DATABASE_URL has more than one '@' before the host." in text
        assert "%40" in text
        assert_no_fragment(text)
        assert_no_fragment(app.export_screenshot())
        assert app.check_action("migrate", ()) is not True and app.check_action("rollback", ()) is not True
        await pilot.press("q")
    assert app.return_code == exit_codes.CONFIG
    assert not audit.exists()


# --- control characters -----------------------------------------------------------------------------------

CONTROL = "Error: DATABASE_URL contains a control character (a line break, tab or other invisible character)."
CONTROL_URLS = {
    # id: (how it is spelled in the environment, how it is spelled in a .env file)
    "newline-in-dbname": ("postgresql://app_user:Pw-9xQ@127.0.0.1:{port}/shop\nprod",
                          'DATABASE_URL="postgresql://app_user:Pw-9xQ@127.0.0.1:{port}/shop\\nprod"'),
    "newline-in-password": ("postgresql://app_user:Pw-\n9xQ@127.0.0.1:{port}/shop",
                            'DATABASE_URL="postgresql://app_user:Pw-\n9xQ@127.0.0.1:{port}/shop"'),
    "x01-in-user": ("postgresql://app\x01user:Pw-9xQ@127.0.0.1:{port}/shop",
                    "DATABASE_URL=postgresql://app\x01user:Pw-9xQ@127.0.0.1:{port}/shop"),
    "tab-inside": ("postgresql://app_user:Pw-9xQ@127.0.0.1:{port}/shop\tx",
                   'DATABASE_URL="postgresql://app_user:Pw-9xQ@127.0.0.1:{port}/shop\\tx"'),
    "del-in-host": ("postgresql://app_user:Pw-9xQ@127.0.0.1\x7f:{port}/shop",
                    "DATABASE_URL=postgresql://app_user:Pw-9xQ@127.0.0.1\x7f:{port}/shop"),
    "x1b-escape": ("postgresql://app_user:Pw-9xQ@127.0.0.1:{port}/shop\x1b[2Jx",
                   "DATABASE_URL=postgresql://app_user:Pw-9xQ@127.0.0.1:{port}/shop\x1b[2Jx"),
}


@pytest.mark.parametrize("source", ["environment", "env-file"])
@pytest.mark.parametrize("case", list(CONTROL_URLS))
def test_control_characters_in_database_url_are_refused(server18, tmp_path, case, source):
    port = urlsplit(server18.admin_url).port
    in_env, in_file = (s.format(port=port) for s in CONTROL_URLS[case])
    audit = tmp_path / "audit.log"
    if source == "environment":
        env, extra = env_for(in_env, audit), ()
    else:
        (tmp_path / "ctl.env").write_text(in_file + "\n", encoding="utf-8")
        env, extra = env_for(None, audit), ("--env-file", "ctl.env")
    other = (("backup",), ("run", "--yes"), ("rollback", "--yes"))[list(CONTROL_URLS).index(case) % 3]
    for command in (("check",), other):
        result = run_cli(*command, *extra, cwd=tmp_path, env=env)
        assert result.returncode == exit_codes.CONFIG, (command, result.output)
        assert CONTROL in result.stderr, (command, result.output)
        assert_no_fragment(result.output, ("Pw-9xQ", "9xQ", "shop"))
        assert not any(c in result.output for c in "\x01\x7f\x1b\t"), repr(result.output)
    assert not audit.exists()


@pytest.mark.parametrize("char", ["\x9b", "\x85"], ids=["csi", "nel"])
def test_c1_control_characters_are_refused_too(server18, tmp_path, char):
    port = urlsplit(server18.admin_url).port
    env = env_for(f"postgresql://app_user:Pw-9xQ@127.0.0.1:{port}/shop{char}prod", tmp_path / "audit.log")
    result = run_cli("check", cwd=tmp_path, env=env)
    assert result.returncode == exit_codes.CONFIG, result.output
    assert CONTROL in result.stderr
    assert char not in result.output


def test_a_trailing_line_break_is_only_trimmed(db18, tmp_path):
    """A final newline (a common .env slip) is whitespace around the value, not part of it: accepted."""
    env = env_for(db18.url + "\n", tmp_path / "audit.log")
    result = run_cli("check", cwd=tmp_path, env=env)
    assert result.returncode == exit_codes.OK, result.output
    assert f"/{db18.name} (schema public)" in result.stdout
    assert Path(tmp_path / "audit.log").exists()
