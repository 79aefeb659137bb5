"""``add_cron_secret``: the guide's "Add Environment Variables" on real .env files (comments, CRLF, export lines,
an existing secret): every other byte kept, atomic, 0600, never overwriting without the operator's choice."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from migration.cron_secret import CronSecretExists, add_cron_secret, env_path, existing_secret
from migration.env_file import read_env_file
from migration.errors import MigrateError

ENV = ("# Production settings\n"
       "DATABASE_URL=postgresql://app:pw@db:5432/shop\n"
       "\n"
       "# R2 storage\n"
       "export CLOUDFLARE_ACCESS_KEY_ID='key id'\n"
       'NOTE="a # hash, and a \\"quote\\""\n')


def secret_of(path) -> str:
    return read_env_file(path)["CRON_SECRET"]


def test_appended_to_a_file_with_comments_keeps_every_byte(tmp_path):
    env = tmp_path / ".env"
    env.write_text(ENV)
    env.chmod(0o644)
    inode = env.stat().st_ino
    result = add_cron_secret(env)
    data = env.read_bytes()
    assert data.startswith(ENV.encode()) and data.count(b"\n") == ENV.count("\n") + 1
    value = secret_of(env)
    assert data == ENV.encode() + f"CRON_SECRET={value}\n".encode()
    assert len(value) == 64 and int(value, 16) >= 0  # 32 random bytes, hex
    assert result.created is False and result.replaced is False and result.line == 7
    assert result.length == 64 and result.tail == value[-4:] and value not in repr(result)
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert env.stat().st_ino != inode  # a new file renamed over the old one (atomic)
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no temporary left


def test_crlf_and_a_missing_final_newline(tmp_path):
    env = tmp_path / ".env"
    env.write_bytes(b"# windows\r\nDATABASE_URL=postgresql://a@b/c\r\nexport X=1")
    add_cron_secret(env)
    value = secret_of(env)
    assert env.read_bytes() == (b"# windows\r\nDATABASE_URL=postgresql://a@b/c\r\nexport X=1\r\n"
                                + f"CRON_SECRET={value}\r\n".encode())


def test_an_existing_secret_is_kept_unless_the_operator_chooses_to_replace_it(tmp_path):
    env = tmp_path / ".env"
    original = "A=1\r\nexport CRON_SECRET = 'old-secret-value' # set by ops\r\nB=2\r\n"
    env.write_bytes(original.encode())
    with pytest.raises(CronSecretExists) as refused:
        add_cron_secret(env)
    assert "already sets CRON_SECRET (line 2)" in refused.value.error.message
    assert "--force" in refused.value.error.hint and "old-secret-value" not in str(refused.value.error)
    assert env.read_bytes() == original.encode()
    assert existing_secret(env) == (True, 2)

    result = add_cron_secret(env, replace=True)
    value = secret_of(env)
    assert result.replaced and result.line == 2
    assert env.read_bytes() == f"A=1\r\nexport CRON_SECRET = {value} # set by ops\r\nB=2\r\n".encode()


def test_an_empty_secret_is_filled_in_place(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# x\nCRON_SECRET=\nY=2\n")
    result = add_cron_secret(env)
    assert not result.replaced and result.line == 2
    assert env.read_text() == f"# x\nCRON_SECRET={secret_of(env)}\nY=2\n"


def test_a_missing_file_is_created_0600(tmp_path):
    env = tmp_path / "app.env"
    result = add_cron_secret(env)
    assert result.created and env.read_text() == f"CRON_SECRET={secret_of(env)}\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert existing_secret(env) == (True, 1)
    assert existing_secret(tmp_path / "none.env") == (False, 0)


def test_twice_set_is_refused(tmp_path):
    env = tmp_path / ".env"
    env.write_text("CRON_SECRET=a\nCRON_SECRET=b\n")
    with pytest.raises(MigrateError, match="more than once"):
        add_cron_secret(env, replace=True)
    assert env.read_text() == "CRON_SECRET=a\nCRON_SECRET=b\n"


def test_links_other_writable_files_and_unsafe_directories_are_refused(tmp_path):
    real = tmp_path / "real.env"
    real.write_text("A=1\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    with pytest.raises(MigrateError, match="symbolic link"):
        add_cron_secret(link)
    assert real.read_text() == "A=1\n" and link.is_symlink()

    real.chmod(0o666)
    with pytest.raises(MigrateError, match="can be changed by other users"):
        add_cron_secret(real)
    if os.geteuid() == 0:  # another user's file (the suite runs as root in CI)
        real.chmod(0o600)
        os.chown(real, 65534, 65534)
        with pytest.raises(MigrateError, match="belongs to another user"):
            add_cron_secret(real)
        assert real.read_text() == "A=1\n"

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(MigrateError, match="can be written by other users"):
        add_cron_secret(shared / ".env")
    assert list(shared.iterdir()) == []


def test_which_file(tmp_path):
    assert env_path(None, None) == Path(".env")
    assert env_path(tmp_path / "x.env", tmp_path / ".env") == tmp_path / "x.env"
    assert env_path(None, tmp_path / ".env") == tmp_path / ".env"
