"""What every platform adapter provides. Handlers never import an adapter."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from aiohttp import web

from bot.core.config import TenantConfig
from cards.model import Message

if TYPE_CHECKING:
    from bot.runtime import Runtime


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
class OutboundItem:
    id: int  # outbox row id
    userid: str
    message: Message


class Adapter:
    """A platform: receives callbacks into the inbox, sends outbox messages."""

    platform: ClassVar[str] = ""

    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime

    def add_routes(self, app: web.Application) -> None:
        """Register HTTP routes (callbacks, APIs); nothing else of the web app."""

    async def start(self) -> None:
        """Open connections (DingTalk Stream …) after the app is up."""

    async def stop(self) -> None:
        """Close connections; pending work stays in the inbox/outbox."""

    def healthy(self) -> bool:
        return True

    async def send(self, tenant: TenantConfig, userid: str, message: Message) -> SendResult:
        raise NotImplementedError(f"{type(self).__name__}.send")

    async def send_batch(self, tenant: TenantConfig, items: list[OutboundItem]) -> dict[int, SendResult]:
        """Send several messages of one tenant; adapters batch identical ones where the API allows."""
        return {item.id: await self.send(tenant, item.userid, item.message) for item in items}
