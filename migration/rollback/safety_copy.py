"""The rollback's safety copy: ``pg_dump --table`` of just the table, verified.

Finding pg_dump (the lowest major >= the server's) and handing it the password
(a 0600 passfile, never argv, ``--no-password``) is :mod:`migration.pgtools`, as for
the full backup. The dump reads an exported snapshot, so the row count it is
checked against is exact. The file is written under a locked temporary name (0600) in a
checked directory (:mod:`migration.safe_files`) and published once verified, with a manifest
recording its sha256 and size: a restore runs only a file that still matches it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import pgtools
from ..operation import Cancelled
from ..children import child_env
from ..errors import MigrateError, OperatorError
from ..pgtools import PgTool
from ..events import SafetyCopy
from ..safe_files import PendingFile, open_dir, read_all, remove_stale_partials, reserve
from ..settings import Settings

APPLICATION_NAME = "migrate-tui safety copy"
MANIFEST_SUFFIX = ".manifest.json"  # beside the copy: its sha256 and size, checked before a restore
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


def copy_name(schema: str, table: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{schema}.{table}-before-rollback-{stamp}"


def dump_table(settings: Settings, pg_dump: PgTool, backup_dir: Path, *, schema: str, table: str,
               snapshot: str | None, expected_rows: int, lock_timeout_ms: int, server_major: int,
               cancel: threading.Event, started: float | None = None, trust_dir: bool = False,
               on_start=None) -> SafetyCopy:
    """Run pg_dump for one table into a new file in ``backup_dir``, verify it, record its sha256 in a
    manifest beside it; raises MigrateError. ``on_start(path, removed)`` is called once the file is reserved."""
    started = started or time.perf_counter()
    with open_dir(backup_dir, create=True, own=True, trust=trust_dir) as directory:
        removed = tuple(remove_stale_partials(directory))
        base = copy_name(schema, table)
        pending = reserve(directory, (f"{base}.sql" if n == 1 else f"{base}-{n}.sql" for n in range(1, 100)))
        try:
            if on_start is not None:
                on_start(pending.path, removed)
            _run_pg_dump(settings, pg_dump, pending, schema=schema, table=table, snapshot=snapshot,
                         lock_timeout_ms=lock_timeout_ms, server_major=server_major, cancel=cancel)
            os.fsync(pending.fd)
            reader = pending.reader()
            try:
                data = read_all(reader)
            finally:
                os.close(reader)
            problem = _verify(data.decode("utf-8", errors="replace"), schema, table, expected_rows)
            if problem:
                raise MigrateError(OperatorError(
                    f"The safety copy failed verification: {problem}.",
                    "Nothing was dropped. Check free disk space and the pg_dump version, then run again.",
                ))
            digest = hashlib.sha256(data).hexdigest()
            manifest = {
                "file": pending.final, "kind": "rollback safety copy", "table": f"{schema}.{table}",
                "rows": expected_rows, "size_bytes": len(data), "sha256": digest,
                "pg_dump_version": pg_dump.version, "created_by": "migrate-tui",
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            # The manifest first, the copy's own name last: a copy is never there without its manifest.
            manifest_name = pending.final + MANIFEST_SUFFIX
            manifest_path = directory.write_new(manifest_name, (json.dumps(manifest, indent=2) + "\n").encode())
            try:
                target = pending.publish()
            except BaseException:
                directory.unlink(manifest_name)
                raise
        except BaseException:
            pending.discard()
            raise
    return SafetyCopy(
        path=str(target), size_bytes=len(data), sha256=digest, rows=expected_rows,
        restore_command=restore_command(target, psql_for(pg_dump)), pg_dump=pg_dump.describe(),
        elapsed_ms=(time.perf_counter() - started) * 1000, manifest=str(manifest_path),
    )


def _run_pg_dump(settings: Settings, pg_dump: PgTool, pending: PendingFile, *, schema: str, table: str,
                 snapshot: str | None, lock_timeout_ms: int, server_major: int, cancel: threading.Event) -> None:
    """pg_dump writes the table to its stdout: the reserved file (never a name looked up again)."""
    argv = [str(pg_dump.path), "--no-password", "--format=plain", f"--lock-wait-timeout={lock_timeout_ms}",
            f'--table="{schema}"."{table}"', f"--dbname={pgtools.public_conninfo(settings, APPLICATION_NAME)}"]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    with child_env(settings) as child:
        proc = subprocess.Popen(argv, env=child.env, pass_fds=child.pass_fds, stdin=subprocess.DEVNULL,
                                stdout=pending.fd, stderr=subprocess.PIPE, text=True, errors="replace")
        while True:
            try:
                _, err = proc.communicate(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if cancel.is_set():
                    proc.terminate()
                    proc.communicate()
                    raise Cancelled() from None
    if proc.returncode != 0:
        raise MigrateError(pgtools.explain_tool_failure(
            "pg_dump", err, proc.returncode, settings=settings, tool=pg_dump, server_major=server_major,
            backup_dir=pending.dir.path))


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
