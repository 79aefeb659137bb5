"""The no-silent-skip rule (tests/skip_rule.py), run on a throwaway test file in a real pytest subprocess."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from skip_rule import ALLOWLIST, ci, read_allowlist

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

DEMO = '''
import pytest

def test_passes():
    pass

def test_unlisted():
    pytest.skip("no frobnicator on this machine")

def test_listed():
    pytest.skip("no frobnicator on this machine")

@pytest.mark.skipif(True, reason="a skipif marker")
def test_marked():
    pass

@pytest.mark.xfail(reason="an expected failure is not a skip")
def test_expected_failure():
    assert False
'''
MODULE_SKIP = 'import pytest\npytest.skip("the whole module", allow_module_level=True)\n'


def _pytest(tmp_path: Path, ci_value: str | None) -> tuple[int, str]:
    (tmp_path / "test_demo.py").write_text(DEMO)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    allow = tmp_path / "allow.txt"
    allow.write_text("# comment\ntest_demo.py::test_listed | the frobnicator is optional\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTHONPATH=str(TESTS), MIGRATE_TUI_SKIP_ALLOWLIST=str(allow))
    if ci_value is not None:
        env["CI"] = ci_value
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "skip_rule", "-p", "no:cacheprovider",
                           "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-rA", "--continue-on-collection-errors", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _summary(output: str) -> dict[str, int]:
    line = [ln for ln in output.splitlines() if re.match(r"^=+ .* in [0-9.]+s", ln)][-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", line)}


def test_with_ci_set_an_unlisted_skip_fails_and_names_the_allowlist(tmp_path):
    code, output = _pytest(tmp_path, "true")
    assert code == 1, output
    counts = _summary(output)
    # test_unlisted fails; the skipif marker (setup) and the module skip (collection) are errors;
    # only the allowlisted test is still skipped, and xfail stays xfail.
    assert counts.get("passed") == 1 and counts.get("failed") == 1 and counts.get("errors") == 2, output
    assert counts.get("skipped") == 1 and counts.get("xfailed") == 1, output
    assert "test_demo.py::test_unlisted was skipped (no frobnicator on this machine), and CI is set" in output
    assert "test_demo.py::test_marked was skipped (a skipif marker)" in output
    assert "test_module_skip.py was skipped (the whole module)" in output
    assert "'test_demo.py::test_unlisted | <why>'" in output and "allow.txt" in output
    assert re.search(r"SKIPPED \[1\] test_demo.py:\d+: no frobnicator on this machine", output)  # the listed one


@pytest.mark.parametrize("ci_value", [None, "", "false"])
def test_without_ci_skips_stay_skips(tmp_path, ci_value):
    code, output = _pytest(tmp_path, ci_value)
    assert code == 0, output
    counts = _summary(output)
    assert counts.get("passed") == 1 and counts.get("skipped") == 4 and "failed" not in counts, output


def test_an_allowlist_line_without_a_reason_is_refused(tmp_path):
    path = tmp_path / "allow.txt"
    path.write_text("tests/x.py::test_y\n")
    with pytest.raises(pytest.UsageError, match="expected '<node id or pattern> | <reason>'"):
        read_allowlist(path)


def test_the_allowlist_names_real_tests_and_is_empty_on_ci():
    entries = read_allowlist(ALLOWLIST)
    for pattern, reason in entries.items():
        files = pattern.split("::", 1)[0]
        assert any(fnmatch.fnmatchcase(str(p.relative_to(ROOT)), files) for p in TESTS.rglob("test_*.py")), \
            f"{pattern} ({reason}) matches no test file"
    if ci() and os.geteuid() == 0:
        assert entries == {}, f"CI runs every test: {ALLOWLIST} must be empty, it lists {entries}"
