"""Settings: read once, typed, secrets masked, malformed values named."""

from __future__ import annotations

import logging

import pytest

from bot.settings import SettingsError, load_settings


def test_secret_never_appears_in_repr_or_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret-value")
    settings = load_settings(_env_file=None)
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-very-secret-value"
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s %r", settings, settings)
    assert "very-secret" not in repr(settings)
    assert "very-secret" not in str(settings)
    assert "very-secret" not in caplog.text


def test_malformed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPKEEPER_PORT", "eighty")
    with pytest.raises(SettingsError, match="SHOPKEEPER_PORT"):
        load_settings(_env_file=None)


def test_malformed_currency_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPKEEPER_CURRENCY", "euro")
    with pytest.raises(SettingsError, match="SHOPKEEPER_CURRENCY"):
        load_settings(_env_file=None)


def test_error_message_does_not_echo_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPKEEPER_PORT", "sk-ant-secret-looking-port")
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    assert "sk-ant-secret-looking-port" not in str(info.value)


def test_data_dir_and_paths_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHOPKEEPER_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(_env_file=None)
    assert settings.database_path == tmp_path / "data" / "shopkeeper.db"
    assert settings.index_path == tmp_path / "data" / "kb.db"


def test_env_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env_file = tmp_path / ".env"
    env_file.write_text("SHOPKEEPER_PORT=9123\n")
    settings = load_settings(_env_file=env_file)
    assert settings.port == 9123


def test_env_example_documents_every_setting() -> None:
    from pathlib import Path

    from bot.settings import Settings

    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    missing = []
    for name in Settings.model_fields:
        variable = "ANTHROPIC_API_KEY" if name == "anthropic_api_key" else f"SHOPKEEPER_{name.upper()}"
        if f"{variable}=" not in text:
            missing.append(variable)
    assert missing == [], f".env.example lacks {missing}"


def test_logs_hash_phone_numbers_and_emails() -> None:
    import json
    import logging

    from bot.logs import JsonFormatter, hash_id

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "customer %s wrote from %s", ("ana@example.com", "+34 600 000 001"), None)
    line = json.loads(JsonFormatter().format(record))
    assert "ana@example.com" not in line["msg"] and "600" not in line["msg"]
    assert hash_id("ana@example.com") in line["msg"]
    plain = json.loads(JsonFormatter(redact_personal_data=False).format(record))
    assert "ana@example.com" in plain["msg"]
