"""Deliverable checks kept per task, on SQLite and PostgreSQL: the light, the values and their source."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from handlers.deliverables.extract import Extraction, Limits, Reading, read_file
from handlers.deliverables.lights import UNSURE, confirm, judge, verdict_of, FieldResult
from store.db import Database
from store.deliverables import checks_of, closable, latest_check, record_check, update_fields
from tests.test_deliverables_extract import ISSUE_RULES, RULES, locust_history

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


async def test_checks_are_kept_per_task_and_tenant_and_a_red_one_needs_an_override(db: Database) -> None:
    ex = read_file(locust_history([1000, 2000], 10_000, 500, 700.0), "run_stats_history.csv", RULES.fields, Limits())
    red = judge(RULES, ex, 0.85)
    assert red.light == "red"  # 2000 users, 5 % errors, 700 ms: read from a machine-readable file
    async with db.session() as s:
        await record_check(s, "acme", 7, at=T0, by_userid="tangkai", source="chat_file", filename="run_stats_history.csv",
                           template=RULES.name, method=ex.method, problem="", light=red.light, reason=red.reason,
                           fields=red.to_json())
        missing = judge(ISSUE_RULES, ex, 0.85)
        await record_check(s, "other", 7, at=T0 + timedelta(hours=1), by_userid="x", source="upload", filename="a.csv",
                           template=ISSUE_RULES.name, method=ex.method, problem="", light=missing.light,
                           reason=missing.reason, fields=missing.to_json())
        await s.commit()
    async with db.session() as s:
        row = await latest_check(s, "acme", 7)
        assert row is not None and row.light == "red" and row.method == "locust"
        by = {f["label"]: f for f in row.fields}
        assert by["并发量"]["value"] == 2000 and by["并发量"]["snippet"] == "max User Count=2000"
        assert not closable(row)
        row.override_by, row.override_at = "lina", T0 + timedelta(hours=2)
        s.add(row)
        other = await latest_check(s, "other", 7)
        # 5 % errors against ≤ 0.1 % is red, which outranks the two missing required fields (缺项).
        assert other is not None and other.light == "red"
        assert [f["label"] for f in other.fields if f["note"] == "缺项"] == ["CPU峰值", "移动端并发"]
        assert await latest_check(s, "acme", 8) is None and closable(None)
        await s.commit()
    async with db.session() as s:
        row = await latest_check(s, "acme", 7)
        assert row is not None and closable(row) and row.override_by == "lina"
        assert set(await checks_of(s, "acme", [7, 8])) == {7}


async def test_the_owners_confirmation_changes_the_stored_light(db: Database) -> None:
    ex = Extraction("png", "ocr", {"并发量": Reading("并发量", 5600, "5600", "ocr", 0.6, "并发量 5600"),
                                   "错误率": Reading("错误率", 0.02, "0.02%", "ocr", 0.99, "错误率 0.02%"),
                                   "平均响应时间": Reading("平均响应时间", 120, "120ms", "ocr", 0.97, "平均响应时间 120ms")})
    v = judge(RULES, ex, 0.85)
    assert v.light == "yellow" and v.reason == UNSURE
    async with db.session() as s:
        row = await record_check(s, "acme", 3, at=T0, by_userid="tangkai", source="chat_image", filename="a.png",
                                 template=RULES.name, method="ocr", problem="", light=v.light, reason=v.reason,
                                 fields=v.to_json())
        await s.commit()
    async with db.session() as s:
        row = await latest_check(s, "acme", 3)
        assert row is not None
        fields = confirm([FieldResult(**f) for f in row.fields], "并发量", RULES)
        after = verdict_of(fields)
        update_fields(row, [f.__dict__ for f in fields], after.light, after.reason)
        s.add(row)
        await s.commit()
    async with db.session() as s:
        row = await latest_check(s, "acme", 3)
        assert row is not None and row.light == "green"
        assert {f["label"]: f["method"] for f in row.fields}["并发量"] == "ocr+confirmed"
