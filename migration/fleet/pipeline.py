"""One target of a fleet: the same engine operations, in the same order, as a single ``migrate-tui run``
(or ``check``, ``rollback --yes``, ``verify``), as one :class:`~migration.operation.Operation`.

``run``: the checklist (:class:`~migration.preflight.Preflight`; :attr:`Checklist.blocking` is the one rule) →
a verified backup into the target's own directory (:class:`~migration.backup.Backup`) → the restore drill and the
rehearsal on the copy where configured (:class:`~migration.drill.drill.Drill`,
:class:`~migration.drill.rehearsal.Rehearsal`) → the migration (:class:`~migration.runner.Migration`). The first
step that does not succeed ends the target with its outcome; a cancel is passed to the step that runs, so the
target ends fully migrated (the migration had committed) or untouched (everything else rolls back).

Every event of every step reaches the caller as a :class:`TargetEvent` and, with an audit log, is recorded
with the target's name (``target_name``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import OperatorError
from ..operation import Emit, Operation
from ..options import BackupOptions, DrillOptions, RollbackOptions
from ..outcome import Finished, Outcome
from .file import FleetTarget

ACTIONS = ("check", "run", "rollback", "verify")
DRILL_RISK = ("the backup was verified (sha256, complete) but not restored: if it does not load you find out only "
              "when you need it")


@dataclass(frozen=True)
class TargetEvent:
    """An event of one target's step (the step's own event, unchanged)."""

    target: str
    event: Any


@dataclass(frozen=True)
class TargetFinished(Finished):
    """How one target ended: the outcome of the step it ended on (``stage``), with its backup, if one was taken."""

    target: str = ""
    wave: str = ""
    stage: str = ""
    backup_path: str | None = None


class TargetRun(Operation):
    name = "fleet"
    cancelled_hint = "This target was left untouched. Run the fleet again when ready."

    def __init__(self, target: FleetTarget, action: str, emit: Emit | None = None, *, audit=None,
                 backup: BackupOptions | None = None, drill: DrillOptions | None = None,
                 rollback: RollbackOptions | None = None, cascade: bool = False, accept_loss: bool = False) -> None:
        """``cascade`` / ``accept_loss`` (``rollback`` only): what ``migrate-tui rollback --yes --cascade
        [--accept-loss]`` confirms, for this target's own preview (:class:`~migration.rollback.Rollback`)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown fleet action {action!r}")
        super().__init__(target.settings, emit)
        self.target, self.action, self.audit = target, action, audit
        base = backup or BackupOptions()
        self.backup_options = replace(base, backup_dir=Path(base.backup_dir) / target.name)
        drill = drill or DrillOptions()
        self.drill_options = drill if target.drill is None else replace(drill, enabled=target.drill)
        base_rollback = rollback or RollbackOptions()
        self.rollback_options = replace(base_rollback, backup_dir=Path(base_rollback.backup_dir) / target.name)
        self.cascade, self.accept_loss = cascade, accept_loss
        self.stage = "waiting"
        self.backup_path: str | None = None
        self._inner: Operation | None = None
        self._inner_lock = threading.Lock()

    # -- the lifecycle ----------------------------------------------------------------------------------
    def _interrupt(self) -> None:
        with self._inner_lock:
            inner = self._inner
        if inner is not None:
            inner.cancel()

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = ()) -> TargetFinished:
        return TargetFinished(outcome, message, error, self.elapsed_ms, self.target.name, self.target.wave,
                              self.stage, self.backup_path)

    def _after_error(self, outcome: Outcome, error: OperatorError) -> TargetFinished:
        # Each step read its database back already (its own _after_error); between steps nothing was changed.
        if outcome is Outcome.CANCELLED:
            return self._ended(outcome, f"Cancelled ({self.stage}); nothing was changed.", error)
        return self._ended(outcome, error.message, error)

    def _perform(self) -> TargetFinished:
        return getattr(self, f"_{self.action}")()

    # -- the steps --------------------------------------------------------------------------------------
    def _step(self, stage: str, operation: Operation) -> Finished:
        """Run one engine operation as this target's current step (a cancel reaches it)."""
        self.stage = stage
        with self._inner_lock:
            self._inner = operation
        try:
            self.check_cancel()
            return operation.run()
        finally:
            with self._inner_lock:
                self._inner = None

    def _emit_for(self, operation: str) -> Emit:
        name = self.target.name

        def forward(event) -> None:
            self.emit(TargetEvent(name, event))

        if self.audit is None:
            return forward
        return self.audit.tap(self.settings, operation, forward, target_name=name)

    def _stop(self, result: Finished) -> TargetFinished:
        return self._ended(result.outcome, result.message, result.error)

    def _checklist(self):
        from ..preflight import Preflight

        preflight = Preflight(self.settings, self._emit_for("check"), options=self.backup_options,
                              with_backup=True, drill=self.drill_options)
        result = self._step("checklist", preflight)
        checklist = preflight.checklist
        if result.outcome is Outcome.FAILED and checklist.blocking:
            first = checklist.blocking[0]
            error = OperatorError(f"{first.name}: {first.detail}", first.hint or "Fix it, then run again.")
            return checklist, self._ended(Outcome.FAILED, f"checklist failed: {first.name}: {first.detail}", error)
        if not result.ok:
            return checklist, self._stop(result)
        return checklist, None

    def _check(self) -> TargetFinished:
        checklist, stop = self._checklist()
        if stop is not None:
            return stop
        if checklist.table_state == "valid":
            return self._ended(Outcome.NOT_NEEDED, "already migrated: the table is there and valid")
        return self._ended(Outcome.SUCCESS, f"checklist passed: {checklist.summary()}")

    def _run(self) -> TargetFinished:
        from ..backup import Backup
        from ..runner import Migration

        checklist, stop = self._checklist()
        if stop is not None:
            return stop
        if checklist.table_state != "valid":  # as `run`: an already migrated target needs no backup
            backup = Backup(self.settings, self._emit_for("backup"), self.backup_options, tool=checklist.pg_dump)
            result = self._step("backup", backup)
            if not result.ok:
                return self._stop(result)
            self.backup_path = result.path
            result = self._prove(result.path, checklist.database_bytes)
            if result is not None and not result.ok:
                return self._stop(result)
        result = self._step("migration", Migration(self.settings, self._emit_for("migrate")))
        return self._stop(result)

    def _prove(self, path: str, database_bytes: int | None) -> Finished | None:
        """The drill, then the rehearsal on its copy, where configured; a skip is recorded as `run` records it."""
        from ..drill.drill import Drill
        from ..drill.rehearsal import Rehearsal

        options = self.drill_options
        if not options.wanted(database_bytes):
            reason = "drill = false in the fleet file" if self.target.drill is False else (
                "--skip-drill" if options.enabled is False else "the database is above the drill size limit")
            self._record_skip(path, reason)
            return None
        drill = Drill(self.settings, self._emit_for("drill"), path, options, keep=options.rehearse)
        try:
            result = self._step("drill", drill)
            if not result.ok or not options.rehearse or drill.copy is None:
                return result
            rehearsal = Rehearsal(self.settings, self._emit_for("rehearse"), drill.copy, drill.manifest, drill.backup)
            drill.copy = None  # the rehearsal owns it now, and removes it
            return self._step("rehearsal", rehearsal)
        finally:
            if drill.copy is not None:
                drill.copy.cleanup()

    def _record_skip(self, path: str, reason: str) -> None:
        from ..backup.manifest import record

        entry = {"skipped": True, "reason": reason, "risk": DRILL_RISK}
        self.emit(TargetEvent(self.target.name, DrillSkipped(reason, DRILL_RISK)))
        if self.audit is not None:
            self.audit.record(self.settings, "drill", "DrillSkipped", target_name=self.target.name, **entry)
        for key in ("drill", "rehearsal"):
            try:
                record(Path(path), key, entry, self.settings.secrets())
            except Exception:  # noqa: BLE001 - the skip is in the output and the audit log already
                pass

    def _rollback(self) -> TargetFinished:
        from ..rollback import Rollback

        rollback = Rollback(self.settings, self._emit_for("rollback"), self.rollback_options, cascade=self.cascade,
                            accept_loss=self.accept_loss)
        result = self._step("rollback", rollback)
        copy = getattr(result, "copy", None)
        self.backup_path = getattr(copy, "path", None)
        preview = getattr(result, "preview", None)
        dependents = preview.dependents if preview is not None and result.outcome is Outcome.SUCCESS else ()
        if not dependents:
            return self._stop(result)
        # Dropped with CASCADE (confirmed by --cascade): the summary says so first, as `rollback` lists them.
        lost = sum(1 for d in dependents if not d.recoverable or copy is None)
        what = f"dropped with {len(dependents)} dependent object(s) (CASCADE" + (
            f"; {lost} NOT recoverable" if lost else "") + "): "
        return self._ended(result.outcome, what + result.message, result.error)

    def _verify(self) -> TargetFinished:
        from ..verify import Verify

        return self._stop(self._step("verify", Verify(self.settings, self._emit_for("verify"))))


@dataclass(frozen=True)
class DrillSkipped:
    """The drill and the rehearsal of this target were skipped (the risk stated)."""

    reason: str
    risk: str

