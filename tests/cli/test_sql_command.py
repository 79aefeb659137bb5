"""``migrate-tui sql``: the exact SQL, no connection needed."""

from __future__ import annotations

import re

from cli_support import cli_env, run_cli

from migration import exit_codes


def statements(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("--")]


def test_sql_prints_the_table_and_three_indexes(tmp_path):
    result = run_cli("sql", cwd=tmp_path, env=cli_env())  # no DATABASE_URL needed
    assert result.returncode == exit_codes.OK
    out = result.stdout
    assert 'CREATE TABLE "public"."database_backups" (' in out
    for column in ('"id" SERIAL PRIMARY KEY', '"filename" TEXT NOT NULL UNIQUE', '"s3_key" TEXT NOT NULL',
                   '"file_size" INTEGER NOT NULL', "\"backup_type\" TEXT NOT NULL DEFAULT 'full'",
                   "\"status\" TEXT NOT NULL DEFAULT 'completed'", "\"created_by\" TEXT NOT NULL DEFAULT 'system'",
                   '"metadata" JSONB', '"created_at" TIMESTAMP DEFAULT NOW()', '"completed_at" TIMESTAMP'):
        assert f"  {column}" in out
    indexes = re.findall(r'^CREATE INDEX "(\w+)" ON "public"."database_backups" \("(\w+)"\);$', out, re.M)
    assert indexes == [("idx_database_backups_created_at", "created_at"),
                       ("idx_database_backups_status", "status"),
                       ("idx_database_backups_created_by", "created_by")]
    body = statements(out)
    assert body[0] == "BEGIN;" and body[-1] == "COMMIT;"
    # the transaction first pins name resolution to the built-ins, then takes the advisory lock
    assert body[1] == "SET LOCAL search_path = pg_catalog, pg_temp;"
    assert body[2].startswith("SELECT pg_try_advisory_xact_lock(")
    assert body[3:5] == ["SET LOCAL \"lock_timeout\" = '5000ms';", "SET LOCAL \"statement_timeout\" = '60000ms';"]


def test_sql_quotes_another_schema(tmp_path):
    result = run_cli("sql", "--schema", "app", cwd=tmp_path, env=cli_env())
    assert result.returncode == exit_codes.OK
    assert 'CREATE TABLE "app"."database_backups" (' in result.stdout
    assert result.stdout.count('ON "app"."database_backups"') == 3
    assert '"public"' not in result.stdout


def test_sql_rejects_a_bad_schema_name(tmp_path):
    result = run_cli("sql", "--schema", 'x"; DROP TABLE users; --', cwd=tmp_path, env=cli_env())
    assert result.returncode == exit_codes.CONFIG
    assert "DROP TABLE users" not in result.stdout


def test_sql_matches_what_the_runner_executes(db, tmp_path):
    """Apply the printed DDL by hand: the result is a table the runner accepts as its own."""
    out = run_cli("sql", cwd=tmp_path, env=cli_env()).stdout
    ddl = [s for s in re.split(r";\n", out) if re.search(r"^CREATE (TABLE|INDEX)", s, re.M)]
    with db.app() as conn:
        for statement in ddl:
            conn.execute("\n".join(line for line in statement.splitlines() if not line.startswith("--")))
    result = run_cli("run", "--yes", cwd=tmp_path, env=cli_env(db.url))
    assert result.returncode == exit_codes.OK
    assert "✅ Migration not needed - table already exists and is valid" in result.stdout
    assert "Note:" not in result.stdout


def test_the_installed_console_script_works(tmp_path):
    """The `migrate-tui` entry point from pyproject.toml (installed next to this Python)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "migrate-tui"
    assert script.exists(), "migrate-tui is not installed in this environment (pip install -e .)"
    done = subprocess.run([str(script), "sql"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == exit_codes.OK, done.stderr
    assert 'CREATE TABLE "public"."database_backups" (' in done.stdout


def test_the_printed_sql_runs_as_is_and_builds_what_the_runner_builds(db, tmp_path):
    """The dry run is runnable: no placeholders; pasted into a session it yields the guide's table."""
    from migration import catalog

    result = run_cli("sql", cwd=tmp_path, env=cli_env())
    assert result.returncode == exit_codes.OK
    assert "%s" not in result.stdout
    with db.app() as conn:
        conn.execute(result.stdout)  # the whole script, one simple-query round trip
        report = catalog.inspect(conn, "public", strict=True)
        assert report.valid, report.problems
        assert conn.execute("SELECT count(*) FROM database_backups").fetchone()[0] == 0
        new_id = conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) "
                              "VALUES ('a.sql', 'k', 1) RETURNING id").fetchone()[0]
    assert new_id == 1
