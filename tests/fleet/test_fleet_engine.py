"""FleetRun, the engine's fleet operation, driven directly: at most ``concurrency`` targets at once, a wave ends
before the next starts, each target's events arrive tagged with its name, and cancel() before the start runs
nothing."""

from __future__ import annotations

import threading

import pytest
from fleet_support import env_var, table_state, target, write_fleet

from migration.fleet import FleetRun, TargetEvent, TargetFinished, TargetStarted, WaveStarted, read_fleet
from migration.outcome import Outcome

pytestmark = pytest.mark.timeout(120)


def _fleet(tmp_path, dbs, waves):
    path = write_fleet(tmp_path / "fleet.toml", [target(name, waves[name]) for name in dbs], defaults={"drill": False})
    return read_fleet(path, environ={env_var(name): db.url for name, db in dbs.items()})


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_at_most_concurrency_targets_at_once_and_waves_in_order(tmp_path, server18, server15, make_db, concurrency):
    dbs = {f"t{i}": make_db(server18 if i % 2 else server15) for i in range(6)}
    fleet = _fleet(tmp_path, dbs, {name: ("first" if i < 4 else "second") for i, name in enumerate(dbs)})
    events, lock = [], threading.Lock()

    def record(event):
        with lock:
            events.append(event)

    result = FleetRun(fleet, "check", record, concurrency=concurrency).run()
    assert result.outcome is Outcome.SUCCESS and len(result.results) == 6, result
    running, peak, ended = set(), 0, set()
    for event in events:
        if isinstance(event, TargetStarted):
            running.add(event.target)
            peak = max(peak, len(running))
        elif isinstance(event, TargetFinished):
            running.discard(event.target)
            ended.add(event.target)
        elif isinstance(event, WaveStarted) and event.wave == "second":
            assert ended == {"t0", "t1", "t2", "t3"} and not running  # the first wave was over
        elif isinstance(event, TargetEvent):
            assert event.target in running  # a step's event, named by its target, while that target runs
    assert peak <= concurrency and (concurrency == 1 or peak > 1)  # the limit holds, and targets do run together
    assert all(table_state(db) == "absent" for db in dbs.values())  # check changes nothing


def test_cancel_before_the_start_runs_nothing(tmp_path, server18, make_db):
    dbs = {"a": make_db(server18), "b": make_db(server18)}
    fleet_run = FleetRun(_fleet(tmp_path, dbs, {"a": "one", "b": "two"}), "run", concurrency=2)
    fleet_run.cancel()
    result = fleet_run.run()
    assert result.outcome is Outcome.CANCELLED and not result.results
    assert [s.target for s in result.skipped] == ["a", "b"]
    assert all(table_state(db) == "absent" for db in dbs.values())
