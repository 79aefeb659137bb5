"""kill -9, SIGTERM and connection termination during each phase of `rollback --yes`.

The phases, each reached deterministically through the real CLI:

- ``safety-copy``: pg_dump copies the table (the answer to its ``COPY ... TO stdout`` held at the
  relay, :mod:`pg_proxy`);
- ``lock-wait``: the DROP's ``LOCK TABLE`` waits (another session holds ACCESS SHARE on the table);
- ``drop``: the DROP has run on the server inside the open transaction (its answer held at the relay);
  for termination, the DROP meets a terminated session;
- ``verify``: the DROP is committed and the catalog is being read back (the monitor session's first
  statement after the CLI printed "✓ Dropped:" is held at the relay).

Afterwards, from the catalog: the table with its rows exactly as before, or (once the DROP was
committed) gone with everything it brought; no session of the tool left; the exit code and the report
(a ``Fix:`` line after every ``Error:``); no ``.partial`` file, except after kill -9 during the safety
copy, which the next rollback removes with a line saying so; after kill -9 the next rollback goes through.
"""

from __future__ import annotations

import signal

import pytest

from engine.rollback_support import migrate_with_rows, table_rows
from fault_support import backend_count, catalog_snapshot, env_for, run_cli, table_state, wait_until
from fault_support import waiting_on_lock
from gates import partials, unlocked
from live_cli import LiveCli
from pg_proxy import PgProxy, url_through

PHASES = ("safety-copy", "lock-wait", "drop", "verify")
FAULTS = ("kill9", "sigterm", "terminate")
WATCHED = {"safety-copy": "migrate-tui safety copy", "drop": "migrate-tui rollback",
           "verify": "migrate-tui rollback monitor"}
REMOVED = "🧹 Removed a temporary file left by a killed run: "
KEPT = "nothing was dropped (the catalog still shows public.database_backups)."
GONE = "Table public.database_backups was dropped"


def reached(phase: str, held, cli: LiveCli) -> bool:
    if phase == "safety-copy":
        return held.sql.startswith("COPY ")
    if phase == "drop":
        return held.sql.startswith("DROP TABLE")
    return cli.printed("✓ Dropped:")  # verify: printed after COMMIT, before the catalog is read back


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("phase", PHASES)
def test_fault_during_each_rollback_phase(db, settings_for, tmp_path, phase, fault):
    backups = tmp_path / "backups"
    pristine = catalog_snapshot(db)
    rows = migrate_with_rows(db, settings_for(db))
    before = catalog_snapshot(db)
    dropped = phase == "verify"  # the DROP was committed before the fault: whatever happens, it is gone
    args = ("rollback", "--yes", "--lock-timeout", "60000", "--backup-dir", str(backups))
    holder = None
    with PgProxy(("127.0.0.1", db.server.local.port), watch=lambda app: app == WATCHED.get(phase)) as proxy:
        env = env_for(db, tmp_path, DATABASE_URL=url_through(db.url, proxy))
        if phase == "lock-wait":
            holder = db.admin()
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE public.database_backups IN ACCESS SHARE MODE")
        cli = LiveCli(*args, cwd=tmp_path, env=env)
        try:
            held = None
            if phase == "lock-wait":
                wait_until(lambda: waiting_on_lock(db, "migrate-tui rollback"), 60, "the DROP's lock wait")
            else:
                held = proxy.next_held()
                while not reached(phase, held, cli):
                    held.forward()
                    held = proxy.next_held()
            if fault == "terminate":
                with db.admin() as conn:
                    pids = [held.backend_pid] if held else [r[0] for r in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = 'migrate-tui rollback' "
                        "AND wait_event_type = 'Lock'").fetchall()]
                    assert len(pids) == 1 and conn.execute("SELECT pg_terminate_backend(%s, 10000)", pids).fetchone()[0]
                if held:
                    held.drop()
                proxy.pass_through()
                result = cli.finish()
            else:
                if held:
                    held.forward_and_hold_answer()
                if fault == "kill9":
                    left = [p for p in partials(backups)]
                    cli.kill9()
                else:
                    cli.signal(signal.SIGTERM)
                    cli.wait_printed("Cancelling: stopping the DROP and rolling back")
                proxy.pass_through()
                if fault == "sigterm":
                    result = cli.finish()
        finally:
            cli.close()
            if holder is not None:
                holder.execute("ROLLBACK")
                holder.close()

    wait_until(lambda: not backend_count(db, "migrate-tui%"), 30, "the tool's sessions to end")
    if dropped:
        assert table_state(db) == "absent" and catalog_snapshot(db) == pristine
    else:
        assert table_state(db) == "valid" and catalog_snapshot(db) == before and table_rows(db) == rows

    if fault == "kill9":
        wait_until(lambda: all(unlocked(p) for p in partials(backups)), 30, "the orphaned pg_dump to end")
        if phase == "safety-copy":  # the copy's temporary file is left, and only that
            assert len(left) == 1 and partials(backups) == left, (left, list(backups.iterdir()))
        else:
            assert not partials(backups)
        again = run_cli("rollback", "--yes", "--backup-dir", str(backups), cwd=tmp_path, env=env_for(db, tmp_path))
        assert again.returncode == 0, again.output
        if phase == "safety-copy":
            assert f"{REMOVED}{left[0]}" in again.stdout, again.output
        assert ("✅ Nothing to roll back" if dropped else f"✅ {GONE} and the catalog confirms it is gone.") \
            in again.stdout, again.output
        assert table_state(db) == "absent" and not partials(backups)
        return

    assert not partials(backups), f"a temporary file was left: {list(backups.iterdir())}"
    if fault == "sigterm":
        if dropped:  # the DROP was committed: too late to cancel, and the report says what happened
            assert result.returncode == 0, result.output
            assert f"✅ {GONE} and the catalog confirms it is gone." in result.stdout, result.output
        else:
            assert result.returncode == 130, result.output
            assert "Error: Cancelled by the operator. (SQLSTATE 57014)" in result.stdout, result.output
            assert "Fix: Nothing was dropped. Run again when ready." in result.stdout, result.output
            assert f"⏹  Cancelled; {KEPT}" in result.stdout, result.output
    else:
        if dropped:  # the catalog, read on a fresh session after the error, says it is gone
            assert result.returncode == 0, result.output
            assert "Error: Connection lost (the server shut down or terminated this session)" in result.stdout
            assert f"✅ {GONE}: the catalog, read after the error, confirms it is gone." in result.stdout, \
                result.output
            return
        assert result.returncode == 1, result.output
        if phase == "safety-copy":
            assert "Error: The connection to the server was lost while pg_dump was running." in result.stdout, \
                result.output
        else:
            assert "Error: Connection lost (the server shut down or terminated this session)" in result.stdout, \
                result.output
        assert f"❌ Rollback failed; {KEPT}" in result.stdout, result.output
