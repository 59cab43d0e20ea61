"""Typed settings, read once at start-up and passed to constructors.

Every setting comes from the environment (prefix ``SHOPKEEPER_`` unless it is a
vendor's conventional name such as ``ANTHROPIC_API_KEY``) or from a ``.env``
file in the working directory. Secrets are ``SecretStr``: they print as
``'**********'`` in reprs, logs and error messages. A malformed value fails fast
with :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import re
from datetime import time
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
    log_format: Literal["json", "text"] = "json"

    # Store identity; the demo store's own values are used when it is loaded.
    store_name: str = "Alder & Finch"
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    timezone: str = "Europe/Madrid"
    default_locale: str = "en"

    # Retrieval
    embedder: Literal["auto", "e5", "none"] = "auto"
    search_results: int = Field(default=3, ge=1, le=10)
    # webhook turns run at once in this process (more wait in their chat's queue): webhook acks stay fast
    max_concurrent_turns: int = Field(default=32, ge=1, le=1024)
    # CPU niceness `shopkeeper worker` gives itself: on a host it shares with the web process, the turns'
    # CPU work yields to the web process acknowledging webhooks (0 keeps the priority it was started with)
    worker_nice: int = Field(default=10, ge=0, le=19)
    # Weaviate instead of the embedded SQLite index when a URL is set (see docs/weaviate.md).
    weaviate_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+([/?][^\s]*)?$")
    weaviate_api_key: SecretStr | None = None
    weaviate_tenant: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    weaviate_alpha: float = Field(default=0.5, ge=0.0, le=1.0)  # 0: keyword only, 1: vector only
    weaviate_vectorizer: Literal["shopkeeper", "module"] = "shopkeeper"

    # Shared secret of the admin HTTP API (inventory and catalog uploads); unset: the API answers 503.
    inventory_secret: SecretStr | None = None

    # Public API rate limit per client address (requests per second, burst).
    rate_limit_per_second: float = Field(default=5.0, gt=0)
    rate_limit_burst: int = Field(default=30, ge=1)

    # Staff console (docs/staff.md)
    staff_session_hours: float = Field(default=12, gt=0)
    staff_reannounce_minutes: float = Field(default=5, gt=0)
    staff_idle_minutes: float = Field(default=30, gt=0)

    # Retention (nightly job): transcripts, and orders (accounting)
    transcript_retention_days: int = Field(default=90, ge=1)
    order_retention_days: int = Field(default=365 * 6, ge=1)

    # Chat input limits (shared by every channel)
    max_message_chars: int = Field(default=4000, ge=1)

    # Public HTTPS base URL of this server as platforms see it (webhook registration, Twilio signatures).
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # Trust X-Forwarded-Proto/Host from a TLS-terminating proxy when rebuilding the request URL.
    trust_forwarded_headers: bool = False

    # Telegram (python-telegram-bot)
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org/bot"
    telegram_allow_groups: bool = False

    # WhatsApp through Twilio
    twilio_account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_number: str | None = Field(default=None, pattern=r"^whatsapp:\+[1-9][0-9]{6,14}$")
    twilio_api_base: str | None = None  # override of the REST domain, for tests
    twilio_template_sid: str | None = Field(default=None, pattern=r"^HX[0-9a-fA-F]{32}$")
    twilio_messages_per_second: float = Field(default=1.0, gt=0)

    # Meta Graph API: WhatsApp Cloud API and Messenger
    graph_api_base: str = "https://graph.facebook.com/v21.0"
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    whatsapp_access_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = Field(default=None, pattern=r"^[0-9]{5,20}$")
    whatsapp_template_name: str | None = None
    messenger_page_access_token: SecretStr | None = None

    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "SHOPKEEPER_ANTHROPIC_API_KEY")
    )
    # Claude (used when the key is set). claude-sonnet-4-5 is flagged deprecated by the installed SDK.
    anthropic_model: str = Field(default="claude-sonnet-5-5", min_length=1)
    anthropic_max_tokens: int = Field(default=1024, ge=64, le=8192)
    # seconds per API request; a whole turn (tool rounds, SDK retries) gets twice this before the offline answer
    anthropic_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    anthropic_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")  # proxies, tests
    # also read each message's constraints through Claude: one more model call per turn (latency, cost) for
    # phrasings the offline extractor misses; off by default since the offline one scores 0.97-1.00 micro-F1
    anthropic_constraints: bool = False

    # Follow-ups (reminders, back-in-stock nudges). Quiet hours are in the shopper's timezone; start == end: none.
    followup_quiet_start: time = time(21, 0)
    followup_quiet_end: time = time(9, 0)
    followup_cap: int = Field(default=2, ge=0)  # back-in-stock nudges per customer per cap window (0: none)
    followup_cap_days: int = Field(default=7, ge=1, le=365)
    followup_conversion_days: int = Field(default=7, ge=1, le=90)  # an order this soon after a nudge is attributed to it
    followup_restock_wave_minutes: int = Field(default=60, ge=1)  # small restocks: nudge at most `stock` shoppers per wave
    followup_dispatch_seconds: float = Field(default=1.0, gt=0, le=60)  # how often the dispatcher looks for due rows
    followup_batch_size: int = Field(default=200, ge=1, le=5000)
    # One scheduler per database: its lease expires this long after the last renewal (renewed every third of it).
    scheduler_lease_seconds: float = Field(default=30.0, ge=3, le=3600)

    @field_validator(
        "anthropic_api_key", "anthropic_base_url", "public_url", "telegram_bot_token", "telegram_webhook_secret", "twilio_account_sid",
        "twilio_auth_token", "twilio_whatsapp_number", "twilio_api_base", "twilio_template_sid", "meta_app_secret",
        "meta_verify_token", "whatsapp_access_token", "whatsapp_phone_number_id", "whatsapp_template_name",
        "messenger_page_access_token", "weaviate_url", "weaviate_api_key", "inventory_secret",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_bot_token")
    @classmethod
    def _telegram_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[0-9]{3,20}:[A-Za-z0-9_-]{20,}", value.get_secret_value()):
            raise ValueError("must look like 123456789:AA... (the token BotFather gave you)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

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
