"""Files and directories that drready creates for its own state: private from the start (S1:
JC-STAR ★1 "protect stored data"; issue 12 item 7).

A database or log created through a library (SQLite, ``logging``) gets the process's umask,
typically 0644: readable by every local user. :func:`create_private_file` creates the file
first, 0600, with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (no race with another creator, no
following a planted symlink), so the library opens a file that is private already; SQLite
creates its ``-wal`` and ``-shm`` files with the database file's mode
(https://www.sqlite.org/tempfiles.html: "the same permissions as the original database").
:func:`make_private_dirs` creates missing directories 0700. An existing file or directory is
left as it is (the operator may have chosen its mode), with a warning when others can read it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "create_private_file", "make_private_dirs"]

FILE_MODE = 0o600
DIR_MODE = 0o700
_log = logging.getLogger("drready.security")


def _warn_if_open(path: Path) -> None:
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            _log.warning("%s has mode %04o: other users may read it (chmod go-rwx)", path, mode)


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (existing ones are kept)."""
    missing: list[Path] = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)  # the umask may have narrowed it; make it exact


def create_private_file(path: Path) -> bool:
    """Create the empty file ``path`` with mode 0600 unless it exists (then warn if others may
    read it); missing directories are made 0700. Whether it was created."""
    make_private_dirs(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileExistsError:
        _warn_if_open(path)
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True
