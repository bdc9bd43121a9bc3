"""The servicer's human operators: a password file with scrypt hashes (S1: authenticate every
interconnection, operator ↔ dashboard; JC-STAR ★1 S1.1-01…-04; issue 12 item 6).

The file is TOML, kept **outside the repository**, mode **0600** (refused otherwise, like the
VTN's client registry), written by ``drready servicer operator add NAME``::

    # drready servicer operators (S1); passwords are stored as scrypt hashes only
    [[operators]]
    name = "alice"
    password_hash = "scrypt$16384$8$1$<salt b64>$<hash b64>"

Hashes are those of the client registry (:func:`drready.security.tokens.hash_secret`: scrypt,
RFC 7914, N=2^14, r=8, p=1, a 16-byte random salt per operator; Python's :mod:`hashlib` on
OpenSSL), compared in constant time. A password has at least
:data:`PASSWORD_MIN_CHARS` characters — NIST SP 800-63B-4 §3.1.1.2 asks at least 15 when a
password is the only factor — and at most :data:`PASSWORD_MAX_CHARS`.

:class:`OperatorFile` re-reads the file when it changes on disk, so an operator added, removed
or given a new password takes effect without a restart; :meth:`OperatorFile.credential_tag`
changes with the stored hash, which ends the sessions opened with the old password.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import stat
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

from drready.security.files import make_private_dirs
from drready.security.paths import git_work_tree, write_private_file
from drready.security.tokens import hash_secret, verify_secret

__all__ = [
    "NAME_PATTERN",
    "PASSWORD_MAX_CHARS",
    "PASSWORD_MIN_CHARS",
    "OperatorFile",
    "OperatorRecord",
    "check_operator_name",
    "check_password",
    "hash_password",
]

PASSWORD_MIN_CHARS = 16
"""Shortest password [characters] (the client secrets' minimum; NIST asks ≥ 15)."""
PASSWORD_MAX_CHARS = 1024
"""Longest password [characters] (scrypt hashes any length; this bounds the work per guess)."""
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""An operator name: a letter or digit, then up to 63 of letters, digits, ``. _ @ -``."""

_log = logging.getLogger("drready.security.operators")
_HEADER = "# drready servicer operators (S1); passwords are stored as scrypt hashes only\n"


def check_operator_name(name: str) -> str:
    """``name`` if it is a valid operator name, else ``ValueError`` naming the rule."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"name: must be 1–64 characters, a letter or digit then letters, digits or . _ @ -; "
            f"got {name[:80]!r}"
        )
    return name


def check_password(password: str) -> str:
    """``password`` if its length is within [PASSWORD_MIN_CHARS, PASSWORD_MAX_CHARS] and it holds
    no control character, else ``ValueError`` naming the rule."""
    if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        raise ValueError(
            f"password: must be {PASSWORD_MIN_CHARS}–{PASSWORD_MAX_CHARS} characters, got "
            f"{len(password)} (a passphrase of several words, or "
            "python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in password):
        raise ValueError("password: must not contain control characters (newline, tab, NUL …)")
    return password


def hash_password(password: str) -> str:
    """The stored form of a password: ``scrypt$N$r$p$<salt>$<hash>`` (see the module docstring)."""
    return hash_secret(check_password(password))


@dataclass(frozen=True)
class OperatorRecord:
    """One operator of the file: a name and a password hash, never the password."""

    name: str
    password_hash: str


def _private_outside_repo(path: Path, argument: str) -> None:
    repo = git_work_tree(path)
    if repo is not None:
        raise ValueError(
            f"{argument}: {path} is inside the git work tree {repo}; keep credentials outside "
            "the repository"
        )


def _parse(text: str, source: str) -> dict[str, OperatorRecord]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{source}: not valid TOML: {err}") from err
    items = doc.get("operators", [])
    if not isinstance(items, list):
        raise ValueError(f"{source}: 'operators' must be a list of tables ([[operators]])")
    out: dict[str, OperatorRecord] = {}
    for i, item in enumerate(items):
        where = f"{source}: operators[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "password_hash"}:
            raise ValueError(f"{where}: needs exactly the keys name and password_hash")
        name, digest = item["name"], item["password_hash"]
        if not isinstance(name, str) or not isinstance(digest, str):
            raise ValueError(f"{where}: name and password_hash must be strings")
        try:
            check_operator_name(name)
            verify_secret("x" * PASSWORD_MIN_CHARS, digest)  # parses; raises if malformed
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        if name in out:
            raise ValueError(f"{where}: name {name!r} appears twice")
        out[name] = OperatorRecord(name, digest)
    return out


class OperatorFile:
    """The operators file (see the module docstring): load, add, verify.

    Parameters
    ----------
    path : Path
        The TOML file; outside any git work tree. It may be missing until the first
        :meth:`add` (then no one can log in).
    """

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser().absolute()
        _private_outside_repo(self.path, "operators file")
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._records: dict[str, OperatorRecord] = {}
        self._dummy_hash: str | None = None
        self._reload(strict=True)

    # ------------------------------------------------------------------ reading
    def _reload(self, *, strict: bool = False) -> None:
        """Read the file again if it changed (inode, size, mtime, ctime: a chmod too); refuse
        one others may read. ``strict``: raise ``ValueError``; else (a running server) log it
        and let no one in until the file is right again (fail closed)."""
        try:
            self._read()
        except (ValueError, OSError) as err:
            if strict:
                raise
            _log.error("operators file refused, no one can log in: %s", err)
            with self._lock:
                self._stamp, self._records = None, {}

    def _read(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            with self._lock:
                self._stamp, self._records = None, {}
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if stamp == self._stamp:
            return
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise ValueError(
                f"operators file: {self.path} has mode {stat.S_IMODE(st.st_mode):04o}; others may "
                "read it (chmod 600)"
            )
        records = _parse(self.path.read_text(encoding="utf-8"), str(self.path))
        with self._lock:
            self._stamp, self._records = stamp, records

    def names(self) -> list[str]:
        """The operators' names, sorted."""
        self._reload()
        return sorted(self._records)

    def credential_tag(self, name: str) -> str | None:
        """A short fingerprint of ``name``'s stored hash (``None``: no such operator). It changes
        whenever the password is set again, so sessions carry it to end with the password."""
        self._reload()
        record = self._records.get(name)
        if record is None:
            return None
        return hashlib.sha256(record.password_hash.encode("ascii")).hexdigest()[:16]

    def verify(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s (scrypt, constant-time; blocking, ~75 ms). An
        unknown name costs the same scrypt run, so the timing does not tell names apart."""
        self._reload()
        record = self._records.get(name)
        if record is None or not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
            if self._dummy_hash is None:
                self._dummy_hash = hash_secret(secrets.token_urlsafe(32))
            verify_secret(password[:PASSWORD_MAX_CHARS] or "-", self._dummy_hash)
            return False
        return verify_secret(password, record.password_hash)

    # ------------------------------------------------------------------ writing
    def add(self, name: str, password: str) -> bool:
        """Add ``name`` or set its password; the file is rewritten 0600. Whether it was new."""
        record = OperatorRecord(check_operator_name(name), hash_password(password))
        self._reload()
        records = dict(self._records)
        new = name not in records
        records[name] = record
        self._write(records)
        return new

    def remove(self, name: str) -> bool:
        """Remove ``name`` (its sessions end); whether it was there."""
        self._reload()
        records = dict(self._records)
        if records.pop(name, None) is None:
            return False
        self._write(records)
        return True

    def _write(self, records: dict[str, OperatorRecord]) -> None:
        lines = [_HEADER]
        for record in sorted(records.values(), key=lambda r: r.name):
            lines += [
                "[[operators]]",
                f"name = {json.dumps(record.name)}",
                f"password_hash = {json.dumps(record.password_hash)}",
                "",
            ]
        make_private_dirs(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        write_private_file(tmp, "\n".join(lines).encode("utf-8"), overwrite=True)
        os.replace(tmp, self.path)
        self._stamp = None
        self._reload(strict=True)
