"""The task card's upload link: `GET /upload/{token}` shows a small form, `POST` takes the file.

The token (handlers/deliverables/upload.py) is signed with the tenant's `upload_secret`: a token not
signed by it is refused with 403; an expired one, one already used, or one for a task that is no
longer the owner's open task, with 410; a file over `max_file_mb` with 413 — each with nothing stored.
An accepted file is written under the data directory and becomes the owner's inbox event of kind
`file` (dedup key `upload:<nonce>`, so a link is used once even when two browsers race), and from
there it takes the same path as a file sent in chat: the intake row, the reader, the light.
"""
from __future__ import annotations

import asyncio
import html
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from sqlalchemy import select

from bot.core.events import Event
from handlers.deliverables.settings import DeliverableSettings
from handlers.deliverables.upload import Expired, Forged, UploadGrant, read_token, tenant_of
from store.models import InboxEvent, Task
from store.tasks import OPEN_STATUSES

log = logging.getLogger(__name__)

UPLOAD_DIR = "uploads"  # under server.data_dir: files waiting for the reader, removed once read
READ_TIMEOUT_SECONDS = 300.0  # a slow phone on a 20 MB report; the body is streamed, never all in memory
CHUNK = 64 * 1024


def upload_path(data_dir: str, name: str) -> Path:
    """Where an upload's bytes wait; `name` is ours (see _store), never the browser's filename."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError("not an upload name")
    return Path(data_dir) / UPLOAD_DIR / name


class _Refused(Exception):
    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.status, self.zh, self.en = status, zh, en


FORGED = (403, "链接无效。", "This link is not valid.")
EXPIRED = (410, "链接已过期，请在任务卡片上重新获取。", "This link has expired; open the task card for a new one.")
USED = (410, "这个链接已经用过了，每个链接只能上传一次。", "This link was already used; each link takes one upload.")
GONE = (410, "这个任务已经不在进行中了。", "This task is no longer open.")


def _page(title_zh: str, title_en: str, body: str, status: int = 200) -> web.Response:
    text = (f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title_zh)} / {html.escape(title_en)}</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:32em;margin:2em auto;padding:0 1em}"
            ".en{color:#666}</style></head>"
            f"<body><h1>{html.escape(title_zh)} <span class=\"en\">{html.escape(title_en)}</span></h1>{body}</body></html>")
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _refusal(r: _Refused) -> web.Response:
    return _page("无法上传", "Cannot upload",
                 f"<p>{html.escape(r.zh)}</p><p class=\"en\">{html.escape(r.en)}</p>", r.status)


class UploadPage:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/upload/{token}", self.form)
        app.router.add_post("/upload/{token}", self.upload)

    async def _grant(self, token: str) -> tuple[Any, DeliverableSettings, UploadGrant, Task]:
        try:
            tenant = self.runtime.tenant(tenant_of(token))
            if tenant is None:
                raise Forged()
            settings = DeliverableSettings.of(tenant)
            grant = read_token(settings.upload_secret, token, self.runtime.now_for(tenant.key))
        except Forged:
            raise _Refused(*FORGED) from None
        except Expired:
            raise _Refused(*EXPIRED) from None
        async with self.runtime.db.session() as s:
            used = (await s.execute(select(InboxEvent.id).where(
                InboxEvent.tenant == tenant.key, InboxEvent.platform == tenant.platform,
                InboxEvent.dedup_key == grant.dedup_key))).first()
            task = (await s.execute(select(Task).where(
                Task.tenant == tenant.key, Task.id == grant.task_id))).scalar_one_or_none()
        if used is not None:
            raise _Refused(*USED)
        if task is None or task.owner_userid != grant.userid or task.status not in OPEN_STATUSES:
            raise _Refused(*GONE)
        return tenant, settings, grant, task

    async def form(self, request: web.Request) -> web.Response:
        try:
            _, settings, _, task = await self._grant(request.match_info["token"])
        except _Refused as r:
            return _refusal(r)
        what = html.escape(f"{task.code} {task.title}")
        cap = f"{settings.max_file_mb:g}"
        return _page("上传交付物", "Upload the deliverable", (
            f"<p>{what}（{html.escape(task.deliverable_template)}）</p>"
            f"<form method=\"post\" enctype=\"multipart/form-data\">"
            f"<p><input type=\"file\" name=\"file\" required></p>"
            f"<p>最大 {cap} MB <span class=\"en\">up to {cap} MB</span></p>"
            f"<p><button type=\"submit\">上传 <span class=\"en\">Upload</span></button></p></form>"
            f"<p>结果会在聊天中告诉你。<span class=\"en\">The result comes to you in chat.</span></p>"))

    async def upload(self, request: web.Request) -> web.Response:
        try:
            tenant, settings, grant, task = await self._grant(request.match_info["token"])
        except _Refused as r:
            return _refusal(r)
        cap = settings.limits().max_bytes
        too_big = _Refused(413, f"文件超过 {settings.max_file_mb:g} MB，没有保存。",
                           f"The file is over {settings.max_file_mb:g} MB and was not kept.")
        # Refused before a byte is read when the browser says the body is over the cap already.
        if request.content_length is not None and request.content_length > cap + CHUNK:
            return _refusal(too_big)
        data_dir = self.runtime.config.server.data_dir
        name = f"{tenant.key}-{secrets.token_urlsafe(18)}"
        path = upload_path(data_dir, name)
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                filename = await _store(request, path, cap)
        except _TooBig:
            _remove(path)
            return _refusal(too_big)
        except _NoFile:
            _remove(path)
            return _refusal(_Refused(400, "没有收到文件，请选择文件后再上传。", "No file came; choose a file and upload again."))
        except (TimeoutError, ConnectionError, ValueError) as exc:
            _remove(path)
            log.warning("upload for %s/%s not received: %s", tenant.key, task.code, type(exc).__name__)
            return _refusal(_Refused(400, "文件没有完整收到，请重试。", "The file did not arrive whole; please try again."))
        event = Event(tenant=tenant.key, platform=tenant.platform, userid=grant.userid, kind="file",
                      dedup_key=grant.dedup_key, values={"type": "file", "filename": filename,
                                                         "ref": {"upload": name}, "task": grant.task_id})
        if not await self.runtime.accept(event):  # the same link, used at the same moment elsewhere
            _remove(path)
            return _refusal(_Refused(*USED))
        return _page("已收到", "Received", (
            f"<p>已收到「{html.escape(filename)}」，正在按 {html.escape(task.code)} 检查，结果会在聊天中告诉你。</p>"
            f"<p class=\"en\">Got “{html.escape(filename)}”; it is being checked for {html.escape(task.code)}, "
            f"and the result comes to you in chat.</p>"))

    # The middleware that reads bodies into memory leaves this route's alone: it streams to disk, capped.
    upload.streams_body = True  # type: ignore[attr-defined]


class _TooBig(Exception):
    pass


class _NoFile(Exception):
    pass


async def _store(request: web.Request, path: Path, cap: int) -> str:
    """The multipart field `file` written to `path`, never more than `cap` bytes; its filename."""
    if not request.content_type.startswith("multipart/"):
        raise _NoFile()  # a form without a file input (or no form at all)
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            raise _NoFile()
        if isinstance(part, BodyPartReader) and part.name == "file" and part.filename:
            break
    filename = os.path.basename(part.filename.replace("\\", "/"))[:200] or "upload"
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with path.open("wb") as out:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > cap:
                raise _TooBig()
            out.write(chunk)
    if size == 0:
        raise _NoFile()
    return filename


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
