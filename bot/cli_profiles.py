"""`dongxian profiles build|list|show|approve|reject|jd`: role capability profiles (岗位画像) from the
command line, with the same rules as in chat (docs/profiles.md). A decision names the HR person
taking it (`--by`), as a press of the card would."""
from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any


def _run(args: argparse.Namespace, work: Any) -> int:
    from bot.cli_common import _config, _with_db
    from store.roster import ensure_tenant

    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        await ensure_tenant(db, tenant)
        async with db.transaction() as session:
            return int(await work(session, tenant))

    return asyncio.run(_with_db(config, go))


def _now(args: argparse.Namespace) -> datetime:
    from bot.core.clock import utcnow
    return datetime.fromisoformat(args.at) if getattr(args, "at", None) else utcnow()


def _out(session: Any, tenant: Any, now: datetime) -> Any:
    from handlers.context import Outgoing
    return Outgoing(session=session, tenant=tenant, now=now)


def cmd_build(args: argparse.Namespace) -> int:
    from handlers.profiles import produce, too_few
    from store import profiles as rp

    async def work(session: Any, tenant: Any) -> int:
        out = _out(session, tenant, _now(args))
        paths = rp.match_department(await rp.departments(session, tenant.key), args.department)
        if len(paths) != 1:
            print(f"部门不明确 / department unclear: {args.department} → {paths or '无 / none'}")
            return 2
        role = rp.role_of(args.role) if args.role else ""
        if role is None:
            print(f"没有这个角色 / no such role: {args.role}")
            return 2
        result, row = await produce(out, paths[0], role, args.by or "")
        if row is None:
            print(too_few(out, result))
            return 1
        print(f"#{row.id} {row.state}\n\n{row.markdown}")
        return 0
    return _run(args, work)


def cmd_list(args: argparse.Namespace) -> int:
    from store import profiles as rp

    async def work(session: Any, tenant: Any) -> int:
        for row in await rp.profiles(session, tenant.key, args.state):
            print(f"#{row.id}\t{row.state}\t{row.department}{' · ' + row.role if row.role else ''}\t"
                  f"{row.first_week}..{row.last_week}\t{row.qualified}/{row.top}\t{row.built_at.isoformat()}")
        return 0
    return _run(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    from store import profiles as rp

    async def work(session: Any, tenant: Any) -> int:
        row = await rp.profile(session, tenant.key, args.id)
        if row is None:
            print(f"没有岗位画像 #{args.id} / no profile #{args.id}")
            return 1
        print(row.markdown)
        return 0
    return _run(args, work)


def _decide(verdict: str) -> Any:
    def cmd(args: argparse.Namespace) -> int:
        from handlers.profiles import AUDIT_APPROVE, AUDIT_REJECT, CARD, markdown
        from store import audit
        from store import profiles as rp
        from store.models import Employee
        from sqlalchemy import select

        async def work(session: Any, tenant: Any) -> int:
            now = _now(args)
            by = (await session.execute(select(Employee).where(
                Employee.tenant == tenant.key, Employee.userid == args.by))).scalar_one_or_none()
            if by is None or not by.active or not by.has_role("hr"):
                print(f"{args.by} 不是 HR，不能审批岗位画像 / {args.by} is not HR and cannot decide")
                return 2
            row = await rp.profile(session, tenant.key, args.id)
            if row is None or row.state != rp.PENDING:
                print(f"#{args.id}: {'不存在 / none' if row is None else row.state}")
                return 1
            rp.decide(row, verdict, by.userid, now, getattr(args, "reason", "") or "")
            out = _out(session, tenant, now)
            row.markdown = markdown(out, row)
            session.add(row)
            audit.record(session, tenant.key, by.userid, AUDIT_APPROVE if verdict == "approve" else AUDIT_REJECT,
                         f"{row.department}:{row.id}", now)
            await out.expire_cards(kind=CARD, ref_id=row.id, result=out.t(f"rp.state.{row.state}"))
            print(f"#{row.id} {row.state}")
            return 0
        return _run(args, work)
    return cmd


def cmd_jd(args: argparse.Namespace) -> int:
    from store import profiles as rp

    async def work(session: Any, tenant: Any) -> int:
        paths = rp.match_department(await rp.departments(session, tenant.key), args.department)
        if len(paths) != 1:
            print(f"部门不明确 / department unclear: {args.department} → {paths or '无 / none'}")
            return 2
        text = Path(args.file).read_text(encoding="utf-8").strip()
        if not text:
            print("JD 文件是空的 / the JD file is empty")
            return 2
        await rp.set_jd(session, tenant.key, paths[0], args.role or "", text, _now(args))
        print(f"{paths[0]}: JD {len(rp.duty_lines(text))} 条 / items")
        return 0
    return _run(args, work)


def add_profile_commands(sub: Any) -> None:
    prof = sub.add_parser("profiles", help="role capability profiles (岗位画像) and JD suggestions").add_subparsers(
        dest="profiles_cmd", required=True)

    def command(name: str, text: str, fn: Any) -> Any:
        p = prof.add_parser(name, help=text)
        p.add_argument("--tenant", required=True)
        p.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
        p.set_defaults(fn=fn)
        return p

    b = command("build", "build a profile of a department's top group (pending until HR approves)", cmd_build)
    b.add_argument("--department", required=True, help="department path (or its end: 研发中心/注册部)")
    b.add_argument("--role", help="only people holding this roster role (manager, pmo …)")
    b.add_argument("--by", help="who asked for it (recorded)")
    b.add_argument("--at", help="ISO time with offset; default now")
    ls = command("list", "list profiles, newest first", cmd_list)
    ls.add_argument("--state", choices=("pending", "approved", "rejected", "superseded"))
    command("show", "print a profile's JD suggestion (Markdown)", cmd_show).add_argument("id", type=int)
    for name, verdict in (("approve", "approve"), ("reject", "reject")):
        p = command(name, f"{name} a pending profile as an HR person", _decide(verdict))
        p.add_argument("id", type=int)
        p.add_argument("--by", required=True, help="user id of the HR person deciding")
        if verdict == "reject":
            p.add_argument("--reason", default="")
    jd = command("jd", "store the current JD of a department (a text file, one duty per line)", cmd_jd)
    jd.add_argument("file")
    jd.add_argument("--department", required=True)
    jd.add_argument("--role")
