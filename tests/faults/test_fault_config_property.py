"""Property: malformed .env files (and environments) fed to load_settings.

tests/engine/test_settings.py already generates malformed DATABASE_URL strings in the
environment; this goes through the file layer instead: .env files with every quoting style,
`export`, interpolation, comments, CRLF, a BOM, NUL and invalid UTF-8 bytes, junk lines and
junk MIGRATE_* values, with the password also in the optional secrets. Only ConfigError
ever comes out, and neither an error nor the resulting Settings shows the password.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings as hsettings, strategies as st

from migration.errors import ConfigError
from migration.settings import load_settings, mask_url

PW = "Env-canary-pw-91c4"  # the CLI cases below
MARK = "Kx7"  # in every generated password, so fixed message text cannot contain it by chance
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10)
passwords = st.builds(lambda a, b: a + MARK + b, text, text)
hosts = st.sampled_from(["db", "127.0.0.1:5432", "[::1]:5432", "h:port", "", "db:0", "[x", "a b"])
quotes = st.sampled_from(['{}', '"{}"', "'{}'", '"{}', "'{}", '{} # a comment', ' {} ', '"{}"x', "`{}`"])
prefixes = st.sampled_from(["", "export ", "  ", "DATABASE_URL=", "#"])
junk_values = st.one_of(text, st.sampled_from(["", "0", "-1", "1e3", "５", "99999999999999999999", "x" * 80]))


@st.composite
def urls(draw, password):
    pw = draw(st.sampled_from([password, quote(password, safe="")]))
    user = draw(st.sampled_from(["app", "", "u:", "a%20b"]))
    shape = draw(st.integers(0, 4))
    if shape == 0:
        scheme = draw(st.sampled_from(["postgresql://", "postgres://", "mysql://", "postgresql:/", ""]))
        return f"{scheme}{user}:{pw}@{draw(hosts)}/{draw(text)}{draw(st.sampled_from(['', '?schema=x', '?%zz']))}"
    if shape == 1:
        return f"postgresql://{user}@{draw(hosts)}/db?password={pw}"
    if shape == 2:
        return f"host={draw(hosts)} password={pw} {draw(text)}"
    if shape == 3:
        return "${SECRET_URL}"  # interpolated from another line of the file
    return draw(text) + pw + draw(text)


@st.composite
def env_files(draw):
    password = draw(passwords)
    url = draw(urls(password))
    lines = [f"SECRET_URL=postgresql://app:{password}@db/shop"] if "${" in url else []
    lines.append(draw(prefixes) + "DATABASE_URL=" + draw(quotes).format(url))
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(["MIGRATE_SCHEMA", "MIGRATE_LOCK_TIMEOUT_MS", "MIGRATE_STATEMENT_TIMEOUT_MS",
                                    "CRON_SECRET", "JUNK", "=", "", "DATABASE_URL"]))
        value = password if key == "CRON_SECRET" and draw(st.booleans()) else draw(junk_values)
        lines.append(f"{key}={value}" if key != "=" else draw(text))
    lines = draw(st.permutations(lines))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    data = newline.join(lines).encode("utf-8")
    damage = draw(st.sampled_from(["none", "bom", "nul", "latin1", "truncated-utf8"]))
    if damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "nul":
        data = data.replace(b"=", b"=\x00", 1)
    elif damage == "latin1":
        data += b"\nEXTRA=caf\xe9"
    elif damage == "truncated-utf8":
        data += b"\xe2\x82"
    in_environ = draw(st.booleans())
    return data, password, in_environ


def _forms(password: str) -> set[str]:
    return {password, quote(password, safe=""), quote(password)}


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env_files())
def test_malformed_env_files_only_raise_config_errors_and_never_echo_the_password(case):
    data, password, in_environ = case
    forms = _forms(password)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".env"
        path.write_bytes(data)
        environ = {"MIGRATE_LOCK_TIMEOUT_MS": "junk"} if in_environ else {}
        try:
            settings = load_settings(path, environ=environ)
        except ConfigError as exc:
            event("ConfigError")
            error = exc.error
            shown = "\n".join(error.lines()) + (error.hint or "") + (error.detail or "")
            for form in forms:
                assert form not in shown, f"password echoed for {data!r}: {shown!r}"
            return
    event("loaded")
    shown = settings.masked_url + repr(settings) + str(settings.target) + str(settings.optional_present())
    for form in forms:
        assert form not in shown, f"password shown for {data!r}: {shown!r}"
    assert form_free(mask_url(settings.database_url), forms)


def form_free(text: str, forms: set[str]) -> bool:
    return not any(form in text for form in forms)


@hsettings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), passwords)
def test_arbitrary_bytes_as_env_file(blob, password):
    """Any bytes at all, with a DATABASE_URL carrying the password somewhere inside."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prod.env"
        half = len(blob) // 2
        path.write_bytes(blob[:half] + f"\nDATABASE_URL=postgresql://u:{password}@h/d\n".encode() + blob[half:])
        try:
            settings = load_settings(path, environ={})
        except ConfigError as exc:
            assert form_free("\n".join(exc.error.lines()), _forms(password))
            return
    assert form_free(settings.masked_url + repr(settings) + str(settings.target), _forms(password))


# -- the same through the real command line (check, run): exit 78, or 1 when it gets as far as connecting --
NASTY_ENV_FILES = {
    "invalid-utf8": b"DATABASE_URL=postgresql://app:" + PW.encode() + b"@127.0.0.1:1/shop\nX=caf\xe9\n",
    "unterminated-quote": ('DATABASE_URL="postgresql://app:' + PW + '@127.0.0.1:1/shop\n').encode(),
    "prisma-schema": ("DATABASE_URL=postgresql://app:" + PW + "@127.0.0.1:1/shop?schema=public\n").encode(),
    "not-a-url": ("DATABASE_URL=app:" + PW + "@127.0.0.1/shop\n").encode(),
    "bad-port": ("DATABASE_URL=postgresql://app:" + PW + "@127.0.0.1:99999/shop\n").encode(),
    "junk-timeouts": ("DATABASE_URL=postgresql://app:" + PW + "@127.0.0.1:1/shop\n"
                      "MIGRATE_LOCK_TIMEOUT_MS=soon\n").encode(),
    "nul-bytes": b"DATABASE_URL=postgresql://app:" + PW.encode() + b"@127.0.0.1:1/sh\x00op\n",
    "refused": ("DATABASE_URL=postgresql://app:" + PW + "@127.0.0.1:1/shop\n").encode(),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(NASTY_ENV_FILES))
def test_nasty_env_files_through_the_cli(name, tmp_path):
    from fault_support import cli_env, run_cli

    env_file = tmp_path / "prod.env"
    env_file.write_bytes(NASTY_ENV_FILES[name])
    for args in (("check",), ("run", "--yes")):  # the other commands share the same settings path
        result = run_cli(*args, "--env-file", str(env_file), cwd=tmp_path, env=cli_env(), secrets=(PW,))
        assert result.returncode in (1, 78), (args, result.output)
        assert "Error:" in result.output or "✗" in result.output, result.output
        assert "Fix:" in result.output, result.output
