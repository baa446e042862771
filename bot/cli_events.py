"""`dongxian events import|rules|unmatched|reconcile`: file drops, the mapping rules, events nobody matched,
and a sweep of WeCom 审批 for callbacks that never came."""
from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path
from typing import Any

from bot.cli_common import _config, _with_db
from datetime import timedelta

from bot.core.clock import utcnow
from bot.wecom_api import WeComError, WeComTransportError, standalone_api
from bot.wecom_reconcile import approval_templates, sweep
from handlers.trace_rules import TraceSettings
from store import external_events as ext
from store.event_files import import_events
from store.roster import ensure_tenant


def cmd_events_import(args: argparse.Namespace) -> int:
    config = _config(args)
    tenant = config.tenant(args.tenant)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", args.source):
        print("--source: lowercase letters, digits, - and _ (e.g. sales_sheet)")
        return 2

    async def go(db: Any) -> int:
        await ensure_tenant(db, tenant)
        report = await import_events(db, tenant.key, Path(args.file), args.source, tz=tenant.tz, now=utcnow())
        print(report.summary())
        if report.added:
            print("运行中的服务会按映射规则处理这些事件 / the running service applies the rules to them.")
        return 1 if report.errors else 0

    return asyncio.run(_with_db(config, go))


def cmd_events_rules(args: argparse.Namespace) -> int:
    config = _config(args)
    tenant = config.tenant(args.tenant)
    rules = TraceSettings.of(tenant).rules
    if not rules:
        print(f"{tenant.key}: 没有映射规则 / no mapping rules ([tenants.trace] rules)")
        return 0
    for r in rules:
        status = ",".join(r.status) or "*"
        extra = f" sla={r.sla_hours:g}h" if r.effect == "response" else (f" goal={r.goal_code}" if r.goal_code else "")
        print(f"{r.name}\tsource={r.source} code={r.code or '*'} type={r.type or '*'} status={status} "
              f"person={r.person}{(':' + r.person_field) if r.person_field else ''} → {r.effect}{extra}")
    return 0


def cmd_events_unmatched(args: argparse.Namespace) -> int:
    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        rows = await ext.unmatched(db, tenant.key)
        if not rows:
            print(f"{tenant.key}: 没有未匹配的事件 / no unmatched events")
            return 0
        print(f"{tenant.key}: {len(rows)} 条事件的人员在名册中找不到 / events whose person is not on the roster")
        for r in rows:
            when = r.occurred_at.astimezone(tenant.tz).strftime("%Y-%m-%d %H:%M")
            print(f"{when}\t{r.source}\t{r.external_id}\tperson={r.person or '(none)'}\trule={r.rule}\t"
                  f"{r.payload.get('title', '')}")
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_events_reconcile(args: argparse.Namespace) -> int:
    config = _config(args)
    tenant = config.tenant(args.tenant)
    if tenant.wecom is None:
        print(f"{tenant.key}: 不是企业微信租户 / not a WeCom tenant ([tenants.wecom])")
        return 2
    if not 1 <= args.days <= 366:
        print("--days: 1 到 366 / 1 to 366")
        return 2

    async def go(db: Any) -> int:
        await ensure_tenant(db, tenant)
        now = utcnow()
        assert tenant.wecom is not None
        async with standalone_api(tenant.wecom) as api:
            try:
                report = await sweep(db, tenant.key, api, approval_templates(tenant),
                                     now - timedelta(days=args.days), now, now)
            except (WeComError, WeComTransportError) as exc:
                print(f"企业微信接口失败 / WeCom call failed: {exc}")
                return 1
        print(report.summary())
        if report.added:
            print("运行中的服务会按映射规则处理这些事件 / the running service applies the rules to them.")
        return 0

    return asyncio.run(_with_db(config, go))


def add_event_commands(sub: Any) -> None:
    ev = sub.add_parser("events", help="external events (自动留痕)").add_subparsers(dest="events_cmd", required=True)
    imp = ev.add_parser("import", help="import events from CSV/XLSX (re-importing adds nothing)")
    imp.add_argument("file", help="columns: id (required), type, person, occurred_at, code, status, title, link, "
                                  "and form fields")
    imp.add_argument("--source", required=True, help="the source name the rules match, e.g. sales_sheet")
    rules = ev.add_parser("rules", help="list the tenant's mapping rules")
    un = ev.add_parser("unmatched", help="events kept because nobody on the roster is their person")
    rec = ev.add_parser("reconcile", help="store WeCom approval changes whose callbacks never came "
                                          "(oa/getapprovalinfo; what is stored already adds nothing)")
    rec.add_argument("--days", type=int, default=31, help="approvals submitted this many days back (default 31)")
    for p, fn in ((imp, cmd_events_import), (rules, cmd_events_rules), (un, cmd_events_unmatched),
                  (rec, cmd_events_reconcile)):
        p.add_argument("--tenant", required=True)
        p.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
        p.set_defaults(fn=fn)
