"""What every command of the command line shares: reading the configuration and opening the database."""
from __future__ import annotations

import argparse
import os
from typing import Any, Awaitable, Callable

from bot.core.config import Config, load_config
# Importing the features declares their config sections ([tenants.feedback] …) before a file is read.
from handlers import routes as _features  # noqa: F401
from bot.logs import setup_logging
from store.db import Database


def _config(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("DONGXIAN_CONFIG") or "config.toml"
    config = load_config(path)
    setup_logging(config)
    return config


def _db(config: Config) -> Database:
    return Database(config.database.url)


async def _with_db(config: Config, fn: Callable[[Any], Awaitable[int]]) -> int:
    db = _db(config)
    try:
        return await fn(db)
    finally:
        await db.close()
