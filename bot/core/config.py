"""Typed configuration loaded from TOML.

Every key is declared here; an unknown or invalid key fails at start-up with
its dotted path (``tenants[0].morning_prompt_at``) so operators fix the right
line. A string value of the form ``${NAME}`` is read from the environment, which
is how secrets stay out of the file.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import tomllib
import logging
from datetime import date, time
from pathlib import Path
from typing import Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

log = logging.getLogger(__name__)

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class ConfigError(Exception):
    """A configuration problem, phrased for the operator."""


class Strict(BaseModel):
    """For feature sections' own nested models: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)




class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Where exports, charts and the demo database go.
    data_dir: str = "var"
    log_format: Literal["text", "json"] = "text"


class DatabaseConfig(Strict):
    url: str = "sqlite+aiosqlite:///var/dongxian.db"

    @field_validator("url")
    @classmethod
    def _driver(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class ConsoleConfig(Strict):
    enabled: bool = False
    token: str = ""
    # Development only: let the console's clock panel move the time of WeCom/DingTalk tenants too.
    # Their callbacks are then checked against the moved time and fall outside the replay window.
    simulate_platform_tenants: bool = False
    # Host names the console answers to besides loopback (DNS rebinding: a page on evil.example
    # resolving to 127.0.0.1 would otherwise be served); e.g. ["bot.example.com"].
    allowed_hosts: list[str] = []


class WeComConfig(Strict):
    corp_id: str = Field(min_length=1)
    agent_id: int
    secret: str = Field(min_length=1)
    token: str = Field(min_length=1)
    encoding_aes_key: str = Field(min_length=43, max_length=43)
    api_base: str = "https://qyapi.weixin.qq.com"
    # Callbacks whose timestamp is further than this from now are refused (replay window).
    replay_window_seconds: int = Field(300, ge=1)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, v: str) -> str:
        # WeCom's EncodingAESKey is base64 of a 32-byte key without its "=": a wrong one would
        # load fine and then fail every callback, so check it here.
        try:
            key = base64.b64decode(v + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("is not base64 (copy EncodingAESKey from the app's callback settings)") from None
        if len(key) != 32:
            raise ValueError("does not decode to 32 bytes")
        return v


class DingTalkConfig(Strict):
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    robot_code: str = Field(min_length=1)
    mode: Literal["stream", "http"] = "stream"
    api_base: str = "https://api.dingtalk.com"
    # The general card template made in DingTalk's card builder (docs/dingtalk.md); until it is
    # set, cards go out as markdown that says what to type instead of pressing.
    card_template_id: str = ""


# -- feature sections ----------------------------------------------------------------------
_SECTIONS: dict[str, type["Section"]] = {}


class Section(Strict):
    """A feature's own settings, the table `[tenants.NAME]` of each tenant.

    A feature declares its section where it lives (`class TaskSettings(Section, name="tasks")`);
    the tenant model gains the key when the configuration is parsed, so errors keep their dotted
    path (`tenants[0].tasks.escalate_after_hours`) and an unknown section is an unknown key.
    """

    section: ClassVar[str] = ""
    # Keys this section once had at the tenant's top level, and their names here; still read
    # (with a warning) so an existing configuration keeps working after an upgrade.
    legacy: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, name: str = "", legacy: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise TypeError(f"{cls.__name__} needs a section name: class {cls.__name__}(Section, name='…')")
        if name in _SECTIONS and _SECTIONS[name].__qualname__ != cls.__qualname__:
            raise TypeError(f"config section {name!r} is declared twice")
        cls.section = name
        cls.legacy = dict(legacy or {})
        _SECTIONS[name] = cls

    @classmethod
    def of(cls, tenant: "TenantConfig") -> Self:
        """This section of `tenant` (its defaults when the file has none)."""
        found = getattr(tenant, cls.section, None)
        return found if isinstance(found, cls) else cls()


def sections() -> dict[str, type[Section]]:
    return dict(_SECTIONS)


class ReviewPeriod(Strict):
    period: str = Field(pattern=r"^\d{4}Q[1-4]$")  # the period the brief covers, e.g. 2026Q4
    opens: date  # the day the review opens: managers get their people's briefs that morning


class TenantConfig(Strict):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    name: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"
    morning_prompt_at: time = time(9, 30)
    pulse_at: time = time(17, 30)
    catch_up_grace_minutes: int = Field(120, ge=0, le=720)
    draft_ttl_hours: int = Field(24, ge=1, le=24 * 14)
    extra_holidays: list[date] = []
    extra_workdays: list[date] = []
    locale: Literal["zh", "en"] = "zh"
    hr_export_attach: bool = True
    # Go-live date: no week ending before it counts (brief, trend, pulse, export). Unset: the day
    # of the first roster import or directory sync.
    live_from: date | None = None
    review_periods: list[ReviewPeriod] = []
    # Working hours: when escalations and other working-time messages may go out.
    work_hours_start: time = time(9, 0)
    work_hours_end: time = time(18, 0)
    wecom: WeComConfig | None = None
    dingtalk: DingTalkConfig | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("morning_prompt_at", "pulse_at", "work_hours_start", "work_hours_end", mode="before")
    @classmethod
    def _hhmm(cls, v: Any) -> Any:
        if isinstance(v, str) and not re.fullmatch(r"\d{2}:\d{2}", v):
            raise ValueError("use HH:MM, e.g. \"09:30\"")
        return v

    @model_validator(mode="after")
    def _one_platform(self) -> "TenantConfig":
        if self.wecom and self.dingtalk:
            raise ValueError("a tenant is on WeCom or on DingTalk, not both")
        return self

    @property
    def platform(self) -> str:
        if self.wecom:
            return "wecom"
        if self.dingtalk:
            return "dingtalk"
        return "console"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Config(Strict):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    console: ConsoleConfig = ConsoleConfig()
    tenants: list[TenantConfig] = []

    @model_validator(mode="after")
    def _unique_keys(self) -> "Config":
        seen: set[str] = set()
        for t in self.tenants:
            if t.key in seen:
                raise ValueError(f"tenant key {t.key!r} appears twice")
            seen.add(t.key)
        return self

    def tenant(self, key: str) -> TenantConfig:
        for t in self.tenants:
            if t.key == key:
                return t
        raise ConfigError(f"no tenant with key {key!r} in the configuration")


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # A key that is not a bare word is quoted as TOML would write it, so an
            # empty or odd key (spaces, control characters) is still recognisable.
            key = str(part) if re.fullmatch(r"[A-Za-z0-9_-]+", str(part)) else json.dumps(str(part), ensure_ascii=True)
            out += ("." if out else "") + key
    return out or "(top level)"


def _resolve_env(node: Any, where: tuple[Any, ...] = ()) -> Any:
    if isinstance(node, dict):
        return {k: _resolve_env(v, (*where, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, (*where, i)) for i, v in enumerate(node)]
    if isinstance(node, str):
        m = _ENV_REF.match(node)
        if m:
            value = os.environ.get(m.group(1))
            if value is None:
                raise ConfigError(f"config error at {_path(where)}: environment variable {m.group(1)} is not set")
            return value
    return node


_TENANT_MODELS: dict[tuple[str, ...], type[TenantConfig]] = {}


def tenant_model() -> type[TenantConfig]:
    """TenantConfig with a field for every feature section declared so far."""
    names = tuple(sorted(_SECTIONS))
    model = _TENANT_MODELS.get(names)
    if model is None:
        fields: dict[str, Any] = {n: (_SECTIONS[n], Field(default_factory=_SECTIONS[n])) for n in names}
        model = create_model("TenantConfig", __base__=TenantConfig, **fields)
        _TENANT_MODELS[names] = model
    return model


def _move_legacy_keys(tenant: dict[str, Any]) -> dict[str, Any]:
    tenant = dict(tenant)
    for name, section in _SECTIONS.items():
        for old, new in section.legacy.items():
            if old in tenant:
                table = tenant.get(name)
                table = dict(table) if isinstance(table, dict) else {}
                if new not in table:
                    table[new] = tenant[old]
                    log.warning("config: tenants.%s is now [tenants.%s] %s; please move it", old, name, new)
                tenant.pop(old)
                tenant[name] = table
    return tenant


def parse_config(data: dict[str, Any]) -> Config:
    data = _resolve_env(data)
    errors: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    raw_tenants = data.get("tenants")
    if isinstance(raw_tenants, list):
        model, tenants = tenant_model(), []
        for i, raw in enumerate(raw_tenants):
            try:
                tenants.append(model.model_validate(_move_legacy_keys(raw) if isinstance(raw, dict) else raw))
            except ValidationError as exc:
                errors += [(("tenants", i, *e["loc"]), dict(e)) for e in exc.errors()]
        data = {**data, "tenants": tenants}
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        errors += [(tuple(e["loc"]), dict(e)) for e in exc.errors()]
    if errors or config is None:
        lines = []
        for loc, err in errors:
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"config error at {_path(loc)}: {msg}")
        raise ConfigError("\n".join(lines)) from None
    return config


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    cfg = parse_config(data)
    _warn_if_world_readable(p, cfg)
    return cfg


def _warn_if_world_readable(p: Path, cfg: Config) -> None:
    has_secret = any(t.wecom or t.dingtalk for t in cfg.tenants) or bool(cfg.console.token)
    try:
        mode = p.stat().st_mode
    except OSError:
        return
    if has_secret and mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("config file %s holds secrets and is readable by other users; chmod 600 it", p)
