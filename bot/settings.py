"""Typed settings, read once at start-up and passed to constructors.

Every setting comes from the environment (prefix ``SHOPKEEPER_`` unless it is a
vendor's conventional name such as ``ANTHROPIC_API_KEY``) or from a ``.env``
file in the working directory. Secrets are ``SecretStr``: they print as
``'**********'`` in reprs, logs and error messages. A malformed value fails fast
with :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Everything shopkeeper can be configured with. See ``.env.example``."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPKEEPER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    data_dir: Path = Path("var")
    demo: bool = True  # load the built-in demo store when the data dir holds no catalog
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Store identity; the demo store's own values are used when it is loaded.
    store_name: str = "Alder & Finch"
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    timezone: str = "Europe/Madrid"
    default_locale: str = "en"

    # Retrieval
    embedder: Literal["auto", "e5", "none"] = "auto"
    search_results: int = Field(default=3, ge=1, le=10)

    # Chat input limits (shared by every channel)
    max_message_chars: int = Field(default=4000, ge=1)

    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "SHOPKEEPER_ANTHROPIC_API_KEY")
    )

    @field_validator("anthropic_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def database_path(self) -> Path:
        return self.data_dir / "shopkeeper.db"

    @property
    def index_path(self) -> Path:
        return self.data_dir / "kb.db"


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; translate validation errors into one clear message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "SHOPKEEPER_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
