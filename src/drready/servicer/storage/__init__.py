"""The servicer's storage (D5, D6, S1, F1–F5, U1): SQLAlchemy 2 tables (``db``), the alembic
migrations shipped in the package (``migrations``), one store per record group — potentials
(``potentials``), dispatches and answers (``dispatches``, their life as transition tables in
``lifecycle``), readings and meter slots (``readings``), command following (``tracking``),
processed reports (``reports``) — behind the façade ``store.ServicerStore``, with shared input
checks (``validation``), and the registry of resources with their sealed market registration
data (``registry``, ``crypto``).
"""
