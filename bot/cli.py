"""The `dongxian` command line."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.core.clock import Clock, utcnow
from bot.cli_common import _config, _db, _with_db
from bot.core.files import create_private, private_file
from bot.core.config import Config, ConfigError

log = logging.getLogger("dongxian")


def _setup_logging() -> None:
    from bot.logs import setup_logging
    setup_logging()


# -- serve / demo -------------------------------------------------------------------
async def _prepare_serve(config: Config, role: str = "all"):  # type: ignore[no-untyped-def]
    from bot.app import Role, build_app, check_console_exposure, make_runtime
    from store.migrate import check_current
    from store.roster import ensure_tenant

    check_console_exposure(config)
    db = _db(config)
    problem = await check_current(db)
    if problem is not None:
        await db.close()
        raise ConfigError(f"refusing to start: {problem}")
    for tenant in config.tenants:
        await ensure_tenant(db, tenant)
    runtime = make_runtime(config, db, Clock())
    return build_app(runtime, role=Role(role))


def _serve(config: Config, role: str = "all", port: int | None = None) -> int:
    from aiohttp import web

    async def factory():  # type: ignore[no-untyped-def]
        return await _prepare_serve(config, role)

    host, port = config.server.host, port or config.server.port
    console = "on" if config.console.enabled and role != "worker" else "off"
    print(f"动线 Dongxian listening on http://{host}:{port}/  (role: {role}, console: {console})", flush=True)
    if console == "on":
        print(f"  console: http://{host}:{port}/console/", flush=True)
    from bot.app import IDLE_TIMEOUT_SECONDS

    # The keep-alive timeout also closes connections whose request head is still unfinished.
    web.run_app(factory(), host=host, port=port, print=None, access_log=None, shutdown_timeout=10,
                keepalive_timeout=IDLE_TIMEOUT_SECONDS)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    return _serve(_config(args), args.role, args.port)


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import demo_config, reset_database_file, seed_demo

    config = demo_config(data_dir=args.data_dir, port=args.port)
    reset_database_file(config)

    async def seed(db: Any) -> int:
        await seed_demo(db, config)
        return 0

    asyncio.run(_with_db(config, seed))
    print("已创建演示公司（约 40 人）。Demo company created (about 40 people).", flush=True)
    return _serve(config)


# -- database ---------------------------------------------------------------------
def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from store.migrate import head_revision, upgrade

    config = _config(args)

    async def go(db: Any) -> int:
        await upgrade(db)
        print(f"database is at schema {head_revision()}")
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_db_backup(args: argparse.Namespace) -> int:
    """SQLite: a consistent copy while the bot runs (online backup API)."""
    import sqlite3

    from sqlalchemy.engine import make_url

    config = _config(args)
    url = make_url(config.database.url)
    if url.get_backend_name() != "sqlite":
        print("PostgreSQL: use pg_dump, e.g. pg_dump -Fc -f dongxian.dump DBNAME", file=sys.stderr)
        return 2
    src = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
    create_private(args.out)  # the whole company's data: owner only, whatever the umask
    dst = sqlite3.connect(args.out)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()
    for leftover in (Path(f"{args.out}-wal"), Path(f"{args.out}-shm"), Path(f"{args.out}-journal")):
        if leftover.exists():
            private_file(leftover)
    print(f"backed up {url.database} to {args.out}")
    return 0


# -- roster, goals ------------------------------------------------------------------
def cmd_org_import(args: argparse.Namespace) -> int:
    from store.roster import ensure_tenant, import_roster

    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        await ensure_tenant(db, tenant)
        report = await import_roster(db, tenant.key, Path(args.file), dry_run=args.dry_run, now=utcnow())
        print(report.summary())
        return 1 if report.errors else 0

    return asyncio.run(_with_db(config, go))


def cmd_org_sync(args: argparse.Namespace) -> int:
    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        from store.roster import ensure_tenant
        await ensure_tenant(db, tenant)
        if tenant.wecom:
            from bot.wecom_directory import sync_wecom_directory
            report = await sync_wecom_directory(db, tenant, now=utcnow())
        elif tenant.dingtalk:
            from bot.dingtalk.directory import sync_dingtalk_directory
            report = await sync_dingtalk_directory(db, tenant, now=utcnow())
        else:
            print(f"tenant {tenant.key!r} has no [tenants.wecom] or [tenants.dingtalk] section: use `org import`", file=sys.stderr)
            return 2
        print(report.summary() if hasattr(report, "summary") else report)
        return 1 if getattr(report, "errors", None) else 0

    return asyncio.run(_with_db(config, go))


def cmd_org_roles(args: argparse.Namespace) -> int:
    from store.roles import RoleError, change_roles, people_with_roles

    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        if args.roles_cmd == "list":
            rows = await people_with_roles(db, tenant.key)
            for userid, name, dept, roles in rows:
                print(f"{userid}\t{name}\t{dept}\t{';'.join(roles)}")
            if not rows:
                print("还没有人被授予角色：dongxian org roles --tenant KEY add USERID hr")
            return 0
        try:
            change = await change_roles(db, tenant.key, args.roles_cmd, args.userid, args.role,
                                        by=args.by, now=utcnow())
        except RoleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(change.summary())
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_goals_import(args: argparse.Namespace) -> int:
    from store.goals import import_goals

    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        report = await import_goals(db, tenant.key, Path(args.file), now=utcnow(), dry_run=args.dry_run,
                                    by_userid=args.by, reason=args.reason)
        print(report.summary())
        return 1 if report.errors else 0

    return asyncio.run(_with_db(config, go))


# -- export -------------------------------------------------------------------------
def cmd_export_weekly(args: argparse.Namespace) -> int:
    from bot.core.calendar import week_range
    from store.export import export_weekly

    config = _config(args)
    tenant = config.tenant(args.tenant)
    try:
        weeks = week_range(args.week, args.to or args.week)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def go(db: Any) -> int:
        out = await export_weekly(db, tenant.key, weeks, Path(args.out))
        print(f"wrote {out}")
        return 0

    return asyncio.run(_with_db(config, go))


# -- outbox, jobs ------------------------------------------------------------------------
def cmd_outbox_status(args: argparse.Namespace) -> int:
    from store import outbox

    config = _config(args)

    async def go(db: Any) -> int:
        print(outbox.summarize(await outbox.status_counts(db, args.tenant)))
        for row in await outbox.dead_letters(db, args.tenant, limit=20):
            print(f"  dead #{row.id} {row.tenant}/{row.userid} after {row.attempts} attempts: {row.last_error}")
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from store import outbox

    config = _config(args)

    async def go(db: Any) -> int:
        n = await outbox.retry_dead(db, utcnow(), args.tenant)
        print(f"{n} dead-lettered message(s) queued again")
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_inbox_status(args: argparse.Namespace) -> int:
    from store import inbox

    config = _config(args)

    async def go(db: Any) -> int:
        print(inbox.summarize(await inbox.status_counts(db, args.tenant)))
        for row in await inbox.dead_letters(db, args.tenant, limit=20):
            # The error, never the message: the payload is what a person wrote.
            print(f"  dead #{row.id} {row.tenant}/{row.platform}/{row.userid} after {row.failures} failures: {row.error}")
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_inbox_retry(args: argparse.Namespace) -> int:
    from store import inbox

    config = _config(args)

    async def go(db: Any) -> int:
        n = await inbox.retry_dead(db, utcnow(), args.tenant)
        print(f"{n} dead-lettered event(s) queued again")
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_jobs_run(args: argparse.Namespace) -> int:
    from bot.app import make_runtime
    from schedules.jobs import all_jobs

    config = _config(args)
    tenant = config.tenant(args.tenant)
    jobs = all_jobs()
    if args.name not in jobs:
        print(f"unknown job {args.name!r}; known: {', '.join(jobs.names())}", file=sys.stderr)
        return 2
    at = datetime.fromisoformat(args.at) if args.at else utcnow()
    if at.tzinfo is None:
        print("--at needs a UTC offset, e.g. 2026-12-04T09:30:00+08:00", file=sys.stderr)
        return 2

    async def go(db: Any) -> int:
        runtime = make_runtime(config, db)
        sent = await runtime.run_job(args.name, tenant, at)
        print(f"{args.name}: {sent} message(s) queued; the running server delivers them")
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_wecom_menu(args: argparse.Namespace) -> int:
    from bot.wecom_menu import create_menu

    config = _config(args)
    tenant = config.tenant(args.tenant)
    if tenant.wecom is None:
        print(f"tenant {tenant.key!r} has no [tenants.wecom] section", file=sys.stderr)
        return 2
    result = asyncio.run(create_menu(tenant))
    print(result)
    return 0


# -- parser -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dongxian", description="动线 Dongxian — performance-management chatbot")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
        return sp

    serve = with_config(sub.add_parser("serve", help="run the bot"))
    serve.add_argument("--role", choices=("all", "web", "worker"), default="all",
                       help="all: everything (default); web: callbacks, Stream and console only; "
                            "worker: handling, sending and jobs only (run one of each to use two cores)")
    serve.add_argument("--port", type=int, help="listen here instead of [server].port (a worker beside its web)")
    serve.set_defaults(fn=cmd_serve)
    demo = sub.add_parser("demo", help="fresh demo company + local console on 127.0.0.1:8080")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--data-dir", default="var")
    demo.set_defaults(fn=cmd_demo)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_cmd", required=True)
    with_config(db.add_parser("upgrade", help="migrate to the newest schema")).set_defaults(fn=cmd_db_upgrade)
    bk = with_config(db.add_parser("backup", help="SQLite: consistent copy of the running database"))
    bk.add_argument("--out", required=True)
    bk.set_defaults(fn=cmd_db_backup)

    org = sub.add_parser("org", help="people and departments").add_subparsers(dest="org_cmd", required=True)
    imp = with_config(org.add_parser("import", help="import a roster CSV/XLSX"))
    imp.add_argument("file")
    imp.add_argument("--tenant", required=True)
    imp.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    imp.set_defaults(fn=cmd_org_import)
    sync = with_config(org.add_parser("sync", help="sync the directory from WeCom/DingTalk"))
    sync.add_argument("--tenant", required=True)
    sync.set_defaults(fn=cmd_org_sync)
    # `org roles --tenant KEY set|add|remove USERID ROLE…` and `org roles --tenant KEY list`.
    roles = with_config(org.add_parser("roles", help="grant roles by hand: hr, pmo, admin, manager (kept over a sync)"))
    roles.add_argument("--tenant", required=True)
    roles.add_argument("--by", default="cli", help="who makes the change, for the audit log (default: cli)")
    roles_sub = roles.add_subparsers(dest="roles_cmd", required=True)
    for name, text in (("set", "give USERID exactly these roles (none: take all away)"),
                       ("add", "add roles to USERID"), ("remove", "take roles from USERID")):
        rp = roles_sub.add_parser(name, help=text)
        rp.add_argument("userid")
        rp.add_argument("role", nargs="*" if name == "set" else "+", help="manager | hr | pmo | admin")
    roles_sub.add_parser("list", help="everyone holding a role")
    roles.set_defaults(fn=cmd_org_roles)

    goals = sub.add_parser("goals", help="company and department goals").add_subparsers(dest="goals_cmd", required=True)
    gimp = with_config(goals.add_parser("import", help="import goals CSV/XLSX"))
    gimp.add_argument("file")
    gimp.add_argument("--tenant", required=True)
    gimp.add_argument("--dry-run", action="store_true")
    gimp.add_argument("--by", default="", help="userid of who made the change (kept with each adjustment)")
    gimp.add_argument("--reason", default="其他", help="市场 | 技术 | 政策 | 其他")
    gimp.set_defaults(fn=cmd_goals_import)

    exp = sub.add_parser("export", help="exports").add_subparsers(dest="export_cmd", required=True)
    wk = with_config(exp.add_parser("weekly", help="weekly actions and figures to XLSX or CSV"))
    wk.add_argument("--tenant", required=True)
    wk.add_argument("--week", required=True, help="e.g. 2026-W49")
    wk.add_argument("--to", help="last week of a range, e.g. 2026-W52")
    wk.add_argument("--out", required=True, help="FILE.xlsx or FILE.csv")
    wk.set_defaults(fn=cmd_export_weekly)

    ob = sub.add_parser("outbox", help="outbound messages").add_subparsers(dest="outbox_cmd", required=True)
    st = with_config(ob.add_parser("status", help="pending/sent/dead counts and dead letters"))
    st.add_argument("--tenant")
    st.set_defaults(fn=cmd_outbox_status)
    rt = with_config(ob.add_parser("retry", help="queue dead-lettered messages again"))
    rt.add_argument("--tenant")
    rt.set_defaults(fn=cmd_outbox_retry)

    ib = sub.add_parser("inbox", help="inbound events").add_subparsers(dest="inbox_cmd", required=True)
    ist = with_config(ib.add_parser("status", help="pending/processing/done/failed counts and dead letters"))
    ist.add_argument("--tenant")
    ist.set_defaults(fn=cmd_inbox_status)
    irt = with_config(ib.add_parser("retry", help="handle dead-lettered events again"))
    irt.add_argument("--tenant")
    irt.set_defaults(fn=cmd_inbox_retry)

    jobs = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(dest="jobs_cmd", required=True)
    jr = with_config(jobs.add_parser("run", help="run a scheduled job now (exactly-once rules apply)"))
    jr.add_argument("name")
    jr.add_argument("--tenant", required=True)
    jr.add_argument("--at", help="ISO time with offset; default now")
    jr.set_defaults(fn=cmd_jobs_run)

    wc = sub.add_parser("wecom", help="WeCom app setup").add_subparsers(dest="wecom_cmd", required=True)
    menu = with_config(wc.add_parser("menu", help="create the app menu (本周动作 / 微反馈 / 我的数据)"))
    menu.add_argument("--tenant", required=True)
    menu.set_defaults(fn=cmd_wecom_menu)
    from bot.cli_tasks import add_task_commands
    add_task_commands(sub)
    from bot.cli_events import add_event_commands
    add_event_commands(sub)
    from bot.cli_competencies import add_competency_commands
    add_competency_commands(sub)
    from bot.cli_contributions import add_contribution_commands
    add_contribution_commands(sub)
    from bot.cli_profiles import add_profile_commands
    add_profile_commands(sub)

    from bot.cli_dingtalk import add_dingtalk_commands
    add_dingtalk_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    # Everything this process creates (database, WAL, briefs, exports, backups) is owner-only.
    os.umask(0o077)
    _setup_logging()
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
