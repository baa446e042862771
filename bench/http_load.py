"""A lean HTTP/1.1 keep-alive client for load generation.

A full client library spends more CPU per request than the server under test
does on the same two cores; this one writes a prepared request and reads the
status line, headers and Content-Length body, nothing else.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class LoadStats:
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests only
    statuses: dict[int | str, int] = field(default_factory=dict)
    acked: list[int] = field(default_factory=list)  # indexes of the requests answered 200
    sent_at: list[float] = field(default_factory=list)  # perf_counter when each acked request was sent
    sent: int = 0
    first_sent: float = 0.0
    last_done: float = 0.0

    def count(self, status: int | str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None

    async def post(self, target: str, body: bytes, content_type: str = "text/xml") -> int:
        """POST and return the status; reconnects once if the server closed the idle connection."""
        head = (f"POST {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("ascii")
        for attempt in (0, 1):
            if self.writer is None:
                await self._open()
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(head + body)
                status_line = await self.reader.readuntil(b"\r\n")
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            await self.close()
        return status


async def run_load(host: str, port: int, requests: list[tuple[str, bytes]], *, connections: int,
                   seconds: float) -> LoadStats:
    """Send `requests` in order over `connections` keep-alive connections until done or `seconds` pass."""
    stats = LoadStats()
    next_index = 0
    deadline = 0.0

    async def worker() -> None:
        nonlocal next_index
        conn = Connection(host, port)
        try:
            while next_index < len(requests) and time.perf_counter() < deadline:
                index = next_index
                target, body = requests[index]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    status: int | str = await conn.post(target, body)
                except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                    status = type(exc).__name__
                    await conn.close()
                t1 = time.perf_counter()
                stats.count(status)
                if status == 200:
                    stats.latencies.append(t1 - t0)
                    stats.acked.append(index)
                    stats.sent_at.append(t0)
                stats.last_done = max(stats.last_done, t1)
        finally:
            await conn.close()

    stats.first_sent = time.perf_counter()
    deadline = stats.first_sent + seconds
    await asyncio.gather(*(worker() for _ in range(connections)))
    stats.sent = next_index
    return stats
