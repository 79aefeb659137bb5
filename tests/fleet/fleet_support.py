"""Fleet tests: fleet files written 0600, the environment their url_env names, and reading each target back."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from cli.cli_support import cli_env

from migration import catalog
from migration.db import connect
from migration.runner import Migration
from migration.settings import load_settings


def write_fleet(path: Path, targets: list[dict], defaults: dict | None = None, mode: int = 0o600) -> Path:
    """A fleet file of these targets (dicts of TOML keys; strings quoted, booleans and numbers as given)."""
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = []
    if defaults:
        lines.append("[defaults]")
        lines += [f"{k} = {value(v)}" for k, v in defaults.items()]
    for target in targets:
        lines += ["", "[[target]]"] + [f"{k} = {value(v)}" for k, v in target.items()]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, mode)
    return path


def env_var(name: str) -> str:
    return "FLEET_" + name.upper().replace("-", "_").replace(".", "_") + "_URL"


def fleet_env(urls: dict[str, str], **extra: str) -> dict[str, str]:
    """The CLI environment with each target's URL (and its password) in the variable its url_env names."""
    return cli_env(None, **{env_var(name): url for name, url in urls.items()}, **extra)


def target(name: str, wave: str, **more) -> dict:
    return {"name": name, "url_env": env_var(name), "wave": wave, **more}


def closed_port_url(user: str = "app_user", password: str = "x") -> str:
    """A URL of a port nothing listens on (bound, then closed): the connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/nowhere"


def table_state(db) -> str:
    """What the catalog says of database_backups: absent, valid or invalid (read on a fresh connection)."""
    settings = load_settings(database_url=db.url, environ={})
    with connect(settings) as conn:
        report = catalog.inspect(conn, "public")
    if not report.exists:
        return "absent"
    return "valid" if report.valid else "invalid"


def migrate(db) -> None:
    """Migrate the database with the engine itself (an already migrated target)."""
    result = Migration(load_settings(database_url=db.url, environ={}), lambda event: None).run()
    assert result.ok, result


def drop_column(db, column: str = "metadata") -> None:
    """A database_backups table that lacks a column (the guide's 'different structure')."""
    migrate(db)
    db.execute(f'ALTER TABLE public.database_backups DROP COLUMN "{column}"')


def summary_rows(output: str, action: str = "run") -> dict[str, dict[str, str]]:
    """The summary table: {target: {wave, outcome, duration, backup, message}}."""
    import re

    lines = output.splitlines()
    start = lines.index(f"Fleet {action} summary") + 2  # the title, then the header
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = dict(zip(("wave", "outcome", "duration", "backup", "message"), cells[1:]))
    return rows
