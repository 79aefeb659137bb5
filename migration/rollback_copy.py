"""The rollback's safety copy: ``pg_dump --table`` of just the table, verified.

Finding pg_dump (the lowest major >= the server's) and handing it the password
(a 0600 passfile, never argv, ``--no-password``) is :mod:`migration.pgtools`, as for
the full backup. The dump reads an exported snapshot, so the row count it is
checked against is exact. The file is written under a temporary name (0600) and
renamed once verified.
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
from pathlib import Path

from . import pgtools
from .errors import MigrateError, OperatorError
from .pgtools import PgTool
from .rollback_events import SafetyCopy
from .settings import Settings

APPLICATION_NAME = "migrate-tui safety copy"
DUMP_TRAILER = "-- PostgreSQL database dump complete"


def find_pg_dump(server_major: int) -> PgTool:
    """A pg_dump at least as new as the server (PG_DUMP wins), as the full backup picks it."""
    search = pgtools.Locator().find("pg_dump", server_major)
    if search.chosen is None or search.problem is not None:
        problem = search.problem or OperatorError("No usable pg_dump was found.", "Set PG_DUMP=/path/to/pg_dump.")
        raise MigrateError(OperatorError(
            f"No safety copy possible: {problem.message}",
            problem.hint + " Or pass --no-table-backup to roll back without a copy.", problem.sqlstate,
            problem.detail))
    return search.chosen


def psql_for(pg_dump: PgTool) -> str:
    """``psql`` when the one on PATH can read this pg_dump's output, else the psql next to pg_dump."""
    on_path = shutil.which("psql")
    info = pgtools.tool_version(Path(on_path)) if on_path else None
    if info is not None and info[1] >= pg_dump.major:
        return "psql"
    sibling = pg_dump.path.resolve().parent / "psql"
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


def dump_table(settings: Settings, pg_dump: PgTool, target: Path, *, schema: str, table: str,
               snapshot: str | None, expected_rows: int, lock_timeout_ms: int, server_major: int,
               cancel: threading.Event, started: float | None = None) -> SafetyCopy:
    """Run pg_dump for one table into ``target`` and verify it; raises MigrateError."""
    started = started or time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(tmp, 0o600)
    argv = [str(pg_dump.path), "--no-password", "--format=plain", f"--lock-wait-timeout={lock_timeout_ms}",
            f'--table="{schema}"."{table}"', f"--file={tmp}",
            f"--dbname={pgtools.public_conninfo(settings, APPLICATION_NAME)}"]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    try:
        with pgtools.child_env(settings) as env:
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
                        raise _Cancelled() from None
        if proc.returncode != 0:
            raise MigrateError(pgtools.explain_tool_failure(
                "pg_dump", err, proc.returncode, settings=settings, tool=pg_dump, server_major=server_major,
                backup_dir=target.parent))
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
        restore_command=restore_command(target, psql_for(pg_dump)), pg_dump=pg_dump.describe(),
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


class _Cancelled(Exception):
    """pg_dump was stopped because the operator cancelled."""
