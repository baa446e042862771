"""`dongxian serve` without its dispatcher, outbox relay and ticker: the acknowledgement path alone.

Same configuration, same web application, same adapters and inbox; only the
background work that handles and answers events is not started, so the events
stay pending in the inbox. It tells how many callbacks a second the receiving
side could take if handling did not share the process's one core with it.

    .venv/bin/python -m bench.ack_server --config FILE
"""
from __future__ import annotations

import argparse

from aiohttp import web


async def _app(config_path: str) -> web.Application:
    from bot.app import build_app, make_runtime
    from bot.core.clock import Clock
    from bot.core.config import load_config
    from bot.logs import setup_logging
    from store.db import Database
    from store.roster import ensure_tenant

    config = load_config(config_path)
    setup_logging(config)
    db = Database(config.database.url)
    for tenant in config.tenants:
        await ensure_tenant(db, tenant)
    runtime = make_runtime(config, db, Clock())
    app = build_app(runtime, start_background=False)

    async def close(_app: web.Application) -> None:
        for adapter in runtime.adapters.values():
            await adapter.stop()
        await db.close()

    app.on_cleanup.append(close)
    return app


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ack_server", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    args = p.parse_args()
    from bot.core.config import load_config
    server = load_config(args.config).server
    web.run_app(_app(args.config), host=server.host, port=server.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
