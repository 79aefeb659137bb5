"""The wizard in a real terminal (tmux): 80x24 (with and without colour) and 200x50 with NO_COLOR=1.

`migrate-tui --demo` runs as an operator would start it: Target → Checklist → Backup →
Migrate → Result → Post-migration (verify, CRON_SECRET into ./.env) → quit, read back with
`tmux capture-pane`. Then the exit code, and the demo database is gone. Polls the pane (there
is no event to wait on in another process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")

# With CI set this skip is a failure (tests/skip_rule.py): tests/run.sh installs tmux there.
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Pane:
    def __init__(self, name: str) -> None:
        self.name = name

    def text(self) -> str:
        return subprocess.run([TMUX, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                              check=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([TMUX, "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The pane once it shows ``text`` and has stopped changing (a capture can catch a frame
        half-drawn, and the spinner of a running step keeps changing it)."""
        deadline = time.monotonic() + timeout
        previous = None
        while time.monotonic() < deadline:
            screen = self.text()
            if text in screen and screen == previous:
                return screen
            previous = screen if text in screen else None
            time.sleep(0.25)
        raise AssertionError(f"{text!r} never appeared (or never settled); the pane shows:\n{self.text()}")


@pytest.mark.parametrize("size,no_color", [((80, 24), False), ((80, 24), True), ((200, 50), True)],
                         ids=["80x24", "80x24-NO_COLOR", "200x50-NO_COLOR"])
def test_demo_wizard_in_tmux(tmp_path, size, no_color):
    assert TMUX is not None
    name = f"wiz-{uuid.uuid4().hex[:8]}"
    migrate_tui = Path(sys.executable).with_name("migrate-tui")
    exe = str(migrate_tui) if migrate_tui.exists() else f"{sys.executable} -m headless.entry"
    env = {"TERM": "xterm-256color", "MIGRATE_AUDIT_LOG": str(tmp_path / "audit.log"), "PYTHONPATH": str(ROOT)}
    env["TMPDIR"] = os.environ.get("TMPDIR", "/tmp")  # tmux runs the pane with its server's environment
    if no_color:
        env["NO_COLOR"] = "1"
    exports = " ".join(f"{k}='{v}'" for k, v in env.items())
    done = tmp_path / "exit_code"
    command = f"cd '{tmp_path}' && env {exports} {exe} --demo; echo $? > '{done}'; sleep 30"
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("migrate-tui-pg-*"))
    subprocess.run([TMUX, "new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]), command],
                   check=True)
    pane = Pane(name)
    try:
        screen = pane.wait_for("Ready: press m")
        assert "postgresql://shop_app:****@127.0.0.1:" in screen
        assert "absent: the migration will create it" in screen
        assert "● Target" in screen.splitlines()[0]  # the path, readable without colour
        pane.keys("m")
        # The demo has no CRON_SECRET: needed only after the migration, it is for later, not a warning.
        screen = pane.wait_for("ready to migrate")
        assert "for later, 0 warnings" in screen and "acknowledge" not in screen
        pane.keys("Enter")
        pane.wait_for("Continue to migrate")
        pane.keys("Enter")
        screen = pane.wait_for("See the result (Enter)")
        assert "Migration completed successfully!" in screen
        assert "8/8 Transaction Commit" in screen  # the finished run scrolls to its last step
        assert "✓ Backup" in screen.splitlines()[0] and "● Migrate" not in screen.splitlines()[0]
        pane.keys("Enter")
        screen = pane.wait_for("Post-migration (p)")
        assert "The database_backups table has been added to your database." in screen
        assert "Traceback" not in screen
        pane.keys("p")
        pane.wait_for("✓ It lists database_backups (1 row).")
        screen = pane.wait_for("palette")  # the footer is redrawn once the screen's keys are known (slow under load)
        assert "● Post-migration" in screen.splitlines()[0] and "✓ Result" in screen.splitlines()[0]
        footer = [line for line in screen.splitlines() if line.strip()][-1]
        assert footer.rstrip().endswith("palette") and "q Quit" in footer, screen  # the footer fits
        pane.keys("g")
        pane.wait_for("Add CRON_SECRET?")
        pane.keys("y")
        deadline = time.monotonic() + 30
        while not (tmp_path / ".env").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        secret = (tmp_path / ".env").read_text().strip().partition("=")[2]
        assert len(secret) == 64 and secret not in pane.text()
        pane.keys("q")
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run([TMUX, "kill-session", "-t", name], capture_output=True)
    # The demo database went away with the wizard.
    after = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("migrate-tui-pg-*"))
    leftovers = [p for p in after - before if (p / "data" / "postmaster.pid").exists()]
    assert leftovers == []
