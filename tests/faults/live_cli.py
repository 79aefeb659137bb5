"""The CLI as a subprocess whose output the test reads while it runs, without ever blocking on it.

Used with :mod:`pg_proxy`: when a statement of the tool is held at the relay, everything the tool
printed before sending it is already in its stdout pipe (it prints with ``flush=True`` from the
thread that then sends the statement), so :meth:`LiveCli.drain` tells exactly which step or phase
the held statement belongs to.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from cli.cli_support import COMMAND, CliResult, assert_clean, assert_explained

CANCELLED, FAILED_EXITS = 130, (1, 75, 78)
_STEP = re.compile(r"^… Step (\d)/8 ", re.M)


class LiveCli:
    def __init__(self, *args: str, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([*COMMAND, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._out = bytearray()
        self._err = bytearray()
        for stream in (self.proc.stdout, self.proc.stderr):
            os.set_blocking(stream.fileno(), False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def drain(self) -> None:
        """Read whatever the tool has written so far (never waits)."""
        for stream, buffer in ((self.proc.stdout, self._out), (self.proc.stderr, self._err)):
            while True:
                try:
                    chunk = os.read(stream.fileno(), 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                buffer.extend(chunk)

    @property
    def stdout(self) -> str:
        return self._out.decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self._err.decode("utf-8", errors="replace")

    def step(self) -> int | None:
        """The last step of the migration it announced (``--verbose``: "… Step N/8 …"), after a drain."""
        self.drain()
        found = _STEP.findall(self.stdout)
        return int(found[-1]) if found else None

    def printed(self, text: str) -> bool:
        self.drain()
        return text in self.stdout or text in self.stderr

    def wait_printed(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.printed(text):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.drain()
                raise AssertionError(f"{text!r} was not printed (exit {self.proc.poll()}):\n{self.stdout}{self.stderr}")
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 60) -> int:
        """Wait for the process to end (its output is read meanwhile); its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            self.drain()
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"the command did not end within {timeout} s:\n{self.stdout}{self.stderr}")
            time.sleep(0.02)
        self.drain()
        return self.proc.returncode

    def finish(self, timeout: float = 60) -> CliResult:
        """Wait for the end; as :func:`cli.cli_support.finish`: no traceback or password, a failure explained."""
        code = self.wait(timeout)
        self.close()
        result = CliResult(code, self.stdout, self.stderr)
        assert_clean(result)
        if code in (*FAILED_EXITS, CANCELLED):
            assert_explained(result)
        return result

    def kill9(self, timeout: float = 30) -> None:
        """SIGKILL: no handler runs, nothing is printed afterwards."""
        self.signal(signal.SIGKILL)
        code = self.wait(timeout)
        assert code == -signal.SIGKILL, code
        self.close()

    def close(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
