"""FleetRun, the engine's fleet operation, driven directly: at most ``concurrency`` targets at once, a wave ends
before the next starts, each target's events arrive tagged with its name, and cancel() before the start runs
nothing."""

from __future__ import annotations

import threading

import pytest
from fleet_support import env_var, table_state, target, write_fleet

from migration.fleet import FleetHeld, FleetRun, TargetEvent, TargetFinished, TargetStarted, WaveStarted, read_fleet
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


class _Recorder:
    """The events of a FleetRun run in a thread of its own; ``on(type, action)`` acts on the first such event."""

    def __init__(self) -> None:
        self.events: list = []
        self.lock = threading.Condition()
        self.actions: dict[type, object] = {}

    def __call__(self, event) -> None:
        action = self.actions.pop(type(event), None)
        if action is not None:
            action(event)
        with self.lock:
            self.events.append(event)
            self.lock.notify_all()

    def wait_for(self, kind: type, timeout: float = 60):
        with self.lock:
            assert self.lock.wait_for(lambda: any(isinstance(e, kind) for e in self.events), timeout), kind
            return next(e for e in self.events if isinstance(e, kind))

    def started(self) -> list[str]:
        with self.lock:
            return [e.target for e in self.events if isinstance(e, TargetStarted)]


def test_wave_by_wave_holds_after_each_wave_until_go(tmp_path, server18, make_db):
    dbs = {"a": make_db(server18), "b": make_db(server18), "c": make_db(server18)}
    recorder = _Recorder()
    fleet_run = FleetRun(_fleet(tmp_path, dbs, {"a": "one", "b": "two", "c": "two"}), "run", recorder,
                         concurrency=2, wave_by_wave=True)
    results = []
    thread = threading.Thread(target=lambda: results.append(fleet_run.run()))
    thread.start()
    held = recorder.wait_for(FleetHeld)
    assert held == FleetHeld("two", ("b", "c"), after_wave="one") and fleet_run.held
    assert recorder.started() == ["a"] and table_state(dbs["a"]) == "valid"
    assert thread.is_alive() and table_state(dbs["b"]) == table_state(dbs["c"]) == "absent"  # waits for go()
    fleet_run.go()
    thread.join(120)
    assert results[0].outcome is Outcome.SUCCESS and sorted(recorder.started()) == ["a", "b", "c"]
    assert all(table_state(db) == "valid" for db in dbs.values())
    assert sum(isinstance(e, FleetHeld) for e in recorder.events) == 1  # not after the last wave


def test_hold_lets_the_running_targets_finish_and_starts_no_other(tmp_path, server18, make_db):
    dbs = {name: make_db(server18) for name in ("a", "b", "c")}
    recorder = _Recorder()
    fleet_run = FleetRun(_fleet(tmp_path, dbs, {"a": "one", "b": "one", "c": "one"}), "run", recorder, concurrency=1)
    recorder.actions[TargetStarted] = lambda event: fleet_run.hold()  # while the first target runs
    results = []
    thread = threading.Thread(target=lambda: results.append(fleet_run.run()))
    thread.start()
    held = recorder.wait_for(FleetHeld)
    assert held == FleetHeld("one", ("b", "c"), after_wave=None)
    assert recorder.started() == ["a"] and table_state(dbs["a"]) == "valid"  # it finished: not cut short
    assert table_state(dbs["b"]) == table_state(dbs["c"]) == "absent"
    fleet_run.go()
    thread.join(120)
    assert results[0].outcome is Outcome.SUCCESS and recorder.started() == ["a", "b", "c"]


def test_cancel_ends_a_hold_and_skips_what_waits(tmp_path, server18, make_db):
    dbs = {"a": make_db(server18), "b": make_db(server18)}
    recorder = _Recorder()
    fleet_run = FleetRun(_fleet(tmp_path, dbs, {"a": "one", "b": "two"}), "run", recorder, wave_by_wave=True)
    results = []
    thread = threading.Thread(target=lambda: results.append(fleet_run.run()))
    thread.start()
    recorder.wait_for(FleetHeld)
    fleet_run.cancel()
    thread.join(30)
    assert not thread.is_alive() and results[0].outcome is Outcome.CANCELLED
    assert [s.target for s in results[0].skipped] == ["b"] and table_state(dbs["b"]) == "absent"
