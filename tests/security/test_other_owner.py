"""Safe in a hostile database: a ``database_backups`` that is an ordinary table, but another role's.

An attacker with CREATE on ``public`` can create the table first, with the guide's structure, so that
``run`` finds it "present and valid", and hang code on it that runs when someone else touches it:

- a row-level security policy (FORCE'd, USING the attacker's function): it runs as whoever reads the
  table, unless that is a superuser (superusers bypass RLS). An operator who is not a superuser and not
  a member of the owner may not drop the table, and the product promises not to read it either.
- a CHECK constraint calling the attacker's function: it runs as whoever *writes* rows — e.g. the
  restore of the rollback's safety copy (``COPY … FROM stdin`` checks every row), which pg_dump writes
  with the table's constraints and owner;
- the owner may also rename the table at any moment, and put a view in its place.

The attacker's code logs ``hostile-hit`` (hostile_objects.HELPERS), inserts a marker row and tries
``ALTER ROLE … SUPERUSER``.
"""

from __future__ import annotations

import pytest
from psycopg import sql

from cli.cli_support import cli_env, finish, run_cli, start_cli
from engine.engine_support import wait_until
from harness import CANARY
from hostile_objects import helpers_sql
from hostile_support import ATTACKER, ROW_COUNT, ROWS, HostileServer, hits

from migration.schema import TABLE

APP_OPERATOR = "hostile_app"  # an operator who is not a superuser (the owner of the database, say)


def _attackers_table(hs: HostileServer, dbname: str, *, policy: bool = False, check: bool = False) -> None:
    """The guide's table, created (with rows) by the attacker, with the attacker's code hung on it."""
    with hs.admin(dbname) as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        conn.execute("BEGIN")
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ATTACKER)))
        conn.execute("SET LOCAL hostile.quiet = on")
        conn.execute(helpers_sql(ATTACKER))
        conn.execute(TABLE.create_table("public"))
        for statement in TABLE.create_indexes("public"):
            conn.execute(statement)
        conn.execute(ROWS)
        conn.execute("GRANT SELECT ON public.database_backups TO PUBLIC")
        if policy:
            conn.execute("ALTER TABLE public.database_backups ENABLE ROW LEVEL SECURITY")
            conn.execute("ALTER TABLE public.database_backups FORCE ROW LEVEL SECURITY")
            conn.execute("CREATE POLICY hostile_read ON public.database_backups FOR SELECT "
                         "USING (public.hostile_pass('row security policy', true))")
        if check:
            conn.execute("ALTER TABLE public.database_backups ADD CONSTRAINT hostile_rows "
                         "CHECK (public.hostile_pass('check constraint', true))")
        conn.execute("COMMIT")


@pytest.fixture
def plain_db(hostile):
    name = hostile.create_database()
    try:
        yield name
    finally:
        hostile.drop_database(name)
        hostile.demote()


@pytest.fixture
def app_operator(hostile):
    """A login role that is neither a superuser nor a member of the attacker (password: the canary)."""
    with hostile.admin() as conn:
        conn.execute("SET log_statement = 'none'")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_OPERATOR,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER PASSWORD {}").format(
                sql.Identifier(APP_OPERATOR), sql.Literal(CANARY)))
    return APP_OPERATOR


def test_a_table_the_operator_may_not_drop_is_never_read(hostile, plain_db, app_operator, tmp_path):
    """Its RLS policy would run the attacker's code as the operator on any read: nothing reads it."""
    _attackers_table(hostile, plain_db, policy=True)
    env = cli_env(hostile.url(plain_db, user=app_operator), MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"))
    start = hostile.log.mark()
    results = {key: run_cli(*args, cwd=tmp_path, env=env) for key, args in {
        "check": ("check",), "run": ("run", "--yes", "--skip-backup"), "rollback preview": ("rollback",),
        "rollback --yes": ("rollback", "--yes")}.items()}
    entries = hostile.log.read(start, plain_db)
    assert hits(entries) == []
    assert [e.statement for e in entries if e.app.startswith("migrate-tui") and e.statement
            and "database_backups" in e.statement] == []
    assert results["run"].returncode == 0 and "Migration not needed" in results["run"].output
    refused = results["rollback --yes"]
    assert refused.returncode == 1, refused.output
    assert f"owned by {ATTACKER}" in refused.output and "nothing was read from it" in refused.output
    assert any(line.strip().startswith("Fix:") for line in refused.output.splitlines())
    assert hostile.table_facts(plain_db) == {"kind": "table", "valid": True, "rows": ROW_COUNT}
    # Armed: the operator reading the table runs the policy, as the operator.
    start = hostile.log.mark()
    with hostile.admin(plain_db) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(app_operator)))
        conn.execute("SELECT count(*) FROM public.database_backups").fetchone()
    assert hits(hostile.log.read(start, plain_db)) == [f"row security policy (as {app_operator}, hostile-test)"]


def test_the_rollback_of_another_roles_table_runs_none_of_its_code(hostile, plain_db, tmp_path):
    """A superuser does not roll back another role's table: its safety copy would hold that role's code (a CHECK
    constraint, a default, a trigger), which a restore would run with superuser rights. Refused, and nothing of
    the attacker's runs: not in the check, the run, the preview or the refused rollback."""
    _attackers_table(hostile, plain_db, check=True)
    env = cli_env(hostile.url(plain_db), MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"))
    start = hostile.log.mark()
    for args in (("check",), ("run", "--yes")):
        result = run_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.output
        assert f"owned by {ATTACKER}, not by you" in result.output  # said where the table is judged
    for args in (("rollback",), ("rollback", "--yes")):
        result = run_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 1, result.output
        assert f"owned by {ATTACKER}" in result.output and "Fix: Run the rollback as hostile_attacker" in result.output
    assert hits(hostile.log.read(start, plain_db)) == []
    assert hostile.table_facts(plain_db) == {"kind": "table", "valid": True, "rows": ROW_COUNT}
    assert not (tmp_path / "backups").exists() or not list((tmp_path / "backups").glob("*before-rollback*"))
    assert not hostile.is_superuser()


def test_restoring_another_roles_table_runs_none_of_its_code(hostile, plain_db, tmp_path):
    """A safety copy of another role's table (taken by that role itself, written in the operator's directory)
    is not restored by the superuser operator: its CHECK constraint would run, as the superuser, on every row."""
    _attackers_table(hostile, plain_db, check=True)
    attacker = cli_env(hostile.url(plain_db, user=ATTACKER, password=hostile.attacker_password),
                       MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"))
    dropped = run_cli("rollback", "--yes", cwd=tmp_path, env=attacker, secrets=(hostile.attacker_password,))
    assert dropped.returncode == 0, dropped.output  # the attacker may roll back its own table
    copy = sorted((tmp_path / "backups").glob("*before-rollback*.sql"))[-1]
    env = cli_env(hostile.url(plain_db), MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"))
    start = hostile.log.mark()
    restored = run_cli("rollback", "--restore", str(copy), cwd=tmp_path, env=env)
    assert restored.returncode == 1, restored.output
    assert f"recreates objects owned by {ATTACKER}, not by you" in restored.output
    ran = hits(hostile.log.read(start, plain_db))
    assert (ran, hostile.is_superuser()) == ([], False), f"{restored.output}\nthe attacker's code ran: {ran}"
    assert hostile.table_facts(plain_db)["kind"] is None  # nothing was restored


@pytest.mark.parametrize("command", [("rollback",), ("rollback", "--yes")], ids=["preview", "yes"])
def test_a_table_swapped_for_a_view_mid_preview_is_not_read(hostile, plain_db, tmp_path, command, app_operator):
    """A table owned by a team role that both the operator and the attacker belong to: the operator may roll it
    back, and the attacker may rename it at will. Whatever the name means once the tool checked it must not be
    read: the tool locks the name first, then checks the kind, then reads."""
    _attackers_table(hostile, plain_db)
    with hostile.admin(plain_db) as conn:
        conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hostile_team') "
                     "THEN CREATE ROLE hostile_team NOLOGIN; END IF; END $$")
        conn.execute(sql.SQL("GRANT hostile_team TO {}, {}").format(sql.Identifier(ATTACKER),
                                                                    sql.Identifier(app_operator)))
        conn.execute("ALTER TABLE public.database_backups OWNER TO hostile_team")
        conn.execute("GRANT CREATE ON SCHEMA public TO hostile_team")
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ATTACKER)))
        conn.execute("CREATE VIEW public.database_backups_swap AS "
                     "SELECT public.hostile_pass('view swapped in', 1) AS id")
    env = cli_env(hostile.url(plain_db, user=app_operator), MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"))
    start = hostile.log.mark()
    with hostile.admin(plain_db) as owner, hostile.admin(plain_db) as watch:
        owner.execute("BEGIN")
        owner.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ATTACKER)))
        owner.execute("LOCK TABLE public.database_backups IN ACCESS EXCLUSIVE MODE")
        proc = start_cli(*command, cwd=tmp_path, env=env)
        try:
            wait_until(lambda: watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'migrate-tui rollback' AND wait_event_type = 'Lock'").fetchone()[0],
                60, "the rollback to wait for the owner's lock")
            owner.execute("ALTER TABLE public.database_backups RENAME TO database_backups_real")
            owner.execute("ALTER VIEW public.database_backups_swap RENAME TO database_backups")
            owner.execute("COMMIT")
        finally:
            result = finish(proc, 60)
    ran = hits(hostile.log.read(start, plain_db))
    assert ran == [], f"{result.output}\nthe attacker's code ran: {ran}"
