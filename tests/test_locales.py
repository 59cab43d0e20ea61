"""The gettext catalogs: complete, consistent with the source, and used at runtime.

``test_catalogs_are_complete`` is the one that fails when a new ``_()`` string
is added without translations: run ``shopkeeper locales extract``, then
``shopkeeper locales update``, translate the new entries in every
``locales/<lang>/LC_MESSAGES/shopkeeper.po`` and run this file again.
"""

from __future__ import annotations

import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations

from bot import catalogs
from bot.i18n import SUPPORTED_LOCALES, _, format_price, ngettext, use_locale

TRANSLATED_LOCALES = tuple(locale for locale in SUPPORTED_LOCALES if locale != "en")
# msgids used as button titles (WhatsApp cuts reply buttons at 20 characters)
BUTTON_TITLES = ("Shipping", "Returns", "Talk to a person", "Keep chatting")
LANGUAGE_SWITCH = "Okay, I'll continue in English."
EXPECTED_PLURAL_FORMS = {
    "en": "nplurals=2; plural=(n != 1);",
    "es": "nplurals=2; plural=(n != 1);",
    "de": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
    "pt_BR": "nplurals=2; plural=(n > 1);",
}


def load(locale: str) -> Catalog:
    with catalogs.po_path(locale).open("rb") as fh:
        return read_po(fh, locale=locale)


def entries(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


def ids(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, (tuple, list)) else (message.id,)


def forms(message: Message) -> tuple[str, ...]:
    return tuple(message.string) if isinstance(message.string, (tuple, list)) else (message.string or "",)


# (a) ------------------------------------------------------------------------


def test_catalogs_are_complete() -> None:
    problems = catalogs.check()
    assert not problems, "translation catalogs need work (see bot/catalogs.py):\n" + "\n".join(problems)


def test_every_supported_locale_has_a_catalog_with_the_right_headers() -> None:
    for locale in SUPPORTED_LOCALES:
        catalog = load(locale)
        assert catalog.locale_identifier == locale
        assert catalog.plural_forms == EXPECTED_PLURAL_FORMS[locale]
        header = catalogs.po_path(locale).read_text(encoding="utf-8")
        assert f'"Language: {locale}\\n"' in header
        assert f'"Plural-Forms: {EXPECTED_PLURAL_FORMS[locale]}\\n"' in header


def test_english_catalog_repeats_each_msgid() -> None:
    for message in entries(load("en")):
        assert forms(message) == ids(message), message.id


def test_check_reports_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """check() is not vacuous: a broken catalog produces one readable line per problem."""
    locales_dir = tmp_path / "locales"
    shutil.copytree(catalogs.LOCALES_DIR, locales_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__", "*.mo"))
    monkeypatch.setattr(catalogs, "LOCALES_DIR", locales_dir)
    catalog = load("fr")
    catalog["Shipping"].string = ""
    catalog["Returns"].flags.add("fuzzy")
    catalog["Tracking: {url}"].string = "Suivi : {lien}"
    del catalog["Sources:"]
    catalog.add("A string nobody uses any more", "Une phrase que plus personne n'utilise")
    with catalogs.po_path("fr").open("wb") as fh:
        write_po(fh, catalog)

    problems = [p for p in catalogs.check() if p.startswith("fr:")]

    def reported(*words: str) -> bool:
        return any(all(word in problem for word in words) for problem in problems)

    assert reported("empty translation", "'Shipping'")
    assert reported("fuzzy", "'Returns'")
    assert reported("'Tracking: {url}'", "missing {url}", "unknown {lien}")
    assert reported("missing msgid", "'Sources:'")
    assert reported("'A string nobody uses any more'", "no longer in the source")
    assert len(problems) == 5, problems
    assert not [p for p in catalogs.check() if not p.startswith("fr:")]


def test_update_keeps_translations_and_reports_fuzzy_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locales_dir = tmp_path / "locales"
    shutil.copytree(catalogs.LOCALES_DIR, locales_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__", "*.mo"))
    monkeypatch.setattr(catalogs, "LOCALES_DIR", locales_dir)
    template = catalogs.extract(output=None)
    old = template["Talk to a person"]  # a msgid the source uses (a button title)
    assert old is not None
    del template["Talk to a person"]
    template.add("Talk to a real person", locations=old.locations)  # a reworded msgid
    template.add(("{n} item in your cart", "{n} items in your cart"), locations=[("bot/cart.py", 1)])

    report = catalogs.update(template, locales=("en", "fr"))

    assert any("FUZZY" in line and "'Talk to a real person'" in line for line in report), report
    fr = load("fr")
    assert fr["Shipping"].string == "Livraison"  # kept
    assert fr["Talk to a real person"].fuzzy
    assert forms(fr["{n} item in your cart"]) == ("", "")  # new entries stay empty
    en = load("en")  # the source language is filled in
    assert forms(en["Talk to a real person"]) == ("Talk to a real person",)
    assert not en["Talk to a real person"].fuzzy
    assert forms(en["{n} item in your cart"]) == ("{n} item in your cart", "{n} items in your cart")


# (b) ------------------------------------------------------------------------


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_placeholders_match_the_msgid(locale: str) -> None:
    for message in entries(load(locale)):
        msgids = ids(message)
        for index, text in enumerate(forms(message)):
            source = msgids[0] if index == 0 else msgids[-1]
            assert catalogs.placeholders(text) == catalogs.placeholders(source), (locale, message.id, text)


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_button_titles_are_short(locale: str) -> None:
    catalog = load(locale)
    for msgid in BUTTON_TITLES:
        message = catalog.get(msgid)
        if message is None:
            continue  # no longer used as a button; check() covers the catalog itself
        title = forms(message)[0]
        assert 0 < len(title) <= 20, (locale, msgid, title)


# (c) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "switched", "shipping"),
    [
        ("es", "De acuerdo, seguimos en español.", "Envíos"),
        ("fr", "D'accord, je continue en français.", "Livraison"),
        ("de", "Alles klar, ich mache auf Deutsch weiter.", "Versand"),
        ("pt_BR", "Certo, vou continuar em português.", "Entrega"),
    ],
)
def test_rendering_in_the_current_locale(locale: str, switched: str, shipping: str) -> None:
    with use_locale("en"):
        english = _("I'm the automated shop assistant of {store}.", store="Alder & Finch")
        english_help = _("Talk to a person")
    with use_locale(locale):
        assert _(LANGUAGE_SWITCH) == switched
        assert _("Shipping") == shipping
        disclosure = _("I'm the automated shop assistant of {store}.", store="Alder & Finch")
        assert "Alder & Finch" in disclosure
        assert disclosure != english
        assert "{" not in disclosure
        assert _("Talk to a person") != english_help
        reply = _("Your order {number} ({total}) {status}.", number="#1001", total="10", status=_("has shipped"))
        assert "#1001" in reply
        assert "shipped" not in reply
    with use_locale("en"):
        assert _(LANGUAGE_SWITCH) == LANGUAGE_SWITCH


def test_language_switch_message_names_its_own_language() -> None:
    names = {"es": "español", "fr": "français", "de": "Deutsch", "pt_BR": "português"}
    for locale, name in names.items():
        with use_locale(locale):
            assert name in _(LANGUAGE_SWITCH)


def test_unknown_msgid_falls_back_to_english() -> None:
    with use_locale("de"):
        assert _("No such message {x}", x=1) == "No such message 1"


# (d) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        ("fr", "EUR", "49,90\u00a0€"),
        ("pt_BR", "BRL", "R$\u00a049,90"),
        ("en", "USD", "$49.90"),
        ("de", "EUR", "49,90\u00a0€"),
    ],
)
def test_format_price(locale: str, currency: str, expected: str) -> None:
    with use_locale(locale):
        assert format_price(Decimal("49.90"), currency) == expected


# (e) ------------------------------------------------------------------------


def test_french_plurals_treat_zero_and_one_as_singular() -> None:
    plural_messages = [m for m in entries(load("fr")) if len(ids(m)) > 1]
    assert plural_messages, "the catalog has plural entries (the product count reply)"
    for message in plural_messages:
        singular, plural = ids(message)[:2]
        params = {name: "X" for name in catalogs.placeholders(singular) | catalogs.placeholders(plural) if name != "n"}
        one, many = forms(message)
        with use_locale("fr"):
            assert ngettext(singular, plural, 0, **params) == one.format(n=0, **params)
            assert ngettext(singular, plural, 1, **params) == one.format(n=1, **params)
            assert ngettext(singular, plural, 2, **params) == many.format(n=2, **params)
        with use_locale("en"):
            assert ngettext(singular, plural, 0, **params) == plural.format(n=0, **params)


@pytest.mark.parametrize(("locale", "zero_is_singular"), [("fr", True), ("pt_BR", True), ("es", False), ("de", False), ("en", False)])
def test_plural_rule_of_each_catalog(locale: str, zero_is_singular: bool) -> None:
    """The Plural-Forms header drives ngettext: 0 is singular in French and Brazilian Portuguese only.

    Uses a throwaway plural entry compiled in memory with the real catalog's header,
    so it runs even while no ngettext() string exists in the source.
    """
    catalog = load(locale)
    catalog.add(("{n} item", "{n} items"), ("{n} SINGULAR", "{n} PLURAL"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    translations = Translations(buffer, domain="shopkeeper")
    assert translations.ngettext("{n} item", "{n} items", 1) == "{n} SINGULAR"
    assert translations.ngettext("{n} item", "{n} items", 2) == "{n} PLURAL"
    assert translations.ngettext("{n} item", "{n} items", 0) == ("{n} SINGULAR" if zero_is_singular else "{n} PLURAL")
