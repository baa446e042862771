"""Shared fixtures: a migrated database on SQLite and, when available, PostgreSQL.

PostgreSQL tests run against the server named by DONGXIAN_TEST_PG (a
postgresql+asyncpg:// URL to any database on it; each test gets a fresh
database of its own). Without it they are skipped, unless
DONGXIAN_REQUIRE_PG=1 (set by CI), where a missing server is a failure.
"""
from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

import handlers.routes  # noqa: F401  (the features declare their config sections on import)
from store.db import Database
from store.migrate import upgrade

PG_URL = os.environ.get("DONGXIAN_TEST_PG", "")
REQUIRE_PG = os.environ.get("DONGXIAN_REQUIRE_PG") == "1"


def pg_available() -> bool:
    return bool(PG_URL)


async def _admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server's maintenance database."""
    import asyncpg

    base = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username,
        password=base.password, database=base.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_pg_database() -> str:
    name = "dx_" + uuid.uuid4().hex[:16]
    await _admin(f'CREATE DATABASE "{name}"')
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(url: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A URL for an empty database of each kind (the PostgreSQL one made on demand)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/dongxian.db"
    if not pg_available():
        if REQUIRE_PG:
            pytest.fail("DONGXIAN_REQUIRE_PG=1 but DONGXIAN_TEST_PG is not set")
        pytest.skip("PostgreSQL not configured (set DONGXIAN_TEST_PG; .ci/start-postgres prints it)")
    return "postgres"


@asynccontextmanager
async def database_at(db_url: str, revision: str = "head") -> AsyncIterator[Database]:
    """An empty database of `db_url`'s kind, migrated to `revision` (a migration's test starts before it)."""
    url = await _create_pg_database() if db_url == "postgres" else db_url
    database = Database(url)
    await upgrade(database, to=revision)
    try:
        yield database
    finally:
        await database.close()
        if db_url == "postgres":
            await _drop_pg_database(url)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database; SQLite and PostgreSQL."""
    async with database_at(db_url) as database:
        yield database


@pytest.fixture
async def sqlite_db(tmp_path) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    """A migrated SQLite database, for tests that are about logic, not the store."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/dongxian.db")
    await upgrade(database)
    try:
        yield database
    finally:
        await database.close()
