"""What a platform returned for an issued card, kept with the card.

WeCom answers message/send of an interactive card with a response code: the one way to update
that card before anyone presses it (a press brings a code of its own). Each code works once and
for 72 hours (WWdoc 90313), so it is kept for the copy last sent and cleared once spent.
"""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.models import IssuedCard


async def keep_response_code(session: AsyncSession, *, tenant: str, card_id: str, userid: str, code: str,
                             task_id: str) -> None:
    """The code and task_id of the copy of `card_id` just sent to `userid` (a later copy replaces them)."""
    await session.execute(update(IssuedCard).where(
        col(IssuedCard.tenant) == tenant, col(IssuedCard.id) == card_id, col(IssuedCard.userid) == userid)
        .values(response_code=code, response_task_id=task_id))


async def response_code(session: AsyncSession, *, tenant: str, card_id: str, userid: str) -> tuple[str, str]:
    """(code, task_id) of the copy of `card_id` sent to `userid`; ("", "") when there is none or it is spent."""
    row = (await session.execute(select(IssuedCard.response_code, IssuedCard.response_task_id).where(
        col(IssuedCard.tenant) == tenant, col(IssuedCard.id) == card_id, col(IssuedCard.userid) == userid))).first()
    return (row[0], row[1]) if row and row[0] else ("", "")


async def spend_response_code(session: AsyncSession, *, tenant: str, card_id: str, userid: str, code: str) -> None:
    """The kept code, once used (or refused as used or expired), is never tried again, by any process.
    A press's own code is not the kept one and leaves it as it is."""
    await session.execute(update(IssuedCard).where(
        col(IssuedCard.tenant) == tenant, col(IssuedCard.id) == card_id, col(IssuedCard.userid) == userid,
        col(IssuedCard.response_code) == code).values(response_code=""))
