"""The console script ends a headless command without Python's slow shutdown, losing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import headless.entry as entry

ROOT = Path(__file__).resolve().parents[2]


def test_buffered_output_reaches_a_pipe_and_the_exit_code_is_kept():
    script = ("import sys, headless.entry as e\n"
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


@pytest.mark.parametrize("daemon", [False, True])
def test_a_thread_still_running_gets_the_normal_exit(monkeypatch, daemon):
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=daemon)

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


def test_output_that_cannot_be_written_is_not_a_silent_success():
    script = ("import sys, time, headless.entry as e\n"
              "def main():\n"
              "    sys.stdout.write('x' * 1000)\n"  # buffered: fails only when flushed
              "    time.sleep(1)\n"
              "    return 0\n"
              "e.main = main\n"
              "e.console()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    proc.stdout.close()  # the reader goes away, like `migrate-tui check | head -0`
    assert proc.wait(60) == 120


def test_the_wizard_gets_the_normal_exit(monkeypatch):
    monkeypatch.setattr(entry, "main", lambda: 0)
    monkeypatch.setattr(entry, "_wizard_started", True)
    with pytest.raises(SystemExit) as exited:
        entry.console()
    assert exited.value.code == 0
