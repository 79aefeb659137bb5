"""No silent skips: with ``CI`` set, a skipped test is a failure unless tests/skip_allowlist.txt lists it.

Why: a test that skips where the machine lacks something (root, a tmpfs mount, PostgreSQL 15,
tmux, ...) looks green while proving nothing. CI runs as root on a machine where
``tests/run.sh`` installs everything, so there every test must run: the allowlist stays empty
and the run reports 0 skipped. Elsewhere (a developer without root) skips stay skips.

tests/conftest.py imports the hooks below; ``MIGRATE_TUI_SKIP_ALLOWLIST`` points at another
list (tests/test_skip_rule.py uses it to run the rule on a throwaway test file).
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).with_name("skip_allowlist.txt")
SEPARATOR = " | "


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def allowlist_path() -> Path:
    return Path(os.environ.get("MIGRATE_TUI_SKIP_ALLOWLIST") or ALLOWLIST)


def read_allowlist(path: Path | None = None) -> dict[str, str]:
    """``{node id pattern: reason}``; a line without a reason is an error, not a silent allowance."""
    path = path or allowlist_path()
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, sep, reason = line.partition(SEPARATOR)
        if not sep or not pattern.strip() or not reason.strip():
            raise pytest.UsageError(f"{path}:{number}: expected '<node id or pattern>{SEPARATOR}<reason>', "
                                    f"got {line!r}")
        entries[pattern.strip()] = reason.strip()
    return entries


def allowed(nodeid: str) -> bool:
    return any(fnmatch.fnmatchcase(nodeid, pattern) for pattern in read_allowlist())


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_the_skip(report) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not ci() or allowed(report.nodeid):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{report.nodeid} was skipped ({_reason(report)}), and CI is set: a skip counts as a failure.\n"
        f"Make it run here (tests/run.sh installs what the suite needs when run as root), or, if this "
        f"machine truly cannot run it, add a line '{report.nodeid}{SEPARATOR}<why>' to {allowlist_path()}.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_the_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module that skips itself at import (``pytest.skip(allow_module_level=True)``, importorskip)."""
    outcome = yield
    _fail_the_skip(outcome.get_result())
