"""migration.pooler against a real PgBouncer: present or not, which mode, and why — in both modes, on
PostgreSQL 18 and 15 — and what the checklist's "Direct connection" row says about it."""

from __future__ import annotations

import threading
import time

import pytest

from migration.db import connect, server_facts
from migration.events import Status
from migration.pooler import PoolMode, detect, url_signals
from migration.preflight import check_pooler
from migration.settings import load_settings

pytestmark = pytest.mark.timeout(120)
WRONG_REASON = "consecutive statements ran in different server sessions"


def _settings(url: str):
    return load_settings(database_url=url, environ={})


def _detect(url: str, **kwargs):
    settings = _settings(url)
    with connect(settings) as conn:
        facts = server_facts(conn)
        return detect(conn, settings, facts.backend_pid, **kwargs), facts, conn.info.backend_pid


def test_known_pooler_endpoints_are_recognised_from_the_url():
    def signals(url):
        return url_signals(_settings(url))

    assert signals("postgresql://u:p@aws-0-eu-west-1.pooler.supabase.com:6543/postgres") == [
        "port 6543 is the port of Supabase's transaction pooler",
        "the host aws-0-eu-west-1.pooler.supabase.com is a pooler endpoint"]
    assert signals("postgresql://u:p@ep-cool-1234-pooler.eu-central-1.aws.neon.tech/neondb")
    assert signals("postgresql://u:p@db.example.com:6432/app") == ["port 6432 is PgBouncer's default port"]
    assert signals("postgresql://u:p@pgbouncer.internal/app")
    assert signals("postgresql://u:p@db.example.com:5432/app") == []


def test_a_direct_connection_has_no_pooler(db):
    report, facts, key_pid = _detect(db.url)
    assert key_pid == facts.backend_pid
    assert report.mode is PoolMode.NONE and not report.present and report.dumps_safely
    assert report.signals == ()
    with connect(_settings(db.url)) as conn:
        row = check_pooler(conn, _settings(db.url), server_facts(conn))
    assert row.status is Status.OK and row.detail == "no connection pooler detected"


def test_pgbouncer_and_its_mode_are_told_in_both_modes(pooled):
    report, facts, key_pid = _detect(pooled.url)
    expected = PoolMode.TRANSACTION if pooled.mode == "transaction" else PoolMode.SESSION
    assert report.mode is expected, report
    assert report.present and report.product == "PgBouncer"  # its admin database answers "not allowed"
    assert report.dumps_safely is (pooled.mode == "session")
    assert key_pid != facts.backend_pid
    assert report.signals[0] == (f"the cancel key the connection got names process {key_pid}, but the server "
                                 f"process is {facts.backend_pid}: something between them answers for the server")
    if pooled.mode == "transaction":
        assert "server connections are shared between transactions" in report.signals[-1]
    else:
        assert "each client keeps its server connection" in report.signals[-1]
        assert f"server process {facts.backend_pid}" in report.signals[-1]
    assert WRONG_REASON not in report.reason
    assert report.label == f"{pooled.mode} pooling (PgBouncer)"


def test_the_checklist_row_names_the_mode_the_reason_and_the_consequence(pooled):
    settings = _settings(pooled.url)
    with connect(settings) as conn:
        facts = server_facts(conn)
        with_backup = check_pooler(conn, settings, facts)
        without_backup = check_pooler(conn, settings, facts, with_backup=False)
    for row in (with_backup, without_backup):
        assert row.key == "pooler" and row.name == "Direct connection"
        assert row.detail.startswith(f"{pooled.mode} pooling (PgBouncer): the cancel key"), row.detail
        assert WRONG_REASON not in row.detail and row.hint
    if pooled.mode == "session":
        assert with_backup.status is without_backup.status is Status.WARNING
        assert "every command works as it does there" in with_backup.detail
    else:
        assert with_backup.status is Status.FAILURE  # the backup would not be correct
        assert with_backup.detail.endswith("— the backup would not be correct")
        assert "the migration and the rollback's DROP are safe through it" in with_backup.detail
        assert "direct (non-pooled) URL" in with_backup.hint and "--skip-backup" in with_backup.hint
        assert without_backup.status is Status.WARNING  # run --skip-backup: the migration itself is safe


def test_pgbouncer_admin_console_gives_its_version_and_pool_mode(db18, bouncers, mode):
    """For PgBouncer's stats users its admin database answers SHOW VERSION and SHOW POOLS: the configured
    pool_mode is read, not inferred."""
    bouncer = bouncers(db18.server, mode, stats_users="app_user")
    report, _, _ = _detect(bouncer.url(db18.name))
    assert report.mode.value == mode
    assert report.product.startswith("PgBouncer 1."), report.product
    assert report.signals[-1] == f"its admin console reports pool_mode = {mode}"


def test_a_full_session_pool_leaves_the_mode_unknown_within_the_bound(db18, bouncers):
    """One server connection, held by the client itself: the probe's second connection never gets one
    (PgBouncer ignores a cancel request for a waiting client). The probe gives up in time, says why, and
    leaves no thread behind; an unknown mode is treated as transaction pooling."""
    bouncer = bouncers(db18.server, "session", pool_size=1)
    started = time.monotonic()
    report, _, _ = _detect(bouncer.url(db18.name), probe_timeout_s=1.0)
    assert time.monotonic() - started < 4
    assert report.mode is PoolMode.UNKNOWN and report.present and not report.dumps_safely
    assert "got no server connection within 1 s (a full pool" in report.reason
    assert not [t for t in threading.enumerate() if t.name == "migrate-tui-pooler-probe"]


def test_statement_pooling_is_named_with_its_fix(db18, bouncers, tmp_path):
    """Statement pooling refuses transactions, which every command uses (its first statement already fails):
    the checklist says so and what to do, not "check the network"."""
    from cli.cli_support import cli_env, run_cli

    bouncer = bouncers(db18.server, "statement", pool_size=2)
    result = run_cli("check", cwd=tmp_path, env=cli_env(bouncer.url(db18.name)))
    assert result.returncode == 1
    assert "it runs in statement pooling mode, which allows no transactions" in result.stdout
    assert "Fix: Use the direct (non-pooled) URL" in result.stdout
    assert not db18.table_exists()
