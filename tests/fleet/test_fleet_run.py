"""``migrate-tui fleet FILE run`` on real servers (PostgreSQL 18 and 15 at once): every target through the same
checklist → backup → migration as ``run``, the failures of some (a table with a missing column, an unreachable
host, another migration's advisory lock) reported per target, an already migrated target not needed, the summary
table and one exit code; no password in any output or in the audit log; every audit line named by its target."""

from __future__ import annotations

import json

import pytest
from cli.cli_support import run_cli
from engine.engine_support import AdvisoryLockHolder
from fleet_support import (
    closed_port_url,
    drop_column,
    fleet_env,
    migrate,
    summary_rows,
    table_state,
    target,
    write_fleet,
)
from harness import CANARY

from migration import audit, exit_codes
from migration.plan import advisory_key

pytestmark = pytest.mark.timeout(180)
NO_DRILL = {"drill": False}


def test_a_fleet_of_eleven_targets_on_both_versions(tmp_path, server18, server15, make_db):
    dbs = {name: make_db(server) for name, server in (
        ("stage", server18), ("a18", server18), ("b18", server18), ("c18", server18), ("a15", server15),
        ("b15", server15), ("c15", server15), ("broken", server15), ("locked", server18), ("done", server15))}
    drop_column(dbs["broken"])
    migrate(dbs["done"])
    urls = {name: db.url for name, db in dbs.items()}
    urls["down"] = closed_port_url(password=CANARY)
    names = ["stage", "a18", "b18", "a15", "broken", "down", "locked", "done", "b15", "c18", "c15"]
    path = write_fleet(tmp_path / "fleet.toml", [
        target(name, "staging" if name == "stage" else "production", **({"lock_wait": 1} if name == "locked" else {}))
        for name in names], defaults=NO_DRILL)
    log = tmp_path / "audit.log"
    with AdvisoryLockHolder(dbs["locked"], advisory_key("public")):
        result = run_cli("fleet", str(path), "run", "--yes", "--concurrency", "4", "--backup-dir",
                         str(tmp_path / "backups"), "--audit-log", str(log), cwd=tmp_path, env=fleet_env(urls),
                         timeout=150)
    assert result.returncode == exit_codes.FAILURE == 1, result.output  # a failure outranks the busy target
    rows = summary_rows(result.stdout)
    assert list(rows) == names  # the file's order
    expected = {name: "ok" for name in names}
    expected.update(broken="failed", down="failed", locked="busy", done="not needed")
    assert {name: row["outcome"] for name, row in rows.items()} == expected, result.stdout
    # What the catalogs say, read back: migrated where ok, untouched elsewhere.
    for name, db in dbs.items():
        want = {"broken": "invalid", "locked": "absent"}.get(name, "valid")
        assert table_state(db) == want, name
    assert "metadata" not in str(dbs["broken"].scalar(
        "SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = 'public.database_backups'::regclass"))
    for name, row in rows.items():  # a verified backup in the target's own directory, where one was taken
        if expected[name] == "ok" or name == "locked":  # the busy one was backed up before it met the lock
            assert row["backup"].startswith(str(tmp_path / "backups" / name) + "/"), row
            assert (tmp_path / "backups" / name).is_dir()
        else:
            assert row["backup"] == "-", (name, row)
    assert "Required column metadata is missing" in result.stdout
    assert "[down] Error: " in result.stdout and "[locked] ⏳ busy" in result.stdout
    assert "DRILL AND REHEARSAL SKIPPED (drill = false in the fleet file)" in result.stdout
    # The audit log: every line names its target; no password anywhere.
    text = log.read_text()
    assert CANARY not in text
    entries = audit.read(log)
    assert entries and all(entry.get("target_name") in names for entry in entries)
    assert {entry["target_name"] for entry in entries} == set(names)
    assert any(e["target_name"] == "locked" and e.get("outcome") == "busy" for e in entries)
    only = run_cli("log", "--audit-log", str(log), "--target", "a15", cwd=tmp_path, env=fleet_env({}))
    lines = only.stdout.splitlines()
    assert lines and all("[a15]" in line for line in lines) and any("RunFinished" in line for line in lines)
    assert len(lines) == sum(1 for e in entries if e["target_name"] == "a15")


def test_a_failed_canary_stops_the_later_waves_unless_keep_going(tmp_path, server18, server15, make_db):
    canary, first, second = make_db(server15), make_db(server18), make_db(server15)
    drop_column(canary, "status")
    urls = {"canary": canary.url, "first": first.url, "second": second.url}
    path = write_fleet(tmp_path / "fleet.toml", [target("canary", "canary"), target("first", "production"),
                                                 target("second", "later")], defaults=NO_DRILL)
    common = ("--yes", "--backup-dir", str(tmp_path / "b"), "--audit-log", str(tmp_path / "audit.log"))
    stopped = run_cli("fleet", str(path), "run", *common, cwd=tmp_path, env=fleet_env(urls))
    assert stopped.returncode == 1, stopped.output
    rows = summary_rows(stopped.stdout)
    assert rows["canary"]["outcome"] == "failed"
    assert rows["first"]["outcome"] == rows["second"]["outcome"] == "skipped"
    assert "wave 'canary' did not succeed (canary)" in rows["first"]["message"]
    assert table_state(first) == table_state(second) == "absent"  # nothing attempted after the canary

    going = run_cli("fleet", str(path), "run", "--keep-going", "--json", *common, cwd=tmp_path, env=fleet_env(urls))
    assert going.returncode == 1, going.output
    document = json.loads(going.stdout)
    assert {t["name"]: t["outcome"] for t in document["targets"]} == {
        "canary": "failed", "first": "success", "second": "success"}
    assert document["exit_code"] == 1 and document["targets"][0]["error"]["hint"]
    assert table_state(first) == table_state(second) == "valid" and table_state(canary) == "invalid"

    again = run_cli("fleet", str(path), "run", "--only", "first", "second", *common, cwd=tmp_path,
                    env=fleet_env(urls))
    assert again.returncode == 0, again.output
    assert {row["outcome"] for row in summary_rows(again.stdout).values()} == {"not needed"}
    assert "canary" not in summary_rows(again.stdout)


def test_another_migrations_lock_makes_the_fleet_busy(tmp_path, server18, make_db):
    locked, free = make_db(server18), make_db(server18)
    path = write_fleet(tmp_path / "fleet.toml", [target("locked", "w", lock_wait=0.5), target("free", "w")],
                       defaults=NO_DRILL)
    with AdvisoryLockHolder(locked, advisory_key("public")):
        result = run_cli("fleet", str(path), "run", "--yes", "--backup-dir", str(tmp_path / "b"), "--audit-log",
                         str(tmp_path / "audit.log"), cwd=tmp_path,
                         env=fleet_env({"locked": locked.url, "free": free.url}))
    assert result.returncode == exit_codes.BUSY == 75, result.output
    assert {n: r["outcome"] for n, r in summary_rows(result.stdout).items()} == {"locked": "busy", "free": "ok"}
    assert table_state(locked) == "absent" and table_state(free) == "valid"


def test_drill_verify_and_rollback_of_a_small_fleet(tmp_path, server18, server15, make_db):
    drilled, plain = make_db(server18), make_db(server15)
    urls = {"drilled": drilled.url, "plain": plain.url}
    path = write_fleet(tmp_path / "fleet.toml", [target("drilled", "one", drill=True), target("plain", "one")],
                       defaults=NO_DRILL)
    common = ("--backup-dir", str(tmp_path / "b"), "--audit-log", str(tmp_path / "audit.log"))
    run = run_cli("fleet", str(path), "run", "--yes", *common, cwd=tmp_path, env=fleet_env(urls))
    assert run.returncode == 0, run.output
    assert "[drilled]   ✓ drill:" in run.stdout and "[drilled]   ✓ rehearsal:" in run.stdout
    assert "[plain] ⚠️  DRILL AND REHEARSAL SKIPPED" in run.stdout and "[drilled] ⚠️" not in run.stdout
    verify = run_cli("fleet", str(path), "verify", "--json", *common, cwd=tmp_path, env=fleet_env(urls))
    assert verify.returncode == 0 and json.loads(verify.stdout)["outcome"] == "success", verify.output
    rollback = run_cli("fleet", str(path), "rollback", "--yes", *common, cwd=tmp_path, env=fleet_env(urls))
    assert rollback.returncode == 0, rollback.output
    assert table_state(drilled) == table_state(plain) == "absent"
    rows = summary_rows(rollback.stdout, "rollback")
    assert all(row["backup"].startswith(str(tmp_path / "b" / name)) for name, row in rows.items()), rows
    unverified = run_cli("fleet", str(path), "verify", *common, cwd=tmp_path, env=fleet_env(urls))
    assert unverified.returncode == 1
    assert CANARY not in (tmp_path / "audit.log").read_text()
