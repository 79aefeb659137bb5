"""kill -9, SIGTERM and connection termination while `rollback --restore FILE` runs psql.

psql has created the table inside its one transaction (the answer to its ``CREATE TABLE`` is held at
the relay, :mod:`pg_proxy`), with most of the copy still to read. Afterwards the table is either
absent or restored whole (every row, the primary key, the indexes, the sequence), never in between.

The copy is large (300 rows, ~150 kB) and laid out so that a truncated psql input would end exactly at
the end of a COPY row: each row's line is 512 bytes and the rows start at a multiple of 512 (a table
comment pads what comes before them; measured on a copy taken the way the tool takes it). The tool
feeds psql through a pipe in 4096-byte writes; if it dies mid-way (kill -9) and psql read only what
reached the pipe, psql would end the COPY cleanly at that point and commit part of the rows.
"""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import pytest

from fault_support import backend_count, env_for, run_cli, table_state, wait_until
from gates import partials
from live_cli import LiveCli
from migration.events import Outcome
from migration.rollback.safety_copy import dump_table, find_pg_dump
from migration.runner import Migration
from pg_proxy import PgProxy, url_through

FAULTS = ("kill9", "sigterm", "terminate")
ROWS = 300
LINE = 512
ABSENT = "nothing was restored (the catalog confirms the table is absent)."


def row_line(i: int, filename: str) -> str:
    """The COPY text line of row i (as pg_dump writes it; every value fixed-width)."""
    return "\t".join([str(1000 + i), filename, "k", "1", "full", "completed", "system", r"\N",
                      "2026-01-01 00:00:00", r"\N"]) + "\n"


def rows_start(text: str) -> int:
    match = re.search(r"^COPY public\.database_backups \(.*\) FROM stdin;\n", text, re.M)
    assert match, "the copy has no COPY block"
    return match.end()


def fill(db, settings) -> None:
    """The migrated table with ROWS rows of exactly LINE bytes each in the copy."""
    assert Migration(settings, lambda e: None).run().outcome is Outcome.SUCCESS
    with db.app() as conn:
        for i in range(ROWS):
            stem = f"f{i:04d}-"
            pad = LINE - len(row_line(i, stem))
            conn.execute("INSERT INTO public.database_backups (id, filename, s3_key, file_size, created_at) "
                         "VALUES (%s, %s, 'k', 1, '2026-01-01 00:00:00')", (1000 + i, stem + "x" * pad))
        conn.execute("SELECT setval(pg_get_serial_sequence('public.database_backups', 'id'), 2000)")
        conn.execute("COMMENT ON TABLE public.database_backups IS 'x'")


def align(db, settings, scratch: Path) -> None:
    """Pad the table comment so that the rows of a copy start at a multiple of LINE."""
    major = db.scalar("SELECT current_setting('server_version_num')::int") // 10000
    copy = dump_table(settings, find_pg_dump(major), scratch, schema="public", table="database_backups",
                      snapshot=None, expected_rows=ROWS, lock_timeout_ms=5000, server_major=major,
                      cancel=threading.Event())
    start = rows_start(Path(copy.path).read_text())
    with db.app() as conn:
        conn.execute(f"COMMENT ON TABLE public.database_backups IS '{'x' * (1 + (-start) % LINE)}'")


def restored_whole(db) -> bool:
    with db.admin() as conn:
        count = conn.execute("SELECT count(*), min(id), max(id) FROM public.database_backups").fetchone()
        pk = conn.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.database_backups'::regclass "
                          "AND contype = 'p'").fetchone()[0]
        next_id = conn.execute("SELECT last_value FROM public.database_backups_id_seq").fetchone()[0]
    return table_state(db) == "valid" and count == (ROWS, 1000, 1000 + ROWS - 1) and pk == 1 and next_id == 2000


@pytest.fixture
def copy_file(db, settings_for, tmp_path) -> Path:
    """A safety copy taken by `rollback --yes` (the table is gone), its rows aligned as described above."""
    settings = settings_for(db)
    fill(db, settings)
    align(db, settings, tmp_path / "scratch")
    result = run_cli("rollback", "--yes", "--backup-dir", str(tmp_path / "backups"), cwd=tmp_path,
                     env=env_for(db, tmp_path))
    assert result.returncode == 0, result.output
    path = Path(re.search(r"✓ Safety copy written and verified: (\S+)", result.stdout).group(1))
    text = path.read_text()
    start = rows_start(text)
    lines = text[start:].split("\\.\n", 1)[0].splitlines(keepends=True)
    assert start % LINE == 0 and len(lines) == ROWS and {len(line) for line in lines} == {LINE}, \
        f"the copy's rows are not laid out as this test needs (start {start}, lengths {set(map(len, lines))})"
    assert len(text) > 2 * 65536, "the copy must be larger than what a pipe holds"
    return path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", FAULTS)
def test_fault_during_the_restore(db, tmp_path, copy_file, fault):
    assert table_state(db) == "absent"
    with PgProxy(("127.0.0.1", db.server.local.port), watch=lambda app: app == "migrate-tui restore") as proxy:
        env = env_for(db, tmp_path, DATABASE_URL=url_through(db.url, proxy))
        cli = LiveCli("rollback", "--restore", str(copy_file), cwd=tmp_path, env=env)
        try:
            held = proxy.next_held()
            while "CREATE TABLE" not in held.sql:
                held.forward()
                held = proxy.next_held()
            if fault == "terminate":
                with db.admin() as conn:
                    assert conn.execute("SELECT pg_terminate_backend(%s, 10000)", (held.backend_pid,)).fetchone()[0]
                held.drop()
                proxy.pass_through()
                result = cli.finish()
            else:
                held.forward_and_hold_answer()  # the table exists inside psql's transaction
                if fault == "kill9":
                    cli.kill9()
                else:
                    cli.signal(signal.SIGTERM)
                    cli.wait_printed("Cancelling: stopping psql; nothing is kept")
                proxy.pass_through()
                if fault == "sigterm":
                    result = cli.finish()
        finally:
            cli.close()
    wait_until(lambda: not backend_count(db, "migrate-tui%"), 30, "psql's session to end")
    assert not partials(copy_file.parent)

    if fault == "kill9":  # psql outlived the tool: it restored all of the copy, or nothing
        assert table_state(db) == "absent" or restored_whole(db), \
            f"a partial restore was committed: {db.scalar('SELECT count(*) FROM public.database_backups')} rows"
        return
    assert table_state(db) == "absent", "nothing of the restore was kept"
    if fault == "sigterm":
        assert result.returncode == 130, result.output
        assert "Error: Cancelled by the operator. (SQLSTATE 57014)" in result.stdout, result.output
        assert "Fix: Nothing was restored. Run the restore again when ready." in result.stdout, result.output
        assert f"⏹  Cancelled; {ABSENT}" in result.stdout, result.output
    else:
        assert result.returncode == 1, result.output
        assert "Error: psql could not restore the safety copy; nothing was restored (one transaction)." \
            in result.stdout, result.output
        assert "connection to server was lost" in result.stdout, result.output
        assert f"❌ Restore failed; {ABSENT}" in result.stdout, result.output
    again = run_cli("rollback", "--restore", str(copy_file), cwd=tmp_path, env=env_for(db, tmp_path))
    assert again.returncode == 0, again.output
    assert restored_whole(db)
