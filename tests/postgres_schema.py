"""A schema of its own in the PostgreSQL database the tests are given, for one test's store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from chatops_core.store.repository import normalize_database_url

# The PostgreSQL database the store tests also run on, when set (CI sets it).
PG_ENV = "CHATOPS_TEST_DATABASE_URL"


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """The URL of a new schema (``<prefix>_<random>``) in the database :data:`PG_ENV` names,
    dropped with everything in it afterwards. Every connection made with the URL, in any
    process, sees only that schema, so runs at once do not meet."""
    base = normalize_database_url(os.environ[PG_ENV])
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
