"""A backup's manifest (``NAME.manifest.json`` beside it): what was dumped, from where, how it was verified,
what it holds (rows per table, objects, extensions, roles), and later what its drill and rehearsal found.

Written once with the backup (before the dump gets its final name); :func:`record` adds a drill's or
a rehearsal's result by replacing the file with a new version (:meth:`CheckedDir.replace_own`).
:func:`load` reads a backup and its manifest back for a drill: only files of the operator's, never
through a link.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import OperatorError
from ..redact import redact
from ..safe_files import CheckedDir, UnsafePath, open_dir, read_all

SUFFIX = ".manifest.json"
_LIMIT = 64 << 20


def write(directory: CheckedDir, final: str, manifest: dict, secrets: list[str], written: list[str],
          checksums: str) -> Path:
    """The ``.sha256`` file (``sha256sum -c`` reads it), then the manifest; each name goes into ``written``."""
    directory.write_new(final + ".sha256", checksums.encode())
    written.append(final + ".sha256")
    text = redact(json.dumps(manifest, indent=2), secrets) + "\n"
    path = directory.write_new(final + SUFFIX, text.encode())
    written.append(final + SUFFIX)
    return path


@dataclass
class LoadedBackup:
    """A backup read back: its manifest, and the checked directory it lives in (close it when done)."""

    path: Path
    directory: CheckedDir
    manifest: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def format(self) -> str:
        return str(self.manifest.get("format", "plain"))

    def close(self) -> None:
        self.directory.close()


def load(path: str | os.PathLike[str]) -> LoadedBackup:
    """A migrate-tui backup and its manifest, both the operator's own files; UnsafePath otherwise."""
    path = Path(path)
    directory = open_dir(path.parent if str(path.parent) else ".", what="directory of the backup")
    try:
        try:
            fd = directory.open_own(path.name + SUFFIX, "manifest of the backup")
        except UnsafePath as exc:
            raise UnsafePath(OperatorError(
                exc.error.message + " Without it, nothing says what the backup holds.",
                "Drill a backup written by migrate-tui backup (or run), with its .manifest.json beside it.")) from None
        try:
            data = read_all(fd)
        finally:
            os.close(fd)
        try:
            manifest = json.loads(data[:_LIMIT])
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict) or manifest.get("created_by") != "migrate-tui" \
                or manifest.get("file") != path.name:
            raise UnsafePath(OperatorError(f"The manifest of {path} is not one migrate-tui wrote for it.",
                                           "Drill a backup written by migrate-tui backup (or run)."))
        if "rows" not in manifest or "objects" not in manifest:
            raise UnsafePath(OperatorError(
                f"The manifest of {path} has no row counts or objects to compare with (it was written by an "
                "older migrate-tui).", "Take a new backup (migrate-tui backup) and drill that one."))
        return LoadedBackup(path, directory, manifest)
    except BaseException:
        directory.close()
        raise


def record(backup: Path, key: str, result: dict, secrets: list[str]) -> Path:
    """Add ``result`` under ``key`` ("drill", "rehearsal") to the backup's manifest (a new version of the file)."""
    with open_dir(backup.parent if str(backup.parent) else ".", what="directory of the backup") as directory:
        name = backup.name + SUFFIX
        fd = directory.open_own(name, "manifest of the backup")
        try:
            manifest = json.loads(read_all(fd))
        finally:
            os.close(fd)
        manifest[key] = result
        text = redact(json.dumps(manifest, indent=2), secrets) + "\n"
        return directory.replace_own(name, text.encode(), "manifest of the backup")
