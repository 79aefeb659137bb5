"""Safe in a hostile database, finding 2: a ``database_backups`` that is not an ordinary table.

Reproduced on the old code: a view named ``database_backups`` made ``rollback`` (preview) and
``rollback --yes`` read from it, so the attacker's function in its select list ran as the operator.
Now a view, materialized view, foreign table, partitioned table or sequence of that name must be
reported as such (check, run, rollback preview, wizard Target and Rollback screens) with a fix hint,
never read from and never dropped by the tool.

Each kind is made by the attacker (CREATE on schema public) so that any read would run the attacker's
code (``public.hostile_hit``: a ``hostile-hit`` line in the server log, a marker row, an attempt at
ALTER ROLE … SUPERUSER):

- view: the attacker's function in its select list;
- materialized view: the function in its definition. Reading a materialized view runs no function (its
  rows are stored; only REFRESH runs the definition), so "never read" rests on the statement log here;
- foreign table: postgres_fdw (both servers ship it: the embedded 18 wheel and Debian's 15) back to this
  database, onto a view with the function: the remote read runs it. file_fdw's ``program`` option would
  need the attacker to hold pg_execute_server_program, which an ordinary role has not;
- partitioned table: its one partition is such a foreign table, so any read of the parent reaches it;
- sequence: reading one runs no code at all; the statement log is the witness.

And for every kind, the strongest witness: no statement of any migrate-tui session (the tool's and the
pg_dump/psql it runs) names ``database_backups`` at all (the catalog lookups pass the name as a parameter),
so nothing selected from, copied, locked or dropped it. Each hook is then shown to work (:func:`_arm`), so
the test could fail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from psycopg import sql

from cli.cli_support import CliResult, cli_env, run_cli
from hostile_objects import helpers_sql
from hostile_support import ATTACKER, HostileServer, LogEntry, hits, operator_settings, wizard_target

KINDS = ["view", "materialized view", "foreign table", "partitioned table", "sequence"]
TEXT_VALUE = "'x'::text"
REMOTE = "hostile_remote"  # the view behind the foreign table (and the partition)
COMMANDS = {"check": ("check",), "run": ("run", "--yes"), "rollback preview": ("rollback",),
            "rollback --yes": ("rollback", "--yes", "--cascade")}
EXIT = {"check": 1, "run": 1, "rollback --yes": 1}
# The rollback preview: 0 today. It should be 1, as check and rollback --yes are for the same database: the
# rollback it previews cannot be done (see test_the_rollback_preview_names_the_kind_with_a_fix).
PREVIEW_EXIT = 1


def _make(hs: HostileServer, dbname: str, kind: str) -> None:
    """The attacker's relation named database_backups, of this kind, in a database like an old one."""
    with hs.admin(dbname) as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        if kind in ("foreign table", "partitioned table"):
            conn.execute("CREATE EXTENSION postgres_fdw")
            conn.execute(sql.SQL("CREATE SERVER hostile_loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS "
                                 "(host '127.0.0.1', port {}, dbname {})").format(
                sql.Literal(str(hs.local.port)), sql.Literal(dbname)))
            conn.execute(sql.SQL("CREATE USER MAPPING FOR PUBLIC SERVER hostile_loop OPTIONS (user {}, password {})")
                         .format(sql.Literal(ATTACKER), sql.Literal(hs.attacker_password)))
            conn.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER hostile_loop TO {}").format(sql.Identifier(ATTACKER)))
        conn.execute("BEGIN")
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ATTACKER)))
        conn.execute("SET LOCAL hostile.quiet = on")  # the set-up itself (filling the materialized view)
        conn.execute(helpers_sql(ATTACKER))
        hit = "public.hostile_pass('{what}', {value})"
        if kind == "view":
            conn.execute(f"CREATE VIEW public.database_backups AS SELECT {hit.format(what='view', value='1')} AS id, "
                         f"{hit.format(what='view', value=TEXT_VALUE)} AS filename")
        elif kind == "materialized view":
            conn.execute(f"CREATE MATERIALIZED VIEW public.database_backups AS SELECT "
                         f"{hit.format(what='materialized view (its definition)', value='1')} AS id")
        elif kind in ("foreign table", "partitioned table"):
            conn.execute(f"CREATE VIEW public.{REMOTE} AS SELECT "
                         f"{hit.format(what=f'{kind} (the remote read)', value='1')} AS id")
            options = f"SERVER hostile_loop OPTIONS (schema_name 'public', table_name '{REMOTE}')"
            if kind == "foreign table":
                conn.execute(f"CREATE FOREIGN TABLE public.database_backups (id integer) {options}")
            else:
                conn.execute("CREATE TABLE public.database_backups (id integer) PARTITION BY RANGE (id)")
                conn.execute(f"CREATE FOREIGN TABLE public.database_backups_all PARTITION OF public.database_backups "
                             f"FOR VALUES FROM (MINVALUE) TO (MAXVALUE) {options}")
        elif kind == "sequence":
            conn.execute("CREATE SEQUENCE public.database_backups")
        conn.execute("COMMIT")
    assert hs.table_facts(dbname)["kind"] == kind


def _arm(hs: HostileServer, dbname: str, kind: str) -> list[str]:
    """What a read by the operator (or, for a materialized view, its REFRESH) runs of the attacker's."""
    start = hs.log.mark()
    with hs.admin(dbname) as conn:
        if kind == "materialized view":
            conn.execute("REFRESH MATERIALIZED VIEW public.database_backups")
        else:
            conn.execute("SELECT * FROM public.database_backups").fetchall()
    return hits(hs.log.read(start, dbname))


def _naming(entries: list[LogEntry]) -> list[str]:
    """Statements of any migrate-tui session (the tool's, pg_dump's, psql's) that name the relation."""
    return [f"[{e.app}] {e.statement[:200]}" for e in entries
            if e.app.startswith("migrate-tui") and e.statement and "database_backups" in e.statement]


@dataclass
class Outcome:
    kind: str
    dbname: str
    results: dict[str, CliResult]
    wizard_overview: object
    wizard_text: str
    wizard_rollback_text: str
    entries: list[LogEntry]
    after: dict
    marker: int
    attacker_superuser: bool


@pytest.fixture(scope="module", params=KINDS)
def outcome(request, hostile, tmp_path_factory) -> Outcome:
    """Every command (and the wizard's Target screen), as the superuser operator, on a database whose
    database_backups is the attacker's relation of this kind."""
    kind = request.param
    name = hostile.create_database()
    try:
        _make(hostile, name, kind)
        workdir = tmp_path_factory.mktemp("not-a-table")
        env = cli_env(hostile.url(name), MIGRATE_AUDIT_LOG=str(workdir / "audit.log"))
        start = hostile.log.mark()
        results = {key: run_cli(*args, cwd=workdir, env=env) for key, args in COMMANDS.items()}
        overview, text, rollback_text = asyncio.run(wizard_target(operator_settings(hostile, name),
                                                                  workdir / "audit.log", rollback=True))
        entries = hostile.log.read(start, name)
        with hostile.admin(name) as conn:
            marker = conn.execute("SELECT count(*) FROM public.hostile_marker").fetchone()[0]
        yield Outcome(kind, name, results, overview, text, rollback_text, entries, hostile.table_facts(name),
                      marker, hostile.is_superuser())
    finally:
        hostile.drop_database(name)
        hostile.demote()


def test_check_run_and_rollback_report_the_kind_with_a_fix(outcome):
    kind = outcome.kind
    for key in ("check", "run", "rollback --yes"):
        result = outcome.results[key]
        assert result.returncode == EXIT[key], f"{key}: exit {result.returncode}\n{result.output}"
        assert f"public.database_backups is a {kind}, not a table (owner {ATTACKER})" in result.output, \
            f"{key}:\n{result.output}"
        assert any(line.strip().startswith("Fix:") for line in result.output.splitlines()), result.output
    assert "nothing was dropped" in outcome.results["rollback --yes"].output
    assert "Nothing was changed" in outcome.results["run"].output


def test_nothing_is_read_from_it_nor_dropped(outcome):
    assert hits(outcome.entries) == [] and outcome.marker == 0 and not outcome.attacker_superuser
    assert _naming(outcome.entries) == []
    assert outcome.after["kind"] == outcome.kind  # still there, still the attacker's


def test_the_wizard_target_names_the_kind(outcome):
    overview = outcome.wizard_overview
    assert overview.error is None and overview.state == "invalid", overview
    assert f"public.database_backups is a {outcome.kind}, not a table" in " ".join(outcome.wizard_text.split())


def test_the_rollback_preview_names_the_kind_with_a_fix(outcome):
    kind = outcome.kind
    preview = outcome.results["rollback preview"]
    assert f"public.database_backups is a {kind}, not a table" in preview.output, preview.output
    assert any(line.strip().startswith("Fix:") for line in preview.output.splitlines()), preview.output
    assert preview.returncode == PREVIEW_EXIT, preview.output
    for key in ("rollback preview", "rollback --yes"):
        shown = outcome.results[key].output
        assert "Table public.database_backups: 0 rows" not in shown and "To perform it" not in shown, shown
        # never the tool's own DROP TABLE (a partitioned table's fix is, rightly, the operator's DROP TABLE)
        assert "SQL: DROP TABLE" not in shown and "rollback --yes" not in shown.split("Fix:")[0], shown


def test_the_wizard_target_gives_the_fix(outcome):
    text = " ".join(outcome.wizard_text.split())
    assert f"(owner {ATTACKER})" in text and "rename it or drop it yourself" in text, text



def test_the_wizard_rollback_screen_names_the_kind(outcome):
    text = " ".join(outcome.wizard_rollback_text.split())
    assert f"is a {outcome.kind}, not a table" in text, text
    assert "0 rows" not in text and "a plain DROP TABLE" not in text and "Press d to continue" not in text, text
    assert "SQL: DROP TABLE" not in text, text


def test_each_hook_would_have_caught_a_read(hostile, outcome):
    """Armed: a read by a superuser (for the materialized view, a REFRESH) runs the attacker's code, so the
    tests above could fail. (A sequence runs no code; the statement log is its only witness.)"""
    armed = _arm(hostile, outcome.dbname, outcome.kind)
    if outcome.kind == "sequence":
        assert armed == []
    else:
        assert armed, f"a read of the {outcome.kind} ran nothing of the attacker's"
