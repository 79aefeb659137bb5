"""One lifecycle for every operation: the checklist, the backup, the migration, the rollback, the restore.

An operation is constructed with the settings and an ``emit`` callback, then ``run()`` blocks (a
thread, a Textual worker) and emits typed events (:mod:`migration.events`), the last of which is
a :class:`~migration.events.Finished` that ``run()`` also returns. By construction, every operation:

- can be cancelled from any thread, at any moment (:meth:`Operation.cancel` is quick and never
  raises; the running statement or child process is interrupted by the subclass's ``_interrupt``);
- ends in exactly one :class:`~migration.events.Outcome`, decided in one place (:meth:`run`):
  ``Cancelled``/Ctrl+C/a cancel request → CANCELLED, :class:`Busy` → BUSY, :class:`Stop` → its own,
  anything else → FAILED with a message and a fix (:func:`migration.errors.explain`);
- after an error, asks the subclass to read the database back (``_after_error``) before it reports,
  so the report says what the catalog says, never what the code assumed;
- ends every thread it started (:meth:`start_thread`) and releases its connections and children
  before it reports; a child process started with :meth:`start_child` is terminated by
  :meth:`cancel` whatever phase it serves (a dump, its verification), and reaped before the report.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Callable

from .errors import MigrateError, OperatorError, explain
from .outcome import Finished, Outcome
from .settings import Settings

Emit = Callable[[object], None]


class Cancelled(Exception):
    """The operator asked to stop: raised inside an operation at its next check."""


class Stop(Exception):
    """Ends an operation early with this outcome and message (nothing left half done)."""

    def __init__(self, outcome: Outcome, message: str, error: OperatorError | None = None,
                 details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.outcome, self.message, self.error, self.details = outcome, message, error, details


class Busy(MigrateError):
    """Another migrate-tui migration or rollback holds the lock: try again later (outcome BUSY)."""


class Operation:
    name = "operation"  # the audit log's name for it
    cancelled_hint = "Nothing was changed. Run again when ready."

    def __init__(self, settings: Settings, emit: Emit | None = None) -> None:
        self.settings = settings
        self._emit_to = emit or (lambda event: None)
        self._emit_lock = threading.Lock()
        self._cancel = threading.Event()
        self._threads: list[threading.Thread] = []
        self._children: list[subprocess.Popen] = []
        self._children_lock = threading.Lock()
        self._t0 = time.perf_counter()
        self.done = threading.Event()  # set once run() has reported (or ended in any other way)

    # -- for the caller -------------------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Thread-safe, any number of times: stop at the next check and interrupt what runs now."""
        self._cancel.set()
        self._terminate_children()
        try:
            self._interrupt()
        except Exception:  # noqa: BLE001 - whatever runs may just have ended; the flag still stops it
            pass

    def run(self) -> Finished:
        self._t0 = time.perf_counter()
        try:
            result = self._perform()
        except Stop as stop:
            result = self._ended(stop.outcome, stop.message, stop.error, stop.details)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes the last event
            result = self._failed(exc)
        finally:
            self._release_quietly()
            self._reap_children()
            self._join_threads()
        try:
            self.emit_quietly(result)
        finally:
            self.done.set()
        return result

    # -- for the operations ----------------------------------------------------------------------------
    def _perform(self) -> Finished:
        raise NotImplementedError

    def _interrupt(self) -> None:
        """Stop what is running right now (a statement: ``cancel_safe``; a child: terminate)."""

    def _release(self) -> None:
        """Close connections, stop children: called once, whatever the outcome."""

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = ()) -> Finished:
        """The operation's own :class:`Finished` for an ending without an exception of its own."""
        return Finished(outcome, message, error, self.elapsed_ms)

    def _after_error(self, outcome: Outcome, error: OperatorError) -> Finished:
        """The ending after an error or a cancel: read the database back (on a fresh connection) and
        say what it holds. The default knows nothing to read."""
        return self._ended(outcome, "Cancelled; nothing was changed." if outcome is Outcome.CANCELLED
                           else f"Failed: {error.message}", error)

    def _user(self) -> str | None:
        """The database user, for fix hints (None when even reading DATABASE_URL fails)."""
        try:
            return self.settings.target["user"]
        except Exception:  # noqa: BLE001 - explaining a failure must not fail
            return None

    def note_pooler(self, conn, facts):
        """Whether a connection pooler sits between us and the server (:mod:`migration.pooler`); when one
        does, a :class:`~migration.events.PoolerDetected` says what it means for this operation."""
        from .events import PoolerDetected
        from .pooler import detect

        report = detect(conn, self.settings, facts.backend_pid)
        if report.present:
            self.emit(PoolerDetected(self.name, report, report.describe(self.name)))
        return report

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def pause(self, seconds: float) -> None:
        """Wait, unless cancelled meanwhile (then raise Cancelled at once)."""
        if self._cancel.wait(seconds):
            raise Cancelled()

    def emit(self, event) -> None:
        with self._emit_lock:
            self._emit_to(event)

    def emit_quietly(self, event) -> None:
        """The ending always reaches the caller as run()'s return value, even if a consumer fails."""
        try:
            self.emit(event)
        except Exception:  # noqa: BLE001 - e.g. a closed stdout; the work is already done or undone
            pass

    def start_child(self, argv: list[str], **popen) -> subprocess.Popen:
        """A child process (``subprocess.Popen(argv, **popen)``) that :meth:`cancel` terminates; none is
        started once the operation is cancelled (raises Cancelled)."""
        with self._children_lock:
            self.check_cancel()
            proc = subprocess.Popen(argv, **popen)
            self._children.append(proc)
        return proc

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """A helper thread that ends before the operation reports (run() joins it)."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._t0) * 1000

    # -- the one place an outcome is decided ------------------------------------------------------------
    def _failed(self, exc: BaseException) -> Finished:
        if isinstance(exc, (Cancelled, KeyboardInterrupt)) or self.cancelled:
            outcome = Outcome.CANCELLED
            error = OperatorError("Cancelled by the operator.", self.cancelled_hint, "57014")
        elif isinstance(exc, Busy):
            outcome, error = Outcome.BUSY, exc.error
        else:
            outcome = Outcome.FAILED
            error = exc.error if isinstance(exc, MigrateError) else explain(
                exc, user=self._user(), schema=self.settings.schema, secrets=self.settings.secrets())
        try:
            return self._after_error(outcome, error)
        except BaseException as late:  # noqa: BLE001 - reading back must not hide the first failure
            unknown = OperatorError(
                f"{error.message} (and the database could not be read back afterwards: "
                f"{explain(late, secrets=self.settings.secrets()).message})", error.hint, error.sqlstate,
                error.detail)
            return self._ended(outcome, "The outcome could not be confirmed from the catalog.", unknown)

    def _terminate_children(self) -> None:
        with self._children_lock:
            for proc in self._children:
                if proc.poll() is None:
                    try:
                        proc.terminate()
                    except OSError:  # it has just ended
                        pass

    def _reap_children(self) -> None:
        """No child outlives the report: one still running is terminated (killed after 10 s)."""
        with self._children_lock:
            children, self._children = self._children, []
        for proc in children:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def _release_quietly(self) -> None:
        try:
            self._release()
        except Exception:  # noqa: BLE001 - closing is best effort; the server discards open work
            pass

    def _join_threads(self) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        self._threads.clear()
