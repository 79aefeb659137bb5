"""Recording wrappers for every program migrate-tui can start: each writes its own argv, uid and
``/proc/self/environ`` to a file of its own, then becomes the real program (same process).

They are put where the tool looks for its children: first on ``PATH``, and as ``PG_DUMP`` /
``PG_RESTORE`` (psql and pg_restore are also found as siblings of ``PG_DUMP``); with ``server=True``
also as the drill's PostgreSQL (``MIGRATE_DRILL_PG_BIN``, :meth:`Recorders.env`). The wrapper is a
Python script run isolated (``-I``: it reads nothing of the environment it records) that starts
no other process, so every process the tool starts is either a wrapper or the program a wrapper
became. The tool gives children an allowlisted environment only, so each wrapper carries its
settings (the real program, the record directory) in the script itself.

A throwaway server (``server=True``):

- ``initdb`` and ``pg_ctl`` find ``postgres`` next to their own path (``argv[0]``): they are given the
  wrapper's, so the ``postgres`` they run (initdb's probes and bootstrap, pg_ctl's postmaster, started
  through ``/bin/sh -c "exec …"`` so the pid stays the postmaster's) is the wrapper too. initdb also reads
  its share directory relative to that path: ``share`` next to the wrappers' ``bin`` is a link to the real
  one (the embedded PostgreSQL's layout: ``bin`` and ``share`` side by side). ``postgres`` itself is
  given its real path (it finds its libraries and share directory from it).
- What the server's start runs besides: ``runuser`` (as root: the programs run as an unprivileged OS
  user) and ``locale`` (the single-user backend's ``sh -c "locale -a"`` while initdb imports the system's
  collations, found on ``PATH``) are wrapped too.
- As root the server's programs run as that OS user: the wrappers and their interpreter must be
  runnable by it (a Python every user can reach, wrappers 0755, their directories traversable) and it
  must be able to leave its records: the record directory is 1733 (anyone may add a file, nobody but
  root may list or read them; sticky).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

# The PostgreSQL client programs, and a local server's (a restore drill's) programs.
PROGRAMS = ("pg_dump", "pg_restore", "psql", "initdb", "pg_ctl", "postgres", "pg_config")
# The system programs a throwaway server's start runs: found on PATH.
SYSTEM = ("runuser", "locale")
# Run with the wrapper's own path as argv[0]: they look for postgres next to it.
SELF_NAMED = ("initdb", "pg_ctl")
# A shell these real programs start (popen: initdb's probes and bootstrap, the single-user backend's "locale -a"
# when it imports the system's collations; pg_ctl's "exec postgres"): /bin/sh, by its absolute path.
SHELL_USERS = ("initdb", "pg_ctl", "postgres")
SHELL = "/bin/sh"

WRAPPER = """#!{python} -I
import json, os, sys
mask = os.umask(0o077)
with open("/proc/self/environ", "rb") as handle:
    environ = handle.read()
record = {{"pid": os.getpid(), "uid": os.getuid(), "argv": [os.fsencode(a).hex() for a in sys.argv],
          "environ": environ.hex()}}
fd = os.open(os.path.join({log!r}, "call.%d.%s.json" % (os.getpid(), os.urandom(6).hex())),
             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps(record).encode())
os.close(fd)
os.umask(mask)
os.execv({real!r}, [{argv0!r}, *sys.argv[1:]])
"""


@dataclass
class Call:
    pid: int
    uid: int
    argv: list[bytes]
    environ: dict[bytes, bytes]
    raw_environ: bytes

    @property
    def program(self) -> str:
        return os.path.basename(self.argv[0].decode(errors="replace"))

    @property
    def connects(self) -> bool:
        """A run that talks to a server: pg_dump and psql (not a ``--version`` probe), and a pg_restore
        into a database (the drill's; the backup's verification only reads the file)."""
        if b"--version" in self.argv:
            return False
        return self.program in ("pg_dump", "psql") or (
            self.program == "pg_restore" and any(a.startswith(b"--dbname=") for a in self.argv))


def runnable_by_everyone(path: str) -> bool:
    real = Path(os.path.realpath(path))
    try:
        return bool(real.stat().st_mode & stat.S_IXOTH) and all(
            p.stat().st_mode & stat.S_IXOTH for p in real.parents)
    except OSError:
        return False


def interpreter(server: bool) -> str:
    """The wrappers' Python: ours, or (when a server's OS user must run them too) one every user can run."""
    if not server or os.geteuid() != 0:
        return sys.executable
    for python in (sys.executable, getattr(sys, "_base_executable", ""), "/usr/bin/python3"):
        if python and runnable_by_everyone(python):
            return python
    raise AssertionError("no Python interpreter the throwaway server's OS user can run, for the recording wrappers "
                         f"({sys.executable} is under a directory it cannot reach; install python3 in /usr/bin)")


class Recorders:
    """Wrappers in ``root/bin`` recording into ``root/calls``, for the programs of ``real_bin`` (and, with
    ``server``, the system programs a throwaway server's start runs)."""

    def __init__(self, root: Path, real_bin: Path, programs: tuple[str, ...] = PROGRAMS, *,
                 server: bool = False) -> None:
        self.root = root
        self.bin_dir = root / "bin"
        self.log_dir = root / "calls"
        self.server = server
        self.bin_dir.mkdir(parents=True)
        self.log_dir.mkdir(mode=0o700, parents=True)
        self.real: dict[str, str] = {}
        reals = {name: real_bin / name for name in programs}
        if server:
            self.log_dir.chmod(0o1733)  # the server's OS user adds its records; nobody else lists or reads them
            (root / "share").symlink_to(real_bin.parent / "share")
            reals.update({name: Path(shutil.which(name) or f"/nonexistent/{name}") for name in SYSTEM})
            for parent in [root, *root.parents]:  # the server's OS user reaches the wrappers and the records
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)
        python = interpreter(server)
        for name, real in reals.items():
            if not real.exists():
                continue
            script = self.bin_dir / name
            script.write_text(WRAPPER.format(
                python=python, log=str(self.log_dir), real=str(real),
                argv0=str(script) if server and name in SELF_NAMED else str(real)))
            script.chmod(0o755 if server else 0o700)
            self.real[str(script)] = str(real)

    def env(self, path: str) -> dict[str, str]:
        """PATH with the wrappers first, PG_DUMP / PG_RESTORE pointing at them, and with ``server`` the drill's
        PostgreSQL taken from them (MIGRATE_DRILL_PG_BIN)."""
        env = {"PATH": f"{self.bin_dir}:{path}", "PG_DUMP": str(self.bin_dir / "pg_dump"),
               "PG_RESTORE": str(self.bin_dir / "pg_restore")}
        if self.server:
            env["MIGRATE_DRILL_PG_BIN"] = str(self.bin_dir)
        return env

    def shell_users(self) -> set[str]:
        """The real programs that start ``/bin/sh`` themselves (the shell then runs a wrapper)."""
        return {real for script, real in self.real.items() if Path(script).name in SHELL_USERS}

    def calls(self) -> list[Call]:
        found = []
        for path in sorted(self.log_dir.glob("call.*.json")):
            record = json.loads(path.read_text())
            raw = bytes.fromhex(record["environ"])
            environ = dict(item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
            found.append(Call(record["pid"], record.get("uid", -1), [bytes.fromhex(a) for a in record["argv"]],
                              environ, raw))
        return found
