"""The WeCom app menu (本周动作 / 微反馈 / 我的数据) whose clicks come back as menu events."""
from __future__ import annotations

from typing import Any

from bot.core.config import TenantConfig
from bot.wecom_api import WeComAPI, standalone_api

# Click keys the handlers route on (Event(kind="menu", action_key=key)).
MENU: tuple[tuple[str, str], ...] = (
    ("weekly", "本周动作"),
    ("feedback", "微反馈"),
    ("mydata", "我的数据"),
)


def menu_body() -> dict[str, Any]:
    """The menu/create body: three top-level click buttons."""
    return {"button": [{"type": "click", "name": name, "key": key} for key, name in MENU]}


async def create_wecom_menu(tenant_cfg: TenantConfig, *, runtime: Any = None, api: WeComAPI | None = None) -> dict[str, Any]:
    """Create (replace) the app menu of the tenant's WeCom app; returns the body sent."""
    if tenant_cfg.wecom is None:
        raise ValueError(f"tenant {tenant_cfg.key!r} has no [tenants.wecom] section")
    body = menu_body()
    if api is None and runtime is not None and "wecom" in getattr(runtime, "adapters", {}):
        api = runtime.adapters["wecom"].api(tenant_cfg)
    if api is not None:
        await api.create_menu(body)
        return body
    async with standalone_api(tenant_cfg.wecom) as own:
        await own.create_menu(body)
    return body


async def create_menu(tenant_cfg: TenantConfig, *, runtime: Any = None, api: WeComAPI | None = None) -> str:
    """Create the menu and say so in one line, for `dongxian wecom menu`."""
    body = await create_wecom_menu(tenant_cfg, runtime=runtime, api=api)
    names = " / ".join(b["name"] for b in body["button"])
    assert tenant_cfg.wecom is not None
    return f"已为应用 {tenant_cfg.wecom.agent_id} 创建菜单：{names}（成员重新进入应用后可见）"
