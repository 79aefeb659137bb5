"""A fleet run: every target of a fleet through the same engine operations, wave after wave.

``FleetRun(fleet, action, emit, ...)`` is an :class:`~migration.operation.Operation`: ``run()`` blocks and returns
a :class:`FleetFinished` (also its last event); ``cancel()`` (any thread: Ctrl+C, SIGTERM) cancels every target
that runs — each ends fully migrated or untouched — and starts no other.

- Waves run in file order (:attr:`Fleet.waves`); inside a wave up to ``concurrency`` targets run at once, each a
  :class:`~.pipeline.TargetRun` in a thread of its own.
- A wave with a target that did not end ok (failed, busy, cancelled) stops the later waves — the earlier ones are
  the canaries — unless ``keep_going``; their targets are reported as skipped.
- A front end can steer it (any thread): ``hold()`` starts no new target once those running have finished (then
  :class:`~migration.events.FleetHeld`), ``go()`` starts them again; with ``wave_by_wave`` the fleet holds after
  every wave that succeeded until ``go()`` (the wizard: the operator starts each wave). ``cancel()`` also ends a
  hold: whatever has not started is skipped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..errors import OperatorError, explain
from ..events.fleet import FleetHeld
from ..operation import Emit, Operation
from ..options import DEFAULT_FLEET_CONCURRENCY, BackupOptions, DrillOptions, RollbackOptions
from ..outcome import Finished, Outcome
from .file import Fleet, FleetTarget
from .pipeline import TargetFinished, TargetRun

DEFAULT_CONCURRENCY = DEFAULT_FLEET_CONCURRENCY


@dataclass(frozen=True)
class WaveStarted:
    wave: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class TargetStarted:
    target: str
    wave: str
    url: str  # masked


@dataclass(frozen=True)
class TargetSkipped:
    """Not attempted: an earlier wave failed (without keep_going) or the fleet was cancelled first."""

    target: str
    wave: str
    reason: str


@dataclass(frozen=True)
class FleetFinished(Finished):
    results: tuple[TargetFinished, ...] = ()
    skipped: tuple[TargetSkipped, ...] = ()


def fleet_outcome(results, cancelled: bool) -> Outcome:
    """One outcome for the fleet: cancelled, else failed if any failed, else busy if any was busy, else ok."""
    outcomes = {r.outcome for r in results}
    if cancelled or Outcome.CANCELLED in outcomes:
        return Outcome.CANCELLED
    if outcomes - {Outcome.SUCCESS, Outcome.NOT_NEEDED, Outcome.BUSY}:
        return Outcome.FAILED
    if Outcome.BUSY in outcomes:
        return Outcome.BUSY
    if outcomes and outcomes <= {Outcome.NOT_NEEDED}:
        return Outcome.NOT_NEEDED
    return Outcome.SUCCESS


class FleetRun(Operation):
    name = "fleet"
    cancelled_hint = "Targets that had not finished were rolled back and left untouched. Run the fleet again."

    def __init__(self, fleet: Fleet, action: str, emit: Emit | None = None, *, concurrency: int = DEFAULT_CONCURRENCY,
                 keep_going: bool = False, wave_by_wave: bool = False, audit=None, backup: BackupOptions | None = None,
                 drill: DrillOptions | None = None, rollback: RollbackOptions | None = None, cascade: bool = False,
                 accept_loss: bool = False) -> None:
        super().__init__(fleet.targets[0].settings if fleet.targets else None, emit)  # type: ignore[arg-type]
        self.fleet, self.action = fleet, action
        self.concurrency = max(1, int(concurrency))
        self.keep_going = keep_going
        self.wave_by_wave = wave_by_wave
        self._held = False
        self._options = dict(audit=audit, backup=backup, drill=drill, rollback=rollback, cascade=cascade,
                             accept_loss=accept_loss)
        self._running: dict[str, TargetRun] = {}
        self._lock = threading.RLock()  # an event consumer may steer (hold, go) from inside emit
        self._changed = threading.Condition(self._lock)
        self.results: list[TargetFinished] = []
        self.skipped: list[TargetSkipped] = []

    # -- steering (any thread) ---------------------------------------------------------------------------
    def hold(self) -> None:
        """Start no new target: those running finish, then the fleet waits for :meth:`go` (FleetHeld)."""
        with self._lock:
            self._held = True
            self._changed.notify_all()

    def go(self) -> None:
        """Start targets again: the rest of the wave that was held, or the next wave."""
        with self._lock:
            self._held = False
            self._changed.notify_all()

    @property
    def held(self) -> bool:
        return self._held

    # -- the lifecycle ----------------------------------------------------------------------------------
    def _interrupt(self) -> None:
        with self._lock:
            running = list(self._running.values())
            self._changed.notify_all()
        for target_run in running:
            target_run.cancel()

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = ()) -> FleetFinished:
        return FleetFinished(outcome, message, error, self.elapsed_ms, tuple(self.results), tuple(self.skipped))

    def _failed(self, exc: BaseException) -> FleetFinished:
        # Only a defect of the fleet's own bookkeeping gets here (each target reports its own ending): say so.
        error = explain(exc, secrets=self.fleet.secrets())
        outcome = Outcome.CANCELLED if self.cancelled else Outcome.FAILED
        return self._ended(outcome, error.message, error)

    def _perform(self) -> FleetFinished:
        stopped: str | None = None
        waves = self.fleet.waves
        for index, wave in enumerate(waves):
            targets = [t for t in self.fleet.targets if t.wave == wave]
            if self.cancelled:
                stopped = "the fleet was cancelled before this wave"
            if stopped is not None:
                self.skipped.extend(TargetSkipped(t.name, wave, stopped) for t in targets)
                for item in self.skipped[-len(targets):]:
                    self.emit(item)
                continue
            self.emit(WaveStarted(wave, tuple(t.name for t in targets)))
            ended = self._wave(targets)
            if self.cancelled:
                stopped = "the fleet was cancelled before this wave"
            elif not self.keep_going and any(not r.ok for r in ended):
                failed = ", ".join(r.target for r in ended if not r.ok)
                stopped = f"wave '{wave}' did not succeed ({failed}); pass --keep-going to go on anyway"
            elif index + 1 < len(waves) and (self.wave_by_wave or self._held):
                self._hold_after(wave, waves[index + 1])
        outcome = fleet_outcome(self.results, self.cancelled)
        return self._ended(outcome, self._message(outcome))

    def _message(self, outcome: Outcome) -> str:
        counts: dict[str, int] = {}
        for r in self.results:
            key = {"success": "ok"}.get(r.outcome.value, r.outcome.value)
            counts[key] = counts.get(key, 0) + 1
        if self.skipped:
            counts["skipped"] = len(self.skipped)
        text = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()) or "no target"
        return f"{self.action}: {text}"

    def _hold_after(self, wave: str, following: str) -> None:
        """Between waves: wait for go() (or cancel())."""
        waiting = tuple(t.name for t in self.fleet.targets if t.wave == following)
        with self._lock:
            self._held = True
            self.emit(FleetHeld(following, waiting, after_wave=wave))
            while self._held and not self.cancelled:
                self._changed.wait(0.5)

    # -- one wave ---------------------------------------------------------------------------------------
    def _wave(self, targets: list[FleetTarget]) -> list[TargetFinished]:
        pending = list(targets)
        ended: list[TargetFinished] = []
        threads: list[threading.Thread] = []
        announced = False  # FleetHeld said for this hold
        while True:
            with self._lock:
                while pending and len(self._running) < self.concurrency and not self.cancelled and not self._held:
                    target = pending.pop(0)
                    target_run = TargetRun(target, self.action, self.emit, **self._options)
                    self._running[target.name] = target_run
                    self.emit(TargetStarted(target.name, target.wave, target.masked_url))
                    thread = threading.Thread(target=self._one, args=(target_run, ended),
                                              name=f"migrate-tui-fleet-{target.name}", daemon=True)
                    threads.append(thread)
                    thread.start()
                if not self._running and (not pending or self.cancelled):
                    break
                if self._held and not self._running and not announced:
                    self.emit(FleetHeld(targets[0].wave, tuple(t.name for t in pending)))
                announced = self._held and not self._running
                self._changed.wait(0.5)
        for thread in threads:
            thread.join()
        for target in pending:  # cancelled before they started
            skip = TargetSkipped(target.name, target.wave, "the fleet was cancelled before this target started")
            self.skipped.append(skip)
            self.emit(skip)
        return ended

    def _one(self, target_run: TargetRun, ended: list[TargetFinished]) -> None:
        started = time.perf_counter()
        try:
            result = target_run.run()
        except BaseException as exc:  # noqa: BLE001 - run() reports every ending; this is a last resort
            error = explain(exc, secrets=target_run.settings.secrets())
            result = TargetFinished(Outcome.FAILED, error.message, error, (time.perf_counter() - started) * 1000,
                                    target_run.target.name, target_run.target.wave, target_run.stage)
        with self._lock:
            ended.append(result)
            self.results.append(result)
            self._running.pop(target_run.target.name, None)
            self._changed.notify_all()
