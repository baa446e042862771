"""Engine, sessions and the few SQL idioms that differ between SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import errno
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.core.files import FILE_MODE, private_dir


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        u = make_url(url)
        self.dialect = u.get_backend_name()
        # hide_parameters: a failing statement's error would otherwise quote its parameters,
        # i.e. whole inbox payloads (people's messages, DingTalk sessionWebhook URLs), into the log.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.dialect == "sqlite":
            if u.database and u.database != ":memory:":
                private_dir(Path(u.database).parent)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            if u.database and u.database != ":memory:":
                event.listen(self.engine.sync_engine, "connect", _owner_only(u.database))
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        # SQLite has one writer. Its busy handler retries by sleeping, not in turn, so
        # under load a writer can lose again and again (the inbox stalled for seconds
        # behind the dispatcher). Writers of this process queue here instead, in order.
        self._write_turn = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as s:
            yield s

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on error."""
        if self._write_turn is not None:
            async with self._write_turn:
                async with self._transaction() as s:
                    yield s
        else:
            async with self._transaction() as s:
                yield s

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as s:
            async with s.begin():
                if self.dialect == "sqlite":
                    # Take the write lock up front: a deferred transaction that reads and then
                    # writes fails at once with SQLITE_BUSY when another writer got in between,
                    # whereas BEGIN IMMEDIATE simply waits (busy_timeout) for its turn.
                    await s.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
                yield s

    async def recover(self) -> None:
        """Drop pooled connections after an operational error, so the next work opens fresh ones.

        A PostgreSQL connection opened while the database was read-only stays read-only after the
        database is writable again (default_transaction_read_only is read at connect), and a
        connection the server dropped is useless: without this the dispatcher stayed wedged.
        """
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as c:
                await c.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (so it can be IMMEDIATE).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets the console read while the dispatcher writes; busy_timeout makes a
    # second writer wait instead of failing with "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _owner_only(path: str) -> Any:
    """The database and its WAL and shared-memory files hold everything: 0600, whatever the umask."""
    def chmod(_conn: Any, _record: Any) -> None:
        for p in (path, f"{path}-wal", f"{path}-shm"):
            try:
                os.chmod(p, FILE_MODE)
            except FileNotFoundError:
                pass
    return chmod


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def insert_ignore(session: AsyncSession, table: Any, values: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for either dialect (returns the statement)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return ins(table).values(**values).on_conflict_do_nothing()


async def try_insert(session: AsyncSession, model: Any, values: dict[str, Any]) -> bool:
    """Insert a row unless a unique key already holds it; True if this call inserted it."""
    stmt = insert_ignore(session, model.__table__, values)
    result = await session.execute(stmt)
    return bool(result.rowcount)


async def claim_rows(db: Database, model: Any, due: Any, claimed: dict[str, Any], *, limit: int) -> list[Any]:
    """Mark up to `limit` rows matching `due` with `claimed` and return them, oldest first.

    This is how several processes share the inbox and the outbox: on PostgreSQL
    rows another transaction holds are skipped (SKIP LOCKED); SQLite has one
    writer at a time (BEGIN IMMEDIATE), so its claims never overlap either.
    """
    from sqlalchemy import select, update

    async with db.transaction() as s:
        q = select(model.id).where(due).order_by(model.id).limit(limit)
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True)
        ids = list((await s.execute(q)).scalars())
        if not ids:
            return []
        await s.execute(update(model).where(model.id.in_(ids)).values(**claimed))
        rows = await s.execute(select(model).where(model.id.in_(ids)).order_by(model.id))
        return list(rows.scalars())


# SQLSTATE classes and codes that mean "the database cannot take this now", not "this is wrong":
# 08 connection, 53 insufficient resources (53100 disk full), 57 operator intervention (shutdown,
# query cancelled), 58 system error, 25006 read-only transaction, 40001 serialization, 40P01
# deadlock, 55P03 lock not available, HV/XX internal.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "58", "XX")
_TRANSIENT_SQLSTATES = ("25006", "40001", "40P01", "55P03", "55006")
# SQLite says it in words (sqlite3 gives no SQLSTATE).
_TRANSIENT_SQLITE = ("database or disk is full", "readonly database", "read-only", "database is locked",
                     "disk i/o error", "unable to open database", "database table is locked", "no space left")


_TRANSIENT_ERRNOS = {getattr(errno, n) for n in ("ENOSPC", "EROFS", "EIO", "EDQUOT", "EAGAIN", "ECONNREFUSED",
                                                  "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH") if hasattr(errno, n)}


def is_transient(exc: BaseException) -> bool:
    """Did this fail because the database could not take the work now (full, read-only, gone, locked)?

    Such a failure says nothing about the event being handled; it must be retried, never given up.
    """
    from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (DisconnectionError, PoolTimeout, ConnectionError, TimeoutError)):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        code = str(getattr(exc, "sqlstate", "") or getattr(getattr(exc, "orig", None), "sqlstate", "") or "")
        if code and (code[:2] in _TRANSIENT_SQLSTATE_CLASSES or code in _TRANSIENT_SQLSTATES):
            return True
        if isinstance(exc, OperationalError) or type(exc).__name__ == "OperationalError":
            text = str(exc).lower()
            if any(w in text for w in _TRANSIENT_SQLITE):
                return True
        if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False
