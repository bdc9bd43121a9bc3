"""Encryption at rest of the servicer's market registration data (S1, D6).

Market registration data — the supply-point ID (供給地点特定番号), voltage class, retailer,
contract power and product class of a resource — identifies a customer's premises; the servicer
keeps it in its database only as AES-256-GCM ciphertext (NIST SP 800-38D, via the
``cryptography`` package's ``AESGCM``):

* a fresh random 96-bit nonce per encryption (SP 800-38D §8.2.2: with random nonces one key may
  encrypt up to 2³² messages; a registration is rewritten only when it changes);
* the *associated data* binds a ciphertext to its row: :func:`associated_data` of the resource
  id. A ciphertext copied into another resource's row fails authentication
  (:class:`DecryptionError` naming the resource) instead of decrypting to the wrong customer;
* a **key ring** for rotation: every row stores the id of the key that sealed it; the first key
  of the ring (the *primary*) seals new data, the others only open old rows until
  ``Registry.reencrypt_market_registrations`` has moved them to the primary.

Keys never come from the repository. The ring is read from

=====================================  ==========================================================
``DRREADY_SERVICER_DATA_KEY``          entries separated by commas or white space
``DRREADY_SERVICER_DATA_KEY_FILE``     a mode-0600 file outside any git work tree, one entry a
                                       line (``#`` starts a comment); used when the variable
                                       above is unset
=====================================  ==========================================================

An entry is ``KEY_ID:BASE64`` or a bare ``BASE64`` (then its id is ``fp-`` + the first 16 hex
digits of the key's SHA-256, a fingerprint that reveals nothing of a random 256-bit key); the
base64 (standard or URL-safe alphabet) must decode to exactly 32 bytes. There is no built-in
key: with neither variable set, :meth:`KeyRing.from_env` raises :class:`DataKeyError` naming
both. :func:`generate_key` makes a key, :func:`write_key_file` a key file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drready.security.paths import git_work_tree, write_private_file

__all__ = [
    "ENV_DATA_KEY",
    "ENV_DATA_KEY_FILE",
    "KEY_BYTES",
    "NONCE_BYTES",
    "DataKeyError",
    "DecryptionError",
    "KeyRing",
    "Sealed",
    "associated_data",
    "generate_key",
    "key_fingerprint",
    "write_key_file",
]

ENV_DATA_KEY = "DRREADY_SERVICER_DATA_KEY"
ENV_DATA_KEY_FILE = "DRREADY_SERVICER_DATA_KEY_FILE"
#: AES-256 key length [bytes].
KEY_BYTES = 32
#: AES-GCM nonce length [bytes] (the 96-bit IV recommended by SP 800-38D §5.2.1.1).
NONCE_BYTES = 12
#: Domain separation of the associated data (version 1 of the binding).
_AAD_PREFIX = b"drready/servicer/market_registration/v1\x00"
_KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class DataKeyError(ValueError):
    """The data key ring is missing or malformed, or lacks the key a row was sealed with."""


class DecryptionError(ValueError):
    """A ciphertext failed authentication: wrong key, tampered data, or bound to another row."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ciphertext (with GCM tag), its nonce and the id of the key that sealed it."""

    ciphertext: bytes
    nonce: bytes
    key_id: str

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, {len(self.ciphertext)} bytes)"


def associated_data(resource_id: str) -> bytes:
    """The associated data binding a market registration ciphertext to ``resource_id``."""
    return _AAD_PREFIX + resource_id.encode("utf-8")


def generate_key() -> str:
    """A new random AES-256 key, base64 (the form ``DRREADY_SERVICER_DATA_KEY`` takes)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def key_fingerprint(key: bytes) -> str:
    """The key id of a bare key: ``fp-`` + the first 16 hex digits of its SHA-256."""
    return "fp-" + hashlib.sha256(key).hexdigest()[:16]


class KeyRing:
    """AES-256-GCM keys by id; the first (primary) seals, any opens the rows sealed with it.

    Parameters
    ----------
    keys : sequence of (key_id, key)
        Primary first. Ids: 1–64 characters from ``[A-Za-z0-9._-]``; keys: 32 bytes.
    """

    __slots__ = ("_keys", "_primary")

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise DataKeyError("a key ring needs at least one key")
        ring: dict[str, bytes] = {}
        for key_id, key in keys:
            if not _KEY_ID_RE.fullmatch(key_id):
                raise DataKeyError(
                    f"key id must be 1–64 characters from [A-Za-z0-9._-], got {key_id!r}"
                )
            if len(key) != KEY_BYTES:
                raise DataKeyError(
                    f"key {key_id!r} must be exactly {KEY_BYTES} bytes (AES-256), "
                    f"got {len(key)} bytes"
                )
            if key_id in ring and ring[key_id] != key:
                raise DataKeyError(f"key id {key_id!r} is given twice with different keys")
            ring[key_id] = bytes(key)
        self._keys = ring
        self._primary = keys[0][0]

    def __repr__(self) -> str:
        return f"KeyRing(primary={self._primary!r}, key_ids={self.key_ids!r})"

    @property
    def primary_key_id(self) -> str:
        """Id of the key that seals new data."""
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of every key in the ring, primary first."""
        return tuple(self._keys)

    @classmethod
    def parse(cls, text: str, source: str) -> KeyRing:
        """Parse entries (``KEY_ID:BASE64`` or ``BASE64``) separated by commas, white space or
        lines; ``#`` starts a comment. ``source`` names the variable or file in errors."""
        entries: list[tuple[str, bytes]] = []
        for line in text.splitlines():
            content = line.split("#", 1)[0]
            for token in re.split(r"[\s,]+", content.strip()):
                if token:
                    entries.append(_parse_entry(token, len(entries) + 1, source))
        if not entries:
            raise DataKeyError(f"{source}: no key found")
        try:
            return cls(entries)
        except DataKeyError as err:
            raise DataKeyError(f"{source}: {err}") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> KeyRing:
        """The ring from ``DRREADY_SERVICER_DATA_KEY``, else ``DRREADY_SERVICER_DATA_KEY_FILE``.

        Raises
        ------
        DataKeyError
            Neither is set (the message says how to make a key), the file is inside a git work
            tree, readable by others or unreadable, or an entry is malformed.
        """
        inline = env.get(ENV_DATA_KEY, "").strip()
        if inline:
            return cls.parse(inline, ENV_DATA_KEY)
        file_name = env.get(ENV_DATA_KEY_FILE, "").strip()
        if not file_name:
            raise DataKeyError(
                f"no servicer data key configured: set {ENV_DATA_KEY} to the base64 of 32 random "
                f"bytes (e.g. export {ENV_DATA_KEY}=$(python -c "
                "'from drready.servicer.storage.crypto "
                f"import generate_key; print(generate_key())')), or set {ENV_DATA_KEY_FILE} to a "
                "mode-0600 key file outside the repository"
            )
        path = Path(file_name).expanduser()
        repo = git_work_tree(path)
        if repo is not None:
            raise DataKeyError(
                f"{ENV_DATA_KEY_FILE}: {path} is inside the git work tree {repo}; keep keys "
                "outside the repository"
            )
        try:
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise DataKeyError(
                    f"{ENV_DATA_KEY_FILE}: {path} is readable by others; chmod 600 it"
                )
            text = path.read_text(encoding="ascii")
        except OSError as err:
            raise DataKeyError(f"{ENV_DATA_KEY_FILE}: cannot read {path}: {err.strerror}") from err
        except UnicodeDecodeError as err:
            raise DataKeyError(f"{ENV_DATA_KEY_FILE}: {path} must be ASCII text") from err
        return cls.parse(text, f"{ENV_DATA_KEY_FILE} ({path})")

    def seal(self, plaintext: bytes, *, aad: bytes) -> Sealed:
        """Encrypt and authenticate ``plaintext`` (bound to ``aad``) with the primary key."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(self._keys[self._primary]).encrypt(nonce, plaintext, aad)
        return Sealed(ciphertext=ciphertext, nonce=nonce, key_id=self._primary)

    def open(self, sealed: Sealed, *, aad: bytes, what: str = "ciphertext") -> bytes:
        """Authenticate and decrypt ``sealed`` with the key its ``key_id`` names.

        Raises
        ------
        DataKeyError
            The ring has no key with that id.
        DecryptionError
            Authentication failed (wrong key under that id, altered bytes, or another ``aad``);
            the message names ``what``.
        """
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise DataKeyError(
                f"{what}: sealed with key id {sealed.key_id!r}, which is not in the key ring "
                f"{self.key_ids!r} (set {ENV_DATA_KEY} or {ENV_DATA_KEY_FILE} to a ring that "
                "still holds it)"
            )
        if len(sealed.nonce) != NONCE_BYTES:
            raise DecryptionError(
                f"{what}: nonce must be {NONCE_BYTES} bytes, got {len(sealed.nonce)}"
            )
        try:
            return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, aad)
        except InvalidTag:
            raise DecryptionError(
                f"{what}: authentication failed with key {sealed.key_id!r} — wrong key, "
                "altered data, or a ciphertext that belongs to another row"
            ) from None


def _parse_entry(token: str, number: int, source: str) -> tuple[str, bytes]:
    key_id, sep, encoded = token.partition(":")
    if not sep:
        key_id, encoded = "", token
    key = _decode_key(encoded, number, source)
    if not key_id:
        key_id = key_fingerprint(key)
    elif not _KEY_ID_RE.fullmatch(key_id):
        raise DataKeyError(
            f"{source}: key id of entry {number} must be 1–64 characters from [A-Za-z0-9._-]"
        )
    return key_id, key


def _decode_key(encoded: str, number: int, source: str) -> bytes:
    # the URL-safe alphabet differs in two characters only; map it onto the standard one
    standard = encoded.replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        # never echo the entry: it may be a real key with a typo
        raise DataKeyError(f"{source}: entry {number} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise DataKeyError(
            f"{source}: entry {number} must be base64 of exactly {KEY_BYTES} bytes (AES-256), "
            f"got {len(key)} bytes"
        )
    return key


def write_key_file(path: Path, *, key_id: str | None = None, overwrite: bool = False) -> str:
    """Write a new key (``KEY_ID:BASE64``, or bare when ``key_id`` is ``None``) to ``path``.

    The file is created with mode 0600 and must lie outside any git work tree. Returns the key
    id. ``FileExistsError`` if ``path`` exists and not ``overwrite``.
    """
    path = Path(path).expanduser()
    repo = git_work_tree(path)
    if repo is not None:
        raise DataKeyError(
            f"{path} is inside the git work tree {repo}; keep keys outside the repository"
        )
    encoded = generate_key()
    if key_id is None:
        key_id = key_fingerprint(base64.b64decode(encoded))
        line = encoded
    else:
        if not _KEY_ID_RE.fullmatch(key_id):
            raise DataKeyError(
                f"key_id must be 1–64 characters from [A-Za-z0-9._-], got {key_id!r}"
            )
        line = f"{key_id}:{encoded}"
    write_private_file(path, (line + "\n").encode("ascii"), overwrite=overwrite)
    return key_id
