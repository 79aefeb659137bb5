"""Fleets: the same migration across many databases (:mod:`.file` the fleet file, :mod:`.pipeline` one target's
operations, :mod:`.run` the waves, :mod:`.shard` splitting a fleet between machines)."""

from ..events.fleet import FleetHeld
from .file import Fleet, FleetFileError, FleetTarget, read_fleet
from .pipeline import ACTIONS, DrillSkipped, TargetEvent, TargetFinished, TargetRun
from .run import DEFAULT_CONCURRENCY, FleetFinished, FleetRun, TargetSkipped, TargetStarted, WaveStarted
from .shard import shard_of, select_shard

__all__ = ["ACTIONS", "DEFAULT_CONCURRENCY", "DrillSkipped", "Fleet", "FleetFileError", "FleetFinished", "FleetHeld",
           "FleetRun", "FleetTarget", "TargetEvent", "TargetFinished", "TargetRun", "TargetSkipped", "TargetStarted",
           "WaveStarted", "read_fleet", "select_shard", "shard_of"]
