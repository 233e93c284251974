"""Alembic migrations of the incident store (``env.py`` and ``versions/``).

A package so that ``env.py`` ships with the installed distribution; run the migrations
with :meth:`chatops_core.store.IncidentStore.upgrade`.
"""
