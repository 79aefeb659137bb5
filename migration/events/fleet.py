"""Events of a fleet run that a front end steering it needs (:class:`migration.fleet.FleetRun`); the waves' and
targets' own events (WaveStarted, TargetStarted, TargetEvent, TargetFinished, TargetSkipped) live with it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FleetHeld:
    """No target of the fleet runs now and none starts until ``FleetRun.go()`` (or ``cancel()``).

    ``after_wave``: the wave that has just ended (the fleet stops after every wave: ``wave_by_wave``), or None when
    ``hold()`` paused the fleet inside ``wave`` once its running targets had finished. ``waiting``: the targets
    that start on ``go()``, in file order."""

    wave: str
    waiting: tuple[str, ...]
    after_wave: str | None = None
