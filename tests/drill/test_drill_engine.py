"""The restore drill on real PostgreSQL 18 and 15 sources: a good backup drills clean in every format; a dump
whose rows were removed (its checksum recomputed), a dump needing an extension the local server lacks, a
backup changed after it was written, are each caught and named. The throwaway server is gone afterwards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from drill_support import ROWS, backup, drill, drill_dirs, manifest, rewrite, seed

from migration.drill import local
from migration.events import DrillCompared, DrillProgress, DrillStarted, DrillTableChecked, Outcome

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_a_good_backup_drills_clean(db, tmp_path, fmt):
    seed(db)
    taken = backup(db, tmp_path, fmt)
    assert manifest(taken.path)["rows"] == ROWS  # counted while the dump was written (or read back)
    before = set(drill_dirs())
    events: list = []
    result = drill(db, taken.path, events)
    assert result.ok, result
    assert {c.table: (c.rows_backup, c.rows_restored) for c in result.tables} == {t: (n, n) for t, n in ROWS.items()}
    assert result.differences == ()
    assert result.removed and set(drill_dirs()) <= before, "the throwaway server's directory was left behind"
    major = db.server.label[2:]
    assert f"PostgreSQL {major}." in result.server  # the source's own major was available: it was chosen
    started = next(e for e in events if isinstance(e, DrillStarted))
    assert (started.tables_total, started.rows_total) == (len(ROWS), sum(ROWS.values()))
    assert any(isinstance(e, DrillProgress) for e in events)
    assert len([e for e in events if isinstance(e, DrillTableChecked)]) == len(ROWS)
    compared = next(e for e in events if isinstance(e, DrillCompared))
    counts = dict(compared.object_counts)
    assert counts["table"] == 4 and counts["view"] == 1 and counts["function"] == 1 and counts["type"] == 2
    recorded = manifest(taken.path)["drill"]
    assert recorded["outcome"] == "success" and recorded["tables_mismatched"] == [] and recorded["differences"] == []


def test_rows_removed_from_a_copy_block_are_caught_and_named(db, tmp_path):
    """The file and its manifest agree (checksum recomputed), but three of the orders' rows are gone."""
    seed(db)
    path = Path(backup(db, tmp_path).path)
    text = path.read_text()
    block = re.search(r"^COPY public\.orders .*? FROM stdin;\n", text, re.M)
    start = block.end()
    for _ in range(3):  # drop the block's first three rows
        start_of_next = text.index("\n", start) + 1
        text = text[:start] + text[start_of_next:]
    rewrite(path, text.encode())
    result = drill(db, path)
    assert result.outcome is Outcome.FAILED
    assert [c.table for c in result.mismatched] == ["public.orders"]
    wrong = result.mismatched[0]
    assert (wrong.rows_backup, wrong.rows_restored) == (1200, 1197)
    assert "public.orders: 1,200 rows in the backup, 1,197 restored" in result.error.message
    assert result.error.hint and result.removed
    assert manifest(path)["drill"]["tables_mismatched"] == ["public.orders"]


def test_a_backup_changed_after_it_was_written_is_not_restored(db, tmp_path):
    seed(db)
    path = Path(backup(db, tmp_path).path)
    path.write_bytes(path.read_bytes().replace(b"c17\t", b"x17\t"))
    result = drill(db, path)
    assert result.outcome is Outcome.FAILED
    assert "no longer matches its manifest" in result.error.message and result.error.hint
    assert result.tables == () and result.removed


def test_an_extension_no_local_server_has_is_named_before_restoring(server15, tmp_path):
    """A PostgreSQL 15 source with pgcrypto, on a machine whose only server new enough is the embedded 18."""
    db = server15.create_database()
    try:
        db.execute("CREATE EXTENSION pgcrypto")
        seed(db)
        taken = backup(db, tmp_path)
        assert manifest(taken.path)["extensions"] == ["pgcrypto"]
        only_embedded = tuple(c for c in local.candidates() if c.source == "embedded")
        result = drill(db, taken.path, found=only_embedded)
        assert result.outcome is Outcome.FAILED
        assert result.missing_extensions == ("pgcrypto",)
        assert "needs the extension pgcrypto" in result.error.message
        assert "--drill-url" in result.error.hint and "install" in result.error.hint.lower()
        # With the machine's own PostgreSQL 15 (which has pgcrypto), the same backup drills clean.
        assert drill(db, taken.path).ok
    finally:
        server15.drop_database(db.name)


def test_an_extension_missing_at_restore_time_is_named(server15, tmp_path):
    """The restore itself names it too (here the manifest was made to forget it, so the local 18 is tried)."""
    db = server15.create_database()
    try:
        db.execute("CREATE EXTENSION pgcrypto")
        seed(db)
        taken = backup(db, tmp_path)
        m = manifest(taken.path)
        m["extensions"] = []
        Path(f"{taken.path}.manifest.json").write_text(json.dumps(m))
        only_embedded = tuple(c for c in local.candidates() if c.source == "embedded")
        result = drill(db, taken.path, found=only_embedded)
        assert result.outcome is Outcome.FAILED
        assert "needs the extension pgcrypto" in result.error.message, result.error
        assert "--drill-url" in result.error.hint and result.removed
    finally:
        server15.drop_database(db.name)


def test_exact_counts_are_compared_too(db, tmp_path):
    seed(db)
    taken = backup(db, tmp_path, exact=True)
    assert manifest(taken.path)["rows_exact"] == ROWS
    result = drill(db, taken.path, exact=True)
    assert result.ok, result
    assert {c.table: c.rows_exact for c in result.tables} == ROWS
    plain = backup(db, tmp_path)
    refused = drill(db, plain.path, exact=True)
    assert refused.outcome is Outcome.FAILED and "--exact" in refused.error.hint
