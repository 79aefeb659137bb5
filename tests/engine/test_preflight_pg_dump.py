"""Backup readiness: which pg_dump is chosen, and the failures when none fits the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration.options import BackupOptions
from migration.pgserver import embedded_bin_dir, system_bin_dir
from migration.pgtools import Locator
from migration.preflight import Status, check_pg_dump, run_checklist
from migration.settings import load_settings

pytestmark = pytest.mark.timeout(120)

PG15_DUMP = Path("/usr/lib/postgresql/15/bin/pg_dump")


@pytest.fixture
def pg15_dump() -> Path:
    if system_bin_dir(15) is None:
        pytest.skip("the system PostgreSQL 15 client is not installed")
    return PG15_DUMP


def test_pg_dump_older_than_the_server_fails(db18, pg15_dump, tmp_path):
    locator = Locator({"PG_DUMP": str(pg15_dump), "PATH": ""})
    checklist = run_checklist(load_settings(database_url=db18.url, environ={}), options=BackupOptions(backup_dir=tmp_path),
                              locator=locator)
    row = checklist.by_key("pg_dump")
    assert row.status is Status.FAILURE and not checklist.passed
    assert row.detail.startswith("pg_dump 15.") and "older than the server (PostgreSQL 18)" in row.detail
    assert "PG_DUMP=/usr/lib/postgresql/18/bin/pg_dump" in row.hint


def test_the_same_pg_dump_is_fine_for_an_older_server(server15, pg15_dump, tmp_path):
    db = server15.create_database()
    try:
        locator = Locator({"PG_DUMP": str(pg15_dump), "PATH": ""})
        row = run_checklist(load_settings(database_url=db.url, environ={}), options=BackupOptions(backup_dir=tmp_path),
                            locator=locator).by_key("pg_dump")
        assert row.status is Status.OK and row.detail.startswith("15.") and "(server is 15)" in row.detail
    finally:
        server15.drop_database(db.name)


def test_search_picks_the_closest_version_not_below_the_server(pg15_dump):
    if embedded_bin_dir() is None:
        pytest.skip("the embedded PostgreSQL 18 wheel is not installed")
    locator = Locator({"PATH": ""})
    assert locator.find("pg_dump", 15).chosen.major == 15  # the system build (with SSL)
    assert locator.find("pg_dump", 18).chosen.major == 18  # the embedded one
    assert {t.source for t in locator.find("pg_dump", 18).found} >= {"system", "embedded"}


def test_pg_dump_env_pointing_nowhere_fails(tmp_path):
    result, tool = check_pg_dump(Locator({"PG_DUMP": str(tmp_path / "no" / "pg_dump"), "PATH": ""}), 18)
    assert tool is None and result.status is Status.FAILURE
    assert "is not a runnable pg_dump" in result.detail and "PG_DUMP" in result.hint


def test_no_pg_dump_anywhere_fails(tmp_path):
    locator = Locator({"PATH": str(tmp_path)}, system_root=tmp_path, embedded=False)
    result, tool = check_pg_dump(locator, 18)
    assert tool is None and result.status is Status.FAILURE
    assert result.detail.startswith("No pg_dump found")
    assert "postgresql-client-18" in result.hint
