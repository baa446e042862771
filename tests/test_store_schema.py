"""The schema migrates on both databases and `serve` can tell a stale one."""
from store.db import Database
from store.migrate import check_current, head_revision


async def test_migrated_database_is_current(db: Database) -> None:
    assert await check_current(db) is None
    assert head_revision()


async def test_unmigrated_database_is_refused_with_instructions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fresh = Database(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    try:
        problem = await check_current(fresh)
    finally:
        await fresh.close()
    assert problem is not None and "dongxian db upgrade" in problem
