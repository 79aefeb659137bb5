"""The verified full backup: :class:`Backup` (pg_dump, progress, publish), :mod:`.verify` (is the dump
complete?), :mod:`.hashing` (its sha256 while it is written), :mod:`.progress` (tables, bytes, ETA)."""

from .dump import PREFIX, Backup
from .progress import TableSize, human_bytes

__all__ = ["PREFIX", "Backup", "TableSize", "human_bytes"]
