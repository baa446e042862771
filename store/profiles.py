"""Role capability profiles (岗位画像): what the strongest people of a department actually do.

For a department (and its sub-departments), optionally narrowed to one role, over the last
`window_weeks` complete ISO weeks:

- a person **qualifies** when they are active, in scope, and wrote a weekly action in at least
  `min_weeks` distinct weeks of the window (fewer weeks say too little about how they work);
- each qualifying person gets the composite score of `WEIGHTS` (its parts are in `Score`);
- the top `top_share` of them (rounded up, never fewer than `min_top`) make the top group;
- nothing is produced unless at least `min_people` qualify, so a profile never describes a
  group small enough to point at its members.

What the top group shows: the goal codes of their weekly actions, the frequent words of their
weekly actions and tasks, the departments outside the scope they worked with (witness, feedback
and task edges), and the competencies held at L3. Only counts are kept — never a user id or a
name — so the stored evidence is as safe to show as the profile itself.
"""
from __future__ import annotations

import asyncio
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Text, UniqueConstraint, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.core.calendar import iso_week, week_back, week_days, week_range
from store import terms
from store.competencies import final_levels, library
from store.feedback import local_day_start
from store.models import BigId, Department, Employee, Feedback, Goal, Task, WeeklyAction, _ts
from store.statuses import ActionStatus, Polarity, TaskStatus, WitnessState

# The composite: each part is a share between 0 and 1; a part a person has no data for (no task
# due in the window) is left out and the other weights count in its place.
WEIGHTS: dict[str, float] = {"completion": 0.35, "witnessed": 0.25, "praise": 0.20, "on_time": 0.20}
PENDING, APPROVED, REJECTED, SUPERSEDED = "pending", "approved", "rejected", "superseded"
MIN_TERM_COUNT = 2  # a word used once is an anecdote, not a duty
# The row that holds the departments too small to name: naming a one-person department names that person.
OTHER_DEPARTMENTS = "*other*"


class RoleProfile(SQLModel, table=True):
    """One build of a profile and its JD suggestion; pending until HR approves or rejects it."""

    __tablename__ = "role_profile"
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    department: str  # the department path it is for (sub-departments included)
    role: str = ""  # a role of the roster (manager, pmo …) when narrowed to it
    state: str = PENDING  # pending | approved | rejected | superseded
    first_week: str = ""
    last_week: str = ""
    qualified: int = 0
    top: int = 0
    # The figures behind every line (counts and weeks only, never a person).
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    markdown: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    built_by: str = ""
    built_at: datetime = _ts(nullable=False)
    decided_by: str = ""
    decided_at: Optional[datetime] = _ts()
    decision_note: str = ""


class RoleJD(SQLModel, table=True):
    """The current job description of a department (or one role in it), to compare a profile with."""

    __tablename__ = "role_jd"
    __table_args__ = (UniqueConstraint("tenant", "department", "role"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    department: str
    role: str = ""
    text: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = _ts(nullable=False)


@dataclass(frozen=True)
class Rules:
    window_weeks: int = 26
    min_weeks: int = 8
    min_people: int = 5
    top_share: float = 0.2
    min_top: int = 3
    max_goals: int = 8
    max_terms: int = 15
    max_departments: int = 8


@dataclass
class Score:
    """One person's figures over the window (kept in memory only, never stored)."""

    userid: str
    weeks: set[str] = field(default_factory=set)
    actions: int = 0
    done: int = 0
    confirmed: int = 0
    praise: int = 0
    tasks_due: int = 0
    on_time: int = 0

    def parts(self, max_praise: int) -> dict[str, float | None]:
        return {
            "completion": self.done / self.actions if self.actions else None,
            "witnessed": self.confirmed / self.done if self.done else (0.0 if self.actions else None),
            "praise": self.praise / max_praise if max_praise else None,
            "on_time": self.on_time / self.tasks_due if self.tasks_due else None,
        }

    def composite(self, max_praise: int) -> float:
        parts = {k: v for k, v in self.parts(max_praise).items() if v is not None}
        total = sum(WEIGHTS[k] for k in parts)
        return sum(WEIGHTS[k] * v for k, v in parts.items()) / total if total else 0.0


@dataclass
class Build:
    department: str
    role: str
    first_week: str
    last_week: str
    in_scope: int
    qualified: int
    top: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    words: set[str] = field(default_factory=set)  # every word the top group used (for duties no longer seen)

    @property
    def produced(self) -> bool:
        return bool(self.evidence)


def utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc)


def window(now: datetime, tz: Any, weeks: int) -> tuple[str, str]:
    """The `weeks` complete ISO weeks before the week of `now`."""
    last = week_back(iso_week(now.astimezone(tz).date()), 1)
    return week_back(last, weeks - 1), last


def top_count(qualified: int, rules: Rules) -> int:
    return min(qualified, max(math.ceil(qualified * rules.top_share - 1e-9), rules.min_top))


def in_scope(path: str, department: str) -> bool:
    return department == path or department.startswith(path + "/")


# What people type for a roster role (store/roster.py ROLES); `employee` is whoever holds no other.
ROLE_WORDS = {"employee": "employee", "员工": "employee", "manager": "manager", "主管": "manager", "经理": "manager",
              "管理者": "manager", "hr": "hr", "人事": "hr", "人力": "hr", "pmo": "pmo", "项目经理": "pmo",
              "admin": "admin", "管理员": "admin"}


def role_of(word: str) -> str | None:
    return ROLE_WORDS.get(word.strip().casefold())


def has_role(e: Employee, role: str) -> bool:
    if not role:
        return True
    held = set(e.role_list)
    return role in held or (role == "employee" and not held)


async def departments(session: AsyncSession, tenant: str) -> list[str]:
    """Every department path of the tenant: the departments table and where people are."""
    paths = set((await session.execute(select(Department.path).where(Department.tenant == tenant))).scalars())
    paths |= set((await session.execute(select(Employee.department).where(
        Employee.tenant == tenant, Employee.department != ""))).scalars())
    out = set()
    for p in paths:
        parts = p.split("/")
        out |= {"/".join(parts[: i + 1]) for i in range(len(parts))}
    return sorted(out)


def match_department(paths: list[str], typed: str) -> list[str]:
    """'研发中心/注册部' or '注册部' → the paths it names: exact, else those ending with it."""
    t = "/".join(p.strip() for p in typed.strip().strip("/").split("/"))
    if not t:
        return []
    if t in paths:
        return [t]
    return [p for p in paths if p.endswith("/" + t)]


async def build(session: AsyncSession, tenant: str, department: str, role: str, *, now: datetime, tz: Any,
                rules: Rules) -> Build:
    first, last = window(now, tz, rules.window_weeks)
    weeks = week_range(first, last)
    start = local_day_start(week_days(first)[0], tz)
    end = local_day_start(week_days(last)[-1] + timedelta(days=1), tz)
    staff = list((await session.execute(select(Employee).where(
        Employee.tenant == tenant, Employee.active.is_(True)))).scalars())
    dept_of = {e.userid: e.department for e in staff}
    people = [e for e in staff if in_scope(department, e.department) and has_role(e, role)]
    ids = sorted(e.userid for e in people)
    scores = {u: Score(u) for u in ids}
    actions = list((await session.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant, col(WeeklyAction.userid).in_(ids), col(WeeklyAction.week).in_(weeks))
        .order_by(WeeklyAction.id))).scalars()) if ids else []
    for a in actions:
        s = scores[a.userid]
        s.weeks.add(a.week)
        s.actions += 1
        if a.status in (ActionStatus.DONE, ActionStatus.CONFIRMED):
            s.done += 1
        if a.status == ActionStatus.CONFIRMED:
            s.confirmed += 1
    qualified = [u for u in ids if len(scores[u].weeks) >= rules.min_weeks]
    result = Build(department, role, first, last, len(ids), len(qualified))
    if len(qualified) < rules.min_people:
        return result
    for f in (await session.execute(select(Feedback).where(
            Feedback.tenant == tenant, col(Feedback.receiver_userid).in_(qualified),
            Feedback.polarity == Polarity.PRAISE, Feedback.created_at >= start, Feedback.created_at < end))).scalars():
        scores[f.receiver_userid].praise += 1
    for t in (await session.execute(select(Task).where(
            Task.tenant == tenant, col(Task.owner_userid).in_(qualified), Task.due_at >= start,
            Task.due_at < min(end, utc(now))))).scalars():
        s = scores[t.owner_userid]
        s.tasks_due += 1
        if t.status == TaskStatus.DONE and t.completed_at is not None and t.completed_at <= t.due_at:
            s.on_time += 1
    max_praise = max(scores[u].praise for u in qualified)
    ranked = sorted(qualified, key=lambda u: (-scores[u].composite(max_praise), -len(scores[u].weeks), u))
    top = set(ranked[: top_count(len(qualified), rules)])
    result.top = len(top)
    # The dictionary loads in a thread, so the first build does not hold up everyone's messages for a second.
    await asyncio.to_thread(terms.ready)
    # Everyone ever on the roster: a colleague who left is still a name.
    names = sorted(set((await session.execute(select(Employee.name).where(Employee.tenant == tenant))).scalars()))
    mine = [a for a in actions if a.userid in top]
    tasks = await _top_tasks(session, tenant, top, start, end)
    result.words = corpus([a.thing for a in mine] + [t.title for t in tasks], names)
    result.evidence = {
        "weights": dict(WEIGHTS),
        "rules": {"window_weeks": rules.window_weeks, "min_weeks": rules.min_weeks, "min_people": rules.min_people,
                  "top_share": rules.top_share, "min_top": rules.min_top},
        "goals": await _goals(session, tenant, mine, rules),
        "terms": _terms(mine, tasks, names, tz, rules),
        "departments": await _collaboration(session, tenant, department, top, mine, tasks, dept_of, weeks, start,
                                            end, rules),
        "competencies": await _l3(session, tenant, top, week_days(first)[0], week_days(last)[-1]),
    }
    return result


async def _top_tasks(session: AsyncSession, tenant: str, top: set[str], start: datetime, end: datetime) -> list[Task]:
    """Tasks the top group owns or works on that were due or finished in the window."""
    rows = (await session.execute(select(Task).where(
        Task.tenant == tenant,
        or_(col(Task.due_at).between(start, end), col(Task.completed_at).between(start, end))))).scalars()
    return [t for t in rows if t.owner_userid in top or top & _collaborators(t)]


def _collaborators(t: Task) -> set[str]:
    return set(t.collaborator_ids)


async def _goals(session: AsyncSession, tenant: str, actions: list[WeeklyAction], rules: Rules) -> list[dict[str, Any]]:
    by: dict[str, dict[str, Any]] = defaultdict(lambda: {"actions": 0, "people": set(), "weeks": set()})
    for a in actions:
        if a.goal_code:
            g = by[a.goal_code]
            g["actions"] += 1
            g["people"].add(a.userid)
            g["weeks"].add(a.week)
    titles = {g.code: g.title for g in (await session.execute(select(Goal).where(
        Goal.tenant == tenant, col(Goal.code).in_(sorted(by))))).scalars()} if by else {}
    rows = sorted(by.items(), key=lambda kv: (-len(kv[1]["people"]), -kv[1]["actions"], kv[0]))
    return [{"code": code, "title": titles.get(code, ""), "actions": v["actions"], "people": len(v["people"]),
             "weeks": len(v["weeks"])} for code, v in rows[: rules.max_goals]]


def _terms(actions: list[WeeklyAction], tasks: list[Task], names: list[str], tz: Any,
           rules: Rules) -> list[dict[str, Any]]:
    by: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "people": set(), "weeks": set(),
                                                         "actions": 0, "tasks": 0})
    for a in actions:
        for w in set(terms.words(a.thing, names)):
            t = by[w]
            t["count"] += 1
            t["actions"] += 1
            t["people"].add(a.userid)
            t["weeks"].add(a.week)
    for task in tasks:
        for w in set(terms.words(task.title, names)):
            t = by[w]
            t["count"] += 1
            t["tasks"] += 1
            t["people"].add(task.owner_userid)
            t["weeks"].add(iso_week(task.due_at.astimezone(tz).date()))
    rows = sorted(((w, v) for w, v in by.items() if v["count"] >= MIN_TERM_COUNT),
                  key=lambda kv: (-len(kv[1]["people"]), -kv[1]["count"], kv[0]))
    return [{"term": w, "count": v["count"], "actions": v["actions"], "tasks": v["tasks"], "people": len(v["people"]),
             "weeks": len(v["weeks"])} for w, v in rows[: rules.max_terms]]


async def _collaboration(session: AsyncSession, tenant: str, scope: str, top: set[str], actions: list[WeeklyAction],
                         tasks: list[Task], dept_of: dict[str, str], weeks: list[str], start: datetime,
                         end: datetime, rules: Rules) -> list[dict[str, Any]]:
    """Departments outside the scope linked to the top group by a witness, a feedback or a task."""
    by: dict[str, dict[str, Any]] = defaultdict(lambda: {"witness": 0, "feedback": 0, "task": 0, "people": set(),
                                                         "others": set()})

    def edge(member: str, other: str, kind: str) -> None:
        d = dept_of.get(other, "")
        if other == member or not d or in_scope(scope, d):
            return
        by[d][kind] += 1
        by[d]["people"].add(member)
        by[d]["others"].add(other)

    for a in actions:
        if a.witness_state == WitnessState.ACCEPTED:
            edge(a.userid, a.witness_userid, "witness")
    for a in (await session.execute(select(WeeklyAction).where(
            WeeklyAction.tenant == tenant, col(WeeklyAction.witness_userid).in_(sorted(top)),
            col(WeeklyAction.week).in_(weeks), WeeklyAction.witness_state == WitnessState.ACCEPTED))).scalars():
        edge(a.witness_userid, a.userid, "witness")
    for f in (await session.execute(select(Feedback).where(
            Feedback.tenant == tenant, Feedback.created_at >= start, Feedback.created_at < end,
            or_(col(Feedback.giver_userid).in_(sorted(top)), col(Feedback.receiver_userid).in_(sorted(top)))))).scalars():
        if f.giver_userid in top:
            edge(f.giver_userid, f.receiver_userid, "feedback")
        if f.receiver_userid in top:
            edge(f.receiver_userid, f.giver_userid, "feedback")
    for t in tasks:
        crew = {t.owner_userid} | _collaborators(t)
        for member in crew & top:
            for other in crew - {member}:
                edge(member, other, "task")
    return _name_large_enough(by, dept_of, rules)


def _name_large_enough(by: dict[str, dict[str, Any]], dept_of: dict[str, str], rules: Rules) -> list[dict[str, Any]]:
    """Departments named only with at least `min_people` members and as many distinct collaborators from
    them; the others are summed into one row (OTHER_DEPARTMENTS), last."""
    headcount: dict[str, int] = defaultdict(int)
    for d in dept_of.values():
        headcount[d] += 1
    named: dict[str, dict[str, Any]] = {}
    other: dict[str, Any] = {"witness": 0, "feedback": 0, "task": 0, "people": set()}
    for d, v in by.items():
        if headcount[d] >= rules.min_people and len(v["others"]) >= rules.min_people:
            named[d] = v
        else:
            for k in ("witness", "feedback", "task"):
                other[k] += v[k]
            other["people"] |= v["people"]
    rows = sorted(named.items(), key=lambda kv: (-(kv[1]["witness"] + kv[1]["feedback"] + kv[1]["task"]), kv[0]))
    out = [{"department": d, "witness": v["witness"], "feedback": v["feedback"], "task": v["task"],
            "people": len(v["people"])} for d, v in rows[: rules.max_departments]]
    if other["people"]:
        out.append({"department": OTHER_DEPARTMENTS, "witness": other["witness"], "feedback": other["feedback"],
                    "task": other["task"], "people": len(other["people"])})
    return out


def _quarters(first: date, last: date) -> list[str]:
    out: list[str] = []
    d = first
    while d <= last:
        q = f"{d.year}Q{(d.month - 1) // 3 + 1}"
        if q not in out:
            out.append(q)
        d += timedelta(days=28)
    q = f"{last.year}Q{(last.month - 1) // 3 + 1}"
    return out if q in out else out + [q]


async def _l3(session: AsyncSession, tenant: str, top: set[str], first: date, last: date) -> list[dict[str, Any]]:
    """Competencies at L3 (the level that counts: agreed, else the manager's) in a period of the window."""
    held: dict[str, set[str]] = defaultdict(set)
    for period in _quarters(first, last):
        for userid in sorted(top):
            for code, level in (await final_levels(session, tenant, period, userid)).items():
                if level == 3:
                    held[code].add(userid)
    lib = await library(session, tenant)
    return [{"code": code, "name": lib[code].name if code in lib else "", "people": len(who)}
            for code, who in sorted(held.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


# -- the JD and what changes in it ------------------------------------------------------------

_DUTY_SPLIT = re.compile(r"[\n；;。]+")
_BULLET = re.compile(r"^\s*(?:[-*·•]|\d+[.、)）]|[（(]\d+[)）])\s*")


def duty_lines(jd: str) -> list[str]:
    return [d for d in (_BULLET.sub("", x).strip() for x in _DUTY_SPLIT.split(jd)) if d]


async def current_jd(session: AsyncSession, tenant: str, department: str, role: str) -> RoleJD | None:
    """The JD of the department, else of the nearest department above it."""
    parts = department.split("/")
    for i in range(len(parts), 0, -1):
        row = (await session.execute(select(RoleJD).where(
            RoleJD.tenant == tenant, RoleJD.department == "/".join(parts[:i]), RoleJD.role == role))).scalar_one_or_none()
        if row is not None:
            return row
    return None


async def set_jd(session: AsyncSession, tenant: str, department: str, role: str, text: str, now: datetime) -> RoleJD:
    row = (await session.execute(select(RoleJD).where(
        RoleJD.tenant == tenant, RoleJD.department == department, RoleJD.role == role))).scalar_one_or_none()
    row = row or RoleJD(tenant=tenant, department=department, role=role, text=text, updated_at=utc(now))
    row.text, row.updated_at = text, utc(now)
    session.add(row)
    return row


def changes(evidence: dict[str, Any], jd: str | None, previous: dict[str, Any] | None,
            corpus_words: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Duties to add (frequent words and goals the JD does not mention) and duties no longer seen
    (JD lines none of whose words the top group used; words of the last approved profile now absent)."""
    add = [{"kind": "term", **t} for t in evidence["terms"] if not jd or not terms.mentions(t["term"], jd)]
    add += [{"kind": "goal", **g} for g in evidence["goals"] if not jd or not terms.mentions(g["code"], jd)]
    gone: list[dict[str, Any]] = []
    for i, line in enumerate(duty_lines(jd or ""), 1):
        ws = set(terms.words(line))
        if ws and not ws & corpus_words:
            gone.append({"kind": "jd", "line": line, "number": i})
    for t in (previous or {}).get("terms", []):
        if t["term"] not in corpus_words:
            gone.append({"kind": "previous", "term": t["term"], "count": t["count"], "weeks": t["weeks"]})
    return {"add": add, "gone": gone}


def corpus(actions: list[str], names: list[str]) -> set[str]:
    out: set[str] = set()
    for text in actions:
        out |= set(terms.words(text, names))
    return out


# -- stored profiles -------------------------------------------------------------------------

async def supersede(session: AsyncSession, tenant: str, department: str, role: str) -> list[RoleProfile]:
    rows = list((await session.execute(select(RoleProfile).where(
        RoleProfile.tenant == tenant, RoleProfile.department == department, RoleProfile.role == role,
        RoleProfile.state == PENDING))).scalars())
    for row in rows:
        row.state = SUPERSEDED
        session.add(row)
    return rows


async def last_approved(session: AsyncSession, tenant: str, department: str, role: str) -> RoleProfile | None:
    return (await session.execute(select(RoleProfile).where(
        RoleProfile.tenant == tenant, RoleProfile.department == department, RoleProfile.role == role,
        RoleProfile.state == APPROVED).order_by(col(RoleProfile.id).desc()).limit(1))).scalar_one_or_none()


async def profile(session: AsyncSession, tenant: str, profile_id: int) -> RoleProfile | None:
    return (await session.execute(select(RoleProfile).where(
        RoleProfile.tenant == tenant, RoleProfile.id == profile_id))).scalar_one_or_none()


async def profiles(session: AsyncSession, tenant: str, state: str | None = None) -> list[RoleProfile]:
    q = select(RoleProfile).where(RoleProfile.tenant == tenant)
    if state:
        q = q.where(RoleProfile.state == state)
    return list((await session.execute(q.order_by(col(RoleProfile.id).desc()))).scalars())


def decide(row: RoleProfile, verdict: str, by: str, now: datetime, note: str = "") -> None:
    row.state = APPROVED if verdict == "approve" else REJECTED
    row.decided_by, row.decided_at, row.decision_note = by, utc(now), note[:200]
