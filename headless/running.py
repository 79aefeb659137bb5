"""What every headless command shares when it runs: the target (or the demo database), printing errors,
and running an engine operation so that Ctrl+C, SIGTERM and SIGHUP cancel it cleanly."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Iterator

from migration.errors import OperatorError
from migration.outcome import Finished
from migration.settings import Settings

from .options import settings_from_args


def print_error(error: OperatorError, out=None) -> None:
    out = out or sys.stderr
    for text in error.lines():
        print(text, file=out, flush=True)


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[Settings]:
    """Settings for the command; with --demo, a demo database lives for the block.

    Password files a killed run left behind (only where no memory file could hold them) go first."""
    from migration.children import remove_stale_passfiles
    from migration.drill.local import remove_stale

    for path in remove_stale_passfiles():
        print(f"🧹 Removed a password file left by a killed migrate-tui run: {path}", file=sys.stderr, flush=True)
    for path in remove_stale():
        print(f"🧹 Removed a throwaway server left by a killed drill: {path}", file=sys.stderr, flush=True)
    if not getattr(args, "demo", False):
        yield settings_from_args(args)
        return
    from migration.demo import DemoDatabase

    demo = DemoDatabase()
    print("Starting the demo database (embedded PostgreSQL)…", file=sys.stderr, flush=True)
    try:
        with interrupts_raise():
            url = demo.start()
        yield settings_from_args(args, database_url=url)
    finally:
        demo.stop()


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP behave like Ctrl+C (KeyboardInterrupt) for the block."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_cancellable(operation, what: str = "stopping the running statement and rolling back") -> Finished:
    """Run an engine operation in a thread; Ctrl+C/SIGTERM/SIGHUP call its ``cancel()`` and wait for it
    to wind down. Returns its Finished (the operation always produces one)."""
    box: dict[str, Finished] = {}
    done = threading.Event()

    def body() -> None:
        try:
            box["result"] = operation.run()
        finally:
            done.set()

    thread = threading.Thread(target=body, name="migrate-tui-engine", daemon=True)
    interrupted = False
    with interrupts_raise():
        thread.start()
        # Not thread.join()/is_alive(): on Python 3.11 a KeyboardInterrupt inside join() can mark a
        # running thread as stopped (threading bpo-45274 handling), and we would exit mid-rollback.
        while not done.is_set():
            try:
                done.wait(0.1)
            except KeyboardInterrupt:
                if not interrupted:
                    print(f"\nCancelling: {what}…", file=sys.stderr, flush=True)
                interrupted = True
                operation.cancel()
    return box["result"]
