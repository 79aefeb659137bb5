"""Every process a command starts and every file it writes, from the kernel's side: ``strace -f``.

The command runs under ``strace -f`` tracing only ``execve``, the calls that start a process or a
thread (``clone``/``clone3``/``fork``/``vfork``: who started whom), the calls that create or write a
file (``open``/``openat``/``creat`` with a write flag, ``link``/``rename`` to a new name) and those that
remove one (``unlink``/``unlinkat``: by whom); strings are printed in hex (``-xx``, nothing to unescape)
and descriptors with their paths (``-y``, ``AT_FDCWD`` too: a relative name is resolved against the
process's working directory seen last). So nothing is sampled: every ``execve`` of every descendant,
with the argv and the environment it was given, the parent of every process, and the path of every file
opened for writing (resolved by the kernel) or removed are in the trace. The first ``execve`` is the
command itself (the operator's process, with the operator's environment): it is told apart by its pid,
never by what its command line looks like.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CALLS = ("execve,execveat,clone,clone3,fork,vfork,open,openat,creat,link,linkat,rename,renameat,renameat2,"
         "unlink,unlinkat")
STARTS = ("clone", "clone3", "fork", "vfork")
_LINE = re.compile(r"^(\d+) +(\w+)\((.*)$")
_STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
_FD_PATH = re.compile(r"<((?:\\x[0-9a-f]{2})*)>")
_CWD = re.compile(r"AT_FDCWD<((?:\\x[0-9a-f]{2})*)>")
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
    parents: dict[int, int] = field(default_factory=dict)  # process or thread -> the one that started it
    removed: dict[str, int] = field(default_factory=dict)  # every file unlinked -> the pid that did it (last)
    moved: set[str] = field(default_factory=set)  # every file renamed to another name (its old name)
    cwd: dict[int, str] = field(default_factory=dict)  # the working directory each process was last seen in

    @property
    def command_pid(self) -> int:
        return self.execs[0].pid

    def children(self) -> list[Exec]:
        """Every execve but the command's own first one."""
        return self.execs[1:]

    def program(self, pid: int | None) -> bytes | None:
        """What ``pid`` ran last: the last program execve'd by it or its nearest ancestor that execve'd one
        (a thread or a fork runs its parent's program). None: unknown."""
        last = {e.pid: e.path for e in self.execs}
        seen = set()
        while pid is not None and pid not in seen:
            if pid in last:
                return last[pid]
            seen.add(pid)
            pid = self.parents.get(pid)
        return None

    def starter(self, pid: int) -> bytes | None:
        """What the process that started ``pid`` was running."""
        return self.program(self.parents.get(pid))


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


def _absolute(trace: Trace, pid: int, name: str, directory: str | None) -> str:
    if name.startswith("/"):
        return name
    if directory is not None:
        return str(Path(_text(directory).decode(errors="replace")) / name)
    return str(Path(trace.cwd[pid]) / name) if pid in trace.cwd else name


def _finish(trace: Trace, pid: int, call: str, rest: str) -> None:
    cwd = _CWD.search(rest)
    if cwd:
        trace.cwd[pid] = _text(cwd.group(1)).decode(errors="replace")
    result = _RESULT.search(rest)
    if result is None or int(result.group(1)) < 0:
        return
    if call in STARTS:
        if int(result.group(1)) > 0:
            trace.parents[int(result.group(1))] = pid
    elif call in ("execve", "execveat"):
        parts = rest.split("], [")
        head, environ = parts[0], parts[-1] if len(parts) > 1 else ""
        strings = _STRING.findall(head)
        trace.execs.append(Exec(pid, _text(strings[0]), [_text(s) for s in strings[1:]],
                                [_text(s) for s in _STRING.findall(environ)]))
    elif call in ("open", "openat", "creat"):
        if result.group(2) and (call == "creat" or any(flag in rest for flag in WRITE_FLAGS)):
            trace.written.add(_text(result.group(2)).decode(errors="replace"))
    else:  # unlink: the name removed; link / rename: the new name (and rename: the old one, moved)
        strings = [_text(h).decode(errors="replace") for h in _STRING.findall(rest)]
        dirs = _FD_PATH.findall(rest)  # *at calls: the directory of each name, in order
        if not strings:
            return
        new = _absolute(trace, pid, strings[-1], dirs[-1] if dirs else None)
        if call in ("unlink", "unlinkat"):
            if "AT_REMOVEDIR" not in rest:
                trace.removed[new] = pid
            return
        trace.written.add(new)
        if call.startswith("rename") and len(strings) == 2:
            trace.moved.add(_absolute(trace, pid, strings[0], dirs[0] if dirs else None))
