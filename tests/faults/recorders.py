"""Recording wrappers for every program migrate-tui can start: each writes its own argv and
``/proc/self/environ`` to a root-only file, then becomes the real program (same process).

They are put where the tool looks for its children: first on ``PATH``, and as ``PG_DUMP`` /
``PG_RESTORE`` (psql and pg_restore are also found as siblings of ``PG_DUMP``). The wrapper is a
Python script run isolated (``-I``: it reads nothing of the environment it records) that starts
no other process, so every process the tool starts is either a wrapper or the program a wrapper
became. The tool gives children an allowlisted environment only, so each wrapper carries its
settings (the real program, the record directory) in the script itself.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# The PostgreSQL client programs, and a local server's (a restore drill's) programs.
PROGRAMS = ("pg_dump", "pg_restore", "psql", "initdb", "pg_ctl", "postgres")

WRAPPER = """#!{python} -I
import json, os, sys
os.umask(0o077)
with open("/proc/self/environ", "rb") as handle:
    environ = handle.read()
record = {{"pid": os.getpid(), "argv": [os.fsencode(a).hex() for a in sys.argv], "environ": environ.hex()}}
fd = os.open(os.path.join({log!r}, "call.%d.%s.json" % (os.getpid(), os.urandom(6).hex())),
             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps(record).encode())
os.close(fd)
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


@dataclass
class Call:
    pid: int
    argv: list[bytes]
    environ: dict[bytes, bytes]
    raw_environ: bytes

    @property
    def program(self) -> str:
        return os.path.basename(self.argv[0].decode(errors="replace"))

    @property
    def connects(self) -> bool:
        """A run that talks to the server (not a ``--version`` probe; pg_restore only reads a file)."""
        return self.program in ("pg_dump", "psql") and b"--version" not in self.argv


class Recorders:
    """Wrappers in ``root/bin`` recording into ``root/calls`` (0700), for the programs of ``real_bin``."""

    def __init__(self, root: Path, real_bin: Path, programs: tuple[str, ...] = PROGRAMS) -> None:
        self.bin_dir = root / "bin"
        self.log_dir = root / "calls"
        self.bin_dir.mkdir(parents=True)
        self.log_dir.mkdir(mode=0o700, parents=True)
        self.real = {}
        for name in programs:
            real = real_bin / name
            if not real.exists():
                continue
            script = self.bin_dir / name
            script.write_text(WRAPPER.format(python=sys.executable, log=str(self.log_dir), real=str(real)))
            script.chmod(0o700)
            self.real[str(script)] = str(real)

    def env(self, path: str) -> dict[str, str]:
        """PATH with the wrappers first, and PG_DUMP / PG_RESTORE pointing at them."""
        return {"PATH": f"{self.bin_dir}:{path}", "PG_DUMP": str(self.bin_dir / "pg_dump"),
                "PG_RESTORE": str(self.bin_dir / "pg_restore")}

    def calls(self) -> list[Call]:
        found = []
        for path in sorted(self.log_dir.glob("call.*.json")):
            record = json.loads(path.read_text())
            raw = bytes.fromhex(record["environ"])
            environ = dict(item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
            found.append(Call(record["pid"], [bytes.fromhex(a) for a in record["argv"]], environ, raw))
        return found
