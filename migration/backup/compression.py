"""Which compression a pg_dump offers, asked of the binary itself, and the ``--compress`` argument for it.

pg_dump 16+ takes ``--compress=METHOD`` and names a method its build lacks ("this build does not
support compression with LZ4") while it reads its options, before it connects: a run against a
socket that does not exist answers in milliseconds. pg_dump 15 and older compress with gzip only
(``--compress=0..9``).

The default for the directory format is lz4 where pg_dump has it, else none: the backup before a
migration is read back within minutes (verified, drilled) and kept for days, so speed matters more
than size, and the plain format the guide uses is not compressed either. gzip at pg_dump's default
level costs several times the dump's own time on one core per job.
"""

from __future__ import annotations

import functools
import subprocess

from ..children import PROBE_TIMEOUT_S, child_environ
from ..errors import MigrateError, OperatorError
from ..options import COMPRESSIONS

_NO_SERVER = "host=/nonexistent-migrate-tui-probe port=1 connect_timeout=1"


@functools.lru_cache(maxsize=32)
def offers(pg_dump: str, major: int, method: str) -> bool:
    """Whether this pg_dump can write ``method`` (one probe, remembered)."""
    if method == "none":
        return True
    if major < 16:
        return method == "gzip"
    try:
        proc = subprocess.run([pg_dump, "--format=directory", f"--compress={method}", "--file=/nonexistent/x",
                               f"--dbname={_NO_SERVER}", "--no-password"], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL, env=child_environ())
    except (OSError, subprocess.SubprocessError):
        return False
    return "does not support compression" not in proc.stderr and "invalid compression" not in proc.stderr


def supported(pg_dump: str, major: int) -> tuple[str, ...]:
    """The methods this pg_dump can write (``none`` always)."""
    return tuple(m for m in COMPRESSIONS if offers(pg_dump, major, m))


def default_for(fmt: str, pg_dump: str, major: int) -> str | None:
    """The compression used when the operator chose none (None: pg_dump's own default)."""
    if fmt != "directory":
        return None
    return "lz4" if offers(pg_dump, major, "lz4") else "none"


def argument(method: str | None, pg_dump: str, major: int, version: str) -> str | None:
    """``--compress=...`` for pg_dump (None: no option); a method this pg_dump lacks: MigrateError."""
    if method is None:
        return None
    if method not in COMPRESSIONS:
        raise MigrateError(OperatorError(f"Unknown compression {method!r}.", "Use one of: " + ", ".join(COMPRESSIONS)))
    if not offers(pg_dump, major, method):
        have = ", ".join(supported(pg_dump, major))
        older = " (pg_dump 15 and older compress with gzip only)" if major < 16 else ""
        raise MigrateError(OperatorError(
            f"pg_dump {version} cannot compress with {method}{older}; it offers: {have}.",
            f"Choose --compress {have.split(', ')[0]} (or none), or set PG_DUMP to a pg_dump built with {method}."))
    if major < 16:
        return "--compress=0" if method == "none" else "--compress=6"
    return f"--compress={method}"
