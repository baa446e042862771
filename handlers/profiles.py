"""Role capability profiles in chat (岗位画像) and the JD suggestion HR approves.

    周敏 (HR): 岗位画像 研发中心/注册部
    bot → 周敏: the Markdown「JD 建议：康骨医疗/研发中心/注册部」, then a card [通过] [驳回]
    周敏: 通过          (or presses 通过; 「驳回 先不改」 rejects with the reason)

Only HR builds, lists and decides: a profile summarises the figures of a whole department.
With fewer than `min_people` qualifying people the answer says how many qualified and nothing
is stored. A new build of the same department and role supersedes the one still pending
(its card is closed with a line saying so). The composite and the thresholds are in
store/profiles.py and docs/profiles.md.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from pydantic import Field

from bot.core.config import Section
from cards.model import Button, Card, Message
from handlers import profiles_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.actions import CardAction
from handlers.card_answers import normalise
from handlers.context import Context, Outgoing
from handlers.decisions import Decider, ask_which, register_decider
from handlers.router import Router
from store import audit
from store import profiles as rp
from store.models import IssuedCard
from store.statuses import Role

router = Router("profiles")

CARD = "role_profile"
REVIEW = "role_profile_review"
CARD_TTL_HOURS = 24 * 14
AUDIT_BUILD, AUDIT_APPROVE, AUDIT_REJECT = "role_profile_build", "role_profile_approve", "role_profile_reject"


class ProfileSettings(Section, name="profiles"):
    """[tenants.profiles]"""

    window_weeks: int = Field(26, ge=8, le=52)  # complete ISO weeks looked back on
    min_weeks: int = Field(8, ge=1, le=52)  # weeks with a weekly action for a person to qualify
    # Below 5 a profile points at its people; the floor cannot be lowered.
    min_people: int = Field(5, ge=5, le=1000)
    top_share: float = Field(0.2, gt=0, le=1)
    min_top: int = Field(3, ge=1, le=50)  # the top group is never smaller (a profile of one is a person)
    max_terms: int = Field(15, ge=1, le=50)

    def rules(self) -> rp.Rules:
        return rp.Rules(window_weeks=self.window_weeks, min_weeks=self.min_weeks, min_people=self.min_people,
                        top_share=self.top_share, min_top=self.min_top, max_terms=self.max_terms)


class ApproveProfile(CardAction, prefix="rp_ok"):
    profile: int


class RejectProfile(CardAction, prefix="rp_no"):
    profile: int


# -- building ---------------------------------------------------------------------------------

def markdown(out: Outgoing, row: rp.RoleProfile) -> str:
    """The JD suggestion of `row`, from its stored figures alone (rendered again when its state changes)."""
    ev = row.evidence
    changes: dict[str, list[dict[str, Any]]] = ev["changes"]
    rules, w = ev["rules"], ev["weights"]
    lines = [out.t("rp.md.title", department=row.department) + (out.t("rp.md.role", role=row.role) if row.role else ""),
             out.t("rp.md.meta", state=out.t(f"rp.state.{row.state}"), first=row.first_week, last=row.last_week,
                   weeks=rules["window_weeks"], qualified=row.qualified, min_weeks=rules["min_weeks"],
                   share=f"{rules['top_share'] * 100:g}", min_top=rules["min_top"], top=row.top),
             out.t("rp.md.composite", **{k: f"{v:g}" for k, v in w.items()}), "", out.t("rp.md.add")]
    if not ev.get("has_jd"):
        lines.append(out.t("rp.md.no_jd"))
    for item in changes["add"]:
        lines.append(out.t("rp.md.term", **item) if item["kind"] == "term" else out.t("rp.md.goal", **item))
    lines += [out.t("rp.md.none")] if not changes["add"] else []
    lines += ["", out.t("rp.md.gone")]
    for item in changes["gone"]:
        lines.append(out.t("rp.md.jd_gone", weeks=rules["window_weeks"], **item) if item["kind"] == "jd"
                     else out.t("rp.md.prev_gone", **item))
    lines += [out.t("rp.md.none")] if not changes["gone"] else []
    sections: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("rp.md.goals", "rp.md.goal", ev["goals"]), ("rp.md.terms", "rp.md.term", ev["terms"]),
        ("rp.md.depts", "rp.md.dept", ev["departments"]), ("rp.md.comps", "rp.md.comp", ev["competencies"])]
    for head, key, items in sections:
        items = [{**i, "department": out.t("rp.md.other_depts")} if i.get("department") == rp.OTHER_DEPARTMENTS
                 else i for i in items]
        lines += ["", out.t(head)] + ([out.t(key, top=row.top, **i) for i in items] or [out.t("rp.md.none")])
    return "\n".join(lines + ["", out.t("rp.md.footer")])


async def produce(out: Outgoing, department: str, role: str, by: str) -> tuple[rp.Build, rp.RoleProfile | None]:
    """Build the profile; store it as pending (superseding a pending one) when enough people qualify."""
    settings = ProfileSettings.of(out.tenant)
    result = await rp.build(out.session, out.tenant.key, department, role, now=out.now, tz=out.tenant.tz,
                            rules=settings.rules())
    if not result.produced:
        return result, None
    jd = await rp.current_jd(out.session, out.tenant.key, department, role)
    previous = await rp.last_approved(out.session, out.tenant.key, department, role)
    changes = rp.changes(result.evidence, jd.text if jd else None, previous.evidence if previous else None,
                         result.words)
    row = rp.RoleProfile(tenant=out.tenant.key, department=department, role=role, state=rp.PENDING,
                         first_week=result.first_week, last_week=result.last_week, qualified=result.qualified,
                         top=result.top, evidence={**result.evidence, "changes": changes, "has_jd": jd is not None},
                         built_by=by, built_at=rp.utc(out.now))
    row.markdown = markdown(out, row)
    older = await rp.supersede(out.session, out.tenant.key, department, role)
    for old in older:
        old.markdown = markdown(out, old)
    out.session.add(row)
    await out.session.flush()
    assert row.id is not None
    for old in older:
        await out.expire_cards(kind=CARD, ref_id=old.id or 0, result=out.t("rp.superseded", id=row.id))
    audit.record(out.session, out.tenant.key, by, AUDIT_BUILD, f"{department}:{row.id}", out.now)
    return result, row


def too_few(out: Outgoing, result: rp.Build) -> str:
    settings = ProfileSettings.of(out.tenant)
    role = out.t("rp.md.role", role=result.role) if result.role else ""
    return out.t("rp.too_few", department=result.department, role=role, first=result.first_week, last=result.last_week,
                 qualified=result.qualified, min_weeks=settings.min_weeks, in_scope=result.in_scope,
                 need=settings.min_people)


# WeCom clips a markdown message at 2048 bytes (cards/wecom.py); the profile goes in parts below it,
# cut between its sections, so nothing at its end is lost.
PART_BYTES = 1800


def parts(text: str, limit: int = PART_BYTES) -> list[str]:
    out: list[str] = []
    for block in text.split("\n\n"):
        if out and len((out[-1] + "\n\n" + block).encode()) <= limit:
            out[-1] += "\n\n" + block
            continue
        while len(block.encode()) > limit:  # one section longer than a message: cut between its lines
            lines, head = block.split("\n"), ""
            while lines and len((head + "\n" + lines[0]).encode()) <= limit:
                head = (head + "\n" + lines.pop(0)).lstrip("\n")
            if not head:
                head = lines.pop(0)
            out.append(head)
            block = "\n".join(lines)
        if block:
            out.append(block)
    return out


async def show(ctx: Context, row: rp.RoleProfile) -> None:
    """The Markdown (in parts), then the card to decide on (pending only)."""
    assert row.id is not None
    for part in parts(row.markdown):
        ctx.reply(Message(kind="markdown", title=ctx.t("rp.card.title", department=row.department), text=part))
    if row.state != rp.PENDING:
        return
    changes = row.evidence.get("changes") or {}
    card = Card(title=ctx.t("rp.card.title", department=row.department),
                body=ctx.t("rp.card.body", qualified=row.qualified, top=row.top, first=row.first_week,
                           last=row.last_week, add=len(changes.get("add", [])), gone=len(changes.get("gone", []))),
                buttons=[Button(ApproveProfile(profile=row.id).pack(), ctx.t("rp.btn.approve"), "primary"),
                         Button(RejectProfile(profile=row.id).pack(), ctx.t("rp.btn.reject"))])
    await ctx.expire_cards(kind=CARD, ref_id=row.id, result=ctx.t("rp.review.again", id=row.id,
                                                                   department=row.department))
    await ctx.issue_card(ctx.event.userid, CARD, card, ref_id=row.id, ttl_hours=CARD_TTL_HOURS)
    await ctx.set_conversation(REVIEW, {"profile": row.id})


# -- the command --------------------------------------------------------------------------------

def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


_ROLE = re.compile(r"(?:角色|role)\s*[:：]?\s*(\S+)", re.IGNORECASE)


def _is_hr(ctx: Context) -> bool:
    return ctx.me is not None and ctx.me.has_role(Role.HR)


@router.command("role_profile", words=("岗位画像", "role-profile"), args=True, access="hr")
async def on_profile(ctx: Context) -> None:
    if not _is_hr(ctx):
        ctx.reply(ctx.t("rp.denied"))
        return
    me = ctx.me
    assert me is not None
    text = _fold(ctx.args)
    if not text:
        pending = await rp.profiles(ctx.session, ctx.tenant.key, rp.PENDING)
        lines = [ctx.t("rp.pending.line", id=p.id, department=p.department,
                       built=p.built_at.astimezone(ctx.tenant.tz).strftime("%m-%d")) for p in pending]
        ctx.reply(ctx.t("rp.usage") + "\n" + (ctx.t("rp.pending.list", lines="\n".join(lines)) if lines
                                               else ctx.t("rp.pending.none")))
        return
    if m := re.fullmatch(r"#?\s*(\d+)", text):
        row = await rp.profile(ctx.session, ctx.tenant.key, int(m.group(1)))
        if row is None:
            ctx.reply(ctx.t("rp.unknown", id=m.group(1)))
            return
        await show(ctx, row)
        return
    role = ""
    if m := _ROLE.search(text):
        found = rp.role_of(m.group(1))
        if found is None:
            ctx.reply(ctx.t("rp.role.bad", text=m.group(1)))
            return
        role, text = found, (text[:m.start()] + text[m.end():]).strip()
    paths = rp.match_department(await rp.departments(ctx.session, ctx.tenant.key), text)
    if not paths:
        ctx.reply(ctx.t("rp.dept.unknown", text=text))
        return
    if len(paths) > 1:
        ctx.reply(ctx.t("rp.dept.many", text=text, paths="\n".join(paths)))
        return
    result, row = await produce(ctx, paths[0], role, me.userid)
    if row is None:
        ctx.reply(too_few(ctx, result))
        return
    await show(ctx, row)


# -- deciding ---------------------------------------------------------------------------------------

async def decide(ctx: Context, row: rp.RoleProfile | None, verdict: str, reason: str = "") -> None:
    if not _is_hr(ctx):
        ctx.reply(ctx.t("rp.denied"))
        return
    me = ctx.me
    assert me is not None
    if row is None:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("card.unknown"))
        return
    assert row.id is not None
    conv = await ctx.conversation()
    if conv is not None and conv.kind == REVIEW and conv.data.get("profile") == row.id:
        await ctx.clear_conversation()
    if row.state != rp.PENDING:
        ctx.reply(ctx.t("rp.decided", state=ctx.t(f"rp.state.{row.state}")))
        return
    rp.decide(row, verdict, me.userid, ctx.now, reason)
    row.markdown = markdown(ctx, row)
    ctx.session.add(row)
    audit.record(ctx.session, ctx.tenant.key, me.userid, AUDIT_APPROVE if verdict == "approve" else AUDIT_REJECT,
                 f"{row.department}:{row.id}", ctx.now)
    result = (ctx.t("rp.approved", id=row.id, department=row.department) if verdict == "approve"
              else ctx.t("rp.rejected", id=row.id, department=row.department, reason=f"（{reason}）" if reason else ""))
    await ctx.expire_cards(kind=CARD, ref_id=row.id, result=result)
    ctx.reply(result)


@router.action(ApproveProfile)
async def on_approve(ctx: Context, card: IssuedCard, action: ApproveProfile) -> None:
    await decide(ctx, await rp.profile(ctx.session, ctx.tenant.key, action.profile), "approve")


@router.action(RejectProfile)
async def on_reject(ctx: Context, card: IssuedCard, action: RejectProfile) -> None:
    await decide(ctx, await rp.profile(ctx.session, ctx.tenant.key, action.profile), "reject")


_APPROVE = ("通过", "同意", "批准", "approve", "approved")
_REJECT = ("驳回", "不通过", "不同意", "拒绝", "reject")


def read_verdict(text: str) -> tuple[str, str] | None:
    """「通过」「通过！」 → approve; 「驳回 先不改」 → reject with its reason; anything else (收到, 好的) → None."""
    t = _fold(text)
    for word in sorted(_REJECT, key=len, reverse=True):
        if t.casefold().startswith(word):
            return "reject", re.sub(r"^[\s,，。:：;；!！.]+", "", t[len(word):]).strip()
    said = normalise(t)
    return ("approve", "") if said in {normalise(w) for w in _APPROVE} else None


async def _resume(ctx: Context) -> None:
    conv = await ctx.conversation()
    row = await rp.profile(ctx.session, ctx.tenant.key, int((conv.data if conv else {}).get("profile") or 0))
    if row is not None and row.state == rp.PENDING:
        ctx.reply(ctx.t("rp.review.again", id=row.id, department=row.department))
    else:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("rp.decided", state=ctx.t(f"rp.state.{row.state}")) if row else ctx.t("card.unknown"))


@router.conversation(REVIEW, label="rp.review.flow", resume=_resume)
async def on_review_answer(ctx: Context) -> None:
    """通过 / 驳回 typed instead of pressed, for the profile last shown to the sender."""
    conv = await ctx.conversation()
    row = await rp.profile(ctx.session, ctx.tenant.key, int((conv.data if conv else {}).get("profile") or 0))
    if row is None or row.state != rp.PENDING:
        await decide(ctx, row, "approve")  # says it was dealt with, and ends the exchange
        return
    verdict = read_verdict(ctx.event.text)
    if verdict is None:
        ctx.reply(ctx.t("rp.review.again", id=row.id, department=row.department))
        return
    if await ask_which(ctx):  # 通过 / 驳回 also answers another feature's card: which one is asked
        return
    await decide(ctx, row, verdict[0], verdict[1])


async def _typed_on_card(ctx: Context, card: IssuedCard) -> None:
    verdict = read_verdict(ctx.event.text)
    if verdict is not None:
        await decide(ctx, await rp.profile(ctx.session, ctx.tenant.key, card.ref_id or 0), verdict[0], verdict[1])


register_decider(Decider(CARD, read_verdict, _typed_on_card))
