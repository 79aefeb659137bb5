"""Settings: .env loading, precedence, DATABASE_URL validation and masking (no database needed)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from migration.errors import ConfigError
from migration.settings import OPTIONAL_VARS, load_settings, mask_url

URL_A = "postgresql://app:Canary-file-pw-aa11@db-a.example.com:5432/shop"
URL_B = "postgresql://app:Canary-env-pw-bb22@db-b.example.com:5432/shop"


# -- .env loading -------------------------------------------------------------------------------
def test_env_file_option_is_loaded(tmp_path):
    path = tmp_path / "prod.env"
    path.write_text(f"DATABASE_URL={URL_A}\nCRON_SECRET=abc123456\n")
    settings = load_settings(path, environ={})
    assert settings.database_url == URL_A
    assert settings.env_file == path.resolve()
    assert settings.optional_present() == {"CRON_SECRET": True, "CLOUDFLARE_ACCESS_KEY_ID": False,
                                           "CLOUDFLARE_SECRET_ACCESS_KEY": False}


def test_dotenv_in_working_directory_is_the_default(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(f'DATABASE_URL="{URL_A}"\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database_url == URL_A
    assert settings.env_file == (tmp_path / ".env").resolve()


def test_no_dotenv_and_no_variable_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={})
    assert info.value.error.message == "DATABASE_URL is not set."
    assert "DATABASE_URL=postgresql://" in info.value.error.hint


def test_real_environment_wins_over_the_file(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(f"DATABASE_URL={URL_A}\nMIGRATE_SCHEMA=from_file\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", URL_B)
    monkeypatch.delenv("MIGRATE_SCHEMA", raising=False)
    settings = load_settings()  # the process environment
    assert settings.database_url == URL_B
    assert settings.schema == "from_file"  # what the environment does not set still comes from the file


def test_explicit_env_file_also_loses_to_the_environment(tmp_path):
    path = tmp_path / "x.env"
    path.write_text(f"DATABASE_URL={URL_A}\n")
    assert load_settings(path, environ={"DATABASE_URL": URL_B}).database_url == URL_B


def test_missing_env_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.env", environ={})
    assert "nope.env" in info.value.error.message and "--env-file" in info.value.error.hint


def test_optional_variables_reported_never_required(tmp_path):
    settings = load_settings(environ={"DATABASE_URL": URL_A, "CLOUDFLARE_ACCESS_KEY_ID": "key-id-1"})
    present = settings.optional_present()
    assert set(present) == set(OPTIONAL_VARS)
    assert present == {"CRON_SECRET": False, "CLOUDFLARE_ACCESS_KEY_ID": True, "CLOUDFLARE_SECRET_ACCESS_KEY": False}
    empty = load_settings(environ={"DATABASE_URL": URL_A, "CRON_SECRET": ""})
    assert empty.optional_present()["CRON_SECRET"] is False


def test_timeouts_and_schema_from_environment_and_arguments():
    env = {"DATABASE_URL": URL_A, "MIGRATE_LOCK_TIMEOUT_MS": "1234", "MIGRATE_STATEMENT_TIMEOUT_MS": "9999",
           "MIGRATE_SCHEMA": "app"}
    settings = load_settings(environ=env)
    assert (settings.lock_timeout_ms, settings.statement_timeout_ms, settings.schema) == (1234, 9999, "app")
    settings = load_settings(environ=env, lock_timeout_ms=50, schema="other")
    assert (settings.lock_timeout_ms, settings.schema) == (50, "other")
    defaults = load_settings(environ={"DATABASE_URL": URL_A})
    assert 0 < defaults.lock_timeout_ms <= 10_000 and 0 < defaults.statement_timeout_ms <= 300_000


@pytest.mark.parametrize("value", ["soon", "-5", "0"])
def test_bad_timeout_values_are_config_errors(value):
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"DATABASE_URL": URL_A, "MIGRATE_LOCK_TIMEOUT_MS": value})
    assert "MIGRATE_LOCK_TIMEOUT_MS" in info.value.error.message


# -- URL validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("query, hint_part", [
    ("schema=app", "--schema"),
    ("pgbouncer=true", "direct (non-pooled)"),
    ("connection_limit=5", "Prisma"),
    ("ssl=true", "sslmode=require"),
    ("frobnicate=1", "Remove 'frobnicate=...'"),
])
def test_unknown_url_parameters_are_config_errors_with_a_hint(query, hint_part):
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"DATABASE_URL": f"{URL_A}?sslmode=prefer&{query}"})
    key = query.split("=")[0]
    assert f"'{key}'" in info.value.error.message
    assert hint_part in info.value.error.hint


def test_known_libpq_parameters_are_accepted():
    url = f"{URL_A}?sslmode=require&application_name=x&connect_timeout=5&options=-c%20search_path%3Dapp"
    assert load_settings(environ={"DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize("url, message_part", [
    ("mysql://root:pw-123456@h/db", "'mysql://'"),
    ("postgresql://u:pw-123456@host:port/db", "invalid host or port"),
    ("postgres//u:Canary-typo-pw-77@host/db", "not a valid PostgreSQL connection string"),
    ("host=h password='Canary-unterminated-88", "not a valid PostgreSQL connection string"),
])
def test_malformed_urls_are_config_errors(url, message_part):
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"DATABASE_URL": url})
    error = info.value.error
    assert message_part in error.message and error.hint
    for secret in ("pw-123456", "Canary-typo-pw-77", "Canary-unterminated-88"):
        assert secret not in repr(error)


# -- masking ------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, masked", [
    ("postgresql://app:Canary-pw-1@db.example.com:5432/shop",
     "postgresql://app:****@db.example.com:5432/shop"),
    ("postgres://app:p%40ss%2Fw%3Ard@db:6543/shop?sslmode=require",
     "postgres://app:****@db:6543/shop?sslmode=require"),
    ("postgresql://app@db/shop?password=Canary-pw-2&sslmode=require",
     "postgresql://app@db/shop?password=****&sslmode=require"),
    ("host=db.example.com port=5432 dbname=shop user=app password=Canary-pw-3",
     "postgresql://app:****@db.example.com:5432/shop"),
    ("host=db dbname=shop user=app password='Canary pw 4'", "postgresql://app:****@db/shop"),
    ("postgresql://db.example.com/shop", "postgresql://db.example.com/shop"),
    ("not a url at all Canary-pw-5", "postgresql://****@****"),
])
def test_masked_url_hides_the_password(url, masked):
    assert mask_url(url) == masked


def test_masked_url_hides_percent_encoded_and_raw_special_passwords():
    password = "p@ss/w:rd?#%Canary"
    encoded = quote(password, safe="")
    for url in (f"postgresql://app:{encoded}@db/shop", f"postgresql://app:{password}@db/shop"):
        text = mask_url(url)
        for form in (password, encoded, "Canary"):
            assert form not in text, (url, text)


def test_settings_masked_url_and_target_hide_the_password():
    settings = load_settings(environ={"DATABASE_URL": "postgresql://app:p%40ss-Canary@db:5433/shop"})
    assert settings.password == "p@ss-Canary"
    assert settings.masked_url == "postgresql://app:****@db:5433/shop"
    assert settings.target == {"user": "app", "host": "db", "port": "5433", "dbname": "shop"}
    assert "Canary" not in repr(settings) + str(settings.target)


# -- property: malformed URLs never crash and never echo the password ------------------------------
MARK = "Qz9"  # every generated password contains this, so it cannot match fixed message text by chance
password_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12)
passwords = st.builds(lambda a, b: a + MARK + b, password_text, password_text)
junk = st.text(max_size=15)
schemes = st.sampled_from(["postgresql://", "postgres://", "mysql://", "postgresql:/", "postgres//", "", "http://",
                           "postgresql://:", "x://"])
hosts = st.sampled_from(["db.example.com", "127.0.0.1:5432", "[::1]:5432", "h:port", "", "db:99999", "[bad"])
queries = st.sampled_from(["", "?sslmode=require", "?schema=x", "?password=", "?a=b&c", "?=", "#frag", "?%zz"])


@st.composite
def urls_with_password(draw):
    password = draw(passwords)
    shown = draw(st.sampled_from(["raw", "encoded"]))
    pw = password if shown == "raw" else quote(password, safe="")
    user = draw(st.sampled_from(["app", "", "a%20b", "u:"]))
    shape = draw(st.integers(0, 4))
    if shape == 0:
        url = f"{draw(schemes)}{user}:{pw}@{draw(hosts)}/{draw(junk)}{draw(queries)}"
    elif shape == 1:
        url = f"postgresql://{user}@{draw(hosts)}/db?password={pw}{draw(queries).replace('?', '&')}"
    elif shape == 2:
        url = f"host={draw(hosts)} user={user} password={pw} {draw(junk)}"
    elif shape == 3:
        url = f"host=h password='{pw}"
    else:
        url = draw(junk) + pw + draw(junk)
    return url, password


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(urls_with_password())
def test_malformed_database_urls_only_raise_config_errors_and_never_echo_the_password(case):
    url, password = case
    forms = {password, quote(password, safe=""), quote(password)}
    try:
        settings = load_settings(environ={"DATABASE_URL": url})
    except ConfigError as exc:
        error = exc.error
        for text in (error.message, error.hint, error.detail or "", "\n".join(error.lines())):
            for form in forms:
                assert form not in text, f"password echoed for {url!r}: {text!r}"
    else:
        shown = settings.masked_url + repr(settings) + str(settings.target)
        for form in forms:
            assert form not in shown, f"password shown for {url!r}: {shown!r}"
    masked = mask_url(url)
    for form in forms:
        assert form not in masked, f"mask_url leaked for {url!r}: {masked!r}"
