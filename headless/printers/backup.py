"""Headless output of a backup: a live bar on a terminal, plain lines otherwise, then path, size, sha256."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from migration.events import BackupFinished, BackupProgress, BackupStarted, BackupVerifying, Outcome, PoolerDetected

from ..running import print_error


class BackupView:
    """Prints backup events: a live bar on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO | None = None, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._last_line = 0.0
        self._last_decile = -1
        self._last_table: str | None = None
        self._bar_shown = False

    def line(self, text: str = "") -> None:
        if self._bar_shown:
            self.out.write("\r\x1b[2K")
            self._bar_shown = False
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        from migration.backup import human_bytes

        if isinstance(event, BackupStarted):
            for path in event.removed:
                self.line(f"🧹 Removed a temporary file left by a killed run: {path}")
            jobs = f", {event.jobs} jobs" if event.jobs > 1 else ""
            packed = f", compression {event.compression}" if event.compression else ""
            self.line(f"💾 Backing up {event.database} ({human_bytes(event.database_bytes)}, "
                      f"{event.tables_total} tables) with pg_dump {event.tool.version}, {event.format} format"
                      f"{jobs}{packed}")
            self.line(f"  To: {event.path}")
        elif isinstance(event, PoolerDetected):
            self.line(f"🔀 Connection pooler — {event.text}")
        elif isinstance(event, BackupProgress):
            self.progress(event, human_bytes)
        elif isinstance(event, BackupVerifying):
            self.line(f"  Verifying: {event.method}…")
        elif isinstance(event, BackupFinished):
            self.finished(event, human_bytes)

    def progress(self, event, human_bytes) -> None:
        eta = f"ETA {_clock(event.eta_s)}" if event.eta_s is not None else "ETA --:--"
        current = ", ".join(event.running) if len(event.running) > 1 else (event.current_table or "")  # --jobs N
        text = (f"{event.fraction * 100:3.0f}%  {event.tables_done}/{event.tables_total} tables  "
                f"{human_bytes(event.bytes_written)}  {eta}  {current}").rstrip()
        if self.tty:
            width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
            filled = int(event.fraction * 20)
            bar = f"  [{'█' * filled}{'·' * (20 - filled)}] {text}"
            self.out.write("\r\x1b[2K" + bar[:width])
            self.out.flush()
            self._bar_shown = True
            return
        decile = int(event.fraction * 10)
        now = time.monotonic()
        changed = event.current_table != self._last_table and now - self._last_line >= 2.0
        if decile > self._last_decile or changed:
            self._last_decile = max(decile, self._last_decile)
            self._last_table = event.current_table
            self._last_line = now
            self.line(f"  {text}")

    def finished(self, event, human_bytes) -> None:
        if event.ok:
            self.line(f"✓ Backup written and verified: {event.path}")
            self.line(f"  Size: {human_bytes(event.size)} ({event.size:,} bytes)")
            self.line(f"  SHA-256: {event.sha256}" + ("  (of its files' sha256 list)" if event.path and
                                                        event.path.endswith(".dir") else ""))
            if event.tables:
                self.line(f"  Rows: {event.rows:,} in {event.tables} tables (counted from the dump)")
            self.line(f"  Manifest: {event.manifest}")
            self.line(f"  Took {event.elapsed_s:.1f} s (verification {event.verify_s:.2f} s)")
        elif event.outcome is Outcome.CANCELLED:
            self.line(f"⏹  {event.message}.")
        else:
            kept = "the partial file was deleted" if "partial file was deleted" in event.message \
                else "no backup file was kept"
            self.line(f"✗ Backup failed — {kept}.")  # the error lines below say why
            if event.error is not None:
                print_error(event.error, self.out)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"
