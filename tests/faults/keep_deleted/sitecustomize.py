"""Put on PYTHONPATH by the secrets sweep, so it loads into the command's own process (and only there: the
tool gives its children an allowlisted environment, without PYTHONPATH): before the tool deletes a file, a
hard link to it is kept in ``$SWEEP_KEEP_DELETED/<n>/<its absolute path>``, so the sweep scans what every
file the tool removes — a throwaway server's whole directory after it stopped, a rehearsal's private safety
copy, a temporary name — held when it went.

An audit hook (:func:`sys.addaudithook`): ``os.remove`` is raised before every ``os.remove`` / ``os.unlink``
(``shutil.rmtree`` and ``Path.unlink`` included), with the path and its directory descriptor. A hard link
shares the file's content, so nothing is copied; the tool's deletion goes on as before.
"""

import itertools
import os
import stat
import sys

_KEEP = os.environ.get("SWEEP_KEEP_DELETED")
_COUNT = itertools.count()


def _keep(path, dir_fd) -> None:
    path = os.fsdecode(path)
    dir_fd = dir_fd if dir_fd is not None and dir_fd >= 0 else None  # the event gives -1 for "none"
    try:
        st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode):
        return
    where = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else os.getcwd()
    absolute = os.path.normpath(os.path.join(where, path))
    kept = os.path.join(_KEEP, str(next(_COUNT)), absolute.lstrip("/"))
    os.makedirs(os.path.dirname(kept), mode=0o700, exist_ok=True)
    os.link(path, kept, src_dir_fd=dir_fd, follow_symlinks=False)


def _hook(event, args) -> None:
    if event == "os.remove":
        try:
            _keep(args[0], args[1])
        except Exception as exc:  # noqa: BLE001 - a deletion the sweep could not keep fails it (it reads this file)
            with open(os.path.join(_KEEP, f"failed.{os.getpid()}"), "a") as handle:
                handle.write(f"{args[0]!r}: {exc!r}\n")


if _KEEP:
    sys.addaudithook(_hook)
