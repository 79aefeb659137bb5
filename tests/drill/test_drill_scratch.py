"""``--drill-url``: the operator's scratch database. Refused on the target's own server, when not empty, when too
old for the dump or lacking the roles the dump needs; otherwise the drill restores into it and leaves the copy."""

from __future__ import annotations

import pytest
from drill_support import ROWS, backup, drill, seed
from harness import with_dbname

from migration.events import Outcome

pytestmark = pytest.mark.timeout(240)


def test_a_scratch_database_on_another_server_is_drilled_into(server15, server18, tmp_path):
    source = server15.create_database()
    scratch = server18.create_database()
    try:
        seed(source)
        taken = backup(source, tmp_path)
        url = with_dbname(server18.admin_url, scratch.name)
        result = drill(source, taken.path, drill_url=url)
        assert result.ok, result
        assert {c.table: c.rows_restored for c in result.tables} == ROWS
        assert result.server.startswith("the scratch database") and "****" in result.server
        assert scratch.scalar("SELECT count(*) FROM public.orders") == 1200  # the copy stays, as the output says
        again = drill(source, taken.path, drill_url=url)
        assert again.outcome is Outcome.FAILED and "is not empty" in again.error.message
        assert "CREATE DATABASE" in again.error.hint
    finally:
        server15.drop_database(source.name)
        server18.drop_database(scratch.name)


def test_a_scratch_database_on_the_target_server_is_refused(db, tmp_path):
    seed(db)
    taken = backup(db, tmp_path)
    other = db.server.create_database()
    try:
        result = drill(db, taken.path, drill_url=with_dbname(db.server.admin_url, other.name))
        assert result.outcome is Outcome.FAILED
        assert "points at the target's own server" in result.error.message
        assert "separate scratch server" in result.error.hint
        assert other.scalar("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace") == 0
    finally:
        db.server.drop_database(other.name)


def test_a_scratch_server_too_old_or_without_the_roles_is_refused(server15, server18, tmp_path):
    source = server18.create_database()
    old = server15.create_database()
    try:
        seed(source)
        taken = backup(source, tmp_path)
        result = drill(source, taken.path, drill_url=with_dbname(server15.admin_url, old.name))
        assert result.outcome is Outcome.FAILED and "cannot load a dump of PostgreSQL 18" in result.error.message
    finally:
        server18.drop_database(source.name)
        server15.drop_database(old.name)
    source = server15.create_database()
    scratch = server18.create_database()
    try:
        with source.app() as conn:
            conn.execute("CREATE TABLE t (x int)")
        source.execute("CREATE ROLE drill_reader_only_on_15 NOLOGIN")
        source.execute("GRANT SELECT ON t TO drill_reader_only_on_15")
        taken = backup(source, tmp_path)
        result = drill(source, taken.path, drill_url=with_dbname(server18.admin_url, scratch.name))
        assert result.outcome is Outcome.FAILED
        assert "lacks the role the dump needs: drill_reader_only_on_15" in result.error.message
        assert 'CREATE ROLE "drill_reader_only_on_15" NOLOGIN;' in result.error.hint
    finally:
        server15.drop_database(source.name)
        server18.drop_database(scratch.name)
        with server15.admin() as conn:
            conn.execute("DROP ROLE IF EXISTS drill_reader_only_on_15")
