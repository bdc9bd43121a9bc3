"""Revision scripts of the servicer schema, oldest first (``0001_initial`` …).

A package so that an installed wheel carries them; alembic skips this ``__init__`` file.
"""
