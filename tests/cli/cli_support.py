"""Running ``migrate-tui`` in a subprocess, the way an operator or a script does."""

from __future__ import annotations

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

COMMAND = [sys.executable, "-m", "tui.entry"]


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


def assert_clean(result: CliResult, secrets: tuple[str, ...] = ()) -> None:
    """No traceback and no secret, on either stream, whatever the outcome."""
    for secret in (CANARY, *secrets):
        assert secret not in result.output, "a secret leaked into the output"
    assert "Traceback" not in result.output, result.output


def start_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([*COMMAND, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def finish(proc: subprocess.Popen, timeout: float = 90, secrets: tuple[str, ...] = ()) -> CliResult:
    out, err = proc.communicate(timeout=timeout)
    result = CliResult(proc.returncode, out, err)
    assert_clean(result, secrets)
    return result


def run_cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 90,
            secrets: tuple[str, ...] = ()) -> CliResult:
    """Run to completion (stdin is not a TTY); asserts no traceback and no secret in the output."""
    return finish(start_cli(*args, cwd=cwd, env=env), timeout, secrets)


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
