"""The verified backup on real PostgreSQL: round trip, files, manifest, progress, verification."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from migration.backup import Backup
from migration.backup.verify import PLAIN_TRAILER, verify_plain
from migration.events import BackupFinished, BackupProgress, BackupStarted, BackupVerifying, Outcome
from migration.options import BackupOptions
from migration.pgtools import Locator
from migration.settings import load_settings

pytestmark = pytest.mark.timeout(180)

SEEDED_TABLES = {'public.customers', 'public.orders', 'public.empty_table', 'Sales Data.Weird "Name"'}


def seed(db) -> None:
    """A few tables with rows, an empty one, and awkward names (as the application role)."""
    with db.app() as conn:
        conn.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text, note text)")
        conn.execute("INSERT INTO customers (name, note) SELECT 'c' || g, repeat('x', 50) "
                     "FROM generate_series(1, 3000) g")
        conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, "
                     "total numeric(10, 2), created_at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO orders (customer_id, total) SELECT 1 + g % 3000, g * 1.5 "
                     "FROM generate_series(1, 20000) g")
        conn.execute('CREATE SCHEMA "Sales Data"')
        conn.execute('CREATE TABLE "Sales Data"."Weird ""Name""" (v jsonb)')
        conn.execute('INSERT INTO "Sales Data"."Weird ""Name""" SELECT jsonb_build_object(\'k\', g) '
                     "FROM generate_series(1, 50) g")
        conn.execute("CREATE TABLE empty_table (x int)")
        conn.execute("ANALYZE")


def row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1").fetchall()]
        return {name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}


def settings(db, **environ):
    return load_settings(database_url=db.url, environ=environ)


def run_backup(db, tmp_path, fmt="plain", **options) -> tuple[BackupFinished, list, Path]:
    events: list = []
    backup_dir = tmp_path / "backups"
    result = Backup(settings(db), events.append, BackupOptions(backup_dir=backup_dir, fmt=fmt), **options).run()
    return result, events, backup_dir


def dir_entries(path: Path) -> list[str]:
    return sorted(os.listdir(path)) if path.exists() else []


def restore(db, path: Path, fmt: str, major: int) -> str:
    """Restore into a scratch database as the admin; return its admin URL."""
    from harness import with_dbname

    scratch = db.server.create_database()
    url = with_dbname(db.server.admin_url, scratch.name)
    tool = "psql" if fmt == "plain" else "pg_restore"
    binary = Locator({"PATH": ""}).find(tool, major).chosen
    assert binary is not None, f"no {tool} for PostgreSQL {major}"
    if fmt == "plain":
        argv = [str(binary.path), "-X", "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={url}", "-f", str(path)]
    else:
        argv = [str(binary.path), "--exit-on-error", f"--dbname={url}", str(path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return url


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_backup_round_trips_and_is_verified(db, tmp_path, canary, fmt):
    seed(db)
    result, events, backup_dir = run_backup(db, tmp_path, fmt)
    assert result.ok, result
    path = Path(result.path)
    ext = ".sql" if fmt == "plain" else ".dump"
    assert re.fullmatch(rf"backup_before_migration_\d{{8}}_\d{{6}}{re.escape(ext)}", path.name)
    assert path.parent == backup_dir
    sha_file, manifest_file = Path(f"{path}.sha256"), Path(result.manifest)
    assert dir_entries(backup_dir) == sorted([path.name, sha_file.name, manifest_file.name])  # no temp file left
    for file in (path, sha_file, manifest_file):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file

    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == result.sha256 and len(data) == result.size
    assert sha_file.read_text() == f"{result.sha256}  {path.name}\n"
    manifest = json.loads(manifest_file.read_text())
    major = db.scalar("SELECT current_setting('server_version_num')::int / 10000")
    assert manifest["sha256"] == result.sha256 and manifest["size_bytes"] == result.size
    assert manifest["database"] == db.name and manifest["format"] == fmt
    assert manifest["server_version"].startswith(f"PostgreSQL {major}.")
    assert int(manifest["pg_dump_version"].split(".")[0]) >= major
    assert manifest["table_count"] == manifest["tables_dumped"] == len(SEEDED_TABLES)
    assert manifest["started_at"] <= manifest["finished_at"]
    for text in (data, sha_file.read_bytes(), manifest_file.read_bytes()):
        assert canary.encode() not in text

    before = row_counts(db.server.url(db.name))
    assert before['"Sales Data"."Weird ""Name"""'] == 50 and before["public.orders"] == 20000
    scratch_url = restore(db, path, fmt, major)
    try:
        assert row_counts(scratch_url) == before
    finally:
        db.server.drop_database(scratch_url.rsplit("/", 1)[1])

    kinds = [type(e) for e in events]
    assert kinds[0] is BackupStarted and kinds[-1] is BackupFinished and BackupVerifying in kinds
    started = events[0]
    assert started.tables_total == len(SEEDED_TABLES) and started.path == result.path
    progress = [e for e in events if isinstance(e, BackupProgress)]
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert progress[-1].tables_done == progress[-1].tables_total == len(SEEDED_TABLES)
    assert progress[-1].bytes_written == result.size
    assert {p.current_table for p in progress if p.current_table} <= SEEDED_TABLES


def test_plain_verification_wants_the_trailer_not_necessarily_last(db, tmp_path):
    result, _, _ = run_backup(db, tmp_path)
    path = Path(result.path)
    data = path.read_bytes()
    with open(path, "rb") as handle:
        assert verify_plain(handle.fileno()) is None
    after = data[data.index(PLAIN_TRAILER) + len(PLAIN_TRAILER):]
    if b"\\restrict " in data[:4096]:  # pg_dump >= 18.0 / 17.6 / 15.14 ends with "\unrestrict <key>"
        assert after.lstrip(b"-\n").startswith(b"\\unrestrict ")
    truncated = tmp_path / "truncated.sql"
    truncated.write_bytes(data[: data.index(PLAIN_TRAILER) - 10])
    with open(truncated, "rb") as handle:
        assert "end-of-dump marker" in verify_plain(handle.fileno())


def truncating_pg_dump(tmp_path: Path, real: Path) -> Path:
    """A pg_dump that succeeds but leaves half a file: what a broken pipe or a bad disk produces."""
    script = tmp_path / "pg_dump"
    script.write_text(f"""#!/bin/sh
"{real}" "$@" || exit $?
file=$(readlink /proc/$$/fd/1)  # pg_dump writes to its stdout: the backup's file
case "$file" in /*) [ -f "$file" ] || file= ;; *) file= ;; esac
for arg in "$@"; do
  case "$arg" in --file=*) file="${{arg#--file=}}";; esac
done
[ -n "$file" ] && truncate -s "$(( $(stat -c %s "$file") / 2 ))" "$file"
exit 0
""")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_truncated_dump_fails_verification_and_is_deleted(db, tmp_path, fmt):
    seed(db)
    major = db.scalar("SELECT current_setting('server_version_num')::int / 10000")
    real = Locator({"PATH": ""}).find("pg_dump", major).chosen
    wrapper = truncating_pg_dump(tmp_path, real.path)
    events: list = []
    backup_dir = tmp_path / "backups"
    # pg_restore for the custom check: the real one next to the real pg_dump.
    locator = Locator({"PG_DUMP": str(wrapper), "PG_RESTORE": str(real.path.parent / "pg_restore"), "PATH": ""})
    result = Backup(settings(db), events.append, BackupOptions(backup_dir=backup_dir, fmt=fmt), locator=locator).run()
    assert result.outcome is Outcome.FAILED, result
    assert "failed verification" in result.error.message and "It was deleted" in result.error.message
    assert dir_entries(backup_dir) == []
    assert isinstance(events[-1], BackupFinished) and any(isinstance(e, BackupVerifying) for e in events)


@pytest.mark.parametrize("fmt", ["plain", "directory"])
def test_backups_in_the_same_second_get_distinct_names(db, tmp_path, fmt):
    """Three at once: each takes its own name (the next free one), none fails on another's new temporary
    file or directory, none deletes another's as a stale leftover."""
    backup_dir = tmp_path / "b"
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        Backup(settings(db), None, BackupOptions(backup_dir=backup_dir, fmt=fmt)).run())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 3 and all(r.ok for r in results) and len({r.path for r in results}) == 3, \
        [(r.outcome, r.message, r.error) for r in results]
