"""`dongxian dingtalk …`: DingTalk app setup commands."""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any


def cmd_dingtalk_register(args: argparse.Namespace) -> int:
    """Tell DingTalk where HTTP-mode card presses go (`/v1.0/card/callbacks/register`)."""
    from bot.cli_common import _config
    from bot.dingtalk.api import DingTalkApi, DingTalkApiError
    from bot.dingtalk.adapter import card_callback_url
    from bot.dingtalk.signing import card_route_key

    tenant = _config(args).tenant(args.tenant)
    if tenant.dingtalk is None:
        print(f"tenant {tenant.key!r} has no [tenants.dingtalk] section", file=sys.stderr)
        return 2
    base = args.url.rstrip("/")

    async def go() -> int:
        api = DingTalkApi(tenant.dingtalk)  # type: ignore[arg-type]
        try:
            url = card_callback_url(tenant, base)
            await api.register_card_callback(card_route_key(tenant), url)
        except DingTalkApiError as exc:
            print(f"registration failed: {exc}", file=sys.stderr)
            return 1
        finally:
            await api.close()
        print(f"card presses of tenant {tenant.key} now go to {base}/dingtalk/{tenant.key}/callback")
        return 0

    return asyncio.run(go())


def cmd_dingtalk_check(args: argparse.Namespace) -> int:
    """Check credentials, robot code, card template and permissions against DingTalk; 1 when anything is missing."""
    from bot.cli_common import _config
    from bot.dingtalk.api import DingTalkApi
    from bot.dingtalk.check import check_dingtalk

    tenant = _config(args).tenant(args.tenant)
    if tenant.dingtalk is None:
        print(f"tenant {tenant.key!r} has no [tenants.dingtalk] section", file=sys.stderr)
        return 2

    async def go() -> int:
        api = DingTalkApi(tenant.dingtalk)  # type: ignore[arg-type]
        try:
            findings = await check_dingtalk(tenant, api)
        finally:
            await api.close()
        for f in findings:
            print(("✓ " if f.ok else "✗ ") + f.text)
        return 0 if all(f.ok for f in findings) else 1

    return asyncio.run(go())


def add_dingtalk_commands(sub: Any) -> None:
    """Add `dingtalk check` and `dingtalk register-card-callback` to the CLI's subparsers."""
    dt = sub.add_parser("dingtalk", help="DingTalk app setup").add_subparsers(dest="dingtalk_cmd", required=True)
    chk = dt.add_parser("check", help="check credentials, robot code, card template and permissions")
    chk.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
    chk.add_argument("--tenant", required=True)
    chk.set_defaults(fn=cmd_dingtalk_check)
    reg = dt.add_parser("register-card-callback", help="HTTP mode: tell DingTalk where card presses go")
    reg.add_argument("--config", help="TOML config file (default: $DONGXIAN_CONFIG or config.toml)")
    reg.add_argument("--tenant", required=True)
    reg.add_argument("--url", required=True, help="public base URL of this server, e.g. https://bot.example.com")
    reg.set_defaults(fn=cmd_dingtalk_register)
