"""A session terminated in the middle of a transaction: the error reported is the server's (the session was
terminated), never the ROLLBACK's "the connection is closed" that a clean-up on the dead connection raises.

Every read-only transaction of the tool ends with ``ROLLBACK`` in a ``finally``; on a connection the server has
closed that statement cannot run. It must not replace the failure that says what happened (a backup's catalog
read, waiting for a lock, was reported as "the connection is closed" when its session was terminated).
"""

from __future__ import annotations

import threading

import psycopg
import pytest
from engine_support import wait_until

from migration.backup import source
from migration.db import connect_url
from migration.errors import explain

pytestmark = pytest.mark.timeout(120)


def terminate(db, application_name: str) -> None:
    with db.admin() as conn:
        assert conn.execute("SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                            "WHERE application_name = %s", (application_name,)).fetchone()[0] == 1


def test_rollback_after_a_terminated_statement_leaves_the_server_s_error(db):
    conn = connect_url(db.url, application_name="migrate-tui-test-lost")
    try:
        conn.begin("READ ONLY")
        terminate(db, "migrate-tui-test-lost")
        with pytest.raises(psycopg.OperationalError) as raised:
            try:
                conn.execute("SELECT 1")
            finally:
                conn.execute("ROLLBACK")  # the connection is dead: nothing to end, nothing raised
        assert "the connection is closed" not in str(raised.value)
        assert "terminat" in str(raised.value) or "closed the connection" in str(raised.value), raised.value
        assert conn.closed
        conn.execute("ROLLBACK")  # still harmless afterwards
    finally:
        conn.close()


def test_a_catalog_read_terminated_while_it_waits_for_a_lock_says_the_session_was_lost(db):
    with db.app() as app:
        app.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text DEFAULT 'x')")
    holder = db.admin()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    failure: dict[str, BaseException] = {}
    reader = connect_url(db.url, application_name="migrate-tui-test-catalog")

    def read() -> None:
        try:
            source.read(reader, 60_000)
        except BaseException as exc:  # noqa: BLE001 - what the backup would report
            failure["error"] = exc

    thread = threading.Thread(target=read)
    thread.start()
    try:
        wait_until(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                     "'migrate-tui-test-catalog' AND wait_event_type = 'Lock'") == 1, 30,
                   "the catalog read to wait for the lock")
        terminate(db, "migrate-tui-test-catalog")
        thread.join(30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        reader.close()
    error = explain(failure["error"])
    assert "the connection is closed" not in str(failure["error"]), failure["error"]
    assert error.message.startswith(("Connection lost", "The connection to the server was lost")), error
    assert "nobody terminated the session" in error.hint or "terminated" in error.message, error
