"""Security building blocks: authenticate and encrypt every interconnection (S1).

- :mod:`drready.security.certs` — a local CA and leaf certificates for development and tests.
- :mod:`drready.security.tls` — server/client :class:`ssl.SSLContext` and uvicorn TLS settings.
- :mod:`drready.security.tokens` — OAuth2 client-credentials tokens (signed JWTs) and the
  client registry holding hashed client secrets.
- :mod:`drready.security.settings` — validated security settings from ``DRREADY_*`` variables.
- :mod:`drready.security.limits` — an ASGI middleware capping request body size (413).
- :mod:`drready.security.strict_json` — RFC 8259 JSON only: no NaN/Infinity, finite numbers of
  bounded length, bounded nesting, no NUL; errors name the field.
- :mod:`drready.security.throttle` — per-address and per-client throttling and lockout of the
  token endpoint (no I/O).
- :mod:`drready.security.verify_pool` — secret verification (scrypt) in one low-priority thread
  with a bounded queue.
- :mod:`drready.security.files` — private files (0600) and directories (0700).
- :mod:`drready.security.paths` — where secrets may live (outside any git work tree).
- :mod:`drready.security.listen` — listen addresses judged by what they bind.
- :mod:`drready.security.operators` — the servicer's human operators: a 0600 password file of
  scrypt hashes outside the repository.
- :mod:`drready.security.sessions` — signed session cookies and CSRF tokens for them, the key
  in the service's state directory.

Nothing here ships a key, a secret or a default credential: keys are generated on demand or read
from files and environment variables kept outside the repository.
"""
