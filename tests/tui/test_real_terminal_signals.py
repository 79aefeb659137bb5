"""The wizard in a real terminal (tmux) after a failure: it keeps responding, and SIGTERM / SIGHUP end it cleanly.

Regressions of the one-lifecycle issue: Enter on the Back button after "Rollback failed; nothing was
dropped" froze the wizard for good (no key, no redraw, SIGTERM ignored; only SIGKILL ended it, leaving the
demo's PostgreSQL and its directory behind). Now Enter returns to Target and q quits; SIGTERM and SIGHUP,
in any state, cancel what runs and exit 130, and the demo database goes away with the wizard.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from test_real_terminal import ROOT, TMUX, Pane

from migration.events import Outcome
from migration.runner import Migration

pytestmark = [pytest.mark.skipif(TMUX is None, reason="tmux is not installed"), pytest.mark.timeout(180)]


class Wizard:
    """``migrate-tui [args]`` in a tmux pane; its exit code lands in a file."""

    def __init__(self, tmp_path: Path, *args: str, database_url: str | None = None, size=(80, 24)) -> None:
        self.name = f"sig-{uuid.uuid4().hex[:8]}"
        self.done = tmp_path / "exit_code"
        migrate_tui = Path(sys.executable).with_name("migrate-tui")
        exe = str(migrate_tui) if migrate_tui.exists() else f"{sys.executable} -m headless.entry"
        env = {"TERM": "xterm-256color", "MIGRATE_AUDIT_LOG": str(tmp_path / "audit.log"), "PYTHONPATH": str(ROOT)}
        # tmux runs the pane with its server's environment (the first client's): our TMPDIR, said explicitly
        env["TMPDIR"] = os.environ.get("TMPDIR", "/tmp")
        if database_url:
            env["DATABASE_URL"] = database_url
        exports = " ".join(f"{k}='{v}'" for k, v in env.items())
        command = f"cd '{tmp_path}' && env {exports} {exe} {' '.join(args)}; echo $? > '{self.done}'; sleep 60"
        subprocess.run([TMUX, "new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]), command],
                       check=True)
        self.pane = Pane(self.name)

    @property
    def pid(self) -> int:
        """The wizard's process: the pane's shell runs it as its child."""
        shell = subprocess.run([TMUX, "list-panes", "-t", self.name, "-F", "#{pane_pid}"], capture_output=True,
                               text=True, check=True).stdout.split()[0]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()
            if children:
                return int(children[0])
            time.sleep(0.1)
        raise AssertionError("the wizard's process was not found")

    def exit_code(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while not self.done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.done.exists(), f"the wizard did not end; the pane shows:\n{self.pane.text()}"
        return self.done.read_text().strip()

    def close(self) -> None:
        subprocess.run([TMUX, "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def failed_rollback(db18, settings_for, tmp_path):
    """The wizard on a migrated database whose table another session keeps reading: the rollback gives up."""
    assert Migration(settings_for(db18), lambda e: None).run().outcome is Outcome.SUCCESS
    with psycopg.connect(db18.url, autocommit=True, application_name="report-job") as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE public.database_backups IN ACCESS SHARE MODE")
        wizard = Wizard(tmp_path, "--lock-timeout", "300", database_url=db18.url, size=(120, 60))
        try:
            wizard.pane.wait_for("already there", 60)
            wizard.pane.keys("d")
            wizard.pane.wait_for("Roll back… (d)")
            wizard.pane.keys("d")
            time.sleep(0.5)
            wizard.pane.keys(*"database_backups")
            wizard.pane.keys("Enter")
            wizard.pane.wait_for("raise --retries or --lock-timeout", 90)  # the failure's fix, in view
            yield wizard
        finally:
            wizard.close()
            holder.execute("ROLLBACK")
    assert db18.table_exists()


def test_enter_after_a_failed_rollback_returns_to_target_and_q_quits(failed_rollback):
    wizard = failed_rollback
    wizard.pane.keys("Enter")  # the focused Back button
    wizard.pane.wait_for("already there")  # Target, read again
    wizard.pane.keys("q")
    assert wizard.exit_code() == "1"  # the last operation (the rollback) failed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_after_a_failed_rollback_ends_the_wizard_with_130(failed_rollback, sig):
    wizard = failed_rollback
    wizard.pane.keys("Enter")
    wizard.pane.wait_for("already there")
    os.kill(wizard.pid, sig)
    assert wizard.exit_code() == "130"


def test_sigterm_in_the_demo_removes_its_database(tmp_path):
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("migrate-tui-pg-*"))
    wizard = Wizard(tmp_path, "--demo")
    try:
        wizard.pane.wait_for("Ready: press m")
        wizard.pane.keys("d")  # a screen with a finished read: nothing to roll back in a fresh demo
        wizard.pane.wait_for("Nothing to roll back")
        os.kill(wizard.pid, signal.SIGTERM)
        assert wizard.exit_code() == "130"
    finally:
        wizard.close()
    after = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("migrate-tui-pg-*"))
    assert [p for p in after - before if p.exists()] == [], "the demo database was left behind"
