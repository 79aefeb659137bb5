"""The rehearsal: the migration, its rollback and the restore of the rollback's safety copy, on the drilled copy.

``Rehearsal(settings, emit, copy, manifest, backup).run()`` takes the copy a passed
:class:`~.drill.Drill` kept (``keep=True``) and runs the real engine operations against it, in
order: :class:`~migration.runner.Migration` (the guide's eight steps with their verification),
:class:`~migration.rollback.Rollback` (safety copy, DROP, verification) and
:class:`~migration.rollback.Restore` (the safety copy back, verified). They connect as the operator's
own role, recreated on the copy with the attributes and memberships it has on the source (a
scratch database: the role of its URL). Their events reach the caller wrapped in :class:`Rehearsed`;
each phase ends with its outcome and timing on real data. The safety copy goes to a private
temporary directory, never the operator's backup directory.

The production database is not touched. The copy is removed when the rehearsal ends, whatever the
outcome; the first phase that does not succeed ends it (the production migration must not start).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from psycopg import sql

from ..backup import manifest as manifests
from ..db import connect_url
from ..errors import MigrateError, OperatorError
from ..events.drill import (
    PhaseResult,
    RehearsalFinished,
    RehearsalPhaseFinished,
    RehearsalPhaseStarted,
    RehearsalStarted,
    Rehearsed,
)
from ..events.migrate import StepFinished
from ..operation import Emit, Operation
from ..options import RollbackOptions
from ..outcome import Outcome
from ..schema import TABLE, Table
from ..settings import Settings
from .local import REHEARSAL_PREFIX, LocalCopy
from .scratch import ScratchCopy

PHASES = ("migrate", "rollback", "restore")
TITLES = {"migrate": "Migration (the guide's 8 steps)", "rollback": "Rollback (safety copy, DROP, verify)",
          "restore": "Restore of the safety copy"}


class Rehearsal(Operation):
    name = "rehearse"
    cancelled_hint = "Nothing was changed on the source; the throwaway copy was removed."

    def __init__(self, settings: Settings, emit: Emit | None, copy: LocalCopy | ScratchCopy, manifest: dict,
                 backup: str | Path | None = None, *, table: Table = TABLE) -> None:
        """``settings``: the production target's (only its schema and timeouts are used); ``copy``: the drilled
        copy, which the rehearsal owns from now on and removes."""
        super().__init__(settings, emit)
        self.copy: LocalCopy | ScratchCopy | None = copy
        self.manifest = manifest
        self.backup = Path(backup) if backup else None
        self.table = table
        self._inner: Operation | None = None
        self._private: str | None = None
        self._results: list[PhaseResult] = []
        self._steps: list[tuple[str, float]] = []
        self._described = copy.describe()

    # -- the lifecycle (migration.operation) ---------------------------------------------------------------
    def _interrupt(self) -> None:
        inner = self._inner
        if inner is not None:
            inner.cancel()

    def _release(self) -> None:
        self._remove()

    def _remove(self) -> bool:
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None
        copy, self.copy = self.copy, None
        return True if copy is None else copy.cleanup()

    def _perform(self) -> RehearsalFinished:
        target = self._copy_settings()
        self.emit(RehearsalStarted(self._described, self.settings.schema, PHASES))
        self._private = tempfile.mkdtemp(prefix=f"{REHEARSAL_PREFIX}{os.getpid()}-")
        from ..rollback import Restore, Rollback
        from ..runner import Migration

        self._phase("migrate", lambda emit: Migration(target, emit, self.table), ok=(Outcome.SUCCESS,
                                                                                               Outcome.NOT_NEEDED))
        rolled = self._phase("rollback", lambda emit: Rollback(target, emit, RollbackOptions(
            backup_dir=Path(self._private), retries=1, backoff_s=0.2, table_backup=True), self.table))
        if rolled.copy is None:
            raise MigrateError(OperatorError("The rehearsed rollback wrote no safety copy to restore.",
                                             "This is a bug in migrate-tui; report it with the audit log."))
        self._phase("restore", lambda emit: Restore(target, rolled.copy.path, emit, self.table))
        total = sum(r.elapsed_ms for r in self._results) / 1000
        return self._finish(Outcome.SUCCESS, f"Rehearsed on a copy of the database: the migration, its rollback and "
                                             f"the restore of the safety copy all succeeded ({total:.1f} s)", None)

    def _copy_settings(self) -> Settings:
        """The operator's role on the copy: recreated with LOGIN and a one-off password (a scratch database: its own)."""
        copy = self.copy
        base = dataclasses.replace(self.settings, env_password=None, demo=False, optional={})
        if copy.scratch:
            return dataclasses.replace(base, database_url=copy.url)
        role = (self.manifest.get("operator_role") or {}).get("name") or self.manifest.get("user")
        if not role or role == copy.server.superuser:
            return dataclasses.replace(base, database_url=copy.admin_url())
        password = secrets.token_urlsafe(18)
        with connect_url(copy.admin_url(), application_name="migrate-tui rehearsal") as conn:
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        return dataclasses.replace(base, database_url=copy.url_as(role, password))

    def _phase(self, phase: str, build, ok: tuple[Outcome, ...] = (Outcome.SUCCESS,)):
        self.check_cancel()
        self.emit(RehearsalPhaseStarted(phase))

        def emit(event) -> None:
            if isinstance(event, StepFinished) and phase == "migrate":
                self._steps.append((event.step.title, event.elapsed_ms))
            self.emit(Rehearsed(phase, event))

        started = time.perf_counter()
        operation = self._inner = build(emit)
        if self.cancelled:  # a cancel that came while the phase was being built
            operation.cancel()
        finished = operation.run()
        self._inner = None
        outcome = Outcome.SUCCESS if finished.outcome in ok else finished.outcome
        result = PhaseResult(phase, outcome, finished.message, (time.perf_counter() - started) * 1000, finished.error)
        self._results.append(result)
        self.emit(RehearsalPhaseFinished(result))
        self.check_cancel()
        if not result.ok:
            error = finished.error or OperatorError(finished.message, "See the rehearsal's steps above.")
            raise _PhaseFailed(phase, error)
        return finished

    def _finish(self, outcome: Outcome, message: str, error: OperatorError | None) -> RehearsalFinished:
        removed = self._remove()
        updated = self._record(outcome, message)
        return RehearsalFinished(outcome, message, error, self.elapsed_ms, tuple(self._results), removed, updated,
                                 tuple(self._steps))

    def _record(self, outcome: Outcome, message: str) -> bool:
        if self.backup is None:
            return False
        try:
            manifests.record(self.backup, "rehearsal", {
                "outcome": outcome.value, "message": message, "copy": self._described,
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "phases": [{"phase": r.phase, "outcome": r.outcome.value, "seconds": round(r.elapsed_ms / 1000, 3),
                            "message": r.message} for r in self._results],
                "steps_ms": {title: round(ms, 1) for title, ms in self._steps}}, self.settings.secrets())
            return True
        except Exception:  # noqa: BLE001 - the rehearsal's result stands without the manifest
            return False

    def _after_error(self, outcome: Outcome, error: OperatorError) -> RehearsalFinished:
        if outcome is Outcome.CANCELLED:
            return self._finish(outcome, "Rehearsal cancelled; nothing was changed on the source and the copy was "
                                "removed", error)
        failed = self._results[-1].phase if self._results and not self._results[-1].ok else None
        where = f"the rehearsed {TITLES[failed].split(' (')[0].lower()} failed on a copy of the database" if failed \
            else "the rehearsal could not run"
        return self._finish(outcome, f"Rehearsal failed: {where}: {error.message}", error)

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = ()) -> RehearsalFinished:
        return self._finish(outcome, message, error)


class _PhaseFailed(MigrateError):
    def __init__(self, phase: str, error: OperatorError) -> None:
        super().__init__(error)
        self.phase = phase
