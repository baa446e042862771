"""The test fakes with what a benchmark needs on top: the per-API call limit, counters, cheap bookkeeping."""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict, deque
from typing import Any

from aiohttp import web

from tests.fakes.dingtalk_server import FakeApp, FakeDingTalk, Frame, StreamConn
from tests.fakes.wecom_server import FakeWeCom, Reject

WECOM_CALLS_PER_MINUTE = 10_000  # per corp and API (WWdoc 90312)
WECOM_FREQ_LIMIT = 45009


class LimitedWeCom(FakeWeCom):
    """FakeWeCom that also enforces the corp-wide 10,000 calls a minute per API and counts send calls."""

    def __init__(self, *args: Any, calls_per_minute: int = WECOM_CALLS_PER_MINUTE, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls_per_minute = calls_per_minute
        self._api_window: dict[str, deque[float]] = defaultdict(deque)
        self.send_ok = 0
        self.send_refused: Counter[int] = Counter()
        self.recipients_per_call: Counter[int] = Counter()
        self.msgtypes: Counter[str] = Counter()
        self.first_at = 0.0
        self.last_at = 0.0

    def _limit(self, api: str) -> None:
        now = time.monotonic()
        window = self._api_window[api]
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= self.calls_per_minute:
            self.send_refused[WECOM_FREQ_LIMIT] += 1
            raise Reject(WECOM_FREQ_LIMIT, "api freq out of limit")
        window.append(now)

    async def _send(self, request: web.Request) -> dict[str, Any]:
        self._limit("message/send")
        before = len(self.deliveries)
        answer = await super()._send(request)
        got = len(self.deliveries) - before
        self.send_ok += 1
        self.recipients_per_call[got] += 1
        if got:
            self.msgtypes[self.deliveries[-1].msgtype] += got
            now = time.time()
            self.first_at = self.first_at or now
            self.last_at = now
        return answer

    async def _update_card(self, request: web.Request) -> dict[str, Any]:
        self._limit("message/update_template_card")
        return await super()._update_card(request)


class BenchDingTalk(FakeDingTalk):
    """FakeDingTalk whose redelivery check looks only at unacked frames, with a hook on every ack."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.unacked: dict[str, Frame] = {}
        self.on_ack: Any = None  # callable(Frame) after each ack
        self.first_at = 0.0
        self.last_at = 0.0
        self.delivered_count = 0

    async def _send(self, f: Frame) -> bool:
        ok = await super()._send(f)
        if ok and f.kind not in ("system", "raw"):
            self.unacked[f.message_id] = f
        return ok

    def _on_ack(self, conn: StreamConn, text: str) -> None:
        super()._on_ack(conn, text)
        # The base class stored the ack on its frame (or logged a protocol error); find the frame.
        try:
            mid = json.loads(text)["headers"]["messageId"]
        except (ValueError, KeyError, TypeError):
            return
        f = self.unacked.get(mid)
        if f is not None and f.ack is not None:
            if f.ack.get("code", 0) < 500:
                del self.unacked[mid]
            if self.on_ack is not None:
                self.on_ack(f)

    async def _redelivery_loop(self) -> None:
        while True:
            await asyncio.sleep(min(0.05, self.redeliver_after / 4))
            now = time.monotonic()
            for mid, f in list(self.unacked.items()):
                if f.redelivered_as or not f.sent_at:
                    continue
                failed = f.ack is not None and f.ack.get("code", 0) >= 500
                if (f.ack is None or failed) and now - f.sent_at >= self.redeliver_after:
                    self.unacked.pop(mid, None)
                    again = self._frame(f.app, f.frame["type"], f.frame["headers"]["topic"], f.data, f.kind)
                    f.redelivered_as = again.message_id
                    await self._send(again)

    def count_delivery(self) -> None:
        now = time.time()
        self.first_at = self.first_at or now
        self.last_at = now
        self.delivered_count += 1


def dingtalk_delivery_counter(fake: BenchDingTalk) -> None:
    """Time-stamp every message a person receives (batchSend, card, session webhook)."""
    class Stamped(list):  # type: ignore[type-arg]
        def append(self, item: Any) -> None:
            super().append(item)
            fake.count_delivery()

    original = fake.delivered

    class Deliveries(defaultdict):  # type: ignore[type-arg]
        def __missing__(self, key: Any) -> Any:
            value = self[key] = Stamped()
            return value

    fresh: defaultdict[str, Any] = Deliveries()
    for k, v in original.items():
        fresh[k].extend(v)
    fake.delivered = fresh


__all__ = ["LimitedWeCom", "BenchDingTalk", "FakeApp", "dingtalk_delivery_counter"]
