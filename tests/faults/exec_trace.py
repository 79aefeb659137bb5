"""Every process a command starts and every file it writes, from the kernel's side: ``strace -f``.

The command runs under ``strace -f`` tracing only ``execve`` and the calls that create or write a
file (``open``/``openat``/``creat`` with a write flag, ``link``/``rename`` to a new name); strings are
printed in hex (``-xx``, nothing to unescape) and descriptors with their paths (``-y``). So nothing is
sampled: every ``execve`` of every descendant, with the argv and the environment it was given, and
the path of every file opened for writing (resolved by the kernel) are in the trace. The first
``execve`` is the command itself (the operator's process, with the operator's environment): it is
told apart by its pid, never by what its command line looks like.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CALLS = "execve,execveat,open,openat,creat,link,linkat,rename,renameat,renameat2"
_LINE = re.compile(r"^(\d+) +(\w+)\((.*)$")
_STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
_FD_PATH = re.compile(r"<((?:\\x[0-9a-f]{2})*)>")
_RESUMED = re.compile(r"^(\d+) +<\.\.\. (\w+) resumed>(.*)$")
_RESULT = re.compile(r"\) += (-?\d+)(?:<((?:\\x[0-9a-f]{2})*)>)?")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def available() -> str | None:
    return shutil.which("strace")


def _text(hexed: str) -> bytes:
    return bytes.fromhex(hexed.replace("\\x", ""))


@dataclass
class Exec:
    pid: int
    path: bytes
    argv: list[bytes]
    environ: list[bytes]

    @property
    def name(self) -> str:
        return Path(self.path.decode(errors="replace")).name


@dataclass
class Trace:
    execs: list[Exec] = field(default_factory=list)  # successful ones, in order
    written: set[str] = field(default_factory=set)  # every file opened for writing or given a new name

    @property
    def command_pid(self) -> int:
        return self.execs[0].pid

    def children(self) -> list[Exec]:
        """Every execve but the command's own first one."""
        return self.execs[1:]


def command(out: Path, argv: list[str]) -> list[str]:
    return [available() or "strace", "-f", "-qq", "--seccomp-bpf", "-e", f"trace={CALLS}", "-e", "signal=none",
            "-y", "-xx", "-v", "-s", "1048576", "-o", str(out), "--", *argv]


def parse(path: Path) -> Trace:
    """The successful execve calls (in order) and the written files of a trace; a call split by
    ``<unfinished ...>`` / ``<... resumed>`` (processes interleaving) is put back together."""
    trace = Trace()
    pending: dict[int, tuple[str, str]] = {}
    for raw in path.read_text(errors="replace").splitlines():
        resumed = _RESUMED.match(raw)
        if resumed:
            pid = int(resumed.group(1))
            if pid in pending:
                call, first = pending.pop(pid)
                _finish(trace, pid, call, first.removesuffix("<unfinished ...>") + resumed.group(3))
            continue
        match = _LINE.match(raw)
        if not match:
            continue
        pid, call, rest = int(match.group(1)), match.group(2), match.group(3)
        if rest.endswith("<unfinished ...>"):
            pending[pid] = (call, rest)
        else:
            _finish(trace, pid, call, rest)
    return trace


def _finish(trace: Trace, pid: int, call: str, rest: str) -> None:
    result = _RESULT.search(rest)
    if result is None or int(result.group(1)) < 0:
        return
    if call in ("execve", "execveat"):
        parts = rest.split("], [")
        head, environ = parts[0], parts[-1] if len(parts) > 1 else ""
        strings = _STRING.findall(head)
        trace.execs.append(Exec(pid, _text(strings[0]), [_text(s) for s in strings[1:]],
                                [_text(s) for s in _STRING.findall(environ)]))
    elif call in ("open", "openat", "creat"):
        if result.group(2) and (call == "creat" or any(flag in rest for flag in WRITE_FLAGS)):
            trace.written.add(_text(result.group(2)).decode(errors="replace"))
    else:  # link / rename: the new name
        strings = _STRING.findall(rest)
        dirs = _FD_PATH.findall(rest)
        if strings:
            name = _text(strings[-1]).decode(errors="replace")
            if not name.startswith("/") and dirs:
                name = str(Path(_text(dirs[-1]).decode(errors="replace")) / name)
            trace.written.add(name)
