"""`dongxian dingtalk check`: is this tenant's DingTalk app set up for the bot? Each problem named.

What it calls, and why each call is harmless:
- `oauth2/accessToken`: the client id and secret;
- `robot/oToMessages/batchSend` to a user id no company has: robotCode and the robot-send
  permission (qyapi_robot_sendmsg); DingTalk lists the id as invalid and delivers nothing;
- `POST /v1.0/card/instances` (create, delivered nowhere): the card template id and
  Card.Instance.Write, with the parameters every card fills.
The error codes for a wrong robotCode (chatbot.notFound) and an unknown template id are
not documented [?]: a wrong robot is recognised by its code or a message naming the robot,
an unknown template by "template" or 模板 in the code or message.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from bot.core.config import TenantConfig
from bot.dingtalk.api import DingTalkApi, DingTalkApiError
from cards import dingtalk as render
from cards.model import Button, Card

PERMISSION_DENIED = "Forbidden.AccessDenied.AccessTokenPermissionDenied"
NOBODY = "dongxian-setup-check-nobody"
ROBOT_SEND = "qyapi_robot_sendmsg"
CARD_WRITE = "Card.Instance.Write"


@dataclass
class Finding:
    ok: bool
    text: str


def _permission(exc: DingTalkApiError, fallback: str) -> str:
    """The permission a refusal names (应用尚未开通所需的权限：[X]), else `fallback`."""
    text = str(exc)
    if "[" in text and "]" in text.split("[", 1)[1]:
        return text.split("[", 1)[1].split("]", 1)[0]
    return fallback


async def check_dingtalk(tenant: TenantConfig, api: DingTalkApi) -> list[Finding]:
    """Findings in order; the first failure of the credentials stops the rest (nothing else can work)."""
    cfg = tenant.dingtalk
    assert cfg is not None
    out: list[Finding] = []
    try:
        await api.token()
    except DingTalkApiError as exc:
        return [Finding(False, f"client_id/client_secret 被拒绝 (refused): {exc}")]
    out.append(Finding(True, f"client_id {cfg.client_id}: 凭证有效 (credentials accepted)"))

    try:
        await api.batch_send([NOBODY], "sampleText", {"content": "dongxian setup check"})
        out.append(Finding(True, f"robot_code {cfg.robot_code}: 机器人可发消息 (robot can send)"))
    except DingTalkApiError as exc:
        if exc.code == PERMISSION_DENIED:
            out.append(Finding(False, f"缺少权限 (missing permission) {_permission(exc, ROBOT_SEND)}: "
                                      "开发者后台 → 权限管理 申请并发布"))
        elif exc.code.startswith("chatbot.") or "robot" in str(exc).lower() or "机器人" in str(exc):
            out.append(Finding(False, f"robot_code {cfg.robot_code} 不是这个应用的机器人 (wrong robot code): {exc}"))
        else:
            out.append(Finding(False, f"robot_code {cfg.robot_code}: 发送检查失败 (send check failed): {exc}"))

    if not cfg.card_template_id:
        out.append(Finding(False, "card_template_id 未配置 (not set): 卡片以 markdown 发出，需手动回复文字 — "
                                  "按 docs/dingtalk.md 创建通用卡片模板"))
    else:
        sample = Card(title="动线配置检查", body="setup check", fields=[("检查", "ok")],
                      buttons=[Button("check", "检查", "primary")])
        try:
            await api.create_card(f"dxcheck{uuid.uuid4().hex[:24]}", cfg.card_template_id, render.card_params(sample))
            out.append(Finding(True, f"card_template_id {cfg.card_template_id}: 模板可用 (template usable)"))
        except DingTalkApiError as exc:
            if exc.code == PERMISSION_DENIED:
                out.append(Finding(False, f"缺少权限 (missing permission) {_permission(exc, CARD_WRITE)}: "
                                          "互动卡片实例写权限，开发者后台 → 权限管理 申请并发布"))
            elif "template" in exc.code.lower() or "template" in str(exc).lower() or "模板" in str(exc) \
                    or "模版" in str(exc):
                out.append(Finding(False, f"card_template_id {cfg.card_template_id} 不存在或未发布 "
                                          f"(unknown template): {exc}"))
            else:
                out.append(Finding(False, f"card_template_id {cfg.card_template_id}: 卡片检查失败 (card check failed): {exc}"))
    if cfg.mode == "http":
        out.append(Finding(True, "HTTP 模式：卡片回调需先运行 `dongxian dingtalk register-card-callback`"))
    return out
