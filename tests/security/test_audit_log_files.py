"""The audit log in a shared directory (issue finding 4): another user plants a link, a FIFO or a file
of their own at its name. Nothing is written through any of them, nothing of the victim changes (not even
its mode), and every command stops with exit 78 before it does anything.
"""

from __future__ import annotations

import errno
import os
import stat
import threading

import pytest
from cli.cli_support import run_cli
from files_support import (
    as_attacker,
    attacker_ids,
    attacker_symlink,
    attacker_write,
    env_for,
    listing,
    migrate,
    shared_place,  # noqa: F401 - the fixture 'shared'
)

from migration import exit_codes

pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("system-tmp")]  # the CLI runs without TMPDIR: /tmp

COMMANDS = [("check",), ("backup",), ("run", "--yes"), ("rollback", "--yes"),
            ("rollback", "--restore", "backups/x.sql")]


def shared_env(url: str, **extra: str) -> dict[str, str]:
    env = env_for(url, "unused")
    env.pop("MIGRATE_AUDIT_LOG")  # the default ./migrate-tui.log, in the shared directory
    env.update(extra)
    return env


def link_refusal(link) -> str:
    """What the tool can say about a link at the log's name: some kernels refuse an O_CREAT open through
    another user's link in a sticky directory with EACCES before O_NOFOLLOW's ELOOP (this VM does, with
    fs.protected_* at 0); the tool then reports the system's words. Either way nothing is opened."""
    try:
        os.close(os.open(link, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    except PermissionError:
        return "Permission denied."
    except OSError as exc:
        assert exc.errno == errno.ELOOP, exc
        return "it is a symbolic link."
    raise AssertionError(f"{link} could be opened for writing")


def test_a_planted_link_stops_every_command_and_the_victim_keeps_its_bytes_and_mode(db18, shared, tmp_path):
    migrate(db18.url, tmp_path, tmp_path / "audit.log")  # so that a rollback would have something to drop
    cwd = shared.backups  # 1777, root's: anyone may create names in it
    attacker_symlink(shared.victim.path, cwd / "migrate-tui.log")
    reason = link_refusal(cwd / "migrate-tui.log")
    env = shared_env(db18.url)
    for command in COMMANDS:
        result = run_cli(*command, cwd=cwd, env=env)
        assert result.returncode == exit_codes.CONFIG, (command, result.output)
        assert f"Error: The audit log migrate-tui.log cannot be written: {reason}" in result.stderr, \
            (command, result.output)
        shared.victim.assert_untouched()
    assert db18.table_exists()  # the rollback did not run
    assert sorted(listing(cwd)) == ["migrate-tui.log"]  # no backup, no safety copy either

    # $MIGRATE_AUDIT_LOG names the same link; --audit-log a link in the attacker's own directory; a link
    # to /dev/null (only the literal path /dev/null means "no log").
    result = run_cli("check", cwd=cwd, env=shared_env(db18.url, MIGRATE_AUDIT_LOG="migrate-tui.log"))
    assert result.returncode == exit_codes.CONFIG, result.output
    assert f"Error: The audit log migrate-tui.log cannot be written: {reason}" in result.stderr
    theirs = shared.attacker_dir / "log"
    attacker_symlink(shared.victim.path, theirs)
    result = run_cli("check", "--audit-log", str(theirs), cwd=cwd, env=env)
    assert result.returncode == exit_codes.CONFIG, result.output
    assert (f"Error: The audit log {theirs} cannot be written: The audit log directory {shared.attacker_dir} "
            "belongs to nobody; nothing is written there.") in result.stderr, result.output
    os.unlink(cwd / "migrate-tui.log")
    attacker_symlink("/dev/null", cwd / "migrate-tui.log")
    result = run_cli("check", cwd=cwd, env=env)
    assert result.returncode == exit_codes.CONFIG, result.output
    assert f"cannot be written: {link_refusal(cwd / 'migrate-tui.log')}" in result.stderr

    # A link the kernel lets through to O_NOFOLLOW (the directory's owner made it): the tool's own words.
    os.unlink(cwd / "migrate-tui.log")
    os.symlink(shared.victim.path, cwd / "migrate-tui.log")
    for command in COMMANDS[:2]:
        result = run_cli(*command, cwd=cwd, env=env)
        assert result.returncode == exit_codes.CONFIG, result.output
        assert "Error: The audit log migrate-tui.log cannot be written: it is a symbolic link." in result.stderr
    shared.victim.assert_untouched()


def test_a_fifo_gets_nothing_and_never_blocks_the_command(db18, shared):
    cwd = shared.backups
    fifo = cwd / "migrate-tui.log"
    env = shared_env(db18.url)

    def mkfifo(path: str) -> None:
        os.mkfifo(path, 0o666)

    as_attacker(mkfifo, str(fifo))
    # Without a reader (an open for writing would block, or fail with ENXIO).
    result = run_cli("backup", cwd=cwd, env=env, timeout=30)
    assert result.returncode == exit_codes.CONFIG, result.output
    assert "Error: The audit log migrate-tui.log cannot be written:" in result.stderr

    # With the attacker reading it: the open succeeds, and the tool sees it is no regular file.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    received = bytearray()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            try:
                received.extend(os.read(reader, 65536))
            except BlockingIOError:
                pass
            stop.wait(0.01)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        for command in (("check",), ("backup",)):
            result = run_cli(*command, cwd=cwd, env=env, timeout=30)
            assert result.returncode == exit_codes.CONFIG, result.output
            assert "Error: The audit log migrate-tui.log cannot be written: it is not a regular file." \
                in result.stderr, result.output
    finally:
        stop.set()
        thread.join(5)
        os.close(reader)
    assert bytes(received) == b""
    assert sorted(listing(cwd)) == ["migrate-tui.log"]


def test_a_device_is_not_an_audit_log(db18, shared):
    env = shared_env(db18.url)
    result = run_cli("backup", "--audit-log", "/dev/zero", cwd=shared.backups, env=env)
    assert result.returncode == exit_codes.CONFIG, result.output
    assert "Error: The audit log /dev/zero cannot be written: it is not a regular file." in result.stderr
    assert stat.S_IMODE(os.stat("/dev/zero").st_mode) == 0o666
    assert listing(shared.backups) == {}

    result = run_cli("check", "--audit-log", "/dev/null", cwd=shared.backups, env=env)  # "no log": allowed
    assert result.returncode == exit_codes.OK, result.output


def test_a_file_of_another_user_is_neither_written_nor_chmodded(db18, shared):
    log = shared.backups / "migrate-tui.log"
    attacker_write(log, b"", mode=0o666)
    result = run_cli("check", cwd=shared.backups, env=shared_env(db18.url))
    assert result.returncode == exit_codes.CONFIG, result.output
    assert "Error: The audit log migrate-tui.log cannot be written: it belongs to another user." in result.stderr
    st = os.lstat(log)
    assert (st.st_size, st.st_uid, stat.S_IMODE(st.st_mode)) == (0, attacker_ids()[0], 0o666)


def test_a_log_directory_others_can_write_is_refused(db18, shared):
    open_dir = shared.base / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    result = run_cli("check", "--audit-log", str(open_dir / "audit.log"), cwd=shared.base, env=shared_env(db18.url))
    assert result.returncode == exit_codes.CONFIG, result.output
    assert (f"The audit log {open_dir}/audit.log cannot be written: The audit log directory {open_dir} can be "
            "written by other users (mode 0777, owner root)") in result.stderr, result.output
    assert listing(open_dir) == {}


def test_log_command_does_not_read_through_a_link(shared):
    attacker_symlink(shared.victim.path, shared.backups / "migrate-tui.log")
    result = run_cli("log", cwd=shared.backups, env=shared_env("postgresql://u@127.0.0.1/db"))
    assert result.returncode == exit_codes.CONFIG, result.output
    assert "The audit log migrate-tui.log cannot be read: it is a symbolic link." in result.stderr
    assert "precious" not in result.output


def test_a_hard_link_to_a_root_file_is_not_appended_to(db18, shared):
    """Where fs.protected_hardlinks is 0 (the kernel's own default) any user can hard-link a root-owned file
    into a shared directory; on this machine it is 1, so the test makes the link in the attacker's place
    (a hard link has no owner of its own: the result is the same)."""
    victim = shared.victim
    os.chmod(victim.path, 0o640)
    log = shared.backups / "migrate-tui.log"
    if open("/proc/sys/fs/protected_hardlinks").read().strip() == "0":
        as_attacker(os.link, str(victim.path), str(log))
    else:
        os.link(victim.path, log)
    victim.before = victim.state()  # with its second name
    result = run_cli("check", cwd=shared.backups, env=shared_env(db18.url))
    victim.assert_untouched()
    assert result.returncode == exit_codes.CONFIG, result.output
