"""What the Fleet screen shows, kept from a fleet run's events: each target's live state and its log lines (what
``migrate-tui fleet FILE run`` prints for it), the wave in progress, the counts, the ending.

:class:`FleetBoard` knows no widget: :meth:`FleetBoard.apply` takes one event of
:class:`migration.fleet.FleetRun` and returns the name of the target it changed (None: the fleet's own state).
Every text is the engine's (masked URLs, messages with the password redacted); ``deterministic`` leaves out
durations (snapshots).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migration.events import FleetHeld
    from migration.fleet import Fleet, FleetFinished

# How a target stands: the counts above the table group them so.
IDLE, QUEUED, RUNNING, OK, NOT_NEEDED, FAILED, CANCELLED, SKIPPED = (
    "idle", "queued", "running", "ok", "not_needed", "failed", "cancelled", "skipped")
WAITING = (IDLE, QUEUED)


@dataclass
class TargetRow:
    name: str
    wave: str
    url: str  # masked
    state: str = "not started"
    kind: str = IDLE
    log: list[str] = field(default_factory=list)


@dataclass
class FleetBoard:
    fleet: "Fleet"
    deterministic: bool = False
    rows: dict[str, TargetRow] = field(default_factory=dict)
    wave: str | None = None  # the wave in progress (or the last one that ran)
    held: "FleetHeld | None" = None  # what the fleet waits for (None: it does not wait)
    pausing: bool = False  # hold() asked, the running targets finish
    finished: "FleetFinished | None" = None
    started: bool = False

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rows = {t.name: TargetRow(t.name, t.wave, t.masked_url) for t in self.fleet.targets}
        self.wave, self.held, self.pausing, self.finished, self.started = None, None, False, None, False

    def start(self) -> None:
        """The run starts: every target waits for its wave."""
        self.reset()
        self.started = True
        for row in self.rows.values():
            row.state = f"waiting for wave {row.wave}"

    # -- the fleet's state --------------------------------------------------------------------------
    @property
    def waves(self) -> tuple[str, ...]:
        return self.fleet.waves

    @property
    def running(self) -> bool:
        return self.started and self.finished is None

    def counts(self) -> dict[str, int]:
        counts = {OK: 0, NOT_NEEDED: 0, FAILED: 0, "waiting": 0, RUNNING: 0, CANCELLED: 0, SKIPPED: 0}
        for row in self.rows.values():
            counts["waiting" if row.kind in WAITING else row.kind] += 1
        return counts

    def counts_line(self) -> str:
        c = self.counts()
        parts = [f"ok {c[OK]}", f"not needed {c[NOT_NEEDED]}", f"failed {c[FAILED]}", f"waiting {c['waiting']}"]
        parts += [f"{label} {c[key]}" for key, label in ((RUNNING, "running"), (CANCELLED, "cancelled"),
                                                        (SKIPPED, "not started")) if c[key]]
        return " · ".join(parts)

    def wave_line(self) -> str:
        """The wave in progress, or what the fleet waits for."""
        total = len(self.waves)
        if not self.started:
            return f"Press s to start the first wave ({self.waves[0]})." if self.waves else "No target."
        if self.finished is not None:
            message = self.finished.message.split(": ", 1)[-1]
            return f"Fleet finished: {message}."
        if self.held is not None:
            held = self.held
            count = f"{len(held.waiting)} target{'s' if len(held.waiting) != 1 else ''}"
            if held.after_wave is not None:
                failed = sum(r.kind == FAILED for r in self.rows.values() if r.wave == held.after_wave)
                done = f"done, {failed} failed" if failed else "done"  # (--keep-going: the header says it)
                return f"Wave {held.after_wave} {done}. Press n to start wave {held.wave} ({count})."
            return f"Paused in wave {held.wave}: {count} not started. Press p to resume."
        if self.wave is None:
            return "Starting…"
        number = self.waves.index(self.wave) + 1 if self.wave in self.waves else 0
        line = f"Wave {number} of {total}: {self.wave} running"
        if self.pausing:
            line += " — pausing: the running targets finish, no other starts"
        return line

    # -- events -------------------------------------------------------------------------------------
    def apply(self, event) -> str | None:
        from migration.events import FleetHeld
        from migration.fleet import (
            FleetFinished,
            TargetEvent,
            TargetFinished,
            TargetSkipped,
            TargetStarted,
            WaveStarted,
        )

        if isinstance(event, WaveStarted):
            self.wave, self.held = event.wave, None
            for name in event.targets:
                self._set(name, "queued", QUEUED)
            return None
        if isinstance(event, FleetHeld):
            self.held, self.pausing = event, False
            return None
        if isinstance(event, FleetFinished):
            self.finished, self.held, self.pausing = event, None, False
            return None
        if isinstance(event, TargetStarted):
            row = self.rows[event.target]
            self.held = None
            row.log.append(f"▶ run {event.url}")
            self._set(event.target, "checking", RUNNING)
            return event.target
        if isinstance(event, TargetEvent):
            self._step(self.rows[event.target], event.event)
            return event.target
        if isinstance(event, TargetFinished):
            self._finished(self.rows[event.target], event)
            return event.target
        if isinstance(event, TargetSkipped):
            row = self.rows[event.target]
            reason = event.reason.split(";")[0]  # the command line's advice (--keep-going) is not the wizard's
            row.log.append(f"⏭ Not started: {reason}.")
            self._set(event.target, f"not started: {reason}", SKIPPED)
            return event.target
        return None

    def _set(self, name: str, state: str, kind: str) -> None:
        row = self.rows[name]
        row.state, row.kind = state, kind

    def _took(self, ms: float) -> str:
        return "" if self.deterministic else f" ({ms / 1000:.1f} s)" if ms >= 1000 else f" ({ms:.0f} ms)"

    def _step(self, row: TargetRow, event) -> None:  # noqa: C901 - one branch per event type, in run's order
        from migration.backup import human_bytes
        from migration.events import (
            BackupFinished,
            BackupProgress,
            BackupStarted,
            BackupVerifying,
            CheckCompleted,
            ChecklistFinished,
            DrillFinished,
            DrillStarted,
            Notice,
            PoolerDetected,
            RehearsalFinished,
            RehearsalStarted,
            RunFinished,
            RunStarted,
            StepFailed,
            StepFinished,
            StepSkipped,
            StepStarted,
        )
        from migration.fleet import DrillSkipped

        log = row.log
        if isinstance(event, CheckCompleted):
            result = event.result
            mark = {"ok": "✓", "info": "ℹ", "warning": "⚠", "failure": "✗"}[result.status.value]
            log.append(f"  {mark} {result.name}: {result.detail}")
            if result.hint and result.status.value in ("warning", "failure"):
                log.append(f"      Fix: {result.hint}")
        elif isinstance(event, ChecklistFinished):
            log.append(f"{'✓' if event.ok else '✗'} Checklist: {event.message}")
        elif isinstance(event, BackupStarted):
            log.append(f"Backup to {event.path}")
            row.state = "backing up 0%"
        elif isinstance(event, BackupProgress):
            row.state = f"backing up {int(event.fraction * 100)}%"
        elif isinstance(event, BackupVerifying):
            row.state = "verifying the backup"
        elif isinstance(event, BackupFinished):
            if event.ok:
                log.append(f"✓ Backup: {event.path} ({human_bytes(event.size)}, sha256 {str(event.sha256)[:12]}…)"
                           f"{self._took(event.elapsed_ms)}")
                row.state = "backed up"
        elif isinstance(event, DrillSkipped):
            log.append(f"⚠ Drill and rehearsal skipped ({event.reason}). Risk: {event.risk}.")
        elif isinstance(event, DrillStarted):
            row.state = "drilling"
        elif isinstance(event, RehearsalStarted):
            row.state = "rehearsing"
        elif isinstance(event, (DrillFinished, RehearsalFinished)):
            what = "Drill" if isinstance(event, DrillFinished) else "Rehearsal"
            log.append(f"{'✓' if event.ok else '✗'} {what}: {event.message}{self._took(event.elapsed_ms)}")
        elif isinstance(event, RunStarted):
            log.append(f"Migration of {event.masked_url} (schema {event.schema})")
            row.state = "migrating"
        elif isinstance(event, StepStarted):
            row.state = f"migrating step {int(event.step)}/8"
        elif isinstance(event, StepFinished):
            if not event.quiet:
                took = self._took(event.elapsed_ms)
                log.append(f"  ✓ {int(event.step)}/8 {event.step.title}: {event.message}{took}")
        elif isinstance(event, StepSkipped):
            log.append(f"  – {int(event.step)}/8 {event.step.title}: {event.reason}")
        elif isinstance(event, StepFailed):
            log.append(f"  ✗ {int(event.step)}/8 {event.step.title}: {event.error.message}")
        elif isinstance(event, RunFinished):
            log.append(f"{'✓' if event.ok else '✗'} Migration: {event.message}")
        elif isinstance(event, PoolerDetected):
            log.append(f"ℹ {event.text}")
        elif isinstance(event, Notice):
            log.append(f"ℹ {event.message}")

    def _finished(self, row: TargetRow, event) -> None:
        from migration.outcome import Outcome

        took = self._took(event.elapsed_ms)
        if event.outcome is Outcome.SUCCESS:
            row.state, row.kind = "done", OK
            row.log.append(f"✅ ok{took}: {event.message}")
        elif event.outcome is Outcome.NOT_NEEDED:
            row.state, row.kind = "not needed: already migrated", NOT_NEEDED
            row.log.append(f"✅ not needed{took}: {event.message}")
        elif event.outcome is Outcome.CANCELLED:
            row.state, row.kind = f"cancelled: {event.message}", CANCELLED
            row.log.append(f"⛔ cancelled at the {event.stage}{took}: {event.message}")
        else:
            word = "busy" if event.outcome is Outcome.BUSY else "failed"
            reason = event.error.message if event.error is not None else event.message
            row.state, row.kind = f"{word}: {' '.join(reason.split())}", FAILED
            row.log.append(f"{'⏳' if word == 'busy' else '❌'} {word} at the {event.stage}{took}")
        if event.error is not None and not event.ok and event.outcome is not Outcome.CANCELLED:
            row.log.extend(event.error.lines())
