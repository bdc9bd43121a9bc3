"""The state directory of one run of ``drready demo`` or ``drready stack up``: where its keys,
credentials, databases and logs live — outside any git work tree, private (S1, issue 11 items 1
and 5).

A run writes two kinds of files. What may be shared (the HTML report, the settlement CSVs, the
summary) goes to the user's ``--out`` folder, which may well lie inside a clone of this
repository. Everything else — the local CA and its private keys, the VTN's client registry, the
token-signing key, the SQLite databases of the VTN and the servicer, the children's logs — goes
to a per-run directory under the user's state directory, following the XDG Base Directory
specification (https://specifications.freedesktop.org/basedir-spec/latest/: ``$XDG_STATE_HOME``
"for user-specific state files …  that should persist between (application) restarts", default
``~/.local/state``; a relative value is invalid and ignored):

    $XDG_STATE_HOME/drready/runs/<local time>-<kind>-<pid>/      (mode 0700)

If that cannot be used — no writable home, or the state home lies inside a git work tree (a
``HOME`` pointing into a checkout) — the run falls back to a fresh temporary directory
(:func:`tempfile.mkdtemp`, mode 0700) and says why. Directories are created 0700 and the files a
run creates 0600 (:mod:`drready.security.files`); the VTN and the servicer refuse credentials
inside a work tree, so a demo that put them next to its report could not start
(``drready vtn serve`` exited 2 on a fresh clone before this module existed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from drready.domain.time import DEFAULT_TZ, zone
from drready.security.files import DIR_MODE, create_private_file, make_private_dirs
from drready.security.paths import git_work_tree, write_private_file

__all__ = ["ENV_STATE_HOME", "RunDir", "new_run_dir", "state_home"]

#: The XDG variable naming the user's state directory.
ENV_STATE_HOME = "XDG_STATE_HOME"


def state_home(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """drready's folder in the user's state directory: ``$XDG_STATE_HOME/drready``, or
    ``~/.local/state/drready`` when the variable is unset, empty or relative (the XDG
    specification says to ignore a relative path).

    >>> state_home({"XDG_STATE_HOME": "/srv/state"}).as_posix()
    '/srv/state/drready'
    >>> state_home({"XDG_STATE_HOME": "rel/state"}, home=Path("/home/u")).as_posix()
    '/home/u/.local/state/drready'
    """
    env = os.environ if env is None else env
    xdg = env.get(ENV_STATE_HOME, "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "drready"
    return (home or Path.home()) / ".local" / "state" / "drready"


@dataclass(frozen=True)
class RunDir:
    """A run's private state directory (mode 0700).

    Attributes
    ----------
    path : Path
        The directory.
    fallback_reason : str or None
        Why the run is in a temporary directory instead of under :func:`state_home`, if it is.
    """

    path: Path
    fallback_reason: str | None = None

    def subdir(self, name: str) -> Path:
        """``path/name``, created 0700 if missing."""
        target = self.path / name
        make_private_dirs(target)
        return target

    def private_file(self, name: str) -> Path:
        """``path/name``: an empty file created 0600 if missing (for a database or log a
        library then opens), its missing directories 0700."""
        target = self.path / name
        create_private_file(target)
        return target

    def write_secret(self, name: str, data: bytes) -> Path:
        """Write ``data`` to ``path/name`` with mode 0600, replacing an older file."""
        target = self.path / name
        make_private_dirs(target.parent)
        write_private_file(target, data, overwrite=True)
        return target


def _stamp(now: datetime | None) -> str:
    """The run's name part from its start time (local time, no colons: valid on any file
    system)."""
    moment = now or datetime.now(zone(DEFAULT_TZ))
    return moment.strftime("%Y-%m-%dT%H-%M-%S")


def _fresh_dir(parent: Path, base: str) -> Path:
    """Create ``parent/base`` (or ``base-2``, ``base-3`` … if taken) with mode 0700."""
    make_private_dirs(parent)
    for k in range(1, 1000):
        candidate = parent / (base if k == 1 else f"{base}-{k}")
        try:
            candidate.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(candidate, DIR_MODE)  # the umask may have narrowed it; make it exact
        return candidate
    raise FileExistsError(f"{parent}: no free run directory named {base}[-k]")


def new_run_dir(
    kind: str,
    *,
    explicit: Path | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> RunDir:
    """Create the state directory of a new run of ``kind`` (``"demo"``, ``"stack"``).

    Parameters
    ----------
    kind : str
        Part of the directory's name.
    explicit : Path, optional
        The operator's choice (``--state-dir``): used as it is, created 0700 if missing.
    env : mapping, optional
        Environment (:data:`ENV_STATE_HOME`); default ``os.environ``.
    now : datetime, optional
        The run's start (its name); default now.

    Raises
    ------
    ValueError
        ``explicit`` (or, without it, the temporary directory) lies inside a git work tree: keys
        and credentials do not belong in a repository.
    """
    if explicit is not None:
        explicit = explicit.expanduser().absolute()
        repo = git_work_tree(explicit)
        if repo is not None:
            raise ValueError(
                f"{explicit} is inside the git work tree {repo}; a run's keys, credentials and "
                "databases stay outside the repository"
            )
        make_private_dirs(explicit)
        return RunDir(explicit)
    base = f"{_stamp(now)}-{kind}-{os.getpid()}"
    root = state_home(env) / "runs"
    repo = git_work_tree(root)
    reason: str | None = None
    if repo is not None:
        reason = f"the state home {root} is inside the git work tree {repo}"
    else:
        try:
            return RunDir(_fresh_dir(root, base))
        except OSError as err:
            reason = f"cannot create a directory under {root}: {err.strerror or err}"
    path = Path(tempfile.mkdtemp(prefix=f"drready-{base}-"))
    repo = git_work_tree(path)
    if repo is not None:
        path.rmdir()
        raise ValueError(
            f"{reason}, and the temporary directory {path} is inside the git work tree {repo}; "
            "set XDG_STATE_HOME to a folder outside the repository"
        )
    return RunDir(path, fallback_reason=reason)
