"""WeCom callback security: msg_signature, the AES envelope, the replay window and safe XML.

The AES scheme is wechatpy's (Tencent's layout: random16 + len + msg + receiveid);
the signature is compared in constant time and every XML document is parsed with
defusedxml (no DTD, no entities) after a size check, because the callback URL is
reachable by anyone on the internet.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

# A text callback is well under 4 KiB; card events with selections stay far below this.
MAX_BODY_BYTES = 64 * 1024


class CallbackRejected(Exception):
    """A callback that must be refused; `status` is the HTTP answer, `reason` is safe to log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class CallbackQuery:
    msg_signature: str
    timestamp: str
    nonce: str
    echostr: str = ""


def sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """WeCom's msg_signature: sha1 over the four values sorted as strings."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode("utf-8")).hexdigest()


def check_timestamp(timestamp: str, now: datetime, window_seconds: int) -> None:
    """Refuse a callback whose timestamp is outside the replay window around `now`."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # not '²': int() refuses it
        raise CallbackRejected(400, "timestamp is not a number")
    if abs(now.timestamp() - int(timestamp)) > window_seconds:
        raise CallbackRejected(403, "timestamp outside the replay window")


def parse_xml(data: bytes | str, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """Parse a flat WeCom XML document into {tag: text}; nested SelectedItems become a dict."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise CallbackRejected(413, "XML document too large")
    try:
        root = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise CallbackRejected(400, f"malformed XML ({type(exc).__name__})") from None
    if root.tag != "xml":
        raise CallbackRejected(400, "XML root is not <xml>")
    out: dict[str, Any] = {}
    for child in root:
        if child.tag == "SelectedItems":
            out["SelectedItems"] = _selected_items(child)
        elif len(child):
            out[child.tag] = {c.tag: (c.text or "") for c in child}
        else:
            out[child.tag] = child.text or ""
    return out


def _selected_items(node: Element) -> dict[str, list[str]]:
    items: dict[str, list[str]] = {}
    for item in node.findall("SelectedItem"):
        key = (item.findtext("QuestionKey") or "").strip()
        ids = [(o.text or "").strip() for o in item.findall("OptionIds/OptionId")]
        if key:
            items[key] = [i for i in ids if i]
    return items


class WeComCrypto:
    """Verifies and decrypts callbacks of one app; encrypts for the fake server and passive replies."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("encoding_aes_key is not valid base64") from None
        if len(key) != 32:
            raise ValueError("encoding_aes_key must decode to 32 bytes")
        self._token = token
        self._key = key
        self.corp_id = corp_id

    def _verify_signature(self, q: CallbackQuery, encrypt: str) -> None:
        expected = sign(self._token, q.timestamp, q.nonce, encrypt)
        if not hmac.compare_digest(expected, q.msg_signature.lower().encode("ascii", "replace").decode()):
            raise CallbackRejected(403, "bad msg_signature")

    def _decrypt(self, encrypt: str) -> str:
        try:
            return PrpCrypto(self._key).decrypt(encrypt, self.corp_id)
        except InvalidCorpIdException:
            raise CallbackRejected(403, "receive id is not our corp id") from None
        except Exception as exc:  # bad base64, bad block size, bad padding, bad UTF-8
            raise CallbackRejected(400, f"cannot decrypt ({type(exc).__name__})") from None

    def verify_url(self, q: CallbackQuery, now: datetime, window_seconds: int) -> str:
        """The GET handshake: check and decrypt echostr; the plaintext is the whole answer."""
        if not (q.msg_signature and q.timestamp and q.nonce and q.echostr):
            raise CallbackRejected(400, "missing query parameters")
        self._verify_signature(q, q.echostr)
        check_timestamp(q.timestamp, now, window_seconds)
        return self._decrypt(q.echostr)

    def decrypt_callback(self, body: bytes, q: CallbackQuery, now: datetime, window_seconds: int) -> dict[str, Any]:
        """A POSTed message: outer XML → signature → window → decrypt → inner XML."""
        return self.open_callback(body, q, now, window_seconds)[0]

    def open_callback(self, body: bytes, q: CallbackQuery, now: datetime,
                      window_seconds: int) -> tuple[dict[str, Any], str]:
        """Like decrypt_callback, and also the `Encrypt` text the signature covers (the rest of the
        outer XML is not signed: anyone may alter it)."""
        if not (q.msg_signature and q.timestamp and q.nonce):
            raise CallbackRejected(400, "missing query parameters")
        outer = parse_xml(body)
        encrypt = outer.get("Encrypt")
        if not isinstance(encrypt, str) or not encrypt.strip():
            raise CallbackRejected(400, "no Encrypt element")
        encrypt = encrypt.strip()
        self._verify_signature(q, encrypt)
        check_timestamp(q.timestamp, now, window_seconds)
        return parse_xml(self._decrypt(encrypt)), encrypt

    # -- the sending side (fake WeCom, passive replies) ----------------------------
    def decrypt(self, encrypt: str) -> str:
        """The plaintext of an Encrypt whose signature open_callback already checked."""
        return self._decrypt(encrypt)

    def encrypt(self, plaintext: str) -> str:
        return PrpCrypto(self._key).encrypt(plaintext, self.corp_id).decode("ascii")

    def signed_envelope(self, plaintext: str, timestamp: str, nonce: str | None = None,
                        agent_id: int | str = "") -> tuple[CallbackQuery, bytes]:
        """The query and body WeCom would POST for `plaintext`."""
        nonce = nonce or "".join(secrets.choice(string.digits) for _ in range(10))
        encrypt = self.encrypt(plaintext)
        q = CallbackQuery(sign(self._token, timestamp, nonce, encrypt), timestamp, nonce)
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
                f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>")
        return q, body.encode("utf-8")
