"""CASCADE keeps what it drops: the safety copy holds every dependent's definition; the restore recreates them.

A rollback with ``--cascade`` drops views, foreign keys, functions, triggers, policies, ... of other objects
together with the table. The copy must hold all of them (in an order that restores), the restore must recreate
them and say exactly which it could not; what no copy can hold (a column of another table) is named and needs
an explicit acceptance; objects of other roles are never dropped.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from psycopg import sql
from rollback_support import catalog_has, migrate_with_rows, rollback

from migration.events import Dropped, Outcome, SafetyCopyFinished, SafetyCopyStarted
from migration.rollback import Restore, read_preview

pytestmark = pytest.mark.timeout(180)

# Every kind of object a DROP TABLE ... CASCADE removes that can be recreated, most of them on another table
# (restores) that the DROP only alters; a view over a function over the table (the copy's order matters);
# an inherited table with rows of its own (dropped whole).
DEPENDENTS = """
CREATE VIEW public.recent_backups AS SELECT id, filename FROM public.database_backups;
COMMENT ON VIEW public.recent_backups IS 'the recent ones';
CREATE VIEW public.recent_count AS SELECT count(*) AS n FROM public.recent_backups;
CREATE MATERIALIZED VIEW public.backup_ids AS SELECT id FROM public.database_backups;
CREATE TABLE public.restores (id int PRIMARY KEY,
    backup_id int CONSTRAINT restores_backup_id_fkey REFERENCES public.database_backups (id) ON DELETE CASCADE,
    n bigint DEFAULT nextval('public.database_backups_id_seq'));
INSERT INTO public.restores (id, backup_id) VALUES (1, 1);
CREATE FUNCTION public.latest_backup() RETURNS SETOF public.database_backups LANGUAGE sql STABLE
    AS $$ SELECT * FROM public.database_backups ORDER BY id DESC LIMIT 1 $$;
COMMENT ON FUNCTION public.latest_backup() IS 'the latest one';
REVOKE ALL ON FUNCTION public.latest_backup() FROM PUBLIC;
CREATE VIEW public.latest AS SELECT id, filename FROM public.latest_backup();
CREATE FUNCTION public.backup_count() RETURNS bigint LANGUAGE sql STABLE
    BEGIN ATOMIC SELECT count(*) FROM public.database_backups; END;
CREATE FUNCTION public.backup_weight(public.database_backups) RETURNS int IMMUTABLE LANGUAGE sql
    AS $$ SELECT 1 $$;
CREATE INDEX restores_weighted ON public.restores ((public.backup_weight(NULL::public.database_backups) + id));
CREATE FUNCTION public.note_restore() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER restores_counted AFTER INSERT ON public.restores FOR EACH ROW
    WHEN (public.backup_count() > 0) EXECUTE FUNCTION public.note_restore();
ALTER TABLE public.restores DISABLE TRIGGER restores_counted;
CREATE POLICY restores_visible ON public.restores FOR SELECT
    USING (backup_id IN (SELECT id FROM public.database_backups));
CREATE RULE restores_touch AS ON UPDATE TO public.restores DO ALSO SELECT count(*) FROM public.database_backups;
ALTER TABLE public.restores ADD CONSTRAINT restores_sane CHECK (public.backup_count() >= 0) NOT VALID;
CREATE TABLE public.old_backups (archived_at timestamptz) INHERITS (public.database_backups);
INSERT INTO public.old_backups (filename, s3_key, file_size) VALUES ('old.sql.gz', 'backups/old.sql.gz', 7);
"""

# What each object is, read from the catalog: compared before the rollback and after the restore.
DEFINITIONS = """
SELECT 'view ' || c.oid::regclass::text, pg_get_viewdef(c.oid) || coalesce(obj_description(c.oid, 'pg_class'), '')
  || pg_get_userbyid(c.relowner) FROM pg_class c
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'constraint ' || conname, pg_get_constraintdef(oid) FROM pg_constraint
  WHERE conrelid = 'public.restores'::regclass AND contype IN ('f', 'c')
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text, pg_get_functiondef(p.oid) || coalesce(p.proacl::text, 'default')
  || coalesce(obj_description(p.oid, 'pg_proc'), '') || pg_get_userbyid(p.proowner) FROM pg_proc p
  WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || tgname, pg_get_triggerdef(oid) || tgenabled::text FROM pg_trigger
  WHERE tgrelid = 'public.restores'::regclass AND NOT tgisinternal
UNION ALL
SELECT 'policy ' || polname, polcmd::text || pg_get_expr(polqual, polrelid) FROM pg_policy
UNION ALL
SELECT 'rule ' || rulename, pg_get_ruledef(oid) FROM pg_rewrite
  WHERE ev_class = 'public.restores'::regclass
UNION ALL
SELECT 'index ' || indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
  WHERE indrelid = 'public.restores'::regclass
UNION ALL
SELECT 'default ' || a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = 'public.restores'::regclass
UNION ALL
SELECT 'table ' || c.oid::regclass::text, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
  ORDER BY a.attnum) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
  WHERE c.oid = to_regclass('public.old_backups') GROUP BY c.oid
ORDER BY 1
"""


def definitions(db) -> dict[str, str]:
    with db.admin() as conn:
        conn.execute("SET search_path = pg_catalog")
        return dict(conn.execute(DEFINITIONS).fetchall())


def rows(db) -> dict[str, int]:
    with db.admin() as conn:
        return {name: conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier("public", name))
                                   ).fetchone()[0]
                for name in ("database_backups", "old_backups", "restores", "backup_ids")}


def with_dependents(db, settings, extra: str = "") -> None:
    migrate_with_rows(db, settings)
    with db.app() as conn:
        conn.execute(DEPENDENTS + extra)


def test_the_copy_holds_every_dependent_and_the_restore_recreates_them(db, settings_for, tmp_path):
    settings = settings_for(db)
    with_dependents(db, settings)
    before, counted = definitions(db), rows(db)
    assert counted == {"database_backups": 3, "old_backups": 1, "restores": 1, "backup_ids": 3}

    preview = read_preview(settings)
    assert preview.row_count == 3  # the table's own rows, not its inherited table's
    assert all(d.recoverable for d in preview.dependents), [d.label for d in preview.dependents if not d.recoverable]
    kept = {d.key for d in preview.dependents}
    assert {"view public.recent_backups", "view public.recent_count", "view public.latest",
            "materialized view public.backup_ids", "table public.old_backups",
            "table constraint restores_backup_id_fkey on public.restores",
            "table constraint restores_sane on public.restores", "function public.latest_backup()",
            "function public.backup_count()", "trigger restores_counted on public.restores",
            "policy restores_visible on public.restores", "rule restores_touch on public.restores",
            "index public.restores_weighted", "default value for public.restores.n"} <= kept

    engine, rec = rollback(settings, tmp_path)
    engine.cascade = True
    result = engine.run()
    assert result.outcome is Outcome.SUCCESS, result
    assert rec.of(Dropped)[0].cascade
    for name in ("public.recent_backups", "public.latest", "public.backup_ids", "public.old_backups"):
        assert not catalog_has(db, name), name
    assert definitions(db) != before

    copy = rec.of(SafetyCopyFinished)[0].copy
    assert set(copy.dependents) == {d.label for d in preview.dependents} and copy.not_kept == ()
    manifest = json.loads(Path(copy.manifest).read_text())
    assert {d["key"] for d in manifest["dependents"]} == kept and manifest["not_recreatable"] == []

    restored = Restore(settings, copy.path).run()
    assert restored.outcome is Outcome.SUCCESS, (restored.message, restored.error)
    assert set(restored.recreated) == kept and restored.not_recreated == ()
    assert definitions(db) == before
    assert rows(db) == counted
    with db.app() as conn:  # the foreign key is enforced again
        with pytest.raises(Exception, match="restores_backup_id_fkey"):
            conn.execute("INSERT INTO public.restores (id, backup_id) VALUES (2, 999)")


def test_the_printed_restore_command_recreates_the_dependents_too(db, settings_for, tmp_path):
    """The command shown after a rollback (psql -f on the whole copy) does the same, for operators without
    migrate-tui at hand."""
    settings = settings_for(db)
    with_dependents(db, settings)
    before = definitions(db)
    engine, _ = rollback(settings, tmp_path)
    engine.cascade = True
    copy = engine.run().copy
    psql = copy.restore_command.split(' "$DATABASE_URL"')[0].strip("'")
    done = subprocess.run([psql, db.url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", copy.path],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert definitions(db) == before


def test_a_dependent_that_cannot_be_recreated_is_named_at_restore(db, settings_for, tmp_path):
    """Rows written meanwhile break the foreign key: the table and the other dependents come back, the
    restore says which one did not and why, and the catalog agrees."""
    settings = settings_for(db)
    with_dependents(db, settings)
    engine, _ = rollback(settings, tmp_path)
    engine.cascade = True
    copy = engine.run().copy
    with db.app() as conn:
        conn.execute("INSERT INTO public.restores (id, backup_id) VALUES (2, 999)")

    restored = Restore(settings, copy.path).run()
    assert restored.outcome is Outcome.FAILED
    fk = "table constraint restores_backup_id_fkey on public.restores"
    assert [line.split(":")[0] for line in restored.not_recreated] == [fk]
    assert "could not recreate" in restored.message and fk in restored.message
    assert "violates foreign key constraint" in (restored.error.detail or "")
    assert db.table_exists() and rows(db)["database_backups"] == 3
    assert catalog_has(db, "public.recent_backups") and catalog_has(db, "public.latest")
    assert not db.scalar("SELECT count(*) FROM pg_constraint WHERE conname = 'restores_backup_id_fkey'")


def test_a_column_of_another_table_needs_an_explicit_acceptance(db, settings_for, tmp_path):
    """DROP ... CASCADE drops a column whose type is the table's row type, with its values: no copy of the
    table can bring them back, so --cascade alone does not drop it."""
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    with db.app() as conn:
        conn.execute("CREATE VIEW public.recent_backups AS SELECT id FROM public.database_backups;"
                     "CREATE TABLE public.audit_rows (id int, snap public.database_backups);"
                     "INSERT INTO public.audit_rows SELECT 1, b FROM public.database_backups b LIMIT 1")
    preview = read_preview(settings)
    lost = next(d for d in preview.dependents if d.kind == "table column")
    assert lost.key == "table column public.audit_rows.snap" and not lost.recoverable
    assert "values" in lost.why_lost

    engine, rec = rollback(settings, tmp_path)
    engine.cascade = True
    refused = engine.run()
    assert refused.outcome is Outcome.NEEDS_CONFIRMATION
    assert "table column public.audit_rows.snap" in refused.error.message
    assert "--accept-loss" in refused.error.hint
    assert not rec.of(SafetyCopyStarted) and db.table_exists()
    assert db.scalar("SELECT count(snap) FROM public.audit_rows") == 1

    engine, rec = rollback(settings, tmp_path)
    engine.cascade, engine.accept_loss = True, True
    result = engine.run()
    assert result.outcome is Outcome.SUCCESS, result
    copy = result.copy
    assert copy.not_kept and copy.not_kept[0].startswith("table column public.audit_rows.snap")
    manifest = json.loads(Path(copy.manifest).read_text())
    assert [d["key"] for d in manifest["not_recreatable"]] == ["table column public.audit_rows.snap"]

    restored = Restore(settings, copy.path).run()
    assert restored.outcome is Outcome.SUCCESS, (restored.message, restored.error)
    assert "view public.recent_backups" in restored.recreated
    assert [line.split(":")[0] for line in restored.not_recreated] == ["table column public.audit_rows.snap"]
    assert "table column public.audit_rows.snap" in restored.message


def test_the_wizard_confirmation_covers_what_it_showed(db, settings_for, tmp_path):
    """The wizard's typed confirmation lists every dependent, the lost ones marked: confirming exactly that
    list accepts them (a headless --cascade does not)."""
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    with db.app() as conn:
        conn.execute("CREATE TABLE public.audit_rows (id int, snap public.database_backups)")
    engine, _ = rollback(settings, tmp_path)
    engine.confirmed = read_preview(settings).dependent_keys
    assert engine.run().outcome is Outcome.SUCCESS


@pytest.fixture
def other_role(db):
    """A role that owns a view on the operator's table (granted SELECT on it)."""
    role = "cascade_other_owner"
    with db.server.admin() as conn:
        conn.execute(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "
                     f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$")
    with db.admin() as conn:
        conn.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
    yield role
    db.server.drop_database(db.name)  # its objects go with the database; then the role can go
    with db.server.admin() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_objects_of_another_role_are_never_dropped(db, settings_for, tmp_path, other_role):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    with db.app() as conn:
        conn.execute(f"GRANT SELECT ON public.database_backups TO {other_role}")
    with db.admin() as conn:
        conn.execute(f"SET ROLE {other_role}")
        conn.execute("CREATE VIEW public.their_view AS SELECT id FROM public.database_backups")
    preview = read_preview(settings)
    theirs = next(d for d in preview.dependents if d.key == "view public.their_view")
    assert theirs.owner == other_role and not theirs.ours

    engine, rec = rollback(settings, tmp_path)
    engine.cascade, engine.accept_loss = True, True
    result = engine.run()
    assert result.outcome is Outcome.FAILED
    assert "view public.their_view" in result.error.message and other_role in result.error.message
    assert other_role in result.error.hint
    assert not rec.of(SafetyCopyStarted) and db.table_exists() and catalog_has(db, "public.their_view")


def test_a_dependent_changed_after_the_copy_stops_the_drop(db, settings_for, tmp_path):
    """The copy holds the definitions read when it was taken: a view replaced before the DROP would be
    restored in its old form, so nothing is dropped."""
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    with db.app() as conn:
        conn.execute("CREATE VIEW public.recent_backups AS SELECT id FROM public.database_backups")
    engine, rec = rollback(settings, tmp_path)
    engine.cascade = True

    def replace_view(event) -> None:
        if isinstance(event, SafetyCopyFinished):
            with db.app() as conn:
                conn.execute("CREATE OR REPLACE VIEW public.recent_backups AS "
                             "SELECT id, filename FROM public.database_backups")

    rec.hooks.append(replace_view)
    result = engine.run()
    assert result.outcome is Outcome.CHANGED, result
    assert "view public.recent_backups" in result.error.message
    assert db.table_exists() and catalog_has(db, "public.recent_backups")


def test_verification_refuses_a_copy_without_a_dependent(db, settings_for, tmp_path):
    """The copy is verified section by section: a dependent whose definition is missing fails it."""
    from migration.rollback import safety_copy

    settings = settings_for(db)
    migrate_with_rows(db, settings)
    with db.app() as conn:
        conn.execute("CREATE VIEW public.recent_backups AS SELECT id FROM public.database_backups")
    engine, _ = rollback(settings, tmp_path)
    engine.cascade = True
    copy = engine.run().copy
    manifest = json.loads(Path(copy.manifest).read_text())
    data = Path(copy.path).read_bytes()
    assert safety_copy.verify_sections(data, manifest) is None
    view = next(s for s in manifest["sections"] if s.get("dependent") == "view public.recent_backups")
    damaged = data[:view["offset"]] + data[view["offset"]:view["offset"] + view["size"]].replace(
        b"CREATE VIEW", b"-- REATE VIEW") + data[view["offset"] + view["size"]:]
    assert "view public.recent_backups" in safety_copy.verify_sections(damaged, manifest)


def test_a_partitioned_tables_foreign_key_comes_back_on_every_partition(db, settings_for, tmp_path):
    """The partitions' copies of the foreign key belong to the parent's: recreated with it, not twice."""
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    with db.app() as conn:
        conn.execute("CREATE TABLE public.orders (id int, backup_id int REFERENCES public.database_backups (id)) "
                     "PARTITION BY RANGE (id);"
                     "CREATE TABLE public.orders_1 PARTITION OF public.orders FOR VALUES FROM (0) TO (100);"
                     "INSERT INTO public.orders VALUES (1, 1)")
    keep = {d.key: d.keep for d in read_preview(settings).dependents}
    assert keep == {"table constraint orders_backup_id_fkey on public.orders": "definition",
                    "table constraint orders_backup_id_fkey on public.orders_1":
                        "part of table constraint orders_backup_id_fkey on public.orders"}
    engine, _ = rollback(settings, tmp_path)
    engine.cascade = True
    copy = engine.run().copy
    restored = Restore(settings, copy.path).run()
    assert restored.outcome is Outcome.SUCCESS, (restored.message, restored.error)
    assert set(restored.recreated) == set(keep)
    assert db.scalar("SELECT count(*) FROM pg_constraint WHERE conname = 'orders_backup_id_fkey'") == 2
