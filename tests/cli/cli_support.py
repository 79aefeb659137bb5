"""Running ``migrate-tui`` in a subprocess, the way an operator or a script does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import CANARY

# Variables of the developer's shell that would change what the command sees.
_SCRUB = ("DATABASE_URL", "CRON_SECRET", "CLOUDFLARE_ACCESS_KEY_ID", "CLOUDFLARE_SECRET_ACCESS_KEY",
          "MIGRATE_SCHEMA", "MIGRATE_LOCK_TIMEOUT_MS", "MIGRATE_STATEMENT_TIMEOUT_MS",
          "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE", "PGPASSFILE")

COMMAND = [sys.executable, "-m", "headless.entry"]


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


# Exit codes of a command that failed (migration.exit_codes): failure, busy, configuration; and cancelled.
FAILED_EXITS = (1, 75, 78)
CANCELLED_EXIT = 130


def assert_clean(result: CliResult, secrets: tuple[str, ...] = ()) -> None:
    """No traceback and no secret, on either stream, whatever the outcome."""
    for secret in (CANARY, *secrets):
        assert secret not in result.output, "a secret leaked into the output"
    assert "Traceback" not in result.output, result.output


def assert_explained(result: CliResult) -> None:
    """A failed command says what to do; a cancelled one says it was cancelled.

    Exit 1, 75 or 78: at least one ``Fix:`` line (``--json``: a non-empty ``"hint"``). Exit 1, 75,
    78 or 130: every ``Error:`` line is followed (after an optional ``Detail:``) by a ``Fix:`` line.
    Exit 130: the output says so.
    """
    try:
        document = json.loads(result.stdout)
    except ValueError:
        document = None
    if isinstance(document, dict):
        assert result.returncode == CANCELLED_EXIT or _hints(document), f"JSON without a hint:\n{result.stdout}"
        return
    lines = [line.strip() for line in result.output.splitlines()]

    def is_fix(line: str) -> bool:
        return line.startswith("Fix:") and len(line) > len("Fix: ")

    if result.returncode in FAILED_EXITS:
        assert any(is_fix(line) for line in lines), f"exit {result.returncode} without a Fix: line:\n{result.output}"
    if result.returncode == CANCELLED_EXIT:
        assert "cancel" in result.output.lower() or "interrupted" in result.output.lower(), result.output
    for index, line in enumerate(lines):
        if line.startswith("Error:"):
            after = [follow for follow in lines[index + 1:index + 3] if follow]
            if after and after[0].startswith("Detail:"):
                after = after[1:]
            assert after and is_fix(after[0]), f"{line!r} is not followed by a Fix: line:\n{result.output}"


def start_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([*COMMAND, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def _hints(value) -> bool:
    if isinstance(value, dict):
        return bool(str(value.get("hint") or "").strip()) or any(_hints(v) for v in value.values())
    if isinstance(value, list):
        return any(_hints(v) for v in value)
    return False


def finish(proc: subprocess.Popen, timeout: float = 90, secrets: tuple[str, ...] = (),
           explained: bool = True) -> CliResult:
    """Wait for the command: no traceback and no secret in its output; a failure explained (assert_explained).

    ``explained=False`` only where a test asserts the command's own wording instead (say why there).
    """
    out, err = proc.communicate(timeout=timeout)
    result = CliResult(proc.returncode, out, err)
    assert_clean(result, secrets)
    if explained and result.returncode in (*FAILED_EXITS, CANCELLED_EXIT):
        assert_explained(result)
    return result


def run_cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 90,
            secrets: tuple[str, ...] = (), explained: bool = True) -> CliResult:
    """Run to completion (stdin is not a TTY); asserts what :func:`finish` asserts."""
    return finish(start_cli(*args, cwd=cwd, env=env), timeout, secrets, explained)


def lines_in_order(output: str, expected: list[str]) -> None:
    """Each expected line appears, in this order (other lines may sit between them)."""
    lines = output.splitlines()
    position = 0
    for wanted in expected:
        for index in range(position, len(lines)):
            if lines[index].startswith(wanted):
                position = index + 1
                break
        else:
            raise AssertionError(f"{wanted!r} missing or out of order in:\n{output}")
