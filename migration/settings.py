"""Configuration: .env + environment, read once, checked at load (bad input fails here, named, exit 78).

The password is read here and handed only to libpq (psycopg) or, for child processes, to a
passfile of their own (:mod:`migration.children`). DATABASE_URL itself is validated by
:mod:`migration.url`; everything meant for display goes through :mod:`migration.redact`
(:meth:`Settings.masked_url`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .errors import ConfigError
from .redact import mask_url, password_guesses, redact
from .url import conninfo, plain_url, validate_url

OPTIONAL_VARS = ("CRON_SECRET", "CLOUDFLARE_ACCESS_KEY_ID", "CLOUDFLARE_SECRET_ACCESS_KEY")
DEFAULT_SCHEMA = "public"
DEFAULT_BACKUP_DIR = Path("backups")  # full backups and rollback safety copies
DEFAULT_LOCK_TIMEOUT_MS = 5_000
DEFAULT_STATEMENT_TIMEOUT_MS = 60_000
DEFAULT_LOCK_WAIT_S = 10.0
DEFAULT_CONNECT_TIMEOUT_S = 10

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


def check_identifier(name: str, what: str = "schema") -> str:
    if not _IDENT.match(name):
        raise ConfigError(
            f"'{name}' is not a valid {what} name.",
            f"Use a plain PostgreSQL identifier for the {what}: letters, digits and underscores.",
        )
    return name


MAX_MS = 2_147_483_647  # PostgreSQL's largest lock_timeout / statement_timeout (INT_MAX milliseconds)
MAX_WAIT_S = 86_400.0


def _int_setting(value: str | int | None, default: int | None, name: str) -> int | None:
    """A positive number of milliseconds that PostgreSQL accepts, checked when the settings are read."""
    if value is None or value == "":
        return default
    example = default or (5000 if "lock" in name else 60000)
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number of milliseconds, got '{value}'.",
                          f"Set {name} to e.g. {example}.") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, got {number}.", f"Set {name} to e.g. {example}.")
    if number > MAX_MS:
        raise ConfigError(f"{name} is too large: {number} ms (PostgreSQL accepts at most {MAX_MS}).",
                          f"Set {name} to e.g. {example}.")
    return number


def _seconds_setting(value: float, name: str) -> float:
    import math

    if not math.isfinite(value) or value < 0 or value > MAX_WAIT_S:
        raise ConfigError(f"{name} must be between 0 and {MAX_WAIT_S:.0f} seconds, got {value}.",
                          f"Set {name} to e.g. {DEFAULT_LOCK_WAIT_S:.0f}.")
    return float(value)


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
    from .env_file import read_env_file

    env = dict(os.environ if environ is None else environ)
    loaded: Path | None = None
    if env_file is not None:
        loaded = Path(env_file)
    elif Path(".env").is_file():
        loaded = Path(".env")
    if loaded is not None:
        for key, value in read_env_file(loaded).items():
            if key not in env:
                env[key] = value
    url = validate_url(database_url if database_url is not None else env.get("DATABASE_URL"))
    return Settings(
        database_url=url,
        schema=check_identifier(schema or env.get("MIGRATE_SCHEMA") or DEFAULT_SCHEMA),
        lock_timeout_ms=_int_setting(lock_timeout_ms, None, "--lock-timeout")
        or _int_setting(env.get("MIGRATE_LOCK_TIMEOUT_MS"), DEFAULT_LOCK_TIMEOUT_MS, "MIGRATE_LOCK_TIMEOUT_MS"),
        statement_timeout_ms=_int_setting(statement_timeout_ms, None, "--statement-timeout")
        or _int_setting(
            env.get("MIGRATE_STATEMENT_TIMEOUT_MS"), DEFAULT_STATEMENT_TIMEOUT_MS, "MIGRATE_STATEMENT_TIMEOUT_MS"
        ),
        lock_wait_s=DEFAULT_LOCK_WAIT_S if lock_wait_s is None else _seconds_setting(lock_wait_s, "--lock-wait"),
        env_file=loaded.resolve() if loaded else None,
        optional={name: env.get(name) for name in OPTIONAL_VARS},
        demo=demo,
        env_password=env.get("PGPASSWORD") or None,
    )
