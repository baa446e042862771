"""The platform-neutral inbound event every adapter produces."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# "external": a fact from a workflow (store/external_events.py), not a person's message.
# "file": an image or file a person sent in chat; `values` holds the platform's reference to fetch it by.
EventKind = Literal["text", "action", "menu", "enter", "external", "file"]


@dataclass
class Event:
    tenant: str
    platform: str
    userid: str
    kind: EventKind
    # Unique per (tenant, platform): the platform's message id or a key built from
    # the event's identifying fields; the inbox refuses a second event with it.
    dedup_key: str
    text: str = ""
    card_id: str = ""
    action_key: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    # User ids the platform itself resolved as @-mentions (DingTalk atUsers).
    mentions: list[str] = field(default_factory=list)
    # What a reply or card update needs from the platform (WeCom ResponseCode,
    # DingTalk sessionWebhook); opaque to handlers.
    hint: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        return cls(**d)
