"""Writing files safely: atomic writes (temp file, then rename), the cleaning of temp files
their writers left when killed, and the check that an output path can be written.

A low-level module: data, embeddings, results and reports all write through it, so it
imports nothing from ``bench`` but ``bench.errors``."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.errors import ConfigError

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[^.]+\.tmp$")
_OLD_TMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # mkstemp's name without host and pid
_FOREIGN_TMP_AGE_S = 24 * 3600  # a temp file of another host (or an unknown writer) this old


def atomic_write(path: Path, write: Callable[[Path], object], *, overwrite: bool = True) -> None:
    """Call ``write(tmp)`` on a temp file in ``path``'s folder, then rename it to ``path``.

    With ``overwrite=False`` an existing ``path`` raises ``FileExistsError`` (checked
    atomically with a hard link, so a concurrent writer cannot be clobbered). On any error
    the temp file is removed and ``path`` is untouched. The temp file's name carries this
    host and process id (``.NAME.HOST-PID.XXXXXXXX.tmp``), so that one left by a killed
    process can be told from a live writer's (``clean_stale_temps``).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path exists
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove the temp files that ``atomic_write`` left in ``folder`` when its process died
    (killed between writing and renaming). A temp file is removed only when its writer ran
    on this host and that process no longer exists, or (another host's, or one named
    without a writer) when it is untouched for 24 hours; a live writer's file and files not
    named like ours are never touched.
    Returns the files removed; errors (a file already gone, no permission) are ignored."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for e in entries:
        if not (e.name.startswith(".") and e.name.endswith(".tmp")) or not e.is_file():
            continue
        m = _TMP.match(e.name)
        try:
            if m is not None and m["host"] == _HOST:
                stale = not _alive(int(m["pid"]))
            elif m is not None or _OLD_TMP.match(e.name):
                stale = now - e.stat().st_mtime > _FOREIGN_TMP_AGE_S
            else:
                continue  # not named like ours: someone else's file
            if stale:
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue
    return removed


def check_output_file(path: Path, option: str = "--out") -> None:
    """Raise ``ConfigError`` (one line, naming ``option``) unless ``path`` can be written:
    its folder exists, is a folder and is writable, and ``path`` is not a folder."""
    path = Path(path)
    parent = path.parent
    bad = None
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                bad = f"{p} is a file, not a folder"
            elif p != parent:
                bad = f"the folder {parent} does not exist"
            elif not os.access(parent, os.W_OK):
                bad = f"the folder {parent} is not writable"
            break
    if bad is None and path.is_dir():
        bad = "it is a folder"
    if bad is not None:
        raise ConfigError(f"{option} {path}: cannot write there ({bad}); expected a file path")
