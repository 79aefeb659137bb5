"""SIGTERM in the middle of a fleet run: every running target is cancelled and rolled back, none is started after,
each database is fully migrated or untouched (read back from its catalog), exit 130. ``--shard K/N`` and
``$JOB_COMPLETION_INDEX`` with ``--shard-count N``: the shards cover every target exactly once."""

from __future__ import annotations

import json
import signal

import pytest
from cli.cli_support import CliResult, assert_clean, assert_explained, run_cli, start_cli
from engine.engine_support import TableBlocker, catalog_snapshot, migration_backends, wait_until
from fleet_support import fleet_env, summary_rows, table_state, target, write_fleet
from harness import CANARY

from migration import exit_codes
from migration.fleet import shard_of

pytestmark = pytest.mark.timeout(180)


def test_sigterm_cancels_every_running_target_and_starts_no_other(tmp_path, server18, server15, make_db):
    # Two targets whose CREATE TABLE waits on another session's uncommitted CREATE TABLE (so they are mid-migration
    # when the signal lands), two that finish first, and a later wave that must never start.
    dbs = {"held18": make_db(server18), "held15": make_db(server15), "quick18": make_db(server18),
           "quick15": make_db(server15), "later": make_db(server18)}
    before = {name: catalog_snapshot(db) for name, db in dbs.items()}
    path = write_fleet(tmp_path / "fleet.toml", [target(n, "later" if n == "later" else "first") for n in dbs],
                       defaults={"drill": False, "lock_timeout": 120_000})  # blocked until the signal, however slow
    log = tmp_path / "audit.log"
    with TableBlocker(dbs["held18"]), TableBlocker(dbs["held15"]):
        proc = start_cli("fleet", str(path), "run", "--yes", "--concurrency", "4", "--backup-dir",
                         str(tmp_path / "b"), "--audit-log", str(log), cwd=tmp_path,
                         env=fleet_env({n: db.url for n, db in dbs.items()}))
        seen: list[str] = []
        try:
            for line in proc.stdout:  # until both quick targets are done (the held ones are blocked by then)
                seen.append(line)
                if sum("✅ ok" in s for s in seen if s.startswith(("[quick18]", "[quick15]"))) == 2:
                    break
            for name in ("held18", "held15"):
                wait_until(lambda: migration_backends(dbs[name], waiting_on_lock=True), 30, f"{name} to block")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        result = CliResult(proc.returncode, "".join(seen) + out, err)
        for name in ("held18", "held15"):  # really cancelled: it ended while the blockers were still there
            wait_until(lambda: not migration_backends(dbs[name]), 10, "the cancelled sessions to end")
    assert_clean(result)
    assert_explained(result)
    assert result.returncode == exit_codes.CANCELLED == 130, result.output
    rows = summary_rows(result.stdout)
    assert {n: r["outcome"] for n, r in rows.items()} == {
        "held18": "cancelled", "held15": "cancelled", "quick18": "ok", "quick15": "ok", "later": "skipped"}
    # Fully migrated or untouched, each: what the catalogs say.
    assert table_state(dbs["quick18"]) == table_state(dbs["quick15"]) == "valid"
    for name in ("held18", "held15", "later"):
        assert catalog_snapshot(dbs[name]) == before[name], name
    assert "Cancelling" in result.stderr
    assert CANARY not in log.read_text()


def test_shards_cover_every_target_exactly_once(tmp_path, server18, server15, make_db):
    dbs = {f"t{i}": make_db(server18 if i % 2 else server15) for i in range(7)}
    path = write_fleet(tmp_path / "fleet.toml", [target(n, "w1" if i < 3 else "w2") for i, n in enumerate(dbs)],
                       defaults={"drill": False})
    env = fleet_env({n: db.url for n, db in dbs.items()})
    common = ("--json", "--audit-log", str(tmp_path / "audit.log"), "--backup-dir", str(tmp_path / "b"))
    by_option, by_index = [], []
    for k in range(3):
        result = run_cli("fleet", str(path), "check", "--shard", f"{k}/3", *common, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.output
        by_option.append([t["name"] for t in json.loads(result.stdout)["targets"]])
        indexed = run_cli("fleet", str(path), "check", "--shard-count", "3", *common, cwd=tmp_path,
                          env={**env, "JOB_COMPLETION_INDEX": str(k)})
        assert indexed.returncode == 0, indexed.output
        by_index.append([t["name"] for t in json.loads(indexed.stdout)["targets"]])
    assert by_option == by_index  # the same split either way
    names = [name for shard in by_option for name in shard]
    assert sorted(names) == sorted(dbs) and len(names) == len(set(names))  # every target, exactly once
    assert all(2 <= len(shard) <= 3 for shard in by_option)  # balanced
    assert [sorted(s) for s in by_option] == [sorted(shard_of(dbs, k, 3)) for k in range(3)]
    wrong = run_cli("fleet", str(path), "check", "--shard", "3/3", cwd=tmp_path, env=env)
    assert wrong.returncode == exit_codes.CONFIG and "K counts from 0" in wrong.stderr
    missing = run_cli("fleet", str(path), "check", "--shard-count", "2", cwd=tmp_path, env=env)
    assert missing.returncode == exit_codes.CONFIG and "JOB_COMPLETION_INDEX" in missing.stderr


def test_shard_of_partitions_any_names():
    names = [f"db-{i:03d}" for i in range(50)] + ["zeta", "alpha", "Mid"]
    for n in (1, 2, 3, 7, 60):
        shards = [shard_of(names, k, n) for k in range(n)]
        assert set().union(*shards) == set(names) and sum(map(len, shards)) == len(names)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        assert shards == [shard_of(list(reversed(names)), k, n) for k in range(n)]  # independent of the order
