"""Schema migrations (Alembic), callable from the CLI and from tests."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    return script.get_current_head() or ""


async def upgrade(db: Database, to: str = "head") -> None:
    """Bring the database to the newest schema (or to revision `to`)."""
    await _run(db, command.upgrade, to)


async def downgrade(db: Database, to: str) -> None:
    """Take the database back to revision `to`, converting its data on the way."""
    await _run(db, command.downgrade, to)


async def _run(db: Database, step, to: str) -> None:  # type: ignore[no-untyped-def]
    cfg = _alembic_config(db.url)

    def _go(conn) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = conn
        step(cfg, to)

    async with db.engine.begin() as conn:
        await conn.run_sync(_go)


async def current_revision(db: Database) -> str | None:
    def _rev(conn) -> str | None:  # type: ignore[no-untyped-def]
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_rev)


async def check_current(db: Database) -> str | None:
    """None when the schema is current; otherwise what is wrong, for the operator."""
    try:
        rev = await current_revision(db)
    except Exception as exc:  # unreachable server, bad credentials
        return f"cannot reach the database: {exc.__class__.__name__}: {exc}"
    head = head_revision()
    if rev is None:
        return "the database has no schema yet: run `dongxian db upgrade --config FILE` first"
    if rev != head:
        return f"the database schema is at {rev}, this version needs {head}: run `dongxian db upgrade --config FILE`"
    return None
