"""Phone numbers in E.164 (``+`` country code and number, digits only).

Customers' phones come from order exports written by people ("+34 600 00 00 01",
"0034-600000001", "(555) 010-0002" with a country field elsewhere) and from
WhatsApp, whose senders are international numbers ("whatsapp:+34600000001" from
Twilio, the bare digits "34600000001" from the Cloud API). Both sides go through
:func:`to_e164` so that a WhatsApp number matches the customer's phone on file.

A number written without its country code is only accepted when the caller
knows the country calling code (``default_country_code``, e.g. "34"); otherwise
it is rejected rather than guessed.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s().\-/]")
_DIGITS = re.compile(r"\d+")
# ITU-T E.164: at most 15 digits including the country code; real numbers have at least 8
_MIN_DIGITS = 8
_MAX_DIGITS = 15


def to_e164(raw: str | None, *, default_country_code: str | None = None) -> str | None:
    """The number in E.164, or None when it cannot be read as an international number."""
    if not raw:
        return None
    text = raw.strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    text = _SEPARATORS.sub("", text)
    text = text.removeprefix("'")  # spreadsheets prefix numbers with ' to keep the leading +
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif default_country_code and text.startswith("0"):
        digits = default_country_code + text.lstrip("0")
    elif default_country_code:
        digits = default_country_code + text
    else:
        return None
    if not _DIGITS.fullmatch(digits) or digits.startswith("0") or not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        return None
    return "+" + digits


def whatsapp_e164(sender_id: str) -> str | None:
    """A WhatsApp sender's number in E.164 (Twilio sends ``whatsapp:+…``, the Cloud API bare digits)."""
    text = sender_id.strip()
    if text.lower().startswith("whatsapp:"):
        return to_e164(text)
    return to_e164("+" + text) if text.isdigit() else to_e164(text)
