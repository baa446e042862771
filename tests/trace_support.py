"""Shared pieces of the 自动留痕 tests: the rules a sales and a quality department would configure."""
from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, AsyncIterator

from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.demo import DATA
from bot.hooks import sign
from handlers.routes import build_router
from store.db import Database
from store.external_events import ExternalEvent
from store.roster import ensure_tenant, import_roster
from store.trace import Receivable, ResponseMeasure, TraceRecord
from tests.fakes.wecom_server import BotUnderTest, FakeWeCom, running_bot

CONTRACT_TEMPLATE = "3TkaH5KFbrG9heEQWLJjhgpFwmqAFB4dLEnapaB7aaa"
DEVIATION_PROCESS = "PROC-DEVIATION-01"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"crm-signing-key-0123456789abcdef").decode()
YIDA_KEY = "yida-static-key-0123456789"


def trace_section(**extra: Any) -> dict[str, Any]:
    return {
        "rules": [
            {"name": "合同回款", "source": "wecom_approval", "code": CONTRACT_TEMPLATE, "status": ["approved"],
             "effect": "receivable", "goal_code": "O1-KR1"},
            {"name": "偏差调查", "source": "dingtalk_oa", "code": DEVIATION_PROCESS, "type": "approval_task",
             "effect": "response", "sla_hours": 4},
            {"name": "CRM合同", "source": "crm", "type": "contract", "status": ["approved"], "effect": "receivable"},
            {"name": "宜搭巡检", "source": "yida", "effect": "trace"},
            {"name": "线下合同", "source": "sales_sheet", "status": ["approved"], "effect": "receivable"},
        ],
        "hooks": {"crm": {"mode": "standard", "secret": STANDARD_SECRET},
                  "yida": {"mode": "static", "secret": YIDA_KEY, "header": "X-Yida-Key"}},
        **extra,
    }


def signed(body: dict[str, Any], msg_id: str, when: datetime, secret: str = STANDARD_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    ts = str(int(when.timestamp()))
    return raw, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sign(secret, msg_id, ts, raw),
                 "Content-Type": "application/json"}


async def rows(db: Database, model: Any) -> list[Any]:
    async with db.session() as s:
        return list((await s.execute(select(model).order_by(model.id))).scalars())


async def events(db: Database) -> list[ExternalEvent]:
    return await rows(db, ExternalEvent)


async def receivables(db: Database) -> list[Receivable]:
    return await rows(db, Receivable)


async def responses(db: Database) -> list[ResponseMeasure]:
    return await rows(db, ResponseMeasure)


async def records(db: Database) -> list[TraceRecord]:
    return await rows(db, TraceRecord)


@asynccontextmanager
async def approval_fake() -> AsyncIterator[FakeWeCom]:
    """A fake WeCom with the applicant 张伟 and the approver 黄燕 in its directory."""
    f = FakeWeCom()
    for userid, name in (("zhangwei", "张伟"), ("huangyan", "黄燕")):
        f.add_user(userid, name)
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


@asynccontextmanager
async def approval_bot(db: Any, fake: FakeWeCom, now: datetime) -> AsyncIterator[BotUnderTest]:
    """The bot with the trace rules, on the demo roster, talking to `fake`."""
    async with running_bot(db, fake, FrozenClock(now), router=build_router(),
                           tenant_extra={"trace": trace_section()}) as b:
        await ensure_tenant(db, b.runtime.config.tenant("acme"))
        assert not (await import_roster(db, "acme", DATA / "roster.csv")).errors
        yield b
