"""The console script ends a headless command without Python's slow shutdown, losing nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import tui.entry as entry

ROOT = Path(__file__).resolve().parents[2]


def test_buffered_output_reaches_a_pipe_and_the_exit_code_is_kept():
    script = ("import sys, tui.entry as e\n"
              "def main():\n"
              "    sys.stdout.write('out-' * 50000)\n"
              "    sys.stderr.write('err-' * 50000)\n"
              "    return 3\n"
              "e.main = main\n"
              "e.console()\n"
              "print('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stdout == "out-" * 50000 and proc.stderr == "err-" * 50000


def test_a_running_non_daemon_thread_gets_the_normal_exit(monkeypatch):
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=False)

    def main() -> int:
        worker.start()
        return 5

    monkeypatch.setattr(entry, "main", main)
    try:
        with pytest.raises(SystemExit) as exited:  # not os._exit: this test process lives on
            entry.console()
        assert exited.value.code == 5
    finally:
        release.set()
        worker.join()


def test_the_wizard_gets_the_normal_exit(monkeypatch):
    monkeypatch.setattr(entry, "main", lambda: 0)
    monkeypatch.setattr(entry, "_wizard_started", True)
    with pytest.raises(SystemExit) as exited:
        entry.console()
    assert exited.value.code == 0
