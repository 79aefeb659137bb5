"""``MIGRATE_DRILL_PG_BIN``: the operator's one PostgreSQL bin directory for the drill. It is the only candidate
(probed like the others: version, extensions), and refused — named, with the fix — when it lacks a program or
when anybody but the operator and root could change what runs from it."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

import pytest
from cli.cli_support import cli_env, run_cli

from migration import exit_codes
from migration.drill import local, pg_bin
from migration.pgserver import embedded_bin_dir, system_bin_dir

PROGRAMS = ("postgres", "initdb", "pg_ctl", "pg_config")


def linked_bin(where: Path, *, mode: int = 0o755, copy: str | None = None) -> Path:
    """A bin directory of links to the embedded PostgreSQL's programs (``copy``: that one a copy of its own)."""
    where.mkdir(parents=True)
    for name in PROGRAMS:
        real = embedded_bin_dir() / name
        if name == copy:
            shutil.copy2(real, where / name)
        else:
            (where / name).symlink_to(real)
    where.chmod(mode)
    return where


def chosen(monkeypatch, value: str):
    monkeypatch.setenv(pg_bin.ENV, value)
    return local.choose(18, [])


def test_the_directory_is_the_only_candidate_probed_like_the_others(monkeypatch, tmp_path):
    embedded = next(c for c in local.candidates() if c.source == "embedded")
    candidate, problem, _ = chosen(monkeypatch, str(linked_bin(tmp_path / "bin")))
    assert problem is None and candidate.bin_dir == tmp_path / "bin" and candidate.source == pg_bin.ENV
    assert (candidate.major, candidate.version, candidate.extensions) == \
        (embedded.major, embedded.version, embedded.extensions)
    fifteen = system_bin_dir(15)
    if fifteen is None:
        pytest.skip("PostgreSQL 15 is not installed (tests/run.sh installs it as root)")
    # Only that one: a PostgreSQL 15 directory cannot load an 18 dump, though the embedded 18 is installed.
    candidate, problem, _ = chosen(monkeypatch, str(fifteen))
    assert candidate is None and "No local PostgreSQL can load a dump of PostgreSQL 18" in problem.message
    assert f"({pg_bin.ENV}, {fifteen})" in problem.message


@pytest.mark.parametrize("case", ["relative", "missing", "no initdb", "others write it", "group writes a program",
                                  "others write a directory above", "another user's"])
def test_a_directory_others_could_change_or_without_the_programs_is_refused(monkeypatch, tmp_path, case):
    if case == "relative":
        value, why = "pginstall/bin", "it is not an absolute path"
    elif case == "missing":
        value, why = str(tmp_path / "nowhere"), "it is not a directory"
    elif case == "no initdb":
        value = str(linked_bin(tmp_path / "bin"))
        (tmp_path / "bin" / "initdb").unlink()
        why = "it has no runnable initdb"
    elif case == "others write it":
        value = str(linked_bin(tmp_path / "bin", mode=0o1777))  # sticky does not help: others could add pg_config
        why = f"{tmp_path / 'bin'} can be written by other users (mode 1777)"
    elif case == "group writes a program":
        value = str(linked_bin(tmp_path / "bin", copy="postgres"))
        (tmp_path / "bin" / "postgres").chmod(0o775)
        why = f"{tmp_path / 'bin' / 'postgres'} can be written by other users (mode 0775)"
    elif case == "others write a directory above":
        (tmp_path / "open").mkdir()
        value = str(linked_bin(tmp_path / "open" / "pg" / "bin"))
        (tmp_path / "open").chmod(0o777)
        why = f"{tmp_path / 'open'} can be written by other users (mode 0777)"
    else:
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user needs root (CI runs as root)")
        value = str(linked_bin(tmp_path / "bin"))
        os.chown(tmp_path / "bin", pwd.getpwnam("nobody").pw_uid, -1)
        why = f"{tmp_path / 'bin'} belongs to nobody"
    candidate, problem, missing = chosen(monkeypatch, value)
    assert candidate is None and missing == ()
    assert problem.message == f"{pg_bin.ENV}={value} cannot be used for the drill's throwaway PostgreSQL: {why}."
    assert pg_bin.ENV in problem.hint and "unset it" in problem.hint


def test_a_sticky_directory_above_is_fine(monkeypatch, tmp_path):
    """Like /tmp: others may write there, but cannot rename or remove what is not theirs."""
    (tmp_path / "shared").mkdir()
    value = str(linked_bin(tmp_path / "shared" / "bin"))
    (tmp_path / "shared").chmod(0o1777)
    candidate, problem, _ = chosen(monkeypatch, value)
    assert problem is None and candidate.major == 18


@pytest.mark.timeout(120)
def test_the_checklist_names_the_refused_directory_with_the_fix(db18, tmp_path):
    value = str(linked_bin(tmp_path / "bin", mode=0o777))
    env = cli_env(db18.url, **{pg_bin.ENV: value})
    result = run_cli("check", cwd=tmp_path, env=env)
    assert result.returncode == exit_codes.FAILURE, result.output
    assert f"{pg_bin.ENV}={value} cannot be used for the drill's throwaway PostgreSQL" in result.output
    assert "can be written by other users (mode 0777)" in result.output
