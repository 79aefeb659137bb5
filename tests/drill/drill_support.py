"""Shared helpers for the drill and rehearsal tests: a source worth restoring, backups of it, and what a
throwaway server leaves behind (or must not).

Sources are the suite's real PostgreSQL 18 and 15 servers (the ``db`` fixture); drills start their own
throwaway servers, as in production use.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from migration.backup import Backup
from migration.drill.drill import Drill
from migration.events import BackupFinished, DrillFinished
from migration.options import BackupOptions, DrillOptions
from migration.settings import load_settings

ROWS = {"public.customers": 300, "public.orders": 1200, "public.empty_table": 0, '"Sales Data"."Weird ""Name"""': 40}


def seed(db) -> None:
    """Tables with rows (one empty, one with awkward names), a view, a function, an enum, a domain, an index,
    a foreign key and sequences: what a drill must bring back (as the application role)."""
    with db.app() as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('ok', 'meh')")
        conn.execute("CREATE DOMAIN positive AS int CHECK (VALUE > 0)")
        conn.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, mood mood DEFAULT 'ok')")
        conn.execute("INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 300) g")
        conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, "
                     "qty positive, note text)")
        conn.execute("INSERT INTO orders (customer_id, qty, note) SELECT 1 + g % 300, 1 + g % 5, "
                     "E'line\\nbreak \\\\ tab\\t' || g FROM generate_series(1, 1200) g")
        conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
        conn.execute("CREATE TABLE empty_table (x int)")
        conn.execute('CREATE SCHEMA "Sales Data"')
        conn.execute('CREATE TABLE "Sales Data"."Weird ""Name""" (v jsonb)')
        conn.execute('INSERT INTO "Sales Data"."Weird ""Name""" SELECT jsonb_build_object(\'k\', g) '
                     "FROM generate_series(1, 40) g")
        conn.execute("CREATE VIEW big_orders AS SELECT id, qty FROM orders WHERE qty > 3")
        conn.execute("CREATE FUNCTION order_count(c int) RETURNS bigint LANGUAGE sql STABLE "
                     "AS 'SELECT count(*) FROM public.orders WHERE customer_id = c'")


def settings(db, **overrides):
    return load_settings(database_url=overrides.pop("database_url", db.url), environ={}, **overrides)


def backup(db, tmp_path: Path, fmt: str = "plain", **options) -> BackupFinished:
    result = Backup(settings(db), None, BackupOptions(backup_dir=tmp_path / "backups", fmt=fmt, **options)).run()
    assert result.ok, result
    return result


def drill(db, path, events: list | None = None, **options) -> DrillFinished:
    found = options.pop("found", None)
    keep = options.pop("keep", False)
    return Drill(settings(db), (events.append if events is not None else None), path,
                 DrillOptions(**{"jobs": 2, **options}), keep=keep, found=found).run()


def manifest(path) -> dict:
    return json.loads(Path(f"{path}.manifest.json").read_text())


def rewrite(path: Path, data: bytes) -> None:
    """Replace a backup's bytes and record their checksum as if migrate-tui had written them (the "checksum
    recomputed" case: the file and its manifest agree, the rows do not)."""
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    m = manifest(path)
    m.update(sha256=digest, size_bytes=len(data))
    Path(f"{path}.manifest.json").write_text(json.dumps(m))
    Path(f"{path}.sha256").write_text(f"{digest}  {path.name}\n")


def drill_dirs(tmp: str | Path | None = None) -> list[Path]:
    """Throwaway server directories (of any process) in a temp directory."""
    return sorted(Path(tmp or tempfile.gettempdir()).glob("migrate-tui-drill-*"))


def postmasters_under(root: Path) -> list[int]:
    """PIDs of processes whose working directory lies under ``root`` (a postmaster runs in its data directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(root) + "/"):
            found.append(int(proc.name))
    return found


def catalog(db) -> dict:
    """pg_class and pg_attribute of the user's schemas, as rows: equal before and after means nothing changed."""
    with psycopg.connect(db.server.url(db.name), autocommit=True) as conn:
        classes = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind::text, c.relnatts, c.relpages >= 0 FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2").fetchall()
        attributes = conn.execute(
            "SELECT c.relname, a.attname, a.atttypid::regtype::text, a.attnotnull, a.attnum FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
            "AND a.attnum > 0 ORDER BY 1, 2").fetchall()
    return {"pg_class": classes, "pg_attribute": attributes}


@pytest.fixture
def private_tmp():
    """A TMPDIR of our own for a command's throwaway servers, so they can be found (and must be gone) afterwards.

    Not pytest's tmp_path: that is 0700, and as root the server runs as an unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="drill-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
