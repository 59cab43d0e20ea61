"""The deterministic check every reply passes before it leaves, whichever responder wrote it.

:func:`check` lists what is wrong with one reply, measured against what the turn's
data supports (:class:`Grounding`: the retrieved hits, whatever a responder looked
up through its tools — recorded in ``ctx.extras[EVIDENCE]`` as :class:`Evidence` —
and the verified shopper's own orders):

* ``price``: an amount (currency-formatted in any of the five locales, parsed with
  Babel, or written after "price"/"costs") that is no catalog price, order amount or
  amount printed on a store page;
* ``discount``: a percentage next to discount words that no store page states; other
  percentages must appear somewhere in the data or the shopper's message;
* ``stock``: a stock figure ("only 3 left") that is no variant's or product's stock;
* ``date`` and ``duration``: a calendar date, or "N days/weeks/months/years", absent
  from the data and from the shopper's own message;
* ``policy``: a refund, return, shipping, warranty, bereavement, voucher… claim that no
  retrieved store page makes;
* ``commitment``: "legally binding", "I promise", "deal", "no takesies backsies"…
  (:func:`sanitize` replaces those sentences with the store's standard wording);
* ``link``: a URL or e-mail address outside the store's domains, other than the
  shopper's own tracking links and the URLs of the data;
* ``profanity`` and ``disparagement``: insults toward anyone, bad-mouthing the store;
* ``impersonation``: the assistant claiming to be a person (it is automated, and says so);
* ``system_prompt``: nine or more consecutive words of the system prompt (also
  reversed, ROT13 or base64-encoded) or the names of the prompt's internal tags/tools;
* ``customer_data``: another order's number next to its details, or a phone number the
  data does not contain;
* ``card``: a product card whose price or stock differs from the catalog;
* ``invisible_text``: zero-width, bidi-control or tag characters (stripped by
  :func:`sanitize`).

Product descriptions and reviews can be written by third parties (and an attacker can
plant instructions in them), so they ground only harmless facts (materials, percentages
of a fabric, dates); prices, discounts, durations and policies need structured catalog
data, orders or the store's own pages.

:func:`enforce` applies the policy around a responder: sanitize, check, regenerate once
with the violations as feedback in ``ctx.extras[FEEDBACK]``, then fall back to the
safe (offline) answer, and if even that fails, ask the engine to hand the thread to
staff. A responder asks for a handoff itself by putting an
:class:`~bot.handoff.EscalationReason` in ``ctx.extras[HANDOFF_REQUEST]``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from urllib.parse import urlsplit

from babel.dates import get_month_names
from babel.numbers import NumberFormatError, parse_decimal

from bot.handoff import EscalationReason
from bot.i18n import _
from bot.messages import OutboundMessage
from bot.prompting import INVISIBLE, SYSTEM_PROMPT_RULES, strip_invisible, system_prompt
from bot.responders import Responder, TurnContext
from bot.store import Order
from kb.models import Passage, Product

log = logging.getLogger(__name__)

# keys of TurnContext.extras shared by responders, the guardrail and the engine
EVIDENCE = "evidence"  # Evidence: what the responder showed the model beyond ctx.hits
HANDOFF_REQUEST = "handoff_request"  # EscalationReason: the responder wants staff to take over
FEEDBACK = "guardrail_feedback"  # list[str]: why the previous draft of this turn was rejected
NOTICES = "notices"  # list[OutboundMessage]: what a tool asked or did (our wording), sent after the reply whatever the draft

CENT = Decimal("0.01")
SHINGLE_WORDS = 8  # a leak is four shared 8-word shingles: eleven consecutive words of the prompt
LEAK_SHINGLES = 4


@dataclass(slots=True)
class Evidence:
    """What a responder looked up for one turn (tool results, the policy prefix). Per turn, never shared."""

    products: dict[str, Product] = field(default_factory=dict)
    passages: dict[str, Passage] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)

    def add_products(self, products: Iterable[Product]) -> None:
        for product in products:
            self.products[product.id] = product

    def add_passages(self, passages: Iterable[Passage]) -> None:
        for passage in passages:
            self.passages[passage.id] = passage

    def add_orders(self, orders: Iterable[Order]) -> None:
        for order in orders:
            self.orders[order.order_number] = order


@dataclass(frozen=True, slots=True)
class Violation:
    """One thing a reply says that the data does not support (or must never say)."""

    kind: str
    detail: str

    def describe(self) -> str:
        return f"{self.kind}: {self.detail[:80]}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :func:`enforce`: the replies to send, or an escalation to apply instead."""

    replies: list[OutboundMessage]
    escalation: EscalationReason | None = None
    detail: str | None = None
    violations: tuple[Violation, ...] = ()  # what the rejected drafts contained
    regenerated: bool = False
    safe_answer: bool = False


# -- text normalisation ---------------------------------------------------------


_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_SPACES = re.compile(r"[ \t\u00a0\u202f]+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'"})


def fold(text: str) -> str:
    """Lowercase, accents removed, compatibility forms unified, Markdown emphasis dropped."""
    text = unicodedata.normalize("NFKD", strip_invisible(text).casefold()).translate(_APOSTROPHES)
    return _SPACES.sub(" ", _COMBINING.sub("", text).replace("*", "").replace("`", ""))


def _phrases(*items: str) -> re.Pattern[str]:
    """Whole-word alternatives, written naturally (folded here)."""
    alternatives = sorted({re.escape(fold(item)).replace(r"\ ", r"\s+") for item in items}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?…])\s+|\n+", text) if s.strip()]


# -- amounts, percentages, stock, dates, durations -------------------------------

_NUMBER = r"\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_CODES = r"EUR|USD|GBP|BRL|CHF|CAD|AUD|MXN|ARS|CLP|COP"
_SYMBOLS = r"R\$|US\$|A\$|C\$|\$|€|£"
_WORDS = r"euros?|dollars?|d[oó]lar(?:es)?|reais"  # not pounds/livres/Pfund: also weights and books
_AMOUNT = re.compile(
    rf"(?:(?<![A-Za-z])(?:{_SYMBOLS}|{_CODES})\s?(?P<a>{_NUMBER}))"
    rf"|(?:(?P<b>{_NUMBER})\s?(?:{_SYMBOLS}|(?:{_CODES}|{_WORDS})(?![A-Za-zÀ-ÿ])))",
    re.IGNORECASE,
)
_CENTS = re.compile(rf"(?P<c>{_NUMBER})\s?(?:cents?|c[eé]ntimos?|centimes?|centavos?)(?![A-Za-z])", re.IGNORECASE)
_PRICE_WORD = re.compile(
    r"(?:priced at|price is|prices? (?:is|are) now|cost is|costs|cuesta|vale|co[uû]te|kostet|custa|precio(?: es)?:?|prix(?: est)? ?:?"
    rf"|preis(?: ist)?:?|pre[cç]o(?: [eé])?:?|price:)\s{{0,3}}(?P<p>{_NUMBER})(?![\d%])",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"(?P<n>\d+(?:[.,]\d+)?)\s?(?:%|per ?cent|percent|por ?ciento|pour ?cent|prozent|por ?cento)", re.IGNORECASE)
_DISCOUNT_CONTEXT = re.compile(
    r"discount|\boff\b|\bsave\b|savings|\bsale\b|promo|rebate|descuento|rebaja|ahorr|oferta|remise|reduction|rabais|solde"
    r"|rabatt|nachlass|reduziert|spar|desconto|promocao|economi|liquidacao"
)
_BUDGET_CUE = re.compile(
    r"(?:under|below|up to|less than|max(?:imum)?|budget|within|no more than|menos de|hasta|por debajo de|presupuesto"
    r"|moins de|jusqu'a|en dessous de|budget|unter|bis(?: zu)?|hochstens|weniger als|ate|abaixo de|orcamento|no maximo)\W{0,12}$"
)
_STOCK = [
    re.compile(r"(?:only|just)\s+(?P<n>\d+)\s+(?:\w+\s+)?(?:left|in stock|available|remaining)"),
    re.compile(r"(?P<n>\d+)\s+(?:\w+\s+)?(?:left|in stock|available|remaining)\b"),
    re.compile(r"stock(?: level)?(?: of|:)?\s+(?P<n>\d+)\b"),
    re.compile(r"quedan?\s+(?:solo\s+)?(?P<n>\d+)|(?P<n2>\d+)\s+(?:\w+\s+)?(?:en stock|disponibles?|en existencia)"),
    re.compile(r"(?:il (?:en )?reste|plus que)\s+(?P<n>\d+)|(?P<n2>\d+)\s+(?:\w+\s+)?(?:restante?s?|en stock)"),
    re.compile(r"nur noch\s+(?P<n>\d+)|(?P<n2>\d+)\s+(?:\w+\s+)?(?:auf lager|vorratig|verfugbar|ubrig)"),
    re.compile(
        r"(?:restam|apenas|so)\s+(?P<n>\d+)\s+(?:\w+\s+)?(?:em estoque|disponive(?:l|is)|restantes?)"
        r"|(?P<n2>\d+)\s+(?:\w+\s+)?(?:em estoque)"
    ),
]
_UNITS: dict[str, str] = {
    "day": r"days?|dias?|jours?|(?:werk|arbeits)?tage?n?",
    "week": r"weeks?|semanas?|semaines?|wochen?",
    "month": r"months?|mes(?:es)?|mois|monate?n?",
    "year": r"years?|anos?|ans?|annees?|jahre?n?",
    "hour": r"hours?|hrs?|horas?|heures?|stunden?",
}
_DURATION = re.compile(
    r"(?<![\d.,])(?P<n>\d+)(?:\s*(?:-|–|to|a|bis|ate|y|and|und|et|e)\s*(?P<m>\d+))?[\s-]*"
    r"(?:business |working |calendar |full )?(?P<unit>" + "|".join(f"(?P<{k}>{v})" for k, v in _UNITS.items()) + r")(?!\w)"
)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{2,4})\b")
_EN_ABBREVIATIONS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}


@cache
def _month_table() -> tuple[dict[str, int], re.Pattern[str], re.Pattern[str]]:
    months: dict[str, int] = {}
    for locale in ("en", "es", "fr", "de", "pt_BR"):
        for number, name in get_month_names("wide", locale=locale).items():
            months[fold(str(name))] = int(number)
    months.update(_EN_ABBREVIATIONS)
    alternation = "|".join(sorted((re.escape(m) for m in months), key=len, reverse=True))
    day_first = re.compile(rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th|er|o|\.)?\s*(?:de |of )?({alternation})(?!\w)")
    month_first = re.compile(rf"(?<!\w)({alternation})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?!\d)")
    return months, day_first, month_first


def _number_values(raw: str, locale: str) -> set[Decimal]:
    """Every value a currency-formatted number can mean in ``locale`` (or in English)."""
    text = raw.replace("\u00a0", " ").replace("\u202f", " ").strip()
    values: set[Decimal] = set()
    decimal_tail = re.fullmatch(r"(.*?)([.,])(\d{1,2})", text)
    try:
        if decimal_tail:
            values.add(Decimal(re.sub(r"[.,\s]", "", decimal_tail[1]) + "." + decimal_tail[3]))
        else:
            values.add(Decimal(re.sub(r"[.,\s]", "", text)))
    except InvalidOperation:
        pass
    for candidate in {locale, "en"}:
        try:
            values.add(parse_decimal(text, locale=candidate, strict=True))
        except (NumberFormatError, ValueError):
            continue
    return {v.quantize(CENT) for v in values}


def amounts(text: str, locale: str = "en") -> list[tuple[str, set[Decimal], int]]:
    """The money amounts in ``text``: (as written, possible values, position)."""
    found: list[tuple[str, set[Decimal], int]] = []
    spans: list[tuple[int, int]] = []
    babel_locale = "en_US" if locale == "en" else locale
    for match in _AMOUNT.finditer(text):
        number = match.group("a") or match.group("b")
        found.append((match.group(0), _number_values(number, babel_locale), match.start()))
        spans.append(match.span())
    for match in _CENTS.finditer(text):
        if not any(s <= match.start() < e for s, e in spans):
            values = {(v / 100).quantize(CENT) for v in _number_values(match.group("c"), babel_locale)}
            found.append((match.group(0), values, match.start()))
            spans.append(match.span())
    for match in _PRICE_WORD.finditer(text):
        if not any(s <= match.start("p") < e for s, e in spans):
            found.append((match.group(0), _number_values(match.group("p"), babel_locale), match.start()))
    return found


def _percent_values(text: str) -> set[Decimal]:
    return {Decimal(m.group("n").replace(",", ".")).normalize() for m in _PERCENT.finditer(text)}


def _durations(folded: str) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for match in _DURATION.finditer(folded):
        unit = next(k for k in _UNITS if match.group(k))
        for key in ("n", "m"):
            if match.group(key):
                found.add((int(match.group(key)), unit))
    return found


def _dates(folded: str) -> set[tuple[int, int]]:
    """(month, day) pairs of the calendar dates written in ``folded`` text."""
    months, day_first, month_first = _month_table()
    found: set[tuple[int, int]] = set()
    for match in day_first.finditer(folded):
        found.add((months[match.group(2)], int(match.group(1))))
    for match in month_first.finditer(folded):
        found.add((months[match.group(1)], int(match.group(2))))
    for match in _ISO_DATE.finditer(folded):
        found.add((int(match.group(2)), int(match.group(3))))
    for match in _NUMERIC_DATE.finditer(folded):
        first, second = int(match.group(1)), int(match.group(2))
        found.update({(second, first), (first, second)})
    return {(m, d) for m, d in found if 1 <= m <= 12 and 1 <= d <= 31}


def _stock_figures(folded: str) -> set[int]:
    found: set[int] = set()
    for pattern in _STOCK:
        for match in pattern.finditer(folded):
            for key in ("n", "n2"):
                value = match.groupdict().get(key)
                if value:
                    found.add(int(value))
    return found


# -- claims, commitments, language ------------------------------------------------

_FREE = (
    r"(?<!gluten )(?<!lactose )(?<!sugar )(?<!dairy )(?<!nut )(?<!cruelty )(?<!plastic )(?<!fragrance )(?<!feel )(?<!-)"
    r"\bfree\b|gratis|gratuit\w*|kostenlos\w*|versandkostenfrei|sin coste|sans frais|at no (?:extra )?cost|no charge"
    r"|ohne (?:zusatz)?kosten|sem custo|offert\w*"
)
_FREE_TOPICS = {
    "free shipping": r"shipping|delivery|envios?|entrega|livraison|versand\w*|lieferung|frete",
    "free returns": r"returns?|devoluci(?:on|ones)|retours?|rucksendung\w*|retoure|devoluc(?:ao|oes)",
    "free exchanges": r"exchanges?|cambios?|echanges?|umtausch|trocas?",
}


def _near(first: str, second: str, window: int) -> re.Pattern[str]:
    """``first`` and ``second`` within ``window`` characters of one sentence, in either order."""
    return re.compile(rf"(?:{first})[^.!?\n|]{{0,{window}}}?(?:{second})|(?:{second})[^.!?\n|]{{0,{window}}}?(?:{first})")


_SAME = {
    "full refund": r"full refund|refund(?:ed)? in full|100 ?% refund|money[- ]back|reembolso (?:completo|total|integro|integral)"
    r"|remboursement (?:integral|complet|total)|rembourse integralement|(?:volle|vollstandige|komplette) (?:ruck)?erstattung"
    r"|voll(?:standig)? erstattet",
    "bereavement": r"bereavement|compassionate|duelo|fallecimiento|luto|falecimento|deuil|deces|trauerfall|todesfall",
    "retroactive": r"retroactiv|retroacti|ruckwirkend|retroativ",
    "guarantee": r"guarantee|warrant(?:y|ies)|garantia|garantie|gewahrleistung",
    "lifetime": r"lifetime|for life|de por vida|a vie\b|lebenslang|vitalici",
    "price match": r"price[- ]match|igualamos (?:el )?precio|alignement (?:de|des) prix|preisgarantie|preisanpassung",
    "voucher": r"coupon|voucher|promo(?:tional)? code|discount code|store credit|cupon|codigo (?:de )?(?:descuento|promocional)"
    r"|vale (?:de )?(?:descuento|compra)|code promo|bon d'achat|bon de reduction|gutschein|rabattcode|cupom|credito na loja",
    "discount": r"discount|% off|descuento|rebaja|remise|reduction|rabais|soldes|rabatt|nachlass|desconto|promocao",
    "compensation": r"compensation|compensate|indemniz|indemnis|entschadigung|kulanz",
    "free gift": r"free gift|regalo gratis|cadeau (?:gratuit|offert)|gratis geschenk|brinde",
    "promotion": r"limited[- ]time|(?:special|exclusive|seasonal|summer|holiday|launch) (?:offers?|deals?|prices?|promotions?)"
    r"|today only|this week only|flash sale|(?<!for )\bsales?\b|\bpromo(?:tion)?s?\b|\boffer (?:ends|expires|is valid|of)\b"
    r"|ofertas? (?:especial(?:es)?|limitadas?|exclusivas?)|por tiempo limitado|solo hoy|rebajas"
    r"|offres? (?:speciales?|limitees?|exclusives?)|duree limitee|aujourd'hui seulement|promotion"
    r"|sonderangebot|zeitlich begrenzt|nur heute|\baktion\b|oferta (?:especial|limitada|exclusiva)|por tempo limitado|so hoje|promocao",
}
# claim pattern (in the reply) and support pattern (in a retrieved store page)
POLICY_CLAIMS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    **{name: (re.compile(p), re.compile(p)) for name, p in _SAME.items()},
    **{name: (_near(_FREE, topic, 40), _near(_FREE, topic, 80)) for name, topic in _FREE_TOPICS.items()},
}

COMMITMENTS = _phrases(
    "legally binding", "binding offer", "binding agreement", "binding contract", "binding promise", "i guarantee",
    "we guarantee", "i hereby", "i promise", "we promise", "you have my word", "no takesies backsies", "takesies backsies",
    "it's a deal", "that's a deal", "deal", "deals", "agreed", "it's yours for", "consider it done", "that's settled",
    "legalmente vinculante", "jurídicamente vinculante", "vinculante", "te lo garantizo", "se lo garantizo", "le garantizo",
    "te garantizo", "trato hecho", "te lo prometo", "se lo prometo", "lo prometo", "sin vuelta atrás",
    "juridiquement contraignant", "légalement contraignant", "contraignant", "je vous le garantis", "je te le garantis",
    "je vous garantis", "je garantis", "marché conclu", "c'est promis", "je vous le promets", "je te le promets", "je promets",
    "rechtsverbindlich", "rechtlich bindend", "rechtlich verbindlich", "ich garantiere", "wir garantieren", "abgemacht",
    "versprochen", "ich verspreche", "wir versprechen", "juridicamente vinculativo", "legalmente vinculativo", "vinculativo",
    "eu garanto", "garantimos", "negócio fechado", "eu prometo", "prometemos", "prometo",
)
_NOT_A_COMMITMENT = re.compile(r"\bdeals?\s+with\b")

PROFANITY = re.compile(
    r"(?<!\w)(?:fuck\w*|motherf\w*|fck\w*|fcuk\w*|fuk\w*|shit\w*|sht|bullshit|btch\w*|ahole|bitch\w*|asshole\w*|arsehole\w*|bastard\w*"
    r"|cunt\w*|dickhead\w*|prick|wank\w*|twat\w*|goddamn\w*|damn(?:ed|it)?|crap(?:py)?|idiot\w*|moron\w*|stupid\w*|dumbass"
    r"|dumb|imbecil\w*|jerk|loser\w*|scumbag\w*"
    r"|mierda\w*|putas?|putad[ao]s?|putos?|joder|jodid[oa]s?|cabron\w*|gilipollas|pendej\w*|estupid[oa]s?|carajo|capull[oa]s?|culer[oa]s?"
    r"|merde\w*|putain\w*|connard\w*|connasse\w*|salope\w*|salaud\w*|encule\w*|debile\w*|cretin\w*|abruti\w*"
    r"|scheiss\w*|arschloch\w*|fick(?:en|t|er|dich)?|wichser\w*|hurensohn\w*|verdammt\w*|dumm(?:e[rns]?|kopf\w*)?|blod(?:e[rns]?|mann)?"
    r"|depp\w*|trottel\w*|vollidiot\w*"
    r"|merda\w*|porra|caralho\w*|foda-?se|babaca\w*|otari[oa]s?|cuzao\w*|desgracad[oa]s?)(?!\w)"
)

_NEGATIVE = (
    r"terrible|awful|horrible|worst|bad|sucks?|scam\w*|fraud\w*|rip-?off|garbage|trash|rubbish|useless|incompetent|pathetic"
    r"|crooks?|thie(?:f|ves)|overpriced|shady|disgrace\w*|joke|hate|junk|shit\w*|crap\w*|a mess|failure|fail(?:s|ing)?"
    r"|pesim[oa]s?|estafa\w*|fraude\w*|basura|inutil(?:es)?|ladron\w*|malisim[oa]s?|mal[oa]s?|cutre|timo|odio|verguenza"
    r"|nul(?:le)?s?|arnaque\w*|escroc\w*|escroquerie|pourri\w*|pire|mediocre|voleurs?|lamentable|minable|mauvai\w*|honte"
    r"|schrecklich\w*|furchtbar\w*|betrug\w*|betruger\w*|abzocke\w*|mull|nutzlos\w*|miserabel\w*|diebe|schlecht\w*|katastroph\w*"
    r"|peinlich|schande|hasse|horrivel|golpe\w*|lixo|ladr(?:ao|oes)|pior(?:es)?|ruim|odeio"
)
_STORE_REFERENCE = (
    r"(?:this|our|that) (?:company|store|shop|business|brand|customer service|team|staff)|our (?:service|products?)"
    r"|the (?:company|store|shop)"
    r"|(?:esta|la|nuestra|vuestra|su|esa) (?:tienda|empresa|marca|compania)|(?:este|nuestro|ese) (?:negocio|servicio|equipo)"
    r"|(?:cette|la|notre|votre) (?:boutique|entreprise|societe|marque|equipe)|(?:ce|notre|votre) (?:magasin|service)"
    r"|(?:dieser|diese|dieses|diesem|unser|unsere|unserem|ihr|ihre) (?:laden|shop|geschaft|unternehmen|firma|marke|service|team)"
    r"|(?:esta|essa|a|nossa|sua) (?:loja|empresa|marca|equipe)|(?:este|esse|nosso) (?:servico|atendimento)"
)
_HUMAN_CLAIM = re.compile(
    r"\b(?:i am|i'm|im) (?:a |an )?(?:real |actual )?(?:human(?: being)?|person|member of (?:the )?staff)\b"
    r"|\b(?:i am|i'm|im) not (?:a |an )?(?:bot|robot|ai|machine)\b"
    r"|\bsoy (?:un |una )?(?:humano|humana|persona real|persona de verdad)\b|\bno soy (?:un )?(?:bot|robot)\b"
    r"|\bje suis (?:un |une )?(?:humain|humaine|vraie personne|personne reelle)\b|\bje ne suis pas un (?:bot|robot)\b"
    r"|\bich bin (?:ein |eine )?(?:mensch|echte person)\b|\bich bin kein (?:bot|roboter)\b"
    r"|\bsou (?:um |uma )?(?:humano|humana|pessoa real)\b|\bnao sou (?:um )?(?:bot|robo)\b"
)
_ELSEWHERE = re.compile(
    r"(?:buy|shop|order) (?:it )?(?:elsewhere|somewhere else|from (?:a |another )?competitor)|don'?t (?:buy|shop|order) (?:from|here|with)"
    r"|compr[ae] en otr[ao] (?:tienda|parte|sitio)|no compr(?:es|e) aqui|achetez ailleurs|n'achetez pas|kauf(?:en sie)? woanders"
    r"|kauf(?:en sie)? nicht|compre em outr[ao] (?:loja|lugar)|nao compre"
)

_TLDS = (
    "com|net|org|info|biz|xyz|io|co|app|dev|shop|store|online|site|club|top|vip|link|click|live|ly|me|tv|cc|ru|cn|es|fr|de"
    "|it|pt|br|uk|eu|us|ca|au|nl|be|ch|at|mx|ar|cl|in|jp|kr|tk|ml|ga|cf|gq|example|test|local|onion|zip|mov"
)
_EMAIL = re.compile(r"[\w.+-]+@(?P<host>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)", re.IGNORECASE)
_URL = re.compile(
    r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>()\[\]{}\"'`]+"
    rf"|(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{_TLDS})(?![\w-])(?:/[^\s<>()\[\]{{}}\"'`]*)?",
    re.IGNORECASE,
)
_ORDER_NUMBER = re.compile(r"\b[A-Z]{2,5}-\d{3,8}\b|#\d{4,10}\b")
_ORDER_WORD = re.compile(r"order|pedido|commande|bestellung|auftrag|encomenda|compra")
_ORDER_DETAIL = re.compile(
    r"ship|deliver|process|cancel|dispatch|transit|on its way|tracking|total|placed|status|enviad|entregad|en camino|prepar"
    r"|cancelad|seguimiento|estado|expedie|livre|en cours|annule|suivi|statut|versandt|verschickt|zugestellt|geliefert|storniert"
    r"|unterwegs|sendungsverfolgung|entregue|a caminho|rastreamento"
)
_PHONE = re.compile(r"(?<![\w/])\+?\d[\d ().-]{7,}\d(?![\w/])")
_INTERNAL_NAMES = re.compile(
    r"store_policies|store_data|conversation_summary|turn_context|send_reply|hand_off_to_staff|search_catalog|check_order"
)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", fold(text))


def _shingles(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


@cache
def _prompt_shingles(rendered: str) -> frozenset[tuple[str, ...]]:
    return frozenset(_shingles(_words(rendered)) | _shingles(_words(SYSTEM_PROMPT_RULES)))


# -- what the data supports ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grounding:
    """Everything one turn's reply may be grounded on, with the derived allow-lists."""

    products: dict[str, Product]
    passages: dict[str, Passage]
    orders: dict[str, Order]
    shopper_text: str
    prices: frozenset[Decimal]
    budget: frozenset[Decimal]
    trusted_percents: frozenset[Decimal]
    data_percents: frozenset[Decimal]
    stock: frozenset[int]
    dates: frozenset[tuple[int, int]]
    durations: frozenset[tuple[int, str]]
    trusted_folded: str
    data_digits: str
    hosts: tuple[str, ...]
    urls: frozenset[str]
    emails: frozenset[str]

    @classmethod
    def of(cls, ctx: TurnContext) -> Grounding:
        products: dict[str, Product] = {}
        passages: dict[str, Passage] = {}
        orders: dict[str, Order] = {o.order_number: o for o in ctx.orders} if ctx.customer_verified else {}
        for hit in (*ctx.hits, *ctx.near_misses):
            if hit.product is not None:
                products[hit.product.id] = hit.product
            if hit.passage is not None:
                passages[hit.passage.id] = hit.passage
        evidence = ctx.extras.get(EVIDENCE)
        if isinstance(evidence, Evidence):
            products.update(evidence.products)
            passages.update(evidence.passages)
            if ctx.customer_verified:
                orders.update({n: o for n, o in evidence.orders.items() if o.customer_id == ctx.conversation.customer_id})
        shopper = strip_invisible(f"{ctx.inbound.text}\n{ctx.inbound.button_payload or ''}")
        pages = [_page_facts(p, ctx.locale) for p in passages.values()]
        trusted = "\n".join(f.text for f in pages)
        product_text = "\n".join(_product_text(p) for p in products.values())

        prices: set[Decimal] = set()
        stock: set[int] = set()
        for product in products.values():
            prices.update(v.price.quantize(CENT) for v in product.variants)
            stock.update(v.stock for v in product.variants if v.stock is not None)
            if product.total_stock is not None:
                stock.add(product.total_stock)
        order_dates: set[tuple[int, int]] = set()
        urls: set[str] = set()
        for order in orders.values():
            prices.add(order.total.quantize(CENT))
            for line in order.lines:
                prices.update({line.unit_price.quantize(CENT), (line.unit_price * line.quantity).quantize(CENT)})
            for moment in (order.created_at, order.created_at.astimezone(ctx.shop.tz)):
                order_dates.add((moment.month, moment.day))
            if order.tracking_url:
                urls.add(_url_key(order.tracking_url))
        for page in pages:
            prices.update(page.amounts)
        budget = {
            v.quantize(CENT)
            for v in (ctx.filters.max_price, ctx.filters.min_price, ctx.constraints.budget.max, ctx.constraints.budget.min)
            if v is not None
        }
        for product in products.values():
            urls.update(_url_key(u) for u in (product.url, product.image) if u)
        urls.update(_url_key(p.url) for p in passages.values() if p.url)
        today = ctx.now.astimezone(ctx.shop.tz).date()
        near_days = {today + timedelta(days=d) for d in (-1, 0, 1)}
        product_folded = fold(product_text)
        shopper_folded = fold(shopper)
        emails = {m.group(0).casefold() for m in _EMAIL.finditer(f"{trusted}\n{shopper}")}
        if ctx.shop.support_email:
            emails.add(ctx.shop.support_email.casefold())
        return cls(
            products=products,
            passages=passages,
            orders=orders,
            shopper_text=shopper,
            prices=frozenset(prices),
            budget=frozenset(budget),
            trusted_percents=frozenset().union(*(f.percents for f in pages)),
            data_percents=frozenset().union(*(f.percents for f in pages), _percent_values(f"{product_text}\n{shopper}")),
            stock=frozenset(stock),
            dates=frozenset().union(
                *(f.dates for f in pages),
                _dates(product_folded),
                _dates(shopper_folded),
                order_dates,
                {(d.month, d.day) for d in near_days},
            ),
            durations=frozenset().union(*(f.durations for f in pages), _durations(shopper_folded)),
            trusted_folded="\n".join(f.folded for f in pages),
            data_digits=re.sub(r"\D", "", f"{trusted}\n{product_text}\n{shopper}\n{ctx.shop.support_email}"),
            hosts=tuple(d.casefold().removeprefix("www.") for d in ctx.shop.domains),
            urls=frozenset(urls),
            emails=frozenset(emails),
        )

    def host_allowed(self, host: str) -> bool:
        host = host.casefold().rstrip(".").removeprefix("www.")
        return any(host == d or host.endswith("." + d) for d in self.hosts)

    def url_allowed(self, url: str) -> bool:
        if _url_key(url) in self.urls:
            return True
        target = url if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE) else "http://" + url
        try:
            host = urlsplit(target).hostname or ""
        except ValueError:
            return False
        return self.host_allowed(host)

    def email_allowed(self, email: str) -> bool:
        return email.casefold() in self.emails or self.host_allowed(email.rsplit("@", 1)[-1])


@dataclass(frozen=True, slots=True)
class _PageFacts:
    """What one store page states, parsed once (the same policy pages come back every turn)."""

    text: str
    folded: str
    amounts: frozenset[Decimal]
    percents: frozenset[Decimal]
    dates: frozenset[tuple[int, int]]
    durations: frozenset[tuple[int, str]]


@lru_cache(maxsize=2048)
def _page_facts(passage: Passage, locale: str) -> _PageFacts:
    text = f"{passage.title}\n{passage.text}"
    folded = fold(text)
    return _PageFacts(
        text=text,
        folded=folded,
        amounts=frozenset(v for _written, values, _position in amounts(text, locale) for v in values),
        percents=frozenset(_percent_values(text)),
        dates=frozenset(_dates(folded)),
        durations=frozenset(_durations(folded)),
    )


def _product_text(product: Product) -> str:
    parts = [product.title, product.description, " ".join(product.tags)]
    for key, value in product.attributes.items():
        if key == "reviews" and isinstance(value, list):
            parts.extend(str(r.get("comment", "")) for r in value if isinstance(r, dict))
        elif isinstance(value, (list, tuple)):
            parts.append(" ".join(str(v) for v in value))
        elif isinstance(value, str):
            parts.append(value)
    return "\n".join(parts)


def _url_key(url: str) -> str:
    return url.strip().rstrip("/.,;:!?").casefold().removeprefix("https://").removeprefix("http://").removeprefix("www.")


# -- the check ---------------------------------------------------------------------


def check(reply: OutboundMessage, ctx: TurnContext, grounding: Grounding | None = None) -> list[Violation]:
    """Everything in ``reply`` that the turn's data does not support (see the module docstring)."""
    grounding = grounding or Grounding.of(ctx)
    violations: list[Violation] = []
    if INVISIBLE.search(reply.text):
        violations.append(Violation("invisible_text", "zero-width, bidi-control or tag characters"))
    # the store's own wording (which sanitize() may have put there) is never a violation
    text = unicodedata.normalize("NFKC", strip_invisible(reply.text)).replace(standard_commitment_wording(), " ")
    folded = fold(text)
    violations += _check_numbers(text, folded, ctx, grounding)
    violations += _check_claims(folded, grounding)
    violations += _check_language(folded, ctx)
    violations += _check_links(text, reply, grounding)
    violations += _check_customer_data(text, folded, grounding)
    violations += _check_prompt_leak(text, ctx)
    violations += _check_cards(reply, grounding)
    return violations


def _check_numbers(text: str, folded: str, ctx: TurnContext, grounding: Grounding) -> list[Violation]:
    found: list[Violation] = []
    for written, values, position in amounts(text, ctx.locale):
        if values & grounding.prices:
            continue
        if values & grounding.budget and _BUDGET_CUE.search(fold(text[max(0, position - 30) : position])):
            continue
        found.append(Violation("price", f"{written.strip()} is not a price in the data"))
    for match in _PERCENT.finditer(folded):
        value = Decimal(match.group("n").replace(",", ".")).normalize()
        window = folded[max(0, match.start() - 30) : match.end() + 40]
        if _DISCOUNT_CONTEXT.search(window):
            if value not in grounding.trusted_percents:
                found.append(Violation("discount", f"{match.group(0)} is not a discount the store states"))
        elif value not in grounding.data_percents:
            found.append(Violation("discount", f"{match.group(0)} does not appear in the data"))
    for figure in sorted(_stock_figures(folded) - grounding.stock):
        found.append(Violation("stock", f"stock figure {figure} is not in the data"))
    for month, day in sorted(_dates(folded) - grounding.dates):
        found.append(Violation("date", f"date {day:02d}/{month:02d} comes from neither the data nor the shopper"))
    for number, unit in sorted(_durations(folded) - grounding.durations):
        found.append(Violation("duration", f"{number} {unit}(s) is not stated on a store page"))
    return found


def _check_claims(folded: str, grounding: Grounding) -> list[Violation]:
    found: list[Violation] = []
    for name, (claim, support) in POLICY_CLAIMS.items():
        if claim.search(folded) and not support.search(grounding.trusted_folded):
            found.append(Violation("policy", f"'{name}' is not supported by a retrieved store page"))
    for match in COMMITMENTS.finditer(folded):
        if not _NOT_A_COMMITMENT.match(folded, match.start()):
            found.append(Violation("commitment", match.group(0)))
    return found


@cache
def _disparagement(store_name: str) -> re.Pattern[str]:
    reference = _STORE_REFERENCE + "|" + re.escape(fold(store_name)) if store_name else _STORE_REFERENCE
    return re.compile(
        rf"(?:{reference})[^.!?\n]{{0,50}}?\b(?:{_NEGATIVE})\b|\b(?:{_NEGATIVE})\b[^.!?\n]{{0,40}}?(?:{reference})"
    )


def _check_language(folded: str, ctx: TurnContext) -> list[Violation]:
    found = [Violation("profanity", m.group(0)) for m in PROFANITY.finditer(folded)]
    found += [Violation("disparagement", m.group(0)[:80]) for m in _disparagement(ctx.shop.name).finditer(folded)]
    found += [Violation("disparagement", m.group(0)) for m in _ELSEWHERE.finditer(folded)]
    found += [Violation("impersonation", m.group(0)) for m in _HUMAN_CLAIM.finditer(folded)]
    return found


def _check_links(text: str, reply: OutboundMessage, grounding: Grounding) -> list[Violation]:
    found: list[Violation] = []
    masked = text
    for match in _EMAIL.finditer(text):
        if not grounding.email_allowed(match.group(0)):
            found.append(Violation("link", f"e-mail address {match.group(0)} is not the store's"))
        masked = masked.replace(match.group(0), " ")
    for match in _URL.finditer(masked):
        url = match.group(0).rstrip(".,;:!?")
        if not grounding.url_allowed(url):
            found.append(Violation("link", f"{url} is not on the store's domains"))
    for source in reply.sources:
        if source.url and not grounding.url_allowed(source.url):
            found.append(Violation("link", f"source {source.url} is not on the store's domains"))
    return found


def _check_customer_data(text: str, folded: str, grounding: Grounding) -> list[Violation]:
    found: list[Violation] = []
    own = {n.casefold() for n in grounding.orders}
    catalog_ids = {p.id.casefold() for p in grounding.products.values()}
    catalog_ids |= {"-".join(v.sku.casefold().split("-")[:2]) for p in grounding.products.values() for v in p.variants}
    for sentence in _sentences(text):
        for match in _ORDER_NUMBER.finditer(sentence):
            number = match.group(0).casefold()
            if number in own or number in catalog_ids:
                continue
            if _ORDER_WORD.search(fold(sentence)) and _ORDER_DETAIL.search(fold(sentence)):
                found.append(Violation("customer_data", f"details of order {match.group(0)}, which is not this shopper's"))
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) >= 9 and digits not in grounding.data_digits:
            found.append(Violation("customer_data", "a phone number that is not in the data"))
    return found


def _check_prompt_leak(text: str, ctx: TurnContext) -> list[Violation]:
    prompt = _prompt_shingles(system_prompt(ctx.shop, ctx.locale))
    candidates = [text, text[::-1], codecs.decode(text, "rot13")]
    for blob in _BASE64.findall(text):
        try:
            candidates.append(base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False).decode("utf-8", "ignore"))
        except (binascii.Error, ValueError):
            continue
    for candidate in candidates:
        if len(_shingles(_words(candidate)) & prompt) >= LEAK_SHINGLES:
            return [Violation("system_prompt", "the reply repeats the system prompt")]
    match = _INTERNAL_NAMES.search(fold(text))
    if match:
        return [Violation("system_prompt", f"the reply names an internal part of the prompt ({match.group(0)})")]
    return []


def _check_cards(reply: OutboundMessage, grounding: Grounding) -> list[Violation]:
    variants = {v.sku: v for p in grounding.products.values() for v in p.variants}
    found: list[Violation] = []
    for card in reply.products:
        variant = variants.get(card.sku)
        if variant is None:
            found.append(Violation("card", f"{card.sku} is not a product of this turn's data"))
        elif card.price.quantize(CENT) != variant.price.quantize(CENT) or card.in_stock != variant.in_stock:
            found.append(Violation("card", f"{card.sku} price or stock differs from the catalog"))
        elif card.url and not grounding.url_allowed(card.url):
            found.append(Violation("link", f"card link {card.url} is not on the store's domains"))
    return found


# -- the policy --------------------------------------------------------------------


def standard_commitment_wording() -> str:
    """What replaces a sentence that makes a promise or deal in the store's name."""
    return _(
        "I can't agree to special terms on the store's behalf. Prices and conditions are the ones shown in our "
        "catalog and store pages, and our team can help with anything else."
    )


def sanitize(reply: OutboundMessage) -> OutboundMessage:
    """``reply`` without invisible characters, its commitment sentences replaced by the standard wording."""
    text = strip_invisible(reply.text)
    lines: list[str] = []
    replaced = False
    for line in text.split("\n"):
        kept: list[str] = []
        for sentence in re.split(r"(?<=[.!?…])\s+", line):
            folded = fold(sentence)
            commits = any(not _NOT_A_COMMITMENT.match(folded, m.start()) for m in COMMITMENTS.finditer(folded))
            if not commits:
                kept.append(sentence)
            elif not replaced:
                kept.append(standard_commitment_wording())
                replaced = True
        if kept or not line.strip():
            lines.append(" ".join(kept))
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if cleaned == reply.text:
        return reply
    return dataclasses.replace(reply, text=cleaned)


def _review(replies: list[OutboundMessage], ctx: TurnContext) -> tuple[list[OutboundMessage], list[Violation]]:
    cleaned = [sanitize(r) for r in replies]
    grounding = Grounding.of(ctx)
    violations = [v for r in cleaned for v in check(r, ctx, grounding)]
    if not cleaned:
        violations.append(Violation("empty", "the responder returned no reply"))
    return cleaned, violations


def _handoff(ctx: TurnContext) -> EscalationReason | None:
    requested = ctx.extras.get(HANDOFF_REQUEST)
    return requested if isinstance(requested, EscalationReason) else None


async def enforce(
    generate: Callable[[TurnContext], Awaitable[list[OutboundMessage]]],
    ctx: TurnContext,
    *,
    safe: Responder,
) -> Verdict:
    """Replies that pass :func:`check`, or the escalation the engine must apply instead.

    ``generate`` is the responder call (with its own error fallback); ``safe`` answers
    from templates when the regenerated draft fails too. A responder's handoff request
    wins over its text: staff takes the thread and the shopper gets the handoff notice.
    """
    replies = await generate(ctx)
    if (reason := _handoff(ctx)) is not None:
        return Verdict([], escalation=reason, detail="responder")
    replies, violations = _review(replies, ctx)
    if not violations:
        return Verdict(replies)
    rejected = list(violations)
    log.warning("guardrail rejected a reply (%s); regenerating", ", ".join(sorted({v.kind for v in violations})))

    retry = dataclasses.replace(ctx, extras={**ctx.extras, FEEDBACK: [v.describe() for v in violations[:8]]})
    replies = await generate(retry)
    if (reason := _handoff(retry)) is not None:
        return Verdict([], escalation=reason, detail="responder", violations=tuple(rejected), regenerated=True)
    replies, violations = _review(replies, retry)
    if not violations:
        return Verdict(replies, violations=tuple(rejected), regenerated=True)
    rejected += violations

    plain = dataclasses.replace(ctx, extras={})
    replies, violations = _review(await safe.respond(plain), plain)
    if not violations:
        log.warning("guardrail: the regenerated reply failed too; sending the offline answer")
        return Verdict(replies, violations=tuple(rejected), regenerated=True, safe_answer=True)
    rejected += violations
    kinds = ",".join(sorted({v.kind for v in rejected}))
    log.warning("guardrail: no reply passed (%s); handing the conversation to staff", kinds)
    return Verdict([], escalation=EscalationReason.GUARDRAIL, detail=kinds, violations=tuple(rejected), regenerated=True)
