"""A real `dongxian serve` process for the tests that need one: started, awaited until it answers, stopped."""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import aiohttp

START_SECONDS = 60  # a budget for a loaded 2-core machine, not a speed claim


async def start_server(config: Path, workdir: Path, log: Path, url: str, *, probe: str = "/healthz",
                       tail: Callable[[], str] | None = None, args: Sequence[str] = ()) -> asyncio.subprocess.Process:
    """Start the server with `config` and wait until `url + probe` answers 200."""
    def why() -> str:
        return tail() if tail else log.read_text(errors="replace")[-3000:]

    with open(log, "wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", "--config", str(config), *args,
            stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=str(workdir),
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + START_SECONDS
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while True:
            assert proc.returncode is None, f"server exited on start:\n{why()}"
            try:
                async with http.get(url + probe) as r:
                    if r.status == 200:
                        return proc
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            assert time.monotonic() < deadline, f"server did not come up:\n{why()}"
            await asyncio.sleep(0.05)


async def stop_server(proc: asyncio.subprocess.Process | None) -> None:
    """SIGTERM, then SIGKILL if it has not drained within 20 s."""
    if proc is not None and proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
