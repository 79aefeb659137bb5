"""Failures an operator can meet, each as a message plus a fix hint.

:func:`explain` turns any exception from psycopg/libpq into an
:class:`OperatorError`; nothing else in the product formats raw exceptions,
so no traceback and no secret reaches a screen or the headless output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorError:
    """What went wrong (message), what to do (hint), and the SQLSTATE if any."""

    message: str
    hint: str
    sqlstate: str | None = None
    detail: str | None = None

    def lines(self) -> list[str]:
        out = [f"Error: {self.message}"]
        if self.sqlstate:
            out[0] += f" (SQLSTATE {self.sqlstate})"
        if self.detail:
            out.append(f"  Detail: {self.detail}")
        out.append(f"  Fix: {self.hint}")
        return out


class MigrateError(Exception):
    """An expected failure carrying an :class:`OperatorError`."""

    def __init__(self, error: OperatorError):
        super().__init__(error.message)
        self.error = error


class ConfigError(MigrateError):
    """Bad or missing configuration: nothing was attempted."""

    def __init__(self, message: str, hint: str, detail: str | None = None):
        super().__init__(OperatorError(message, hint, None, detail))


def _grant_hint(user: str | None, schema: str) -> str:
    return f"Ask an administrator to run: GRANT CREATE ON SCHEMA {schema} TO {user or 'your_database_user'};"


CONNECTION_HINT = (
    "Verify DATABASE_URL is correct, check network connectivity, and ensure the database server is running."
)

# SQLSTATE -> (message prefix, hint). Messages keep the server's own words after the prefix.
_BY_SQLSTATE: dict[str, tuple[str, str]] = {
    "42P07": ("An object with this name already exists", "Another object uses one of the names this migration "
              "creates. Rename or drop it (check the index names idx_database_backups_*), then run again."),
    "55P03": ("Could not get a lock within the lock timeout", "Another session holds a conflicting lock. Wait for "
              "it to finish (see pg_stat_activity) or raise --lock-timeout, then run again."),
    "57014": ("The statement was cancelled", "It was cancelled by you or by statement_timeout; raise "
              "--statement-timeout if the server is just slow, then run again."),
    "25006": ("The database is read-only", "You are connected to a read-only server or session (a hot standby, "
              "or default_transaction_read_only = on). Point DATABASE_URL at the primary."),
    "57P01": ("Connection lost (the server shut down or terminated this session)", "Check that the server is "
              "running and nobody terminated the session (pg_terminate_backend), then run again; nothing was "
              "committed."),
    "57P02": ("Connection lost (the server crashed)", "Check the server log, wait for recovery, then run again; "
              "nothing was committed."),
    "57P03": ("The server is not accepting connections yet", "Wait for the server to finish starting up, then run again."),
    "53300": ("Too many connections", "Close idle sessions or raise max_connections, then run again."),
    "3D000": ("The database does not exist", "Check the database name at the end of DATABASE_URL."),
    "28P01": ("Password authentication failed", "Check the user and password in DATABASE_URL."),
    "28000": ("The server rejected this login", "Check pg_hba.conf and the user in DATABASE_URL."),
    "3F000": ("The schema does not exist", "Create the schema first or pass an existing one with --schema."),
    "2BP01": ("Other objects depend on this table", "Review the dependent objects listed in the detail; "
              "drop them first or confirm a CASCADE rollback."),
    "40P01": ("A deadlock was detected", "Another session competed for the same objects; run again."),
    "53100": ("The server is out of disk space", "Free disk space on the database server, then run again."),
}


def explain(exc: BaseException, *, user: str | None = None, schema: str = "public",
            secrets: list[str] | None = None) -> OperatorError:
    """Map an exception to an operator-facing error. Never raises."""
    from .redact import redact

    if isinstance(exc, MigrateError):
        return exc.error
    secrets = secrets or []
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        psycopg = None  # type: ignore[assignment]

    sqlstate = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    primary = (getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0:1] or [""])
    primary = primary if isinstance(primary, str) else (primary[0] if primary else "")
    primary = redact(primary, secrets)
    detail = getattr(diag, "message_detail", None)
    detail = redact(detail, secrets) if detail else None

    if sqlstate == "42501":
        return OperatorError(f"Permission denied: {primary}", _grant_hint(user, schema), sqlstate, detail)
    if sqlstate in _BY_SQLSTATE:
        prefix, hint = _BY_SQLSTATE[sqlstate]
        message = prefix if primary.lower().startswith(prefix.lower()) else f"{prefix}: {primary}"
        return OperatorError(message, hint, sqlstate, detail)
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        text = redact(str(exc).strip(), secrets)
        low = text.lower()
        if "password authentication failed" in low:
            return OperatorError("Connection failed: password authentication failed.",
                                 "Check the user and password in DATABASE_URL.", sqlstate)
        if "no password supplied" in low:
            return OperatorError("Connection failed: the server asks for a password and DATABASE_URL has none.",
                                 "Add the password to DATABASE_URL (postgresql://USER:PASSWORD@HOST/DB).", sqlstate)
        if "does not exist" in low and "database" in low:
            return OperatorError(f"Connection failed: {_last_line(text)}", "Check the database name at the end of "
                                 "DATABASE_URL.", sqlstate)
        if "statement pooling mode" in low:  # PgBouncer pool_mode=statement refuses BEGIN
            return OperatorError("Connection refused by the pooler: it runs in statement pooling mode, which allows "
                                 "no transactions, and every migrate-tui command runs in transactions.",
                                 "Use the direct (non-pooled) URL (usually port 5432, the host without 'pooler'), "
                                 "or a pooler in session or transaction mode.", sqlstate)
        if "timeout expired" in low:
            return OperatorError("Connection failed: the server did not answer within the connect timeout.",
                                 CONNECTION_HINT, sqlstate)
        if "server closed the connection" in low or "terminating connection" in low or "consuming input" in low:
            return OperatorError("The connection to the server was lost.", "Check that the server is running and "
                                 "nobody terminated the session; nothing was committed. Run again.", sqlstate)
        message, libpq_hint = connection_failure(text)
        return OperatorError(message, f"{libpq_hint} {CONNECTION_HINT}" if libpq_hint else CONNECTION_HINT, sqlstate)
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return OperatorError(primary or type(exc).__name__, "See the detail above; nothing was committed.",
                             sqlstate, detail)
    if isinstance(exc, BrokenPipeError):
        return OperatorError("The output was closed before the command finished (broken pipe).",
                             "Do not pipe into a command that stops reading early (such as head); "
                             "write to a file or use tee instead.")
    if isinstance(exc, OSError):
        return OperatorError(f"{type(exc).__name__}: {redact(str(exc), secrets)}",
                             "Check the file system path and permissions.")
    return OperatorError(f"Unexpected error: {type(exc).__name__}: {redact(str(exc), secrets)}",
                         "This is a bug in migrate-tui; nothing was committed. Please report it with the audit log.")


_ATTEMPT = re.compile(r'connection to server (?:at "(?P<host>[^"]*)"(?: \((?P<addr>[^)]*)\))?, port (?P<port>\d+)'
                      r'|on socket "(?P<socket>[^"]*)") failed: (?:FATAL:\s+)?(?P<reason>.+)')
_RESOLVE = re.compile(r"failed to resolve host '(?P<host>[^']*)': (?:\[Errno -?\d+\] )?(?P<reason>.+)")
_WRAPPERS = ("connection failed:", "connection is bad:")


def connection_failure(text: str) -> tuple[str, str]:
    """libpq's (and psycopg's) connection failure as one sentence, and libpq's own hint line (may be empty).

    ``connection failed: connection to server at "h", port 1 failed: Connection refused`` + ``\tIs the server
    running…?`` becomes ``Connection to server failed at h, port 1: connection refused.`` and that question."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    attempts, hints, other = [], [], []
    for line in lines:
        for prefix in _WRAPPERS:
            if line.lower().startswith(prefix):
                line = line[len(prefix):].strip()
        match = _ATTEMPT.match(line)
        if match:
            attempts.append(match)
        elif line.endswith("?") and line[:1].isupper():
            if line not in hints:
                hints.append(line)
        else:
            other.append(line)
    hint = " ".join(hints)
    if attempts:
        first = attempts[0]
        reason = _sentence_part(first["reason"])
        if first["socket"]:
            return f"Connection to server failed on socket {first['socket']}: {reason}.", hint
        addrs = [m["addr"] for m in attempts if m["addr"] and m["host"] == first["host"]]
        shown = first["host"] + (f" ({', '.join(dict.fromkeys(addrs))})" if addrs else "")
        return f"Connection to server failed at {shown}, port {first['port']}: {reason}.", hint
    resolve = _RESOLVE.match(other[0]) if other else None
    if resolve:
        return (f"Connection to server failed: the host name {resolve['host']} could not be resolved "
                f"({_sentence_part(resolve['reason'])}).", hint or "Check the host name in DATABASE_URL.")
    return f"Connection to server failed: {_sentence_part(' '.join(other) or 'unknown error')}.", hint


def _sentence_part(text: str) -> str:
    """A libpq fragment inside a sentence: lower-case start (unless an acronym), no final period."""
    text = " ".join(text.split()).rstrip(".")
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return text


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    # libpq prefixes 'connection to server at "h" (ip), port p failed: FATAL:  msg'
    return lines[0] if len(lines) == 1 else " ".join(lines[:2])
