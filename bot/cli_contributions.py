"""`dongxian contributions export --tenant KEY --month 2026-12 --out FILE`: the reward amounts managers
entered, as XLSX for payroll (nothing is paid by the bot), and `dongxian contributions heatmap` for the PNG."""
from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path
from typing import Any


def cmd_export(args: argparse.Namespace) -> int:
    from bot.cli_common import _config, _with_db
    from bot.core.files import create_private
    from store.contributions import write_rewards_xlsx

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        print(f"--month {args.month!r}: write it like 2026-12")
        return 2
    config = _config(args)
    tenant = config.tenant(args.tenant)
    out = Path(args.out or f"rewards-{tenant.key}-{args.month}.xlsx")

    async def go(db: Any) -> int:
        create_private(out)
        async with db.session() as s:
            n = await write_rewards_xlsx(s, tenant.key, args.month, out, tz=tenant.tz)
        print(f"{out}: {n} reward suggestions of {args.month} (nothing is paid automatically)")
        return 0

    return asyncio.run(_with_db(config, go))


def cmd_heatmap(args: argparse.Namespace) -> int:
    from bot.cli_common import _config, _with_db
    from bot.core.clock import utcnow
    from bot.core.files import create_private
    from cards.heatmap import heatmap_png
    from handlers.context import Outgoing
    from handlers.contributions import heat_table, read_period

    config = _config(args)
    tenant = config.tenant(args.tenant)

    async def go(db: Any) -> int:
        async with db.session() as s:
            ctx = Outgoing(s, tenant, utcnow())
            period = read_period(ctx, args.period)
            if period is None:
                print(f"--period {args.period!r}: write 2026-12 or 2026Q4")
                return 2
            _, table = await heat_table(ctx, period)
        out = Path(args.out or f"contributions-{tenant.key}-{period}.png")
        create_private(out)
        out.write_bytes(heatmap_png(table, tenant.locale))
        print(f"{out}: heat map of {period}")
        return 0

    return asyncio.run(_with_db(config, go))


def add_contribution_commands(sub: Any) -> None:
    c = sub.add_parser("contributions", help="contribution rewards and heat map").add_subparsers(
        dest="contributions_cmd", required=True)
    exp = c.add_parser("export", help="reward suggestions of a month as XLSX for payroll")
    exp.add_argument("--tenant", required=True)
    exp.add_argument("--month", required=True, help="2026-12")
    exp.add_argument("--out", help="the XLSX file (default: rewards-TENANT-MONTH.xlsx)")
    exp.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
    exp.set_defaults(fn=cmd_export)
    heat = c.add_parser("heatmap", help="the department × type heat map as PNG (cells under 5 people blank)")
    heat.add_argument("--tenant", required=True)
    heat.add_argument("--period", default="本季度", help="2026-12 or 2026Q4 (default: this quarter)")
    heat.add_argument("--out", help="the PNG file")
    heat.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
    heat.set_defaults(fn=cmd_heatmap)
