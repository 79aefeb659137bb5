"""DATABASE_URL: validated before anything connects, read with libpq's own rules (or, for plain URLs,
without loading libpq at all). No message built here ever contains the URL or a part of it that may
hold the password: a URL that does not parse is described by the kind of problem and its fix."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import ConfigError
from .redact import password_guesses, redact

# Every URI query parameter libpq understands (PostgreSQL 18 "Parameter Key Words").
LIBPQ_PARAMS = frozenset(
    """host hostaddr port dbname user password passfile require_auth channel_binding
    connect_timeout client_encoding options application_name fallback_application_name
    keepalives keepalives_idle keepalives_interval keepalives_count tcp_user_timeout
    replication gssencmode sslmode requiressl sslnegotiation sslcompression sslcert sslkey
    sslkeylogfile sslpassword sslcertmode sslrootcert sslcrl sslcrldir sslsni requirepeer
    ssl_min_protocol_version ssl_max_protocol_version krbsrvname gsslib gssdelegation
    service target_session_attrs load_balance_hosts min_protocol_version max_protocol_version
    oauth_issuer oauth_client_id oauth_client_secret oauth_scope""".split()
)
# Parameters that ORMs and poolers add to URLs but libpq rejects, with what to do instead.
FOREIGN_PARAM_HINTS = {
    "schema": "Remove '?schema=...' from DATABASE_URL and pass the schema with --schema instead.",
    "pgbouncer": "Remove '?pgbouncer=true' and use a direct (non-pooled) connection URL for migrations.",
    "connection_limit": "Remove 'connection_limit' (a Prisma setting); libpq does not know it.",
    "pool_timeout": "Remove 'pool_timeout' (a Prisma setting); libpq does not know it.",
    "ssl": "Replace 'ssl=true' with 'sslmode=require'.",
}

_SCHEMES = ("postgres", "postgresql")


# --- plain URLs, read without libpq -------------------------------------------------------------
# A backup starts pg_dump before the database driver (psycopg, and with it libpq) is loaded, which
# takes a tenth of a second. That needs the password and a password-free URL for pg_dump's argv. Only
# URLs so plain that libpq's URI parser and this one cannot read them differently are read here
# (one user, one host name, a port, a database name, common parameters, percent-encoding); any
# other DATABASE_URL is read by libpq itself. tests/engine/test_plain_url.py checks the agreement.
_UNRESERVED = "A-Za-z0-9._~"  # RFC 3986 unreserved characters, with "-" added last in each class
_PCT = "%[0-9A-Fa-f]{2}"
_PLAIN_TEXT = rf"(?:[{_UNRESERVED}-]|{_PCT})"
_PLAIN_PAIR = rf"[a-z_]+={_PLAIN_TEXT}*"
_PLAIN_URL = re.compile(
    rf"(?P<head>postgres(?:ql)?://(?P<user>{_PLAIN_TEXT}+))"
    rf"(?::(?P<password>(?:[{_UNRESERVED}!$&'()*+,;=:-]|{_PCT})*))?"
    rf"(?P<tail>@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::[0-9]{{1,5}})?/(?P<dbname>{_PLAIN_TEXT}+))"
    rf"(?:\?(?P<query>{_PLAIN_PAIR}(?:&{_PLAIN_PAIR})*))?"
)
# Parameters every supported libpq knows and that do not change who connects where, or how.
_PLAIN_PARAMS = frozenset(
    """sslmode sslrootcert sslcert sslkey sslcrl connect_timeout application_name target_session_attrs
    options keepalives keepalives_idle keepalives_interval keepalives_count tcp_user_timeout
    client_encoding gssencmode channel_binding krbsrvname""".split()
)


@dataclass(frozen=True)
class PlainUrl:
    without_password: str  # the same URL, its password removed
    password: str | None
    params: tuple[tuple[str, str], ...]  # the query parameters, still percent-encoded


def plain_url(url: str) -> PlainUrl | None:
    """A plain DATABASE_URL split into its password and the rest, without libpq; else None."""
    match = _PLAIN_URL.fullmatch(url)
    if match is None:
        return None
    params = [tuple(pair.split("=", 1)) for pair in match["query"].split("&")] if match["query"] else []
    if any(key not in _PLAIN_PARAMS for key, _ in params):
        return None
    texts = [match["user"], match["dbname"], *(value for _, value in params)]
    if match["password"] is not None:
        texts.append(match["password"])
    decoded = [_decoded(text) for text in texts]
    if any(text is None for text in decoded):
        return None
    password = decoded[-1] if match["password"] is not None else None
    password = password or None  # libpq, too, ignores an empty password
    query = "&".join(f"{k}={v}" for k, v in params)
    return PlainUrl(match["head"] + match["tail"] + (f"?{query}" if query else ""), password, tuple(params))


def _decoded(text: str) -> str | None:
    """Percent-decoded as libpq will, or None where libpq (or psycopg) would refuse it."""
    try:
        value = unquote(text, errors="strict")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in value else value


def conninfo(url: str) -> dict[str, str]:
    """Parse a URL/DSN with libpq's own rules. Raises ConfigError with no secret in it."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except Exception as exc:  # psycopg.ProgrammingError; its text may quote the whole URL
        text = str(exc).strip()
        hint = ("Use the form postgresql://USER:PASSWORD@HOST:5432/DBNAME "
                "(percent-encode special characters in the password).")
        if 'missing "="' in text and "://" not in url and ("@" in url or ":/" in url):
            hint = "It looks like a URL but does not start with postgresql:// (check the ':' and both '/'). " + hint
        raise ConfigError(
            "DATABASE_URL is not a valid PostgreSQL connection string.",
            hint,
            detail=redact(_conninfo_detail(text), password_guesses(url)) or None,
        ) from None


def _conninfo_detail(text: str) -> str:
    """libpq quotes the input in its messages ('missing "=" after "<the whole URL>"'): keep only
    the part before the quote, or an option name, never the quoted input (it may hold the password)."""
    if re.match(r'^invalid (connection option|URI query parameter:?) "[a-z_]{1,40}"$', text):
        return text
    if text.startswith('missing "=" after'):
        return 'missing "=" after a keyword (key=value form)'
    return re.split(r'[:"]', text, maxsplit=1)[0].strip()


_SCHEME_TEXT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,30}$")
_PARAM_TEXT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,40}$")


def validate_url(url: str | None) -> str:
    """Check DATABASE_URL before anything connects; return it unchanged.

    Raises ConfigError only, and no part of it can hold the password.
    """
    if url is None or not url.strip():
        raise ConfigError(
            "DATABASE_URL is not set.",
            "Add DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME to .env "
            "(or export it), or try the demo with: migrate-tui --demo",
        )
    url = url.strip()
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in url):  # C0, DEL, C1 controls and invisible formats
        raise ConfigError(
            "DATABASE_URL contains a control character (a line break, tab or other invisible character).",
            "Remove it: check the DATABASE_URL line in .env (or the environment) for a stray line break or quote; "
            "percent-encode such characters if they really belong to the password.")
    try:
        return _validate_url(url)
    except ConfigError as exc:
        secrets = password_guesses(url)
        error = exc.error
        raise ConfigError(redact(error.message, secrets), redact(error.hint, secrets),
                          redact(error.detail, secrets) if error.detail else None) from None
    except Exception as exc:  # noqa: BLE001 - whatever the input, only a ConfigError leaves
        raise ConfigError("DATABASE_URL is not a valid PostgreSQL connection string.",
                          "Use the form postgresql://USER:PASSWORD@HOST:5432/DBNAME "
                          f"({type(exc).__name__}).") from None


def _validate_url(url: str) -> str:
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in _SCHEMES:
            raise ConfigError(
                f"DATABASE_URL uses the scheme '{scheme}://', which is not PostgreSQL."
                if _SCHEME_TEXT.match(scheme) else "DATABASE_URL does not start with postgresql://.",
                "Use a URL starting with postgresql:// or postgres://.",
            )
        rest = url.split("://", 1)[1]
        if "#" in rest:  # libpq has no fragment: a raw '#' belongs to a password and would split it
            raise ConfigError(
                "DATABASE_URL contains a raw '#'.",
                "A '#' in the user name, password or a parameter must be percent-encoded as %23.",
            )
        authority = re.split(r"[/?]", rest, maxsplit=1)[0]
        # libpq ends the user info at the first '@' (or '/'): any later '@' before the query means a raw '@'
        # in the password, whose rest libpq would read as a host or a database name (and print).
        if rest.split("?", 1)[0].count("@") > 1 or ("@" in rest.split("?", 1)[0] and "@" not in authority):
            raise ConfigError(
                "DATABASE_URL has more than one '@' before the host.",
                "An '@' in the user name or password must be percent-encoded as %40 "
                "(e.g. postgresql://USER:p%40ssword@HOST:5432/DBNAME).",
            )
        parts = urlsplit(url)
        secret_in_query = "password=" in parts.query  # then a raw '&' may split it: never name a key
        if not all(_host_port(item) for item in authority.rsplit("@", 1)[-1].split(",")):
            raise ConfigError(
                "DATABASE_URL has an invalid host or port.",
                "Check the part after '@': HOST:PORT (or HOST1:PORT1,HOST2:PORT2), where PORT is a number such as "
                "5432 (percent-encode special characters in the password: @ is %40, / is %2F, : is %3A).",
            )
        for pair in filter(None, parts.query.split("&")):
            key = unquote(pair.split("=", 1)[0])
            if key in LIBPQ_PARAMS:
                continue
            if not _PARAM_TEXT.match(key) or (secret_in_query and key not in FOREIGN_PARAM_HINTS):
                raise ConfigError(
                    "DATABASE_URL has a query string (after '?') that PostgreSQL (libpq) cannot read.",
                    "Check the parameters after '?', and percent-encode special characters in the password "
                    "(? is %3F, # is %23, & is %26, @ is %40).",
                )
            raise ConfigError(
                f"DATABASE_URL has the parameter '{key}', which PostgreSQL (libpq) does not accept.",
                FOREIGN_PARAM_HINTS.get(key, f"Remove '{key}=...' from the query string of DATABASE_URL."),
            )
    if plain_url(url) is None:  # a plain URL needs no second reading (and no libpq loaded yet)
        conninfo(url)
    return url


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.%]+\]|[^\[\]:]*)(:[0-9]{0,5})?$")


def _host_port(item: str) -> bool:
    """One HOST[:PORT] of a URL's host list (an empty host means libpq's default, a Unix socket)."""
    match = _HOST.match(item)
    if match is None:
        return False
    port = (match.group(2) or ":")[1:]
    return not port or 0 < int(port) < 65536
