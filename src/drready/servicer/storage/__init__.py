"""The servicer's storage: SQLAlchemy 2 tables, the alembic migrations shipped in the package,
the store of its records (potentials, dispatches, responses, readings, meter slots) and the
registry of resources with their sealed market registration data (D5, S1).
"""
