"""Signed session cookies and CSRF tokens for the servicer's human operators (S1; issue 12
item 6). No I/O but the key file; the caller passes the time.

A session is a cookie value ``<payload b64url>.<HMAC-SHA256 b64url>``; the payload is JSON:
``sub`` (the operator), ``sid`` (128 random bits), ``tag`` (the credential's fingerprint, see
:meth:`drready.security.operators.OperatorFile.credential_tag`), ``iat``, ``exp`` [Unix s]. The
key (32 random bytes) lives in a 0600 file of the servicer's state directory, so sessions outlive
a restart; deleting the file ends every session. The signature covers a purpose label as well,
so a session value is never accepted as a CSRF token or the other way round.

CSRF (OWASP "Cross-Site Request Forgery Prevention Cheat Sheet": synchronizer token pattern,
signed double-submit cookie): the token of a session is ``HMAC(key, "csrf" ‖ sid)``, sent with
every state-changing request in a form field or header; before login, the login form carries
``HMAC(key, "login" ‖ nonce)`` for a nonce in a short-lived cookie.

A session ends at ``exp`` (absolute), at logout (:meth:`SessionSigner.revoke`: its ``sid`` is
refused until ``exp``; this list lives in the process, see docs/security.md), and when the
operator's password changes or the operator is removed (its ``tag`` no longer matches).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from drready.security.files import make_private_dirs
from drready.security.paths import git_work_tree, write_private_file

__all__ = [
    "KEY_FILE_NAME",
    "Session",
    "SessionSigner",
    "load_or_create_session_key",
]

KEY_FILE_NAME = "session.key"
"""The session key's file in the state directory."""
_KEY_BYTES = 32
_MAX_COOKIE_CHARS = 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_session_key(state_dir: Path) -> bytes:
    """The session key in ``state_dir/session.key``, created (0600, 32 random bytes) if missing.

    Raises
    ------
    ValueError
        The directory is inside a git work tree, or the file is readable by others or short.
    """
    state_dir = state_dir.expanduser().absolute()
    repo = git_work_tree(state_dir)
    if repo is not None:
        raise ValueError(
            f"--state-dir: {state_dir} is inside the git work tree {repo}; keys stay outside "
            "the repository"
        )
    make_private_dirs(state_dir)
    path = state_dir / KEY_FILE_NAME
    with contextlib.suppress(FileExistsError):
        write_private_file(path, _b64(secrets.token_bytes(_KEY_BYTES)).encode("ascii") + b"\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(f"--state-dir: {path} has mode {mode:04o}; others may read it (chmod 600)")
    try:
        key = _unb64(path.read_text(encoding="ascii").strip())
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"--state-dir: {path} is not a base64 key; delete it to renew") from err
    if len(key) < _KEY_BYTES:
        raise ValueError(f"--state-dir: {path} holds fewer than {_KEY_BYTES} bytes; delete it")
    return key


@dataclass(frozen=True)
class Session:
    """A verified session."""

    operator: str
    sid: str
    tag: str
    issued_at_s: int
    expires_at_s: int


class SessionSigner:
    """Issues and checks session cookies and CSRF tokens (see the module docstring).

    Parameters
    ----------
    key : bytes
        At least 32 bytes (:func:`load_or_create_session_key`).
    ttl_s : int
        A session's lifetime [s], 60 s … 7 days; 8 h by default (a working day).
    """

    def __init__(self, key: bytes, *, ttl_s: int = 8 * 3600) -> None:
        if len(key) < _KEY_BYTES:
            raise ValueError(f"key: at least {_KEY_BYTES} bytes, got {len(key)}")
        if not 60 <= ttl_s <= 7 * 86400:
            raise ValueError(f"ttl_s: must be in [60, 604800] s, got {ttl_s!r}")
        self._key = key
        self.ttl_s = ttl_s
        self._revoked: dict[str, int] = {}

    def _mac(self, purpose: str, data: bytes) -> bytes:
        message = purpose.encode("ascii") + b"\x00" + data
        return hmac.new(self._key, message, hashlib.sha256).digest()

    # ------------------------------------------------------------------ sessions
    def issue(self, operator: str, tag: str, now_s: float) -> tuple[str, Session]:
        """A new session of ``operator`` whose credential fingerprint is ``tag``."""
        iat = int(now_s)
        session = Session(operator, _b64(secrets.token_bytes(16)), tag, iat, iat + self.ttl_s)
        payload = json.dumps(
            {"sub": operator, "sid": session.sid, "tag": tag, "iat": iat, "exp": iat + self.ttl_s},
            separators=(",", ":"),
        ).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._mac('session', payload))}", session

    def verify(self, value: str | None, now_s: float) -> Session | None:
        """The session of a cookie value, or ``None`` (missing, forged, expired, revoked)."""
        if not value or len(value) > _MAX_COOKIE_CHARS or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        try:
            payload, signature = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(signature, self._mac("session", payload)):
            return None
        try:
            data = json.loads(payload)
            session = Session(
                str(data["sub"]),
                str(data["sid"]),
                str(data["tag"]),
                int(data["iat"]),
                int(data["exp"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if not session.issued_at_s - 60 <= now_s < session.expires_at_s:
            return None
        if session.sid in self._revoked:
            return None
        return session

    def revoke(self, session: Session, now_s: float) -> None:
        """End ``session`` now (logout); forgotten once it would have expired anyway."""
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now_s}
        self._revoked[session.sid] = session.expires_at_s

    # ------------------------------------------------------------------ CSRF
    def csrf_token(self, session: Session) -> str:
        """The CSRF token of ``session`` (form field ``csrf_token`` or header ``X-CSRF-Token``)."""
        return _b64(self._mac("csrf", session.sid.encode("ascii")))

    def check_csrf(self, session: Session, token: str | None) -> bool:
        """Whether ``token`` is ``session``'s CSRF token (constant time)."""
        return token is not None and hmac.compare_digest(
            token.encode("utf-8", "replace"), self.csrf_token(session).encode("ascii")
        )

    def login_nonce(self) -> tuple[str, str]:
        """A nonce for the login form's cookie and the token the form carries."""
        nonce = _b64(secrets.token_bytes(16))
        return nonce, _b64(self._mac("login", nonce.encode("ascii")))

    def check_login_token(self, nonce: str | None, token: str | None) -> bool:
        """Whether the login form's ``token`` belongs to the cookie's ``nonce``."""
        if not nonce or not token or len(nonce) > 64:
            return False
        expected = _b64(self._mac("login", nonce.encode("utf-8", "replace")))
        return hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode("ascii"))
