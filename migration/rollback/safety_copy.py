"""The rollback's safety copy: ``pg_dump --table`` of the table, and of everything CASCADE drops with it, verified.

Finding pg_dump (the lowest major >= the server's) and handing it the password
(a 0600 passfile, never argv, ``--no-password``) is :mod:`migration.pgtools`, as for
the full backup. Every pg_dump reads the same exported snapshot, so the row counts it is
checked against are exact. The file is written under a locked temporary name (0600) in a
checked directory (:mod:`migration.safe_files`) and published once verified, with a manifest
recording its sha256 and size: a restore runs only a file that still matches it.

One file, in sections the manifest lists (offset, size, what each recreates), so that the restore can run
each in a transaction of its own and say exactly which dependent could not be recreated:

1. the table: ``pg_dump --table`` (its rows, indexes, constraints, sequence, grants);
2. each dependent the DROP ... CASCADE removes, in dependency order (:mod:`.dependents`): a view, materialized
   view or inherited table through its own ``pg_dump --table`` in the same snapshot; a foreign key, default,
   function, trigger, policy, rule or index of another table as the statement that recreates it, written under
   pg_dump's own header (``search_path`` empty, every name qualified, ``\\restrict`` when pg_dump uses it);
3. comments naming what no copy can hold (a column of another table whose type is the table's row type).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
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
from .dependents import CopyPlan, Piece
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


def _ident(name: str) -> str:
    """A regular expression for an identifier as pg_dump writes it: bare, or double-quoted."""
    return "(?:{}|{})".format(re.escape(name), re.escape('"' + name.replace('"', '""') + '"'))


def _qualified(schema: str, name: str) -> str:
    return _ident(schema) + r"\." + _ident(name)


def copy_rows(text: str, schema: str, table: str) -> int | None:
    """Rows in the plain dump's COPY block for the table (None: no COPY block)."""
    match = re.search(r"^COPY " + _qualified(schema, table) + r" \([^\n]*\) FROM stdin;\n(.*?)^\\\.$", text,
                      re.M | re.S)
    if match is None:
        return None
    return match.group(1).count("\n")


def copy_name(schema: str, table: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{schema}.{table}-before-rollback-{stamp}"


def dump_table(settings: Settings, pg_dump: PgTool, backup_dir: Path, *, schema: str, table: str,
               snapshot: str | None, expected_rows: int, lock_timeout_ms: int, server_major: int,
               cancel: threading.Event, started: float | None = None, trust_dir: bool = False,
               on_start=None, plan: CopyPlan | None = None) -> SafetyCopy:
    """Run pg_dump for the table (and write what recreates each dependent of ``plan``) into a new file in
    ``backup_dir``, verify it, record its sha256 and its sections in a manifest beside it; raises MigrateError.
    ``on_start(path, removed)`` is called once the file is reserved."""
    started = started or time.perf_counter()
    plan = plan or CopyPlan()
    run = dict(settings=settings, pg_dump=pg_dump, snapshot=snapshot, lock_timeout_ms=lock_timeout_ms,
               server_major=server_major, cancel=cancel)
    with open_dir(backup_dir, create=True, own=True, trust=trust_dir) as directory:
        removed = tuple(remove_stale_partials(directory))
        base = copy_name(schema, table)
        pending = reserve(directory, (f"{base}.sql" if n == 1 else f"{base}-{n}.sql" for n in range(1, 100)))
        try:
            if on_start is not None:
                on_start(pending.path, removed)
            _run_pg_dump(pending=pending, schema=schema, table=table, **run)
            sections = [{"offset": 0, "size": _end(pending), "table": f"{schema}.{table}", "source": "pg_dump",
                         "rows": expected_rows}]
            header = _header(_read(pending, 0, sections[0]["size"]))
            for number, piece in enumerate(plan.pieces, 1):
                sections.append(_write_piece(pending, piece, number, len(plan.pieces), header, run))
            if plan.lost:
                sections.append(_write_notes(pending, plan))
            os.fsync(pending.fd)
            data = _read(pending, 0, _end(pending))
            manifest = {
                "file": pending.final, "kind": "rollback safety copy", "table": f"{schema}.{table}",
                "rows": expected_rows, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "pg_dump_version": pg_dump.version, "created_by": "migrate-tui",
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "sections": sections,
                "dependents": [_listed(p) for p in (*plan.pieces, *plan.inside)],
                "not_recreatable": [{"key": d.key, "label": d.label, "why": d.why_lost} for d in plan.lost],
            }
            problem = verify_sections(data, manifest, {p.dependent.key: p.definition for p in plan.pieces
                                                       if p.definition is not None})
            if problem:
                raise MigrateError(OperatorError(
                    f"The safety copy failed verification: {problem}.",
                    "Nothing was dropped. Check free disk space and the pg_dump version, then run again.",
                ))
            digest = manifest["sha256"]
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
        dependents=tuple(p.dependent.label for p in (*plan.pieces, *plan.inside)),
        not_kept=tuple(f"{d.label}: {d.why_lost}" for d in plan.lost),
    )


def _end(pending: PendingFile) -> int:
    return os.fstat(pending.fd).st_size


def _read(pending: PendingFile, offset: int, size: int) -> bytes:
    reader = pending.reader()
    try:
        return read_all(reader)[offset:offset + size]
    finally:
        os.close(reader)


def _append(pending: PendingFile, text: str) -> None:
    data = text.encode("utf-8")
    os.lseek(pending.fd, 0, os.SEEK_END)
    while data:
        data = data[os.write(pending.fd, data):]


def _comment(text: str) -> str:
    """Text for a comment line: nothing in it can end the comment (a name may hold a line break)."""
    return "".join(c if c.isprintable() else "?" for c in text)


_HEADER = re.compile(r"^(SET [a-z_]+ = .*;|SELECT pg_catalog\.set_config\('search_path', '', false\);)$", re.M)


def _header(dump: bytes) -> dict:
    """What pg_dump sets before it recreates anything (timeouts off, search_path empty, ...), and whether it
    guards its output with ``\\restrict``: the dependents' own statements run under the same."""
    text = dump.decode("utf-8", errors="replace")
    body = text.split("\n--\n-- Name: ", 1)[0]
    return {"sets": _HEADER.findall(body), "restrict": bool(re.search(r"^\\restrict \S+$", text, re.M))}


def _marker(number: int, total: int, piece: Piece, how: str) -> str:
    return f"--\n-- migrate-tui: dependent {number} of {total}: {_comment(piece.dependent.label)} ({how})\n--\n"


def _write_piece(pending: PendingFile, piece: Piece, number: int, total: int, header: dict, run: dict) -> dict:
    offset = _end(pending)
    if piece.relation is not None:
        _append(pending, _marker(number, total, piece, "pg_dump --table"))
        _run_pg_dump(pending=pending, schema=piece.relation[0], table=piece.relation[1], **run)
    else:
        key = secrets.token_hex(24)
        lines = [_marker(number, total, piece, "its definition").rstrip("\n")]
        lines += [f"\\restrict {key}"] if header["restrict"] else []
        lines += [*header["sets"], "", piece.definition.rstrip("\n")]
        lines += [f"\\unrestrict {key}"] if header["restrict"] else []
        _append(pending, "\n".join(lines) + "\n\n")
    section = {"offset": offset, "size": _end(pending) - offset, "dependent": piece.dependent.key,
               "label": piece.dependent.label, "source": "pg_dump" if piece.relation else "definition"}
    if piece.relation is not None:
        section.update(relation=list(piece.relation), relkind=piece.relkind, rows=piece.rows)
    return section


def _write_notes(pending: PendingFile, plan: CopyPlan) -> dict:
    """What no copy holds, as comments: the file says it, not only the manifest (never run)."""
    offset = _end(pending)
    lines = ["--", "-- migrate-tui: NOT in this copy (DROP ... CASCADE removed them; they cannot be recreated):"]
    lines += [f"-- - {_comment(d.label)}: {_comment(d.why_lost)}" for d in plan.lost]
    _append(pending, "\n".join(lines) + "\n--\n")
    return {"offset": offset, "size": _end(pending) - offset, "notes": True}


def _listed(piece: Piece) -> dict:
    kind, names, args = piece.address
    return {"key": piece.dependent.key, "label": piece.dependent.label, "keep": piece.dependent.keep,
            "address": {"type": kind, "names": list(names), "args": list(args)}}


def _pattern(schema: str, name: str) -> str:
    """A pg_dump --table pattern that matches exactly this name (quoted: no wildcard, case kept)."""
    return '"{}"."{}"'.format(schema.replace('"', '""'), name.replace('"', '""'))


def _run_pg_dump(settings: Settings, pg_dump: PgTool, pending: PendingFile, *, schema: str, table: str,
                 snapshot: str | None, lock_timeout_ms: int, server_major: int, cancel: threading.Event) -> None:
    """pg_dump appends the relation to its stdout: the reserved file (never a name looked up again)."""
    argv = [str(pg_dump.path), "--no-password", "--format=plain", f"--lock-wait-timeout={lock_timeout_ms}",
            f"--table={_pattern(schema, table)}", f"--dbname={pgtools.public_conninfo(settings, APPLICATION_NAME)}"]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    os.lseek(pending.fd, 0, os.SEEK_END)
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
            backup_dir=pending.dir.path, again="run the rollback again (it takes a fresh safety copy)"))


_CREATES = {"v": "VIEW", "m": "MATERIALIZED VIEW", "r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE"}


def verify_sections(data: bytes, manifest: dict, definitions: dict[str, str] | None = None) -> str | None:
    """What is wrong with the copy (None: nothing): the sections cover the file; the table's holds its CREATE
    TABLE and exactly its rows; each dependent's holds what recreates it (and a table's rows); the notes are
    comments only. ``definitions`` (when the copy is written): the exact statements each must hold."""
    sections = manifest.get("sections")
    if not isinstance(sections, list) or not sections:
        return "its manifest lists no sections"
    position = 0
    for section in sections:
        if not isinstance(section, dict) or section.get("offset") != position or \
                not isinstance(section.get("size"), int) or section["size"] <= 0:
            return "its sections do not cover the file"
        position += section["size"]
        text = data[section["offset"]:position].decode("utf-8", errors="replace")
        problem = _section_problem(text, section, manifest, definitions or {})
        if problem:
            return problem
    if position != len(data):
        return "its sections do not cover the file"
    return None


def _section_problem(text: str, section: dict, manifest: dict, definitions: dict[str, str]) -> str | None:
    if section.get("notes"):
        if any(line and not line.startswith("--") for line in text.splitlines()):
            return "its notes hold more than comments"
        return None
    if "table" in section:
        schema, _, table = str(section["table"]).partition(".")
        return _dump_problem(text, schema, table, "r", section.get("rows"), f"table {section['table']}")
    what = str(section.get("dependent", "?"))
    if not text.startswith("--\n-- migrate-tui: dependent "):
        return f"the section of {what} does not start with its marker"
    if section.get("source") == "pg_dump":
        schema, name = section.get("relation") or ("", "")
        return _dump_problem(text, schema, name, str(section.get("relkind", "")), section.get("rows"), what)
    expected = definitions.get(what)
    if expected is not None and expected.rstrip("\n") not in text:
        return f"the definition of {what} is not in it"
    if not re.search(r"^(CREATE|ALTER) ", text, re.M):
        return f"the definition of {what} is missing"
    return None


def _dump_problem(text: str, schema: str, name: str, relkind: str, rows, what: str) -> str | None:
    if DUMP_TRAILER not in text:
        return f"the dump of {what} is incomplete (its trailer is missing)"
    create = _CREATES.get(relkind, "TABLE")
    tail = r" AS\b" if relkind in ("v", "m") else r" \("
    if not re.search(r"^CREATE " + re.escape(create) + " " + _qualified(schema, name) + tail, text, re.M):
        return f"the dump has no CREATE {create} for {what}"
    if rows is None:
        return None
    found = copy_rows(text, schema, name)
    if found is None:
        return f"the dump has no data block for {what}"
    if found != rows:
        return f"it holds {found} rows of {what}, which had {rows}"
    return None
