"""Files in shared directories: another OS user plants links and files where the tool writes (issue
findings 3 and 6), and backup directories that are not the operator's own.

The attacker is ``nobody``; the operator (these tests, and CI) is root, which the kernel lets follow
any link (``fs.protected_symlinks`` is off on these machines, and even where it is on, the tool must
not rely on it). Every timestamped name the tool can use during the run is planted in advance.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from cli.cli_support import run_cli
from files_support import (
    PasswordTrap,
    attacker_ids,
    attacker_write,
    backup_names,
    clear,
    copy_names,
    env_for,
    install_wrappers,
    listing,
    migrate,
    plant_files,
    plant_links,
    recorded_calls,
    regular_files_of,
    shared_place,  # noqa: F401 - the fixture 'shared'
)

from harness import CANARY

from migration import exit_codes

pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("system-tmp")]  # the CLI runs without TMPDIR: /tmp

NAMED_LINK = re.compile(r"(?P<path>\S+) already exists \(a symbolic link owned by nobody\); "
                        r"nothing was written through it\.")
NAMED_FILE = re.compile(r"(?P<path>\S+) already exists \(a file owned by nobody\); nothing was written through it\.")


def named(pattern: re.Pattern, output: str, planted: list[str], directory: str = "backups") -> str:
    """The planted name the tool's message names (in the directory as the operator gave it)."""
    match = pattern.search(output)
    assert match, output
    path = Path(match["path"])
    assert str(path.parent) == directory and path.name in planted, (path, output)
    return path.name


def assert_links_intact(directory: Path, planted: list[str], target: Path) -> None:
    """Every planted link is still there, still a link to the victim: nothing replaced or removed them."""
    entries = listing(directory)
    for name in planted:
        kind, uid, *_rest, points_to = entries[name]
        assert kind == stat.S_IFLNK and uid == attacker_ids()[0] and points_to == str(target), name


@pytest.mark.parametrize("fmt,ext", [("plain", ".sql"), ("custom", ".dump")])
def test_backup_names_the_planted_link_and_writes_nothing_through_it(db, shared, tmp_path, fmt, ext):
    planted = plant_links(shared.backups, backup_names(ext=ext), shared.victim.path)
    result = run_cli("backup", "--format", fmt, cwd=shared.base, env=env_for(db.url, tmp_path / "audit.log"))
    assert result.returncode == exit_codes.FAILURE, result.output
    name = named(NAMED_LINK, result.output, planted)
    assert name.startswith("backup_before_migration_") and (name.endswith(ext) or name.endswith(ext + ".partial"))
    assert "✗ Backup failed — no backup file was kept." in result.stdout
    shared.victim.assert_untouched()
    assert regular_files_of(shared.backups) == []  # not a byte of the dump anywhere in the directory
    assert_links_intact(shared.backups, planted, shared.victim.path)


@pytest.mark.parametrize("parts,suffix", [
    (("sha256.partial",), ".sha256.partial"),
    (("manifest.partial",), ".manifest.json.partial"),
    (("sha256", "manifest"), ".sha256"),  # the final names: link() must not replace or follow them
], ids=["sha256-partial", "manifest-partial", "final-sidecars"])
def test_backup_sidecars_are_never_written_through_a_planted_link(db18, shared, tmp_path, parts, suffix):
    """The dump's own names are free; the checksum or manifest names (or their temporaries) are links."""
    planted = plant_links(shared.backups, backup_names(parts=parts), shared.victim.path)
    result = run_cli("backup", cwd=shared.base, env=env_for(db18.url, tmp_path / "audit.log"))
    assert result.returncode == exit_codes.FAILURE, result.output
    assert "  Verifying: end-of-dump marker" in result.stdout  # the dump itself was written and verified
    assert named(NAMED_LINK, result.output, planted).endswith(suffix)
    shared.victim.assert_untouched()
    assert_links_intact(shared.backups, planted, shared.victim.path)
    for name in regular_files_of(shared.backups):  # what the tool did write: its own, private files
        st = os.lstat(shared.backups / name)
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600, name
        assert not name.endswith(".partial"), name  # no temporary left behind


def test_a_backup_that_fails_on_its_sidecars_keeps_no_dump_or_says_so(db18, shared, tmp_path):
    planted = plant_links(shared.backups, backup_names(parts=("sha256",)), shared.victim.path)
    result = run_cli("backup", cwd=shared.base, env=env_for(db18.url, tmp_path / "audit.log"))
    assert result.returncode == exit_codes.FAILURE, result.output
    named(NAMED_LINK, result.output, planted)
    shared.victim.assert_untouched()
    kept = [n for n in regular_files_of(shared.backups) if n.endswith(".sql")]
    assert not kept or "no backup file was kept" not in result.stdout, (kept, result.stdout)


def test_only_the_tools_own_temporary_files_are_cleaned_up(db18, shared, tmp_path):
    place = shared.base / "mine"
    place.mkdir(mode=0o700)
    (place / ".thesis.partial").write_text("a download or an editor's file, not migrate-tui's\n")
    result = run_cli("backup", "--backup-dir", "mine", cwd=shared.base, env=env_for(db18.url, tmp_path / "a.log"))
    assert result.returncode == exit_codes.OK, result.output
    assert (place / ".thesis.partial").exists(), result.stdout


def test_run_with_links_planted_stops_before_any_change(db, shared, tmp_path):
    planted = plant_links(shared.backups, backup_names(), shared.victim.path)
    result = run_cli("run", "--yes", cwd=shared.base, env=env_for(db.url, tmp_path / "audit.log"))
    assert result.returncode == exit_codes.FAILURE, result.output
    named(NAMED_LINK, result.output, planted)
    assert "Nothing was changed: the migration does not start without a verified backup" in result.stdout
    assert not db.table_exists()
    shared.victim.assert_untouched()
    assert regular_files_of(shared.backups) == []


def test_rollback_with_links_planted_drops_nothing(db, shared, tmp_path):
    audit_log = tmp_path / "audit.log"
    env = env_for(db.url, audit_log)
    migrate(db.url, tmp_path, audit_log)

    # Every name of the safety copy (and its temporary and manifest names) is a link.
    planted = plant_links(shared.backups, copy_names(), shared.victim.path)
    result = run_cli("rollback", "--yes", cwd=shared.base, env=env)
    assert result.returncode == exit_codes.FAILURE, result.output
    assert named(NAMED_LINK, result.output, planted).startswith("public.database_backups-before-rollback-")
    assert "❌ Rollback failed; nothing was dropped (the catalog still shows public.database_backups)." in result.stdout
    assert db.table_exists()
    shared.victim.assert_untouched()
    assert regular_files_of(shared.backups) == []

    # Only the manifest's names are links: the copy is written, its manifest is not, nothing is dropped.
    clear(shared.backups)
    planted = plant_links(shared.backups, copy_names(parts=("manifest", "manifest.partial")), shared.victim.path)
    result = run_cli("rollback", "--yes", cwd=shared.base, env=env)
    assert result.returncode == exit_codes.FAILURE, result.output
    assert named(NAMED_LINK, result.output, planted).endswith(".manifest.json.partial")
    assert db.table_exists()
    shared.victim.assert_untouched()
    assert_links_intact(shared.backups, planted, shared.victim.path)

    # The same shared (sticky, the operator's) directory without planted names: the rollback works.
    clear(shared.backups)
    result = run_cli("rollback", "--yes", cwd=shared.base, env=env)
    assert result.returncode == exit_codes.OK, result.output
    assert not db.table_exists()
    written = regular_files_of(shared.backups)
    assert len(written) == 2 and written[1] == written[0] + ".manifest.json", written
    for name in written:
        assert stat.S_IMODE(os.lstat(shared.backups / name).st_mode) == 0o600


def test_files_planted_by_another_user_receive_nothing(db18, shared, tmp_path):
    """Empty 0666 files of the attacker's at every name: opening one would hand them the dump."""
    env = env_for(db18.url, tmp_path / "audit.log")
    planted = plant_files(shared.backups, backup_names() + copy_names())
    result = run_cli("backup", cwd=shared.base, env=env)
    assert result.returncode == exit_codes.FAILURE, result.output
    named(NAMED_FILE, result.output, planted)

    migrate(db18.url, tmp_path, tmp_path / "audit.log")
    result = run_cli("rollback", "--yes", cwd=shared.base, env=env)
    assert result.returncode == exit_codes.FAILURE, result.output
    named(NAMED_FILE, result.output, planted)
    assert db18.table_exists()

    entries = listing(shared.backups)
    assert sorted(entries) == planted  # nothing else was created
    for name, (kind, uid, mode, size, _) in entries.items():
        assert (kind, uid, mode, size) == (stat.S_IFREG, attacker_ids()[0], 0o666, 0), name  # still empty, theirs


# --- directories that are not the operator's own ---------------------------------------------------------

UNSAFE_DIRS = {
    # name: (mode, owned by the attacker, the message's words)
    "sticky-of-another-user": (0o1777, True, "can be written by other users (mode 1777, owner nobody)"),
    "world-writable-not-sticky": (0o777, False, "can be written by other users (mode 0777, owner root)"),
    "group-writable": (0o775, False, "can be written by other users (mode 0775, owner root)"),
}


def test_a_sticky_directory_of_another_user_is_refused_before_pg_dump_runs(db, shared, tmp_path):
    refused_before_pg_dump(db, shared, tmp_path, "sticky-of-another-user")


@pytest.mark.parametrize("kind", ["world-writable-not-sticky", "group-writable"])
def test_a_directory_others_can_write_is_refused_before_pg_dump_runs(db18, shared, tmp_path, kind):
    refused_before_pg_dump(db18, shared, tmp_path, kind)


def refused_before_pg_dump(db, shared, tmp_path, kind: str) -> None:
    """backup, run --yes and rollback --yes with --backup-dir the unsafe directory: refused, and pg_dump
    (a recording wrapper in PG_DUMP) never runs, only its --version probes."""
    mode, theirs, words = UNSAFE_DIRS[kind]
    place = shared.base / "drop"
    place.mkdir()
    os.chmod(place, mode)
    if theirs:
        os.chown(place, *attacker_ids())
    calls_dir = tmp_path / "calls"
    wrappers = install_wrappers(tmp_path / "bin", calls_dir, db.server.bin_dir)
    env = env_for(db.url, tmp_path / "audit.log", PG_DUMP=str(wrappers / "pg_dump"))

    backup = run_cli("backup", "--backup-dir", "drop", cwd=shared.base, env=env)
    assert backup.returncode == exit_codes.FAILURE, backup.output
    assert f"Error: The backup directory drop {words}; nothing is written there." in backup.stdout
    assert "Fix: Use a directory only you can write to" in backup.stdout

    run = run_cli("run", "--yes", "--backup-dir", "drop", cwd=shared.base, env=env)
    assert run.returncode == exit_codes.FAILURE, run.output
    assert f"✗ Backup directory\nError: drop {words}" in run.stdout
    assert "❌ Migration not started - the pre-migration checklist failed" in run.stdout
    assert not db.table_exists()

    migrate(db.url, tmp_path, tmp_path / "audit.log")
    rollback = run_cli("rollback", "--yes", "--backup-dir", "drop", cwd=shared.base, env=env)
    assert rollback.returncode == exit_codes.FAILURE, rollback.output
    assert f"The backup directory drop {words}; nothing is written there." in rollback.stdout
    assert db.table_exists()

    assert listing(place) == {}
    dumps = [c.argv for c in recorded_calls(calls_dir) if c.program == "pg_dump" and "--version" not in c.argv]
    assert dumps == [], "pg_dump ran although the directory was refused"
    assert any(c.program == "pg_dump" for c in recorded_calls(calls_dir))  # the wrapper was in use


def test_backup_dir_through_a_link_to_etc_is_refused_and_shown_resolved(db18, shared, tmp_path):
    env = env_for(db18.url, tmp_path / "audit.log")
    (shared.base / "backups-link").symlink_to("/etc")
    etc_before = sorted(os.listdir("/etc"))

    check = run_cli("check", "--backup-dir", "backups-link", cwd=shared.base, env=env)
    assert check.returncode == exit_codes.FAILURE, check.output
    assert "  ✗ Backup directory: backups-link -> /etc is a system directory" in check.stdout
    assert "--trust-backup-dir accepts it anyway" in check.stdout

    backup = run_cli("backup", "--backup-dir", "backups-link", cwd=shared.base, env=env)
    assert backup.returncode == exit_codes.FAILURE, backup.output
    assert ("Error: The backup directory backups-link -> /etc is a system directory; nothing is written there."
            in backup.stdout)

    direct = run_cli("backup", "--backup-dir", "/etc", cwd=shared.base, env=env)
    assert direct.returncode == exit_codes.FAILURE, direct.output
    assert "Error: The backup directory /etc is a system directory; nothing is written there." in direct.stdout

    run = run_cli("run", "--yes", "--backup-dir", "backups-link", cwd=shared.base, env=env)
    assert run.returncode == exit_codes.FAILURE, run.output
    assert "✗ Backup directory\nError: backups-link -> /etc is a system directory" in run.stdout
    assert not db18.table_exists()

    migrate(db18.url, tmp_path, tmp_path / "audit.log")
    rollback = run_cli("rollback", "--yes", "--backup-dir", "backups-link", cwd=shared.base, env=env)
    assert rollback.returncode == exit_codes.FAILURE, rollback.output
    assert "The backup directory backups-link -> /etc is a system directory" in rollback.stdout
    assert db18.table_exists()

    assert sorted(os.listdir("/etc")) == etc_before


def test_a_new_backup_dir_below_etc_is_not_created(db18, shared, tmp_path):
    env = env_for(db18.url, tmp_path / "audit.log")
    (shared.base / "backups-link").symlink_to("/etc")
    new = f"mtui-sec-{os.getpid()}-{tmp_path.name}"[:60]
    try:
        check = run_cli("check", "--backup-dir", f"backups-link/{new}", cwd=shared.base, env=env)
        assert f"  ✗ Backup directory: backups-link/{new} -> /etc/{new} would be created in a system directory" \
            in check.stdout, check.output
        backup = run_cli("backup", "--backup-dir", f"backups-link/{new}", cwd=shared.base, env=env)
        assert backup.returncode == exit_codes.FAILURE, backup.output
        assert "would be created in a system directory; nothing is written there." in backup.stdout
        assert not os.path.lexists(f"/etc/{new}"), f"/etc/{new} was created"
    finally:
        if os.path.isdir(f"/etc/{new}") and not os.path.islink(f"/etc/{new}"):
            os.rmdir(f"/etc/{new}")


def test_a_directory_of_another_user_needs_trust_backup_dir(db18, shared, tmp_path):
    env = env_for(db18.url, tmp_path / "audit.log")
    theirs = shared.base / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, *attacker_ids())

    check = run_cli("check", "--backup-dir", "theirs", cwd=shared.base, env=env)
    assert check.returncode == exit_codes.FAILURE, check.output
    assert "  ✗ Backup directory: theirs belongs to nobody" in check.stdout
    backup = run_cli("backup", "--backup-dir", "theirs", cwd=shared.base, env=env)
    assert backup.returncode == exit_codes.FAILURE, backup.output
    assert "Error: The backup directory theirs belongs to nobody; nothing is written there." \
        in backup.stdout
    assert listing(theirs) == {}

    check = run_cli("check", "--backup-dir", "theirs", "--trust-backup-dir", cwd=shared.base, env=env)
    assert check.returncode == exit_codes.OK, check.output
    assert "  ✓ Backup directory: theirs — accepted with --trust-backup-dir" in check.stdout
    backup = run_cli("backup", "--backup-dir", "theirs", "--trust-backup-dir", cwd=shared.base, env=env)
    assert backup.returncode == exit_codes.OK, backup.output
    assert "✓ Backup written and verified: theirs/backup_before_migration_" in backup.stdout
    written = regular_files_of(theirs)
    assert len(written) == 3 and {n.rsplit(".sql", 1)[1] for n in written} == {"", ".sha256", ".manifest.json"}


# --- configuration read from a shared directory -------------------------------------------------------------

def test_a_dotenv_planted_by_another_user_is_not_used(shared, tmp_path):
    """The operator exports PGPASSWORD (DATABASE_URL comes from a .env they expected); the attacker's .env
    in the shared working directory names a server of theirs that asks for the password in clear text."""
    trap = PasswordTrap()
    try:
        attacker_write(shared.backups / ".env",
                       f"DATABASE_URL=postgresql://app_user@127.0.0.1:{trap.port}/shop\n".encode())
        env = env_for(None, tmp_path / "audit.log", PGPASSWORD=CANARY)
        result = run_cli("check", cwd=shared.backups, env=env)
    finally:
        trap.close()
    assert trap.passwords == [], "the operator's password was sent to the server named in another user's .env"
    assert result.returncode == exit_codes.CONFIG, result.output
