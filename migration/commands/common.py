"""What every headless command shares: options, settings, the demo target, cancellation."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator

from ..errors import OperatorError
from ..settings import Settings, load_settings


def add_target_options(parser: argparse.ArgumentParser, suppress: bool = True) -> None:
    """Options valid both before and after the subcommand (``--demo run`` and ``run --demo``)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--env-file", metavar="PATH", default=default,
                        help="read configuration from this .env file (default: ./.env when present)")
    parser.add_argument("--demo", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="use a throwaway embedded PostgreSQL with sample data instead of DATABASE_URL")
    parser.add_argument("--schema", default=default, help="target schema (default: public)")
    parser.add_argument("--lock-timeout", type=int, metavar="MS", default=default,
                        help="SET LOCAL lock_timeout for changes (default: 5000)")
    parser.add_argument("--statement-timeout", type=int, metavar="MS", default=default,
                        help="SET LOCAL statement_timeout for changes (default: 60000)")
    parser.add_argument("--lock-wait", type=float, metavar="SECONDS", default=default,
                        help="how long to wait for another running migration (default: 10)")


def settings_from_args(args: argparse.Namespace, *, database_url: str | None = None) -> Settings:
    return load_settings(
        getattr(args, "env_file", None),
        schema=getattr(args, "schema", None),
        lock_timeout_ms=getattr(args, "lock_timeout", None),
        statement_timeout_ms=getattr(args, "statement_timeout", None),
        lock_wait_s=getattr(args, "lock_wait", None),
        database_url=database_url,
        demo=bool(getattr(args, "demo", False)),
    )


def print_error(error: OperatorError, out=None) -> None:
    out = out or sys.stderr
    for text in error.lines():
        print(text, file=out, flush=True)


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[Settings]:
    """Settings for the command; with --demo, a demo database lives for the block.

    Password files a killed run left behind (only where no memory file could hold them) go first."""
    from ..children import remove_stale_passfiles

    for path in remove_stale_passfiles():
        print(f"🧹 Removed a password file left by a killed migrate-tui run: {path}", file=sys.stderr, flush=True)
    if not getattr(args, "demo", False):
        yield settings_from_args(args)
        return
    from ..demo import DemoDatabase

    demo = DemoDatabase()
    print("Starting the demo database (embedded PostgreSQL)…", file=sys.stderr, flush=True)
    try:
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


def run_cancellable(work: Callable[[], object], cancel: Callable[[], None],
                    what: str = "stopping the running statement and rolling back") -> tuple[object, bool]:
    """Run ``work`` in a thread; Ctrl+C/SIGTERM/SIGHUP call ``cancel`` and wait for it to wind down.

    Returns (result, interrupted)."""
    box: dict[str, object] = {}
    done = threading.Event()

    def body() -> None:
        try:
            box["result"] = work()
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
                cancel()
    return box.get("result"), interrupted
