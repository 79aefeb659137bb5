"""kill -9, SIGTERM and connection termination during each of the eight steps, through the real CLI.

``migrate-tui run --yes --skip-backup --verbose`` connects through a relay (:mod:`pg_proxy`) that
holds the migration's session statement by statement; the step a held statement belongs to is the
last "… Step N/8" the CLI printed before sending it (:mod:`live_cli`). At the first statement of
step N the fault strikes:

- kill -9 / SIGTERM: the server has run that statement (its answer is held at the relay), so
  everything the steps before did is on the server, uncommitted; then the process is killed (no
  handler runs) or gets SIGTERM (then the answer is delivered).
- termination: ``pg_terminate_backend`` while the statement is on its way, so the statement meets a
  dead session.

Afterwards, from the catalog read on the server: exactly as before, or (once COMMIT has run on the
server) fully migrated; no session of the tool left; no advisory lock; the exit code and the report;
after kill -9 the next run goes through.
"""

from __future__ import annotations

import signal

import pytest

from fault_support import RUN, backend_count, catalog_snapshot, env_for, run_cli, table_state, wait_until
from live_cli import LiveCli
from migration.events import Step
from pg_proxy import Held, PgProxy, url_through

FAULTS = ("kill9", "sigterm", "terminate")
BEFORE_TRANSACTION = (Step.CONNECTION_TEST, Step.EXISTENCE_CHECK, Step.TRANSACTION_START)


def upstream(db) -> tuple[str, int]:
    return "127.0.0.1", db.server.local.port


def reach_step(proxy: PgProxy, cli: LiveCli, step: Step) -> Held:
    """Let the migration's statements through one by one until the first one of ``step``."""
    while True:
        held = proxy.next_held()
        announced = cli.step()
        assert announced is not None and announced <= step.value, \
            f"step {step.value} was never reached with a statement (at step {announced}):\n{cli.stdout}"
        if announced == step.value:
            return held
        held.forward()


def terminate(db, pid: int) -> None:
    with db.admin() as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()[0]


def no_session_left(db) -> None:
    wait_until(lambda: not backend_count(db, "migrate-tui%"), 20, "the tool's sessions to end")
    with db.admin() as conn:
        assert not conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", list(Step), ids=lambda s: f"{s.value}-{s.name.lower()}")
def test_fault_during_each_step(db, tmp_path, step, fault):
    before = catalog_snapshot(db)
    committed = step is Step.TRANSACTION_COMMIT and fault != "terminate"  # COMMIT ran on the server
    with PgProxy(upstream(db), watch=lambda name: name == "migrate-tui") as proxy:
        env = env_for(db, tmp_path, DATABASE_URL=url_through(db.url, proxy))
        cli = LiveCli(*RUN, "--skip-backup", "--verbose", "--lock-wait", "1", cwd=tmp_path, env=env)
        try:
            held = reach_step(proxy, cli, step)
            if fault == "terminate":
                terminate(db, held.backend_pid)
                held.drop()
                proxy.pass_through()
                result = cli.finish()
            else:
                held.forward_and_hold_answer()
                if fault == "kill9":
                    cli.kill9()
                    proxy.pass_through()
                else:
                    cli.signal(signal.SIGTERM)
                    cli.wait_printed("Cancelling: stopping the running statement and rolling back")
                    proxy.pass_through()
                    result = cli.finish()
        finally:
            cli.close()

    no_session_left(db)
    if committed:
        assert table_state(db) == "valid"
    else:
        assert table_state(db) == "absent"
        assert catalog_snapshot(db) == before

    if fault == "terminate":
        assert result.returncode == 1, result.output
        assert f"✗ Step {step.value}/8 {step.title} failed" in result.stdout, result.output
        assert "Error: Connection lost (the server shut down or terminated this session)" in result.stdout, \
            result.output
        assert "Fix: " in result.stdout and "run again" in result.stdout.lower(), result.output
        if step in BEFORE_TRANSACTION:
            assert "Nothing was changed." in result.stdout, result.output
        else:
            assert "↩️  All changes rolled back: verified, database_backups does not exist" in result.stdout, \
                result.output
        assert "❌ Migration failed" in result.stdout
    elif fault == "sigterm":
        if committed:  # the COMMIT had reached the server: too late to cancel, and the report says so
            assert result.returncode == 0, result.output
            assert "✓ Transaction committed successfully" in result.stdout
            assert "🎉 Migration completed successfully!" in result.stdout, result.output
        else:
            assert result.returncode == 130, result.output
            failed = [n for n in range(1, 9) if f"✗ Step {n}/8 " in result.stdout]
            # the step whose statement was running, or the next one if that was the step's last statement
            assert failed in ([step.value], [step.value + 1]), result.output
            assert "Error: Cancelled by the operator. (SQLSTATE 57014)" in result.stdout, result.output
            assert "Fix: Nothing was committed. Run again when ready." in result.stdout, result.output
            assert "⏹  Cancelled — all changes rolled back: verified, database_backups does not exist" \
                in result.stdout, result.output
    else:  # kill -9: nothing printed afterwards; the server rolled back (or had committed); the next run goes on
        again = run_cli(*RUN, "--skip-backup", cwd=tmp_path, env=env_for(db, tmp_path))
        assert again.returncode == 0, again.output
        expected = "Migration not needed" if committed else "Migration completed successfully!"
        assert expected in again.output, again.output
        assert table_state(db) == "valid"
