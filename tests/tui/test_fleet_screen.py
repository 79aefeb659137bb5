"""The wizard's Fleet screen (``migrate-tui --fleet FILE``, ``--demo-fleet``) at 80x24 on real PostgreSQL 18: the
app is built as the console script builds it (headless.entry.wizard_setup, tui.app.wizard_app); every database
is read back from its catalog afterwards."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import assert_no_secret, flat, screen_text, wait_until
from fleet.fleet_support import drop_column, env_var, table_state, target, write_fleet

from engine.engine_support import AdvisoryLockHolder
from harness import CANARY
from headless.entry import _wizard_args, main, wizard_setup
from migration.outcome import Outcome
from migration.plan import advisory_key
from tui.app import FleetApp, wizard_app
from tui.screens.fleet import FleetScreen, FleetTargetScreen
from tui.screens.fleet_board import CANCELLED, OK, RUNNING, SKIPPED

pytestmark = pytest.mark.timeout(120)
SIZE = (80, 24)


@pytest.fixture
def make_db(server18):
    made = []

    def make():
        made.append(server18.create_database())
        return made[-1]

    yield make
    for database in made:
        server18.drop_database(database.name)


def fleet_app(tmp_path, monkeypatch, dbs: dict, waves: dict, more: dict | None = None, **kwargs) -> FleetApp:
    """``migrate-tui --fleet FILE --backup-dir DIR`` on these databases (their URLs in the variables url_env names);
    ``more``: further keys of some targets."""
    more = more or {}
    path = write_fleet(tmp_path / "fleet.toml", [target(name, waves[name], **more.get(name, {})) for name in dbs],
                       defaults={"drill": False})
    for name, db in dbs.items():
        monkeypatch.setenv(env_var(name), db.url)
    args = _wizard_args(["--fleet", str(path), "--backup-dir", str(tmp_path / "backups")])
    app = wizard_app(*wizard_setup(args), **kwargs)
    assert isinstance(app, FleetApp)
    return app


def board(app):
    return app.fleet_screen.board


async def loaded(app, pilot) -> FleetScreen:
    await wait_until(pilot, lambda: board(app) is not None, "the fleet to load")
    await pilot.pause()
    return app.fleet_screen


async def confirm(pilot, key: str) -> None:
    from tui.dialogs.confirm import ConfirmDialog

    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), f"the confirmation of {key}")
    await pilot.press("y")
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, ConfirmDialog), "the dialog to close")


def record_states(monkeypatch) -> list[tuple[str, str]]:
    """Every (target, state) the table's State column was given, in order."""
    seen: list[tuple[str, str]] = []
    original = FleetScreen._refresh_row

    def refresh(self, name):
        seen.append((name, self.board.rows[name].state))
        original(self, name)

    monkeypatch.setattr(FleetScreen, "_refresh_row", refresh)
    return seen


async def test_live_states_a_failed_canary_stops_the_later_wave_and_its_detail_shows_the_fix(
        tmp_path, monkeypatch, make_db):
    dbs = {"stage": make_db(), "canary": make_db(), "prod-a": make_db(), "prod-b": make_db()}
    drop_column(dbs["canary"])
    seen = record_states(monkeypatch)
    app = fleet_app(tmp_path, monkeypatch, dbs, {"stage": "staging", "canary": "canary", "prod-a": "production",
                                                 "prod-b": "production"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(app, pilot)
        text = screen_text(app)
        assert "4 targets in 3 waves" in flat(text) and "Press s to start the first wave (staging)" in text
        assert "ok 0 · not needed 0 · failed 0 · waiting 4" in text
        await confirm(pilot, "s")
        await wait_until(pilot, lambda: board(app).held is not None, "the fleet to stop after wave staging")
        text = screen_text(app)
        assert "Wave staging done. Press n to start wave canary (1 target)." in text
        assert "ok 1 · not needed 0 · failed 0 · waiting 3" in text
        assert table_state(dbs["stage"]) == "valid" and table_state(dbs["canary"]) == "invalid"
        states = [state for name, state in seen if name == "stage"]
        assert states[0] == "waiting for wave staging" and states[-1] == "done"
        assert "checking" in states and any(s.startswith("backing up") and s.endswith("%") for s in states)
        assert any(s == f"migrating step {n}/8" for s in states for n in range(1, 9))
        assert states.index("checking") < states.index("backed up") < states.index("migrating step 8/8")
        assert "waiting for wave production" in text

        await confirm(pilot, "n")
        await wait_until(pilot, lambda: board(app).finished is not None, "the fleet to finish")
        await pilot.pause()
        text = screen_text(app)
        assert board(app).finished.outcome is Outcome.FAILED
        assert "failed: Table database_backups: Required column" in text
        assert "not started: wave 'canary' did not succeed" in text
        assert board(app).rows["prod-a"].state == "not started: wave 'canary' did not succeed (canary)"
        assert "ok 1 · not needed 0 · failed 1 · waiting 0 · not started 2" in text
        assert board(app).rows["prod-a"].kind == board(app).rows["prod-b"].kind == SKIPPED
        assert table_state(dbs["prod-a"]) == table_state(dbs["prod-b"]) == "absent"  # the later wave never ran
        assert "n Next wave" not in text  # a failed wave offers no next one
        assert_no_secret(app, CANARY)

        await pilot.press("down", "enter")  # the canary's row
        await wait_until(pilot, lambda: isinstance(app.screen, FleetTargetScreen), "the target's detail")
        await pilot.pause()
        detail = flat(screen_text(app))
        assert "canary (wave canary)" in detail and "Required column metadata is missing" in detail
        assert "Fix:" in detail and "❌ failed at the checklist" in detail
        assert_no_secret(app, CANARY)
        assert any(line.strip().startswith("Fix:") for line in app.screen.row.log)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "back on the Fleet screen")
    audit_lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    named = {line.get("target_name") for line in audit_lines}
    assert {"stage", "canary"} <= named and not {"prod-a", "prod-b"} & named  # each target's events, by name
    assert CANARY not in (tmp_path / "audit.log").read_text()


async def test_cancel_all_leaves_every_target_migrated_or_untouched_and_q_quits(tmp_path, monkeypatch, make_db):
    dbs = {f"t{i}": make_db() for i in range(4)}
    # t1's migration waits for another migration's advisory lock (up to 60 s): it is running when cancel comes.
    app = fleet_app(tmp_path, monkeypatch, dbs, {name: "all" for name in dbs}, {"t1": {"lock_wait": 60}},
                    concurrency=2)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        with AdvisoryLockHolder(dbs["t1"], advisory_key("public")):
            await confirm(pilot, "s")
            await wait_until(pilot, lambda: board(app).rows["t1"].state.startswith("migrating step"),
                             "t1 to wait in its migration")
            await confirm(pilot, "escape")
            await wait_until(pilot, lambda: board(app).finished is not None, "the fleet to end", tries=1200)
        await pilot.pause()
        assert board(app).finished.outcome is Outcome.CANCELLED
        kinds = {name: row.kind for name, row in board(app).rows.items()}
        assert kinds["t1"] == CANCELLED and board(app).rows["t1"].state.startswith("cancelled")
        for name, db in dbs.items():  # read back: fully migrated or untouched, as the table says
            assert table_state(db) == ("valid" if kinds[name] == OK else "absent"), (name, kinds)
        assert "Cancel all" not in screen_text(app)  # nothing runs any more
        assert_no_secret(app, CANARY)
        await pilot.press("q")
    assert app.return_code == 130  # the last outcome: cancelled


async def test_pause_lets_the_running_targets_finish_and_starts_no_other(tmp_path, monkeypatch, make_db):
    dbs = {f"t{i}": make_db() for i in range(3)}
    # t0's migration waits for another migration's advisory lock: it is surely running when p comes (a small
    # target takes half a second, shorter than a busy machine may take to deliver a key).
    app = fleet_app(tmp_path, monkeypatch, dbs, {name: "all" for name in dbs}, {"t0": {"lock_wait": 60}},
                    concurrency=1)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        with AdvisoryLockHolder(dbs["t0"], advisory_key("public")):
            await confirm(pilot, "s")
            await wait_until(pilot, lambda: board(app).rows["t0"].state.startswith("migrating step"),
                             "t0 to wait in its migration")
            await pilot.press("p")
            await wait_until(pilot, lambda: board(app).pausing, "the pause to be asked")
            assert "pausing: the running targets finish, no other starts" in flat(screen_text(app))
            assert board(app).held is None  # t0 still runs: the fleet does not say it is paused yet
        await wait_until(pilot, lambda: board(app).held is not None, "the fleet to pause")
        await pilot.pause()
        assert board(app).held.waiting == ("t1", "t2")
        text = screen_text(app)
        assert "Paused in wave all: 2 targets" in text and "Resume" in text
        for name, db in dbs.items():  # the running target finished; the rest never started
            assert table_state(db) == ("valid" if name == "t0" else "absent")
            assert board(app).rows[name].state == ("done" if name == "t0" else "queued")
        await pilot.press("p")  # resume
        await wait_until(pilot, lambda: board(app).finished is not None, "the fleet to finish")
        assert board(app).finished.outcome is Outcome.SUCCESS
        assert all(table_state(db) == "valid" for db in dbs.values())


async def test_demo_fleet_writes_its_fleet_file_and_its_broken_canary_stops_production(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = wizard_app(*wizard_setup(_wizard_args(["--demo-fleet", "--backup-dir", str(tmp_path / "backups")])))
    path = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: board(app) is not None, "the demo fleet to start", tries=1200)
            await pilot.pause()
            path = Path(app.fleet.path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            assert path.parent.stat().st_uid == os.geteuid() and "drill = false" in path.read_text()
            text = screen_text(app)
            assert "6 targets in 3 waves" in flat(text) and "canary (2)" in text and "production (3)" in text
            await confirm(pilot, "s")
            await wait_until(pilot, lambda: board(app).held is not None, "wave staging to end", tries=1200)
            await confirm(pilot, "n")  # the canaries: one of them is broken
            await wait_until(pilot, lambda: board(app).finished is not None, "the fleet to finish", tries=1200)
            await pilot.pause()
            text = screen_text(app)
            assert "Fleet finished: 2 ok, 1 failed, 3 skipped." in text
            assert "ok 2 · not needed 0 · failed 1 · waiting 0 · not started 3" in text
            assert board(app).rows["canary-us"].state.startswith("failed: Table database_backups: Required column")
            assert board(app).rows["canary-eu"].state == "done"
            for name in ("prod-eu", "prod-asia", "prod-au"):
                assert board(app).rows[name].state.startswith("not started"), board(app).rows[name].state
            for secret in app.fleet.secrets():
                assert_no_secret(app, secret)
    finally:
        app.source.close()
    assert path is not None and not path.parent.exists()  # the demo's directory (and server) are gone


def test_fleet_file_problems_are_reported_before_the_wizard_starts(tmp_path, capsys):
    path = write_fleet(tmp_path / "fleet.toml", [{"name": "a", "url_env": "NOT_SET_ANYWHERE_X", "colour": "red"}])
    assert main(["--fleet", str(path)]) == 78
    err = capsys.readouterr().err
    assert "the environment variable NOT_SET_ANYWHERE_X is not set" in err and "unknown key 'colour'" in err
    assert "has 2 problems" in err and "Fix:" in err
    with pytest.raises(SystemExit):
        main(["--fleet", str(path), "check"])  # the wizard's option, not the command's
    assert "migrate-tui fleet FILE" in capsys.readouterr().err


def _replayed_fleet():
    """A fleet in the middle of its production wave: what the engine emits, fixed (no clocks, ports or paths)."""
    from migration.catalog import GUIDE_FIX_INVALID
    from migration.errors import OperatorError
    from migration.events import BackupProgress, RunStarted, Step, StepStarted
    from migration.fleet import Fleet, FleetTarget, TargetEvent, TargetFinished, TargetStarted, WaveStarted
    from migration.settings import load_settings

    waves = {"staging": "staging", "canary": "canary", "prod-eu": "production", "prod-us": "production",
             "prod-asia": "production", "prod-au": "production", "prod-sa": "production"}
    targets = tuple(FleetTarget(name, wave, load_settings(
        database_url=f"postgresql://shop_app:{CANARY}@db-{name}.internal.example:5432/shop", environ={}))
        for name, wave in waves.items())
    fleet = Fleet(Path("/etc/migrate-tui/fleet.toml"), targets)
    url = {t.name: t.masked_url for t in targets}
    events: list = []
    for name in ("staging", "canary"):
        events += [WaveStarted(name, (name,)), TargetStarted(name, name, url[name]),
                   TargetFinished(Outcome.SUCCESS, "Migration completed successfully!", None, 2400.0, name, name,
                                  "migration", f"backups/{name}/backup_before_migration.sql")]
    production = tuple(n for n, w in waves.items() if w == "production")
    events.append(WaveStarted("production", production))
    events += [TargetStarted(n, "production", url[n]) for n in production[:4]]
    missing = OperatorError("Table database_backups: Required column metadata is missing from database_backups table",
                            GUIDE_FIX_INVALID)
    events += [
        TargetEvent("prod-eu", RunStarted(url["prod-eu"], "public", "database_backups")),
        TargetEvent("prod-eu", StepStarted(Step.INDEX_CREATION)),
        TargetFinished(Outcome.FAILED, f"checklist failed: {missing.message}", missing, 310.0, "prod-us", "production",
                       "checklist"),
        TargetEvent("prod-asia", BackupProgress(2, 5, "public.orders", 1_200_000, 0.42, 1.0, 1.4)),
    ]
    return fleet, events


def test_fleet_screen_snapshot_in_the_middle_of_a_wave(snap_compare, monkeypatch):
    from migration.operation import Operation
    from tui.fleet_source import FleetSource

    fleet, events = _replayed_fleet()

    class Replay(Operation):
        name = "fleet"

        def _perform(self):
            for event in events:
                self.emit(event)
            while True:  # still running: the keys of a running fleet; the app's exit cancels it
                self.pause(0.05)

    monkeypatch.setattr(FleetScreen, "_build", lambda self, emit, log: Replay(fleet.targets[0].settings, emit))
    app = FleetApp(FleetSource(lambda: fleet), deterministic=True)

    async def run_before(pilot):
        await wait_until(pilot, lambda: board(app) is not None, "the fleet")
        await confirm(pilot, "s")
        await wait_until(pilot, lambda: board(app).rows["prod-asia"].state == "backing up 42%", "the replay")
        await pilot.pause()
        text = screen_text(app)
        assert "Wave 3 of 3: production running" in text and "running 3" in text and CANARY not in text

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


def test_fleet_screen_snapshot_after_a_failed_wave_with_the_command_line_s_choices(snap_compare, monkeypatch):
    """--only (the source's selection), --concurrency 2 and --keep-going in the header; the wave that ended says how
    many failed, and n is offered (with --keep-going a failed wave does not stop the later ones)."""
    from migration.events import FleetHeld
    from migration.fleet import TargetFinished
    from migration.operation import Operation
    from migration.options import FleetOptions, OperatorOptions
    from tui.fleet_source import FleetSource

    fleet, replayed = _replayed_fleet()
    events = [e for e in replayed if getattr(e, "wave", None) != "production" and getattr(e, "target", "")
              not in ("prod-eu", "prod-us", "prod-asia")]
    events[-1] = TargetFinished(Outcome.FAILED, "checklist failed: the server is not reachable", None, 310.0,
                                "canary", "canary", "checklist")
    events.append(FleetHeld("production", ("prod-eu", "prod-us", "prod-asia", "prod-au", "prod-sa"),
                            after_wave="canary"))

    class Replay(Operation):
        name = "fleet"

        def _perform(self):
            for event in events:
                self.emit(event)
            while True:  # held: the keys of a fleet that waits for n; the app's exit cancels it
                self.pause(0.05)

    monkeypatch.setattr(FleetScreen, "_build", lambda self, emit, log: Replay(fleet.targets[0].settings, emit))
    source = FleetSource(lambda: fleet, "only staging, canary, prod-eu, prod-us, prod-asia, prod-au, prod-sa")
    app = FleetApp(source, deterministic=True,
                   options=OperatorOptions(fleet=FleetOptions(concurrency=2, keep_going=True)))

    async def run_before(pilot):
        await wait_until(pilot, lambda: board(app) is not None, "the fleet")
        await confirm(pilot, "s")
        await wait_until(pilot, lambda: board(app).held is not None, "the replay")
        await pilot.pause()
        text = flat(screen_text(app))
        assert "up to 2 at once; --keep-going" in text, text
        assert "Wave canary done, 1 failed. Press n to start wave production (5 targets)." in text, text

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


def _offline_fleet(tmp_path, monkeypatch, names=("a", "b", "c", "d", "e")) -> Path:
    """A valid fleet file whose URLs are never connected to (only the command line is checked)."""
    for name in names:
        monkeypatch.setenv(env_var(name), f"postgresql://app@127.0.0.1:1/{name}")
    return write_fleet(tmp_path / "fleet.toml", [target(name, "one" if name < "c" else "two") for name in names])


def test_fleet_options_reach_the_fleet_screen_and_a_bad_value_exits_78_before_the_terminal_check(
        tmp_path, monkeypatch, capsys):
    from migration.fleet import shard_of
    from migration.options import FleetOptions

    path = str(_offline_fleet(tmp_path, monkeypatch))
    source, options, _ = wizard_setup(_wizard_args(["--fleet", path, "--concurrency", "3", "--keep-going"]))
    assert options.fleet == FleetOptions(concurrency=3, keep_going=True)
    assert wizard_setup(_wizard_args(["--fleet", path]))[1] is None  # the defaults: FleetOptions() (4, stop)
    source, _, _ = wizard_setup(_wizard_args(["--fleet", path, "--only", "a", "d", "e", "--shard", "1/2"]))
    names = ["a", "d", "e"]
    assert [t.name for t in source().targets] == sorted(shard_of(names, 1, 2)) and source.selection == \
        "only a, d, e; shard 1/2"
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "0")
    source, _, _ = wizard_setup(_wizard_args(["--fleet", path, "--shard-count", "2"]))
    assert {t.name for t in source().targets} == shard_of(list("abcde"), 0, 2)
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    for argv, said in [
        (["--fleet", path, "--concurrency", "0"], "--concurrency must be a whole number from 1 to 64, got '0'"),
        (["--fleet", path, "--concurrency", "many"], "--concurrency must be a whole number from 1 to 64"),
        (["--fleet", path, "--shard", "2/2"], "shard 2 of 2 does not exist"),
        (["--fleet", path, "--shard", "half"], "--shard must be K/N"),
        (["--fleet", path, "--shard-count", "2"], "$JOB_COMPLETION_INDEX is not set"),
        (["--fleet", path, "--only", "a", "zz"], "--only names no target of"),
        (["--fleet", path, "--only", "a", "--shard", "1/2"], "No target of"),
        (["--demo-fleet", "--only", "nowhere"], "--only names no target of the demo fleet: nowhere"),
        (["--concurrency", "2"], "--concurrency is an option of the Fleet screen, but no fleet was given"),
        (["--demo", "--keep-going"], "--keep-going is an option of the Fleet screen"),
    ]:
        assert main(argv) == 78, argv
        err = capsys.readouterr().err
        assert said in err and "Fix:" in err, (argv, err)
        assert "interactive terminal" not in err, argv  # refused before the terminal check
    with pytest.raises(SystemExit):
        main(["--concurrency", "2", "fleet", path, "run"])  # the wizard's option before a command
    assert "--concurrency goes after the command" in capsys.readouterr().err


async def test_keep_going_concurrency_and_only_in_the_wizard(tmp_path, monkeypatch, make_db):
    dbs = {"broken": make_db(), "fine": make_db(), "later": make_db(), "left-out": make_db()}
    drop_column(dbs["broken"])
    path = write_fleet(tmp_path / "fleet.toml", [target(name, "first" if name in ("broken", "fine") else "second")
                                                 for name in dbs], defaults={"drill": False})
    for name, db in dbs.items():
        monkeypatch.setenv(env_var(name), db.url)
    app = wizard_app(*wizard_setup(_wizard_args(
        ["--fleet", str(path), "--backup-dir", str(tmp_path / "backups"), "--audit-log", str(tmp_path / "audit.log"),
         "--concurrency", "1", "--keep-going", "--only", "broken", "fine", "later"])))
    most = [0]
    original = FleetScreen._refresh_row

    def refresh(self, name):  # how many targets run at once, whenever a row changes
        most[0] = max(most[0], sum(row.kind == RUNNING for row in self.board.rows.values()))
        original(self, name)

    monkeypatch.setattr(FleetScreen, "_refresh_row", refresh)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        assert list(board(app).rows) == ["broken", "fine", "later"]  # --only: left-out is not in the table
        text = flat(screen_text(app))
        assert "3 targets in 2 waves" in text and "only broken, fine, later; up to 1 at once; --keep-going" in text
        await confirm(pilot, "s")
        await wait_until(pilot, lambda: board(app).held is not None, "the fleet to stop after wave first")
        await pilot.pause()
        assert "Wave first done, 1 failed. Press n to start wave second (1 target)." in \
            screen_text(app)
        await confirm(pilot, "n")  # offered after a failed wave: --keep-going
        await wait_until(pilot, lambda: board(app).finished is not None, "the fleet to finish")
        assert board(app).finished.outcome is Outcome.FAILED
        kinds = {name: row.kind for name, row in board(app).rows.items()}
        assert kinds == {"broken": "failed", "fine": OK, "later": OK}, kinds
    assert most[0] == 1  # --concurrency 1
    assert table_state(dbs["fine"]) == table_state(dbs["later"]) == "valid"
    assert table_state(dbs["broken"]) == "invalid" and table_state(dbs["left-out"]) == "absent"
