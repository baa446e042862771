"""Group commit for the inbox: callbacks arriving together are stored in one transaction.

Each caller still waits until its own event is committed before the platform is
answered (persist before ack); it just shares the commit with its neighbours.
With one commit per callback a SQLite inbox tops out at a few hundred a second.
"""
from __future__ import annotations

import asyncio
import logging

from bot.core.clock import utcnow
from bot.core.events import Event
from store import inbox
from store.db import Database

log = logging.getLogger(__name__)


class InboxWriter:
    def __init__(self, db: Database, *, max_batch: int = 500) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[tuple[Event, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Events are waiting to be stored (and their senders for an answer)."""
        return bool(self._queue) or (self._flusher is not None and not self._flusher.done())

    async def accept(self, event: Event) -> bool:
        """True once the event is committed; False if it had been accepted before."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((event, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="inbox-writer")
        return await fut

    async def _flush(self) -> None:
        # While one batch commits, the next one gathers: no timer, no added latency
        # when traffic is light (a lone event is committed at once).
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
            try:
                results = await inbox.accept_many(self.db, [e for e, _ in batch], utcnow())
            except BaseException as exc:  # the callers answer the platform with an error; it retries
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                if not isinstance(exc, Exception):
                    raise
                log.warning("inbox batch of %d failed: %s", len(batch), exc)
                continue
            for (_, fut), fresh in zip(batch, results):
                if not fut.done():
                    fut.set_result(fresh)
