"""File helpers shared by the security modules (S1): repository checks and private-file writes.

Keys, secret hashes and token keys must live outside the git work tree ("no secrets in the
repo"); :func:`git_work_tree` finds the enclosing work tree of a path, if any. Private files are
created with mode 0600 from the start (never written first and tightened later).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["git_work_tree", "write_private_file", "write_public_file"]


def git_work_tree(path: Path) -> Path | None:
    """Return the git work tree containing ``path`` (which need not exist yet), or ``None``."""
    here = path.expanduser().resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _write(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    if overwrite:
        path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it further; make it exact
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Create ``path`` with mode 0600; ``FileExistsError`` if it exists and not ``overwrite``."""
    _write(path, data, 0o600, overwrite=overwrite)


def write_public_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Create ``path`` with mode 0644; ``FileExistsError`` if it exists and not ``overwrite``."""
    _write(path, data, 0o644, overwrite=overwrite)
