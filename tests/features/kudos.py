"""点赞 (kudos): a small feature that exists only for the tests, built from the public feature API alone.

It shows what a feature owns — and that adding one touches no shared file:
- a config section ([tenants.kudos_demo]);
- its texts, zh and en side by side;
- a command with its words (`点赞 @李娜 谢谢你帮我改方案`), with the access rule it follows;
- a card kind and a typed button (回赞) handled on whichever card carries it;
- a job (a 16:00 reminder on working days, once per person and day).
"""
from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import select

from bot.core.calendar import WorkCalendar
from bot.core.config import Section, TenantConfig
from cards.model import Button, Card
from cards.texts import register
from handlers.actions import CardAction
from handlers.context import Context
from handlers.people import tenant_directory
from handlers.router import Router
from schedules.registry import JobEnv, JobRegistry
from store.models import Employee, IssuedCard
from store.scheduled import claim_send


class KudosSettings(Section, name="kudos_demo"):
    """[tenants.kudos_demo]"""

    reminder_at: time = time(16, 0)
    max_words: int = 30


TEXTS = register({
    "kudos.usage": {"zh": "点赞格式：点赞 @同事 一句话", "en": "Kudos: kudos @colleague one sentence"},
    "kudos.unknown": {"zh": "没有找到 {token}", "en": "No one called {token}"},
    "kudos.self": {"zh": "不能给自己点赞", "en": "You cannot give yourself kudos"},
    "kudos.too_long": {"zh": "一句话就好（{n} 字以内）", "en": "One sentence is enough (up to {n} characters)"},
    "kudos.sent": {"zh": "已为 {name} 点赞", "en": "Kudos sent to {name}"},
    "kudos.card.title": {"zh": "{name} 为你点赞", "en": "{name} gave you kudos"},
    "kudos.btn.back": {"zh": "回赞", "en": "Thank back"},
    "kudos.back": {"zh": "{name} 回赞了你", "en": "{name} thanked you back"},
    "kudos.card.done": {"zh": "已回赞", "en": "Thanked back"},
    "kudos.reminder": {"zh": "今天有想感谢的同事吗？回复：点赞 @同事 一句话",
                       "en": "Anyone to thank today? Reply: kudos @colleague one sentence"},
})

router = Router("kudos")
jobs = JobRegistry()
KUDOS_CARD = "kudos"


class ThankBack(CardAction, prefix="kudos_back"):
    giver: str


@router.command("kudos", words=("点赞", "kudos"), args=True, access="own")
async def on_kudos(ctx: Context) -> None:
    token, _, why = ctx.args.partition(" ")
    token = token.removeprefix("@").strip()
    settings = KudosSettings.of(ctx.tenant)
    if not token or not why.strip():
        ctx.reply(ctx.t("kudos.usage"))
        return
    if len(why.strip()) > settings.max_words:
        ctx.reply(ctx.t("kudos.too_long", n=settings.max_words))
        return
    match = (await tenant_directory(ctx.session, ctx.tenant.key)).resolve(token)
    if match.status != "one" or match.person is None:
        ctx.reply(ctx.t("kudos.unknown", token=token))
        return
    if match.person.userid == ctx.event.userid:
        ctx.reply(ctx.t("kudos.self"))
        return
    me = ctx.me
    assert me is not None
    card = Card(title=ctx.t("kudos.card.title", name=me.name), body=why.strip(),
                buttons=[Button(ThankBack(giver=me.userid).pack(), ctx.t("kudos.btn.back"))])
    await ctx.issue_card(match.person.userid, KUDOS_CARD, card)
    ctx.reply(ctx.t("kudos.sent", name=match.person.name))


@router.card(KUDOS_CARD, access="recipient")
async def on_kudos_card(ctx: Context, row: IssuedCard) -> None:
    ctx.reply(ctx.t("card.unknown"))  # its one button is the typed ThankBack


@router.action(ThankBack)
async def on_thank_back(ctx: Context, row: IssuedCard, action: ThankBack) -> None:
    me = ctx.me
    assert me is not None
    await ctx.close_card(row, ctx.t("kudos.card.done"))
    ctx.send(action.giver, ctx.t("kudos.back", name=me.name))


def _reminder_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return KudosSettings.of(tenant).reminder_at if cal.is_working_day(local.date()) else None


@jobs.job("kudos_reminder", at=_reminder_at, label={"zh": "点赞提醒", "en": "Kudos reminder"})
async def kudos_reminder(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    day = at.astimezone(tenant.tz).date().isoformat()
    sent = 0
    async with env.db.transaction() as s:
        out = env.outgoing(s, tenant, at)
        people = (await s.execute(select(Employee.userid).where(
            Employee.tenant == tenant.key, Employee.active.is_(True)).order_by(Employee.userid))).scalars()
        for userid in list(people):
            if await claim_send(s, tenant.key, userid, "kudos_reminder", day, at):
                out.send(userid, out.t("kudos.reminder"))
                sent += 1
    await env.record_run(tenant.key, "kudos_reminder", day, sent)
    return sent
