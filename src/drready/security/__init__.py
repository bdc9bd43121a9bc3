"""Security building blocks: authenticate and encrypt every interconnection (S1).

- :mod:`drready.security.certs` — a local CA and leaf certificates for development and tests.
- :mod:`drready.security.tls` — server/client :class:`ssl.SSLContext` and uvicorn TLS settings.
- :mod:`drready.security.tokens` — OAuth2 client-credentials tokens (signed JWTs) and the
  client registry holding hashed client secrets.
- :mod:`drready.security.settings` — validated security settings from ``DRREADY_*`` variables.
- :mod:`drready.security.limits` — an ASGI middleware capping request body size (413).

Nothing here ships a key, a secret or a default credential: keys are generated on demand or read
from files and environment variables kept outside the repository.
"""
