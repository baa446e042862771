"""Typed button payloads: what a card button carries, packed into its key and parsed back in one place.

WeCom gives a button key of up to 1024 bytes and DingTalk an action id; both come back
verbatim on a press. A `CardAction` subclass names a prefix and its fields:

    class PickPerson(CardAction, prefix="pick"):
        userid: str

    Button(PickPerson(userid="lina").pack(), "李娜")          # key 'pick:lina'
    PickPerson.unpack("pick:lina") == PickPerson(userid="lina")

Fields are joined with ':' in declaration order; a value holding ':' or '%' is
percent-encoded, so any string round-trips. Keys of other kinds ("done", "accept") stay
plain strings.
"""
from __future__ import annotations

from typing import Any, ClassVar, Self
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_KEY_BYTES = 256  # well inside WeCom's 1024-byte key; DingTalk action ids are shorter in practice

_PREFIXES: dict[str, type["CardAction"]] = {}


class CardAction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    prefix: ClassVar[str] = ""

    def __init_subclass__(cls, prefix: str = "", **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if not prefix:
            raise TypeError(f"{cls.__name__} needs a prefix: class {cls.__name__}(CardAction, prefix='…')")
        if ":" in prefix or prefix in _PREFIXES:
            raise TypeError(f"card action prefix {prefix!r} is taken or has ':'")
        cls.prefix = prefix
        _PREFIXES[prefix] = cls

    def pack(self) -> str:
        parts = [self.prefix] + [quote(str(getattr(self, name)), safe="") for name in type(self).model_fields]
        key = ":".join(parts)
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"button key of {len(key.encode())} bytes is too long: {key[:40]}…")
        return key

    @classmethod
    def matches(cls, key: str) -> bool:
        return key == cls.prefix or key.startswith(cls.prefix + ":")

    @classmethod
    def unpack(cls, key: str) -> Self | None:
        """The action a key holds, or None when it is not one of this kind (or is malformed)."""
        if not cls.matches(key):
            return None
        names = list(cls.model_fields)
        values = key.split(":")[1:]
        if len(values) != len(names):
            return None
        try:
            return cls.model_validate({n: unquote(v) for n, v in zip(names, values)})
        except ValidationError:
            return None
