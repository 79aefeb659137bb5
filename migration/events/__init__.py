"""Typed events of every operation — the checklist, the backup, the migration, the rollback and the
restore — consumed alike by the wizard, the headless printers and the audit log.

Every operation ends with one event that is a :class:`Finished` (an :class:`Outcome`, a message,
an error with its fix); :mod:`migration.exit_codes` maps the outcome to the exit code.
"""

from .backup import BackupEvent, BackupFinished, BackupProgress, BackupStarted, BackupVerifying
from .checklist import CheckCompleted, Checklist, ChecklistEvent, ChecklistFinished, CheckResult, Status
from .drill import (
    Difference,
    DrillCompared,
    DrillEvent,
    DrillFinished,
    DrillPhase,
    DrillProgress,
    DrillStarted,
    DrillTableChecked,
    PhaseResult,
    RehearsalEvent,
    RehearsalFinished,
    RehearsalPhaseFinished,
    RehearsalPhaseStarted,
    RehearsalStarted,
    Rehearsed,
    TableCheck,
)
from .migrate import (
    MigrateEvent,
    RunFinished,
    RunStarted,
    Step,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from ..outcome import Finished, Notice, Outcome
from .fleet import FleetHeld
from .pooler import PoolerDetected
from .rollback import (
    Blocker,
    Dependent,
    Dropped,
    LockAcquired,
    LockTimedOut,
    Preview,
    PreviewReady,
    RestoreEvent,
    RestoreFinished,
    RestoreStarted,
    RollbackEvent,
    RollbackFinished,
    RollbackStarted,
    SafetyCopy,
    SafetyCopyFinished,
    SafetyCopySkipped,
    SafetyCopyStarted,
    Verified,
    WaitingForLock,
)

from .verify import TableDescribed, TableListed, VerifyEvent, VerifyFinished, VerifyStarted

Event = MigrateEvent  # the migration's events (the name most screens and printers mean)

__all__ = [
    "BackupEvent", "BackupFinished", "BackupProgress", "BackupStarted", "BackupVerifying", "Blocker",
    "CheckCompleted", "CheckResult", "Checklist", "ChecklistEvent", "ChecklistFinished", "Dependent", "Difference",
    "DrillCompared", "DrillEvent", "DrillFinished", "DrillPhase", "DrillProgress", "DrillStarted", "DrillTableChecked",
    "PhaseResult", "RehearsalEvent", "RehearsalFinished", "RehearsalPhaseFinished", "RehearsalPhaseStarted",
    "RehearsalStarted", "Rehearsed", "TableCheck", "Dropped",
    "Event", "Finished", "FleetHeld", "LockAcquired", "LockTimedOut", "MigrateEvent", "Notice", "Outcome", "Preview",
    "PoolerDetected", "PreviewReady", "RestoreEvent", "RestoreFinished", "RestoreStarted", "RollbackEvent",
    "RollbackFinished", "RollbackStarted", "RunFinished", "RunStarted", "SafetyCopy", "SafetyCopyFinished",
    "SafetyCopySkipped", "SafetyCopyStarted", "Status", "Step", "StepFailed", "StepFinished", "StepSkipped",
    "StepStarted", "TableDescribed", "TableListed", "Verified", "VerifyEvent", "VerifyFinished", "VerifyStarted",
    "WaitingForLock",
]
