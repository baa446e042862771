"""What every platform adapter provides. Handlers never import an adapter."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from aiohttp import web

from bot.core.clock import Clock
from bot.core.config import Config, TenantConfig
from bot.core.events import Event
from cards.model import Message
from store.db import Database


class AdapterHost(Protocol):
    """What an adapter may use of the process it runs in: store what arrives, know the tenants and the time.

    Adapters never dispatch, handle or schedule anything; the Runtime satisfies this.
    """

    config: Config
    clock: Clock
    db: Database  # card and directory bookkeeping of the platform (response codes, user ids)
    stats: dict[str, int]

    def tenant(self, key: str) -> TenantConfig | None: ...

    async def accept(self, event: Event) -> bool: ...


@dataclass
class SendResult:
    ok: bool
    ref: str = ""  # what the platform returned (msgid …), kept on the outbox row
    error: str = ""
    # When not ok: seconds to wait before retrying, or None with permanent=True to dead-letter.
    retry_after: float | None = None
    permanent: bool = False
    code: str = ""  # the platform's error code, for metrics (e.g. "45009", "Forbidden.AccessDenied…")


@dataclass
class Download:
    """A file a person sent in chat, fetched from the platform (at most the cap asked for)."""

    content: bytes = b""
    filename: str = ""
    content_type: str = ""
    # "too_big": the platform's file is over the cap (nothing past it was read); "gone": the platform
    # no longer has it (expired or unknown reference); "failed": it could not be fetched now.
    problem: str = ""
    detail: str = ""
    retry_after: float | None = None  # with "failed": worth another try after this many seconds


@dataclass
class OutboundItem:
    id: int  # outbox row id
    userid: str
    message: Message


class Adapter:
    """A platform: receives callbacks into the inbox, sends outbox messages."""

    platform: ClassVar[str] = ""

    def __init__(self, runtime: AdapterHost) -> None:
        self.runtime = runtime

    def add_routes(self, app: web.Application) -> None:
        """Register HTTP routes (callbacks, APIs); nothing else of the web app."""

    async def start(self) -> None:
        """Open connections (DingTalk Stream …) after the app is up."""

    async def stop(self) -> None:
        """Close connections; pending work stays in the inbox/outbox."""

    def healthy(self) -> bool:
        return True

    def notices(self) -> list[str]:
        """Degraded-but-working states for /readyz (they do not make the server unready)."""
        return []

    async def send(self, tenant: TenantConfig, userid: str, message: Message) -> SendResult:
        raise NotImplementedError(f"{type(self).__name__}.send")

    async def download(self, tenant: TenantConfig, ref: dict[str, str], max_bytes: int) -> Download:
        """The bytes of a file a person sent (an Event of kind "file" carries `ref` in its values)."""
        return Download(problem="gone", detail=f"{self.platform or type(self).__name__} does not take files")

    async def send_batch(self, tenant: TenantConfig, items: list[OutboundItem]) -> dict[int, SendResult]:
        """Send several messages of one tenant; adapters batch identical ones where the API allows."""
        return {item.id: await self.send(tenant, item.userid, item.message) for item in items}
