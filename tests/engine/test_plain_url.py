"""settings.plain_url reads plain URLs without libpq; libpq must read each one the same way.

A backup hands pg_dump the password-free URL and the password (through a passfile) before
psycopg, and with it libpq, is loaded. Every URL it accepts is checked here against libpq's own
parser (psycopg's conninfo_to_dict); every URL it is not sure about must be left to libpq.
"""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings as hsettings, strategies as st
from psycopg.conninfo import conninfo_to_dict

from migration.pgtools import public_conninfo
from migration.settings import load_settings, plain_url

UNRESERVED = st.text(alphabet="abcxyzABC019._~-", min_size=1, max_size=12)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=16)
HOST = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]{1,6}){0,2}", fullmatch=True)
PARAMS = st.lists(st.tuples(st.sampled_from(["sslmode", "connect_timeout", "application_name", "options",
                                              "target_session_attrs", "keepalives", "client_encoding"]),
                            st.text(alphabet="abz09_.-", max_size=8)), max_size=3, unique_by=lambda p: p[0])


@st.composite
def plain_urls(draw):
    user = quote(draw(ANY_TEXT.filter(bool)), safe="")
    password = draw(st.none() | ANY_TEXT)
    # unreserved and sub-delims stay as they are; everything else percent-encoded, as an operator writes it
    secret = "" if password is None else ":" + quote(password, safe="!$&'()*+,;=:")
    port = draw(st.none() | st.integers(1, 65535))
    dbname = quote(draw(ANY_TEXT.filter(bool)), safe="")
    params = draw(PARAMS)
    query = "&".join(f"{k}={v}" for k, v in params)
    scheme = draw(st.sampled_from(["postgresql", "postgres"]))
    url = f"{scheme}://{user}{secret}@{draw(HOST)}{'' if port is None else f':{port}'}/{dbname}"
    return (url + (f"?{query}" if query else "")), password


@hsettings(max_examples=300, deadline=None)
@given(plain_urls())
def test_libpq_reads_every_plain_url_the_same_way(case):
    url, password = case
    plain = plain_url(url)
    assert plain is not None, url
    libpq = conninfo_to_dict(url)
    assert plain.password == libpq.get("password") == (password or None)  # libpq drops an empty one
    assert conninfo_to_dict(plain.without_password) == {k: v for k, v in libpq.items() if k != "password"}


@hsettings(max_examples=100, deadline=None)
@given(plain_urls())
def test_the_argv_url_is_libpqs_reading_without_the_password(case):
    url, password = case
    settings = load_settings(database_url=url, environ={})
    public = public_conninfo(settings, "migrate-tui-backup-1-ab")
    expected = {k: v for k, v in conninfo_to_dict(url).items() if k != "password"}
    expected.setdefault("connect_timeout", str(settings.connect_timeout_s))
    expected["application_name"] = "migrate-tui-backup-1-ab"
    assert conninfo_to_dict(public) == expected
    assert settings.password == (password or None)


def test_urls_libpq_could_read_differently_are_left_to_libpq():
    for url in [
        "postgresql://u:p@ss@host/db",  # a raw '@' in the password
        "postgresql://u:p/ss@host/db",  # a raw '/'
        "postgresql://u:p%ZZ@host/db",  # not a percent escape
        "postgresql://u:%00@host/db",  # NUL
        "postgresql://u:%FF%FE@host/db",  # not UTF-8 once decoded
        "postgresql://u:pw@[::1]:5432/db",  # IPv6
        "postgresql://u:pw@h1:5432,h2:5433/db",  # several hosts
        "postgresql://u:pw@host/db?password=other",
        "postgresql://u:pw@host/db?host=/var/run/postgresql",
        "postgresql://u:pw@host/db?passfile=/tmp/x",
        "postgresql://u:pw@host/db?service=prod",
        "postgresql://u:pw@host/db?sslmode",  # a parameter without '='
        "postgresql://u:pw@host/db?options=a=b",  # a second '=' (libpq refuses it)
        "postgresql://u:pw@host/db?sslmode=%zz",
        "postgresql://u:pw@host/db?options=%",
        "postgresql://u:pw@host/db?&&",  # empty pairs
        "postgresql://u:pw@host/db?sslmode=require&",
        "postgresql://u%00:pw@host/db",  # NUL in the user
        "postgresql://u:pw@host/%00",  # NUL in the database name
        "postgresql://%FF:pw@host/db",  # a user that is not UTF-8
        "postgresql://u:pw@host/db?application_name=%00",
        "postgresql://u:pw@host/db?schema=public",
        "postgresql://u:pw@host/db#frag",
        "postgresql://u:pw@host",  # no database name
        "postgresql://host/db",  # no user
        "host=localhost user=u password=pw dbname=db",
        "mysql://u:pw@host/db",
    ]:
        assert plain_url(url) is None, url
