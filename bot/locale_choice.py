"""Which language to answer a shopper in, decided once per turn.

Order of precedence (first that applies wins):

1. an explicit choice in this message (``/language fr``, "parlez-vous français ?");
2. the language already set for this conversation or customer;
3. the platform's hint (Telegram's ``language_code``, the web page's browser language);
4. the language detected from the message text;
5. the country of a WhatsApp number;
6. the store default.

A hint or explicit choice of a language we do not support falls back to the
store default, and the shopper is told so once per conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError

from bot.i18n import normalize_locale
from bot.language import detect_language
from bot.messages import InboundMessage

LANGUAGE_COMMAND = re.compile(r"^/(?:language|lang|idioma|langue|sprache|lingua)\s+([A-Za-z_-]{2,10})\s*$", re.IGNORECASE)
LANGUAGE_REQUESTS: dict[str, re.Pattern[str]] = {
    "en": re.compile(r"\b(in english|speak english|english please)\b", re.IGNORECASE),
    "es": re.compile(r"\b(en español|en espanol|hablas español|habla español)\b", re.IGNORECASE),
    "fr": re.compile(r"\b(en français|en francais|parlez-vous français|parles-tu français)\b", re.IGNORECASE),
    "de": re.compile(r"\b(auf deutsch|sprechen sie deutsch|sprichst du deutsch)\b", re.IGNORECASE),
    "pt_BR": re.compile(r"\b(em português|em portugues|fala português|falam português)\b", re.IGNORECASE),
}
# Country calling codes of countries where a supported language is the main one.
CALLING_CODES: dict[str, str] = {
    "34": "es", "52": "es", "54": "es", "56": "es", "57": "es", "51": "es", "58": "es", "593": "es", "502": "es",
    "503": "es", "504": "es", "505": "es", "506": "es", "507": "es", "591": "es", "595": "es", "598": "es",
    "33": "fr", "32": "fr", "352": "fr", "377": "fr", "225": "fr", "221": "fr", "237": "fr",
    "49": "de", "43": "de", "41": "de", "423": "de",
    "55": "pt_BR", "351": "pt_BR", "244": "pt_BR", "258": "pt_BR",
    "1": "en", "44": "en", "353": "en", "61": "en", "64": "en", "27": "en",
}
_DIGITS = re.compile(r"\+?(\d{6,15})$")


@dataclass(frozen=True, slots=True)
class LocaleChoice:
    locale: str
    remember: bool  # store it on the conversation (it came from the shopper, not a fallback)
    unsupported: str | None = None  # a language the shopper wants that we do not speak


def explicit_language(text: str) -> tuple[str | None, str | None]:
    """(supported locale, unsupported tag) asked for explicitly in ``text``."""
    command = LANGUAGE_COMMAND.match(text.strip())
    if command:
        tag = command.group(1)
        locale = normalize_locale(tag)
        return (locale, None) if locale else (None, tag)
    for locale, pattern in LANGUAGE_REQUESTS.items():
        if pattern.search(text):
            return locale, None
    return None, None


def country_language(inbound: InboundMessage) -> str | None:
    """The main supported language of the WhatsApp number's country, if any."""
    if inbound.channel not in {"twilio", "whatsapp"}:
        return None
    match = _DIGITS.search(inbound.sender_id.replace("whatsapp:", ""))
    if match is None:
        return None
    digits = match.group(1)
    for length in (3, 2, 1):
        if digits[:length] in CALLING_CODES:
            return CALLING_CODES[digits[:length]]
    return None


def choose_locale(inbound: InboundMessage, known: str | None, default: str) -> LocaleChoice:
    """Apply the precedence above to one inbound message."""
    explicit, unsupported = explicit_language(inbound.text)
    if explicit:
        return LocaleChoice(explicit, remember=True)
    if unsupported:
        return LocaleChoice(known or default, remember=False, unsupported=unsupported)
    if known:
        return LocaleChoice(known, remember=False)
    hinted = normalize_locale(inbound.locale_hint)
    if hinted:
        return LocaleChoice(hinted, remember=True)
    detected = detect_language(inbound.text)
    if detected:
        return LocaleChoice(detected, remember=True)
    by_country = country_language(inbound)
    if by_country:
        return LocaleChoice(by_country, remember=True)
    unsupported_hint = inbound.locale_hint if inbound.locale_hint and _is_language(inbound.locale_hint) else None
    return LocaleChoice(normalize_locale(default) or "en", remember=False, unsupported=unsupported_hint)


def language_name(tag: str, in_locale: str) -> str:
    """The name of a language in the shopper's language ("italien" for it, in French)."""
    try:
        return Locale.parse(tag.replace("-", "_")).get_display_name(in_locale) or tag
    except (ValueError, UnknownLocaleError):
        return tag


def _is_language(tag: str) -> bool:
    try:
        Locale.parse(tag.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return False
    return True
