"""A strict fake WeCom on 127.0.0.1:0: the server API the bot calls and the callbacks WeCom makes.

Server side (`/cgi-bin/...`): gettoken, message/send, message/update_template_card,
media/upload, media/get, menu/create, department/list, user/simplelist. Requests are checked
the way WeCom checks them (token, agentid, payload shapes, recipient limits, card
field limits, the documented suggested lengths as hard limits so renderer
regressions show) and answered with WeCom's errcodes. Faults can be queued or
drawn at random: an errcode, latency, or a dropped connection before or after the
call took effect.

Client side (`CallbackClient`): encrypts and signs callbacks exactly as WeCom does
and POSTs them to the bot, retrying up to 3 times after a non-200 answer, a
dropped connection or no answer within the timeout.

Where WeCom's behaviour is not documented the fake picks the stricter reading;
such places are marked [?].
"""
from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import time
from collections import defaultdict, deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.wecom_crypto import WeComCrypto

DUPLICATE_DEFAULT = 1800
DUPLICATE_MAX = 4 * 3600
RESPONSE_CODE_TTL = 72 * 3600
TASK_ID_RE = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
INTERACTIVE = ("button_interaction", "vote_interaction", "multiple_interaction")
CARD_TYPES = ("text_notice", "news_notice", *INTERACTIVE)
# errcodes
OK, BUSY = 0, -1
INVALID_SECRET, INVALID_CORPID, INVALID_TOKEN, MISSING_TOKEN, TOKEN_EXPIRED = 40001, 40013, 40014, 41001, 42001
INVALID_MEDIA, INVALID_MSGTYPE, INVALID_USERID, INVALID_AGENTID, INVALID_PARAM = 40007, 40008, 40003, 40056, 40058
EMPTY_CONTENT, CONTENT_TOO_LONG, DATA_FORMAT = 44004, 45002, 47001
FREQ_LIMIT, CONCURRENCY_LIMIT, ALL_INVALID, INVALID_PARTY = 45009, 45033, 81013, 60123
BAD_RESPONSE_CODE = 60140  # invalid or expired response_code (WWdoc 90313 via go-workwx errcodes)
APPROVAL_PARAM = 301025  # 审批 parameter errors (see _approval_numbers)
APPROVAL_SPAN_MAX = 31 * 86400  # oa/getapprovalinfo: starttime and endtime at most 31 days apart
APPROVAL_FILTER_KEYS = ("template_id", "creator", "department", "sp_status", "record_type")
TOO_MANY_USERS = 40032  # more than 1000 recipients (same source)
# Repeated calls with a wrong secret ban the caller's IP for an hour (WWdoc 90313, 45009 help); how many
# is not documented [?]: the fake bans from the fifth wrong gettoken within an hour.
WRONG_SECRET_BAN_AFTER, WRONG_SECRET_BAN_SECONDS = 5, 3600.0


class Reject(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass
class Delivered:
    """One message as one person received it."""

    userid: str
    msgtype: str
    body: dict[str, Any]
    msgid: str
    at: float

    @property
    def text(self) -> str:
        if self.msgtype in ("text", "markdown"):
            return str(self.body[self.msgtype]["content"])
        if self.msgtype == "template_card":
            c = self.body["template_card"]
            return str(c.get("main_title", {}).get("title", ""))
        return ""

    @property
    def task_id(self) -> str:
        return str(self.body.get("template_card", {}).get("task_id", "")) if self.msgtype == "template_card" else ""


@dataclass
class CardState:
    task_id: str
    userids: list[str]
    card: dict[str, Any]  # what the person sees now
    updates: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Fault:
    """errcode: answer with it; 'drop': close before acting; 'drop_after': act, then close; latency in s."""

    kind: int | str
    latency: float = 0.0


def _chars(value: Any, limit: int, what: str) -> None:
    if not isinstance(value, str):
        raise Reject(INVALID_PARAM, f"{what} must be a string")
    if len(value) > limit:
        raise Reject(INVALID_PARAM, f"{what} longer than {limit} characters")


def _bytes(value: Any, limit: int, what: str, *, required: bool = True) -> None:
    if not isinstance(value, str) or (required and not value):
        raise Reject(INVALID_PARAM, f"{what} is required")
    if len(value.encode("utf-8")) > limit:
        raise Reject(INVALID_PARAM, f"{what} longer than {limit} bytes")


class FakeWeCom:
    """One corp with one self-built app."""

    def __init__(self, *, corp_id: str = "wwfakecorp0001", secret: str = "fake-secret",
                 agent_id: int = 1000002, token: str = "faketoken",
                 encoding_aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                 token_ttl: int = 7200, seed: int = 7) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.token_ttl = token_ttl
        self.crypto = WeComCrypto(token, encoding_aes_key, corp_id)
        self.rng = random.Random(seed)
        self._offset = 0.0
        # directory: department id → {id, name, parentid, order, department_leader}; userid → user
        self.departments: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "总部", "name_en": "", "parentid": 0,
                                                            "order": 1, "department_leader": []}}
        self.users: dict[str, dict[str, Any]] = {}
        # state the tests read
        self.access_tokens: dict[str, float] = {}
        self.token_fetches = 0
        self.deliveries: list[Delivered] = []
        self.silently_dropped: list[Delivered] = []
        self.cards: dict[str, CardState] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.menu: dict[str, Any] | None = None
        # 审批: sp_no → the `info` oa/getapprovaldetail answers (developer.work.weixin.qq.com/document/path/91983)
        self.approvals: dict[str, dict[str, Any]] = {}
        self.approval_pages: list[dict[str, Any]] = []  # each oa/getapprovalinfo request as asked
        self.calls: list[tuple[str, int | str]] = []
        # what the bot did that the platform documents against (tests assert it stays empty)
        self.protocol_errors: list[str] = []
        self.wrong_secret_calls: list[float] = []
        self.banned_until = 0.0
        # faults
        self.queued: dict[str, deque[Fault]] = defaultdict(deque)
        self.chaos: dict[str, list[tuple[float, Fault]]] = {}
        self.latency = 0.0
        self.max_concurrency = 0  # 0 = unlimited; else 45033 beyond it
        self._active = 0
        # internals
        self._dup: dict[str, tuple[float, str, dict[str, Any]]] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._per_member: dict[str, deque[float]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def card(self, card_id: str) -> CardState:
        """The newest card sent for one of our card ids (its task_id is the id plus a per-call suffix)."""
        if card_id in self.cards:
            return self.cards[card_id]
        found = [c for t, c in self.cards.items() if t.startswith(card_id + "_")]
        assert found, f"no card {card_id!r} was sent"
        return found[-1]

    # -- time and directory ----------------------------------------------------------
    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (token expiry, duplicate window, response-code expiry)."""
        self._offset += seconds

    def add_department(self, dept_id: int, name: str, parent: int, leaders: list[str] | None = None) -> None:
        self.departments[dept_id] = {"id": dept_id, "name": name, "name_en": "", "parentid": parent,
                                     "order": dept_id, "department_leader": list(leaders or [])}

    def add_user(self, userid: str, name: str, departments: list[int] | None = None) -> None:
        self.users[userid.lower()] = {"userid": userid, "name": name, "department": list(departments or [1]),
                                      "open_userid": "wo" + secrets.token_hex(8)}

    # -- fault injection -----------------------------------------------------------------
    def fail_next(self, path: str, kind: int | str, times: int = 1, latency: float = 0.0) -> None:
        for _ in range(times):
            self.queued[path].append(Fault(kind, latency))

    def set_chaos(self, path: str, faults: list[tuple[float, int | str]]) -> None:
        """On each call of `path` ('*' for all), each fault fires with its probability."""
        self.chaos[path] = [(p, Fault(k)) for p, k in faults]

    def clear_faults(self) -> None:
        self.queued.clear()
        self.chaos.clear()
        self.latency = 0.0

    def expire_tokens(self) -> None:
        """WeCom may invalidate tokens early; the next call with one gets 42001."""
        for t in self.access_tokens:
            self.access_tokens[t] = self.now() - 1

    def _fault(self, path: str) -> Fault | None:
        if self.queued.get(path):
            return self.queued[path].popleft()
        for key in (path, "*"):
            for prob, fault in self.chaos.get(key, []):
                if self.rng.random() < prob:
                    return fault
        return None

    # -- server lifecycle ----------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        routes = {
            ("GET", "gettoken"): self._gettoken,
            ("POST", "message/send"): self._send,
            ("POST", "message/update_template_card"): self._update_card,
            ("POST", "media/upload"): self._upload,
            ("POST", "menu/create"): self._menu_create,
            ("GET", "department/list"): self._department_list,
            ("GET", "user/simplelist"): self._user_simplelist,
            ("POST", "oa/getapprovaldetail"): self._approval_detail,
            ("POST", "oa/getapprovalinfo"): self._approval_numbers,
        }
        for (method, path), fn in routes.items():
            app.router.add_route(method, "/cgi-bin/" + path, self._wrap(path, fn))
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _wrap(self, path: str, fn: Callable[..., Any]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            fault = self._fault(path)
            delay = self.latency + (fault.latency if fault else 0.0)
            if delay:
                await asyncio.sleep(delay)
            if fault is not None and fault.kind == "drop":
                self.calls.append((path, "drop"))
                request.transport.close()  # type: ignore[union-attr]
                return web.Response(status=200)
            if fault is not None and isinstance(fault.kind, int):
                self.calls.append((path, fault.kind))
                return web.json_response({"errcode": fault.kind, "errmsg": "injected fault"})
            if self.max_concurrency and self._active >= self.max_concurrency:
                self.calls.append((path, CONCURRENCY_LIMIT))
                return web.json_response({"errcode": CONCURRENCY_LIMIT, "errmsg": "api concurrent out of limit"})
            self._active += 1
            try:
                if path != "gettoken":
                    self._check_token(request)
                result = await fn(request)
                result = {"errcode": 0, "errmsg": "ok", **result}
            except Reject as exc:
                result = {"errcode": exc.errcode, "errmsg": exc.errmsg}
            finally:
                self._active -= 1
            self.calls.append((path, result["errcode"]))
            if fault is not None and fault.kind == "drop_after":
                request.transport.close()  # type: ignore[union-attr]
                return web.Response(status=200)
            return web.json_response(result)
        return handler

    # -- token ---------------------------------------------------------------------------
    def _check_token(self, request: web.Request) -> None:
        token = request.query.get("access_token", "")
        if not token:
            raise Reject(MISSING_TOKEN, "access_token missing")
        expiry = self.access_tokens.get(token)
        if expiry is None:
            raise Reject(INVALID_TOKEN, "invalid access_token")
        if expiry <= self.now():
            raise Reject(TOKEN_EXPIRED, "access_token expired")

    async def _gettoken(self, request: web.Request) -> dict[str, Any]:
        now = self.now()
        if now < self.banned_until:
            raise Reject(FREQ_LIMIT, "api forbidden: too many invalid credentials from this ip")
        if request.query.get("corpid") != self.corp_id or request.query.get("corpsecret") != self.secret:
            self.wrong_secret_calls = [t for t in self.wrong_secret_calls if t > now - 3600] + [now]
            if len(self.wrong_secret_calls) >= WRONG_SECRET_BAN_AFTER:
                self.banned_until = now + WRONG_SECRET_BAN_SECONDS
                self.protocol_errors.append("repeated wrong secret: this IP is banned for an hour, for every tenant")
            if request.query.get("corpid") != self.corp_id:
                raise Reject(INVALID_CORPID, "invalid corpid")
            raise Reject(INVALID_SECRET, "invalid credential")
        now = self.now()
        for tok, exp in self.access_tokens.items():
            if exp > now:  # within its validity a repeat call returns the same token
                return {"access_token": tok, "expires_in": int(exp - now)}
        tok = secrets.token_urlsafe(48)
        self.access_tokens[tok] = now + self.token_ttl
        self.token_fetches += 1
        return {"access_token": tok, "expires_in": self.token_ttl}

    # -- message/send --------------------------------------------------------------------
    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise Reject(DATA_FORMAT, "data format error") from None
        if not isinstance(body, dict):
            raise Reject(DATA_FORMAT, "data format error")
        return body

    def _agent(self, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value != self.agent_id:
            raise Reject(INVALID_AGENTID, "invalid agentid")

    async def _send(self, request: web.Request) -> dict[str, Any]:
        body = await self._json(request)
        self._agent(body.get("agentid"))
        touser = body.get("touser", "")
        if body.get("toparty") or body.get("totag"):
            raise Reject(INVALID_PARAM, "this fake only sends to users")
        if not isinstance(touser, str) or not touser:
            raise Reject(INVALID_USERID, "touser, toparty and totag are all empty")
        ids = touser.split("|")
        if touser == "@all":
            raise Reject(INVALID_USERID, "this fake does not send to @all")
        if len(ids) > 1000:
            raise Reject(TOO_MANY_USERS, "touser holds more than 1000 ids")
        if len(set(i.lower() for i in ids)) != len(ids):
            raise Reject(INVALID_USERID, "touser repeats an id")  # [?]
        msgtype = body.get("msgtype")
        self._check_content(msgtype, body)
        if body.get("enable_duplicate_check") not in (None, 0, 1):
            raise Reject(INVALID_PARAM, "enable_duplicate_check must be 0 or 1")
        interval = body.get("duplicate_check_interval", DUPLICATE_DEFAULT)
        if not isinstance(interval, int) or not 0 < interval <= DUPLICATE_MAX:
            raise Reject(INVALID_PARAM, "duplicate_check_interval out of range")
        now = self.now()
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
        if body.get("enable_duplicate_check") == 1:
            seen = self._dup.get(key)
            if seen is not None and now - seen[0] < interval:
                return dict(seen[2])  # the same answer, and nobody sees it twice
        valid = [i for i in ids if i.lower() in self.users]
        invalid = [i.lower() for i in ids if i.lower() not in self.users]
        if not valid:
            raise Reject(ALL_INVALID, "all touser invalid or out of range")
        msgid = secrets.token_urlsafe(24)
        if msgtype == "template_card":
            task_id = body["template_card"]["task_id"]
            if task_id in self.cards:
                # No documented errcode; a field report: errcode 0 and nothing delivered [O].
                self.protocol_errors.append(f"task_id {task_id} reused: answered ok, delivered nothing")
                return {"invaliduser": "", "invalidparty": "", "invalidtag": "", "unlicenseduser": "", "msgid": msgid}
        for uid in valid:
            d = Delivered(userid=self.users[uid.lower()]["userid"], msgtype=msgtype, body=body, msgid=msgid, at=now)
            window = self._per_member[uid.lower()]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= 30:  # WeCom drops these without an error
                self.silently_dropped.append(d)
                continue
            window.append(now)
            self.deliveries.append(d)
        answer: dict[str, Any] = {"invaliduser": "|".join(invalid), "invalidparty": "", "invalidtag": "",
                                  "unlicenseduser": "", "msgid": msgid}
        if msgtype == "template_card":
            card = body["template_card"]
            self.cards[card["task_id"]] = CardState(card["task_id"], [self.users[u.lower()]["userid"] for u in valid],
                                                    card)
            if card["card_type"] in INTERACTIVE:
                answer["response_code"] = self._issue_code(card["task_id"], valid)
        if body.get("enable_duplicate_check") == 1:
            self._dup[key] = (now, msgid, {k: v for k, v in answer.items()})
        return answer

    def _issue_code(self, task_id: str, userids: list[str]) -> str:
        code = secrets.token_urlsafe(32)
        self._codes[code] = {"task_id": task_id, "userids": {u.lower() for u in userids},
                             "expires": self.now() + RESPONSE_CODE_TTL, "used": False}
        return code

    def _check_content(self, msgtype: Any, body: dict[str, Any]) -> None:
        if msgtype in ("text", "markdown"):
            content = (body.get(msgtype) or {}).get("content")
            if not isinstance(content, str) or not content.strip():
                raise Reject(EMPTY_CONTENT, "empty content")
            if len(content.encode("utf-8")) > 2048:
                raise Reject(CONTENT_TOO_LONG, "content size out of limit")
        elif msgtype in ("file", "image"):
            media_id = (body.get(msgtype) or {}).get("media_id")
            media = self.media.get(media_id) if isinstance(media_id, str) else None
            if media is None or media["expires"] <= self.now():
                raise Reject(INVALID_MEDIA, "invalid media_id")
            if media["type"] != msgtype:
                raise Reject(INVALID_MEDIA, "media type does not match msgtype")
        elif msgtype == "template_card":
            self._check_card(body.get("template_card"))
        else:
            raise Reject(INVALID_MSGTYPE, "invalid message type")

    def _check_card(self, card: Any, *, update: bool = False) -> None:
        if not isinstance(card, dict):
            raise Reject(INVALID_PARAM, "template_card must be an object")
        ctype = card.get("card_type")
        if ctype not in CARD_TYPES:
            raise Reject(INVALID_PARAM, "invalid card_type")
        task_id = card.get("task_id", "")
        if ctype in INTERACTIVE or task_id:
            if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id):
                raise Reject(INVALID_PARAM, "invalid task_id")
        title = (card.get("main_title") or {}).get("title", "")
        if ctype in INTERACTIVE and not title:
            raise Reject(INVALID_PARAM, "main_title.title is required")
        if title:
            _chars(title, 36, "main_title.title")
        if "sub_title_text" in card:
            _chars(card["sub_title_text"], 160, "sub_title_text")
        if ctype == "text_notice" and not card.get("card_action"):
            raise Reject(INVALID_PARAM, "text_notice needs card_action")
        hl = card.get("horizontal_content_list", [])
        if not isinstance(hl, list) or len(hl) > 6:
            raise Reject(INVALID_PARAM, "horizontal_content_list holds at most 6 items")
        for h in hl:
            _chars(h.get("keyname"), 5, "horizontal_content_list.keyname")
            if not h.get("keyname"):
                raise Reject(INVALID_PARAM, "horizontal_content_list.keyname is required")
            _chars(h.get("value", ""), 30, "horizontal_content_list.value")
        if "replace_text" in card:
            if not update:
                raise Reject(INVALID_PARAM, "replace_text only in updates")  # [?]
            _chars(card["replace_text"], 10, "replace_text")
        if ctype == "button_interaction":
            buttons = card.get("button_list")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
                raise Reject(INVALID_PARAM, "button_list holds 1 to 6 buttons")
            keys = []
            for b in buttons:
                _chars(b.get("text"), 10, "button.text")
                if b.get("style", 1) not in (1, 2, 3, 4):
                    raise Reject(INVALID_PARAM, "button.style must be 1..4")
                # type 0 (or none): a callback with `key`; 1: opens `url`, required then (WWdoc 90236 [S],
                # protocols.md "template_card shapes"). Nothing else is documented, so nothing else passes.
                if b.get("type", 0) not in (0, 1):
                    raise Reject(INVALID_PARAM, "button.type is 0 (callback) or 1 (url)")
                if b.get("type", 0) == 0:
                    _bytes(b.get("key"), 1024, "button.key")
                    keys.append(b["key"])
                elif not str(b.get("url", "")).startswith(("http://", "https://")):
                    raise Reject(INVALID_PARAM, "button.url is required for type 1")
            if len(set(keys)) != len(keys):
                raise Reject(INVALID_PARAM, "button keys repeat")
        if ctype == "vote_interaction":
            box = card.get("checkbox")
            if not isinstance(box, dict):
                raise Reject(INVALID_PARAM, "checkbox is required")
            _bytes(box.get("question_key"), 1024, "checkbox.question_key")
            opts = box.get("option_list")
            if not isinstance(opts, list) or not 1 <= len(opts) <= 20:
                raise Reject(INVALID_PARAM, "checkbox.option_list holds 1 to 20 options")
            self._options(opts, 17)
            if box.get("mode", 0) not in (0, 1):
                raise Reject(INVALID_PARAM, "checkbox.mode must be 0 or 1")
        if ctype == "multiple_interaction":
            sels = card.get("select_list")
            if not isinstance(sels, list) or not 1 <= len(sels) <= 3:
                raise Reject(INVALID_PARAM, "select_list holds 1 to 3 selects")
            qkeys = []
            for s in sels:
                _bytes(s.get("question_key"), 1024, "select_list.question_key")
                qkeys.append(s["question_key"])
                _chars(s.get("title", ""), 16, "select_list.title")
                opts = s.get("option_list")
                if not isinstance(opts, list) or not 1 <= len(opts) <= 10:
                    raise Reject(INVALID_PARAM, "select_list.option_list holds 1 to 10 options")
                self._options(opts, 16)
            if len(set(qkeys)) != len(qkeys):
                raise Reject(INVALID_PARAM, "question keys repeat")
        if ctype in ("vote_interaction", "multiple_interaction"):
            sb = card.get("submit_button")
            if not isinstance(sb, dict):
                raise Reject(INVALID_PARAM, "submit_button is required")
            _chars(sb.get("text"), 10, "submit_button.text")
            _bytes(sb.get("key"), 1024, "submit_button.key")

    @staticmethod
    def _options(opts: list[Any], text_limit: int) -> None:
        ids = []
        for o in opts:
            _bytes(o.get("id"), 128, "option.id")
            ids.append(o["id"])
            _chars(o.get("text"), text_limit, "option.text")
        if len(set(ids)) != len(ids):
            raise Reject(INVALID_PARAM, "option ids repeat")

    # -- update_template_card ----------------------------------------------------------------
    async def _update_card(self, request: web.Request) -> dict[str, Any]:
        body = await self._json(request)
        self._agent(body.get("agentid"))
        code = body.get("response_code")
        info = self._codes.get(code) if isinstance(code, str) else None
        if info is None or info["used"] or info["expires"] <= self.now():
            raise Reject(BAD_RESPONSE_CODE, "invalid response_code")
        userids = body.get("userids")
        if body.get("atall") == 1:
            userids = list(info["userids"])
        if isinstance(userids, list) and len(userids) > 1000:
            raise Reject(TOO_MANY_USERS, "more than 1000 userids")
        if not isinstance(userids, list) or not userids:
            raise Reject(INVALID_USERID, "userids must list 1 to 1000 ids")
        if any(not isinstance(u, str) or u.lower() not in info["userids"] for u in userids):
            raise Reject(INVALID_USERID, "userid was not a recipient of this card")
        has_button, has_card = "button" in body, "template_card" in body
        if has_button == has_card:
            raise Reject(INVALID_PARAM, "give either button or template_card")
        state = self.cards[info["task_id"]]
        if has_button:
            _chars((body["button"] or {}).get("replace_name"), 10, "button.replace_name")
            new = dict(state.card, replace_text=body["button"]["replace_name"])
        else:
            new = body["template_card"]
            self._check_card(new, update=True)
            if new.get("task_id") != info["task_id"]:
                raise Reject(INVALID_PARAM, "template_card.task_id differs from the card's")
        info["used"] = True
        state.card = new
        state.updates.append(new)
        return {"invaliduser": []}

    # -- media, menu, directory ---------------------------------------------------------------
    async def _upload(self, request: web.Request) -> dict[str, Any]:
        kind = request.query.get("type")
        if kind not in ("image", "voice", "video", "file"):
            raise Reject(INVALID_PARAM, "invalid media type")
        try:
            form = await request.post()
        except ValueError:
            raise Reject(DATA_FORMAT, "multipart body expected") from None
        part = form.get("media")
        if not isinstance(part, web.FileField) or not part.filename:
            raise Reject(INVALID_PARAM, "field 'media' with a filename is required")
        content = part.file.read()
        limit = {"image": 10, "voice": 2, "video": 10, "file": 20}[kind] * 1024 * 1024
        if not 5 <= len(content) <= limit:
            raise Reject(INVALID_PARAM, "media size out of limit")
        media_id = secrets.token_urlsafe(24)
        self.media[media_id] = {"type": kind, "filename": part.filename, "content": content,
                                "expires": self.now() + 3 * 24 * 3600}
        return {"type": kind, "media_id": media_id, "created_at": str(int(self.now()))}

    def receive_media(self, content: bytes, filename: str, kind: str = "image") -> str:
        """What WeCom keeps of an image a person sends the app: a media_id valid 3 days (WWdoc 90239)."""
        media_id = secrets.token_urlsafe(32)
        self.media[media_id] = {"type": kind, "filename": filename, "content": content,
                                "expires": self.now() + 3 * 24 * 3600}
        return media_id

    async def _media_get(self, request: web.Request) -> web.StreamResponse:
        """GET media/get?access_token=&media_id= (WWdoc 90254): success is the file itself, as a plain HTTP
        download with `Content-disposition: attachment; filename="…"`; an error is a JSON errcode body
        (40007 invalid media_id). A media_id past its 3 days is refused as 40007 too [?]: WeCom documents
        the 3 days, not the code an expired one gets."""
        fault = self._fault("media/get")
        if fault is not None and isinstance(fault.kind, int):
            self.calls.append(("media/get", fault.kind))
            return web.json_response({"errcode": fault.kind, "errmsg": "injected fault"})
        try:
            self._check_token(request)
            media_id = request.query.get("media_id", "")
            if not media_id:
                raise Reject(41006, "media_id missing")
            item = self.media.get(media_id)
            if item is None or item["expires"] <= self.now():
                raise Reject(INVALID_MEDIA, "invalid media_id")
        except Reject as exc:
            self.calls.append(("media/get", exc.errcode))
            return web.json_response({"errcode": exc.errcode, "errmsg": exc.errmsg})
        self.calls.append(("media/get", 0))
        ctype = {"image": "image/png" if item["content"].startswith(b"\x89PNG") else "image/jpeg"}.get(
            item["type"], "application/octet-stream")
        return web.Response(body=item["content"], headers={
            "Content-Type": ctype, "Content-disposition": f'attachment; filename="{item["filename"]}"',
            "Cache-Control": "no-cache, must-revalidate"})

    async def _menu_create(self, request: web.Request) -> dict[str, Any]:
        try:
            agent = int(request.query.get("agentid", ""))
        except ValueError:
            raise Reject(INVALID_AGENTID, "invalid agentid") from None
        self._agent(agent)
        body = await self._json(request)
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise Reject(INVALID_PARAM, "a menu holds 1 to 3 buttons")
        for b in buttons:
            _bytes(b.get("name"), 16, "menu name")
            subs = b.get("sub_button")
            for item in ([b] if subs is None else subs):
                if item.get("type") == "click":
                    _bytes(item.get("key"), 128, "menu key")
                elif item.get("type") == "view":
                    _bytes(item.get("url"), 1024, "menu url")
                else:
                    raise Reject(INVALID_PARAM, "menu button type must be click or view in this fake")
        self.menu = body
        return {}

    def _subtree(self, root: int) -> list[int]:
        out, todo = [], [root]
        while todo:
            d = todo.pop()
            out.append(d)
            todo += [k for k, v in self.departments.items() if v["parentid"] == d and k != d]
        return out

    async def _department_list(self, request: web.Request) -> dict[str, Any]:
        raw = request.query.get("id")
        root = int(raw) if raw and raw.isdigit() else 1
        if root not in self.departments:
            raise Reject(INVALID_PARTY, "invalid party id")
        return {"department": [dict(self.departments[d]) for d in sorted(self._subtree(root))]}

    async def _user_simplelist(self, request: web.Request) -> dict[str, Any]:
        raw = request.query.get("department_id", "")
        if not raw.isdigit() or int(raw) not in self.departments:
            raise Reject(INVALID_PARTY, "invalid party id")
        depts = set(self._subtree(int(raw))) if request.query.get("fetch_child") == "1" else {int(raw)}
        return {"userlist": [dict(u) for u in self.users.values() if depts & set(u["department"])]}

    # -- what people see ----------------------------------------------------------------------
    # -- 审批 (developer.work.weixin.qq.com/document/path/91983, 91815) ---------------------------------
    def add_approval(self, sp_no: str, *, sp_name: str, template_id: str, applyer: str, apply_time: int,
                     fields: list[tuple[str, str, dict[str, Any]]], approvers: list[str]) -> dict[str, Any]:
        """An approval in 审批中 with one node per approver; `fields` are (control, title, value)."""
        info = {"sp_no": sp_no, "sp_name": sp_name, "sp_status": 1, "template_id": template_id,
                "apply_time": apply_time, "applyer": {"userid": applyer, "partyid": "1"},
                "sp_record": [{"sp_status": 1, "approverattr": 1,
                               "details": [{"approver": {"userid": a}, "speech": "", "sp_status": 1, "sptime": 0,
                                            "media_id": []}]} for a in approvers],
                "notifyer": [], "apply_data": {"contents": [
                    {"control": c, "id": f"{c}-{i}", "title": [{"text": t, "lang": "zh_CN"}], "value": v}
                    for i, (c, t, v) in enumerate(fields)]}, "comments": []}
        self.approvals[sp_no] = info
        return info

    def approve(self, sp_no: str, node: int, at: int) -> None:
        """The node's approver agrees at `at`; the last node's agreement makes the approval 已通过 (2)."""
        info = self.approvals[sp_no]
        rec = info["sp_record"][node]
        rec["sp_status"] = 2
        rec["details"][0].update(sp_status=2, sptime=at)
        if all(r["sp_status"] == 2 for r in info["sp_record"]):
            info["sp_status"] = 2

    async def _approval_detail(self, request: web.Request) -> dict[str, Any]:
        body = await self._json(request)
        sp_no = body.get("sp_no")
        if not isinstance(sp_no, str) or not sp_no:
            raise Reject(INVALID_PARAM, "sp_no missing")
        if sp_no not in self.approvals:
            raise Reject(301025, "sp_no not found")  # [?] the errcode of an unknown sp_no is not documented
        return {"info": self.approvals[sp_no]}

    async def _approval_numbers(self, request: web.Request) -> dict[str, Any]:
        """oa/getapprovalinfo (批量获取审批单号, developer.work.weixin.qq.com/document/path/91816).

        starttime/endtime are Unix seconds of the submission (ApplyTime), at most 31 days apart; size is at
        most 100; new_cursor is the previous answer's new_next_cursor, which is absent on the last page;
        filters of key template_id keep that template's approvals. A wrong window is answered 301025
        "get approval param error: invalid starttime or endtime", as WeCom answered a developer who sent
        milliseconds (developers.weixin.qq.com community thread on 批量获取审批单号). The errcode of a size
        over 100 is not documented [?]: the fake refuses it with the same approval-parameter errcode.
        """
        body = await self._json(request)
        start, end, size = body.get("starttime"), body.get("endtime"), body.get("size", 100)
        for v in (start, end, size):
            if not isinstance(v, int) or isinstance(v, bool):
                raise Reject(APPROVAL_PARAM, "get approval param error: starttime, endtime and size are numbers")
        if "cursor" in body:
            self.protocol_errors.append("oa/getapprovalinfo: `cursor` is superseded by `new_cursor`")
        if start > end or end - start > APPROVAL_SPAN_MAX or start > 10 ** 10 or end > 10 ** 10:
            raise Reject(APPROVAL_PARAM, "get approval param error:invalid starttime or endtime")
        if not 0 < size <= 100:
            raise Reject(APPROVAL_PARAM, "get approval param error:invalid size")
        cursor = body.get("new_cursor", "")
        if not isinstance(cursor, str) or (cursor and not (cursor.startswith("c") and cursor[1:].isdigit())):
            raise Reject(APPROVAL_PARAM, "get approval param error:invalid new_cursor")
        templates = set()
        for f in body.get("filters") or []:
            if not isinstance(f, dict) or f.get("key") not in APPROVAL_FILTER_KEYS or not isinstance(f.get("value"), str):
                raise Reject(APPROVAL_PARAM, "get approval param error:invalid filters")
            if f["key"] == "template_id":
                templates.add(f["value"])
            else:
                raise Reject(APPROVAL_PARAM, "this fake filters by template_id only")
        found = sorted(n for n, a in self.approvals.items()
                       if start <= a["apply_time"] <= end and (not templates or a["template_id"] in templates))
        offset = int(cursor[1:]) if cursor else 0
        page = found[offset:offset + size]
        self.approval_pages.append({"starttime": start, "endtime": end, "size": size, "new_cursor": cursor,
                                    "templates": sorted(templates)})
        out: dict[str, Any] = {"sp_no_list": page}
        if offset + size < len(found):
            out["new_next_cursor"] = f"c{offset + size}"
        return out

    def messages_to(self, userid: str) -> list[Delivered]:
        return [d for d in self.deliveries if d.userid.lower() == userid.lower()]

    def last_card(self, userid: str) -> CardState:
        for d in reversed(self.messages_to(userid)):
            if d.msgtype == "template_card":
                return self.cards[d.task_id]
        raise AssertionError(f"{userid} has received no card")

    # -- callbacks to the bot -----------------------------------------------------------------
    def callback_client(self, bot_url: str, *, now: Callable[[], float] | None = None, timeout: float = 5.0,
                        retry_interval: float = 5.0) -> "CallbackClient":
        return CallbackClient(self, bot_url, now=now or self.now, timeout=timeout, retry_interval=retry_interval)


class CallbackClient:
    """Sends WeCom's encrypted callbacks to the bot, with WeCom's retries (3, after `retry_interval`)."""

    def __init__(self, fake: FakeWeCom, bot_url: str, *, now: Callable[[], float], timeout: float,
                 retry_interval: float, retries: int = 3) -> None:
        self.fake = fake
        self.bot_url = bot_url
        self.now = now
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.retries = retries
        self._msgid = 7_000_000_000_000_000_000

    def envelope(self, plaintext: str, *, timestamp: str | None = None) -> tuple[str, bytes]:
        """(URL with query, body) exactly as WeCom POSTs them."""
        ts = timestamp or str(int(self.now()))
        q, body = self.fake.crypto.signed_envelope(plaintext, ts, agent_id=self.fake.agent_id)
        url = self.bot_url + "?" + urlencode({"msg_signature": q.msg_signature, "timestamp": q.timestamp,
                                              "nonce": q.nonce})
        return url, body

    async def _post_once(self, session: aiohttp.ClientSession, url: str, body: bytes) -> int | str:
        try:
            async with session.post(url, data=body, headers={"Content-Type": "text/xml"},
                                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                await resp.read()
                return resp.status
        except asyncio.TimeoutError:
            return "timeout"
        except aiohttp.ClientError:
            return "error"

    async def post(self, plaintext: str, *, repeat: int = 0) -> list[int | str]:
        """Deliver one callback; WeCom retries on non-200 or no answer. `repeat` forces that many sends."""
        url, body = self.envelope(plaintext)
        outcomes: list[int | str] = []
        async with aiohttp.ClientSession() as session:
            for attempt in range(max(repeat, 1 + self.retries)):
                if attempt:
                    await asyncio.sleep(self.retry_interval)
                outcomes.append(await self._post_once(session, url, body))
                if not repeat and outcomes[-1] == 200:
                    break
                if repeat and len(outcomes) >= repeat:
                    break
        return outcomes

    # -- what a person does ---------------------------------------------------------------
    def _head(self, userid: str) -> str:
        return (f"<ToUserName><![CDATA[{self.fake.corp_id}]]></ToUserName>"
                f"<FromUserName><![CDATA[{userid}]]></FromUserName>"
                f"<CreateTime>{int(self.now())}</CreateTime>")

    def text_xml(self, userid: str, content: str, msgid: int | None = None) -> str:
        self._msgid += 1
        return (f"<xml>{self._head(userid)}<MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{content}]]></Content><MsgId>{msgid or self._msgid}</MsgId>"
                f"<AgentID>{self.fake.agent_id}</AgentID></xml>")

    def event_xml(self, userid: str, event: str, extra: str = "") -> str:
        return (f"<xml>{self._head(userid)}<MsgType><![CDATA[event]]></MsgType>"
                f"<Event><![CDATA[{event}]]></Event>{extra}<AgentID>{self.fake.agent_id}</AgentID></xml>")

    def approval_change_xml(self, sp_no: str, change: int) -> str:
        """sys_approval_change as WeCom sends it (document/path/91815): FromUserName sys, the ApprovalInfo."""
        info = self.fake.approvals[sp_no]
        records = "".join(
            f"<SpRecord><SpStatus>{r['sp_status']}</SpStatus><ApproverAttr>{r['approverattr']}</ApproverAttr>"
            + "".join(f"<Details><Approver><UserId><![CDATA[{d['approver']['userid']}]]></UserId></Approver>"
                      f"<Speech><![CDATA[]]></Speech><SpStatus>{d['sp_status']}</SpStatus><SpTime>{d['sptime']}</SpTime>"
                      "</Details>" for d in r["details"]) + "</SpRecord>" for r in info["sp_record"])
        approval = (f"<ApprovalInfo><SpNo>{sp_no}</SpNo><SpName><![CDATA[{info['sp_name']}]]></SpName>"
                    f"<SpStatus>{info['sp_status']}</SpStatus><TemplateId><![CDATA[{info['template_id']}]]></TemplateId>"
                    f"<ApplyTime>{info['apply_time']}</ApplyTime><Applyer><UserId><![CDATA[{info['applyer']['userid']}]]>"
                    f"</UserId><Party><![CDATA[1]]></Party></Applyer>{records}"
                    f"<StatuChangeEvent>{change}</StatuChangeEvent></ApprovalInfo>")
        return self.event_xml("sys", "sys_approval_change", approval)

    def image_xml(self, userid: str, media_id: str) -> str:
        """An image message (WWdoc 90239): PicUrl, MediaId, MsgId, AgentID."""
        self._msgid += 1
        return (f"<xml>{self._head(userid)}<MsgType><![CDATA[image]]></MsgType>"
                f"<PicUrl><![CDATA[{self.fake.url}/pic/{media_id[:12]}]]></PicUrl>"
                f"<MediaId><![CDATA[{media_id}]]></MediaId><MsgId>{self._msgid}</MsgId>"
                f"<AgentID>{self.fake.agent_id}</AgentID></xml>")

    async def send_image(self, userid: str, content: bytes, filename: str = "IMG_0001.png") -> str:
        """A person sends the app an image; returns its media_id."""
        media_id = self.fake.receive_media(content, filename)
        await self.post(self.image_xml(userid, media_id))
        return media_id

    async def say(self, userid: str, content: str, **kw: Any) -> list[int | str]:
        return await self.post(self.text_xml(userid, content), **kw)

    async def click(self, userid: str, key: str) -> list[int | str]:
        return await self.post(self.event_xml(userid, "click", f"<EventKey><![CDATA[{key}]]></EventKey>"))

    async def enter(self, userid: str) -> list[int | str]:
        return await self.post(self.event_xml(userid, "enter_agent", "<EventKey><![CDATA[]]></EventKey>"))

    def press_xml(self, userid: str, task_id: str, key: str,
                  selected: dict[str, list[str]] | None = None) -> tuple[str, str]:
        """The template_card_event for pressing `key` (or submitting `selected`); returns (xml, ResponseCode).

        `task_id` may be the exact task_id, or the card id a test knows the card by: the person
        presses the newest card they received whose task_id is that id plus a per-call suffix.
        """
        state = self.fake.cards.get(task_id)
        if state is None:
            mine = [c for t, c in self.fake.cards.items() if t.startswith(task_id + "_")
                    and userid.lower() in {u.lower() for u in c.userids}]
            if mine:
                state = mine[-1]
                task_id = state.task_id
        if state is None:
            raise AssertionError(f"no card {task_id!r} was sent")
        if userid.lower() not in {u.lower() for u in state.userids}:
            raise AssertionError(f"{userid} did not receive card {task_id}")
        card = state.card
        if "replace_text" in card:
            raise AssertionError(f"card {task_id} is greyed out ({card['replace_text']}); it cannot be pressed")
        keys = {b.get("key") for b in card.get("button_list", [])}
        if card.get("submit_button"):
            keys.add(card["submit_button"]["key"])
        if key not in keys:
            raise AssertionError(f"card {task_id} has no button {key!r} (has {sorted(k for k in keys if k)})")
        code = self.fake._issue_code(task_id, [userid])
        items = ""
        if selected:
            items = "<SelectedItems>" + "".join(
                f"<SelectedItem><QuestionKey><![CDATA[{q}]]></QuestionKey><OptionIds>"
                + "".join(f"<OptionId><![CDATA[{o}]]></OptionId>" for o in opts)
                + "</OptionIds></SelectedItem>" for q, opts in selected.items()) + "</SelectedItems>"
        extra = (f"<EventKey><![CDATA[{key}]]></EventKey><TaskId><![CDATA[{task_id}]]></TaskId>"
                 f"<CardType><![CDATA[{card['card_type']}]]></CardType>{items}"
                 f"<ResponseCode><![CDATA[{code}]]></ResponseCode>")
        return self.event_xml(userid, "template_card_event", extra), code

    async def press(self, userid: str, task_id: str, key: str,
                    selected: dict[str, list[str]] | None = None, **kw: Any) -> list[int | str]:
        xml, _code = self.press_xml(userid, task_id, key, selected)
        return await self.post(xml, **kw)


# -- the bot wired to this fake, served on 127.0.0.1:0 -------------------------------------------
@dataclass
class BotUnderTest:
    runtime: Any
    adapter: Any
    callback_url: str
    client: CallbackClient
    runner: web.AppRunner


def wecom_tenant(fake: FakeWeCom, key: str = "acme", **extra: Any) -> dict[str, Any]:
    """A [[tenants]] entry (as parsed TOML) for a tenant on this fake."""
    return {"key": key, "name": "测试公司", **extra,
            "wecom": {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "secret": fake.secret,
                      "token": fake.token, "encoding_aes_key": fake.encoding_aes_key, "api_base": fake.url}}


@asynccontextmanager
async def running_bot(db: Any, fake: FakeWeCom, clock: Any, *, tenant_key: str = "acme", router: Any = None,
                      retry_interval: float = 0.05, tenant_extra: dict[str, Any] | None = None) -> AsyncIterator[BotUnderTest]:
    """Start the bot's web app for one WeCom tenant on this fake; the fake's callbacks use the bot's clock."""
    from bot.app import build_app
    from bot.core.config import parse_config
    from bot.runtime import Runtime
    from bot.wecom import WeComAdapter

    config = parse_config({"tenants": [wecom_tenant(fake, tenant_key, **(tenant_extra or {}))]})
    if router is None:
        from handlers.router import Router
        router = Router()
    runtime = Runtime(config, db, clock, router=router)
    adapter = WeComAdapter(runtime)
    adapter.api_options = {"quick_backoff": 0.01}
    runtime.add_adapter(adapter)
    app = build_app(runtime, start_background=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/wecom/{tenant_key}/callback"
    client = fake.callback_client(url, now=lambda: clock.now().timestamp(), retry_interval=retry_interval)
    try:
        yield BotUnderTest(runtime, adapter, url, client, runner)
    finally:
        await adapter.stop()
        await runner.cleanup()
