"""``rollback --restore`` (and the wizard's restore, key u) runs only the safety copy migrate-tui wrote
(issue finding 3, second half).

The operator restores as a superuser (as on a real production host). The attacker's version of the
copy makes an unprivileged role superuser (``ALTER ROLE … SUPERUSER``) and then recreates the table
as the real copy does; a restore that ran it would report success. Each swapped, edited, foreign,
writable or manifest-less copy must be refused before anything reaches the database: the role stays
unprivileged, the table stays absent, and psql never starts (a recording wrapper stands in for it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cli.cli_support import run_cli
from files_support import (
    attacker_ids,
    attacker_symlink,
    attacker_write,
    env_for,
    flat,
    install_wrappers,
    recorded_calls,
    settle,
    shared_place,  # noqa: F401 - the fixture 'shared'
    wait_for,
    widget_text,
)
from harness import with_dbname
from psycopg import sql

from migration import exit_codes

pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("system-tmp")]  # the CLI runs without TMPDIR: /tmp

COPY_WRITTEN = re.compile(r"✓ Safety copy written and verified: (\S+)")
REFUSED = "❌ Restore refused; nothing was restored."


@dataclass
class Scene:
    """A table rolled back with its safety copy in the shared 1777 directory; an unprivileged role."""

    db: object
    url: str  # the superuser's URL for this database
    admin_password: str
    role: str
    copy: Path  # as printed, relative to cwd
    cwd: Path
    env: dict
    pristine: bytes
    manifest: bytes
    calls_dir: Path

    @property
    def path(self) -> Path:
        return self.cwd / self.copy

    @property
    def manifest_path(self) -> Path:
        return Path(str(self.path) + ".manifest.json")

    def edited(self) -> bytes:
        """The attacker's dump: the payload, then exactly what the real copy does."""
        payload = f"ALTER ROLE {self.role} SUPERUSER;\n".encode()
        assert b"\nCREATE TABLE " in self.pristine
        return self.pristine.replace(b"\nCREATE TABLE ", b"\n" + payload + b"CREATE TABLE ", 1)

    def role_is_superuser(self) -> bool:
        return bool(self.db.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (self.role,)))

    def reset_files(self) -> None:
        """The copy and its manifest as migrate-tui wrote them (root's, 0600)."""
        for path, data in ((self.path, self.pristine), (self.manifest_path, self.manifest)):
            if os.path.lexists(path):
                os.unlink(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.close(fd)

    def psql_runs(self) -> int:
        return sum(1 for c in recorded_calls(self.calls_dir) if c.program == "psql")


@pytest.fixture
def scene(db, shared, tmp_path):
    parts = urlsplit(db.server.admin_url)
    url = with_dbname(db.server.admin_url, db.name)
    role = "mallory_" + uuid.uuid4().hex[:10]
    db.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER").format(sql.Identifier(role)))
    wrappers = install_wrappers(tmp_path / "bin", tmp_path / "calls", db.server.bin_dir)
    env = env_for(url, tmp_path / "audit.log", PG_DUMP=str(wrappers / "pg_dump"))
    try:
        result = run_cli("run", "--yes", "--skip-backup", cwd=shared.base, env=env, secrets=(parts.password,))
        assert result.returncode == 0, result.output
        db.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a', 'k/a', 1), "
                   "('b', 'k/b', 2)")
        result = run_cli("rollback", "--yes", cwd=shared.base, env=env, secrets=(parts.password,))
        assert result.returncode == 0, result.output
        copy = Path(COPY_WRITTEN.search(result.stdout).group(1))
        assert copy.parent == Path("backups")  # the shared 1777 directory
        path = shared.base / copy
        yield Scene(db, url, parts.password, role, copy, shared.base, env, path.read_bytes(),
                    Path(str(path) + ".manifest.json").read_bytes(), tmp_path / "calls")
    finally:
        db.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def restore(scene: Scene):
    return run_cli("rollback", "--restore", str(scene.copy), cwd=scene.cwd, env=scene.env,
                   secrets=(scene.admin_password,))


def _swap_for_link(scene: Scene, shared) -> str:
    evil = shared.attacker_dir / "edited.sql"
    attacker_write(evil, scene.edited())
    os.unlink(scene.path)
    attacker_symlink(evil, scene.path)  # a sticky directory still lets anyone create a new name
    return f"The safety copy {scene.copy} is a symbolic link; it is not read."


def _edit_in_place(scene: Scene, shared) -> str:
    os.truncate(scene.path, 0)
    with open(scene.path, "r+b") as handle:
        handle.write(scene.edited())
    assert oct(os.stat(scene.path).st_mode & 0o777) == "0o600" and os.stat(scene.path).st_uid == 0
    return (f"The safety copy {scene.copy} was changed after migrate-tui wrote it (its sha256 or size no longer "
            "matches its manifest); nothing was restored.")


def _edit_keeping_the_size(scene: Scene, shared) -> str:
    """The same number of bytes: only the sha256 tells."""
    data = scene.pristine.replace(b"k/a", b"k/X", 1)  # a row of the COPY block
    assert len(data) == len(scene.pristine) and data != scene.pristine
    scene.path.write_bytes(data)
    return f"The safety copy {scene.copy} was changed after migrate-tui wrote it"


def _owned_by_the_attacker(scene: Scene, shared) -> str:
    scene.path.write_bytes(scene.edited())
    os.chown(scene.path, *attacker_ids())
    return f"The safety copy {scene.copy} is owned by nobody, not by you; it is not used."


def _group_writable(scene: Scene, shared) -> str:
    os.chmod(scene.path, 0o620)
    return f"The safety copy {scene.copy} can be changed by other users (mode 0620); it is not used."


def _a_fifo(scene: Scene, shared) -> str:
    os.unlink(scene.path)
    os.mkfifo(scene.path, 0o600)
    return f"The safety copy {scene.copy} is not a regular file; it is not used."


def _no_manifest(scene: Scene, shared) -> str:
    os.unlink(scene.manifest_path)
    return (f"The manifest of the safety copy {scene.copy}.manifest.json does not exist. Without it, nothing says "
            "this is the copy migrate-tui wrote.")


def _attacker_manifest(scene: Scene, shared) -> str:
    """An edited copy with a manifest that matches it, written by the attacker."""
    data = scene.edited()
    scene.path.write_bytes(data)
    manifest = dict(json.loads(scene.manifest), sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    os.unlink(scene.manifest_path)
    attacker_write(scene.manifest_path, json.dumps(manifest).encode())
    return f"The manifest of the safety copy {scene.copy}.manifest.json is owned by nobody, not by you"


def _manifest_link(scene: Scene, shared) -> str:
    data = scene.edited()
    scene.path.write_bytes(data)
    forged = shared.attacker_dir / "forged.manifest.json"
    manifest = dict(json.loads(scene.manifest), sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    attacker_write(forged, json.dumps(manifest).encode())
    os.unlink(scene.manifest_path)
    attacker_symlink(forged, scene.manifest_path)
    return f"The manifest of the safety copy {scene.copy}.manifest.json is a symbolic link; it is not read."


ATTACKS = [_swap_for_link, _edit_in_place, _edit_keeping_the_size, _owned_by_the_attacker, _group_writable, _a_fifo,
           _no_manifest, _attacker_manifest, _manifest_link]


def test_restore_runs_only_the_copy_migrate_tui_wrote(scene, shared):
    assert not scene.role_is_superuser() and not scene.db.table_exists()
    for attack in ATTACKS:
        scene.reset_files()
        message = attack(scene, shared)
        result = restore(scene)
        assert result.returncode == exit_codes.FAILURE, (attack.__name__, result.output)
        assert message in result.stdout, (attack.__name__, result.stdout)
        assert REFUSED in result.stdout, attack.__name__
        assert not scene.role_is_superuser(), f"{attack.__name__}: the attacker's dump ran"
        assert not scene.db.table_exists(), attack.__name__
        assert scene.psql_runs() == 0, f"{attack.__name__}: psql was started"
        shared.victim.assert_untouched()

    # The copy as it was written restores, psql reading the verified bytes from a memory file (never the path).
    scene.reset_files()
    result = restore(scene)
    assert result.returncode == exit_codes.OK, result.output
    assert "✅ Table public.database_backups restored from the safety copy: 2 rows, structure verified." \
        in result.stdout
    assert scene.db.scalar("SELECT count(*) FROM database_backups") == 2
    assert not scene.role_is_superuser()
    (psql,) = [c for c in recorded_calls(scene.calls_dir) if c.program == "psql"]
    assert re.fullmatch(r"/dev/fd/\d+", psql.argv[psql.argv.index("-f") + 1]), psql.argv
    assert str(scene.copy) not in " ".join(psql.argv)

    # The control: the attacker's dump does what it says when psql runs it (in a scratch database).
    scratch = scene.db.server.create_database()
    try:
        bin_dir = scene.db.server.bin_dir
        run = subprocess.run([str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                              "-f", "-", "-d", with_dbname(scene.db.server.admin_url, scratch.name)],
                             input=scene.edited(), capture_output=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert scene.role_is_superuser()
    finally:
        scene.db.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(scene.role)))
        scene.db.server.drop_database(scratch.name)


# --- the wizard -------------------------------------------------------------------------------------------

@pytest.fixture
def wizard_scene(db18, shared, tmp_path, monkeypatch):
    """The wizard in the shared base directory (its ./backups is the 1777 one), as a superuser."""
    monkeypatch.chdir(shared.base)
    monkeypatch.setenv("MIGRATE_AUDIT_LOG", str(tmp_path / "audit.log"))
    role = "mallory_" + uuid.uuid4().hex[:10]
    db18.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER").format(sql.Identifier(role)))
    url = with_dbname(db18.server.admin_url, db18.name)
    result = run_cli("run", "--yes", "--skip-backup", cwd=tmp_path, env=env_for(url, tmp_path / "audit.log"))
    assert result.returncode == 0, result.output
    db18.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a', 'k/a', 1), ('b', 'k/b', 2)")
    try:
        yield db18, url, role
    finally:
        db18.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


async def test_wizard_restore_refuses_a_swapped_copy_then_restores_the_real_one(wizard_scene, shared):
    from migration.events import Outcome
    from migration.settings import load_settings
    from tui.app import MigrateApp
    from tui.screens.rollback import RollbackScreen

    db, url, role = wizard_scene
    app = MigrateApp(settings=load_settings(database_url=url, environ={}))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.target_screen.overview is not None
        await pilot.press("d")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RollbackScreen)
        await pilot.press("d")
        await pilot.pause()
        await pilot.press(*"database_backups", "enter")
        await wait_for(pilot, lambda: screen.result is not None, "the rollback")
        await settle(app, pilot)
        assert screen.result.outcome is Outcome.SUCCESS and not db.table_exists()
        copy = Path(screen.result.copy.path)
        assert copy.parent == Path("backups")
        pristine = copy.read_bytes()

        # The attacker swaps the copy for a link to their edited dump.
        evil = shared.attacker_dir / "edited.sql"
        payload = f"ALTER ROLE {role} SUPERUSER;\n".encode()
        attacker_write(evil, pristine.replace(b"\nCREATE TABLE ", b"\n" + payload + b"CREATE TABLE ", 1))
        os.unlink(copy)
        attacker_symlink(evil, shared.base / copy)

        await pilot.press("u")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: not getattr(screen, "restoring", True), "the restore to finish")
        await settle(app, pilot)
        assert "Restore refused; nothing was restored." in widget_text(screen, "#rollback-status")
        assert f"The safety copy {copy} is a symbolic link; it is not read." in flat(
            widget_text(screen, "#rollback-result"))
        assert not screen.restored
        assert not db.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,))
        assert not db.table_exists()

        # The operator puts the real copy back: u restores it.
        os.unlink(copy)
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, pristine)
        os.close(fd)
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: getattr(screen, "restored", False), "the restore")
        await settle(app, pilot)
        assert "restored from the safety copy: 2 rows, structure verified" in widget_text(screen, "#rollback-status")
    assert db.table_exists() and db.scalar("SELECT count(*) FROM database_backups") == 2
    assert not db.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,))
    shared.victim.assert_untouched()
