"""Events of a full backup (pg_dump of the whole database, verified)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..outcome import Finished

if TYPE_CHECKING:
    from ..pgtools import PgTool


@dataclass(frozen=True)
class BackupStarted:
    path: str  # the final file name the backup will get
    format: str
    tables_total: int
    database: str
    database_bytes: int
    server_version: str
    tool: PgTool
    directory: str = ""  # the backup directory, resolved when it is a link ("backups -> /mnt/x/backups")
    removed: tuple[str, ...] = ()  # temporary files of killed runs, deleted from the directory before starting
    jobs: int = 1  # pg_dump --jobs (directory format)
    compression: str | None = None  # --compress method (None: pg_dump's default)
    exact: bool = False  # rows are also counted on the source, in the dump's snapshot


@dataclass(frozen=True)
class BackupProgress:
    tables_done: int
    tables_total: int
    current_table: str | None
    bytes_written: int
    fraction: float  # 0..1, weighted by relation size
    elapsed_s: float
    eta_s: float | None
    running: tuple[str, ...] = ()  # every table being dumped now (several with --jobs)


@dataclass(frozen=True)
class BackupVerifying:
    path: str
    method: str


@dataclass(frozen=True)
class BackupFinished(Finished):
    path: str | None = None
    size: int = 0
    sha256: str | None = None
    manifest: str | None = None
    dump_s: float = 0.0
    verify_s: float = 0.0
    rows: int = 0  # rows in the dump, counted while it was written (or read back) at no cost to the server
    tables: int = 0  # tables with data in the dump
    database_bytes: int = 0  # pg_database_size of the source when it was dumped (what a drill must restore)

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_ms / 1000


BackupEvent = BackupStarted | BackupProgress | BackupVerifying | BackupFinished
