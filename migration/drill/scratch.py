"""A scratch database the operator provides for the drill (``--drill-url URL``), when no local PostgreSQL can
load the dump (an extension not installed here, a newer major).

It is refused when it is on the target's server (a full restore there competes with production,
and a copy beside the original is easily mistaken for it) or when it is not empty (the drill would
mix its objects with others, and could not tell them apart). Its roles are the operator's business:
the ones the dump needs must exist there already (the drill names those that do not). The restored
copy stays in it afterwards; the drill says so.
"""

from __future__ import annotations

import dataclasses

from ..db import connect, connect_url
from ..errors import MigrateError, OperatorError
from ..settings import Settings
from ..url import validate_url

_SERVER = "SELECT pg_postmaster_start_time()::text, current_setting('port'), coalesce(inet_server_addr()::text, '')"
_SYSTEM_ID = "SELECT system_identifier::text FROM pg_control_system()"
_USER_OBJECTS = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
          AND n.nspname NOT LIKE 'pg\\_temp\\_%')
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
     + (SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public')
          AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%')
"""


def _identity(conn) -> tuple:
    start, port, addr = conn.execute(_SERVER).fetchone()
    try:
        system = conn.execute(_SYSTEM_ID).fetchone()[0]
    except Exception:  # noqa: BLE001 - pg_control_system() may be denied to the role; the start time still tells
        system = None
    return system, start, port, addr


def same_server(a: tuple, b: tuple) -> bool:
    if a[0] is not None and b[0] is not None:
        return a[0] == b[0] and a[1] == b[1]
    return a[1] == b[1] and a[2] == b[2]


class ScratchCopy:
    """The operator's scratch database, checked; the same interface as :class:`.local.LocalCopy`."""

    scratch = True

    def __init__(self, url: str, target: Settings) -> None:
        self.url = validate_url(url)
        self.settings = dataclasses.replace(target, database_url=self.url, env_password=None, demo=False)
        self.major = 0
        self.version = ""
        self.dbname = self.settings.target["dbname"]
        self.bin_dir = None

    @property
    def masked(self) -> str:
        return self.settings.masked_url

    def describe(self) -> str:
        return f"the scratch database {self.masked} (PostgreSQL {self.version})"

    def check(self, target: Settings, roles: list[str], source_major: int = 0) -> "ScratchCopy":
        with connect(self.settings, application_name="migrate-tui drill") as conn:
            version_num = int(conn.execute("SELECT current_setting('server_version_num')").fetchone()[0])
            self.major = version_num // 10000
            self.version = conn.execute("SELECT current_setting('server_version')").fetchone()[0].split()[0]
            if self.major < source_major:
                raise MigrateError(OperatorError(
                    f"The scratch server runs PostgreSQL {self.version}, which cannot load a dump of PostgreSQL "
                    f"{source_major} (a server loads dumps of its own major version or older).",
                    f"Give --drill-url a database on a PostgreSQL {source_major} or newer server."))
            mine = _identity(conn)
            with connect(target, application_name="migrate-tui drill") as production:
                theirs = _identity(production)
            if same_server(mine, theirs):
                raise MigrateError(OperatorError(
                    f"The drill URL {self.masked} points at the target's own server: a drill restores a full copy of "
                    "the database, which would compete with production there and could be mistaken for it.",
                    "Give --drill-url an empty database on a separate scratch server."))
            objects = int(conn.execute(_USER_OBJECTS).fetchone()[0])
            if objects:
                raise MigrateError(OperatorError(
                    f"The scratch database {self.masked} is not empty ({objects} objects): the drill restores only "
                    "into an empty database, so that everything in it comes from the backup.",
                    f"Create an empty one on the scratch server (CREATE DATABASE drill_{self.dbname};) and point "
                    "--drill-url at it."))
            present = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s::text[])",
                                                  (list(roles),)).fetchall()}
        missing = [r for r in roles if r not in present]
        if missing:
            create = " ".join(f'CREATE ROLE "{r}" NOLOGIN;' for r in missing)
            raise MigrateError(OperatorError(
                f"The scratch server lacks the role{'s' if len(missing) > 1 else ''} the dump needs: "
                f"{', '.join(missing)} (roles are not part of a database dump).",
                f"Create them on the scratch server first: {create}"))
        return self

    def admin_url(self, dbname: str | None = None) -> str:
        return self.url

    def connect(self):
        return connect_url(self.url)

    def cleanup(self) -> bool:
        """The operator's database is left as it is (with the restored copy in it)."""
        return False
