"""Settings of the OpenADR 3.1 VTN, the DR servicer's server (C1: route ii northbound; S1).

One validated object, passed to :func:`drready.openadr.vtn.app.create_app`; nothing is read at
import time, so tests build one app per database (SQLite file or PostgreSQL schema).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drready.security.settings import MAX_BODY_MAX, MAX_BODY_MIN
from drready.security.throttle import TokenThrottleSettings
from drready.security.tokens import TTL_MAX_S, TTL_MIN_S, ClientRegistry, TokenService

__all__ = ["PAGE_LIMIT_MAX", "VtnSettings"]

PAGE_LIMIT_MAX = 50
"""openadr3.yaml: ``limit`` has ``maximum: 50`` on every list operation."""


class VtnSettings(BaseModel):
    """What a VTN instance needs besides its client registry and token service.

    Attributes
    ----------
    database_url : str
        SQLAlchemy URL: ``sqlite:///path.db`` (default, a file in the working directory) or
        ``postgresql+psycopg://user@host/db``.
    base_url : str
        The public base URL of the VTN (``https://vtn.example.jp/openadr3``); ``GET
        /auth/server`` answers ``base_url + "/auth/token"``.
    max_body_bytes : int
        Largest accepted request body [B] (413 beyond it).
    page_limit_max : int
        Largest ``limit`` and the default page size; the spec's maximum is 50.
    token_ttl_s : int
        Access-token lifetime [s] for :meth:`token_service`.
    mqtt_broker_url : str or None
        The MQTT broker the VTN publishes notifications to and announces in ``GET /notifiers``
        (``mqtts://broker.example.jp:8883``; ``mqtt://`` only for a development broker).
        ``None`` (default): the MQTT notifier binding is not offered.
    mqtt_username : str or None
        The VTN's own user name at the broker, the CN of its client certificate (default
        ``drready-vtn`` with ``mqtt_ca_key_file``).
    mqtt_ca_file : str or None
        CA bundle that signed an ``mqtts://`` broker's certificate (default: the system's);
        with ``mqtt_ca_key_file``, the broker CA of ``drready vtn mqtt-config``.
    mqtt_ca_key_file : str or None
        The broker CA's private key (0600, outside the repository): ``GET /notifiers`` then
        announces ``CERTIFICATE`` authentication and gives each client its certificate (CN =
        its client id), and the VTN publishes with its own
        (:mod:`drready.openadr.vtn.mqtt_certs`). ``None``: ``ANONYMOUS`` (a development
        broker).
    mqtt_cert_dir : str or None
        Where the issued client keys and certificates are kept (0700); default ``issued/``
        next to ``mqtt_ca_key_file``.
    allow_private_callbacks : bool
        Accept webhook callback URLs that resolve to loopback, private, link-local or other
        non-public addresses (local tests); refused by default (400 naming ``callbackUrl``:
        the SSRF guard of :mod:`drready.openadr.vtn.webhooks`).
    callback_ca_file : str or None
        CA bundle to verify callback servers' certificates with (a private PKI, tests); default
        the system's CAs.
    strict_input : bool
        Refuse request bodies with properties the VTN does not know (400 naming them).
        ``False`` (default): they are dropped before validation, never stored, and logged in
        one line (Definition.md "Required and optional properties" lets a VTN ignore them;
        3.0-era clients send ``programID`` on reports).
    token_throttle : TokenThrottleSettings
        Rate limits and lockout of ``POST /auth/token``
        (:class:`drready.security.throttle.TokenThrottleSettings`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = "sqlite:///drready-vtn.db"
    base_url: Annotated[str, Field(min_length=1)] = "https://127.0.0.1:8443"
    max_body_bytes: Annotated[int, Field(ge=MAX_BODY_MIN, le=MAX_BODY_MAX)] = 1_048_576
    page_limit_max: Annotated[int, Field(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT_MAX
    token_ttl_s: Annotated[int, Field(ge=TTL_MIN_S, le=TTL_MAX_S)] = 300
    mqtt_broker_url: Annotated[str, Field(pattern=r"^mqtts?://[^/?#\s]+/?$")] | None = None
    mqtt_username: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")] | None = None
    mqtt_ca_file: str | None = None
    mqtt_ca_key_file: str | None = None
    mqtt_cert_dir: str | None = None
    allow_private_callbacks: bool = False
    callback_ca_file: str | None = None
    strict_input: bool = False
    token_throttle: TokenThrottleSettings = TokenThrottleSettings()

    @model_validator(mode="after")
    def _certificate_mode(self) -> VtnSettings:
        if self.mqtt_ca_key_file is None:
            return self
        if self.mqtt_ca_file is None:
            raise ValueError("mqtt_ca_file: the broker CA's certificate goes with mqtt_ca_key_file")
        if self.mqtt_broker_url is None or not self.mqtt_broker_url.startswith("mqtts://"):
            raise ValueError("mqtt_broker_url: certificate authentication needs mqtts://")
        return self

    @property
    def token_url(self) -> str:
        """The token endpoint announced by ``GET /auth/server``."""
        return self.base_url.rstrip("/") + "/auth/token"

    def token_service(self, registry: ClientRegistry) -> TokenService:
        """A :class:`TokenService` signing with the registry's key, issuer ``base_url``."""
        return registry.token_service(self.base_url, ttl_s=self.token_ttl_s)
