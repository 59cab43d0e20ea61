"""Shopper-facing language: the current locale, translations and formatting.

The locale of a turn is resolved once and held in a context variable
(:func:`use_locale`), so every string and price rendered during that turn, or by a
job working for that shopper, comes out in the shopper's language without
passing the locale around. ``_()`` and ``ngettext()`` translate with the gettext
catalogs in :mod:`locales`, which are compiled in memory when first needed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_skeleton
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import NullTranslations, Translations

from locales import DOMAIN, LOCALES_DIR

SUPPORTED_LOCALES: tuple[str, ...] = ("en", "es", "fr", "de", "pt_BR")
DEFAULT_LOCALE = "en"

_current_locale: ContextVar[str] = ContextVar("shopkeeper_locale", default=DEFAULT_LOCALE)


def normalize_locale(value: str | None) -> str | None:
    """Map a locale tag (``pt-BR``, ``fr_CA``, ``de``) to a supported locale, or None."""
    if not value:
        return None
    try:
        parsed = Locale.parse(value.strip().replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return None
    if parsed.language == "pt":
        return "pt_BR"
    return parsed.language if parsed.language in SUPPORTED_LOCALES else None


def current_locale() -> str:
    return _current_locale.get()


@contextmanager
def use_locale(locale: str) -> Iterator[str]:
    """Render everything inside the block in ``locale`` (a supported locale)."""
    token = _current_locale.set(normalize_locale(locale) or DEFAULT_LOCALE)
    try:
        yield _current_locale.get()
    finally:
        _current_locale.reset(token)


@cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of a locale (compiled from its ``.po`` in memory, once)."""
    po_path = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def _(message: str, **params: object) -> str:
    """Translate ``message`` into the current locale and fill ``{placeholders}``."""
    text = translations(current_locale()).gettext(message)
    return text.format(**params) if params else text


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    """Translate with the plural form the current locale needs for ``n``."""
    text = translations(current_locale()).ngettext(singular, plural, n)
    return text.format(n=n, **params)


def format_price(amount: Decimal, currency: str) -> str:
    """A price in the current locale: ``49,90 €`` in French, ``$49.90`` in US English."""
    locale = current_locale()
    return format_currency(amount, currency, locale="en_US" if locale == "en" else locale)


def format_day(value: date | datetime) -> str:
    return format_date(value, format="long", locale=current_locale())


def format_month(value: date | datetime, *, with_year: bool = False) -> str:
    """A month as a shopper says it: "March", "marzo", "März"; with the year when it is not this one."""
    if with_year:
        return format_skeleton("yMMMM", value, locale=current_locale())
    return format_date(value, format="LLLL", locale=current_locale())


def format_moment(value: datetime, timezone: str) -> str:
    return format_datetime(value, format="medium", tzinfo=timezone, locale=current_locale())  # type: ignore[arg-type]


def join_list(items: list[str], style: str = "standard") -> str:
    return format_list(items, style=style, locale=current_locale())  # type: ignore[arg-type]
