"""A database_backups table already present with the right names but wrong column types.

`check` and `run --yes` report the structure problem with the guide's fix and change
nothing. The known limit the README states is proven too: BIGINT for an INTEGER column is
accepted as compatible, so the migration is "not needed" on such a table.
"""

from __future__ import annotations

import pytest

from fault_support import RUN, catalog_snapshot, env_for, run_cli

GUIDE_DDL = """CREATE TABLE database_backups (
  id SERIAL PRIMARY KEY, filename TEXT NOT NULL UNIQUE, s3_key TEXT NOT NULL, file_size {file_size} NOT NULL,
  backup_type TEXT NOT NULL DEFAULT 'full', status {status} NOT NULL DEFAULT {status_default},
  created_by TEXT NOT NULL DEFAULT 'system', metadata JSONB, created_at {created_at} DEFAULT NOW(),
  completed_at TIMESTAMP);
CREATE INDEX idx_database_backups_created_at ON database_backups (created_at);
CREATE INDEX idx_database_backups_status ON database_backups (status);
CREATE INDEX idx_database_backups_created_by ON database_backups (created_by);"""


def _create(db, **types):
    ddl = GUIDE_DDL.format(**{"file_size": "INTEGER", "status": "TEXT", "status_default": "'completed'",
                              "created_at": "TIMESTAMP", **types})
    with db.app() as conn:
        conn.execute(ddl)


@pytest.mark.timeout(60)
def test_wrong_column_types_are_refused(db, tmp_path):
    _create(db, status="INTEGER", status_default="0", file_size="TEXT")
    before = catalog_snapshot(db)
    env = env_for(db, tmp_path)
    check = run_cli("check", cwd=tmp_path, env=env)
    assert check.returncode == 1, check.output
    assert "status" in check.output and "file_size" in check.output, check.output

    run = run_cli(*RUN, "--skip-backup", cwd=tmp_path, env=env)
    assert run.returncode == 1, run.output
    assert "Error: Table database_backups already exists with a different structure" in run.output, run.output
    assert "status" in run.output and "file_size" in run.output
    fix = next((line for line in run.output.splitlines() if line.strip().startswith("Fix:")), "")
    assert "DROP TABLE" in fix and "manually add missing columns" in fix, run.output  # the guide's fix
    assert "Nothing was changed" in run.output
    assert catalog_snapshot(db) == before


@pytest.mark.timeout(60)
def test_bigint_and_timestamptz_are_accepted_as_compatible(db, tmp_path):
    _create(db, file_size="BIGINT", created_at="TIMESTAMPTZ")
    before = catalog_snapshot(db)
    run = run_cli(*RUN, "--skip-backup", cwd=tmp_path, env=env_for(db, tmp_path))
    assert run.returncode == 0, run.output
    assert "Migration not needed - table already exists and is valid" in run.output, run.output
    assert catalog_snapshot(db) == before
