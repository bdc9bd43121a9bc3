"""Who may call the servicer's north-bound API: its own OAuth2 scopes and roles (S1; issue 11
item 2: the same client-credentials/JWT machinery as the VTN, its own scopes).

The machinery is the VTN's (:mod:`drready.security.tokens`: a client registry file outside the
repository with scrypt-hashed secrets, short-lived signed JWTs; the token endpoint of
:mod:`drready.openadr.vtn.routes.auth` with its throttle and lockout), given this API's
:data:`SERVICER_POLICY` and :data:`AUDIENCE`, so a VTN token is never accepted here nor a
servicer token at the VTN, even if an operator used one signing key for both.

=====================  ===============================================================
scope                  allows
=====================  ===============================================================
``orders:write``       ``POST /api/v1/orders``
``orders:read``        ``GET /api/v1/orders``, ``GET /api/v1/orders/{id}``
``portfolio:read``     ``GET /api/v1/portfolio/potential``
``settlements:read``   ``GET /api/v1/settlements/{date}``
``meter:write``        ``POST /api/v1/meter-readings``
=====================  ===============================================================

Roles and their default scopes (a registry record may list fewer or others): ``trader`` (the
aggregator's trading desk or market system: orders, portfolio, settlements), ``meter`` (a meter
data provider: the grid operator's 30-minute smart-meter data) and ``viewer`` (read only).
"""

from __future__ import annotations

from drready.security.tokens import ScopePolicy

__all__ = [
    "AUDIENCE",
    "METER_WRITE",
    "ORDERS_READ",
    "ORDERS_WRITE",
    "PORTFOLIO_READ",
    "SERVICER_POLICY",
    "SETTLEMENTS_READ",
]

ORDERS_WRITE = "orders:write"
ORDERS_READ = "orders:read"
PORTFOLIO_READ = "portfolio:read"
SETTLEMENTS_READ = "settlements:read"
METER_WRITE = "meter:write"

#: ``aud`` of the API's tokens (the VTN's is ``drready-vtn``).
AUDIENCE = "drready-servicer"

SERVICER_POLICY = ScopePolicy(
    scopes=frozenset({ORDERS_WRITE, ORDERS_READ, PORTFOLIO_READ, SETTLEMENTS_READ, METER_WRITE}),
    default_scopes={
        "trader": frozenset({ORDERS_WRITE, ORDERS_READ, PORTFOLIO_READ, SETTLEMENTS_READ}),
        "meter": frozenset({METER_WRITE}),
        "viewer": frozenset({ORDERS_READ, PORTFOLIO_READ, SETTLEMENTS_READ}),
    },
)
"""The scopes of the servicer's API and its roles with their default scopes."""
