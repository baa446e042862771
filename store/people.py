"""People's names by user id, for lists and sheets that show many at once (one query, not one each)."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.models import Employee


async def names_of(session: AsyncSession, tenant: str, userids: Iterable[str] | None = None) -> dict[str, str]:
    """userid → name of one tenant's people (only `userids` when given); a caller shows the bare id
    of someone not on the roster."""
    stmt = select(Employee.userid, Employee.name).where(col(Employee.tenant) == tenant)
    if userids is not None:
        ids = sorted({u for u in userids if u})
        if not ids:
            return {}
        stmt = stmt.where(col(Employee.userid).in_(ids))
    return {u: n for u, n in (await session.execute(stmt)).all()}
