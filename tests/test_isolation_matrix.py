"""The isolation and role matrix: every HTTP route, chat command, card kind and menu key.

Three tenants share one database: the demo company (console), a rival company on
WeCom whose people carry the same user ids as demo people (wangqiang, liuyang …)
and the same task codes (T1, T3), and a small DingTalk company. The rival's admin
heads nobody, so there the admin role is tried apart from a reporting line. Every record
holds a marker (DMX… for demo, RVX… for rival) saying whose it is, so what any
answer reveals can be read off it.

For each entry of tests/access_policy.py and each role (employee, manager, hr,
pmo, admin) the matrix sends the entry's attempts from both companies, with
identifiers of the other company, and checks:
- a refused attempt gets its refusal text and changes nothing but the sender's
  own inbox, outbox, conversation state and cards;
- an allowed attempt shows what it should (the subject's markers) and changes only
  the tables its entry names;
- nobody is ever shown a marker they may not see, and no other company's row
  changes, whatever the outcome.

The matrix fails when the app has a route, command, card kind or menu key
without a policy entry, or an entry for one that is gone.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import sqlite3
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import openpyxl
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from sqlmodel import SQLModel

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.core.config import Config, TenantConfig, parse_config
from bot.dingtalk.signing import card_api_secret, card_callback_sign
from bot.core.events import Event
from handlers.deliverables.upload import make_token
from bot.runtime import Runtime
from cards import dingtalk as dingtalk_cards
from cards.model import Message
from cards.texts import TEXTS
from handlers.routes import build_router
from schedules.jobs import all_jobs
from store import outbox
from store.db import Database
from store.migrate import upgrade
from store.models import ConsoleMessage, Employee, Goal, IssuedCard, OutboxMessage, Project, Task, TaskUpdate
from store.roster import ensure_tenant, import_roster
from store.goals import import_goals
from store.tasks import import_tasks
from tests.access_policy import CARDS, COMMANDS, MENUS, ROLE_ACTORS, ROLES, ROUTES, RULES, WHO, Attempt
from tests.conftest import PG_URL, REQUIRE_PG, _admin as _pg_admin
from tests.fakes.dingtalk_server import FakeDingTalk
from tests.fakes.wecom_server import CallbackClient, FakeWeCom, wecom_tenant
from tests.harness import DATA, at

TOKEN = "matrix-console-token"
DEMO, RIVAL, DD = "demo", "rival", "dd"
CHAT_TENANTS = (DEMO, RIVAL)
OTHER = {DEMO: RIVAL, RIVAL: DEMO}
# People and task codes that exist in one company only.
ONLY_IN = {DEMO: "tangkai", RIVAL: "zhaoyun"}
TASK_ONLY_IN = {DEMO: "T5", RIVAL: "T7"}
MARKER = re.compile(r"(?:DMX|RVX)\d{2}")
# Every department path starts with the company: seeing it means seeing that company.
COMPANY_MARK = {DEMO: "康骨医疗", RIVAL: "乙方科技", DD: "丙方集团"}
WORLD_NOW = "2026-12-04 10:00"

RIVAL_ROSTER = """userid,name,department,manager_userid,roles
boss,包总,乙方科技/董事会,,manager
chenjie,陈洁,乙方科技/信息部,boss,admin
zhoumin,周民,乙方科技/人力资源部,boss,manager;hr
hexin,何新,乙方科技/人力资源部,zhoumin,hr
liuyang,柳阳,乙方科技/研发部,boss,manager
wangqiang,汪强,乙方科技/研发部,liuyang,
li_na,黎娜,乙方科技/研发部,liuyang,
zhaolei,赵雷,乙方科技/研发部,liuyang,
sunli,孙力,乙方科技/研发部,liuyang,
zhaoyun,赵云,乙方科技/研发部,liuyang,
li_na2,厉娜,乙方科技/质量部,boss,
guoqing,郭晴,乙方科技/市场部,boss,manager;pmo
hulin,胡林,乙方科技/市场部,guoqing,
pengli,彭立,乙方科技/客服部,boss,manager
xiaoyan,肖燕,乙方科技/客服部,pengli,
jiangnan,蒋男,乙方科技/客服部,pengli,
machao,马超,乙方科技/客服部,pengli,
"""
RIVAL_GOALS = """code,title,parent_code,department,weight,period
O1,RVX90乙方新品上市,,乙方科技,50,2026Q4
O1-KR2,RVX91乙方注册周期,O1,乙方科技/研发部,50,2026Q4
O3,RVX92乙方客户满意,,乙方科技,50,2026Q4
O3-KR1,RVX93乙方客诉响应,O3,乙方科技/客服部,50,2026Q4
"""
DD_ROSTER = """userid,name,department,manager_userid,roles
chenjie,陈捷,丙方集团/总部,,manager;admin
zhoumin,周珉,丙方集团/人事,chenjie,manager;hr
liuyang,刘扬,丙方集团/研发,chenjie,manager
wangqiang,王蔷,丙方集团/研发,liuyang,
guoqing,郭青,丙方集团/市场,chenjie,manager;pmo
sunquan,孙权,丙方集团/市场,guoqing,
"""
# Names of the rival and DingTalk people differ from every demo name (the user ids do not):
# seeing one in another company's answer means a lookup crossed companies.
NAMES = {RIVAL: [row.split(",")[1] for row in RIVAL_ROSTER.splitlines()[1:] if row],
         DD: [row.split(",")[1] for row in DD_ROSTER.splitlines()[1:] if row]}
TASK_HEADER = "project,project_name,pmo,code,title,owner,collaborators,due,deliverable\n"
# (tenant, creator, row): T1 and T3 exist in both companies; T5 and T7 in one each.
TASKS = [
    (DEMO, "guoqing", "发布会,新品发布会,guoqing,T1,DMX11直播系统压测,wangqiang,li_na,2026-12-03 12:00,压测报告"),
    (DEMO, "pengli", "客服升级,客服系统升级,pengli,T3,DMX13客服工单迁移,xiaoyan,,2026-12-10 18:00,"),
    (DEMO, "liangbo", "采购,采购优化,liangbo,T5,DMX15供应商评估,luoyi,,2026-12-10 18:00,"),
    (RIVAL, "guoqing", "发布会,乙方发布会,guoqing,T1,RVX11直播压测,wangqiang,li_na,2026-12-03 12:00,压测报告"),
    (RIVAL, "pengli", "客服升级,乙方客服升级,pengli,T3,RVX13工单迁移,xiaoyan,,2026-12-10 18:00,"),
    (RIVAL, "zhoumin", "渠道,乙方渠道,zhoumin,T7,RVX17渠道盘点,machao,,2026-12-10 18:00,"),
]
# What people say while the companies are being set up: (local time, userid, text with {m} = marker prefix).
SCRIPT = [
    ("2026-12-03 09:10", "wangqiang", "O1-KR2 {m}01注册资料初稿 @li_na"),
    ("2026-12-03 09:11", "xiaoyan", "O3-KR1 {m}02客诉回访 @jiangnan"),
    ("2026-12-03 09:12", "liuyang", "O1-KR2 {m}03审核流程梳理 @zhaolei"),
    ("2026-12-03 09:13", "xiaoyan", "完成"),
    ("2026-12-03 09:20", "liuyang", "反馈 @wangqiang #主动补位 客户级 {m}21周二夜里帮客户排查退货问题"),
    ("2026-12-03 09:21", "pengli", "反馈 @xiaoyan #客户需求深挖 客户级 {m}22主动回访三位投诉客户并整理需求"),
    ("2026-12-03 09:30", "liuyang", "简报 @wangqiang"),
    ("2026-12-03 09:31", "guoqing", "任务 T1"),
    ("2026-12-03 09:32", "liuyang", "调整 O1-KR2 权重 35% 原因:政策 集采"),  # the approver's goal_change card
    # Friday: cards that live as long as a draft (24 h) are issued after the morning prompt.
    ("2026-12-04 09:40", "zhaolei", "{m}04整理注册资料 @lina"),
    ("2026-12-04 09:41", "sunli", "{m}05准备检测样品 @zhaolei"),
    ("2026-12-04 09:42", "liuyang", "反馈"),
    ("2026-12-04 09:43", "pengli", "反馈 @jiangnan"),
    ("2026-12-04 09:44", "guoqing", "反馈 @hulin #主动补位"),
    ("2026-12-04 09:45", "hulin", "测试"),  # a short text alone: the 记为本周关键动作？ card
]
# Records made by SCRIPT (and TASKS): marker number → (kind, owner/receiver, witness/giver or task code).
RECORDS = {
    "01": ("action", "wangqiang", "li_na"),
    "02": ("action", "xiaoyan", "jiangnan"),
    "03": ("action", "liuyang", "zhaolei"),
    "04": ("action", "zhaolei", ""),
    "05": ("action", "sunli", ""),
    "21": ("feedback", "wangqiang", "liuyang"),
    "22": ("feedback", "xiaoyan", "pengli"),
    "11": ("task", "T1", ""),
    "13": ("task", "T3", ""),
    "15": ("task", "T5", ""),
    "17": ("task", "T7", ""),
}
REFUSALS = ("card.unknown", "card.not_yours", "card.used", "card.expired", "unknown_user")


# -- what the companies hold, read back independently of the handlers ---------------------------
@dataclass
class TaskFacts:
    code: str
    owner: str
    collaborators: list[str]
    pmo: str
    creator: str


@dataclass
class CardFacts:
    id: str
    kind: str
    owner: str  # IssuedCard.userid ("*" for a card shared by many)
    recipients: set[str]
    keys: list[str]


@dataclass
class Company:
    key: str
    people: dict[str, Employee]
    tasks: dict[str, TaskFacts]
    cards: dict[str, CardFacts] = field(default_factory=dict)
    goals: dict[str, str] = field(default_factory=dict)  # goal code → department
    _lines: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def roles(self, userid: str) -> set[str]:
        emp = self.people.get(userid)
        return {"employee", *emp.role_list} if emp else set()

    def line(self, manager: str) -> set[str]:
        """Active direct and indirect reports, by a walk of the roster (not the app's query)."""
        if manager in self._lines:
            return self._lines[manager]
        out: set[str] = set()
        todo = [manager]
        while todo:
            boss = todo.pop()
            for e in self.people.values():
                if e.manager_userid == boss and e.userid not in out and e.userid != manager:
                    out.add(e.userid)
                    todo.append(e.userid)
        self._lines[manager] = {u for u in out if self.people[u].active}
        return self._lines[manager]

    def managers_of(self, userid: str) -> set[str]:
        return {m for m in self.people if userid in self.line(m)}

    def hr(self) -> set[str]:
        return {u for u in self.people if "hr" in self.roles(u)}

    def may_view_task(self, userid: str, code: str) -> bool:
        t = self.tasks[code]
        involved = {t.owner, *t.collaborators, t.pmo, t.creator}
        return (userid in involved or bool(self.line(userid) & {t.owner, *t.collaborators})
                or bool(self.roles(userid) & {"pmo", "admin", "hr"}))

    def visible_to(self, kind: str, a: str, b: str) -> set[str]:
        """SEES of the policy: an action (owner a, witness b), feedback (receiver a, giver b), a task (code a)."""
        if kind == "action":  # admins get every weekly row in the export
            return {a, b} | self.managers_of(a) | self.hr() | {u for u in self.people if "admin" in self.roles(u)}
        if kind == "feedback":
            return {a, b} | self.managers_of(a) | self.hr()
        return {u for u in self.people if self.may_view_task(u, a)}


def allowed(company: Company, rule: str, actor: str, subject: str = "") -> bool:
    """The policy's rules, evaluated on the roster and the tasks."""
    roles = company.roles(actor)
    if rule == "own":
        return True
    if rule == "never":
        return False
    if rule == "read_person":
        return subject == actor or "hr" in roles or subject in company.line(actor)
    if rule == "give_feedback":
        return subject != actor and subject in company.line(actor)
    if rule == "view_task":
        return company.may_view_task(actor, subject)
    task = company.tasks[subject] if subject in company.tasks else None
    if rule == "report_task":
        return task is not None and actor in {task.owner, *task.collaborators, task.pmo}
    if rule == "edit_task":
        return task is not None and (bool(roles & {"pmo", "admin"}) or actor in (task.pmo, task.creator))
    if rule == "create_task":
        return bool(roles & {"manager", "pmo", "admin"})
    if rule in ("assess", "calibrate"):
        boss = company.people[subject].manager_userid if subject in company.people else None
        while boss in company.people and not company.people[boss].active:
            boss = company.people[boss].manager_userid  # a vacant post is skipped
        return boss == actor or (rule == "calibrate" and "hr" in roles)
    if rule == "change_goal":
        if roles & {"hr", "admin"}:
            return True
        dept = company.goals.get(subject) if subject else company.people[actor].department
        mine = company.people[actor].department
        return "manager" in roles and bool(dept) and (dept == mine or dept.startswith(mine + "/"))
    if rule == "lead":
        return "hr" in roles or bool(company.line(actor))
    if rule == "hr":
        return "hr" in roles
    if rule == "recipient":
        return actor in company.cards[subject].recipients
    raise AssertionError(f"unknown rule {rule!r}")


# -- the template database, built once per backend -----------------------------------------------
@dataclass
class Template:
    url: str  # a SQLite file or a PostgreSQL database to copy
    data_dir: Path
    companies: dict[str, Company]
    markers: dict[str, tuple[str, set[str]]]  # marker → (company, who may see it)
    brief_file: tuple[int, str]  # (console seq, recipient) of the demo brief document


def wecom_fakes() -> tuple[FakeWeCom, FakeWeCom]:
    """The rival company's WeCom corp and a stranger corp (for forged callbacks); never started."""
    rival = FakeWeCom(corp_id="wwrivalcorp0001", token="rivaltoken", secret="rival-secret", agent_id=1000002,
                      encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    stranger = FakeWeCom(corp_id="wwstranger00001", token="strangertoken", secret="x", agent_id=1000002,
                         encoding_aes_key="ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut")
    return rival, stranger


def matrix_config(db_url: str, data_dir: Path) -> Config:
    rival, _ = wecom_fakes()
    rival_cfg = wecom_tenant(rival, RIVAL, name="杭州乙方科技有限公司")
    rival_cfg["wecom"]["api_base"] = "http://127.0.0.1:9"  # nothing is relayed in the matrix
    # The matrix's give_feedback rule is the reporting line: these tenants switch peer feedback
    # (on by default) off, so a refusal to an outsider is what is checked.
    rival_cfg = {**rival_cfg, "feedback": {"peer": False}}
    return parse_config({
        "server": {"data_dir": str(data_dir)},
        "database": {"url": db_url},
        "console": {"enabled": True, "token": TOKEN},
        "tenants": [
            {"key": DEMO, "name": "宁波康骨医疗器械有限公司", "feedback": {"peer": False}},
            rival_cfg,
            {"key": DD, "name": "丙方集团", "feedback": {"peer": False}, "dingtalk": {
                "client_id": "ddclient", "client_secret": "dd-secret", "robot_code": "ddclient", "mode": "http",
                "api_base": "http://127.0.0.1:9"}},
        ],
    })


def _write(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


async def drain(runtime: Runtime) -> None:
    while await runtime.process_inbox_once():
        pass


async def _say(runtime: Runtime, tenant: TenantConfig, userid: str, text: str) -> None:
    await runtime.accept(Event(tenant=tenant.key, platform=tenant.platform, userid=userid, kind="text", text=text,
                               dedup_key=f"setup:{uuid.uuid4().hex}"))
    await drain(runtime)


async def build_companies(url: str, data_dir: Path) -> Template:
    """Both companies with weekly actions, feedback, tasks, escalations and an open card of every kind."""
    db = Database(url)
    await upgrade(db)
    config = matrix_config(url, data_dir)
    clock = FrozenClock(at("2026-12-03 09:00"))
    runtime = make_runtime(config, db, clock)
    try:
        for t in config.tenants:
            await ensure_tenant(db, t)
        files = {DEMO: (DATA / "roster.csv", DATA / "goals.csv"),
                 RIVAL: (_write(data_dir, "rival.csv", RIVAL_ROSTER), _write(data_dir, "rival_goals.csv", RIVAL_GOALS)),
                 DD: (_write(data_dir, "dd.csv", DD_ROSTER), None)}
        for key, (roster, goals) in files.items():
            report = await import_roster(db, key, roster)
            assert not report.errors, report.errors
            if goals is not None:
                g = await import_goals(db, key, goals, now=at("2026-10-01 09:00"))
                assert not g.errors, g.errors
        for i, (key, creator, row) in enumerate(TASKS):
            r = await import_tasks(db, key, _write(data_dir, f"tasks{i}.csv", TASK_HEADER + row + "\n"),
                                   now=clock.now(), by_userid=creator)
            assert r.ok, r.errors
        for key in CHAT_TENANTS:
            await runtime.run_job("overdue_scan", config.tenant(key), clock.now())
        await drain(runtime)

        async def play(since: str, until: str) -> None:
            for when, userid, text in SCRIPT:
                if since <= when < until:
                    clock.set(at(when))
                    for key in CHAT_TENANTS:
                        await _say(runtime, config.tenant(key), userid, text.format(m="DMX" if key == DEMO else "RVX"))

        await play("2026-12-03", "2026-12-04")
        clock.set(at("2026-12-03 14:30"))  # T1 was due at 12:00 and nobody has said a word: escalated
        for key in CHAT_TENANTS:
            await runtime.run_job("overdue_scan", config.tenant(key), clock.now())
        clock.set(at("2026-12-04 09:30"))  # Friday, the last working day: last_day cards and the prompt
        for key in CHAT_TENANTS:
            await runtime.run_job("morning_prompt", config.tenant(key), clock.now())
        await play("2026-12-04", "2026-12-05")
        await drain(runtime)
        await _deliver_console(runtime, config.tenant(DEMO))
        return await _read_template(db, url, data_dir)
    finally:
        await db.close()


async def _deliver_console(runtime: Runtime, tenant: TenantConfig) -> None:
    """What the demo company's people have on their console screens."""
    async with runtime.db.session() as s:
        rows = list((await s.execute(select(OutboxMessage).where(
            OutboxMessage.tenant == tenant.key, OutboxMessage.status == "pending").order_by(OutboxMessage.id))).scalars())
    for row in rows:
        for userid in outbox.recipients(row):
            await runtime.adapters["console"].send(tenant, userid, Message.from_dict(row.payload))
    await outbox.mark_sent(runtime.db, [r.id for r in rows if r.id is not None], at(WORLD_NOW))


async def _read_template(db: Database, url: str, data_dir: Path) -> Template:
    now = at(WORLD_NOW)
    companies: dict[str, Company] = {}
    async with db.session() as s:
        for key in (DEMO, RIVAL, DD):
            people = {e.userid: e for e in (await s.execute(select(Employee).where(Employee.tenant == key))).scalars()}
            projects = {p.id: p for p in (await s.execute(select(Project).where(Project.tenant == key))).scalars()}
            tasks: dict[str, TaskFacts] = {}
            for t in (await s.execute(select(Task).where(Task.tenant == key))).scalars():
                creator = (await s.execute(select(TaskUpdate.by_userid).where(
                    TaskUpdate.tenant == key, TaskUpdate.task_id == t.id, TaskUpdate.kind == "created"))).scalars().first()
                tasks[t.code] = TaskFacts(t.code, t.owner_userid, t.collaborator_ids, projects[t.project_id].pmo_userid,
                                          creator or "")
            goals = {g.code: g.department for g in (await s.execute(select(Goal).where(Goal.tenant == key))).scalars()}
            companies[key] = Company(key, people, tasks, goals=goals)
        sent: dict[tuple[str, str], set[str]] = {}
        for row in (await s.execute(select(OutboxMessage))).scalars():
            card = row.payload.get("card") or {}
            if row.payload.get("kind") == "card" and card.get("id"):
                sent.setdefault((row.tenant, card["id"]), set()).update(outbox.recipients(row))
        for row in (await s.execute(select(IssuedCard).where(IssuedCard.state == "open").order_by(IssuedCard.created_at))).scalars():
            if row.expires_at <= now or row.tenant not in CHAT_TENANTS:
                continue
            keys = [b["key"] for b in row.card.get("buttons", [])]
            if row.kind not in CARDS or not any(k.startswith(CARDS[row.kind].press) for k in keys):
                continue  # cards without buttons (status, pulse) answer no press
            # The latest open card of each kind, for each company.
            companies[row.tenant].cards[row.kind] = CardFacts(row.id, row.kind, row.userid,
                                                              sent.get((row.tenant, row.id), set()), keys)
        brief = (await s.execute(select(ConsoleMessage).where(
            ConsoleMessage.tenant == DEMO, ConsoleMessage.kind == "file"))).scalars().first()
    for key in CHAT_TENANTS:
        missing = sorted(set(CARDS) - set(companies[key].cards))
        assert not missing, f"the {key} company has no open card of kinds {missing}"
    markers: dict[str, tuple[str, set[str]]] = {}
    for key in CHAT_TENANTS:
        c = companies[key]
        prefix = "DMX" if key == DEMO else "RVX"
        for num, (kind, a, b) in RECORDS.items():
            if kind == "task" and a not in c.tasks:
                continue
            markers[prefix + num] = (key, c.visible_to(kind, a, b))
    for num in ("90", "91", "92", "93"):
        markers["RVX" + num] = (RIVAL, set(companies[RIVAL].people))
    assert brief is not None and brief.seq is not None
    return Template(url, data_dir, companies, markers, (brief.seq, brief.userid))


def _build_sync(url: str, data_dir: Path) -> Template:
    """Build in a loop of its own: the template outlives every test's loop."""
    old = os.environ.get("DONGXIAN_DATA_DIR")
    os.environ["DONGXIAN_DATA_DIR"] = str(data_dir)
    try:
        return asyncio.run(build_companies(url, data_dir))
    finally:
        if old is None:
            os.environ.pop("DONGXIAN_DATA_DIR", None)
        else:
            os.environ["DONGXIAN_DATA_DIR"] = old


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("matrix")
    built = folder / "built.db"
    tmpl = _build_sync(f"sqlite+aiosqlite:///{built}", folder)
    # A consistent single file (WAL folded in) to copy for every test.
    src, dst = sqlite3.connect(built), sqlite3.connect(folder / "template.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    tmpl.url = str(folder / "template.db")
    return tmpl


def _pg_url(name: str) -> str:
    from sqlalchemy.engine import make_url
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("DONGXIAN_REQUIRE_PG=1 but DONGXIAN_TEST_PG is not set")
        pytest.skip("PostgreSQL not configured (set DONGXIAN_TEST_PG)")
    name = "dx_tmpl_" + uuid.uuid4().hex[:12]
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        tmpl = _build_sync(_pg_url(name), tmp_path_factory.mktemp("matrix_pg"))
        tmpl.url = name
        yield tmpl
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- one copy of the companies per test --------------------------------------------------------------
@dataclass
class Sent:
    tenant: str
    userid: str
    payload: dict[str, Any]

    def content(self) -> str:
        """Everything the person can read: the message, its card, and an attached document."""
        text = json.dumps(self.payload, ensure_ascii=False)
        path = self.payload.get("path")
        if path and Path(path).is_file() and path.endswith((".html", ".md", ".txt", ".csv")):
            text += Path(path).read_text(encoding="utf-8")
        elif path and Path(path).is_file() and path.endswith(".xlsx"):
            text += workbook_text(Path(path).read_bytes())
        return text

    def text(self) -> str:
        return Message.from_dict(self.payload).plain()


@dataclass
class Outcome:
    changed: dict[tuple[str, str], dict[Any, tuple[Any, Any]]]  # (tenant, table) → key → (before, after)
    status: int = 0
    body: bytes = b""

    def rows(self, tenant: str, table: str) -> dict[Any, tuple[Any, Any]]:
        return self.changed.get((tenant, table), {})

    @property
    def sent(self) -> list[Sent]:
        out = []
        for (tenant, table), rows in self.changed.items():
            if table != "outbox":
                continue
            for before, after in rows.values():
                if before is None and after is not None:
                    # A row for many people (the morning prompt) names them in its payload.
                    to = (after["payload"].get("to") or []) if after["userid"] == outbox.EVERYONE else [after["userid"]]
                    out += [Sent(tenant, userid, after["payload"]) for userid in to]
        return out

    def replies(self, tenant: str, userid: str) -> list[str]:
        return [s.text() for s in self.sent if (s.tenant, s.userid) == (tenant, userid)]


_TABLES = SQLModel.metadata.sorted_tables
Snapshot = dict[tuple[str, str], dict[Any, dict[str, Any]]]


async def snapshot(db: Database, lite: sqlite3.Connection | None = None) -> Snapshot:
    """Every row of every table, by (company, table) and primary key."""
    out: Snapshot = {}

    def keep(table: Any, row: dict[str, Any]) -> None:
        owner = "tenant" if "tenant" in table.c else "key"
        key = tuple(row[c.name] for c in table.primary_key.columns)
        out.setdefault((row[owner], table.name), {})[key] = row

    if lite is not None:  # SQLite: read the file directly, far faster than through the async pool
        for table in _TABLES:
            cur = lite.execute(f'SELECT * FROM "{table.name}"')
            names = [d[0] for d in cur.description]
            for values in cur.fetchall():
                row = dict(zip(names, values))
                if table.name == "outbox":
                    row["payload"] = json.loads(row["payload"])
                keep(table, row)
        return out
    # PostgreSQL: one round trip, every row as JSON.
    union = " UNION ALL ".join(f"SELECT '{t.name}', row_to_json(x)::text FROM \"{t.name}\" x" for t in _TABLES)
    by_name = {t.name: t for t in _TABLES}
    async with db.session() as s:
        for name, row in (await s.execute(text(union))).all():
            keep(by_name[name], json.loads(row))
    return out


def diff(before: Snapshot, after: Snapshot) -> dict[tuple[str, str], dict[Any, tuple[Any, Any]]]:
    out: dict[tuple[str, str], dict[Any, tuple[Any, Any]]] = {}
    for where in set(before) | set(after):
        b, a = before.get(where, {}), after.get(where, {})
        changes = {k: (b.get(k), a.get(k)) for k in set(b) | set(a) if b.get(k) != a.get(k)}
        if changes:
            out[where] = changes
    return out


class World:
    """The three companies on a running app: people type, press and call the HTTP API."""

    def __init__(self, tmpl: Template, db: Database, runtime: Runtime, client: TestClient) -> None:
        self.tmpl = tmpl
        self.db = db
        self.runtime = runtime
        self.client = client
        self.companies = tmpl.companies
        self.lite = sqlite3.connect(db.engine.url.database) if db.dialect == "sqlite" else None
        self.rival_corp, self.stranger_corp = wecom_fakes()
        self.wecom = CallbackClient(self.rival_corp, str(client.make_url(f"/wecom/{RIVAL}/callback")),
                                    now=self.epoch, timeout=10, retry_interval=0)
        self.stranger = CallbackClient(self.stranger_corp, str(client.make_url(f"/wecom/{RIVAL}/callback")),
                                       now=self.epoch, timeout=10, retry_interval=0)
        self.dingtalk = FakeDingTalk(now_ms=lambda: int(self.epoch() * 1000))
        self.ding_app = self.dingtalk.add_app("ddclient", "dd-secret", corp_id="dingddcorp")
        self.ding_stranger = self.dingtalk.add_app("ddother", "other-secret", corp_id="dingother")

    @property
    def clock(self) -> FrozenClock:
        assert isinstance(self.runtime.clock, FrozenClock)
        return self.runtime.clock

    def epoch(self) -> float:
        return self.clock.now().timestamp()

    def card(self, tenant: str, kind: str) -> CardFacts:
        return self.companies[tenant].cards[kind]

    # -- what people do ----------------------------------------------------------------------
    async def say(self, tenant: str, userid: str, text: str) -> int:
        if tenant == DEMO:
            r = await self.client.post("/console/api/messages", headers=auth(),
                                       json={"tenant": tenant, "userid": userid, "text": text})
            return r.status
        if tenant == RIVAL:
            return await self._wecom(self.wecom.text_xml(userid, text))
        return await self._ding(self.dingtalk.robot_message(self.ding_app, userid, text))

    async def press(self, tenant: str, userid: str, card_id: str, key: str) -> int:
        if tenant == DEMO:
            r = await self.client.post("/console/api/actions", headers=auth(), json={
                "tenant": tenant, "userid": userid, "card_id": card_id, "key": key, "values": {}})
            return r.status
        if tenant == RIVAL:
            extra = (f"<EventKey><![CDATA[{key}]]></EventKey><TaskId><![CDATA[{card_id}]]></TaskId>"
                     f"<CardType><![CDATA[button_interaction]]></CardType>"
                     f"<ResponseCode><![CDATA[rc{uuid.uuid4().hex}]]></ResponseCode>")
            return await self._wecom(self.wecom.event_xml(userid, "template_card_event", extra))
        return await self.dingtalk.post(self.ding_card_url(), ding_press(card_id, userid, key),
                                        headers=self.ding_card_headers())

    async def click(self, tenant: str, userid: str, key: str) -> int:
        if tenant == RIVAL:
            return await self._wecom(self.wecom.event_xml(userid, "click", f"<EventKey><![CDATA[{key}]]></EventKey>"))
        # The console has no app menu: the event is the one a WeCom menu click produces.
        await self.runtime.accept(Event(tenant=tenant, platform="console", userid=userid, kind="menu",
                                        action_key=key, dedup_key=f"menu:{uuid.uuid4().hex}"))
        return 202

    async def _wecom(self, xml: str, client: CallbackClient | None = None) -> int:
        [status] = await (client or self.wecom).post(xml, repeat=1)
        return int(status) if isinstance(status, int) else 0

    async def _ding(self, data: dict[str, Any], secret_app: Any = None, tenant: str = DD) -> int:
        headers = self.dingtalk.signed_headers(secret_app or self.ding_app)
        return await self.dingtalk.post(str(self.client.make_url(f"/dingtalk/{tenant}/callback")), data,
                                        headers=headers)

    def ding_card_url(self, tenant: str = DD) -> str:
        return str(self.client.make_url(f"/dingtalk/{tenant}/callback"))

    def ding_card_headers(self, api_secret: str | None = None) -> dict[str, str]:
        """An HTTP card press as DingTalk signs it: x-ddpaas-signature with the route's apiSecret."""
        cfg = self.runtime.config.tenant(DD).dingtalk
        assert cfg is not None
        ts = str(int(self.clock.now().timestamp() * 1000))
        return {"x-ddpaas-signature-timestamp": ts,
                "x-ddpaas-signature": card_callback_sign(api_secret or card_api_secret(cfg), ts)}

    # -- one attempt, and everything it changed -------------------------------------------------------
    async def attempt(self, act: Callable[[], Awaitable[Any]]) -> Outcome:
        self.clock.advance(seconds=1)  # platform dedup keys carry the second
        before = await snapshot(self.db, self.lite)
        result = await act()
        await drain(self.runtime)
        outcome = Outcome(diff(before, await snapshot(self.db, self.lite)))
        if isinstance(result, tuple):
            outcome.status, outcome.body = result
        elif isinstance(result, int):
            outcome.status = result
        return outcome

    async def http(self, method: str, url: str, *, token: bool = True, **kw: Any) -> tuple[int, bytes]:
        headers = auth() if token else {}
        async with self.client.request(method, url, headers=headers, allow_redirects=True, **kw) as r:
            return r.status, await r.read()


def auth() -> dict[str, str]:
    return {"X-Dongxian-Token": TOKEN}


def ding_press(card_id: str, userid: str, key: str) -> dict[str, Any]:
    # A press of the general template's button: actionId btn<N>, params.key = our encoded button key.
    private = json.dumps({"cardPrivateData": {"actionIds": ["btn1"], "params": {"key": dingtalk_cards.action_id(key)}}})
    return {"extension": "{}", "corpId": "dingddcorp", "spaceType": "IM_ROBOT", "userIdType": 1,
            "type": "actionCallback", "userId": userid, "content": private, "spaceId": userid, "outTrackId": card_id}



@asynccontextmanager
async def open_world(tmpl: Template, url: str) -> AsyncIterator[World]:
    db = Database(url)
    runtime = make_runtime(matrix_config(url, tmpl.data_dir), db, FrozenClock(at(WORLD_NOW)))
    try:
        async with TestClient(TestServer(build_app(runtime, start_background=False), host="127.0.0.1", port=0)) as client:
            world = World(tmpl, db, runtime, client)
            try:
                yield world
            finally:
                if world.lite is not None:
                    world.lite.close()
                await world.dingtalk.stop()
                for adapter in runtime.adapters.values():
                    await adapter.stop()
    finally:
        await db.close()


@pytest.fixture
async def world(sqlite_template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """A fresh copy of the companies on SQLite."""
    monkeypatch.setenv("DONGXIAN_DATA_DIR", str(tmp_path))
    path = tmp_path / "matrix.db"
    shutil.copyfile(sqlite_template.url, path)
    async with open_world(sqlite_template, f"sqlite+aiosqlite:///{path}") as w:
        yield w


@pytest.fixture
async def pg_world(pg_template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """A fresh copy of the companies on PostgreSQL."""
    monkeypatch.setenv("DONGXIAN_DATA_DIR", str(tmp_path))
    name = "dx_" + uuid.uuid4().hex[:16]
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template.url}"')
    try:
        async with open_world(pg_template, _pg_url(name)) as w:
            yield w
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- judging one attempt ------------------------------------------------------------------------------
ALWAYS = {"inbox", "outbox", "conversation", "issued_card", "audit_log", "console_message", "scheduled_send",
          "usage_event"}  # the sender's own use of the bot (store/usage.py), recorded whatever the outcome
# Whose a row is, for attempts that may touch only the sender's own records.
AUTHOR = {"weeklyaction": "userid", "leave": "userid", "actionedit": "by_userid", "feedback": "giver_userid"}


def says(key: str, text: str) -> bool:
    """Whether `text` contains the message of text key `key`, whatever filled its blanks."""
    pattern = ".*?".join(re.escape(part) for part in re.split(r"\{[a-z_]+\}", TEXTS[key]["zh"]))
    return re.search(pattern, text, re.S) is not None


def check_reveals(world: World, tenant: str, viewer: str, content: str, what: str) -> None:
    """`viewer` of `tenant` may see every record `content` shows, and nothing of another company."""
    for marker in sorted(set(MARKER.findall(content))):
        owner, who = world.tmpl.markers[marker]
        assert owner == tenant, f"{what}: {tenant}/{viewer} was shown {marker}, a record of company {owner}"
        assert viewer in who, f"{what}: {tenant}/{viewer} was shown {marker}, which only {sorted(who)} may see"
    for other, mark in COMPANY_MARK.items():
        assert other == tenant or mark not in content, f"{what}: {tenant}/{viewer} was shown {mark!r} of {other}"
    for other, names in NAMES.items():
        shown = [n for n in names if n in content]
        assert other == tenant or not shown, f"{what}: {tenant}/{viewer} was shown {shown}, people of {other}"


def check_sent(world: World, sent: Sent, what: str) -> None:
    check_reveals(world, sent.tenant, sent.userid, sent.content(), what)
    assert not says("error", sent.text()), f"{what}: the handler failed: {sent.text()}"
    company = world.companies[sent.tenant]
    for button in (sent.payload.get("card") or {}).get("buttons", []):
        kind, _, userid = button["key"].partition(":")
        if kind in ("to", "pick"):
            assert userid in company.people, f"{what}: a button names {userid}, not of company {sent.tenant}"
        if kind == "to":  # feedback goes to one's reporting line (peer feedback is off)
            assert userid in company.line(sent.userid), f"{what}: {sent.userid} offered feedback to {userid}"


def check_common(world: World, outcome: Outcome, tenant: str, what: str) -> None:
    for (where, table), rows in outcome.changed.items():
        assert where == tenant, f"{what}: rows of company {where} changed ({table}): {list(rows.values())[:2]}"
    for sent in outcome.sent:
        check_sent(world, sent, what)


def check_refused(world: World, outcome: Outcome, tenant: str, actor: str, keys: tuple[str, ...], what: str) -> None:
    check_common(world, outcome, tenant, what)
    replies = outcome.replies(tenant, actor)
    assert any(says(k, r) for k in keys for r in replies), f"{what}: expected {keys}, {actor} got {replies}"
    for (_, table), rows in outcome.changed.items():
        for before, after in rows.values():
            row = after if after is not None else before
            if table == "inbox":
                continue
            # usage_event: the attempt itself is a use of the bot, whatever the answer.
            assert table in ("outbox", "conversation", "issued_card", "usage_event"), f"{what}: refused, yet {table} changed: {row}"
            assert row["userid"] == actor, f"{what}: refused, yet {table} of {row['userid']} changed"


def check_allowed(world: World, outcome: Outcome, tenant: str, actor: str, attempt: Attempt, what: str) -> None:
    check_common(world, outcome, tenant, what)
    replies = outcome.replies(tenant, actor)
    for key in (*refusal_keys(attempt), *REFUSALS):
        assert not any(says(key, r) for r in replies), f"{what}: allowed, yet refused: {replies}"
    tables = {table for _, table in outcome.changed} - ALWAYS
    if "*" not in attempt.changes:
        assert tables <= set(attempt.changes), f"{what}: changed {sorted(tables - set(attempt.changes))}"
    if attempt.rule == "own":
        for table, column in AUTHOR.items():
            for before, after in outcome.rows(tenant, table).values():
                row = after if after is not None else before
                assert row[column] == actor, f"{what}: changed {table} of {row[column]}"
    elif attempt.changes and "*" not in attempt.changes:
        assert tables, f"{what}: allowed, yet nothing changed in {attempt.changes}; {actor} got {replies}"
    elif attempt.subject and attempt.rule in ("read_person", "view_task"):
        shown = "".join(s.content() for s in outcome.sent if (s.tenant, s.userid) == (tenant, actor))
        mine = [m for m, (owner, _) in world.tmpl.markers.items() if owner == tenant
                and RECORDS.get(m[3:], ("", "", ""))[1] == attempt.subject]
        assert any(m in shown for m in mine), f"{what}: allowed, yet none of {mine} was shown: {replies}"


def refusal_keys(attempt: Attempt) -> tuple[str, ...]:
    return tuple(attempt.refusal.split("|")) if attempt.refusal else ()


def judge(world: World, outcome: Outcome, tenant: str, actor: str, attempt: Attempt, what: str) -> None:
    company = world.companies[tenant]
    if allowed(company, attempt.rule, actor, attempt.subject):
        check_allowed(world, outcome, tenant, actor, attempt, what)
    else:
        check_refused(world, outcome, tenant, actor, refusal_keys(attempt), what)


def fill(text: str, tenant: str) -> str:
    return text.format(elsewhere=ONLY_IN[OTHER[tenant]], elsewhere_task=TASK_ONLY_IN[OTHER[tenant]])


def world_jobs() -> list[str]:
    return all_jobs().names()


def button(card: CardFacts) -> str:
    press = CARDS[card.kind].press
    return next(k for k in card.keys if k.startswith(press))


# -- chat: commands, cards, menus ------------------------------------------------------------------------
async def run_command(world: World, name: str, role: str) -> None:
    actor = ROLE_ACTORS[role]
    for tenant in CHAT_TENANTS:
        for attempt in COMMANDS[name].attempts:
            text = fill(attempt.text, tenant)
            outcome = await world.attempt(lambda: world.say(tenant, actor, text))
            assert outcome.status in (200, 202), f"{tenant}/{actor} {text!r}: HTTP {outcome.status}"
            judge(world, outcome, tenant, actor, attempt, f"{tenant}/{actor} says {text!r}")


async def run_card(world: World, kind: str, role: str) -> None:
    actor = ROLE_ACTORS[role]
    foreign = Attempt("", "never", refusal="card.unknown")
    for tenant in CHAT_TENANTS:
        # A card of the other company, pressed here by the actor and by whoever has its owner's user id.
        theirs = world.card(OTHER[tenant], kind)
        namesakes = sorted(theirs.recipients & set(world.companies[tenant].people) - {actor})[:1]
        for who in [actor, *namesakes]:
            outcome = await world.attempt(lambda: world.press(tenant, who, theirs.id, button(theirs)))
            judge(world, outcome, tenant, who, foreign, f"{tenant}/{who} presses {OTHER[tenant]}'s {kind} card")
        # This company's card: only the person it was sent to may press it.
        mine = world.card(tenant, kind)
        press = Attempt("", "recipient", kind, "card.not_yours", changes=("*",))
        outcome = await world.attempt(lambda: world.press(tenant, actor, mine.id, button(mine)))
        judge(world, outcome, tenant, actor, press, f"{tenant}/{actor} presses the {kind} card of {sorted(mine.recipients)}")


async def run_menu(world: World, key: str, role: str) -> None:
    actor = ROLE_ACTORS[role]
    for tenant in CHAT_TENANTS:
        outcome = await world.attempt(lambda: world.click(tenant, actor, key))
        judge(world, outcome, tenant, actor, Attempt("", "own"), f"{tenant}/{actor} opens menu {key}")
        stranger = ONLY_IN[OTHER[tenant]]
        outcome = await world.attempt(lambda: world.click(tenant, stranger, key))
        check_refused(world, outcome, tenant, stranger, ("unknown_user",), f"{tenant}/{stranger} (not on its roster) opens menu {key}")


# -- HTTP routes ---------------------------------------------------------------------------------------------
def example(world: World, key: str, userid: str) -> tuple[str, str, dict[str, Any] | None]:
    """A well-formed request to each token-guarded route, so a refusal is for the missing token alone."""
    card = world.card(DEMO, "action_owner")
    seq, owner = world.tmpl.brief_file
    q = f"tenant={DEMO}&userid={userid}"
    return {
        "GET /console/api/tenants": ("GET", "/console/api/tenants", None),
        "GET /console/api/users": ("GET", f"/console/api/users?tenant={DEMO}", None),
        "POST /console/api/messages": ("POST", "/console/api/messages", {"tenant": DEMO, "userid": userid, "text": "帮助"}),
        "POST /console/api/actions": ("POST", "/console/api/actions", {
            "tenant": DEMO, "userid": card.owner, "card_id": card.id, "key": button(card)}),
        "GET /console/api/inbox": ("GET", f"/console/api/inbox?{q}", None),
        "GET /console/api/files/{seq}": ("GET", f"/console/api/files/{seq}?tenant={DEMO}&userid={owner}", None),
        "GET /console/api/clock": ("GET", "/console/api/clock", None),
        "PUT /console/api/clock": ("PUT", "/console/api/clock", {"now": "2027-01-04T09:30:00+08:00"}),
        "DELETE /console/api/clock": ("DELETE", "/console/api/clock", None),
        "GET /console/api/jobs": ("GET", "/console/api/jobs", None),
        "POST /console/api/jobs/{name}/run": ("POST", "/console/api/jobs/morning_prompt/run", {"tenant": DEMO}),
        "GET /console/api/pulse": ("GET", f"/console/api/pulse?{q}", None),
        # An employee's chart is refused for the role (403), not the token; it draws nothing.
        "GET /console/api/pulse/chart.png": ("GET", f"/console/api/pulse/chart.png?tenant={DEMO}&userid=wangqiang", None),
        "GET /console/api/export.xlsx": ("GET", f"/console/api/export.xlsx?{q}", None),
        "GET /console/api/audit": ("GET", f"/console/api/audit?{q}", None),
    }[key]


def workbook_text(body: bytes) -> str:
    wb = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    return "\n".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v)


async def check_nothing_changed(world: World, outcome: Outcome, what: str) -> None:
    assert not outcome.changed, f"{what}: rows changed: {list(outcome.changed)}"


Check = Callable[[World, str, str], Awaitable[None]]
CHECKS: dict[str, Check] = {}


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


@check
async def needs_token(world: World, role: str, route: str) -> None:
    method, url, body = example(world, route, ROLE_ACTORS[role])
    for headers in ({}, {"X-Dongxian-Token": "not-" + TOKEN}, {"Authorization": "Bearer " + TOKEN[:-1]}):
        clock = world.clock.now()

        async def call() -> tuple[int, bytes]:
            async with world.client.request(method, url, json=body, headers=headers) as r:
                return r.status, await r.read()
        outcome = await world.attempt(call)
        assert outcome.status == 401, f"{route} without the token: HTTP {outcome.status}"
        await check_nothing_changed(world, outcome, f"{route} without the token")
        assert world.clock.now() == clock + timedelta(seconds=1), f"{route} without the token moved the clock"
    # The same request with the token is not refused for want of it.
    outcome = await world.attempt(lambda: world.http(method, url, json=body))
    assert outcome.status != 401, f"{route} with the token: HTTP 401"
    check_common(world, outcome, DEMO, f"{route} with the token")


@check
async def public_no_data(world: World, role: str, route: str) -> None:
    path = route.split(" ", 1)[1].replace("{name}", "console.js")
    status, body = await world.http("GET", path, token=False)
    assert status == 200, f"{route}: HTTP {status}"
    text = body.decode("utf-8", "replace")
    assert not MARKER.search(text) and not any(m in text for m in COMPANY_MARK.values()), f"{route} shows tenant data"
    assert ROLE_ACTORS[role] not in text


@check
async def static_fixed_list(world: World, role: str, route: str) -> None:
    for name in ("index.html", "..%2F..%2Fconsole.py", "%2e%2e%2fconfig.py", "console.css.map"):
        status, _ = await world.http("GET", f"/console/static/{name}", token=False)
        assert status == 404, f"/console/static/{name}: HTTP {status}"


@check
async def tenants_no_people(world: World, role: str, route: str) -> None:
    status, body = await world.http("GET", "/console/api/tenants")
    assert status == 200
    tenants = json.loads(body)["tenants"]
    assert {t["key"] for t in tenants} == {DEMO, RIVAL, DD}
    assert not MARKER.search(body.decode()) and ROLE_ACTORS[role] not in body.decode()


@check
async def users_of_that_tenant(world: World, role: str, route: str) -> None:
    for tenant, company in world.companies.items():
        status, body = await world.http("GET", f"/console/api/users?tenant={tenant}")
        assert status == 200
        users = {u["userid"]: u["name"] for u in json.loads(body)["users"]}
        assert users == {u: e.name for u, e in company.people.items() if e.active}, f"users of {tenant}"
        check_reveals(world, tenant, ROLE_ACTORS[role], body.decode(), f"users of {tenant}")
    status, _ = await world.http("GET", "/console/api/users?tenant=nobody")
    assert status == 404


async def _post(world: World, url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    return await world.http("POST", url, json=body)


@check
async def message_foreign_user(world: World, role: str, route: str) -> None:
    for body in ({"tenant": DEMO, "userid": ONLY_IN[RIVAL], "text": "我的反馈"},
                 {"tenant": "nobody", "userid": ROLE_ACTORS[role], "text": "我的反馈"}):
        outcome = await world.attempt(lambda: _post(world, "/console/api/messages", body))
        assert outcome.status == 404, f"message as {body}: HTTP {outcome.status}"
        await check_nothing_changed(world, outcome, f"message as {body}")


@check
async def message_platform_tenant(world: World, role: str, route: str) -> None:
    # The console must not speak for the people of a WeCom or DingTalk company.
    for tenant in (RIVAL, DD):
        body = {"tenant": tenant, "userid": ROLE_ACTORS[role], "text": "我的反馈"}
        outcome = await world.attempt(lambda: _post(world, "/console/api/messages", body))
        assert outcome.status == 409, f"message into {tenant}: HTTP {outcome.status}"
        await check_nothing_changed(world, outcome, f"message into {tenant}")


@check
async def message_as_role(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    outcome = await world.attempt(lambda: _post(world, "/console/api/messages",
                                                {"tenant": DEMO, "userid": actor, "text": "我的反馈"}))
    assert outcome.status == 202
    check_allowed(world, outcome, DEMO, actor, Attempt("", "own"), f"console message from {actor}")
    assert outcome.replies(DEMO, actor), f"console message from {actor} got no answer"


@check
async def action_foreign_user(world: World, role: str, route: str) -> None:
    card = world.card(DEMO, "action_owner")
    body = {"tenant": DEMO, "userid": ONLY_IN[RIVAL], "card_id": card.id, "key": button(card)}
    outcome = await world.attempt(lambda: _post(world, "/console/api/actions", body))
    assert outcome.status == 404
    await check_nothing_changed(world, outcome, "press as a person of another company")


@check
async def action_foreign_card(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    for kind in ("action_owner", "task_owner"):
        card = world.card(RIVAL, kind)
        body = {"tenant": DEMO, "userid": actor, "card_id": card.id, "key": button(card)}
        outcome = await world.attempt(lambda: _post(world, "/console/api/actions", body))
        assert outcome.status == 202
        check_refused(world, outcome, DEMO, actor, ("card.unknown",), f"{actor} presses rival's {kind} card")


@check
async def action_platform_tenant(world: World, role: str, route: str) -> None:
    card = world.card(RIVAL, "action_owner")
    for userid in dict.fromkeys([ROLE_ACTORS[role], *card.recipients]):
        body = {"tenant": RIVAL, "userid": userid, "card_id": card.id, "key": button(card)}
        outcome = await world.attempt(lambda: _post(world, "/console/api/actions", body))
        assert outcome.status == 409
        await check_nothing_changed(world, outcome, "press into the WeCom company")


@check
async def inbox_foreign_user(world: World, role: str, route: str) -> None:
    for tenant, userid in ((DEMO, ONLY_IN[RIVAL]), (RIVAL, ROLE_ACTORS[role]), (DD, ROLE_ACTORS[role])):
        status, body = await world.http("GET", f"/console/api/inbox?tenant={tenant}&userid={userid}")
        assert (status, json.loads(body)["messages"]) == (200, []), f"console inbox of {tenant}/{userid}"
    status, _ = await world.http("GET", f"/console/api/inbox?tenant=nobody&userid={ROLE_ACTORS[role]}")
    assert status == 404


@check
async def inbox_own(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    status, body = await world.http("GET", f"/console/api/inbox?tenant={DEMO}&userid={actor}")
    assert status == 200
    messages = json.loads(body)["messages"]
    assert messages, f"{actor} has nothing on the console"
    check_reveals(world, DEMO, actor, body.decode(), f"console inbox of {actor}")


@check
async def file_recipient_only(world: World, role: str, route: str) -> None:
    seq, owner = world.tmpl.brief_file
    actor = ROLE_ACTORS[role]
    status, body = await world.http("GET", f"/console/api/files/{seq}?tenant={DEMO}&userid={actor}")
    assert status == (200 if actor == owner else 404), f"{actor} fetches {owner}'s file: HTTP {status}"
    if status == 200:
        check_reveals(world, DEMO, actor, body.decode(), "the brief document")
    for tenant in (RIVAL, DD):
        status, _ = await world.http("GET", f"/console/api/files/{seq}?tenant={tenant}&userid={owner}")
        assert status == 404, f"{owner}'s file under company {tenant}: HTTP {status}"


@check
async def clock_no_data(world: World, role: str, route: str) -> None:
    method, url, body = example(world, route, ROLE_ACTORS[role])
    before = world.clock.now()
    outcome = await world.attempt(lambda: world.http(method, url, json=body))
    assert outcome.status == 200
    await check_nothing_changed(world, outcome, route)
    assert not MARKER.search(outcome.body.decode())
    world.clock.set(before)


@check
async def job_stays_in_tenant(world: World, role: str, route: str) -> None:
    # The Friday pulse draws charts and workbooks: once per company is enough.
    pulse = {"hr": DEMO, "admin": RIVAL}.get(role)
    for tenant in CHAT_TENANTS:
        for job in [j for j in world_jobs() if j != "pulse" or tenant == pulse]:
            at_ = world.clock.now().isoformat()
            outcome = await world.attempt(lambda: _post(world, f"/console/api/jobs/{job}/run",
                                                        {"tenant": tenant, "at": at_}))
            assert outcome.status == 200, f"job {job} for {tenant}: HTTP {outcome.status}"
            check_common(world, outcome, tenant, f"job {job} for {tenant}")
    for url, body in (("/console/api/jobs/morning_prompt/run", {"tenant": "nobody"}),
                      ("/console/api/jobs/nothing/run", {"tenant": DEMO})):
        outcome = await world.attempt(lambda: _post(world, url, body))
        assert outcome.status == 404
        await check_nothing_changed(world, outcome, f"{url} {body}")


@check
async def viewer_foreign_user(world: World, role: str, route: str) -> None:
    path = route.split(" ", 1)[1]
    for tenant, userid in ((DEMO, ONLY_IN[RIVAL]), (RIVAL, ONLY_IN[DEMO]), ("nobody", ROLE_ACTORS[role])):
        outcome = await world.attempt(lambda: world.http("GET", f"{path}?tenant={tenant}&userid={userid}"))
        assert outcome.status == 404, f"{path} as {tenant}/{userid}: HTTP {outcome.status}"
        await check_nothing_changed(world, outcome, f"{path} as {tenant}/{userid}")


def expected_scope(company: Company, userid: str) -> str:
    if company.roles(userid) & {"hr", "admin"}:
        return "company"
    return "line" if "manager" in company.roles(userid) or company.line(userid) else "self"


@check
async def pulse_scope(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    for tenant in CHAT_TENANTS:
        company = world.companies[tenant]
        outcome = await world.attempt(lambda: world.http("GET", f"/console/api/pulse?tenant={tenant}&userid={actor}"))
        assert outcome.status == 200
        check_common(world, outcome, tenant, f"pulse of {tenant}/{actor}")
        text = outcome.body.decode()
        check_reveals(world, tenant, actor, text, f"pulse of {tenant}/{actor}")
        pulse = json.loads(text)
        assert pulse["scope"] == expected_scope(company, actor)
        own = json.dumps(pulse["actions"], ensure_ascii=False)
        assert all(RECORDS[m[3:]][1] == actor for m in MARKER.findall(own)), f"pulse actions of {actor}: {own}"
        named = {p["userid"] for p in pulse.get("missing", [])} | {p["userid"] for pair in pulse.get("mutual_pairs", []) for p in pair}
        if pulse["scope"] != "company":
            assert named <= company.line(actor) | {actor}, f"pulse of {actor} names {sorted(named)}"


@check
async def chart_scope(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    # Drawing takes a while: each role that may see a chart draws it for one company.
    tenants = CHAT_TENANTS if role == "employee" else ((DEMO,) if role in ("hr", "manager") else (RIVAL,))
    for tenant in tenants:
        outcome = await world.attempt(lambda: world.http("GET", f"/console/api/pulse/chart.png?tenant={tenant}&userid={actor}"))
        if expected_scope(world.companies[tenant], actor) == "self":
            assert outcome.status == 403
            await check_nothing_changed(world, outcome, f"chart for {tenant}/{actor}")
        else:
            assert outcome.status == 200 and outcome.body.startswith(b"\x89PNG")
            check_common(world, outcome, tenant, f"chart for {tenant}/{actor}")


@check
async def export_scope(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    for tenant in CHAT_TENANTS:
        outcome = await world.attempt(lambda: world.http("GET", f"/console/api/export.xlsx?tenant={tenant}&userid={actor}"))
        if not world.companies[tenant].roles(actor) & {"hr", "admin"}:
            assert outcome.status == 403
            await check_nothing_changed(world, outcome, f"export for {tenant}/{actor}")
            continue
        assert outcome.status == 200
        check_common(world, outcome, tenant, f"export for {tenant}/{actor}")
        text = workbook_text(outcome.body)
        check_reveals(world, tenant, actor, text, f"export for {tenant}/{actor}")
        assert ("DMX01" if tenant == DEMO else "RVX01") in text


@check
async def audit_scope(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    for tenant in CHAT_TENANTS:
        outcome = await world.attempt(lambda: world.http("GET", f"/console/api/audit?tenant={tenant}&userid={actor}"))
        if not world.companies[tenant].roles(actor) & {"hr", "admin"}:
            assert outcome.status == 403
            await check_nothing_changed(world, outcome, f"audit log for {tenant}/{actor}")
            continue
        assert outcome.status == 200
        check_common(world, outcome, tenant, f"audit log for {tenant}/{actor}")
        check_reveals(world, tenant, actor, outcome.body.decode(), f"audit log for {tenant}/{actor}")


def verify_query(corp: FakeWeCom, when: float) -> tuple[str, str]:
    from bot.wecom_crypto import sign

    echo = "echo" + uuid.uuid4().hex
    enc = corp.crypto.encrypt(echo)
    ts, nonce = str(int(when)), str(uuid.uuid4().int)[:10]
    from urllib.parse import urlencode
    return urlencode({"msg_signature": sign(corp.token, ts, nonce, enc), "timestamp": ts, "nonce": nonce,
                      "echostr": enc}), echo


@check
async def wecom_verify(world: World, role: str, route: str) -> None:
    query, echo = verify_query(world.rival_corp, world.epoch())
    status, body = await world.http("GET", f"/wecom/{RIVAL}/callback?{query}", token=False)
    assert (status, body.decode()) == (200, echo)
    for tenant, corp, want in ((RIVAL, world.stranger_corp, (400, 403)), (DEMO, world.rival_corp, (404,)),
                               (DD, world.rival_corp, (404,))):
        query, echo = verify_query(corp, world.epoch())
        status, body = await world.http("GET", f"/wecom/{tenant}/callback?{query}", token=False)
        assert status in want and echo not in body.decode(), f"URL check for {tenant}: HTTP {status}"


@check
async def wecom_foreign_corp(world: World, role: str, route: str) -> None:
    xml = world.stranger.text_xml(ROLE_ACTORS[role], "我的反馈")
    outcome = await world.attempt(lambda: world._wecom(xml, world.stranger))
    assert 400 <= outcome.status < 500, f"a callback sealed by another corp: HTTP {outcome.status}"
    await check_nothing_changed(world, outcome, "a callback sealed by another corp")


@check
async def wecom_foreign_sender(world: World, role: str, route: str) -> None:
    stranger = ONLY_IN[DEMO]
    for act in (lambda: world.say(RIVAL, stranger, "我的反馈"), lambda: world.click(RIVAL, stranger, "mydata"),
                lambda: world.press(RIVAL, stranger, world.card(RIVAL, "action_owner").id, "done")):
        outcome = await world.attempt(act)
        assert outcome.status == 200
        check_refused(world, outcome, RIVAL, stranger, ("unknown_user",), f"WeCom callback from {stranger} of demo")


@check
async def wecom_foreign_card(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    for kind in ("action_owner", "task_escalation"):
        card = world.card(DEMO, kind)
        outcome = await world.attempt(lambda: world.press(RIVAL, actor, card.id, button(card)))
        assert outcome.status == 200
        check_refused(world, outcome, RIVAL, actor, ("card.unknown",), f"rival {actor} presses demo's {kind} card")


@check
async def wecom_not_a_wecom_tenant(world: World, role: str, route: str) -> None:
    xml = world.wecom.text_xml(ROLE_ACTORS[role], "我的反馈")
    for tenant in (DEMO, DD, "nobody"):
        client = CallbackClient(world.rival_corp, str(world.client.make_url(f"/wecom/{tenant}/callback")),
                                now=world.epoch, timeout=10, retry_interval=0)
        outcome = await world.attempt(lambda: world._wecom(xml, client))
        assert outcome.status == 404, f"WeCom callback at {tenant}: HTTP {outcome.status}"
        await check_nothing_changed(world, outcome, f"WeCom callback at {tenant}")


@check
async def wecom_as_role(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    outcome = await world.attempt(lambda: world.say(RIVAL, actor, "我的反馈"))
    assert outcome.status == 200
    check_allowed(world, outcome, RIVAL, actor, Attempt("", "own"), f"rival {actor} over WeCom")
    assert outcome.replies(RIVAL, actor)


@check
async def dingtalk_foreign_secret(world: World, role: str, route: str) -> None:
    data = world.dingtalk.robot_message(world.ding_app, ROLE_ACTORS[role], "我的反馈")
    outcome = await world.attempt(lambda: world._ding(data, world.ding_stranger))
    assert outcome.status == 401
    await check_nothing_changed(world, outcome, "a DingTalk message signed by another app")
    card = world.card(DEMO, "action_owner")
    outcome = await world.attempt(lambda: world.dingtalk.post(world.ding_card_url(),
                                                              ding_press(card.id, ROLE_ACTORS[role], "done"),
                                                              headers=world.ding_card_headers("0" * 32)))
    assert outcome.status == 401
    await check_nothing_changed(world, outcome, "a DingTalk card press signed with another apiSecret")


@check
async def dingtalk_foreign_sender(world: World, role: str, route: str) -> None:
    stranger = ONLY_IN[DEMO]
    outcome = await world.attempt(lambda: world.say(DD, stranger, "我的反馈"))
    assert outcome.status == 200
    check_refused(world, outcome, DD, stranger, ("unknown_user",), f"DingTalk message from {stranger} of demo")


@check
async def dingtalk_foreign_card(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    for tenant in CHAT_TENANTS:
        card = world.card(tenant, "task_owner")
        outcome = await world.attempt(lambda: world.press(DD, actor, card.id, button(card)))
        assert outcome.status == 200
        check_refused(world, outcome, DD, actor, ("card.unknown",), f"dd {actor} presses {tenant}'s card")


@check
async def dingtalk_foreign_mention(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    for other in (ONLY_IN[DEMO], ONLY_IN[RIVAL]):
        for text in (f"简报 @{other}", f"反馈 查看 @{other}"):
            data = world.dingtalk.robot_message(world.ding_app, actor, text, at_users=[other])
            outcome = await world.attempt(lambda: world._ding(data))
            assert outcome.status == 200
            check_refused(world, outcome, DD, actor, ("fb.person.none",), f"dd {actor}: {text} (a staff id of another company)")


@check
async def dingtalk_stream_frames(world: World, role: str, route: str) -> None:
    # Stream mode hands each frame to the adapter with the tenant of the connection it came on.
    adapter = world.runtime.adapters["dingtalk"]
    dd = world.runtime.config.tenant(DD)
    actor, stranger = ROLE_ACTORS[role], ONLY_IN[DEMO]
    card = world.card(DEMO, "witness_invite")
    for who, act, refusal in (
            (stranger, lambda: adapter.accept_robot(dd, world.dingtalk.robot_message(world.ding_app, stranger, "本周")),
             "unknown_user"),
            (actor, lambda: adapter.accept_card(dd, ding_press(card.id, actor, button(card))), "card.unknown")):
        outcome = await world.attempt(act)
        assert outcome.status == 200, f"stream frame acked with {outcome.status}"
        check_refused(world, outcome, DD, who, (refusal,), f"stream frame for dd from {who}")


@check
async def dingtalk_not_a_dingtalk_tenant(world: World, role: str, route: str) -> None:
    data = world.dingtalk.robot_message(world.ding_app, ROLE_ACTORS[role], "我的反馈")
    for tenant in (DEMO, RIVAL, "nobody"):
        outcome = await world.attempt(lambda: world._ding(data, tenant=tenant))
        assert outcome.status == 404, f"DingTalk callback at {tenant}: HTTP {outcome.status}"
        await check_nothing_changed(world, outcome, f"DingTalk callback at {tenant}")


@check
async def dingtalk_as_role(world: World, role: str, route: str) -> None:
    actor = ROLE_ACTORS[role]
    outcome = await world.attempt(lambda: world.say(DD, actor, "我的反馈"))
    assert outcome.status == 200
    check_allowed(world, outcome, DD, actor, Attempt("", "own"), f"dd {actor} over DingTalk")
    assert outcome.replies(DD, actor)


@check
async def hooks_unconfigured(world: World, role: str, route: str) -> None:
    """A webhook source no tenant configured answers 404 and stores nothing, whoever the body names."""
    body = {"id": "x1", "type": "approval", "person": ROLE_ACTORS[role], "status": "approved"}
    for tenant in (DEMO, RIVAL, "nobody"):
        outcome = await world.attempt(lambda: world.http("POST", f"/hooks/{tenant}/crm", json=body, token=False))
        assert outcome.status == 404, f"webhook at {tenant}: HTTP {outcome.status}"
        await check_nothing_changed(world, outcome, f"webhook at {tenant}")


@check
async def upload_signed_only(world: World, role: str, route: str) -> None:
    """A link not signed with the tenant's upload_secret (none is set here; a guessed key; another
    tenant's name) is refused with 403, shows nothing and stores nothing."""
    method = route.split(" ", 1)[0]
    far = world.clock.now() + timedelta(days=3)
    tokens = [make_token(key, tenant, 1, ROLE_ACTORS[role], far)
              for key in ("", "guess", TOKEN) for tenant in (DEMO, RIVAL)] + ["x.y", "你好"]
    for token in tokens:
        outcome = await world.attempt(lambda: world.http(method, f"/upload/{token}", token=False))
        assert outcome.status == 403, f"{route} with {token[:20]}: HTTP {outcome.status}"
        await check_nothing_changed(world, outcome, f"{route} with a link not ours")


async def run_route(world: World, route: str, role: str) -> None:
    for name in ROUTES[route].checks:
        await CHECKS[name](world, role, route)


# -- completeness: an entry for everything the app has, and nothing else ----------------------------------------
def app_routes() -> set[str]:
    """'METHOD /path' of every route of the app with the console, a WeCom and a DingTalk company."""
    config = matrix_config("sqlite+aiosqlite:///:memory:", Path("var"))
    runtime = make_runtime(config, Database("sqlite+aiosqlite:///:memory:"), FrozenClock(at(WORLD_NOW)))
    app = build_app(runtime, start_background=False)
    # aiohttp answers HEAD with the GET handler; the GET entry covers it.
    return {f"{'GET' if r.method == 'HEAD' else r.method} {r.resource.canonical}" for r in app.router.routes()}


def test_every_route_has_a_policy_entry() -> None:
    routes = app_routes()
    assert not routes - set(ROUTES), f"routes without an entry in tests/access_policy.py ROUTES: {sorted(routes - set(ROUTES))}"
    assert not set(ROUTES) - routes, f"ROUTES entries for routes that are gone: {sorted(set(ROUTES) - routes)}"


def test_every_chat_command_card_and_menu_has_a_policy_entry() -> None:
    router = build_router()
    for what, have, table in (("commands", set(router.commands), COMMANDS),
                              ("card kinds", set(router.cards), CARDS), ("menu keys", set(router.menus), MENUS)):
        assert not have - set(table), f"{what} without an entry in tests/access_policy.py: {sorted(have - set(table))}"
        assert not set(table) - have, f"entries for {what} that are gone: {sorted(set(table) - have)}"
    for name, command in COMMANDS.items():
        assert router.classify(command.sample)[0] == name, f"{command.sample!r} is not {name}"
        for attempt in command.attempts:
            probe = fill(attempt.text, DEMO)
            assert router.classify(probe)[0] == name, f"{probe!r} is not the {name} command"
            # The feature declares who may use the command; every attempt's rule is that one
            # (or own / never, which hold for every command).
            assert attempt.rule in (*router.commands[name].access, "own", "never"), (
                f"{name}: the attempt {probe!r} follows {attempt.rule!r}, the command declares "
                f"{router.commands[name].access!r}")
    for kind, card in CARDS.items():
        assert router.cards[kind].access == card.who, f"card {kind}: declared {router.cards[kind].access!r}, policy {card.who!r}"


def test_policy_entries_are_well_formed() -> None:
    for name, command in COMMANDS.items():
        for attempt in command.attempts:
            assert attempt.rule in RULES, f"{name}: unknown rule {attempt.rule}"
            assert attempt.rule in ("own",) or attempt.refusal, f"{name}: {attempt.text!r} names no refusal"
            for key in refusal_keys(attempt):
                assert key in TEXTS, f"{name}: no text {key}"
    for kind, card in CARDS.items():
        assert card.who in RULES and card.press, kind
    for route, entry in ROUTES.items():
        assert entry.who in WHO, f"{route}: unknown caller {entry.who}"
        assert entry.checks and set(entry.checks) <= set(CHECKS), f"{route}: unknown checks {set(entry.checks) - set(CHECKS)}"
        # Whatever needs the console token must prove it is refused without it.
        assert (entry.who in ("operator", "viewer")) == ("needs_token" in entry.checks), route


# -- the matrix ---------------------------------------------------------------------------------------------------
ENTRIES = ([("command", n) for n in COMMANDS] + [("card", k) for k in CARDS] + [("menu", k) for k in MENUS]
           + [("route", r) for r in ROUTES])
RUNNERS: dict[str, Callable[[World, str, str], Awaitable[None]]] = {
    "command": run_command, "card": run_card, "menu": run_menu, "route": run_route}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{k}:{n}" for k, n in ENTRIES])
async def test_isolation_matrix(world: World, entry: tuple[str, str], role: str) -> None:
    kind, name = entry
    await RUNNERS[kind](world, name, role)


# The same attempts on PostgreSQL: one entry of each kind, each as another role (a copy of the
# companies costs a database of its own there, so the exhaustive matrix runs on SQLite).
PG_CASES = [(("command", "feedback"), "manager"), (("command", "progress"), "employee"), (("command", "task"), "hr"),
            (("card", "witness_confirm"), "pmo"), (("menu", "feedback"), "admin"),
            (("route", "GET /console/api/pulse"), "manager"), (("route", "POST /wecom/{tenant_key}/callback"), "employee"),
            (("route", "POST /dingtalk/{tenant_key}/callback"), "admin")]


@pytest.mark.parametrize(("entry", "role"), PG_CASES, ids=[f"{k}:{n}-{r}" for (k, n), r in PG_CASES])
async def test_isolation_matrix_on_postgresql(pg_world: World, entry: tuple[str, str], role: str) -> None:
    kind, name = entry
    await RUNNERS[kind](pg_world, name, role)
