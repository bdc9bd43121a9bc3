"""The servicer's web side: the north-bound API and its scopes (``api``, ``auth``), the app the
running service serves (``app``: API, token endpoint, dashboard, health, metrics), the operator
dashboard (page, JSON API, self-contained report) and the snapshot it is drawn from (U1, U2, S1).
"""
