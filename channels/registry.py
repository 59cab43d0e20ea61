"""Which platform adapters run: each is enabled by its own settings only.

An adapter whose credentials are absent is skipped with one log line; one
whose credentials are malformed never gets here, because settings validation
stops start-up naming the variable. SDKs are imported only for the channels
that are enabled.
"""

from __future__ import annotations

import logging

from bot.settings import Settings
from channels.base import BaseChannel

log = logging.getLogger(__name__)


def enabled_channels(settings: Settings) -> dict[str, BaseChannel]:
    """The configured platform adapters, by name (not yet opened)."""
    channels: dict[str, BaseChannel] = {}

    if settings.telegram_bot_token:
        from channels.telegram import TelegramChannel

        channels["telegram"] = TelegramChannel.from_settings(settings)
    else:
        log.info("telegram channel disabled: SHOPKEEPER_TELEGRAM_BOT_TOKEN is not set")

    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_whatsapp_number:
        from channels.twilio_whatsapp import TwilioWhatsAppChannel

        channels["twilio"] = TwilioWhatsAppChannel.from_settings(settings)
    else:
        log.info("twilio whatsapp channel disabled: SHOPKEEPER_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _WHATSAPP_NUMBER are not all set")

    if settings.meta_app_secret and settings.whatsapp_access_token and settings.whatsapp_phone_number_id:
        from channels.meta import WhatsAppCloudChannel

        channels["whatsapp"] = WhatsAppCloudChannel.from_settings(settings)
    else:
        log.info("whatsapp cloud channel disabled: SHOPKEEPER_META_APP_SECRET, _WHATSAPP_ACCESS_TOKEN and _PHONE_NUMBER_ID are not all set")

    if settings.meta_app_secret and settings.messenger_page_access_token:
        from channels.meta import MessengerChannel

        channels["messenger"] = MessengerChannel.from_settings(settings)
    else:
        log.info("messenger channel disabled: SHOPKEEPER_META_APP_SECRET and _MESSENGER_PAGE_ACCESS_TOKEN are not both set")
    return channels
