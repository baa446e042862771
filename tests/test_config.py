"""Config mistakes stop the start with the key's name; nothing else happens."""
from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from bot.app import check_console_exposure
from bot.core.config import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).parent.parent / "config.example.toml"


def test_the_example_config_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.tenants[0].key == "acme" and cfg.tenants[0].platform == "console"


def test_an_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"tenants": [{"key": "acme", "name": "A", "morning_prompt_att": "09:30"}]})
    assert str(e.value) == "config error at tenants[0].morning_prompt_att: unknown key"


def test_a_bad_value_is_named() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"tenants": [{"key": "acme", "name": "A", "morning_prompt_at": "9点半"}]})
    assert "tenants[0].morning_prompt_at" in str(e.value) and "HH:MM" in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config({"tenants": [{"key": "acme", "name": "A", "timezone": "Mars/Olympus"}]})
    assert "tenants[0].timezone" in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config({"database": {"url": "mysql://x"}})
    assert "database.url" in str(e.value)


def test_a_missing_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_SECRET", raising=False)
    data = {"tenants": [{"key": "acme", "name": "A", "wecom": {
        "corp_id": "ww1", "agent_id": 1000002, "secret": "${ACME_SECRET}", "token": "t",
        "encoding_aes_key": "a" * 43}}]}
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert "tenants[0].wecom.secret" in str(e.value) and "ACME_SECRET" in str(e.value)
    monkeypatch.setenv("ACME_SECRET", "s3cr3t")
    assert parse_config(data).tenants[0].wecom.secret == "s3cr3t"  # type: ignore[union-attr]
    del data["tenants"][0]["wecom"]["token"]
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert "config error at tenants[0].wecom.token: Field required" in str(e.value)


def test_broken_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[server\nport = 1", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "bad.toml" in str(e.value) and "not valid TOML" in str(e.value)


def test_console_beyond_loopback_needs_a_token() -> None:
    exposed = parse_config({"server": {"host": "0.0.0.0"}, "console": {"enabled": True}})
    with pytest.raises(ConfigError) as e:
        check_console_exposure(exposed)
    assert "console.token" in str(e.value)
    check_console_exposure(parse_config({"server": {"host": "127.0.0.1"}, "console": {"enabled": True}}))
    check_console_exposure(parse_config({"server": {"host": "0.0.0.0"}, "console": {"enabled": True, "token": "x" * 32}}))


def test_secret_files_readable_by_others_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[console]\nenabled = true\ntoken = "tok-123456"\n', encoding="utf-8")
    os.chmod(p, 0o644)
    load_config(p)
    assert "readable by other users" in caplog.text and "tok-123456" not in caplog.text
    caplog.clear()
    os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
    load_config(p)
    assert "readable by other users" not in caplog.text


def test_every_key_of_the_model_is_documented_in_the_example() -> None:
    from bot.core.config import Config, DingTalkConfig, TenantConfig, WeComConfig, sections
    import handlers.routes  # noqa: F401  every feature declares its section on import
    text = EXAMPLE.read_text(encoding="utf-8")
    tomllib.loads(text)
    models = [Config.model_fields["server"].annotation, Config.model_fields["database"].annotation,
              Config.model_fields["console"].annotation, TenantConfig, WeComConfig, DingTalkConfig,
              *[m for m in sections().values() if m.__module__.startswith("handlers.")]]
    for name, section in sections().items():
        if section.__module__.startswith("handlers."):  # built-in features (tests may declare more)
            assert f"[tenants.{name}]" in text, f"the section [tenants.{name}] is not in config.example.toml"
    for model in models:
        for name in model.model_fields:  # type: ignore[union-attr]
            if name in ("wecom", "dingtalk"):
                continue
            assert f"{name} =" in text, f"{model.__name__}.{name} is not in config.example.toml"  # type: ignore[union-attr]


def test_odd_keys_are_quoted_and_a_bad_aes_key_is_refused_at_load() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"server": {"": 1, "a b": 2}})
    assert 'config error at server."": unknown key' in str(e.value)
    assert 'config error at server."a b": unknown key' in str(e.value)
    wecom = {"corp_id": "ww1", "agent_id": 1, "secret": "s", "token": "t", "encoding_aes_key": "!" * 43}
    with pytest.raises(ConfigError) as e:
        parse_config({"tenants": [{"key": "acme", "name": "A", "wecom": wecom}]})
    assert "tenants[0].wecom.encoding_aes_key" in str(e.value) and "base64" in str(e.value)
    wecom["encoding_aes_key"] = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"  # Tencent's sample key
    assert parse_config({"tenants": [{"key": "acme", "name": "A", "wecom": wecom}]}).tenants[0].wecom


def test_feature_sections_keep_dotted_errors_and_read_old_top_level_keys(caplog: pytest.LogCaptureFixture) -> None:
    from handlers.feedback import FeedbackSettings
    from handlers.tasks.settings import TaskSettings

    with pytest.raises(ConfigError) as e:
        parse_config({"tenants": [{"key": "acme", "name": "A", "tasks": {"escalate_after_hours": -1, "typo": 1}}]})
    assert "config error at tenants[0].tasks.escalate_after_hours" in str(e.value)
    assert "config error at tenants[0].tasks.typo: unknown key" in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config({"tenants": [{"key": "acme", "name": "A", "no_such_feature": {}}]})
    assert "tenants[0].no_such_feature: unknown key" in str(e.value)

    tenant = parse_config({"tenants": [{"key": "acme", "name": "A", "feedback": {"peer": True}}]}).tenants[0]
    assert FeedbackSettings.of(tenant).peer is True and TaskSettings.of(tenant).escalate_after_hours == 2.0
    # A configuration written before the sections existed still means what it meant.
    old = parse_config({"tenants": [{"key": "acme", "name": "A", "peer_feedback": True, "escalate_after_hours": 3}]})
    assert FeedbackSettings.of(old.tenants[0]).peer is True
    assert TaskSettings.of(old.tenants[0]).escalate_after_hours == 3.0
    assert "tenants.peer_feedback is now [tenants.feedback] peer" in caplog.text
