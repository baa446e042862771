"""`dongxian competencies import|focus FILE` and `dongxian learning import FILE`: the competency library,
the focus competencies of each department and the micro-courses, from CSV/XLSX (all or nothing)."""
from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable


def _run(args: argparse.Namespace, importer: Callable[..., Awaitable[Any]]) -> int:
    from bot.cli_common import _config, _with_db
    from store.roster import ensure_tenant

    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        await ensure_tenant(db, tenant)
        report = await importer(db, tenant.key, Path(args.file), dry_run=args.dry_run)
        print(report.summary())
        return 1 if report.errors else 0

    return asyncio.run(_with_db(config, go))


def cmd_library(args: argparse.Namespace) -> int:
    from store.competencies import import_library
    return _run(args, import_library)


def cmd_focus(args: argparse.Namespace) -> int:
    from store.competencies import import_focus
    return _run(args, import_focus)


def cmd_learning(args: argparse.Namespace) -> int:
    from store.competencies import import_learning
    return _run(args, import_learning)


def _file_command(parent: Any, name: str, text: str, columns: str, fn: Callable[[argparse.Namespace], int]) -> None:
    p = parent.add_parser(name, help=text)
    p.add_argument("file", help=f"columns: {columns}")
    p.add_argument("--tenant", required=True)
    p.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
    p.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    p.set_defaults(fn=fn)


def add_competency_commands(sub: Any) -> None:
    comp = sub.add_parser("competencies", help="competency library and focus").add_subparsers(
        dest="competencies_cmd", required=True)
    _file_command(comp, "import", "import the competency library from CSV/XLSX (all or nothing)",
                  "code,name,category,L1,L2,L3 (each L the observable behaviour of that level)", cmd_library)
    _file_command(comp, "focus", "the 3-5 focus competencies per department (the file replaces all)",
                  "department,codes (';'-separated; the longest department path wins)", cmd_focus)
    learning = sub.add_parser("learning", help="micro-courses of the learning link").add_subparsers(
        dest="learning_cmd", required=True)
    _file_command(learning, "import", "import micro-courses from CSV/XLSX (all or nothing)",
                  "competency,level,title,url", cmd_learning)
