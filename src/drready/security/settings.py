"""Security settings of a drready server or client, validated in one place (S1).

Sources, later ones winning: defaults, a JSON/TOML file outside the repository (argument or
``DRREADY_SECURITY_FILE``), then ``DRREADY_*`` environment variables:

===============================  ======================  ====================================
variable                         field                   meaning
===============================  ======================  ====================================
``DRREADY_CERT_FILE``            ``cert_file``           server certificate (PEM)
``DRREADY_KEY_FILE``             ``key_file``            server private key (PEM, 0600)
``DRREADY_CA_FILE``              ``ca_file``             CA bundle: trust anchor of clients,
                                                         client-certificate CA of servers
``DRREADY_CLIENT_CERT_FILE``     ``client_cert_file``    our client certificate (mTLS)
``DRREADY_CLIENT_KEY_FILE``      ``client_key_file``     its key
``DRREADY_REQUIRE_CLIENT_CERT``  ``require_client_cert`` servers demand client certificates
``DRREADY_INSECURE_HTTP``        ``insecure_http``       plain HTTP (local experiments only)
``DRREADY_MAX_BODY_BYTES``       ``max_body_bytes``      request body cap [B], 1 KiB–16 MiB
``DRREADY_TOKEN_TTL_S``          ``token_ttl_s``         access-token lifetime [s], 30–3600
``DRREADY_CLIENTS_FILE``         ``clients_file``        OAuth2 client registry
===============================  ======================  ====================================

Errors are one-line ``ValueError`` messages naming each bad field and its source (variable or
file), problems separated by ``; ``.
"""

from __future__ import annotations

import json
import os
import ssl
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drready.security.tls import UvicornSslKwargs, client_ssl_context, uvicorn_ssl_kwargs
from drready.security.tokens import TTL_MAX_S, TTL_MIN_S

__all__ = ["ENV_PREFIX", "ENV_SECURITY_FILE", "MAX_BODY_MAX", "MAX_BODY_MIN", "SecuritySettings"]

ENV_PREFIX = "DRREADY_"
ENV_SECURITY_FILE = "DRREADY_SECURITY_FILE"
MAX_BODY_MIN = 1024
MAX_BODY_MAX = 16 * 1024 * 1024


class SecuritySettings(BaseModel):
    """TLS, body-size and token settings (frozen, unknown keys rejected)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    require_client_cert: bool = False
    insecure_http: bool = False
    max_body_bytes: Annotated[int, Field(ge=MAX_BODY_MIN, le=MAX_BODY_MAX)] = 1_048_576
    token_ttl_s: Annotated[int, Field(ge=TTL_MIN_S, le=TTL_MAX_S)] = 300
    clients_file: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file must be given together")
        if self.require_client_cert and self.ca_file is None:
            raise ValueError("require_client_cert needs ca_file (the client-certificate CA)")
        if self.insecure_http and (self.cert_file is not None or self.require_client_cert):
            raise ValueError("insecure_http cannot be combined with cert_file/require_client_cert")
        return self

    @classmethod
    def load(
        cls, file: Path | None = None, env: Mapping[str, str] = os.environ
    ) -> SecuritySettings:
        """Build settings from a file (argument or ``DRREADY_SECURITY_FILE``) and ``env``."""
        data: dict[str, Any] = {}
        source: dict[str, str] = {}
        if file is None and env.get(ENV_SECURITY_FILE):
            file = Path(env[ENV_SECURITY_FILE])
        if file is not None:
            data.update(_read_file(file.expanduser()))
            source.update({k: str(file) for k in data})
        for name in cls.model_fields:
            variable = ENV_PREFIX + name.upper()
            if variable in env:
                data[name] = env[variable]
                source[name] = variable
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ValueError(_one_line_errors(err, source)) from None

    def require_tls_server(self) -> None:
        """Raise ``ValueError`` unless a server may start: TLS files set, or ``insecure_http``."""
        if not self.insecure_http and self.cert_file is None:
            raise ValueError(
                "cert_file: a server needs DRREADY_CERT_FILE and DRREADY_KEY_FILE "
                "(see `drready certs`), or --insecure-http for local experiments"
            )

    def uvicorn_kwargs(self) -> UvicornSslKwargs | dict[str, Any]:
        """uvicorn TLS arguments (empty when ``insecure_http``)."""
        self.require_tls_server()
        if self.insecure_http:
            return {}
        assert self.cert_file is not None and self.key_file is not None  # by the validators
        return uvicorn_ssl_kwargs(
            self.cert_file,
            self.key_file,
            client_ca=self.ca_file,
            require_client_cert=self.require_client_cert,
        )

    def client_context(self) -> ssl.SSLContext:
        """The client-side context (``ca_file`` trust, optional client certificate)."""
        if self.ca_file is None:
            raise ValueError("ca_file: a TLS client needs DRREADY_CA_FILE")
        return client_ssl_context(
            self.ca_file, cert=self.client_cert_file, key=self.client_key_file
        )


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"{ENV_SECURITY_FILE}: cannot read {path}: {err.strerror}") from err
    try:
        doc: object = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{ENV_SECURITY_FILE}: {path} is not valid JSON/TOML: {err}") from err
    if not isinstance(doc, dict):
        raise ValueError(f"{ENV_SECURITY_FILE}: {path} must hold a table/object")
    return doc


def _one_line_errors(err: ValidationError, source: Mapping[str, str]) -> str:
    parts = []
    for e in err.errors(include_url=False):
        field = ".".join(str(x) for x in e["loc"])
        where = f" ({source[field]})" if field in source else ""
        message = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{field}{where}: {message}" if field else message)
    return "; ".join(parts)
