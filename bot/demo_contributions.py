"""The demo company's contributions of this month: five people of 研发中心 with a project revenue, so
that heat-map cell shows; three of 质量部, whose cells stay suppressed; one waiting for 唐凯 to verify
(he can type 属实). No one verifies a colleague who verified them, as the rules require."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from store import contributions as cs
from store.db import Database

RD, QA = "康骨医疗/研发中心/注册部", "康骨医疗/质量部"
# (contributor, verifier, department, kind, unit, amount, what happened, state)
DEMO_CONTRIBUTIONS = (
    ("wangqiang", "tangkai", RD, cs.REVENUE, cs.YUAN, 120000, "发布会提前两周上线 O1-KR2", cs.VERIFIED),
    ("li_na", "zhengshuang", RD, cs.SAVING, cs.HOURS, 16, "注册检验报告自动汇总", cs.VERIFIED),
    ("zhaolei", "li_na2", RD, cs.REUSE, cs.TIMES, 6, "临床评价模板被产品研发部复用", cs.VERIFIED),
    ("sunli", "wangqiang", RD, cs.REVENUE, cs.YUAN, 30000, "补正资料一次通过，提前回款", cs.VERIFIED),
    ("liuyang", "qinfeng", RD, cs.REVENUE, cs.YUAN, 50000, "注册路径调整，少做一轮检验", cs.VERIFIED),
    ("xiezhen", "li_na", "康骨医疗/研发中心/产品研发部", cs.REVENUE, cs.YUAN, 20000, "样机评审提前一周", cs.VERIFIED),
    ("yeqing", "duxiao", "康骨医疗/研发中心/产品研发部", cs.REVENUE, cs.YUAN, 15000, "老产品改型复用现有注册证", cs.VERIFIED),
    ("li_na2", "wangqiang", QA, cs.SAVING, cs.YUAN, 8000, "来料检验抽样方案优化", cs.VERIFIED),
    ("zhengshuang", "panyue", QA, cs.SAVING, cs.HOURS, 12, "批记录电子化", cs.VERIFIED),
    ("fengtao", "zhaolei", QA, cs.REUSE, cs.TIMES, 4, "CAPA 模板被复用", cs.VERIFIED),
    ("caoyu", "tangkai", "康骨医疗/IT部", cs.SAVING, cs.HOURS, 20, "报销单自动校验", cs.PENDING),
)


async def seed_contributions(db: Database, tenant: str, tz: ZoneInfo, now: datetime) -> None:
    month = cs.month_of(now, tz)
    async with db.transaction() as s:
        for i, (who, verifier, dept, kind, unit, amount, what, state) in enumerate(DEMO_CONTRIBUTIONS):
            at = now - timedelta(hours=len(DEMO_CONTRIBUTIONS) - i)
            s.add(cs.Contribution(tenant=tenant, contributor_userid=who, verifier_userid=verifier, department=dept,
                                  kind=kind, unit=unit, amount=amount, description=what, links=[], month=month,
                                  state=state, created_at=cs.utc(at),
                                  decided_at=cs.utc(at) if state == cs.VERIFIED else None))
