"""Configuration: .env + environment, DATABASE_URL validation and masking.

The password is read here and handed only to libpq (psycopg) or, for child
processes, to their environment / a 0600 passfile. Everything meant for
display goes through :func:`mask_url` or :meth:`Settings.masked_url`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import quote, unquote, urlsplit

from .errors import ConfigError

OPTIONAL_VARS = ("CRON_SECRET", "CLOUDFLARE_ACCESS_KEY_ID", "CLOUDFLARE_SECRET_ACCESS_KEY")
DEFAULT_SCHEMA = "public"
DEFAULT_BACKUP_DIR = Path("backups")  # full backups and rollback safety copies
DEFAULT_LOCK_TIMEOUT_MS = 5_000
DEFAULT_STATEMENT_TIMEOUT_MS = 60_000
DEFAULT_LOCK_WAIT_S = 10.0
DEFAULT_CONNECT_TIMEOUT_S = 10

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
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class Settings:
    """Everything a run needs. ``database_url`` holds the secret: never print it."""

    database_url: str = field(repr=False)
    schema: str = DEFAULT_SCHEMA
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    lock_wait_s: float = DEFAULT_LOCK_WAIT_S
    connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S
    env_file: Path | None = None
    optional: Mapping[str, str | None] = field(default_factory=dict, repr=False)
    demo: bool = False
    env_password: str | None = field(default=None, repr=False)  # PGPASSWORD, when DATABASE_URL has no password

    @property
    def masked_url(self) -> str:
        return mask_url(self.database_url)

    @property
    def password(self) -> str | None:
        plain = plain_url(self.database_url)
        password = plain.password if plain is not None else conninfo(self.database_url).get("password")
        return password or self.env_password or None

    @property
    def target(self) -> dict[str, str]:
        """User, host, port and database name: safe to display."""
        info = {k: redact(v, password_guesses(self.database_url)) for k, v in conninfo(self.database_url).items()}
        return {
            "user": info.get("user") or os.environ.get("PGUSER") or _os_user(),
            "host": info.get("host") or os.environ.get("PGHOST") or "localhost",
            "port": info.get("port") or os.environ.get("PGPORT") or "5432",
            "dbname": info.get("dbname") or info.get("user") or _os_user(),
        }

    def optional_present(self) -> dict[str, bool]:
        return {name: bool(self.optional.get(name)) for name in OPTIONAL_VARS}

    def secrets(self) -> list[str]:
        """Values that must never appear in any output (used by redaction)."""
        values = [self.password or "", self.env_password or ""] + [v or "" for v in self.optional.values()]
        return [v for v in values if len(v) >= 3]


def _os_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry
        return "postgres"


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


def password_guesses(url: str) -> list[str]:
    """Everything in a (possibly malformed) URL/DSN that may be the password, for redaction."""
    guesses: set[str] = set()
    try:
        guesses.add(urlsplit(url).password or "")
    except ValueError:
        pass
    # USER:PASSWORD@ after the scheme (or at the start, for a mistyped scheme), up to the first
    # and up to the last '@' (a raw '@', '/', '?' or '#' in the password)
    rest = url.split("://", 1)[1] if "://" in url else re.sub(r"^[A-Za-z]+:?/+", "", url)
    for pattern in (r"^[^:@/?#\s]*:([^@]*)@", r"^[^:@/?#\s]*:(.*)@"):
        match = re.match(pattern, rest, re.ASCII)  # libpq's isspace(): ASCII whitespace only
        if match:
            guesses.add(match.group(1))
    # password=... in key=value form (quoted or not) and in a URL's query string
    for pattern in (r"password\s*=\s*'((?:[^'\\]|\\.)*)'?", r"password\s*=\s*(\S*)", r"password=([^&#\s]*)"):
        for match in re.finditer(pattern, url, re.ASCII):
            guesses.add(match.group(1))
            guesses.add(re.sub(r"\\(.)", r"\1", match.group(1)))
    for value in list(guesses):
        try:
            guesses.add(unquote(value, errors="strict"))
        except UnicodeDecodeError:
            pass
    return [g for g in guesses if len(g) >= 3]


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
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
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
        authority = re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]
        if authority.count("@") > 1:
            raise ConfigError(
                "DATABASE_URL has more than one '@' before the host.",
                "An '@' in the user name or password must be percent-encoded as %40 "
                "(e.g. postgresql://USER:p%40ssword@HOST:5432/DBNAME).",
            )
        parts = urlsplit(url)
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
            if not _PARAM_TEXT.match(key):
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


MASKED_ALL = "postgresql://****@****"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ****; never raises, never leaks.

    When the URL is ambiguous (e.g. a raw '/', '?' or '#' in the password), everything but the
    scheme is masked rather than risk showing part of the password as a host or path.
    """
    try:
        return redact(_mask_url(url), password_guesses(url))
    except Exception:
        return MASKED_ALL


def _mask_url(url: str) -> str:
    if "://" not in url:
        info = conninfo(url)
        user = info.get("user", "")
        host = info.get("host", "")
        port = info.get("port", "")
        db = info.get("dbname", "")
        cred = f"{quote(user)}:****@" if user else ("****@" if "password" in info else "")
        return f"postgresql://{cred}{host}{':' + port if port else ''}/{db}"
    parts = urlsplit(url)
    scheme, rest = url.split("://", 1)
    if not _SCHEME_TEXT.match(scheme) or parts.fragment:
        return MASKED_ALL
    netloc = parts.netloc
    if "@" in rest and "@" not in netloc:
        return MASKED_ALL  # an '@' outside the authority: a raw '/' or '?' in the password
    userinfo = re.match(r"([^:@/?#]*):(.*)@", rest)  # up to the last '@'
    if userinfo and unquote(userinfo.group(2)) != unquote(parts.password or ""):
        return MASKED_ALL  # '@' in the query too: the parts cannot be told apart safely
    if "@" in netloc:
        cred, hostport = netloc.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        if ":" in cred:
            netloc = f"{user}:****@{hostport}" if user else f"****@{hostport}"
    query = "&".join(
        ("{}=****".format(p.split("=", 1)[0]) if p.split("=", 1)[0] in ("password", "sslpassword") else p)
        for p in parts.query.split("&")
        if p
    )
    return f"{parts.scheme}://{netloc}{parts.path}{'?' + query if query else ''}"


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Replace every secret (and its URL-encoded form) in text by ****."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "****")
    return text


def check_identifier(name: str, what: str = "schema") -> str:
    if not _IDENT.match(name):
        raise ConfigError(
            f"'{name}' is not a valid {what} name.",
            f"Use a plain PostgreSQL identifier for the {what}: letters, digits and underscores.",
        )
    return name


def _int_setting(value: str | int | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, got '{value}'.", f"Set {name} to e.g. {default}.") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, got {number}.", f"Set {name} to e.g. {default}.")
    return number


def load_settings(
    env_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    schema: str | None = None,
    lock_timeout_ms: int | None = None,
    statement_timeout_ms: int | None = None,
    lock_wait_s: float | None = None,
    database_url: str | None = None,
    demo: bool = False,
) -> Settings:
    """Read .env (explicit path, or ./.env when present) under the real environment.

    Real environment variables win over the file, like python-dotenv's default.
    """
    from dotenv import dotenv_values

    env = dict(os.environ if environ is None else environ)
    loaded: Path | None = None
    if env_file is not None:
        path = Path(env_file)
        if not path.is_file():
            raise ConfigError(
                f"The env file {path} does not exist.",
                "Check the --env-file path, or leave it out to use ./.env.",
            )
        loaded = path
    elif Path(".env").is_file():
        loaded = Path(".env")
    if loaded is not None:
        try:
            file_values = dotenv_values(loaded)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"Could not read {loaded}: {type(exc).__name__}.",
                "Make sure the file is readable UTF-8 text with KEY=value lines.",
            ) from None
        for key, value in file_values.items():
            if value is not None and key not in env:
                env[key] = value
    url = validate_url(database_url if database_url is not None else env.get("DATABASE_URL"))
    return Settings(
        database_url=url,
        schema=check_identifier(schema or env.get("MIGRATE_SCHEMA") or DEFAULT_SCHEMA),
        lock_timeout_ms=lock_timeout_ms
        or _int_setting(env.get("MIGRATE_LOCK_TIMEOUT_MS"), DEFAULT_LOCK_TIMEOUT_MS, "MIGRATE_LOCK_TIMEOUT_MS"),
        statement_timeout_ms=statement_timeout_ms
        or _int_setting(
            env.get("MIGRATE_STATEMENT_TIMEOUT_MS"), DEFAULT_STATEMENT_TIMEOUT_MS, "MIGRATE_STATEMENT_TIMEOUT_MS"
        ),
        lock_wait_s=DEFAULT_LOCK_WAIT_S if lock_wait_s is None else lock_wait_s,
        env_file=loaded.resolve() if loaded else None,
        optional={name: env.get(name) for name in OPTIONAL_VARS},
        demo=demo,
        env_password=env.get("PGPASSWORD") or None,
    )
