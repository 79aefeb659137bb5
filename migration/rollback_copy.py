"""The rollback's safety copy: ``pg_dump --table`` of just the table, verified.

The password never reaches argv: pg_dump gets a connection string without it,
the password in its environment (PGPASSWORD) and ``--no-password``. The dump
reads an exported snapshot, so the row count it is checked against is exact.
The file is written under a temporary name (0600) and renamed once verified.

(A minimal, self-contained dump: when migration/pgtools.py lands, the binary
lookup below should defer to it.)
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import MigrateError, OperatorError
from .rollback_events import SafetyCopy
from .settings import Settings, conninfo, redact

APPLICATION_NAME = "migrate-tui safety copy"
DUMP_TRAILER = "-- PostgreSQL database dump complete"


@dataclass(frozen=True)
class PgDump:
    path: str
    major: int
    version: str  # "pg_dump (PostgreSQL) 18.6"

    @property
    def bin_dir(self) -> Path:
        return Path(self.path).resolve().parent


def _version(path: str) -> tuple[int, str] | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out.split(")")[-1] if ")" in out else out)
    return (int(match.group(1)), out) if match else None


def candidates() -> list[str]:
    found: list[str] = []
    if os.environ.get("PG_DUMP"):
        found.append(os.environ["PG_DUMP"])
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(on_path)
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for entry in sorted(root.iterdir(), reverse=True):
            if (entry / "bin" / "pg_dump").exists():
                found.append(str(entry / "bin" / "pg_dump"))
    from .pgserver import embedded_bin_dir

    embedded = embedded_bin_dir()
    if embedded and (embedded / "pg_dump").exists():
        found.append(str(embedded / "pg_dump"))
    return list(dict.fromkeys(found))


def find_pg_dump(server_major: int) -> PgDump:
    """A pg_dump at least as new as the server (PG_DUMP wins when it qualifies)."""
    seen: list[str] = []
    usable: list[PgDump] = []
    for path in candidates():
        info = _version(path)
        if info is None:
            continue
        seen.append(f"{path} ({info[0]})")
        if info[0] >= server_major:
            usable.append(PgDump(path, info[0], info[1]))
    if not usable:
        raise MigrateError(OperatorError(
            f"No pg_dump of version {server_major} or newer was found for the safety copy"
            + (f" (found: {', '.join(seen)})" if seen else "") + ".",
            f"Install the PostgreSQL {server_major} client tools (e.g. apt install postgresql-client-{server_major}) "
            "or point PG_DUMP at a new enough pg_dump; or pass --no-table-backup to roll back without a copy.",
        ))
    explicit = os.environ.get("PG_DUMP")
    for dump in usable:
        if explicit and dump.path == explicit:
            return dump
    return max(usable, key=lambda d: d.major)


def child_env(settings: Settings) -> tuple[str, dict[str, str]]:
    """(connection string without the password, environment carrying it)."""
    from psycopg.conninfo import make_conninfo

    info = conninfo(settings.database_url)
    password = info.pop("password", None)
    info.pop("sslpassword", None)
    info["application_name"] = APPLICATION_NAME
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE")}
    if password:
        env["PGPASSWORD"] = password
    return make_conninfo("", **info), env


def psql_for(pg_dump: PgDump) -> str:
    """``psql`` when the one on PATH can read this pg_dump's output, else the psql next to pg_dump."""
    on_path = shutil.which("psql")
    info = _version(on_path) if on_path else None
    if info is not None and info[0] >= pg_dump.major:
        return "psql"
    sibling = pg_dump.bin_dir / "psql"
    return shlex.quote(str(sibling)) if sibling.exists() else "psql"


def restore_command(path: Path, psql: str = "psql") -> str:
    return f'{psql} "$DATABASE_URL" -v ON_ERROR_STOP=1 -f {shlex.quote(str(path))}'


def copy_rows(text: str, schema: str, table: str) -> int | None:
    """Rows in the plain dump's COPY block for the table (None: no COPY block)."""
    ident = r'"?{}"?\."?{}"?'.format(re.escape(schema), re.escape(table))
    match = re.search(r"^COPY " + ident + r" \(.*\) FROM stdin;\n(.*?)^\\\.$", text, re.M | re.S)
    if match is None:
        return None
    return match.group(1).count("\n")


def dump_table(settings: Settings, pg_dump: PgDump, target: Path, *, schema: str, table: str,
               snapshot: str | None, expected_rows: int, lock_timeout_ms: int,
               cancel: threading.Event, started: float | None = None) -> SafetyCopy:
    """Run pg_dump for one table into ``target`` and verify it; raises MigrateError."""
    started = started or time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(tmp, 0o600)
    dsn, env = child_env(settings)
    argv = [pg_dump.path, "--no-password", "--format=plain", f"--lock-wait-timeout={lock_timeout_ms}",
            f'--table="{schema}"."{table}"', f"--file={tmp}", f"--dbname={dsn}"]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    try:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        while True:
            try:
                _, err = proc.communicate(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if cancel.is_set():
                    proc.terminate()
                    proc.communicate()
                    raise _Cancelled()
        if proc.returncode != 0:
            raise MigrateError(_dump_error(err, settings))
        text = tmp.read_text(encoding="utf-8", errors="replace")
        problem = _verify(text, schema, table, expected_rows)
        if problem:
            raise MigrateError(OperatorError(
                f"The safety copy failed verification: {problem}.",
                "Nothing was dropped. Check free disk space and the pg_dump version, then run again.",
            ))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    data = target.read_bytes()
    return SafetyCopy(
        path=str(target), size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), rows=expected_rows,
        restore_command=restore_command(target, psql_for(pg_dump)), pg_dump=f"{pg_dump.path} ({pg_dump.version})",
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _verify(text: str, schema: str, table: str, expected_rows: int) -> str | None:
    if DUMP_TRAILER not in text:
        return "the dump is incomplete (its trailer is missing)"
    if not re.search(r'^CREATE TABLE "?{}"?\."?{}"? \('.format(re.escape(schema), re.escape(table)), text, re.M):
        return f"the dump has no CREATE TABLE for {schema}.{table}"
    rows = copy_rows(text, schema, table)
    if rows is None:
        return "the dump has no data block for the table"
    if rows != expected_rows:
        return f"it holds {rows} rows, the table had {expected_rows}"
    return None


def _dump_error(stderr: str, settings: Settings) -> OperatorError:
    lines = [line for line in redact(stderr or "", settings.secrets()).splitlines() if line.strip()]
    text = " ".join(lines[-3:]) or "pg_dump failed without a message"
    low = text.lower()
    if "version mismatch" in low or "server version:" in low:
        hint = "Install a pg_dump at least as new as the server, or point PG_DUMP at one."
    elif "no space left" in low:
        hint = "Free disk space where the safety copy is written (--backup-dir), then run again."
    elif "lock" in low and "timeout" in low:
        hint = "Another session holds a lock on the table; wait for it or raise --lock-timeout."
    elif "password" in low or "authentication" in low:
        hint = "Check the user and password in DATABASE_URL."
    else:
        hint = "Nothing was dropped. Fix the problem pg_dump reports, or pass --no-table-backup explicitly."
    return OperatorError(f"The safety copy (pg_dump) failed: {text}", hint)


class _Cancelled(Exception):
    """pg_dump was stopped because the operator cancelled."""
