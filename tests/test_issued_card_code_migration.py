"""Migration 0005: the response codes WeCom returned, kept on outbox rows until now, move to the issued
cards they belong to (the latest copy's code wins); downgrade drops them again. SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import AsyncIterator

import pytest
from sqlalchemy import text

from store.db import Database
from store.migrate import current_revision, downgrade, upgrade
from tests.conftest import database_at

AT = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
async def old_db(db_url: str) -> AsyncIterator[Database]:
    async with database_at(db_url, "0004") as database:
        yield database


async def _card(conn, card_id: str, userid: str) -> None:  # type: ignore[no-untyped-def]
    await conn.execute(text(
        "INSERT INTO issued_card (id, tenant, userid, kind, data, card, state, created_at, expires_at)"
        " VALUES (:id, 'acme', :userid, 'witness_invite', '{}', '{}', 'open', :at, :at)"),
        {"id": card_id, "userid": userid, "at": AT})


async def _sent(conn, n: int, userid: str, card_id: str, ref: str, status: str = "sent") -> None:  # type: ignore[no-untyped-def]
    payload = json.dumps({"kind": "card", "card": {"id": card_id, "title": "见证邀请"}})
    await conn.execute(text(
        "INSERT INTO outbox (id, tenant, platform, userid, payload, status, attempts, created_at, next_attempt_at,"
        " last_error, platform_ref) VALUES (:id, 'acme', 'wecom', :userid, :payload, :status, 1, :at, :at, '', :ref)"),
        {"id": n, "userid": userid, "payload": payload, "status": status, "at": AT, "ref": ref})


async def _codes(db: Database) -> list[tuple[str, str, str]]:
    async with db.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(  # type: ignore[misc]
            "SELECT id, response_code, response_task_id FROM issued_card ORDER BY id"))).all()]


async def test_codes_move_from_outbox_rows_to_their_cards_and_back_out(old_db: Database) -> None:
    async with old_db.engine.begin() as conn:
        await _card(conn, "c1", "wangqiang")
        await _card(conn, "c2", "li_na")
        await _card(conn, "c3", "zhaolei")
        await _sent(conn, 1, "wangqiang", "c1", "msg1|rc:CODE1|task:c1_1-a")
        await _sent(conn, 2, "wangqiang", "c1", "msg2|rc:CODE2|task:c1_2-b")  # sent afresh: this copy counts
        await _sent(conn, 3, "li_na", "c2", "msg3")  # no code (a text-only fallback)
        await _sent(conn, 4, "zhaolei", "c2", "msg4|rc:CODE4|task:c2_4-c")  # someone else's copy of c2
        await _sent(conn, 5, "zhaolei", "c3", "msg5|rc:CODE5|task:c3_5-d", status="dead")  # never delivered
    await upgrade(old_db, to="0005")
    assert await current_revision(old_db) == "0005"
    assert await _codes(old_db) == [("c1", "CODE2", "c1_2-b"), ("c2", "", ""), ("c3", "", "")]

    await downgrade(old_db, "0004")
    async with old_db.engine.connect() as conn:
        with pytest.raises(Exception):
            await conn.execute(text("SELECT response_code FROM issued_card"))
    # … and up again, through the later revisions, to head.
    await upgrade(old_db)
    assert (await _codes(old_db))[0] == ("c1", "CODE2", "c1_2-b")
