"""Synthetic companies written straight into the tables with bulk inserts.

A company of N people: one CEO, divisions of about 500, teams of about 25 with
a team lead each, a few HR people, 16 goals, and optionally weeks of weekly
actions (about 85 % filled, most linked to a goal, witnesses from the same team),
leaves and edits. The shape is fixed by a seed, so runs are comparable.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator

from sqlalchemy import insert

from bot.core.calendar import week_back, week_days, week_range
from store.db import Database
from store.models import ActionEdit, Department, Employee, Goal, Leave, Tenant, WeeklyAction

TEAM_SIZE = 25
TEAMS_PER_DIVISION = 20
BATCH = 20_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红鹏飞建国志文斌宇浩凯健俊帆帅旭宁龙林欣然晨阳佳琪思雨子涵梓轩一诺心怡"
THINGS = ["完成临床评价报告初稿", "提交注册资料补正", "客户回访十家", "上线新版排班系统", "整理供应商评估表",
          "完成季度预算复盘", "修复退货流程缺陷", "输出压测报告", "培训三名新同事", "梳理产品需求清单"]


@dataclass(frozen=True)
class Shape:
    """Who is who in a generated company (userids are u000000 … u{N-1})."""

    size: int

    @staticmethod
    def userid(i: int) -> str:
        return f"u{i:06d}"

    def team_of(self, i: int) -> int:
        return i // TEAM_SIZE

    def team_members(self, team: int) -> range:
        return range(team * TEAM_SIZE, min((team + 1) * TEAM_SIZE, self.size))

    @property
    def teams(self) -> int:
        return (self.size + TEAM_SIZE - 1) // TEAM_SIZE

    def division_of_team(self, team: int) -> int:
        return team // TEAMS_PER_DIVISION

    def dept_path(self, team: int) -> str:
        return f"集团/第{self.division_of_team(team) + 1:02d}事业部/{team + 1:04d}组"

    def manager_of(self, i: int) -> str | None:
        if i == 0:
            return None
        team = self.team_of(i)
        lead = team * TEAM_SIZE
        if i != lead:
            return self.userid(lead)
        head = self.division_of_team(team) * TEAMS_PER_DIVISION * TEAM_SIZE
        return self.userid(head) if lead != head else self.userid(0)


def person_name(i: int) -> str:
    """A deterministic Chinese name; about one in a few hundred is shared (同名), as in real companies."""
    h = (i * 2654435761) & 0xFFFFFFFF
    given = GIVEN[h % len(GIVEN)] + (GIVEN[(h >> 8) % len(GIVEN)] if (h >> 16) % 10 < 6 else "")
    return SURNAMES[(h >> 20) % len(SURNAMES)] + given


def _pinyin_cache() -> Any:
    from store.pinyin import name_keys
    cache: dict[str, tuple[str, str]] = {}

    def keys(name: str) -> tuple[str, str]:
        got = cache.get(name)
        if got is None:
            got = cache[name] = name_keys(name)
        return got
    return keys


def employees(shape: Shape, tenant: str) -> Iterator[dict[str, Any]]:
    keys = _pinyin_cache()
    for i in range(shape.size):
        name = person_name(i)
        full, initials = keys(name)
        team = shape.team_of(i)
        roles = []
        if i == 0:
            roles = ["manager", "admin"]
        elif i % TEAM_SIZE == 0:
            roles = ["manager"]
        if i in (1, 2, 3):
            roles.append("hr")
        yield dict(tenant=tenant, userid=shape.userid(i), name=name, department=shape.dept_path(team),
                   manager_userid=shape.manager_of(i), roles=";".join(roles), active=True,
                   pinyin=full, initials=initials)


def departments(shape: Shape, tenant: str) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for team in range(shape.teams):
        path = shape.dept_path(team)
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            p = "/".join(parts[:depth])
            if p not in seen:
                seen.add(p)
                yield dict(tenant=tenant, path=p, name=parts[depth - 1])


def goals(tenant: str, period: str) -> Iterator[dict[str, Any]]:
    for o in range(1, 5):
        yield dict(tenant=tenant, code=f"O{o}", title=f"公司目标{o}", parent_code=None, department="集团",
                   weight=0.25, period=period, level=1, status="active")
        for kr in range(1, 4):
            yield dict(tenant=tenant, code=f"O{o}-KR{kr}", title=f"关键结果{o}-{kr}", parent_code=f"O{o}",
                       department="集团", weight=1 / 3, period=period, level=2, status="active")


GOAL_CODES = [f"O{o}-KR{kr}" for o in range(1, 5) for kr in range(1, 4)]


def history(shape: Shape, tenant: str, end_week: str, weeks: int, seed: int = 49,
            *, ids_from: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(weekly actions, leaves, edits) for `weeks` weeks ending with `end_week`."""
    rnd = random.Random(seed).random
    actions: list[dict[str, Any]] = []
    leaves: list[dict[str, Any]] = []
    edits: list[dict[str, Any]] = []
    utc = timezone.utc
    uids = [shape.userid(i) for i in range(shape.size)]
    next_id = ids_from
    n_things, n_goals = len(THINGS), len(GOAL_CODES)
    for week in week_range(week_back(end_week, weeks - 1), end_week):
        days = week_days(week)
        monday = datetime.combine(days[0], time(2, 0), utc)  # 10:00 in Shanghai
        minutes = [monday + timedelta(minutes=m) for m in range(600)]
        for i in range(shape.size):
            r = rnd()
            if r < 0.02:
                start = days[int(rnd() * 5)]
                leaves.append(dict(tenant=tenant, userid=uids[i], start_day=start,
                                   end_day=start + timedelta(days=int(rnd() * 3)), reason="年假", created_at=monday))
                continue
            if r > 0.87:
                continue  # not filled in
            lo = (i // TEAM_SIZE) * TEAM_SIZE
            span = min(lo + TEAM_SIZE, shape.size) - lo
            witness = lo + int(rnd() * span)
            if witness == i:
                witness = lo + (i - lo + 1) % span if span > 1 else (i + 1) % shape.size
            s = rnd()
            status = "confirmed" if s < 0.45 else "done" if s < 0.65 else "not_done" if s < 0.72 else "open"
            created = minutes[int(rnd() * 600)]
            done_at = created + timedelta(days=1 + int(rnd() * 3)) if s < 0.65 else None
            confirmed_at = done_at + timedelta(hours=1 + int(rnd() * 19)) if s < 0.45 and done_at else None
            thing = THINGS[int(rnd() * n_things)]
            actions.append(dict(
                id=next_id, tenant=tenant, userid=uids[i], week=week,
                goal_code=GOAL_CODES[int(rnd() * n_goals)] if rnd() < 0.7 else None,
                thing=thing, witness_userid=uids[witness], status=status,
                witness_state="accepted", created_at=created, done_at=done_at, confirmed_at=confirmed_at,
                nudged_at=None))
            if rnd() < 0.05:
                edits.append(dict(tenant=tenant, action_id=next_id, by_userid=uids[i],
                                  at=created + timedelta(hours=1), field_name="thing", old_value="初稿",
                                  new_value=thing))
            next_id += 1
    return actions, leaves, edits


@lru_cache(maxsize=100_000)
def _sqlite_time(v: datetime) -> str:
    # The text form SQLAlchemy's SQLite dialect writes, so the ORM reads these rows back as its own.
    return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_value(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float)) and not isinstance(v, bool):
        return v
    if isinstance(v, datetime):
        return _sqlite_time(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    return v


def _sqlite_bulk(path: str, table: str, rows: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")  # a generated data set: rebuilt, never recovered
    n = 0
    try:
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return 0
        cols = list(first)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

        def tuples() -> Iterator[tuple[Any, ...]]:
            nonlocal n
            for row in _chain(first, it):
                n += 1
                yield tuple(_sqlite_value(row[c]) for c in cols)
        with conn:
            conn.executemany(sql, tuples())
    finally:
        conn.close()
    return n


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


async def _bulk(db: Database, model: Any, rows: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> int:
    if not db.is_postgres:
        import asyncio
        from sqlalchemy.engine import make_url
        return await asyncio.to_thread(_sqlite_bulk, make_url(db.url).database or "", model.__tablename__, rows)
    n = 0
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        async with db.engine.begin() as conn:
            await conn.execute(insert(model.__table__), batch)

    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            await flush()
            n += len(batch)
            batch = []
    if batch:
        await flush()
        n += len(batch)
    return n


async def populate(db: Database, tenant: str, size: int, *, name: str = "基准测试集团", platform: str = "console",
                   end_week: str | None = None, weeks: int = 0) -> dict[str, int]:
    """Write a company of `size` people (and `weeks` of history up to `end_week`) into a migrated database."""
    shape = Shape(size)
    counts: dict[str, int] = {}
    async with db.engine.begin() as conn:
        await conn.execute(insert(Tenant.__table__), [dict(key=tenant, name=name, timezone="Asia/Shanghai",
                                                             locale="zh", platform=platform)])
    counts["departments"] = await _bulk(db, Department, departments(shape, tenant))
    counts["employees"] = await _bulk(db, Employee, employees(shape, tenant))
    counts["goals"] = await _bulk(db, Goal, goals(tenant, "2026Q4"))
    if weeks and end_week:
        actions, leaves, edits = history(shape, tenant, end_week, weeks)
        counts["weekly_actions"] = await _bulk(db, WeeklyAction, actions)
        counts["leaves"] = await _bulk(db, Leave, leaves)
        counts["action_edits"] = await _bulk(db, ActionEdit, edits)
        if db.is_postgres:
            from sqlalchemy import text
            async with db.engine.begin() as conn:
                await conn.execute(text("SELECT setval(pg_get_serial_sequence('weeklyaction', 'id'), "
                                        "(SELECT max(id) FROM weeklyaction))"))
    async with db.engine.begin() as conn:
        from sqlalchemy import text
        await conn.execute(text("ANALYZE"))
    return counts
