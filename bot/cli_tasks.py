"""`dongxian tasks …`: import a project's tasks from CSV/XLSX."""
from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def cmd_tasks_import(args: argparse.Namespace) -> int:
    from bot.cli_common import _config, _with_db
    from bot.core.clock import utcnow
    from store.roster import ensure_tenant
    from store.tasks import import_tasks

    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        await ensure_tenant(db, tenant)
        report = await import_tasks(db, tenant.key, Path(args.file), now=utcnow(), dry_run=args.dry_run,
                                    by_userid=args.by)
        print(report.summary())
        if report.ok and not args.dry_run and report.added:
            print("负责人会在工作时间内收到任务卡片（由运行中的服务发送）。")
        return 1 if report.errors else 0

    return asyncio.run(_with_db(config, go))


def add_task_commands(sub: Any) -> None:
    """Add `tasks import FILE --tenant KEY [--config FILE] [--dry-run] [--by USERID]` to the CLI's subparsers."""
    tasks = sub.add_parser("tasks", help="cross-functional project tasks").add_subparsers(dest="tasks_cmd", required=True)
    imp = tasks.add_parser("import", help="import a project's tasks from CSV/XLSX (all or nothing)")
    imp.add_argument("file", help="columns: project,project_name,pmo,code,title,owner,collaborators,due,deliverable")
    imp.add_argument("--tenant", required=True)
    imp.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
    imp.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    imp.add_argument("--by", default="", help="userid recorded as the creator of new tasks")
    imp.set_defaults(fn=cmd_tasks_import)
