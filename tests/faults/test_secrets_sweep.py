"""Secrets sweep: every headless command and every wizard screen, with canary secrets.

The password (the harness's canary, also percent-encoded), CRON_SECRET and both CLOUDFLARE_* values
are canaries; none may appear in:

- the output of any command (stdout and stderr) and the SVG screenshot of any wizard screen;
- the argv or the environment of any process the tool starts. Every child is caught, however short
  it lives: recording wrappers (:mod:`recorders`) for pg_dump, pg_restore, psql and a local server's
  programs stand first on PATH and in PG_DUMP / PG_RESTORE, and are the drill's PostgreSQL
  (``MIGRATE_DRILL_PG_BIN``); they record their own argv, uid and ``/proc/self/environ`` before becoming
  the real program. The drill's throwaway server is caught whole: ``runuser`` (as root), ``initdb``,
  ``pg_ctl``, every ``postgres`` they start (initdb's probes and bootstrap, the postmaster) and the
  ``locale -a`` the bootstrap runs (as root, each of them as the server's unprivileged OS user). Each
  headless command runs under ``strace -f`` (:mod:`exec_trace`), which sees every ``execve`` of every
  descendant and who started it: each must be a wrapper then the program it became;
  the one exception is ``/bin/sh``, started by the real initdb, pg_ctl or postgres themselves (popen,
  pg_ctl's ``exec postgres``), which must run wrappers only. So a child started any other way fails
  the sweep. The command's own process (the operator's, with the operator's environment) is told apart
  by its pid;
- any file the tool writes, wherever it writes it: every file any of its processes opened for writing
  or gave a new name (from the trace), and everything in the working directory, the backup directory
  elsewhere, the audit log's directory, a private HOME and TMPDIR, the system temp directory's
  ``migrate-tui-*`` entries and ``/dev/shm``. A throwaway server's directory is gone when the command
  ends (every file the trace saw written under it no longer exists): its files — data directory,
  ``postgresql.conf``, ``pg_hba.conf``, ``server.log`` — are scanned all the same: before the tool deletes
  any file, a hook in its process (``keep_deleted/sitecustomize.py``, on ``PYTHONPATH``) keeps a hard link
  to it. Every file the trace saw written that no longer exists must have been kept so, or renamed or
  removed by the throwaway server's own programs in its directory (``postmaster.pid``, a relation map's
  temporary name, …).

Commands: check and check --json (they probe the drill's server), backup --format custom (pg_restore
verifies it), backup, drill of the custom backup (pg_restore into the throwaway server), rehearse of the
plain one (psql, then the migration, rollback and restore on the copy), run --yes (backup, drill,
rehearsal, migration), rollback, rollback --yes, rollback --restore (psql), rollback --yes
--no-table-backup, a failing restore, sql, log, log --json; then the wizard through every screen
(Pilot), the same way: its children, the Backup screen's drill and rehearsal servers included, through
the same wrappers (no strace: it runs in the test's process), and the files it leaves scanned.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

import exec_trace
from cli.cli_support import COMMAND, CliResult, assert_clean, assert_explained
from fault_support import CANARY, cli_env, table_state, waiting_on_lock
from recorders import SHELL, Call, Recorders

CRON = "Cron-secret-canary-5e1f-DO-NOT-LEAK"
R2_ID = "R2-key-id-canary-2b7c-DO-NOT-LEAK"
R2_SECRET = "R2-secret-canary-9d04-DO-NOT-LEAK"
# It watches the system's /tmp (SharedPlaces): never beside the tests that write there on purpose (xdist).
pytestmark = pytest.mark.xdist_group("system-tmp")
OPTIONAL = {"CRON_SECRET": CRON, "CLOUDFLARE_ACCESS_KEY_ID": R2_ID, "CLOUDFLARE_SECRET_ACCESS_KEY": R2_SECRET}
SECRETS = (CANARY.encode(), quote(CANARY, safe="").encode(), CRON.encode(), R2_ID.encode(), R2_SECRET.encode())
# What runs as the server's OS user when the tool runs as root (all but the checklist's `postgres --version`).
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres", "locale")
DRILLED = {"pg_config", "postgres --version", "initdb", "postgres --boot", "postgres --single", "locale",
           "pg_ctl start", "postmaster", "psql drill", "pg_ctl stop"}  # what a drill of a plain backup runs
SECRET_VARS = (b"PGPASSWORD", b"DATABASE_URL", b"CRON_SECRET", b"CLOUDFLARE_ACCESS_KEY_ID",
               b"CLOUDFLARE_SECRET_ACCESS_KEY", b"MIGRATE_AUDIT_LOG")


def hits(blob: bytes) -> list[bytes]:
    return [s for s in SECRETS if s in blob]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()] if root.exists() else []


KEEP_HOOK = Path(__file__).resolve().parent / "keep_deleted"  # its sitecustomize.py keeps what the tool deletes
_OF_A_PROCESS = re.compile(r"^migrate-tui-(?:drill|rehearsal|pass)-(\d+)-")


class SharedPlaces:
    """What appears, while the sweep runs, where the tool could leave files outside its private places: the
    system temp directory's ``migrate-tui-*`` entries and ``/dev/shm`` (not the servers' own: the test
    servers' data directories, made before, and PostgreSQL's ``PostgreSQL.*`` memory segments). Other test
    runs on the machine make such entries too: a ``migrate-tui-pg-*`` server directory (the suite's and the
    demo's; a drill's is ``migrate-tui-drill-<pid>-*``) and an entry naming another process's pid are theirs."""

    def __init__(self) -> None:
        self.before = self._entries()

    @staticmethod
    def _entries() -> set[Path]:
        return set(Path("/tmp").glob("migrate-tui-*")) | {
            p for p in Path("/dev/shm").iterdir() if not p.name.startswith("PostgreSQL.")}

    def new_files(self, pids: set[int]) -> list[Path]:
        found: list[Path] = []
        for entry in self._entries() - self.before:
            owner = _OF_A_PROCESS.match(entry.name)
            if entry.name.startswith("migrate-tui-pg-") or (owner and int(owner.group(1)) not in pids):
                continue
            found += [entry] if entry.is_file() else files_under(entry)
        return found


def check_call(call: Call, what: str) -> None:
    """A recorded child: no secret, no secret-bearing variable; a connecting one reads the password from
    an inherited memory file and is told never to ask for one; as root, a throwaway server's programs run
    as its unprivileged OS user."""
    for name in SECRET_VARS:
        assert name not in call.environ, f"{what}: {call.program} got {name.decode()}"
    assert not hits(call.raw_environ), f"{what}: a secret in the environment of {call.program}"
    assert not hits(b"\0".join(call.argv)), f"{what}: a secret in the argv of {call.program}"
    if call.connects:
        assert re.fullmatch(rb"/dev/fd/\d+", call.environ.get(b"PGPASSFILE", b"")), (call.argv, call.environ)
        assert b"--no-password" in call.argv, call.argv
    else:
        assert b"PGPASSFILE" not in call.environ, call.argv
    if os.geteuid() == 0 and call.program in SERVER_PROGRAMS and b"--version" not in call.argv:
        assert call.uid != 0, f"{what}: the throwaway server's {call.program} ran as root: {call.argv}"


def kinds(calls: list[Call]) -> set[str]:
    """What the children did: 'pg_dump --version', 'pg_dump custom', 'pg_dump table', 'psql restore',
    'psql drill', 'pg_restore drill', 'initdb', 'pg_ctl start', 'postgres --boot', 'postmaster', ..."""
    found = set()
    for call in calls:
        argv = b" ".join(call.argv)
        if b"--version" in call.argv or (call.program == "postgres" and call.argv[1:] == [b"-V"]):
            found.add(f"{call.program} --version")
        elif call.program == "pg_dump":
            found.add("pg_dump table" if b"--table=" in argv else
                      "pg_dump custom" if b"--format=custom" in argv else "pg_dump plain")
        elif call.program == "psql":
            reads_stdin = b"-f -" in argv  # the drill's psql: the verified dump on its standard input
            found.add("psql drill" if reads_stdin else "psql restore" if b"--single-transaction" in call.argv
                      else "psql")
        elif call.program == "pg_restore":
            found.add("pg_restore drill" if call.connects else "pg_restore")
        elif call.program == "pg_ctl":
            found.add(f"pg_ctl {call.argv[-1].decode()}")
        elif call.program == "postgres":
            modes = [a.decode() for a in call.argv if a in (b"--boot", b"--single", b"--check")]
            found.add(f"postgres {modes[0]}" if modes else "postmaster")
        else:
            found.add(call.program)
    return found


class Sweep:
    """The headless commands of one sweep: private HOME and TMPDIR, backups elsewhere, the audit log in a
    directory of its own, the wrappers first; each command under strace."""

    def __init__(self, db, root: Path) -> None:
        self.root = root
        self.work, self.home, self.tmp = root / "work", root / "home", root / "tmp"
        self.elsewhere, self.logs, self.traces = root / "elsewhere" / "backups", root / "logs", root / "traces"
        for directory in (self.work, self.home, self.tmp, self.logs, self.traces):
            directory.mkdir(mode=0o700, parents=True)
        self.recorders = Recorders(root / "wrappers", db.server.bin_dir, server=True)
        self.deleted = root / "deleted"  # what the tool deletes, kept (hard links) by keep_deleted/sitecustomize.py
        self.deleted.mkdir(mode=0o700)
        self.audit = self.logs / "audit.log"
        self.env = cli_env(db.url, MIGRATE_AUDIT_LOG=str(self.audit), HOME=str(self.home), TMPDIR=str(self.tmp),
                           SWEEP_KEEP_DELETED=str(self.deleted), **OPTIONAL)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(KEEP_HOOK), self.env.get("PYTHONPATH")]))
        self.env.update(self.recorders.env(self.env.get("PATH", "/usr/bin:/bin")))
        self.outputs: dict[str, str] = {}
        self.traces_seen: list[exec_trace.Trace] = []

    def run(self, *args: str, expect: int = 0) -> CliResult:
        name = " ".join(args)
        out = self.traces / f"{len(self.outputs):02d}.trace"
        proc = subprocess.run(exec_trace.command(out, [*COMMAND, *args]), cwd=self.work, env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
        if result.returncode != expect:  # the whole output (an assertion's message would be cut in the middle)
            pytest.fail(f"migrate-tui {name} exited {result.returncode}, not {expect}:\n{result.output}")
        assert_clean(result, (CRON, R2_ID, R2_SECRET, quote(CANARY, safe="")))
        if result.returncode:
            assert_explained(result)
        self.outputs[name] = result.output
        trace = exec_trace.parse(out)
        assert trace.execs and trace.execs[0].name == Path(COMMAND[0]).name, f"{name}: the trace is empty"
        self.traces_seen.append(trace)
        return result

    def check_children(self) -> set[str]:
        """Every process any command started was a wrapper, then the real program (or the shell the real
        initdb, pg_ctl or postgres start, which runs wrappers only); none got a secret. Returns what the recorded
        children did."""
        shell_users = self.recorders.shell_users()
        wrapper_execs = 0
        for trace in self.traces_seen:
            per_pid: dict[int, list[exec_trace.Exec]] = {}
            for execd in trace.children():
                per_pid.setdefault(execd.pid, []).append(execd)
            for pid, execs in per_pid.items():
                paths = [e.path.decode(errors="replace") for e in execs]
                assert pid != trace.command_pid, f"the command re-executed itself: {paths}"
                for execd in execs:
                    blob = b"\0".join(execd.argv + execd.environ)
                    assert not hits(blob), f"a secret in the argv or environment of {execd.name} ({paths})"
                if paths[0] == SHELL:
                    starter = trace.starter(pid)
                    assert starter is not None and starter.decode() in shell_users, \
                        f"a shell the wrappers did not catch, started by {starter}: {paths}"
                    paths = paths[1:]  # pg_ctl's "exec postgres"; what it forks is a process of its own
                    if not paths:
                        continue
                assert paths[0] in self.recorders.real, f"a child the sweep's wrappers did not catch: {paths}"
                assert paths[1:] in ([], [self.recorders.real[paths[0]]]), f"a wrapper ran something else: {paths}"
                wrapper_execs += 1
        calls = self.recorders.calls()
        assert len(calls) == wrapper_execs, "every wrapper that ran left its record"
        for call in calls:
            check_call(call, "headless")
        return kinds(calls)

    def servers(self) -> dict[str, set[str]]:
        """The throwaway servers' directories, with every file the trace saw written under each."""
        found: dict[str, set[str]] = {}
        for path in self.written():
            match = re.match(r"^(/.*/migrate-tui-(?:drill|pg)-[^/]+)/", path)
            if match and not path.startswith(f"{self.deleted}/"):
                found.setdefault(match.group(1), set()).add(path)
        return found

    def written(self) -> set[str]:
        return set().union(*(t.written for t in self.traces_seen))

    def pids(self) -> set[int]:
        return {pid for t in self.traces_seen for pid in [*t.parents, *t.parents.values()]}

    def kept(self) -> dict[str, list[Path]]:
        """Every file the tool deleted (its path: the hard links kept when it was deleted)."""
        failed = [p.read_text() for p in self.deleted.glob("failed.*")]
        assert not failed, f"files deleted without being kept: {failed}"
        found: dict[str, list[Path]] = {}
        for path in files_under(self.deleted):
            found.setdefault("/" + str(path.relative_to(self.deleted)).split("/", 1)[1], []).append(path)
        return found

    def vanished(self, kept: dict[str, list[Path]]) -> dict[str, str]:
        """Every file the trace saw written that no longer exists and was not kept: what became of it (renamed
        away, or removed by which program)."""
        found = {}
        for trace in self.traces_seen:
            for path in trace.written:
                if os.path.lexists(path) or path in kept or path.startswith(("/proc/", "/dev/")):
                    continue
                if path in trace.moved:
                    found[path] = "renamed"
                elif path in trace.removed:
                    program = trace.program(trace.removed[path])
                    found[path] = f"removed by {program.decode(errors='replace') if program else '?'}"
                else:
                    found.setdefault(path, "gone without a trace")
        return found


@pytest.fixture
def shop(db18):
    with db18.app() as conn:  # owned by the application role, so its pg_dump may read it
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 500) g")
    return db18


@pytest.mark.timeout(300)
def test_headless_commands_never_show_a_secret(shop, tmp_path):
    if exec_trace.available() is None:
        pytest.skip("strace is not installed (tests/run.sh installs it as root)")
    db = shop
    shared = SharedPlaces()
    sweep = Sweep(db, tmp_path)
    # The drill's server comes from the wrappers (MIGRATE_DRILL_PG_BIN): the checklist probes it, and the drill,
    # the rehearsal and run --yes start it (runuser as root, initdb, pg_ctl, postgres).
    assert "into a throwaway PostgreSQL 18" in sweep.run("check").stdout
    assert json.loads(sweep.run("check", "--json").stdout)["passed"] is True
    custom = sweep.run("backup", "--format", "custom", "--backup-dir", str(sweep.elsewhere))
    assert "Verifying: pg_restore reads the whole archive" in custom.stdout
    plain = sweep.run("backup")
    backup_path = re.search(r"✓ Backup written and verified: (\S+)", plain.stdout).group(1)
    custom_path = re.search(r"✓ Backup written and verified: (\S+)", custom.stdout).group(1)
    assert "MIGRATE_DRILL_PG_BIN" in sweep.run("drill", custom_path).stdout
    sweep.run("rehearse", backup_path)
    done = sweep.run("run", "--yes").stdout
    assert "MIGRATE_DRILL_PG_BIN" in done and "Migration completed successfully!" in done
    with db.app() as conn:
        conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a.sql', 'k/a', 1)")
    sweep.run("rollback")
    copy = re.search(r"✓ Safety copy written and verified: (\S+)", sweep.run("rollback", "--yes").stdout).group(1)
    assert table_state(db) == "absent"
    sweep.run("rollback", "--restore", copy)
    assert table_state(db) == "valid" and db.scalar("SELECT count(*) FROM database_backups") == 1
    sweep.run("rollback", "--yes", "--no-table-backup")
    sweep.run("rollback", "--restore", str(sweep.work / "backups" / "gone.sql"), expect=1)
    sweep.run("sql")
    sweep.run("log")
    sweep.run("log", "--json")

    seen = sweep.check_children()
    assert {"pg_dump --version", "pg_dump plain", "pg_dump custom", "pg_dump table", "pg_restore",
            "psql --version", "psql restore", "pg_restore drill"} | DRILLED <= seen, seen
    assert ("runuser" in seen) == (os.geteuid() == 0), seen

    # Every file any process wrote is scanned: where it is, or (deleted by the tool) through the link kept when it
    # was deleted. The throwaway servers (drill, rehearse, run) are gone: their files were all kept so.
    written, kept = sweep.written(), sweep.kept()
    servers = sweep.servers()
    assert len(servers) == 3, sorted(servers)
    for root, files in servers.items():
        assert not [p for p in files if os.path.lexists(p)], f"the throwaway server {root} left files behind"
        for name in ("data/postgresql.conf", "data/pg_hba.conf", "data/PG_VERSION", "server.log"):
            assert f"{root}/{name}" in kept, f"{root}/{name} was not kept when the tool deleted it"
    server_programs = {real for wrapper, real in sweep.recorders.real.items()
                       if Path(wrapper).name in SERVER_PROGRAMS}
    for path, fate in sweep.vanished(kept).items():
        # What the server's programs removed or renamed themselves (postmaster.pid at shutdown, a relation map's
        # temporary name): in its directory, by it; nothing else may vanish unscanned.
        assert any(path.startswith(f"{root}/") for root in servers) and (
            fate == "renamed" or fate.removeprefix("removed by ") in server_programs), (path, fate)
    copy_path = str((sweep.work / copy).resolve()) if not copy.startswith("/") else copy
    for expected in (str(sweep.audit), copy_path):
        assert expected in written, f"the trace did not see {expected} written: {sorted(written)}"
    assert any(p.startswith(str(sweep.elsewhere)) and p.endswith(".dump") for p in written), sorted(written)
    places = [sweep.work, sweep.home, sweep.tmp, sweep.elsewhere, sweep.logs]
    scanned = {p for place in places for p in files_under(place)}
    scanned |= {Path(p) for p in written if os.path.isfile(p) and not p.startswith(("/proc/", "/dev/"))}
    scanned |= {Path(p) for p in written if p.startswith("/dev/shm/") and os.path.isfile(p)}
    scanned |= set(shared.new_files(sweep.pids()))
    scanned |= {link for links in kept.values() for link in links}
    assert any("/migrate-tui-rehearsal-" in p for p in kept), "the rehearsals' safety copies were kept and scanned"
    assert Path(sweep.audit) in scanned and len([p for p in scanned if p.suffix == ".dump" and
                                                 not p.is_relative_to(sweep.deleted)]) == 1
    for path in scanned:
        assert not hits(path.read_bytes()), f"a secret in {path}"
    for path in files_under(sweep.work / "backups") + files_under(sweep.elsewhere) + [sweep.audit]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"
    for name, text in sweep.outputs.items():
        assert not hits(text.encode()), f"a secret in the output of {name}"


# -- the wizard ------------------------------------------------------------------------------------

async def _settle(app, pilot) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def _until(pilot, condition, what: str, tries: int = 1200) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Shots:
    """SVG screenshots of every screen the wizard showed, kept on disk and searched for the secrets."""

    def __init__(self, app, directory: Path) -> None:
        self.app = app
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.screens: dict[str, str] = {}

    def take(self, name: str) -> None:
        svg = self.app.export_screenshot()
        (self.directory / f"{name}.svg").write_text(svg, encoding="utf-8")
        self.screens[name] = type(self.app.screen).__name__
        assert not hits(svg.encode()), f"a secret on the {name} screen"


@pytest.mark.timeout(240)
async def test_wizard_screens_never_show_a_secret(shop, tmp_path, monkeypatch):
    from migration.errors import explain
    from migration.settings import load_settings
    from tui.app import MigrateApp
    from tui.dialogs.error import ErrorDialog
    from tui.target_source import SettingsSource

    db = shop
    shared = SharedPlaces()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the wizard writes ./backups
    recorders = Recorders(tmp_path / "wrappers", db.server.bin_dir, server=True)
    for key, value in recorders.env(os.environ.get("PATH", "/usr/bin:/bin")).items():
        monkeypatch.setenv(key, value)  # the wizard runs in this process: its children (the drill's) are found there
    settings = load_settings(database_url=db.url, environ=dict(OPTIONAL))
    audit = tmp_path / "logs" / "audit-wizard.log"
    audit.parent.mkdir(mode=0o700)
    app = MigrateApp(settings=settings, preflight=True, audit_log=audit)
    shots = Shots(app, tmp_path / "screenshots")
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        await _until(pilot, lambda: app.target_screen.overview is not None, "the target overview")
        shots.take("target")
        await pilot.press("f1")
        await pilot.pause()
        shots.take("help")
        await pilot.press("escape")
        app.action_show_sql()
        await _settle(app, pilot)
        shots.take("sql")
        await pilot.press("escape")
        await pilot.pause()

        await pilot.press("m")  # Checklist -> Backup -> Migrate
        await _settle(app, pilot)
        shots.take("checklist")
        await pilot.press("a")
        await pilot.pause()
        with db.admin() as holder:  # pg_dump waits on this lock while the running backup screen is taken
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            await pilot.press("enter")  # Continue (c copies, where there is something to copy)
            await _until(pilot, lambda: waiting_on_lock(db, "migrate-tui-backup-%"), "pg_dump to wait")
            await pilot.pause(0.3)
            shots.take("backup-running")
            await pilot.press("k")  # skip? -> the confirmation dialog (answered no)
            await pilot.pause()
            shots.take("confirm-skip-backup")
            await pilot.press("n")
            await pilot.pause()
            holder.execute("ROLLBACK")
        await _settle(app, pilot)
        shots.take("backup-done")
        await pilot.press("enter")
        await _settle(app, pilot)
        shots.take("migrate")
        await pilot.press("enter")
        await _settle(app, pilot)
        shots.take("result")
        assert table_state(db) == "valid"
        await pilot.press("p")  # Post-migration: verify, CRON_SECRET into ./.env (its value never shown)
        await _settle(app, pilot)
        await _until(pilot, lambda: getattr(app.screen, "secret", None) is not None, "the .env read")
        shots.take("post-migration")
        await pilot.press("g")
        await pilot.pause()
        await pilot.press("y")
        await _until(pilot, lambda: (app.screen.secret or (False,))[0], "CRON_SECRET written")
        await _settle(app, pilot)
        shots.take("post-migration-secret")
        written = (work / ".env").read_text().strip().partition("=")[2]
        assert len(written) == 64 and written not in app.export_screenshot()
        await pilot.press("escape")
        await _settle(app, pilot)

        await pilot.press("d")  # Rollback: preview, typed confirmation, safety copy, drop
        await _settle(app, pilot)
        shots.take("rollback-preview")
        await pilot.press("d")
        await pilot.pause()
        shots.take("confirm-drop")
        await pilot.press(*"database_backups", "enter")
        await _settle(app, pilot)
        shots.take("rollback-done")
        assert table_state(db) == "absent"
        await pilot.press("u")  # undo: restore the safety copy (psql, with the passfile)
        await pilot.pause()
        shots.take("confirm-restore")
        await pilot.press("y")
        await _settle(app, pilot)
        shots.take("restored")
        assert table_state(db) == "valid"
        await pilot.press("l")
        await _settle(app, pilot)
        shots.take("audit-log")

        # An unexpected failure whose text carries the URL: the error dialog redacts it.
        leak = RuntimeError(f"could not use {db.url}")
        app.push_screen(ErrorDialog("Something went wrong in the background",
                                    explain(leak, secrets=settings.secrets())))
        await pilot.pause()
        shots.take("error-dialog")
        await pilot.press("escape")
        app.action_quit()

    # A configuration error (the URL carries the password) and a server that refuses the connection.
    bad = f"postgresql://app_user:{CANARY}@127.0.0.1:1/shop?schema=oops"
    config_app = MigrateApp(SettingsSource(lambda database_url=None: load_settings(database_url=bad, environ={})))
    config_shots = Shots(config_app, tmp_path / "screenshots")
    async with config_app.run_test(size=(100, 30)) as pilot:
        await _settle(config_app, pilot)
        config_shots.take("config-error")
    refused = load_settings(database_url=f"postgresql://app_user:{CANARY}@127.0.0.1:1/shop", environ={})
    down_app = MigrateApp(settings=refused)
    down_shots = Shots(down_app, tmp_path / "screenshots")
    async with down_app.run_test(size=(100, 30)) as pilot:
        await _settle(down_app, pilot)
        down_shots.take("target-connection-failed")

    calls = recorders.calls()
    for call in calls:
        check_call(call, "wizard")
    # The Backup screen's drill and rehearsal ran their throwaway server from the wrappers (MIGRATE_DRILL_PG_BIN).
    assert {"pg_dump --version", "pg_dump plain", "pg_dump table", "psql restore"} | DRILLED <= kinds(calls), \
        kinds(calls)
    visited = set(shots.screens.values()) | set(config_shots.screens.values())
    for screen in ("TargetScreen", "HelpScreen", "SqlScreen", "ChecklistScreen", "BackupScreen", "ConfirmDialog",
                   "MigrateScreen", "ResultScreen", "RollbackScreen", "ConfirmDropDialog", "AuditLogScreen",
                   "ErrorDialog", "ConfigErrorScreen", "PostMigrationScreen"):
        assert screen in visited, f"the sweep never showed {screen}: {shots.screens}"
    written = files_under(work) + files_under(audit.parent) + shared.new_files({os.getpid()})
    assert audit in written and any(p.name.endswith(".manifest.json") for p in written)
    for path in written:
        assert not hits(path.read_bytes()), f"a secret in {path}"


def test_committed_snapshots_hold_no_secret():
    """The wizard's stored snapshot SVGs (pytest-textual-snapshot) never contain the canary."""
    tests_dir = Path(__file__).resolve().parents[1]
    snapshots = [p for p in tests_dir.rglob("*") if p.is_file() and "__snapshots__" in p.parts]
    for path in snapshots:
        assert not hits(path.read_bytes()), f"a secret in {path.relative_to(tests_dir)}"
