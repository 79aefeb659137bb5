"""Safe in a hostile database: no function, operator or relation another role created runs as the operator.

The issue "Safe in a hostile database", finding 1 (CVE-2018-1058 class): where ``public`` is writable by
an ordinary role (the default before PostgreSQL 15), that role can declare functions and operators that
PostgreSQL's overload resolution prefers over ``pg_catalog``'s for the argument types the tool's SQL
passes. Reproduced on the old code through run --yes, check, rollback, rollback --yes and --restore.

How (conftest.build_template): every command runs once on a clean database while the server logs every
statement; the names the tool's own sessions call are read from that log (sql_surface), the attacker's
overloads, operators and look-alike relations are generated from them (hostile_objects) into a template
database; then every command runs again, as a superuser, on a clone of it (:func:`protected`). The
companion test :func:`test_the_attack_works_without_the_pin` proves the same objects do capture the
tool's SQL once the pin is taken away, so the protected run could fail.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from hostile_support import (
    ROW_COUNT,
    ROWS,
    exercise,
    hits,
    operator_settings,
    tool_applications,
    unknown_sessions,
    unpinned,
)
from sql_surface import surface

# Overloads the issue reports captured the old code; the generator must come up with each of them.
ISSUE_OVERLOADS = ("setval(text, integer, boolean)", "format(text, name, name)", "operator =(oid, smallint)",
                   "operator ||(name, text)", "hashtextextended(text, integer)", "pg_total_relation_size(smallint)")
# Every application_name the tool's own sessions use on these paths (grep application_name in migration/);
# "migrate-tui (lock monitor)" is the wizard's, only while a migration waits for a lock.
TOOL_APPLICATIONS = {"migrate-tui", "migrate-tui-check", "migrate-tui-backup-inspect", "migrate-tui rollback",
                     "migrate-tui rollback monitor", "migrate-tui restore"}
EXIT_CODES = {"check": 0, "run": 0, "backup": 0, "rollback preview": 0, "rollback blocked": 1, "rollback": 0,
              "restore": 0}


@pytest.fixture(scope="module")
def protected(hostile, template, tmp_path_factory):
    """Every command, as the superuser operator, on a clone of the hostile template."""
    name = hostile.create_database(template=template.name)
    try:
        attacker_was_superuser = hostile.is_superuser()
        with hostile.admin(name) as conn:
            marker_before = conn.execute("SELECT count(*) FROM public.hostile_marker").fetchone()[0]
        ran = exercise(hostile, name, tmp_path_factory.mktemp(f"protected{hostile.version}"))
        with hostile.admin(name) as conn:
            marker = conn.execute("SELECT hit, as_role, app FROM public.hostile_marker").fetchall()
        yield ran, {"attacker_was_superuser": attacker_was_superuser, "marker_before": marker_before,
                    "marker": marker, "attacker_is_superuser": hostile.is_superuser(),
                    "table": hostile.table_facts(name)}
    finally:
        hostile.drop_database(name)
        hostile.demote()


def test_the_overloads_come_from_the_tools_own_sql(template):
    """The surface was read from every command's statements, and the generator covers the issue's finds."""
    found = template.discovery
    assert tool_applications(found.entries) >= TOOL_APPLICATIONS, tool_applications(found.entries)
    assert unpinned(found.entries) == []
    names = {v.label(template.plan.types) for v, _ in template.plan.variants}
    missing = [o for o in ISSUE_OVERLOADS if o not in names]
    assert not missing, f"not generated: {missing}; {template.plan.describe()}"
    assert template.plan.count("operator") and template.plan.relations
    print(f"\n{template.surface.describe()}\n{template.plan.describe()}; template built in "
          f"{template.seconds:.1f} s")


def test_nothing_of_the_attacker_runs_as_the_superuser_operator(protected):
    ran, facts = protected
    assert not facts["attacker_was_superuser"] and facts["marker_before"] == 0  # a clean start
    assert hits(ran.entries) == [], "the attacker's objects ran: " + "; ".join(sorted(set(hits(ran.entries))))
    assert facts["marker"] == []
    assert not facts["attacker_is_superuser"], "the attacker became a superuser"


def test_every_command_did_its_job(protected):
    ran, facts = protected
    codes = {key: result.returncode for key, result in ran.results.items()}
    assert codes == EXIT_CODES, "\n\n".join(f"{k}: {r.output}" for k, r in ran.results.items())
    out = {key: result.output for key, result in ran.results.items()}
    assert "Migration completed successfully!" in out["run"]
    assert "✓ Backup written and verified" in out["backup"], out["backup"]
    assert ran.states["run"]["kind"] == "table" and ran.states["run"]["valid"], ran.states["run"]
    assert f"Table public.database_backups: {ROW_COUNT} rows" in out["rollback preview"]
    assert "Lock not granted" in out["rollback blocked"], out["rollback blocked"]
    assert ran.states["rollback blocked"]["rows"] == ROW_COUNT  # nothing dropped
    assert "was dropped and the catalog confirms it is gone" in out["rollback"]
    assert ran.states["rollback"]["kind"] is None  # dropped
    assert ran.copy is not None and "restored from the safety copy" in out["restore"]
    assert facts["table"]["valid"] and facts["table"]["rows"] == ROW_COUNT, facts["table"]  # restored
    assert ran.overview.state == "valid", ran.overview  # the wizard read the server (after the migration)


def test_every_statement_ran_in_a_pinned_transaction(protected):
    """Each statement of the tool's sessions ran after BEGIN; SET LOCAL search_path = pg_catalog, pg_temp."""
    ran, _ = protected
    assert tool_applications(ran.entries) >= TOOL_APPLICATIONS
    assert unknown_sessions(ran.entries) == set()  # no session of the tool escaped the capture
    assert unpinned(ran.entries) == []


def test_the_hostile_run_sent_nothing_the_discovery_did_not(template, protected):
    """Every name the tool called in the hostile database was in the surface the objects were made from."""
    ran, _ = protected
    extra = surface(ran.statements()).names() - template.surface.names()
    assert not extra, f"called in the hostile run only, so not covered by generated objects: {sorted(extra)}"


def _engine_paths(hostile, name: str, workdir) -> dict[str, object]:
    """The code paths of every command, in this process (so a monkeypatch reaches them)."""
    from migration.backup import Backup
    from migration.options import BackupOptions, RollbackOptions
    from migration.overview import describe_target
    from migration.preflight import run_checklist
    from migration.rollback import Restore, Rollback, read_preview
    from migration.runner import Migration

    settings = operator_settings(hostile, name)
    done: dict[str, object] = {"target": describe_target(settings).state,
                               "check": run_checklist(settings, options=BackupOptions(backup_dir=workdir)).passed,
                               "backup": Backup(settings, None, BackupOptions(backup_dir=workdir)).run().ok,
                               "run": Migration(settings, lambda event: None).run().outcome.value}
    with hostile.admin(name) as conn:
        conn.execute(ROWS)
    done["preview"] = read_preview(settings).row_count
    done["rollback"] = Rollback(settings, lambda event: None, RollbackOptions(backup_dir=workdir),
                                cascade=True).run().outcome.value
    copies = sorted(workdir.glob("*before-rollback*.sql"))
    done["restore"] = Restore(settings, copies[-1]).run().ok if copies else "no copy"
    return done


def test_the_attack_works_without_the_pin(hostile, hostile_db, monkeypatch, tmp_path):
    """Armed: with the pin replaced by the search_path an unprotected session has, the same objects capture
    the tool's SQL and make the attacker a superuser: the protected test could fail."""
    assert not hostile.is_superuser()
    monkeypatch.setattr("migration.db.PIN_SEARCH_PATH", 'SET LOCAL search_path = "$user", public')
    start = hostile.log.mark()
    done = _engine_paths(hostile, hostile_db, tmp_path)
    captured = sorted({h.split(" (as ")[0] for h in hits(hostile.log.read(start, hostile_db))})
    with hostile.admin(hostile_db) as conn:
        marker = conn.execute("SELECT count(*) FROM public.hostile_marker").fetchone()[0]
    print(f"\nwithout the pin ({done}): {len(captured)} attacker objects ran: {captured}")
    assert unpinned(hostile.log.read(start, hostile_db)), "the pinned-transaction check would not notice"
    assert marker > 0
    assert hostile.is_superuser(), "the attacker did not become a superuser"
    missing = [o for o in ISSUE_OVERLOADS if o not in captured and o != "operator ||(name, text)"]
    assert not missing, f"these issue overloads no longer capture anything: {missing}; captured: {captured}"


def test_the_attack_works_through_the_cli_without_the_pin(hostile, hostile_db, tmp_path):
    """Armed, the way the protected run observes: the real CLI (a sitecustomize takes the pin away in the
    child) on the hostile database; the log, the marker and the role all show the attack."""
    from cli.cli_support import cli_env, run_cli

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import migration.db\nmigration.db.PIN_SEARCH_PATH = 'SET LOCAL search_path = \"$user\", public'\n")
    env = cli_env(hostile.url(hostile_db), MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"),
                  PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    start = hostile.log.mark()
    result = run_cli("check", cwd=tmp_path, env=env)
    entries = hostile.log.read(start, hostile_db)
    assert result.returncode == 0, result.output
    assert hits(entries), "the unpinned check ran none of the attacker's objects"
    assert unpinned(entries), "the pinned-transaction check did not notice the missing pin"
    with hostile.admin(hostile_db) as conn:
        assert conn.execute("SELECT count(*) FROM public.hostile_marker").fetchone()[0] > 0
    assert hostile.is_superuser()


def test_the_relations_are_armed_too(hostile, hostile_db, monkeypatch):
    """pg_catalog is searched first unless the path names it later: with public first, the look-alike
    relations do capture the tool's catalog reads (the protected test checks they never do)."""
    from migration.overview import describe_target
    from migration.preflight import run_checklist

    monkeypatch.setattr("migration.db.PIN_SEARCH_PATH", "SET LOCAL search_path = public, pg_catalog")
    start = hostile.log.mark()
    settings = operator_settings(hostile, hostile_db)
    describe_target(settings)
    run_checklist(settings, with_backup=False)
    captured = {h.split(" (as ")[0] for h in hits(hostile.log.read(start, hostile_db))}
    assert {"relation pg_class", "relation pg_namespace"} <= captured, captured


def test_the_wizard_target_screen_reads_the_server_safely(hostile, hostile_db, tmp_path):
    """The wizard's Target screen (Pilot) on the hostile database, as the superuser operator."""
    from hostile_support import wizard_target

    start = hostile.log.mark()
    overview, text = asyncio.run(wizard_target(operator_settings(hostile, hostile_db), tmp_path / "audit.log"))
    entries = hostile.log.read(start, hostile_db)
    assert overview.error is None and overview.state == "absent", overview
    assert "absent: the migration will create it" in " ".join(text.split())
    assert tool_applications(entries) == {"migrate-tui"}
    assert hits(entries) == [] and unpinned(entries) == []
    assert not hostile.is_superuser()
