"""OAuth2 client-credentials tokens and the client registry of the VTN (S1: authenticate).

OpenADR 3.1 secures every endpoint with the ``oAuth2ClientCredentials`` scheme
(``openadr3.yaml``, ``components.securitySchemes``): a client trades its ``client_id`` and
``client_secret`` for a bearer token at the token endpoint (RFC 6749 §4.4) and presents it on
each request; the VTN resolves the token to scopes and answers 403 when the operation's scope is
missing (Definition.md, "Reference Implementation", steps 1–4). The token format is left to the
implementation; here it is a signed JWT (RFC 7519, claims after RFC 9068):

``iss``, ``aud``, ``sub`` (= client id), ``client_id``, ``scope`` (space-separated),
``role`` (``"bl"`` business logic or ``"ven"``), ``ven_id`` (optional), ``iat``, ``exp``, ``jti``.

Signed with HS256 (a shared secret of ≥ 32 bytes, RFC 7518 §3.2) or ES256 (a P-256 PEM private
key; verification uses its public half). ``verify`` accepts only the configured algorithm, so
``alg: none`` and HS/ES key confusion are refused.

Client registry file (JSON or TOML by suffix, kept **outside the repository**, mode 0600
recommended), pointed at by ``DRREADY_CLIENTS_FILE`` (or inline JSON in
``DRREADY_CLIENTS_JSON``)::

    # TOML
    [[clients]]
    client_id = "dr-servicer"
    secret_hash = "scrypt$16384$8$1$<salt b64>$<hash b64>"   # from hash_secret(); never the secret
    role = "bl"                      # "bl" or "ven"
    scopes = ["read_all", "write_programs", "write_events"]   # optional; default per role
    # ven_id = "..."                 # optional; the VEN object this client acts for

    {"clients": [{"client_id": "maker-cloud-1", "secret_hash": "scrypt$...", "role": "ven"}]}

Secret hashes: scrypt (RFC 7914; N=2^14, r=8, p=1, 16-byte random salt per client, 32-byte
output), compared in constant time. An unknown client id costs the same scrypt run as a wrong
secret and raises the same :class:`TokenInvalidError`.

Scopes and roles: the VTN's are OpenADR's (:data:`OPENADR_POLICY`); another server using this
machinery — the DR servicer's own north-bound API — passes its own :class:`ScopePolicy` (its scope
names and the default scopes of its roles) to :class:`TokenService`, :class:`ClientRegistry` and
:func:`load_registry`, and a different ``audience``, so that neither server accepts the other's
tokens or scope names.

Signing key: ``DRREADY_TOKEN_KEY`` (the key itself) or ``DRREADY_TOKEN_KEY_FILE`` (a file, mode
0600, holding it); ``DRREADY_TOKEN_ALG`` = ``HS256`` (default) or ``ES256``. There is no built-in
default key: :func:`load_registry` refuses to start without one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drready.security.paths import git_work_tree, write_private_file

__all__ = [
    "ALL_SCOPES",
    "BL_SCOPES",
    "ENV_CLIENTS_FILE",
    "ENV_CLIENTS_JSON",
    "ENV_TOKEN_ALG",
    "ENV_TOKEN_KEY",
    "ENV_TOKEN_KEY_FILE",
    "OPENADR_POLICY",
    "READ_ALL",
    "READ_BL",
    "READ_TARGETS",
    "READ_VEN_OBJECTS",
    "TTL_MAX_S",
    "TTL_MIN_S",
    "VEN_SCOPES",
    "WRITE_EVENTS",
    "WRITE_PROGRAMS",
    "WRITE_REPORTS",
    "WRITE_SUBSCRIPTIONS",
    "WRITE_VENS",
    "ClientRecord",
    "ClientRegistry",
    "Clock",
    "Role",
    "ScopePolicy",
    "TokenClaims",
    "TokenError",
    "TokenExpiredError",
    "TokenInvalidError",
    "TokenService",
    "example_clients_file",
    "hash_secret",
    "load_registry",
    "verify_secret",
]

# --- OpenADR 3.1.0 scopes (openadr3.yaml, securitySchemes.oAuth2ClientCredentials) -----------
READ_ALL = "read_all"
"""BL can read all resources."""
READ_TARGETS = "read_targets"
"""VENs may only read objects with targets by providing matching targets."""
READ_VEN_OBJECTS = "read_ven_objects"
"""VENs may only read objects whose clientID matches their own."""
WRITE_PROGRAMS = "write_programs"
"""Only BL can write to programs."""
WRITE_EVENTS = "write_events"
"""Only BL can write to events."""
WRITE_REPORTS = "write_reports"
"""Only VENs can write to reports."""
WRITE_SUBSCRIPTIONS = "write_subscriptions"
"""VENs and BL can write to subscriptions."""
WRITE_VENS = "write_vens"
"""VENs and BL can write to vens and resources."""
READ_BL = "read_bl"
"""Required by the ``/notifiers/mqtt/topics/{events,reports,subscriptions,vens}`` operations of
openadr3.yaml 3.1.0 but not declared in its ``securitySchemes``; BL-only by its name."""

ALL_SCOPES = frozenset(
    {
        READ_ALL,
        READ_TARGETS,
        READ_VEN_OBJECTS,
        WRITE_PROGRAMS,
        WRITE_EVENTS,
        WRITE_REPORTS,
        WRITE_SUBSCRIPTIONS,
        WRITE_VENS,
        READ_BL,
    }
)
BL_SCOPES = frozenset(
    {READ_ALL, READ_BL, WRITE_PROGRAMS, WRITE_EVENTS, WRITE_SUBSCRIPTIONS, WRITE_VENS}
)
"""Default business-logic scopes, from the scope descriptions ("BL can …", "Only BL …")."""
VEN_SCOPES = frozenset(
    {READ_TARGETS, READ_VEN_OBJECTS, WRITE_REPORTS, WRITE_SUBSCRIPTIONS, WRITE_VENS}
)
"""Default VEN scopes; ``read_targets`` is the VEN default named in Definition.md
("Targeting"), the rest from the scope descriptions ("VENs may …", "only VENs …")."""

Role = Literal["bl", "ven"]
ROLES: tuple[Role, ...] = ("bl", "ven")
DEFAULT_SCOPES: Mapping[str, frozenset[str]] = {"bl": BL_SCOPES, "ven": VEN_SCOPES}


@dataclass(frozen=True)
class ScopePolicy:
    """The scope names a token service knows and the roles it issues, each with its default
    scopes (a registry record without ``scopes`` gets its role's)."""

    scopes: frozenset[str]
    default_scopes: Mapping[str, frozenset[str]]

    def __post_init__(self) -> None:
        if not self.default_scopes:
            raise ValueError("default_scopes: at least one role is needed")
        for role, granted in self.default_scopes.items():
            unknown = sorted(granted - self.scopes)
            if unknown:
                raise ValueError(f"default_scopes[{role!r}]: unknown scope(s) {unknown}")

    @property
    def roles(self) -> tuple[str, ...]:
        """The role names, in the order given."""
        return tuple(self.default_scopes)


OPENADR_POLICY = ScopePolicy(ALL_SCOPES, DEFAULT_SCOPES)
"""The VTN's scopes (OpenADR 3.1) and roles (``bl``, ``ven``): the default everywhere here."""

TTL_MIN_S = 30
TTL_MAX_S = 3600
ALGORITHMS = ("HS256", "ES256")
HS256_MIN_KEY_BYTES = 32  # RFC 7518 §3.2: a key at least as long as the hash output
SECRET_MIN_CHARS = 16

ENV_TOKEN_KEY = "DRREADY_TOKEN_KEY"
ENV_TOKEN_KEY_FILE = "DRREADY_TOKEN_KEY_FILE"
ENV_TOKEN_ALG = "DRREADY_TOKEN_ALG"
ENV_CLIENTS_FILE = "DRREADY_CLIENTS_FILE"
ENV_CLIENTS_JSON = "DRREADY_CLIENTS_JSON"

Clock = Callable[[], float]
"""Returns the current time as POSIX epoch seconds (``time.time`` by default)."""


class TokenError(Exception):
    """A bearer token or client credential was rejected (→ HTTP 401)."""


class TokenExpiredError(TokenError):
    """The token was valid but its ``exp`` has passed."""


class TokenInvalidError(TokenError):
    """Bad signature, wrong issuer/audience/algorithm, malformed or missing claims, or wrong
    client credentials."""


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says about its bearer."""

    client_id: str
    scopes: frozenset[str]
    role: str
    """One of the issuing service's roles (``"bl"`` or ``"ven"`` at the VTN)."""
    ven_id: str | None
    expires_at: int
    """POSIX epoch seconds."""

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants ``scope``."""
        return scope in self.scopes


def _check_scopes(
    scopes: Iterable[str], argument: str, policy: ScopePolicy = OPENADR_POLICY
) -> frozenset[str]:
    if isinstance(scopes, str):
        raise ValueError(f"{argument}: must be a list of scope names, not a string")
    result = frozenset(scopes)
    unknown = sorted(result - policy.scopes)
    if unknown:
        raise ValueError(f"{argument}: unknown scope(s) {unknown}; known: {sorted(policy.scopes)}")
    return result


def _check_role(role: object, argument: str = "role", policy: ScopePolicy = OPENADR_POLICY) -> str:
    roles = policy.roles
    if not isinstance(role, str) or role not in roles:
        names = [repr(r) for r in roles]
        allowed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        raise ValueError(f"{argument}: must be {allowed}, got {role!r}")
    return role


class TokenService:
    """Issues and verifies access tokens (signed JWTs) for the VTN.

    Parameters
    ----------
    issuer : str
        ``iss`` claim, e.g. the VTN's base URL.
    signing_key : bytes or str
        HS256: the shared secret (≥ 32 bytes). ES256: a PEM P-256 private key.
    algorithm : {"HS256", "ES256"}
    ttl_s : int
        Token lifetime [s], 30–3600.
    audience : str
        ``aud`` claim required on verification.
    clock : Clock
        Time source [epoch s]; tests pass a fake.
    leeway_s : int
        Clock-skew allowance on ``exp``/``iat`` [s], 0–60.
    policy : ScopePolicy
        The scopes and roles tokens may carry (:data:`OPENADR_POLICY` for the VTN).
    """

    def __init__(
        self,
        issuer: str,
        signing_key: bytes | str,
        *,
        algorithm: str = "HS256",
        ttl_s: int = 300,
        audience: str = "drready-vtn",
        clock: Clock = time.time,
        leeway_s: int = 0,
        policy: ScopePolicy = OPENADR_POLICY,
    ) -> None:
        if not issuer:
            raise ValueError("issuer: must not be empty")
        if not audience:
            raise ValueError("audience: must not be empty")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: must be one of {ALGORITHMS}, got {algorithm!r}")
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int):
            raise ValueError(f"ttl_s: must be an integer number of seconds, got {ttl_s!r}")
        if not TTL_MIN_S <= ttl_s <= TTL_MAX_S:
            raise ValueError(f"ttl_s: must be in {TTL_MIN_S}–{TTL_MAX_S} s, got {ttl_s}")
        if not 0 <= leeway_s <= 60:
            raise ValueError(f"leeway_s: must be in 0–60 s, got {leeway_s}")
        key = signing_key.encode() if isinstance(signing_key, str) else bytes(signing_key)
        self._sign_key: Any
        self._verify_key: Any
        if algorithm == "HS256":
            if key.lstrip().startswith(b"-----BEGIN"):
                raise ValueError("signing_key: a PEM key was given for HS256; use ES256")
            if len(key) < HS256_MIN_KEY_BYTES:
                raise ValueError(
                    f"signing_key: HS256 needs at least {HS256_MIN_KEY_BYTES} bytes, got {len(key)}"
                )
            self._sign_key = self._verify_key = key
        else:
            try:
                private = serialization.load_pem_private_key(key, password=None)
            except (ValueError, TypeError) as err:
                raise ValueError("signing_key: ES256 needs an unencrypted PEM private key") from err
            if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
                private.curve, ec.SECP256R1
            ):
                raise ValueError("signing_key: ES256 needs a P-256 (secp256r1) EC key")
            self._sign_key = private
            self._verify_key = private.public_key()
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.ttl_s = ttl_s
        self.leeway_s = leeway_s
        self.policy = policy
        self._clock = clock

    def now(self) -> float:
        """The service's clock (epoch seconds): what expiry is checked against."""
        return float(self._clock())

    def issue(
        self,
        client_id: str,
        scopes: Iterable[str],
        *,
        role: str,
        ven_id: str | None = None,
    ) -> tuple[str, int]:
        """Sign a token for ``client_id``.

        Returns
        -------
        (token, expires_in)
            The compact JWT and its lifetime [s] (the ``expires_in`` of RFC 6749 §5.1).
        """
        if not client_id:
            raise ValueError("client_id: must not be empty")
        checked_role = _check_role(role, policy=self.policy)
        granted = _check_scopes(scopes, "scopes", self.policy)
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "client_id": client_id,
            "scope": " ".join(sorted(granted)),
            "role": checked_role,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": secrets.token_urlsafe(16),
        }
        if ven_id is not None:
            claims["ven_id"] = ven_id
        token = jwt.encode(claims, self._sign_key, algorithm=self.algorithm)
        return token, self.ttl_s

    def verify(self, token: str) -> TokenClaims:
        """Check signature, algorithm, issuer, audience, lifetime and claim shapes.

        Raises
        ------
        TokenExpiredError
            ``exp`` has passed (by the service clock).
        TokenInvalidError
            Anything else wrong with the token.
        """
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != self.algorithm:
                raise TokenInvalidError(f"token algorithm {header.get('alg')!r} not accepted")
            payload = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                # lifetime is checked below against the injectable clock
                options={
                    "require": ["iss", "aud", "sub", "exp", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError as err:
            raise TokenInvalidError(f"invalid token: {err}") from err
        return self._claims(payload)

    def _claims(self, payload: dict[str, Any]) -> TokenClaims:
        now = self._clock()
        exp, iat = payload["exp"], payload["iat"]
        for name, value in (("exp", exp), ("iat", iat)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TokenInvalidError(f"invalid token: claim {name!r} must be an integer")
        if iat > now + self.leeway_s:
            raise TokenInvalidError("invalid token: issued in the future")
        if exp - iat > TTL_MAX_S:
            raise TokenInvalidError("invalid token: lifetime exceeds the maximum")
        if now >= exp + self.leeway_s:
            raise TokenExpiredError("token expired")
        client_id = payload.get("client_id")
        if not isinstance(client_id, str) or not client_id or client_id != payload["sub"]:
            raise TokenInvalidError("invalid token: 'client_id' missing or not equal to 'sub'")
        scope = payload.get("scope")
        ven_id = payload.get("ven_id")
        if not isinstance(scope, str) or (ven_id is not None and not isinstance(ven_id, str)):
            raise TokenInvalidError("invalid token: 'scope' or 'ven_id' malformed")
        try:
            role = _check_role(payload.get("role"), policy=self.policy)
            scopes = _check_scopes(scope.split(), "scope", self.policy)
        except ValueError as err:
            raise TokenInvalidError(f"invalid token: {err}") from err
        return TokenClaims(client_id, scopes, role, ven_id, exp)


# --- client secrets ---------------------------------------------------------------------------

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=_SCRYPT_MAXMEM
    )


def hash_secret(client_secret: str, *, salt: bytes | None = None) -> str:
    """Hash a client secret for the registry: ``scrypt$N$r$p$<salt b64>$<hash b64>``.

    A secret shorter than 16 characters is refused (``ValueError`` naming ``client_secret``);
    generate one with ``secrets.token_urlsafe(32)``.
    """
    if len(client_secret) < SECRET_MIN_CHARS:
        raise ValueError(
            f"client_secret: must be at least {SECRET_MIN_CHARS} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = _scrypt(client_secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("must look like scrypt$N$r$p$<salt>$<hash> (see hash_secret)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error) as err:
        raise ValueError("has malformed numbers or base64 (see hash_secret)") from err
    if n < 2**14 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("has scrypt parameters weaker or larger than allowed")
    if len(salt) < 16 or len(digest) < 32:
        raise ValueError("has a salt < 16 bytes or a hash < 32 bytes")
    return n, r, p, salt, digest


def verify_secret(client_secret: str, secret_hash: str) -> bool:
    """Whether ``client_secret`` matches ``secret_hash`` (constant-time comparison)."""
    n, r, p, salt, digest = _parse_hash(secret_hash)
    candidate = _scrypt(client_secret, salt, n, r, p, len(digest))
    return hmac.compare_digest(candidate, digest)


@dataclass(frozen=True)
class ClientRecord:
    """One registered OAuth2 client; holds the secret's hash, never the secret."""

    client_id: str
    secret_hash: str
    role: str
    scopes: frozenset[str]
    ven_id: str | None = None

    def to_json(self) -> dict[str, object]:
        """The registry-file form of the record."""
        data: dict[str, object] = {
            "client_id": self.client_id,
            "secret_hash": self.secret_hash,
            "role": self.role,
            "scopes": sorted(self.scopes),
        }
        if self.ven_id is not None:
            data["ven_id"] = self.ven_id
        return data


def _record_from_mapping(
    item: object, index: int, policy: ScopePolicy = OPENADR_POLICY
) -> ClientRecord:
    where = f"clients[{index}]"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: must be a table/object")
    if "client_secret" in item or "secret" in item:
        raise ValueError(f"{where}: store secret_hash (from hash_secret), never the secret")
    unknown = sorted(set(item) - {"client_id", "secret_hash", "role", "scopes", "ven_id"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}")
    client_id = item.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ValueError(f"{where}.client_id: must be a non-empty string")
    where = f"clients[{client_id!r}]"
    secret_hash = item.get("secret_hash")
    if not isinstance(secret_hash, str):
        raise ValueError(f"{where}.secret_hash: must be a string from hash_secret()")
    try:
        _parse_hash(secret_hash)
    except ValueError as err:
        raise ValueError(f"{where}.secret_hash: {err}") from err
    role = _check_role(item.get("role"), f"{where}.role", policy)
    raw_scopes = item.get("scopes")
    if raw_scopes is None:
        scopes = policy.default_scopes[role]
    elif isinstance(raw_scopes, list) and all(isinstance(s, str) for s in raw_scopes):
        scopes = _check_scopes(raw_scopes, f"{where}.scopes", policy)
    else:
        raise ValueError(f"{where}.scopes: must be a list of strings")
    ven_id = item.get("ven_id")
    if ven_id is not None and (not isinstance(ven_id, str) or not ven_id):
        raise ValueError(f"{where}.ven_id: must be a non-empty string")
    return ClientRecord(client_id, secret_hash, role, scopes, ven_id)


class ClientRegistry:
    """The OAuth2 clients the VTN knows, and the key its tokens are signed with.

    Parameters
    ----------
    clients : iterable of ClientRecord
    signing_key : bytes or str, optional
        Token signing key (see :class:`TokenService`); needed by :meth:`token_service`.
    algorithm : {"HS256", "ES256"}
    policy : ScopePolicy
        The scopes and roles of its clients (:data:`OPENADR_POLICY` for the VTN).
    """

    def __init__(
        self,
        clients: Iterable[ClientRecord] = (),
        *,
        signing_key: bytes | str | None = None,
        algorithm: str = "HS256",
        policy: ScopePolicy = OPENADR_POLICY,
    ) -> None:
        self.policy = policy
        self._clients: dict[str, ClientRecord] = {}
        for record in clients:
            self._add(record)
        self.signing_key = signing_key
        self.algorithm = algorithm
        self._dummy_hash: str | None = None

    def _add(self, record: ClientRecord) -> None:
        if record.client_id in self._clients:
            raise ValueError(f"client_id: {record.client_id!r} is registered twice")
        self._clients[record.client_id] = record

    def __len__(self) -> int:
        return len(self._clients)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._clients

    @property
    def clients(self) -> tuple[ClientRecord, ...]:
        """All records, in registration order."""
        return tuple(self._clients.values())

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        *,
        role: str,
        scopes: Iterable[str] | None = None,
        ven_id: str | None = None,
    ) -> ClientRecord:
        """Register a client; its secret is hashed at once and not kept."""
        if not client_id:
            raise ValueError("client_id: must not be empty")
        checked_role = _check_role(role, policy=self.policy)
        granted = (
            self.policy.default_scopes[checked_role]
            if scopes is None
            else _check_scopes(scopes, "scopes", self.policy)
        )
        record = ClientRecord(client_id, hash_secret(client_secret), checked_role, granted, ven_id)
        self._add(record)
        return record

    def authenticate(self, client_id: str, client_secret: str) -> ClientRecord:
        """Check a client's credentials.

        Raises
        ------
        TokenInvalidError
            Unknown client or wrong secret — the same message, and the same scrypt work, for
            both, so neither the answer nor its timing reveals which client ids exist.
        """
        record = self._clients.get(client_id)
        if record is None:
            if self._dummy_hash is None:
                self._dummy_hash = hash_secret(secrets.token_urlsafe(32))
            verify_secret(client_secret, self._dummy_hash)
            raise TokenInvalidError("invalid client credentials")
        if not verify_secret(client_secret, record.secret_hash):
            raise TokenInvalidError("invalid client credentials")
        return record

    def token_service(
        self,
        issuer: str,
        *,
        ttl_s: int = 300,
        audience: str = "drready-vtn",
        clock: Clock = time.time,
    ) -> TokenService:
        """A :class:`TokenService` using the registry's signing key."""
        if self.signing_key is None:
            raise ValueError(_missing_key_message())
        return TokenService(
            issuer,
            self.signing_key,
            algorithm=self.algorithm,
            ttl_s=ttl_s,
            audience=audience,
            clock=clock,
            policy=self.policy,
        )

    def dumps(self, fmt: Literal["json", "toml"] = "toml") -> str:
        """The registry file text (hashes only; the signing key is never written)."""
        records = [r.to_json() for r in self.clients]
        if fmt == "json":
            return json.dumps({"clients": records}, indent=2) + "\n"
        lines = ["# drready OAuth2 clients (S1); secrets are stored as scrypt hashes only", ""]
        for data in records:
            lines.append("[[clients]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in data.items()]
            lines.append("")
        return "\n".join(lines)

    def save(self, path: Path, *, overwrite: bool = False) -> None:
        """Write the registry to ``path`` (``.json`` or ``.toml``) with mode 0600."""
        fmt: Literal["json", "toml"] = "json" if path.suffix == ".json" else "toml"
        write_private_file(path, self.dumps(fmt).encode("utf-8"), overwrite=overwrite)


def _missing_key_message() -> str:
    return (
        f"{ENV_TOKEN_KEY}: no token signing key configured. Set {ENV_TOKEN_KEY} to a random "
        "secret of at least 32 bytes, e.g. "
        f"export {ENV_TOKEN_KEY}=$(python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
        f"or set {ENV_TOKEN_KEY_FILE} to a mode-0600 file outside the repository holding it "
        f"(an EC P-256 PEM private key with {ENV_TOKEN_ALG}=ES256)"
    )


def _outside_repo(path: Path, argument: str) -> None:
    repo = git_work_tree(path)
    if repo is not None:
        raise ValueError(
            f"{argument}: {path} is inside the git work tree {repo}; keep credentials and keys "
            "outside the repository"
        )


def _read_signing_key(env: Mapping[str, str]) -> tuple[bytes | str, str]:
    algorithm = env.get(ENV_TOKEN_ALG, "HS256")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{ENV_TOKEN_ALG}: must be one of {ALGORITHMS}, got {algorithm!r}")
    key: bytes | str | None = env.get(ENV_TOKEN_KEY) or None
    key_file = env.get(ENV_TOKEN_KEY_FILE)
    if key is None and key_file:
        path = Path(key_file).expanduser()
        _outside_repo(path, ENV_TOKEN_KEY_FILE)
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ValueError(
                    f"{ENV_TOKEN_KEY_FILE}: {path} is readable by others; chmod 600 it"
                )
            key = path.read_bytes().strip()
        except OSError as err:
            raise ValueError(f"{ENV_TOKEN_KEY_FILE}: cannot read {path}: {err.strerror}") from err
    if not key:
        raise ValueError(_missing_key_message())
    return key, algorithm


def _parse_clients(
    text: str, fmt: Literal["json", "toml"], source: str, policy: ScopePolicy = OPENADR_POLICY
) -> list[ClientRecord]:
    try:
        doc: object = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{source}: not valid {fmt.upper()}: {err}") from err
    if not isinstance(doc, Mapping) or not isinstance(doc.get("clients"), list):
        raise ValueError(f"{source}: needs a top-level 'clients' list")
    try:
        return [_record_from_mapping(item, i, policy) for i, item in enumerate(doc["clients"])]
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err


def load_registry(
    path: Path | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    policy: ScopePolicy = OPENADR_POLICY,
) -> ClientRegistry:
    """Load the client registry and the token signing key.

    Parameters
    ----------
    path : Path, optional
        Registry file (JSON or TOML, see the module docstring); default
        ``$DRREADY_CLIENTS_FILE``, else inline JSON in ``$DRREADY_CLIENTS_JSON``. The file must
        lie outside any git work tree.
    env : mapping
        Environment (``DRREADY_TOKEN_KEY``/``_KEY_FILE``/``_ALG``, ``DRREADY_CLIENTS_*``).
    policy : ScopePolicy
        The scopes and roles the records may name (:data:`OPENADR_POLICY` for the VTN).

    Raises
    ------
    ValueError
        No signing key (with instructions), no clients configured, or a malformed file; the
        message names the variable or the record field.
    """
    key, algorithm = _read_signing_key(env)
    if path is None and env.get(ENV_CLIENTS_FILE):
        path = Path(env[ENV_CLIENTS_FILE])
    if path is not None:
        path = path.expanduser()
        _outside_repo(path, ENV_CLIENTS_FILE)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ValueError(f"{ENV_CLIENTS_FILE}: cannot read {path}: {err.strerror}") from err
        fmt: Literal["json", "toml"] = "json" if path.suffix == ".json" else "toml"
        records = _parse_clients(text, fmt, str(path), policy)
    elif env.get(ENV_CLIENTS_JSON):
        records = _parse_clients(env[ENV_CLIENTS_JSON], "json", ENV_CLIENTS_JSON, policy)
    else:
        raise ValueError(
            f"{ENV_CLIENTS_FILE}: no OAuth2 clients configured; point {ENV_CLIENTS_FILE} at a "
            "JSON/TOML registry outside the repository (see example_clients_file())"
        )
    registry = ClientRegistry(records, signing_key=key, algorithm=algorithm, policy=policy)
    registry.token_service("drready-check")  # fail now, not on the first token request
    return registry


def example_clients_file() -> str:
    """An example registry file (TOML) for the docs. The hashes are placeholders and are
    rejected by :func:`load_registry` until replaced."""
    return (
        "# drready OAuth2 client registry (S1). Keep this file OUTSIDE the repository, mode 0600,\n"
        "# and point DRREADY_CLIENTS_FILE at it. Store only hashes of the client secrets:\n"
        '#   python -c "import secrets; print(secrets.token_urlsafe(32))"   # a new secret\n'
        '#   python -c "import sys; from drready.security.tokens import hash_secret; '
        'print(hash_secret(sys.stdin.readline().strip()))"   # its hash\n'
        "# The token signing key goes into DRREADY_TOKEN_KEY (or DRREADY_TOKEN_KEY_FILE).\n"
        "\n"
        "[[clients]]\n"
        'client_id = "dr-servicer"\n'
        'secret_hash = "PLACEHOLDER-replace-with-hash_secret-output"\n'
        'role = "bl"\n'
        f"scopes = {json.dumps(sorted(BL_SCOPES))}\n"
        "\n"
        "[[clients]]\n"
        'client_id = "maker-cloud-1"\n'
        'secret_hash = "PLACEHOLDER-replace-with-hash_secret-output"\n'
        'role = "ven"\n'
        f"scopes = {json.dumps(sorted(VEN_SCOPES))}\n"
        'ven_id = "ven-maker-cloud-1"\n'
    )
