"""What a fleet pays once instead of once per target: the ``pg_dump --version`` probe of each binary is asked once
per process while the binary stays the same (and again when it changes), and every target still gets its own
checklist and verified backup."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from fleet_support import env_var, table_state, target, write_fleet

from migration.fleet import FleetRun, read_fleet
from migration.options import BackupOptions, DrillOptions
from migration.outcome import Outcome
from migration.pgserver import embedded_bin_dir
from migration.pgtools import tool_version

pytestmark = pytest.mark.timeout(120)


def _counting_wrapper(path: Path, real: Path, count: Path) -> Path:
    """An executable that records every ``--version`` call, then runs ``real`` with the same arguments."""
    path.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo probe >> "{count}"; fi\nexec "{real}" "$@"\n')
    os.chmod(path, 0o700)
    return path


def _probes(count: Path) -> int:
    return len(count.read_text().splitlines()) if count.exists() else 0


def test_a_binary_is_probed_once_until_it_changes(tmp_path):
    real = embedded_bin_dir() / "pg_dump"
    count = tmp_path / "count"
    wrapper = _counting_wrapper(tmp_path / "pg_dump", real, count)
    first = tool_version(wrapper)
    assert first is not None and first[1] == 18
    assert [tool_version(wrapper) for _ in range(3)] == [first] * 3
    assert _probes(count) == 1
    _counting_wrapper(wrapper, real, count)  # rewritten (a package upgrade): asked again
    os.utime(wrapper, ns=(1, 1))
    assert tool_version(wrapper) == first and _probes(count) == 2
    link = tmp_path / "link"
    link.symlink_to(wrapper)  # another name: its own answer
    assert tool_version(link) == first and _probes(count) == 3
    assert tool_version(tmp_path / "missing") is None


def test_a_fleet_probes_pg_dump_once_and_backs_up_every_target(tmp_path, monkeypatch, server18, make_db):
    count = tmp_path / "count"
    monkeypatch.setenv("PG_DUMP", str(_counting_wrapper(tmp_path / "pg_dump", embedded_bin_dir() / "pg_dump", count)))
    dbs = {f"t{i}": make_db(server18) for i in range(4)}
    path = write_fleet(tmp_path / "fleet.toml", [target(name, "all") for name in dbs])
    fleet = read_fleet(path, environ={env_var(name): db.url for name, db in dbs.items()})
    result = FleetRun(fleet, "run", concurrency=4, backup=BackupOptions(backup_dir=tmp_path / "b"),
                      drill=DrillOptions(enabled=False)).run()
    assert result.outcome is Outcome.SUCCESS and len(result.results) == 4, result
    assert _probes(count) == 1  # not once per target
    for finished in result.results:  # each target's own checklist and verified backup
        assert finished.backup_path.startswith(str(tmp_path / "b" / finished.target) + "/")
        manifest = json.loads(Path(finished.backup_path + ".manifest.json").read_text())
        assert manifest["sha256"] == hashlib.sha256(Path(finished.backup_path).read_bytes()).hexdigest()
    assert all(table_state(db) == "valid" for db in dbs.values())
