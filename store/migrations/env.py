"""Alembic environment: runs migrations over the app's async engine."""
from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import store.models  # noqa: F401  (registers the tables)
import store.external_events  # noqa: F401
import store.trace  # noqa: F401
import store.competencies  # noqa: F401  (the competency tables)
import store.contributions  # noqa: F401  (contributions and reward suggestions)
import store.profiles  # noqa: F401  (role capability profiles)

config = context.config
target_metadata = SQLModel.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


conn = config.attributes.get("connection")
if conn is not None:
    _run(conn)
else:
    asyncio.run(_online())
