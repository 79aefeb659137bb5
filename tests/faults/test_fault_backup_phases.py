"""kill -9, SIGTERM and connection termination during each phase of the backup `run --yes` takes first.

The phases, each reached deterministically:

- ``lock-wait``: pg_dump waits for its locks (another session holds ACCESS EXCLUSIVE on a table);
- ``copy``: pg_dump copies a table's rows (the answer to its ``COPY ... TO stdout`` is held at the
  relay, :mod:`pg_proxy`; the dump's header is already in the partial file);
- ``verify``: pg_restore reads the custom-format archive whole (``--format custom``; a wrapper named
  pg_restore waits at a gate, :mod:`gates`, before it becomes the real one).

Afterwards: the migration never started (the catalog exactly as before); no session of the tool
left; SIGTERM → exit 130, "Backup cancelled; the partial file was deleted", the backup directory
empty; termination → exit 1, the reason and a ``Fix:`` line, the directory empty (verification uses
no connection, so there a termination changes nothing and the run completes); kill -9 → the
``.partial`` file is all that is left, and the next run removes it with a line saying so.
"""

from __future__ import annotations

import signal

import pytest

from fault_support import RUN, backend_count, catalog_snapshot, env_for, table_state, terminate_migration_backends
from fault_support import run_cli, wait_until, waiting_on_lock
from gates import Gate, alive, partials, unlocked
from live_cli import LiveCli
from pg_proxy import PgProxy, url_through

PHASES = ("lock-wait", "copy", "verify")
FAULTS = ("kill9", "sigterm", "terminate")
REMOVED = "🧹 Removed a temporary file left by a killed run: "


@pytest.fixture
def orders(db):
    with db.app() as conn:  # owned by the application role, so its pg_dump may read it
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 2000) g")
    return db


def pg_dump_app(cli: LiveCli) -> str:
    return f"migrate-tui-backup-{cli.pid}-%"


class Phase:
    """Brings a `run --yes` to one phase of its backup, and lets whatever waits there go on afterwards."""

    def __init__(self, name: str, db, tmp_path) -> None:
        self.name, self.db, self.tmp_path = name, db, tmp_path
        self.holder = self.proxy = self.gate = self.held = None
        self.args = [*RUN, "--backup-dir", str(tmp_path / "backups")]
        self.env = env_for(db, tmp_path)
        if name == "copy":
            self.proxy = PgProxy(("127.0.0.1", db.server.local.port),
                                 watch=lambda app: app.startswith("migrate-tui-backup-") and not app.endswith("inspect"))
            self.proxy.__enter__()
            self.env["DATABASE_URL"] = url_through(db.url, self.proxy)
        if name == "verify":
            self.gate = Gate(tmp_path / "gate", db.server.bin_dir, "pg_restore")
            self.env.update(self.gate.env)
            self.args += ["--format", "custom"]

    def start(self) -> LiveCli:
        if self.name == "lock-wait":
            self.holder = self.db.admin()
            self.holder.execute("BEGIN")
            self.holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        cli = LiveCli(*self.args, cwd=self.tmp_path, env=self.env)
        self.dump_app = pg_dump_app(cli)
        if self.name == "lock-wait":
            # pg_dump itself (the backup's catalog read, "...-catalog", may wait on the same lock before it)
            wait_until(lambda: waiting_on_lock(self.db, self.dump_app, unlike="%-catalog"), 60,
                       "pg_dump to wait on the locked table")
        elif self.name == "copy":
            while True:
                self.held = self.proxy.next_held()
                if self.held.sql.startswith("COPY "):
                    break
                self.held.forward()
        else:
            self.gate.wait_reached()
        assert len(partials(self.tmp_path / "backups")) == 1, "the partial file is on disk during the phase"
        return cli

    def strike_terminate(self) -> int:
        if self.name == "copy":  # the COPY meets a terminated session
            terminated = terminate_migration_backends(self.db, self.held.application_name)
            self.held.drop()
            return terminated
        if self.name == "lock-wait":
            with self.db.admin() as conn:
                return sum(ok for (ok,) in conn.execute(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name LIKE %s",
                    (self.dump_app,)).fetchall())
        # verify: pg_dump has ended; the backup's own session is idle
        return terminate_migration_backends(self.db, "migrate-tui-backup-inspect")

    def hold_answer(self) -> None:
        if self.name == "copy":
            self.held.forward_and_hold_answer()

    def let_go(self) -> None:
        """Whatever still waits (an orphan of a killed run, or nothing) goes on."""
        if self.holder is not None and not self.holder.closed:
            self.holder.execute("ROLLBACK")
            self.holder.close()
        if self.proxy is not None:
            self.proxy.pass_through()
        if self.gate is not None:
            self.gate.open(timeout=0.5)

    def close(self) -> None:
        self.let_go()
        if self.proxy is not None:
            self.proxy.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("phase_name", PHASES)
def test_fault_during_each_backup_phase(orders, tmp_path, phase_name, fault):
    db = orders
    backups = tmp_path / "backups"
    before = catalog_snapshot(db)
    phase = Phase(phase_name, db, tmp_path)
    try:
        cli = phase.start()
        if fault == "kill9":
            phase.hold_answer()
            cli.kill9()
            left = partials(backups)
            phase.let_go()  # the orphaned pg_dump / pg_restore finishes its work and ends
            wait_until(lambda: not backend_count(db, "migrate-tui%"), 30, "the orphan's session to end")
            wait_until(lambda: all(unlocked(p) for p in partials(backups)), 30, "the orphaned pg_dump to end")
            if phase.gate is not None:
                wait_until(lambda: not any(alive(pid) for pid in phase.gate.waiting()), 30, "pg_restore to end")
            assert [p.name for p in backups.iterdir()] == [p.name for p in left] and len(left) == 1, \
                f"only the partial file is left: {list(backups.iterdir())}"
        elif fault == "sigterm":
            phase.hold_answer()
            cli.signal(signal.SIGTERM)
            result = cli.finish(timeout=30)
        else:
            terminated = phase.strike_terminate()
            assert terminated >= 1, "a session of the backup was terminated"
            phase.let_go()
            result = cli.finish(timeout=60)
    finally:
        cli.close()
        phase.close()

    wait_until(lambda: not backend_count(db, "migrate-tui%"), 20, "the tool's sessions to end")
    if fault == "terminate" and phase_name == "verify":  # no connection in use: the backup and the run complete
        assert result.returncode == 0, result.output
        assert "✓ Backup written and verified" in result.stdout and "🎉 Migration completed successfully!" \
            in result.stdout, result.output
        assert table_state(db) == "valid" and not partials(backups)
        return
    assert table_state(db) == "absent" and catalog_snapshot(db) == before, "the migration never started"
    if fault == "sigterm":
        assert result.returncode == 130, result.output
        assert "Cancelling: stopping pg_dump and deleting the partial file" in result.stderr, result.output
        assert "⏹  Backup cancelled; the partial file was deleted." in result.stdout, result.output
        assert "Nothing was changed: the migration does not start without a verified backup" in result.stdout
        assert not list(backups.iterdir()), f"files left behind: {list(backups.iterdir())}"
        if phase.gate is not None:  # the pg_restore that was verifying was stopped, not left waiting
            wait_until(lambda: not any(alive(pid) for pid in phase.gate.waiting()), 10, "pg_restore to be stopped")
    elif fault == "terminate":
        assert result.returncode == 1, result.output
        assert "✗ Backup failed — the partial file was deleted." in result.stdout, result.output
        assert "Error: The connection to the server was lost while pg_dump was running." in result.stdout, \
            result.output
        assert "Fix: Check that the server is running and nobody terminated the session" in result.stdout
        assert "Nothing was changed: the migration does not start without a verified backup" in result.stdout
        assert not list(backups.iterdir()), f"files left behind: {list(backups.iterdir())}"
    else:  # kill -9: the next run removes the partial file, says so, backs up and migrates
        (partial,) = left
        again = run_cli(*RUN, "--backup-dir", str(backups), cwd=tmp_path, env=env_for(db, tmp_path))
        assert again.returncode == 0, again.output
        assert f"{REMOVED}{partial}" in again.stdout, again.output
        assert not partials(backups) and table_state(db) == "valid"
