"""Certificates and credentials of one ``drready stack up`` run, made in its private state
directory (S1: TLS everywhere, OAuth2 client credentials, no secret in the repository; issue 11
item 5).

:func:`make_credentials` writes, under the run's directory (0700, files 0600):

==============================  ===========================================================
``certs/``                      a local CA, the server certificate of every HTTPS service of
                                the run (``localhost``, 127.0.0.1, ::1) and their keys
                                (:func:`drready.security.certs.write_bundle`)
``vtn/clients.toml``            the VTN's OAuth2 client registry: scrypt hashes only
``api/clients.toml``            the servicer API's client registry (its own scopes), if the
                                run has a servicer API
``credentials/<party>.env``     what each party needs and nothing more, as ``KEY=value``
                                lines — the format of systemd's ``EnvironmentFile=``, so the
                                same files serve the units of ``docs/deploy/``
==============================  ===========================================================

Each party gets a random secret (``secrets.token_urlsafe``), each token service its own random
signing key. The children receive their values in their environment; the ``.env`` files are
there so an operator can use the running stack (``curl`` the servicer's API with the
``operator`` client) and see exactly what each service is given.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from drready.security.certs import CertBundle, write_bundle
from drready.security.tokens import (
    ENV_CLIENTS_FILE,
    ENV_TOKEN_KEY,
    OPENADR_POLICY,
    READ_ALL,
    READ_BL,
    ClientRegistry,
    ScopePolicy,
)
from drready.sim.stack_state import RunDir

__all__ = [
    "ENV_CLIENT_SECRET",
    "OBSERVER",
    "Credentials",
    "env_file_text",
    "make_credentials",
]

#: The variable the VEN commands (`cloud serve`, `gateway serve`) read their secret from.
ENV_CLIENT_SECRET = "DRREADY_CLIENT_SECRET"
#: A read-only BL client of the VTN that the stack itself uses to check, from the VTN's side,
#: that every event was answered (scopes read_all and read_bl: it can change nothing).
OBSERVER = "stack-observer"


def env_file_text(values: Mapping[str, str]) -> str:
    """``KEY=value`` lines (systemd ``EnvironmentFile=``; the values here need no quoting).

    >>> env_file_text({"A": "1", "B": "x-y"})
    'A=1\\nB=x-y\\n'
    """
    for key, value in values.items():
        if not key.isidentifier() or any(c in value for c in "\n\"'\\ $`"):
            raise ValueError(f"{key}: not a plain KEY=value pair")
    return "".join(f"{k}={v}\n" for k, v in values.items())


@dataclass(frozen=True)
class Credentials:
    """What :func:`make_credentials` made.

    Attributes
    ----------
    certs : CertBundle
        CA, server certificate and key.
    secrets : mapping
        VTN client id → its secret.
    vtn_env : mapping
        The VTN's token key and registry file (``DRREADY_TOKEN_KEY``, ``DRREADY_CLIENTS_FILE``).
    api_secrets : mapping
        Servicer API client id → its secret.
    api_env : mapping
        The servicer API's token key and registry file.
    env_files : mapping
        Party → its ``.env`` file.
    """

    certs: CertBundle
    secrets: Mapping[str, str]
    vtn_env: Mapping[str, str]
    api_secrets: Mapping[str, str] = field(default_factory=dict)
    api_env: Mapping[str, str] = field(default_factory=dict)
    env_files: Mapping[str, Path] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        """Where the ``.env`` files are."""
        return self.certs.out_dir.parent / "credentials"


def _registry(
    clients: Mapping[str, tuple[str, frozenset[str] | None]],
    secrets_of: Mapping[str, str],
    key: str,
    policy: ScopePolicy,
) -> ClientRegistry:
    registry = ClientRegistry(signing_key=key.encode(), policy=policy)
    for cid, (role, scopes) in clients.items():
        registry.add_client(cid, secrets_of[cid], role=role, scopes=scopes)
    return registry


def make_credentials(
    run: RunDir,
    vtn_clients: Mapping[str, str],
    *,
    party_env: Mapping[str, Mapping[str, str]] | None = None,
    api_clients: Mapping[str, tuple[str, frozenset[str] | None]] | None = None,
    api_policy: ScopePolicy | None = None,
) -> Credentials:
    """Make the run's certificates and credentials (see the module docstring).

    Parameters
    ----------
    run : RunDir
        The run's private state directory.
    vtn_clients : mapping
        VTN client id → role (``"bl"``, ``"ven"``); the read-only :data:`OBSERVER` is added.
    party_env : mapping, optional
        Party → how its ``.env`` names its values: variable → ``"vtn:<client id>"`` (that
        client's secret), ``"api:<client id>"``, ``"vtn-env:<VAR>"``, ``"api-env:<VAR>"`` or
        ``"literal:<value>"``.
    api_clients : mapping, optional
        Servicer API client id → (role, scopes or None for the role's); with ``api_policy``.
    """
    certs = write_bundle(run.path / "certs", client_names=(), overwrite=True)
    clients: dict[str, tuple[str, frozenset[str] | None]] = {
        cid: (role, None) for cid, role in vtn_clients.items()
    }
    clients[OBSERVER] = ("bl", frozenset({READ_ALL, READ_BL}))
    vtn_secrets = {cid: secrets.token_urlsafe(32) for cid in clients}
    vtn_key = secrets.token_urlsafe(48)
    vtn_file = run.path / "vtn" / "clients.toml"
    run.write_secret(
        "vtn/clients.toml",
        _registry(clients, vtn_secrets, vtn_key, OPENADR_POLICY).dumps("toml").encode(),
    )
    vtn_env = {ENV_TOKEN_KEY: vtn_key, ENV_CLIENTS_FILE: str(vtn_file)}
    api_secrets: dict[str, str] = {}
    api_env: dict[str, str] = {}
    if api_clients:
        api_secrets = {cid: secrets.token_urlsafe(32) for cid in api_clients}
        api_key = secrets.token_urlsafe(48)
        api_file = run.path / "api" / "clients.toml"
        run.write_secret(
            "api/clients.toml",
            _registry(api_clients, api_secrets, api_key, api_policy or OPENADR_POLICY)
            .dumps("toml")
            .encode(),
        )
        api_env = {ENV_TOKEN_KEY: api_key, ENV_CLIENTS_FILE: str(api_file)}
    sources = {
        **{f"vtn:{k}": v for k, v in vtn_secrets.items()},
        **{f"api:{k}": v for k, v in api_secrets.items()},
        **{f"vtn-env:{k}": v for k, v in vtn_env.items()},
        **{f"api-env:{k}": v for k, v in api_env.items()},
    }
    env_files: dict[str, Path] = {}
    for party, names in (party_env or {}).items():
        values = {
            var: source.removeprefix("literal:")
            if source.startswith("literal:")
            else sources[source]
            for var, source in names.items()
        }
        env_files[party] = run.write_secret(
            f"credentials/{party}.env", env_file_text(values).encode()
        )
    return Credentials(
        certs=certs,
        secrets=vtn_secrets,
        vtn_env=vtn_env,
        api_secrets=api_secrets,
        api_env=api_env,
        env_files=env_files,
    )
