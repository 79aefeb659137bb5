"""What the operator chose for each operation: the same options whether they come from a headless
command or reach the wizard. Light on purpose: parsers read the defaults before anything connects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .settings import DEFAULT_BACKUP_DIR

FORMATS = {"plain": ".sql", "custom": ".dump", "directory": ".dir"}
COMPRESSIONS = ("gzip", "lz4", "zstd", "none")  # pg_dump 16+ --compress=METHOD (lz4/zstd only when built with them)
MAX_JOBS = 64
DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS = 3_000  # the rollback's DROP gives up sooner than the migration
DEFAULT_RETRIES = 5  # further attempts after a lock timeout, with backoff


@dataclass(frozen=True)
class BackupOptions:
    backup_dir: Path = field(default=DEFAULT_BACKUP_DIR)
    fmt: str = "plain"  # a key of FORMATS
    trust_dir: bool = False  # accept a system directory or one not owned by the operator
    jobs: int = 1  # pg_dump --jobs (directory format only)
    compress: str | None = None  # a COMPRESSIONS entry; None: see migration.backup.compression.default_for
    exact: bool = False  # also count every table's rows on the source, in the dump's own snapshot (extra reads)


@dataclass(frozen=True)
class RollbackOptions:
    lock_timeout_ms: int = DEFAULT_ROLLBACK_LOCK_TIMEOUT_MS
    retries: int = DEFAULT_RETRIES  # further attempts after the first lock timeout
    backoff_s: float = 0.5  # first pause between attempts; doubles each time
    backoff_max_s: float = 8.0
    table_backup: bool = True
    backup_dir: Path = field(default=DEFAULT_BACKUP_DIR)
    trust_backup_dir: bool = False  # accept a system directory or one not owned by the operator
    watch_interval_s: float = 0.25  # how often the blockers are re-read while waiting

    @property
    def attempts(self) -> int:
        return 1 + max(0, self.retries)

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_s * (2 ** (attempt - 1)), self.backoff_max_s)


DEFAULT_FLEET_CONCURRENCY = 4  # targets of a wave at once (fleet --concurrency)
MAX_FLEET_CONCURRENCY = 64


@dataclass(frozen=True)
class FleetOptions:
    """How a fleet runs (``fleet FILE run`` and the wizard's Fleet screen)."""

    concurrency: int = DEFAULT_FLEET_CONCURRENCY  # targets of a wave at once
    keep_going: bool = False  # a wave with a target that did not end ok does not stop the later waves


def parse_concurrency(text) -> int:
    """``--concurrency N``: a whole number from 1 to MAX_FLEET_CONCURRENCY."""
    from .errors import ConfigError

    value = str(text).strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_FLEET_CONCURRENCY:
        raise ConfigError(f"--concurrency must be a whole number from 1 to {MAX_FLEET_CONCURRENCY}, got '{text}'.",
                          f"Pass --concurrency N: how many targets of a wave run at once (default "
                          f"{DEFAULT_FLEET_CONCURRENCY}), e.g. --concurrency 8.")
    return int(value)


@dataclass(frozen=True)
class OperatorOptions:
    """Every operation's options together: what the wizard gets from the command line."""

    backup: BackupOptions = field(default_factory=BackupOptions)
    rollback: RollbackOptions = field(default_factory=RollbackOptions)
    drill: "DrillOptions" = field(default_factory=lambda: DrillOptions())
    fleet: FleetOptions = field(default_factory=FleetOptions)


DEFAULT_DRILL_MAX_BYTES = 10 * 1024 ** 3  # drill and rehearse by default below this database size (see README)


def default_jobs() -> int:
    """Parallel jobs for a drill's restore and counts: the machine's cores, at most 4 (the copy is local)."""
    import os

    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class DrillOptions:
    """Whether and how the backup is drilled (restored on a throwaway copy) and the migration rehearsed there."""

    enabled: bool | None = None  # None: below max_bytes only; True: always (--drill); False: skipped (--skip-drill)
    rehearse: bool = True  # False: --skip-rehearsal
    max_bytes: int = DEFAULT_DRILL_MAX_BYTES
    jobs: int = field(default_factory=default_jobs)
    drill_url: str | None = field(default=None, repr=False)  # the operator's scratch database (--drill-url)
    exact: bool = False  # compare with the source's own counts too (the backup must have them: --exact)

    def wanted(self, database_bytes: int | None) -> bool:
        if self.enabled is not None:
            return self.enabled
        return database_bytes is None or database_bytes <= self.max_bytes


_SIZE = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2,
         "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4, "tb": 1024 ** 4, "tib": 1024 ** 4}


def parse_size(text: str, what: str = "--drill-max-size") -> int:
    """``10GB``, ``500 MB``, ``2g``, ``123456`` (bytes; binary multiples)."""
    import re

    from .errors import ConfigError

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE:
        raise ConfigError(f"{what} must be a size such as 10GB or 500MB, got '{text}'.", f"Set {what} to e.g. 10GB.")
    return int(float(match.group(1)) * _SIZE[unit])
