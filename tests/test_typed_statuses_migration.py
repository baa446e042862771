"""Migration 0006: a database that stored task statuses as Chinese labels comes out with the
stable English values (and goes back with the labels on downgrade), on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import AsyncIterator

import pytest
from sqlalchemy import select, text

from store.db import Database
from store.migrate import current_revision, downgrade, head_revision, upgrade
from store.models import Feedback, Task, TaskUpdate
from store.statuses import Impact, Polarity, TaskField, TaskStatus, TaskUpdateKind
from tests.conftest import database_at

BEFORE = "0004"
AT = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
async def old_db(db_url: str) -> AsyncIterator[Database]:
    """A database at the revision before typed statuses."""
    async with database_at(db_url, BEFORE) as database:
        yield database


async def _old_rows(db: Database) -> None:
    """Rows as the code before 0006 wrote them: statuses and edited fields by their Chinese label."""
    async with db.engine.begin() as conn:
        for i, status in enumerate(("待开始", "进行中", "阻塞", "已完成"), start=1):
            await conn.execute(text(
                "INSERT INTO task (id, tenant, project_id, code, title, owner_userid, collaborators, due_at,"
                " deliverable_template, status, block_reason, deliverable, created_at, status_updated_at)"
                " VALUES (:id, 'acme', 1, :code, '压测', 'wangqiang', '', :at, '', :status, '', '', :at, :at)"),
                {"id": i, "code": f"T{i}", "status": status, "at": AT})
        updates = [
            (1, "created", "", "待开始", "导入"),
            (2, "status", "待开始", "进行中", ""),
            (3, "status", "进行中", "阻塞", "等采购确认"),
            (4, "status", "阻塞", "已完成", "压测报告"),
            (1, "edit", "wangqiang", "lina", "负责人"),
            (1, "edit", "压测", "直播压测", "名称"),
            (2, "edit", "", "lina;zhaomin", "协作人"),
            (2, "edit", "", "报告", "交付物要求"),
            # Free text that happens to be a label stays as it was: only status and field columns change.
            (3, "due", "12-01 12:00", "12-03 12:00", "阻塞"),
        ]
        for n, (task_id, kind, old, new, note) in enumerate(updates, start=1):
            await conn.execute(text(
                "INSERT INTO task_update (id, tenant, task_id, by_userid, at, kind, old_value, new_value, note)"
                " VALUES (:id, 'acme', :task, 'wangqiang', :at, :kind, :old, :new, :note)"),
                {"id": n, "task": task_id, "at": AT, "kind": kind, "old": old, "new": new, "note": note})
        for n, (polarity, impact) in enumerate((("认可", "客户级"), ("改进", "团队级"), ("认可", "流程级")), start=1):
            await conn.execute(text(
                "INSERT INTO feedback (id, tenant, giver_userid, receiver_userid, tag, polarity, impact, event, created_at)"
                " VALUES (:id, 'acme', 'lina', 'wangqiang', '主动补位', :polarity, :impact, '周二夜里帮客户排查退货', :at)"),
                {"id": n, "polarity": polarity, "impact": impact, "at": AT})


async def _raw(db: Database, sql: str) -> list[tuple[str, ...]]:
    async with db.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]


async def test_upgrade_turns_labels_into_values_and_downgrade_turns_them_back(old_db: Database) -> None:
    await _old_rows(old_db)
    # Up to head, through the migrations after 0006 too: none of them may undo the values.
    await upgrade(old_db)
    assert await current_revision(old_db) == head_revision()
    async with old_db.session() as s:
        tasks = {t.code: t.status for t in (await s.execute(select(Task))).scalars()}
        updates = list((await s.execute(select(TaskUpdate).order_by(TaskUpdate.id))).scalars())  # type: ignore[arg-type]
        feedback = [(f.polarity, f.impact) for f in (await s.execute(select(Feedback).order_by(Feedback.id))).scalars()]  # type: ignore[arg-type]
    assert tasks == {"T1": TaskStatus.TODO, "T2": TaskStatus.DOING, "T3": TaskStatus.BLOCKED, "T4": TaskStatus.DONE}
    assert all(isinstance(v, TaskStatus) for v in tasks.values())
    assert [(u.kind, u.old_value, u.new_value, u.note) for u in updates] == [
        (TaskUpdateKind.CREATED, "", "todo", "导入"),
        (TaskUpdateKind.STATUS, "todo", "doing", ""),
        (TaskUpdateKind.STATUS, "doing", "blocked", "等采购确认"),
        (TaskUpdateKind.STATUS, "blocked", "done", "压测报告"),
        (TaskUpdateKind.EDIT, "wangqiang", "lina", TaskField.OWNER),
        (TaskUpdateKind.EDIT, "压测", "直播压测", TaskField.TITLE),
        (TaskUpdateKind.EDIT, "", "lina;zhaomin", TaskField.COLLABORATORS),
        (TaskUpdateKind.EDIT, "", "报告", TaskField.DELIVERABLE),
        (TaskUpdateKind.DUE, "12-01 12:00", "12-03 12:00", "阻塞"),
    ]
    assert feedback == [(Polarity.PRAISE, Impact.CUSTOMER), (Polarity.IMPROVE, Impact.TEAM),
                        (Polarity.PRAISE, Impact.PROCESS)]
    # The labels are in the texts, per locale.
    assert [TaskStatus(v).label("zh") for v in ("todo", "doing", "blocked", "done")] == ["待开始", "进行中", "阻塞", "已完成"]
    assert TaskStatus.BLOCKED.label("en") == "Blocked"

    await downgrade(old_db, BEFORE)
    assert await current_revision(old_db) == BEFORE
    assert await _raw(old_db, "SELECT code, status FROM task ORDER BY id") == [
        ("T1", "待开始"), ("T2", "进行中"), ("T3", "阻塞"), ("T4", "已完成")]
    assert await _raw(old_db, "SELECT old_value, new_value, note FROM task_update ORDER BY id") == [
        ("", "待开始", "导入"), ("待开始", "进行中", ""), ("进行中", "阻塞", "等采购确认"), ("阻塞", "已完成", "压测报告"),
        ("wangqiang", "lina", "负责人"), ("压测", "直播压测", "名称"), ("", "lina;zhaomin", "协作人"),
        ("", "报告", "交付物要求"), ("12-01 12:00", "12-03 12:00", "阻塞")]
    assert await _raw(old_db, "SELECT polarity, impact FROM feedback ORDER BY id") == [
        ("认可", "客户级"), ("改进", "团队级"), ("认可", "流程级")]


async def test_a_label_can_no_longer_be_stored_as_a_status(db: Database) -> None:
    """The column refuses what is not a value: a label written by mistake fails, it is not kept."""
    async with db.session() as s:
        s.add(Task(tenant="acme", project_id=1, code="T9", title="x", owner_userid="u", due_at=AT,
                   status="已完成", created_at=AT, status_updated_at=AT))
        with pytest.raises(Exception, match="已完成"):
            await s.flush()
