"""The fleet file: every problem reported at once (exit 78, nothing attempted), a password in the file refused,
a file others can read or write (or a link to one) refused; a good file read as written."""

from __future__ import annotations

import os

import pytest
from cli.cli_support import run_cli
from fleet_support import env_var, fleet_env, target, write_fleet
from harness import CANARY

from migration import exit_codes
from migration.errors import ConfigError
from migration.fleet import FleetFileError, read_fleet

URL = "postgresql://app_user:{pw}@db.internal:5432/app"


def test_every_problem_is_reported_at_once_and_nothing_is_attempted(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text(f"""
colour = "blue"

[defaults]
drill = false
retries = 3

[[target]]
name = "eu"
url_env = "FLEET_EU_URL"
wave = "canary"
waves = 1

[[target]]
name = "eu"
url_env = "FLEET_EU2_URL"

[[target]]
name = "us"
url_env = "FLEET_MISSING_URL"

[[target]]
name = "same-as-eu"
url = "postgresql://app_user@h2:5433,DB.internal:5432/app"

[[target]]
name = "literal"
url = "postgresql://app_user:{CANARY}@db.internal:5432/other"

[[target]]
name = "bad schema"
url_env = "FLEET_EU_URL"
schema = "x;drop"
drill = "no"
""")
    os.chmod(path, 0o600)
    audit_log = tmp_path / "audit.log"
    result = run_cli("fleet", str(path), "run", "--yes", "--backup-dir", str(tmp_path / "b"), "--audit-log",
                     str(audit_log), cwd=tmp_path,
                     env=fleet_env({}, FLEET_EU_URL=URL.format(pw=CANARY), FLEET_EU2_URL=URL.format(pw=CANARY)))
    assert result.returncode == exit_codes.CONFIG == 78, result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    text = "\n".join(problems)
    for expected in ("unknown top-level key 'colour'", "[defaults]: unknown key 'retries'",
                     "target 'eu': unknown key 'waves'", "target 'eu': the name is used twice (targets 1 and 2)",
                     "the environment variable FLEET_MISSING_URL is not set",
                     "targets 'eu' and 'same-as-eu' are the same database (db.internal:5432/app)",
                     "this URL has a password in it, refused",
                     "'name' must be 1-63 letters", "'drill' must be true or false"):
        assert expected in text, f"{expected!r} missing from:\n{result.output}"
    assert "Fix:" in result.stderr and "nothing was attempted" in result.stderr
    assert CANARY not in result.output
    assert not (tmp_path / "b").exists() and not audit_log.exists()  # nothing attempted, nothing written


def test_json_lists_the_problems(tmp_path):
    path = write_fleet(tmp_path / "fleet.toml", [target("a", "w"), target("a", "w")])
    result = run_cli("fleet", str(path), "check", "--json", cwd=tmp_path, env=fleet_env({}))
    assert result.returncode == 78
    import json

    document = json.loads(result.stdout)
    assert document["outcome"] == "refused" and document["error"]["hint"]
    assert any("used twice" in p for p in document["problems"])
    assert any(f"{env_var('a')} is not set" in p for p in document["problems"])


@pytest.mark.parametrize("text", [
    'password = "{pw}"',
    '[[target]]\nname = "a"\nurl = "host=db user=app password={pw} dbname=app"',
    '[[target]]\nname = "a"\nurl_env = "X"\npassword = "{pw}"',
], ids=["top-level key", "conninfo password", "target key"])
def test_a_password_in_the_file_is_refused_with_a_fix(tmp_path, text):
    path = tmp_path / "fleet.toml"
    path.write_text(text.format(pw=CANARY) + "\n")
    os.chmod(path, 0o600)
    with pytest.raises(FleetFileError) as caught:
        read_fleet(path, environ={"X": URL.format(pw=CANARY)})
    assert any("password" in p and ("url_env" in p) for p in caught.value.problems), caught.value.problems
    assert CANARY not in " ".join(caught.value.problems) + caught.value.error.message


@pytest.mark.parametrize("mode, words", [(0o644, "readable by every user"), (0o620, "changed by other users"),
                                         (0o602, "changed by other users")])
def test_a_file_others_can_read_or_write_is_refused(tmp_path, mode, words):
    path = write_fleet(tmp_path / "fleet.toml", [target("a", "w")], mode=mode)
    result = run_cli("fleet", str(path), "check", cwd=tmp_path, env=fleet_env({"a": URL.format(pw=CANARY)}))
    assert result.returncode == 78, result.output
    assert words in result.stderr and f"chmod 600 {path}" in result.stderr


def test_a_link_and_another_users_file_are_refused(tmp_path):
    real = write_fleet(tmp_path / "real.toml", [target("a", "w")])
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="symbolic link"):
        read_fleet(link, environ={env_var("a"): URL.format(pw=CANARY)})
    if os.geteuid() == 0:  # only root can give the file to another user (the suite runs as root on CI)
        os.chown(real, 65534, 65534)
        with pytest.raises(ConfigError, match="belongs to another user"):
            read_fleet(real, environ={env_var("a"): URL.format(pw=CANARY)})


def test_a_good_file_is_read_with_its_waves_defaults_and_host_lists(tmp_path):
    path = write_fleet(tmp_path / "fleet.toml", [
        target("staging", "staging"),
        {"name": "prod-eu", "url": "postgresql://app_user@h1:5433,h2:5432/app", "wave": "production", "drill": True},
        {"name": "prod-us", "url": "postgresql://app_user@h1:5432/app", "wave": "production", "schema": "tenant"},
        target("canary", "canary"),
    ], defaults={"drill": False, "lock_wait": 2})
    fleet = read_fleet(path, environ={env_var("staging"): URL.format(pw=CANARY),
                                      env_var("canary"): URL.format(pw=CANARY).replace("/app", "/canary")})
    assert [t.name for t in fleet.targets] == ["staging", "prod-eu", "prod-us", "canary"]
    assert fleet.waves == ("staging", "production", "canary")  # in the order each first appears
    assert [t.drill for t in fleet.targets] == [False, True, False, False]
    assert fleet.targets[2].settings.schema == "tenant" and fleet.targets[0].settings.lock_wait_s == 2
    assert CANARY in fleet.secrets() and all(CANARY not in t.masked_url for t in fleet.targets)


def test_only_and_a_bad_url_in_a_variable(tmp_path):
    path = write_fleet(tmp_path / "fleet.toml", [target("a", "w"), target("b", "w"), target("c", "w2")])
    environ = {env_var("a"): URL.format(pw=CANARY), env_var("b"): URL.format(pw=CANARY).replace("/app", "/b"),
               env_var("c"): URL.format(pw=CANARY).replace("/app", "/c")}
    fleet = read_fleet(path, environ=environ)
    assert [t.name for t in fleet.only(["c", "a"]).targets] == ["a", "c"]  # the file's order
    with pytest.raises(ConfigError, match="--only names no target") as caught:
        fleet.only(["a", "nope"])
    assert "a, b, c" in caught.value.error.hint
    environ[env_var("b")] = f"mysql://root:{CANARY}@h/db"
    with pytest.raises(FleetFileError) as bad:
        read_fleet(path, environ=environ)
    assert [p.split(":")[0] for p in bad.value.problems] == ["target 'b'"]
    assert env_var("b") in bad.value.problems[0] and "DATABASE_URL" not in bad.value.problems[0]
    assert CANARY not in bad.value.problems[0]
