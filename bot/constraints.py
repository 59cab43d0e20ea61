"""Offline extraction of what a shopper declares in one chat message.

:func:`extract_constraints` turns a message in English, Spanish, French, German or
Brazilian Portuguese into a :class:`Constraints` value: budget, sizes, colours and
materials to include or avoid, dietary needs, a delivery deadline, recipient,
occasion, brands liked or avoided, a quantity and whether the message corrects an
earlier one. It is pure and deterministic: regular expressions over readable,
per-language vocabulary tables (below), Babel for locale-aware number parsing, no
network and no model.

Conventions (they match ``shared/data/eval/constraints_dev.jsonl``):

* colours, materials, recipients and occasions are normalised to lowercase English
  words (``azul marino`` -> ``navy``, ``lilas`` -> ``purple``, ``belle-mère`` -> ``other``);
* ``around X`` becomes the range ``[0.9 X, 1.1 X]``; a currency is only reported when
  the shopper names one (symbol, word or slang such as "bucks", "pavos", "balles");
* sizes carry a system: ``clothing`` (XS..XXL, Brazilian P/M/G/GG mapped to S/M/L/XL),
  ``shoe_eu``, ``shoe_us``, ``shoe_uk``, ``numeric`` (dress, waist, ``32/34``) or
  ``other`` (height-based kids' sizes such as 128, Brazilian shoe sizes as ``BR 40``);
* dietary labels are ``vegan``, ``vegetarian``, ``halal``, ``kosher`` and ``<x>_free``
  for ``gluten``, ``lactose`` (dairy, milk), ``nut`` (nuts and peanuts), ``sugar``,
  ``egg``, ``soy``, ``alcohol``; "vegan leather" or a "vegan wallet" excludes leather
  instead;
* recipients: mother, father, wife, husband, son, daughter, child, friend, colleague
  (boss included), self, other (siblings, partners, in-laws, grandparents...);
  occasions: birthday, christmas, anniversary, wedding, other (Mother's Day, farewell,
  housewarming...);
* deadlines read "by friday" / "by next saturday" (weekday set), "tomorrow",
  "day after tomorrow", "today", "within 3 days" / "within a week" (day count set),
  "by dec 20" / "by the 20th" (absolute, neither set);
* a negated colour, material or brand is excluded ("no wool", "sem couro"); a negated
  or replaced size, recipient, deadline or quantity is dropped as corrected away
  ("XL not L", "pas pour mon fils", "3 instead of 2"), which also marks a correction.

Call :func:`resolve_deadline` with the store's local date to turn a :class:`Deadline`
into a calendar date, and :meth:`Constraints.merged_into` to fold a new message into
the constraints remembered from earlier turns.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any, Final, TypeVar

from babel.numbers import NumberFormatError, parse_decimal

__all__ = [
    "LANGUAGES",
    "Budget",
    "Constraints",
    "Deadline",
    "Size",
    "detect_language",
    "extract_constraints",
    "parse_number",
    "resolve_deadline",
]

LANGUAGES: Final = ("en", "es", "fr", "de", "pt")

_T = TypeVar("_T")

# ---------------------------------------------------------------------------
# Public value types
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Price bounds the shopper gave; ``currency`` is an ISO code or None when unstated."""

    max: Decimal | None = None
    min: Decimal | None = None
    currency: str | None = None

    def is_empty(self) -> bool:
        """True when neither bound is known."""
        return self.max is None and self.min is None


@dataclass(frozen=True)
class Size:
    """One size: ``system`` is clothing, shoe_eu, shoe_us, shoe_uk, numeric or other."""

    system: str
    value: str


@dataclass(frozen=True)
class Deadline:
    """When the order must arrive.

    ``relative`` is a normalised English phrase ("by friday", "tomorrow", "within 3 days",
    "by dec 20"); ``weekday`` is set for weekday deadlines, ``days_from_now`` for
    relative day counts; both are None for absolute dates.
    """

    relative: str
    weekday: str | None = None
    days_from_now: int | None = None


@dataclass(frozen=True)
class Constraints:
    """Everything one shopper message declares; empty fields mean "not mentioned"."""

    budget: Budget = field(default_factory=Budget)
    sizes: tuple[Size, ...] = ()
    colors_include: tuple[str, ...] = ()
    colors_exclude: tuple[str, ...] = ()
    materials_include: tuple[str, ...] = ()
    materials_exclude: tuple[str, ...] = ()
    dietary: tuple[str, ...] = ()
    deadline: Deadline | None = None
    recipient: str | None = None
    occasion: str | None = None
    brands_include: tuple[str, ...] = ()
    brands_exclude: tuple[str, ...] = ()
    quantity: int | None = None
    is_correction: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The constraints in the evaluation schema (whole amounts as int, others as float)."""
        return {
            "budget": {
                "max": _json_number(self.budget.max),
                "min": _json_number(self.budget.min),
                "currency": self.budget.currency,
            },
            "sizes": [{"system": s.system, "value": s.value} for s in self.sizes],
            "colors_include": list(self.colors_include),
            "colors_exclude": list(self.colors_exclude),
            "materials_include": list(self.materials_include),
            "materials_exclude": list(self.materials_exclude),
            "dietary": list(self.dietary),
            "deadline": (
                None
                if self.deadline is None
                else {
                    "relative": self.deadline.relative,
                    "weekday": self.deadline.weekday,
                    "days_from_now": self.deadline.days_from_now,
                }
            ),
            "recipient": self.recipient,
            "occasion": self.occasion,
            "brands_include": list(self.brands_include),
            "brands_exclude": list(self.brands_exclude),
            "quantity": self.quantity,
            "is_correction": self.is_correction,
        }

    def is_empty(self) -> bool:
        """True when the message declared no constraint at all (corrections included)."""
        return self == Constraints()

    def merged_into(self, previous: Constraints) -> Constraints:
        """Fold this message's constraints into those remembered from earlier turns.

        A correction replaces every field it mentions (the whole budget, the size list,
        a colour list...), except dietary needs and allergies, which only ever add up.
        Otherwise new inclusions and exclusions are added to the previous ones, and an
        item newly excluded leaves the matching inclusion list (and vice versa); a new budget bound replaces only that bound. Scalar fields
        (deadline, recipient, occasion, quantity) are replaced when the new message
        states them; a budget without a currency keeps the previous currency.
        Unmentioned fields keep their values; ``is_correction`` is the new message's.
        """
        replace_lists = self.is_correction

        def merge(old: tuple[str, ...], new: tuple[str, ...], removed: tuple[str, ...]) -> tuple[str, ...]:
            base = () if (replace_lists and new) else old
            kept = [x for x in base if x not in removed]
            return tuple(_unique([*kept, *new]))

        budget = previous.budget
        if not self.budget.is_empty():
            currency = self.budget.currency or previous.budget.currency
            if replace_lists:  # "actually make that under 80": the new bounds are the whole budget
                budget = Budget(self.budget.max, self.budget.min, currency)
            else:  # "at least 50" after "under 100": both bounds hold
                budget = Budget(
                    self.budget.max if self.budget.max is not None else previous.budget.max,
                    self.budget.min if self.budget.min is not None else previous.budget.min,
                    currency,
                )

        sizes = self.sizes if (self.sizes and replace_lists) else tuple(_unique([*previous.sizes, *self.sizes]))

        # dietary needs and allergies only add up, even in a correction ("actually I'm gluten free" after a nut
        # allergy): dropping one silently could put an allergen in front of the shopper; "forget my allergies"
        # (bot.profile) or a new conversation clears them
        dietary = tuple(_unique([*previous.dietary, *self.dietary]))
        return Constraints(
            budget=budget,
            sizes=sizes,
            colors_include=merge(previous.colors_include, self.colors_include, self.colors_exclude),
            colors_exclude=merge(previous.colors_exclude, self.colors_exclude, self.colors_include),
            materials_include=merge(previous.materials_include, self.materials_include, self.materials_exclude),
            materials_exclude=merge(previous.materials_exclude, self.materials_exclude, self.materials_include),
            dietary=dietary,
            deadline=self.deadline or previous.deadline,
            recipient=self.recipient or previous.recipient,
            occasion=self.occasion or previous.occasion,
            brands_include=merge(previous.brands_include, self.brands_include, self.brands_exclude),
            brands_exclude=merge(previous.brands_exclude, self.brands_exclude, self.brands_include),
            quantity=self.quantity if self.quantity is not None else previous.quantity,
            is_correction=self.is_correction,
        )


def _json_number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _unique(items: Iterable[_T]) -> list[_T]:
    seen: list[_T] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


# ---------------------------------------------------------------------------
# Text clean-up and pattern helpers
# ---------------------------------------------------------------------------

_FULLWIDTH: Final = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_PUNCTUATION: Final = str.maketrans(
    {
        "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'",
        "“": '"', "”": '"', "„": '"', "«": '"', "»": '"',
        "–": "-", "—": "-", "‑": "-", "‐": "-", "−": "-",
        "×": "x", "\u3000": " ", "\t": " ", "\n": " ", "\r": " ",
    }
)
_KEEP_SYMBOLS: Final = frozenset("°")


def _clean(text: str) -> str:
    """Drop invisible characters and emojis, unify quotes and dashes, keep letters' case."""
    text = unicodedata.normalize("NFC", text.replace("½", ".5")).translate(_FULLWIDTH).translate(_PUNCTUATION)
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cf", "Cc", "Co", "Cs", "Cn", "Mn", "Me"):
            continue  # zero-width joiners, BOMs, bidi marks, variation selectors, keycaps
        if category in ("So", "Sk") and ch not in _KEEP_SYMBOLS:
            out.append(" ")  # emojis and skin-tone modifiers separate words
            continue
        out.append(ch)
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def _lower(text: str) -> str:
    """Lowercase character by character so offsets stay aligned with the original."""
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)


# In vocabulary patterns an accented letter also matches its plain form (people type
# "manana" for "mañana"); a space matches any run of spaces or hyphens, a hyphen is
# optional, an apostrophe is optional. "~" at either end drops the word boundary there
# (German compounds: "leder~" matches "Lederjacke"). "\x" keeps x literally.
_ACCENT_CLASSES: Final = {
    "á": "[aá]", "à": "[aà]", "â": "[aâ]", "ã": "[aã]", "ä": "(?:ä|ae|a)",
    "é": "[eé]", "è": "[eè]", "ê": "[eê]", "ë": "[eë]",
    "í": "[ií]", "î": "[iî]", "ï": "[iï]",
    "ó": "[oó]", "ô": "[oô]", "õ": "[oõ]", "ö": "(?:ö|oe|o)",
    "ú": "[uú]", "û": "[uû]", "ü": "(?:ü|ue|u)",
    "ñ": "[nñ]", "ç": "[cç]", "ß": "(?:ß|ss)", "œ": "(?:œ|oe)",
}


def _rx(pattern: str) -> str:
    """Expand one vocabulary pattern into a regular expression (see the notes above)."""
    start_boundary = not pattern.startswith("~")
    end_boundary = not pattern.endswith("~")
    body = pattern.removeprefix("~").removesuffix("~")
    if not body:
        raise ValueError(f"empty vocabulary pattern: {pattern!r}")
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(nxt if not nxt.isascii() else ch + nxt)
            i += 2
            continue
        if in_class or ch == "[":
            in_class = ch != "]"
            out.append(ch)
        elif ch in _ACCENT_CLASSES:
            out.append(_ACCENT_CLASSES[ch])
        elif ch == " ":
            out.append(r"[\s\-]+")
        elif ch == "-":
            out.append(r"[\s\-]?")
        elif ch == "'":
            out.append("'?")
        else:
            out.append(ch)
        i += 1
    regex = "(?:" + "".join(out) + ")"
    return ("(?<!\\w)" if start_boundary else "") + regex + ("(?!\\w)" if end_boundary else "")


@cache
def _rx_re(pattern: str, suffix: str = "") -> re.Pattern[str]:
    """:func:`_rx` compiled once (``suffix`` is appended as plain regex)."""
    return re.compile(_rx(pattern) + suffix)


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    canon: str


_Compiled = tuple[tuple[re.Pattern[str], str], ...]
_Table = Mapping[str, Sequence[str]]


def _compile(table: _Table) -> _Compiled:
    return tuple((re.compile(_rx(p)), canon) for canon, patterns in table.items() for p in patterns)


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _scan(text: str, compiled: _Compiled, blocked: Iterable[tuple[int, int]] = ()) -> list[_Hit]:
    """All vocabulary hits, longest first when they overlap, returned in text order."""
    hits = [_Hit(m.start(), m.end(), canon) for pat, canon in compiled for m in pat.finditer(text) if m.end() > m.start()]
    hits.sort(key=lambda h: (-(h.end - h.start), h.start))
    taken: list[tuple[int, int]] = list(blocked)
    chosen: list[_Hit] = []
    for hit in hits:
        if _overlaps(hit.start, hit.end, taken):
            continue
        chosen.append(hit)
        taken.append((hit.start, hit.end))
    return sorted(chosen, key=lambda h: h.start)


def _merge_tables(tables: Mapping[str, _Table], lang: str) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for key in ("*", lang):
        for canon, patterns in tables.get(key, {}).items():
            merged.setdefault(canon, []).extend(patterns)
    return merged


# ---------------------------------------------------------------------------
# Language detection
# ---------------------------------------------------------------------------

# Frequent words of shopping chat per language; the language with most hits wins.
_LANGUAGE_WORDS: Final[Mapping[str, frozenset[str]]] = {
    "en": frozenset(
        "the and for my i need is it with please pls under looking gift want size not any do you have of to me something "
        "hi hey thanks what where can it's i'm he she his her wife mom dad order shoes buy".split()
    ),
    "es": frozenset(
        "el los las para que con una mi mis por favor porfa talla quiero necesito busco regalo hola sin tienen algo hasta "
        "menos gracias es y del hablar sean nada tengo soy mañana cumple perdón mejor azul negro días dos horas buenas "
        "noches gusta calzo más vez cien pedido tenéis pavos".split()
    ),
    "fr": frozenset(
        "le les des pour avec une mon ma mes pas je vous cadeau taille sans et est bonjour pointure merci moins voudrais "
        "cherche c'est du au ai peux parler rien d'ici avant bleu rouge noir blanc préférence livraison plutôt dans jours "
        "serré balles svp".split()
    ),
    "de": frozenset(
        "der die das und für mit ein eine meine meinen meiner ich nicht kein keine bitte bis ist zu ohne größe hallo danke "
        "es geht brauche wo mein sprechen einem aus oder nichts möchte hast du kann sein ach nein lieber hose morgen "
        "schokolade vegane zw euro".split()
    ),
    "pt": frozenset(
        "o os para pra pro que com um uma meu minha não sem tamanho até quero preciso presente obrigado obrigada é tem vcs "
        "você vocês falar só isso do da em amanhã sou algo mais ou prefiro cadê pessoa vem chega tempo demora oi tudo bem "
        "aceitam queijo têm glúten reais".split()
    ),
}
_LANGUAGE_CHARS: Final[Mapping[str, str]] = {"es": "ñ¿¡", "pt": "ãõ", "de": "ßäöü", "fr": "èùœëî"}
# Characters shared by two languages (one point each) and strong currency hints.
_SHARED_CHARS: Final[Mapping[str, tuple[str, ...]]] = {"ç": ("pt", "fr"), "ê": ("pt", "fr"), "ô": ("pt", "fr"), "à": ("pt", "fr")}


def detect_language(text: str) -> str:
    """Guess the message language among en, es, fr, de, pt from frequent words; default en."""
    low = _lower(_clean(text))
    tokens = re.findall(r"[\w']+", low)
    scores = {lang: sum(1 for tok in tokens if tok in words) for lang, words in _LANGUAGE_WORDS.items()}
    for lang, chars in _LANGUAGE_CHARS.items():
        scores[lang] += 2 * sum(1 for ch in low if ch in chars)
    for ch, languages in _SHARED_CHARS.items():
        if ch in low:
            for lang in languages:
                scores[lang] += 1
    if "r$" in low or "reais" in low:
        scores["pt"] += 2
    best = max(LANGUAGES, key=lambda lang: scores[lang])
    return best if scores[best] > 0 else "en"


def _normalize_language(language: str | None) -> str | None:
    if not language:
        return None
    code = language.strip().lower().replace("-", "_").split("_")[0]
    return code if code in LANGUAGES else None


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

_BABEL_LOCALES: Final = {"en": "en_US", "es": "es_ES", "fr": "fr_FR", "de": "de_DE", "pt": "pt_BR"}


def parse_number(text: str, language: str = "en") -> Decimal | None:
    """Parse "1.299,90", "1,299.90", "49,90", "42,5", "1 299" with the language's Babel locale.

    Babel decides first (strictly, so "49.99" is not read as 4999 in German); when the
    locale's format does not fit, the last of "." or "," followed by one or two digits
    is taken as the decimal separator and the others as grouping.
    """
    compact = re.sub(r"[\s\u00a0\u202f']", "", text.strip())
    if not compact or not re.fullmatch(r"\d[\d.,]*", compact):
        return None
    locale = _BABEL_LOCALES.get(_normalize_language(language) or "en", "en_US")
    try:
        return parse_decimal(compact, locale=locale, strict=True)
    except NumberFormatError:
        pass
    last = max(compact.rfind("."), compact.rfind(","))
    if last >= 0 and len(compact) - last - 1 in (1, 2) and compact.count(compact[last]) == 1:
        whole = re.sub(r"[.,]", "", compact[:last])
        digits = f"{whole}.{compact[last + 1:]}"
    else:
        digits = re.sub(r"[.,]", "", compact)
    try:
        return Decimal(digits)
    except InvalidOperation:
        return None


def _format_size_number(value: Decimal) -> str:
    normalized = value.normalize()
    if normalized == normalized.to_integral_value():
        return str(int(normalized))
    return format(normalized, "f")


_NUMBER_RE: Final = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:[.,\u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?)(?!\d)")
# French groups thousands with plain spaces too ("1 299,90 €").
_NUMBER_RE_FR: Final = re.compile(
    r"(?<![\w.,])(?:\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?)(?![\d])"
)

# Number words used for quantities and day counts.
_NUMBER_WORDS: Final[Mapping[str, Mapping[str, int]]] = {
    "en": {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
           "eleven": 11, "twelve": 12, "a dozen": 12, "half a dozen": 6, "a couple of": 2, "couple of": 2},
    "es": {"dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8, "nueve": 9, "diez": 10,
           "once": 11, "doce": 12, "una docena de": 12, "media docena de": 6},
    "fr": {"deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8, "dix": 10,
           "onze": 11, "douze": 12, "une douzaine de": 12, "une demi-douzaine de": 6},
    "de": {"zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10,
           "elf": 11, "zwölf": 12, "ein dutzend": 12, "ein halbes dutzend": 6},
    "pt": {"dois": 2, "duas": 2, "três": 3, "quatro": 4, "cinco": 5, "seis": 6, "sete": 7, "oito": 8, "nove": 9,
           "dez": 10, "onze": 11, "doze": 12, "uma dúzia de": 12, "meia dúzia de": 6},
}
# Words meaning "one" in day/week counts ("within a week", "en una semana").
_ONE_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("a", "an", "one"), "es": ("un", "una", "uno"), "fr": ("un", "une"),
    "de": ("einer", "einem", "ein", "eine"), "pt": ("um", "uma"),
}

# ---------------------------------------------------------------------------
# Negation, replacement and correction cues
# ---------------------------------------------------------------------------

# A negation cue opens a scope of up to five words that ends at punctuation or a
# contrast/"and" word; colours, materials, brands and allergens inside it are avoided.
_NEGATION_CUES: Final[Mapping[str, tuple[str, ...]]] = {
    "en": (
        r"not(?! (?:later|more|less|too|sure|bigger|over)\b)", r"no(?! (?:later|more|less|longer|problem|worries|rush)\b)",
        "nothing", "none", "never", "without", "except", "anything but", "other than", "avoid", "avoiding", "hates?",
        "dislikes?", "(?:do|does|did)n't (?:like|want)", "(?:do|does) not (?:like|want)", "can't stand", "can't (?:do|have|eat|drink)",
        "cannot (?:do|have|eat|drink)", "allergic to", "rather not", "zero", "nix",
    ),
    "es": (
        r"no(?! (?:m[aá]s tarde|m[aá]s de|menos de)\b)", "sin", "nada de", "nada", "ningún", "ninguna", "ninguno", "excepto",
        "menos", "salvo", "odia", "odio", "evitar", "evita", "alérgic[oa] a", "alérgic[oa]s a", "no le gusta", "no me gusta",
        "cero",
    ),
    "fr": (
        r"pas(?! (?:plus tard|plus de|moins de|trop)\b)", "sans", "rien de", "rien", "aucun", "aucune", "sauf", "à part",
        "hors", "évite[rz]?", "déteste", "horreur de", "jamais", "allergique aux?", "allergique à la", "ni",
    ),
    "de": (
        r"nicht(?! (?:später|mehr als|weniger als|zu)\b)", "kein", "keine", "keinen", "keinem", "keiner", "keines",
        "nichts", "ohne", "außer", "hasst", "vermeiden", "allergisch gegen", "allergisch auf",
    ),
    "pt": (
        r"não(?! (?:depois|mais tarde|mais de|mais que|menos de)\b)", r"nao(?! (?:depois|mais tarde|mais de|menos de)\b)",
        "sem", "nada de", "nada", "nenhum", "nenhuma", "exceto", "menos", "tirando", "odeia", "detesta", "evitar",
        "alérgic[oa] a", "zero",
    ),
}
# "instead of X": X is corrected away (dropped, not excluded).
_INSTEAD_CUES: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("instead of", "rather than", "in place of"),
    "es": ("en vez de", "en lugar de"),
    "fr": ("au lieu de", "à la place de", "plutôt que"),
    "de": ("statt", "anstatt", "anstelle von", "anstelle"),
    "pt": ("em vez de", "ao invés de", "no lugar de"),
}
# "lieber schwarz als braun", "rather red than pink", "plutôt bleu que noir".
_RATHER_THAN_RE: Final = re.compile(
    r"(?<!\w)(?:lieber|rather|mejor|prefiero|plutôt|préfère|préférerais|melhor|prefiro|prefer|i'd prefer)\s+"
    r"(?:[\w\-]+\s+){1,3}?(?P<than>als|than|que|do que)(?!\w)"
)
_SCOPE_PUNCT_RE: Final = re.compile(r"[,.;:!?()\"/]")
_SCOPE_END_RE: Final = re.compile(
    r"(?<!\w)(?:for|pour|para|pra|pro|für|fuer|but|and|pero|sino|y|mais|et|aber|sondern|und|mas|e|however|though|"
    r"please|pls|plz|bitte|por favor|porfa|svp|stp|s'il vous plaît|"
    r"better|rather|i want|i'd like|i need|mejor|quiero|necesito|prefiero|plutôt|je veux|je voudrais|je préfère|"
    r"lieber|ich will|ich möchte|ich brauche|melhor|quero|preciso|prefiro)(?!\w)"
)
_SCOPE_WORDS: Final = 5

# Words that signal that the message corrects an earlier one, anywhere in the text.
_CORRECTION_CUES: Final[Mapping[str, tuple[str, ...]]] = {
    "en": (
        "i meant", "meant", "oops", "whoops", "my bad", "changed my mind", "change of plans?", "scratch that", "correction",
        "instead", "make that", "make it", "change (?:it|that|the \\w+) to", "switch (?:it|that) to", "on second thought",
        "i mean", "actually", "sorry i", "sorry, i", "typo", "i said",
    ),
    "es": (
        "quería decir", "quise decir", "me equivoqué", "perdón(?! por| que)", "perdona(?! que| la| por)", "corrijo",
        "cambié de idea", "en vez de", "cámbia(?:lo|la)", "cambia(?:lo|la)? (?:a|por)", "cambiar(?:lo|la)? (?:a|por)",
        "en lugar de", "mejor dicho", "en realidad", "me confundí", "error mío",
    ),
    "fr": (
        "je voulais dire", "je me suis trompée?", "pardon(?! de| pour)", "en fait", "au lieu de", "finalement", "correction",
        "j'ai changé d'avis", "plutôt que", "changez (?:pour|en)", "remplacez", "changer pour", "à la place", "erreur de ma part",
    ),
    "de": (
        "ich meinte", "sorry(?! für| wegen)", "entschuldigung(?! für| wegen| die)", "korrektur", "doch lieber", "doch nicht",
        "lieber doch", "stattdessen", "ändern? (?:auf|in)", "ändere (?:auf|in)",
        "statt", "anstatt", "vertan", "umentschieden", "eigentlich doch", "ich habe mich geirrt",
    ),
    "pt": (
        "na verdade", "quis dizer", "queria dizer", "errei", "ops", "desculpa(?! incomodar| a demora| pelo| pela)",
        "desculpe(?! incomodar| a demora| pelo| pela)", "corrigindo", "mudei de ideia", "troca(?:r)? (?:para|pra|por)",
        "muda(?:r)? (?:para|pra)",
        "em vez de", "ao invés de", "aliás", "me enganei", "foi mal",
    ),
}
# Softer cues that only count at the very start of the message ("wait, ...", "mejor en azul").
_CORRECTION_OPENERS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("wait", "change", "sorry(?! to| for| but)", "rather", "hold on", "hmm no", "no wait"),
    "es": ("mejor", "espera", "bueno no", "cambio", "perdón(?! por| que)", "ah no", "digo", "no espera"),
    "fr": ("ah non", "plutôt", "attends", "pardon(?! de| pour)", "oups", "euh non", "finalement", "non attends"),
    "de": ("ach nee", "ach nein", "doch", "lieber", "moment", "eigentlich", "oh nein", "warte", "nee warte"),
    "pt": ("melhor", "espera", "opa", "ah não", "digo", "pensando bem", "não espera"),
}
# A bare "no," / "non," / "nein," opening the message only counts before punctuation
# ("no, size M") - "no gadgets please" is an exclusion, not a correction.
_NEGATIVE_OPENERS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("no", "nope", "nah"), "es": ("no",), "fr": ("non",), "de": ("nein", "nee", "nö"), "pt": ("não", "nao"),
}

# ---------------------------------------------------------------------------
# Vocabulary: colours (normalised English names)
# ---------------------------------------------------------------------------

_COLORS: Final[Mapping[str, _Table]] = {
    "en": {
        "white": ("white", "off-white", "ivory", "snow white"),
        "black": ("black", "jet black"),
        "gray": ("gr[ae]y", "charcoal", "slate", "anthracite", "heather gr[ae]y", "light gr[ae]y", "dark gr[ae]y"),
        "red": ("red", "burgundy", "maroon", "crimson", "scarlet", "wine red", "cherry red", "dark red", "bright red"),
        "blue": ("blue", "dark blue", "light blue", "sky blue", "baby blue", "royal blue", "cobalt", "turquoise",
                 "teal", "denim blue", "pale blue", "powder blue"),
        "navy": ("navy", "navy blue", "midnight blue", "dark navy"),
        "green": ("green", "emerald", "forest green", "dark green", "light green", "lime green", "olive green", "bottle green"),
        "yellow": ("yellow", "mustard", "lemon yellow"),
        "orange": ("orange", "burnt orange"),
        "purple": ("purple", "lilac", "violet", "mauve", "lila"),
        "pink": ("pink", "hot pink", "fuchsia", "magenta", "blush", "baby pink", "light pink", "dusty pink", "rose pink"),
        "brown": ("brown", "tan", "chocolate brown", "dark brown", "light brown"),
        "beige": ("beige", "khaki", "taupe", "ecru", "off white beige"),
        "gold": ("gold", "golden", "rose gold"),
        "silver": ("silver",),
    },
    "es": {
        "white": ("blanc[oa]s?", "marfil", "hueso", "crudo"),
        "black": ("negr[oa]s?",),
        "gray": ("gris", "grises", "gris oscuro", "gris claro", "antracita", "gris marengo", "marengo"),
        "red": ("roj[oa]s?", "granate", "burdeos", "rojo oscuro", "carmesí"),
        "blue": ("azul", "azules", "azul oscuro", "azul claro", "celeste", "celestes", "azul cielo", "turquesa", "azul eléctrico"),
        "navy": ("azul marino", "azules marinos", "marino"),
        "green": ("verde", "verdes", "verde oliva", "verde oscuro", "verde claro", "verde botella"),
        "yellow": ("amarill[oa]s?",),
        "orange": ("naranja", "naranjas", "anaranjad[oa]s?"),
        "purple": ("morad[oa]s?", "violeta", "violetas", "lila", "lilas", "malva"),
        "pink": ("rosa", "rosas", "rosad[oa]s?", "fucsia", "rosa palo", "rosa chicle"),
        "brown": ("marrón", "marrones", "color café", "color chocolate", "castaño"),
        "beige": ("beige", "caqui", "color crema", "color arena"),
        "gold": ("dorad[oa]s?",),
        "silver": ("plateado", "plateada", "plateados", "plateadas", "plata"),
    },
    "fr": {
        "white": ("blanc", "blanche", "blancs", "blanches", "ivoire", "écru"),
        "black": ("noir", "noire", "noirs", "noires"),
        "gray": ("gris", "grise", "grises", "anthracite", "gris foncé", "gris clair"),
        "red": ("rouge", "rouges", "bordeaux", "rouge foncé", "grenat", "carmin"),
        "blue": ("bleu", "bleue", "bleus", "bleues", "bleu foncé", "bleu clair", "bleu ciel", "turquoise", "bleu roi",
                 "bleu électrique", "bleu pâle"),
        "navy": ("bleu marine", "marine"),
        "green": ("vert", "verte", "verts", "vertes", "vert olive", "kaki vert", "vert foncé", "vert clair", "vert bouteille"),
        "yellow": ("jaune", "jaunes"),
        "orange": ("orange", "oranges", "orangé", "orangée"),
        "purple": ("violet", "violette", "violets", "violettes", "mauve", "mauves", "lilas", "parme"),
        "pink": ("rose", "roses", "rose pâle", "rose poudré", "fuchsia"),
        "brown": ("marron", "marrons", "brun", "brune", "bruns", "brunes", "couleur chocolat"),
        "beige": ("beige", "beiges", "crème", "nude", "sable", "kaki", "taupe"),
        "gold": ("doré", "dorée", "dorés", "dorées"),
        "silver": ("argenté", "argentée", "argentés", "argentées"),
    },
    "de": {
        "white": ("weiß(?:e|en|er|es|em)?", "elfenbein", "cremeweiß~"),
        "black": ("schwarz(?:e|en|er|es|em)?",),
        "gray": ("grau(?:e|en|er|es|em)?", "anthrazit", "dunkelgrau~", "hellgrau~"),
        "red": ("rot(?:e|en|er|es|em)?", "weinrot~", "bordeauxrot~", "dunkelrot~", "knallrot~"),
        "blue": ("blau(?:e|en|er|es|em)?", "dunkelblau~", "hellblau~", "himmelblau~", "türkis~", "königsblau~"),
        "navy": ("marineblau~", "navy", "dunkelblaue marine"),
        "green": ("grün(?:e|en|er|es|em)?", "dunkelgrün~", "hellgrün~", "olivgrün~", "mintgrün~"),
        "yellow": ("gelb(?:e|en|er|es|em)?", "senfgelb~"),
        "orange": ("orange(?:n|ne|nen|ner|nes)?",),
        "purple": ("lila", "violett(?:e|en|er|es|em)?", "fliederfarben~"),
        "pink": ("rosa", "pink(?:e|en|er|es|em)?", "altrosa", "fuchsia"),
        "brown": ("braun(?:e|en|er|es|em)?", "dunkelbraun~", "hellbraun~", "beigebraun", "cognacfarben~"),
        "beige": ("beige", "cremefarben~", "sandfarben~", "khaki", "taupe"),
        "gold": ("golden(?:e|en|er|es|em)?", "goldfarben~"),
        "silver": ("silbern(?:e|en|er|es|em)?", "silberfarben~"),
    },
    "pt": {
        "white": ("branc[oa]s?", "marfim", "off white", "off-white", "gelo"),
        "black": ("pret[oa]s?",),
        "gray": ("cinza", "cinzas", "cinzento", "cinzenta", "grafite"),
        "red": ("vermelh[oa]s?", "bordô", "vinho escuro", "cor de vinho", "cor vinho", "grená"),
        "blue": ("azul", "azuis", "azul escuro", "azul claro", "azul bebê", "azul céu", "turquesa", "azul royal"),
        "navy": ("azul-marinho", "azul marinho", "marinho"),
        "green": ("verde", "verdes", "verde musgo", "verde oliva", "verde escuro", "verde claro", "verde menta", "verde bandeira"),
        "yellow": ("amarel[oa]s?",),
        "orange": ("laranja", "laranjas", "alaranjad[oa]s?"),
        "purple": ("rox[oa]s?", "lilás", "lilases", "violeta"),
        "pink": ("rosa", "rosas", "rosad[oa]s?", "pink", "rosa claro", "rosa bebê", "fúcsia"),
        "brown": ("marrom", "marrons", "castanho", "caqui escuro", "cor de café", "cor chocolate"),
        "beige": ("bege", "cáqui", "caqui", "off-white bege"),
        "gold": ("dourad[oa]s?",),
        "silver": ("pratead[oa]s?",),
    },
}
# Shades named after things ("olive", "caramelo", "crème", "Sand", "uva"): they only
# count as colours next to another colour ("preta ou caramelo") or a colour word
# ("in olive", "couleur crème", "cor de uva").
_SOFT_COLORS: Final[Mapping[str, _Table]] = {
    "en": {
        "green": ("olive", "mint", "sage", "khaki green"), "orange": ("rust", "coral", "peach", "terracotta"),
        "purple": ("lavender", "plum", "lilac purple"), "brown": ("camel", "cognac", "caramel", "chestnut", "chocolate", "mocha"),
        "beige": ("cream", "sand", "nude", "oatmeal", "stone"), "yellow": ("mustard", "lemon"), "red": ("wine", "cherry"),
        "white": ("snow",), "navy": ("marine",),
    },
    "es": {
        "green": ("menta", "oliva"), "yellow": ("mostaza",), "purple": ("lavanda", "berenjena"), "orange": ("naranja", "coral"),
        "brown": ("camel", "caramelo", "cognac", "chocolate", "café", "tostado"), "beige": ("crema", "arena", "nude"),
        "red": ("vino", "cereza"), "silver": ("plata",),
    },
    "fr": {
        "green": ("menthe", "olive"), "yellow": ("moutarde",), "purple": ("lavande", "prune", "aubergine"),
        "orange": ("orange", "corail", "pêche"), "brown": ("camel", "caramel", "cognac", "chocolat", "café", "noisette"),
        "beige": ("crème", "sable", "nude"), "red": ("bordeaux", "cerise"),
    },
    "de": {
        "green": ("mint", "oliv", "salbei"), "yellow": ("senf",), "purple": ("flieder", "lavendel", "pflaume", "aubergine"),
        "orange": ("koralle", "apricot"), "brown": ("camel", "cognac", "karamell", "schoko", "mokka"),
        "beige": ("creme", "sand", "nude"), "red": ("bordeaux", "kirschrot~"),
    },
    "pt": {
        "green": ("menta", "oliva"), "yellow": ("mostarda",), "purple": ("uva", "lavanda", "berinjela"),
        "orange": ("laranja", "coral", "pêssego", "terracota"),
        "brown": ("caramelo", "café", "chocolate", "castanha", "conhaque", "camelo", "tabaco"),
        "beige": ("creme", "areia", "nude"), "gray": ("chumbo", "gelo"), "red": ("vinho", "cereja"), "white": ("gelo",),
    },
}
# Words before a plural "roses"/"rosas" that make it flowers, not a colour.
_FLOWER_CONTEXT: Final = frozenset("des les de ces mes unas unos las ramo bouquet dozen douze docena dúzia buquê strauß".split())
_COLOR_CONTEXT_BEFORE_RE: Final = re.compile(
    r"(?<!\w)(?:colou?r(?:ed)?|in|en|em|de color|color|couleur|cor|cor de|farbe|in der farbe|tono|tom|shade|tons?)\s+$"
)
_COLOR_CONTEXT_AFTER_RE: Final = re.compile(r"^\s*-?(?:colou?r(?:ed)?|farben\w*|farbig\w*|tone|toned|shade)(?!\w)")
# A colour word next to one of these names a product, not a colour wish
# ("red wine", "chocolate blanco", "vin rouge", "Black Friday", "green tea").
_COLOR_PRODUCT_WORDS: Final[Mapping[str, frozenset[str]]] = {
    "en": frozenset("wine wines tea chocolate chocolates pepper peppers friday rice beans truffle truffles label coffee "
                    "pudding velvet sauce".split()),
    "es": frozenset("vino vinos té chocolate chocolates pimienta arroz café salsa".split()),
    "fr": frozenset("vin vins thé chocolat chocolats poivre riz sauce".split()),
    "de": frozenset("wein tee schokolade pfeffer reis soße".split()),
    "pt": frozenset("vinho vinhos chá chocolate pimenta arroz feijão molho".split()),
}

# ---------------------------------------------------------------------------
# Vocabulary: materials (normalised English names)
# ---------------------------------------------------------------------------

_MATERIALS: Final[Mapping[str, _Table]] = {
    "en": {
        "cotton": ("cotton", "organic cotton", "pima cotton"),
        "wool": ("wool", "woollen", "woolen", "merino", "lambswool", "merino wool"),
        "cashmere": ("cashmere",),
        "silk": ("silk", "silky"),
        "linen": ("linen",),
        "leather": ("leather", "genuine leather", "real leather", "nubuck"),
        "suede": ("suede",),
        "polyester": ("polyester", "poly"),
        "nylon": ("nylon",),
        "acrylic": ("acrylic",),
        "plastic": ("plastic", "plastics"),
        "glass": ("glass",),
        "metal": ("metal", "steel", "stainless steel", "aluminium", "aluminum", "iron", "cast iron", "titanium"),
        "wood": ("wood", "wooden", "oak", "walnut wood"),
        "ceramic": ("ceramic", "ceramics", "porcelain", "stoneware"),
        "bamboo": ("bamboo",),
        "velvet": ("velvet",),
        "denim": ("denim",),
        "gold": ("solid gold", "\\d+k gold", "real gold", "gold-plated"),
        "silver": ("sterling silver", "925 silver", "solid silver", "silver-plated"),
    },
    "es": {
        "cotton": ("algodón",), "wool": ("lana", "merino"), "cashmere": ("cachemira", "cachemir", "cashmere"),
        "silk": ("seda",), "linen": ("lino",),
        "leather": ("piel(?! (?:sensible|seca|grasa|mixta|atópica|madura)\\b)", "cuero", "ante(?= (?:marr|negr|azul))", "napa"),
        "polyester": ("poliéster",), "nylon": ("nailon", "nylon"), "acrylic": ("acrílico",),
        "plastic": ("plástico", "plásticos"), "glass": ("vidrio", "cristal"),
        "metal": ("metal", "metálic[oa]", "acero", "acero inoxidable", "aluminio", "hierro"),
        "wood": ("madera",), "ceramic": ("cerámica", "porcelana", "gres"), "bamboo": ("bambú",),
        "velvet": ("terciopelo",), "denim": ("denim", "tela vaquera"), "gold": ("de oro", "oro macizo"),
        "silver": ("de plata", "plata de ley"),
    },
    "fr": {
        "cotton": ("coton",), "wool": ("laine", "mérinos"), "cashmere": ("cachemire",), "silk": ("soie",),
        "linen": ("lin",), "leather": ("cuir", "daim", "nubuck"), "polyester": ("polyester",), "nylon": ("nylon",),
        "acrylic": ("acrylique",), "plastic": ("plastique", "plastiques"), "glass": ("verre",),
        "metal": ("métal", "métallique", "acier", "inox", "aluminium", "fer"),
        "wood": ("bois",), "ceramic": ("céramique", "porcelaine", "grès"), "bamboo": ("bambou",),
        "velvet": ("velours",), "denim": ("denim",), "gold": ("en or", "or massif"), "silver": ("en argent", "argent massif"),
    },
    "de": {
        "cotton": ("~baumwoll~",),
        "wool": ("wolle", "woll(?!en\\b|t)~", "merino~", "schurwoll~"),
        "cashmere": ("kaschmir~", "cashmere~"),
        "silk": ("seide", "seiden~"),
        "linen": ("leinen~",),
        "leather": ("leder~", "~leder", "wildleder~", "echtleder~", "nubuk~"),
        "polyester": ("polyester~",), "nylon": ("nylon~",), "acrylic": ("acryl~",),
        "plastic": ("plastik~", "kunststoff~"),
        "glass": ("glas", "glas(?!gow)~"),
        "metal": ("metall~", "edelstahl~", "stahl~", "alu", "aluminium~", "eisen~", "gusseisen~"),
        "wood": ("holz~",), "ceramic": ("keramik~", "porzellan~", "steingut~"), "bamboo": ("bambus~",),
        "velvet": ("samt", "samtig~"), "denim": ("denim~",), "gold": ("aus gold", "echtgold~", "massivgold~"),
        "silver": ("aus silber", "sterlingsilber~", "echtsilber~"),
    },
    "pt": {
        "cotton": ("algodão",), "wool": ("lã", "merino"), "cashmere": ("caxemira", "cashmere"), "silk": ("seda",),
        "linen": ("linho",), "leather": ("couro", "camurça", "nobuck"), "polyester": ("poliéster",),
        "nylon": ("náilon", "nylon"), "acrylic": ("acrílico",), "plastic": ("plástico", "plásticos"),
        "glass": ("vidro", "cristal"), "metal": ("metal", "metálic[oa]", "aço", "aço inox", "inox", "alumínio", "ferro"),
        "wood": ("madeira",), "ceramic": ("cerâmica", "porcelana"), "bamboo": ("bambu",), "velvet": ("veludo",),
        "denim": ("denim", "jeans de algodão"), "gold": ("de ouro", "ouro maciço"), "silver": ("de prata", "prata 925"),
    },
}
# "vegan" next to one of these goods means "no leather" ("vegan wallet", "sac vegan").
_VEGAN_RE: Final = re.compile(r"(?<!\w)(?:vegan\w*|végan\w*|végétalien\w*|vegetal)(?!\w)")
_VEGAN_GOODS: Final = frozenset(
    "wallet wallets bag bags handbag handbags purse purses shoes boots sneakers trainers jacket jackets belt belts "
    "backpack backpacks sandals strap straps coat clothing clothes accessories loafers "
    "cartera carteras bolso bolsos bolsa zapatos zapatillas botas chaqueta cinturón mochila sandalias abrigo "
    "portefeuille sac sacs chaussures baskets bottes veste ceinture blouson sandales "
    "geldbörse portemonnaie tasche taschen schuhe stiefel jacke gürtel rucksack sneaker "
    "carteira bolsas sapato sapatos tênis jaqueta cinto mochila sandálias".split()
)
# Jewellery words: next to them "gold" and "silver" are materials, not colours.
_JEWELLERY_RE: Final = re.compile(
    r"(?<!\w)(?:jewel(?:le)?ry|jewels?|rings?|necklaces?|earrings?|bracelets?|chains?|pendants?|cufflinks|anklets?|brooch\w*|"
    r"joyas?|anillos?|collar(?:es)?|pendientes|pulseras?|cadenas?|aretes|colgantes?|"
    r"bijoux?|bagues?|colliers?|boucles d'oreilles|chaînes?|pendentifs?|gourmettes?|"
    r"schmuck\w*|ringe?|ketten?|halsketten?|ohrringe?|armbänder|armband|anhänger|"
    r"joias?|anel|anéis|colar(?:es)?|brincos?|pulseiras?|correntes?|pingentes?)(?!\w)"
)
# Imitation leather: real leather is what the shopper avoids (and "vegan" here is no diet).
_FAKE_LEATHER: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("vegan leather", "faux leather", "fake leather", "imitation leather", "synthetic leather", "pu leather",
           "pleather", "leatherette", "faux suede", "vegan suede"),
    "es": ("piel sintética", "cuero sintético", "polipiel", "simil piel", "símil piel", "piel vegana", "cuero vegano",
           "ecopiel", "cuero ecológico"),
    "fr": ("cuir végétal", "cuir vegan", "cuir végan", "faux cuir", "similicuir", "simili cuir", "simili-cuir",
           "cuir synthétique", "cuir vegetal"),
    "de": ("kunstleder~", "veganes leder", "veganem leder", "veganen leder", "lederimitat~", "lederoptik~"),
    "pt": ("couro sintético", "couro vegano", "couro ecológico", "corino", "courino", "couro fake"),
}

# ---------------------------------------------------------------------------
# Vocabulary: dietary needs and allergens
# ---------------------------------------------------------------------------

# Labels stated directly ("vegan", "halal", "celiac" -> gluten_free, "diabetic" -> sugar_free).
_DIETS: Final[Mapping[str, _Table]] = {
    "*": {"halal": ("halal",), "kosher": ("kosher", "kasher", "casher", "cacher", "koscher")},
    "en": {
        "vegan": ("vegan", "vegans", "plant-based", "plant based"),
        "vegetarian": ("vegetarian", "vegetarians", "veggie", "meat-free", "meatless", "no meat"),
        "gluten_free": ("celiac", "coeliac", "gluten intolerant", "gluten intolerance", "gluten-free", "gluten free"),
        "lactose_free": ("lactose intolerant", "lactose intolerance", "dairy-free", "dairy free", "milk-free", "lactose-free"),
        "nut_free": ("nut allergy", "peanut allergy", "nut-free", "nut free", "peanut-free", "tree nut allergy"),
        "sugar_free": ("diabetic", "diabetes", "sugar-free", "sugar free", "no added sugar", "sugarless"),
        "egg_free": ("egg allergy", "egg-free", "egg free"),
        "soy_free": ("soy allergy", "soy-free", "soy free"),
        "alcohol_free": ("alcohol-free", "alcohol free", "non-alcoholic", "nonalcoholic", "no alcohol", "zero alcohol",
                         "without alcohol", "alcoholfree"),
    },
    "es": {
        "vegan": ("vegan[oa]s?", "vegetal(?:es)?(?= (?:cien|100))"),
        "vegetarian": ("vegetarian[oa]s?", "sin carne"),
        "gluten_free": ("celíac[oa]s?", "sin gluten", "intolerante al gluten", "intolerancia al gluten", "libre de gluten"),
        "lactose_free": ("sin lactosa", "intolerante a la lactosa", "intolerancia a la lactosa", "sin lácteos", "sin leche"),
        "nut_free": ("sin frutos secos", "alergia a los frutos secos", "sin nueces", "sin cacahuetes", "sin maní"),
        "sugar_free": ("diabétic[oa]s?", "diabetes", "sin azúcar", "sin azúcares añadidos"),
        "egg_free": ("sin huevo",), "soy_free": ("sin soja",),
        "alcohol_free": ("sin alcohol",),
    },
    "fr": {
        "vegan": ("végan", "végane", "végans", "véganes", "vegan", "vegane", "végétalien", "végétalienne", "végétaliens",
                  "végétaliennes"),
        "vegetarian": ("végétarien", "végétarienne", "végétariens", "végétariennes", "végé", "sans viande"),
        "gluten_free": ("cœliaque", "coeliaque", "sans gluten", "intolérante? au gluten", "intolérance au gluten"),
        "lactose_free": ("sans lactose", "intolérante? au lactose", "intolérance au lactose", "sans produits laitiers",
                         "sans lait"),
        "nut_free": ("sans noix", "sans arachides?", "sans fruits à coque", "sans cacahuètes?", "allergie aux noix",
                     "allergie aux arachides"),
        "sugar_free": ("diabétique", "diabétiques", "diabète", "sans sucre", "sans sucres ajoutés"),
        "egg_free": ("sans œufs?", "sans oeufs?"), "soy_free": ("sans soja",),
        "alcohol_free": ("sans alcool",),
    },
    "de": {
        "vegan": ("vegan(?:e|en|er|es|em)?", "veganer(?:in)?"),
        "vegetarian": ("vegetarisch(?:e|en|er|es|em)?", "vegetarier(?:in)?", "fleischlos(?:e|en|er|es)?", "ohne fleisch"),
        "gluten_free": ("glutenfrei~", "zöliakie", "ohne gluten", "glutenunverträglich~", "glutenintoleran~"),
        "lactose_free": ("laktosefrei~", "laktoseintoleran~", "laktoseunverträglich~", "milchfrei~", "ohne laktose",
                         "ohne milch", "laktose-intoleran~"),
        "nut_free": ("nussfrei~", "~nussallergie", "ohne nüsse", "ohne nuss", "erdnussfrei~", "nussallergiker~"),
        "sugar_free": ("zuckerfrei~", "diabetiker~", "diabetes", "ohne zucker"),
        "egg_free": ("eifrei~", "ohne ei", "ohne eier"), "soy_free": ("sojafrei~", "ohne soja"),
        "alcohol_free": ("alkoholfrei~", "ohne alkohol",),
    },
    "pt": {
        "vegan": ("vegan[oa]s?", "vegana?s?"),
        "vegetarian": ("vegetarian[oa]s?", "sem carne"),
        "gluten_free": ("celíac[oa]s?", "sem glúten", "intolerante ao glúten", "intolerância ao glúten", "zero glúten"),
        "lactose_free": ("sem lactose", "intolerante à lactose", "intolerante a lactose", "intolerância à lactose",
                         "zero lactose", "sem leite"),
        "nut_free": ("sem castanhas?", "sem amendoim", "sem nozes", "alergia a amendoim", "alergia a castanhas?"),
        "sugar_free": ("diabétic[oa]s?", "diabetes", "sem açúcar", "zero açúcar", "diet"),
        "egg_free": ("sem ovos?",), "soy_free": ("sem soja",),
        "alcohol_free": ("sem álcool", "zero álcool",),
    },
}
# Allergen words; an allergen that is negated ("nothing with nuts"), followed by
# "free"/"frei" or mentioned next to an allergy word becomes "<allergen>_free".
_ALLERGENS: Final[Mapping[str, _Table]] = {
    "en": {
        "gluten_free": ("gluten", "wheat"),
        "lactose_free": ("lactose", "dairy", "milk"),
        "nut_free": ("nuts?", "peanuts?", "tree nuts", "hazelnuts?", "almonds?", "walnuts?", "cashews?", "pistachios?",
                     "pecans?"),
        "sugar_free": ("sugar", "sugars"),
        "egg_free": ("eggs?",),
        "soy_free": ("soy", "soya"),
    },
    "es": {
        "gluten_free": ("gluten", "trigo"),
        "lactose_free": ("lactosa", "lácteos", "leche"),
        "nut_free": ("frutos secos", "nueces", "nuez", "cacahuetes?", "cacahuates?", "maníes", "maní", "almendras?",
                     "avellanas?", "pistachos?", "anacardos?"),
        "sugar_free": ("azúcar", "azúcares"),
        "egg_free": ("huevos?",),
        "soy_free": ("soja",),
    },
    "fr": {
        "gluten_free": ("gluten", "blé"),
        "lactose_free": ("lactose", "produits laitiers", "laitages?", "lait"),
        "nut_free": ("noix", "noisettes?", "arachides?", "cacahuètes?", "amandes?", "fruits à coque", "fruits secs",
                     "pistaches?"),
        "sugar_free": ("sucre", "sucres"),
        "egg_free": ("œufs?", "oeufs?"),
        "soy_free": ("soja",),
    },
    "de": {
        "gluten_free": ("gluten", "weizen"),
        "lactose_free": ("laktose", "milchprodukte", "milch"),
        "nut_free": ("nüsse", "nüssen", "nuss", "~nüsse", "~nüssen", "erdnuss~", "haselnuss~", "mandeln?", "pistazien"),
        "sugar_free": ("zucker",),
        "egg_free": ("eier", "ei"),
        "soy_free": ("soja",),
    },
    "pt": {
        "gluten_free": ("glúten", "trigo"),
        "lactose_free": ("lactose", "laticínios", "leite", "derivados de leite"),
        "nut_free": ("castanhas?", "amendoins?", "nozes", "noz", "amêndoas?", "avelãs?", "oleaginosas", "pistaches?"),
        "sugar_free": ("açúcar", "açúcares"),
        "egg_free": ("ovos?",),
        "soy_free": ("soja",),
    },
}
_ALLERGY_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("allerg\\w*", "intoleran\\w*", "sensitive to", "can't tolerate"),
    "es": ("alergi\\w*", "alérgic\\w*", "intoleran\\w*"),
    "fr": ("allergi\\w*", "intoléran\\w*"),
    "de": ("~allergi\\w*", "allergisch\\w*", "~unverträglich\\w*", "~intoleran\\w*", "verträgt kein\\w*", "vertrage kein\\w*"),
    "pt": ("alergi\\w*", "alérgic\\w*", "intoler\\w*"),
}
_FREE_SUFFIX_RE: Final = re.compile(r"^\s?-?\s?(?:free|frei\w*|libre|livre)(?!\w)")

# ---------------------------------------------------------------------------
# Vocabulary: recipients and occasions
# ---------------------------------------------------------------------------

# "child" words only count after "for"/a possessive ("zapatos de niño" is a product type).
_RECIPIENTS: Final[Mapping[str, _Table]] = {
    "en": {
        "mother": ("mom", "mum", "mommy", "mummy", "mother", "mama", "momma", "mam"),
        "father": ("dad", "daddy", "father", "papa", "pops", "old man"),
        "wife": ("wife", "wifey", "missus"),
        "husband": ("husband", "hubby"),
        "son": ("son", "my boy"),
        "daughter": ("daughter",),
        "child": ("\\d{1,2} ?-?(?:yo|y/o|year-old|year old|yr old|years old)", "kids?", "child", "children", "toddlers?",
                  "bab(?:y|ies)", "little ones?", "boys?", "girls?", "newborn",
                  "sons", "daughters"),
        "friend": ("friends?", "bestie", "besties", "bff", "best friend", "buddy", "pal", "mates?"),
        "colleague": ("colleagues?", "co-?workers?", "coworkers?", "boss", "manager", "team", "staff", "employees?",
                      "work friends?", "workmates?", "clients?"),
        "other": (
            "my girl", "sisters?", "brothers?", "sis", "bro", "grandma", "grandmother", "granny", "nan", "nana", "grandpa",
            "grandfather", "gramps", "grandad", "granddad", "grandparents", "aunt", "auntie", "uncle", "cousin",
            "niece", "nephew", "girlfriend", "gf", "boyfriend", "bf", "partner", "fianc[eé]e?", "mother in law",
            "father in law", "sister in law", "brother in law", "in-laws", "step-?mom", "step-?mother", "step-?dad",
            "step-?father", "step-?son", "step-?daughter", "grandsons?", "granddaughters?", "grandkids", "grandchildren",
            "godson", "goddaughter", "godmother", "godfather", "neighbou?r", "teacher", "parents", "siblings?", "spouse",
            "significant other", "in laws", "mil", "fil",
        ),
    },
    "es": {
        "mother": ("madre", "mamá", "mami", "mama", "mi vieja"),
        "father": ("padre", "papá", "papi", "mi viejo"),
        "wife": ("esposa", "mi mujer", "mi señora"),
        "husband": ("esposo", "marido"),
        "son": ("hijo",),
        "daughter": ("hija",),
        "child": ("hijos", "hijas", "niños?", "niñas?", "nenes?", "nenas?", "bebés?", "peques?", "crío", "críos", "chicos"),
        "friend": ("amig[oa]s?", "mejor amig[oa]", "colegui"),
        "colleague": ("compañer[oa]s? de trabajo", "compañer[oa]s? de oficina", "compañer[oa]s?", "colegas?", "jefe", "jefa",
                      "jefes", "empleados"),
        "other": (
            "herman[oa]s?", "abuel[oa]s?", "tío", "tía", "tíos", "prim[oa]s?", "sobrin[oa]s?", "novi[oa]", "pareja",
            "suegr[oa]s?", "cuñad[oa]s?", "niet[oa]s?", "padrino", "madrina", "ahijad[oa]", "vecin[oa]s?", "profe",
            "profesor[a]?", "maestr[oa]", "padres", "prometid[oa]", "madrastra", "padrastro", "la madre de mi",
            "el padre de mi",
        ),
    },
    "fr": {
        "mother": ("mère", "maman", "môman"),
        "father": ("père", "papa"),
        "wife": ("ma femme", "notre femme", "épouse"),
        "husband": ("mari", "époux", "mon homme"),
        "son": ("fils", "mon garçon", "mon grand"),
        "daughter": ("ma fille", "notre fille"),
        "child": ("enfants?", "gamins?", "gamine", "bébés?", "fille", "fillette", "garçons?", "petits?"),
        "friend": ("ami", "amie", "amis", "amies", "meilleure? amie?", "potes?", "copains", "copines", "une copine",
                   "un copain", "camarade"),
        "colleague": ("collègues?", "patron", "patronne", "chef", "cheffe", "boss", "manager", "employés", "équipe"),
        "other": (
            "frères?", "sœurs?", "soeurs?", "grand-mère", "grand-père", "grands-parents", "mamie", "mamy", "papi", "papy",
            "tante", "oncle", "cousine?", "neveu", "nièce", "belle-mère", "beau-père", "belle-sœur", "belle-soeur",
            "beau-frère", "beaux-parents", "conjointe?", "compagnon", "compagne", "fiancée?", "parrain", "marraine",
            "filleule?", "voisine?", "maîtresse", "instit", "prof", "mes parents", "petit-fils", "petite\\-fille",
            "petits-enfants", "mon copain", "ma copine", "mon petit copain", "ma petite copine", "mon petit ami",
            "ma petite amie", "mon chéri", "ma chérie", "mon mec", "ma meuf", "mon jules", "mon amoureux", "mon amoureuse",
            "belle-maman",
        ),
    },
    "de": {
        "mother": ("mutter", "mama", "mami", "mutti"),
        "father": ("vater", "papa", "papi", "vati"),
        "wife": ("meine frau", "meiner frau", "ehefrau", "gattin"),
        "husband": ("mein mann", "meinen mann", "meinem mann", "ehemann", "gatte", "gatten"),
        "son": ("sohn", "sohnemann"),
        "daughter": ("tochter",),
        "child": ("kind", "kinder", "kindern", "kids", "baby", "babys", "kleinen", "jungen?", "mädchen", "enkelkinder"),
        "friend": ("freund", "freundin", "freunde", "freunden", "freundinnen", "kumpel", "beste freundin", "besten freund",
                   "bester freund", "einen freund", "einem freund", "eine freundin", "einer freundin", "ein freund"),
        "colleague": ("kollegen?", "kollegin", "kolleginnen", "chef", "chefin", "boss", "team", "meine mitarbeiter",
                      "meine mitarbeiterin", "meinen mitarbeiter", "unsere mitarbeiter", "meiner mitarbeiterin"),
        "other": (
            "bruder", "brüder", "schwester", "schwestern", "geschwister", "oma", "opa", "großmutter", "großvater",
            "großeltern", "tante", "onkel", "cousine?", "neffe", "neffen", "nichte", "schwiegermutter", "schwiegervater",
            "schwiegereltern", "schwager", "schwägerin", "partner", "partnerin", "verlobte[nr]?", "patenkind", "paten?",
            "patin", "nachbar(?:in|n)?", "lehrer(?:in)?", "eltern", "enkel(?:in)?", "stiefmutter", "stiefvater",
            "mein freund", "meinen freund", "meinem freund", "meine freundin", "meiner freundin", "mein schatz",
            "meinen schatz", "meinem schatz",
        ),
    },
    "pt": {
        "mother": ("mãe", "mamãe", "mainha", "mamae"),
        "father": ("pai", "papai", "painho"),
        "wife": ("esposa", "minha mulher", "minha patroa"),
        "husband": ("marido", "esposo", "meu homem"),
        "son": ("filho",),
        "daughter": ("filha",),
        "child": ("filhos", "filhas", "crianças?", "bebês?", "neném", "nenê", "menin[oa]s?", "pequen[oa]s", "garot[oa]s?"),
        "friend": ("amig[oa]s?", "casal de amigos", "melhor amig[oa]", "parceir[oa]"),
        "colleague": ("colegas? de trabalho", "colegas?", "chefe", "chefes", "patrão", "equipe", "funcionári[oa]s", "gerente"),
        "other": (
            "irmão", "irmã", "irmãos", "irmãs", "avó", "avô", "avós", "vovó", "vovô", "vó", "vô", "ti[oa]s?", "prim[oa]s?",
            "sobrinh[oa]s?", "namorad[oa]", "noiv[oa]", "sogr[oa]", "sogros", "cunhad[oa]", "genro", "nora", "net[oa]s?",
            "padrinho", "madrinha", "afilhad[oa]", "vizinh[oa]", "professor[a]?", "meus pais", "companheir[oa]",
            "madrasta", "padrasto", "crush",
        ),
    },
}
_NEEDS_DETERMINER: Final = frozenset({"child", "friend", "colleague"})
# "speak to a manager", "hablar con un compañero": a contact request, not a recipient.
_CONTACT_BEFORE_RE: Final = re.compile(
    r"(?:speak|talk|chat|contact|reach|call|hablar|contactar|llamar|parler|contacter|appeler|sprechen|reden|kontaktieren|"
    r"falar|conversar|ligar)\s+(?:to|with|con|avec|à|a|mit|com)?\s*(?:\w+\s+){0,2}$"
)

# Words introducing the person a gift is for, and possessives.
_FOR_RE: Final[Mapping[str, re.Pattern[str]]] = {
    "en": re.compile(r"(?<!\w)(?:for|to|gift(?:ing)?)\s+(?:my|a|an|the|our|his|her|their|your)?\s*(?:[\w\-]+\s+){0,3}$"),
    "es": re.compile(r"(?<!\w)(?:para|pa|a)\s+(?:mi|mis|un|una|el|la|los|las|nuestr[oa]s?|su|sus|al)?\s*(?:[\w\-]+\s+){0,3}$"),
    "fr": re.compile(r"(?<!\w)(?:pour|à|a|offrir à)\s+(?:mon|ma|mes|un|une|le|la|les|notre|nos|son|sa|ses|l')?\s*(?:[\w\-]+\s+){0,3}$"),
    "de": re.compile(
        r"(?<!\w)(?:für|fuer|an)\s+(?:mein(?:e|en|em|er)?|ein(?:e|en|em|er)?|die|den|der|das|unser(?:e|en|em|er)?)?\s*"
        r"(?:[\w\-]+\s+){0,3}$"
    ),
    "pt": re.compile(
        r"(?<!\w)(?:para|pra|pro|pros|pras|p/)\s+(?:o|a|os|as|meu|minha|meus|minhas|um|uma|nosso|nossa)?\s*(?:[\w\-]+\s+){0,3}$"
    ),
}
_POSSESSIVE_RE: Final[Mapping[str, re.Pattern[str]]] = {
    "en": re.compile(r"(?<!\w)(?:my|our)\s+(?:\w+\s+)?$"),
    "es": re.compile(r"(?<!\w)(?:mi|mis|nuestr[oa]s?)\s+(?:\w+\s+)?$"),
    "fr": re.compile(r"(?<!\w)(?:mon|ma|mes|notre|nos)\s+(?:\w+\s+)?$"),
    "de": re.compile(r"(?<!\w)(?:mein(?:e|en|em|er)?|unser(?:e|en|em|er)?)\s+(?:\w+\s+)?$"),
    "pt": re.compile(r"(?<!\w)(?:meu|minha|meus|minhas|nosso|nossa)\s+(?:\w+\s+)?$"),
}
# The shopper buys for themself.
_SELF_EXPLICIT: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("for me(?! to)", "for myself", "myself", "for my ?self", "me myself", "treat myself", "for meself"),
    "es": ("para m\\í", "para mi(?=\\s*(?:[,.!?;)]|$|y\\b|mism))", "para mí mism[oa]", "yo mism[oa]", "para mi persona"),
    "fr": ("pour moi", "moi-même", "me faire plaisir"),
    "de": ("für mich", "mich selbst", "mir selbst", "für mich selber"),
    "pt": ("para mim", "pra mim", "eu mesm[oa]", "pra eu"),
}
_SELF_IDENTITY: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("i'?m (?:a |an |also |really |severely )?(?:vegan|vegetarian|celiac|coeliac|diabetic|lactose|gluten|allergic|"
           "intolerant|nut|halal|kosher)", "i am (?:a |an |also )?(?:vegan|vegetarian|celiac|coeliac|diabetic|lactose|"
           "gluten|allergic|intolerant)", "i (?:have|got) (?:a |an )?\\w* ?(?:allergy|intolerance)", "i can't (?:do|have|eat)",
           "i (?:don't|do not) eat"),
    "es": ("soy (?:vegan|vegetarian|celíac|diabétic|alérgic|intolerante)\\w*", "tengo (?:alergia|intolerancia|diabetes)",
           "no puedo (?:comer|tomar)"),
    "fr": ("je suis (?:végan|vegan|végétarien|végétalien|allergique|intolérant|cœliaque|coeliaque|diabétique)\\w*",
           "j'ai une (?:allergie|intolérance)", "je ne (?:mange|peux) pas"),
    "de": ("ich bin (?:vegan|veganer|vegetarier|allergisch|laktoseintolerant|diabetiker|zöliakie)\\w*",
           "ich habe (?:eine )?\\w*(?:allergie|intoleranz|unverträglichkeit|zöliakie|diabetes)", "ich vertrage kein\\w*",
           "ich esse kein\\w*"),
    "pt": ("sou (?:vegan|vegetarian|celíac|diabétic|alérgic|intolerante)\\w*", "tenho (?:alergia|intolerância|diabetes)",
           "não posso comer"),
}

_OCCASIONS: Final[Mapping[str, _Table]] = {
    "en": {
        "birthday": ("birthday", "bday", "b-day", "birthdays", "bday's", "birthday's", "b'day"),
        "christmas": ("christmas", "xmas", "x-mas", "secret santa", "stocking stuffers?", "stocking fillers?"),
        "anniversary": ("anniversary", "wedding anniversary", "anniv"),
        "wedding": ("wedding", "weddings", "wedding gift", "wedding present"),
        "other": (
            "mother's day", "mothers day", "father's day", "fathers day", "valentine'?s?(?: day)?", "graduation",
            "retirement", "retiring", "housewarming", "house warming", "baby shower", "bridal shower", "farewell",
            "leaving do", "going away", "going-away", "leaving the (?:company|job|team|office)", "who'?s leaving",
            "who is leaving", "leaving gift", "easter", "thanksgiving", "hanukkah", "diwali", "eid", "new baby",
            "christening", "baptism", "communion", "engagement", "get well", "thank you gift", "new job", "promotion",
            "teacher appreciation", "halloween",
        ),
    },
    "es": {
        "birthday": ("cumpleaños", "cumple", "cumpleañero", "cumpleañera", "santo"),
        "christmas": ("navidad", "navidades", "navideñ[oa]s?", "reyes", "amigo invisible", "nochebuena"),
        "anniversary": ("aniversario", "bodas de (?:oro|plata|papel|algodón|cristal|\\w+)"),
        "wedding": ("boda", "bodas", "casamiento", "matrimonio"),
        "other": (
            "día de la madre", "dia de la madre", "día del padre", "san valentín", "día de los enamorados", "graduación",
            "jubilación", "se jubila", "despedida", "que se va", "inauguración", "baby shower", "bautizo", "comunión",
            "pascua", "nacimiento", "agradecimiento", "halloween",
        ),
    },
    "fr": {
        "birthday": ("anniversaire", "anniv", "anni"),
        "christmas": ("noël", "noel", "père noël", "calendrier de l'avent"),
        "anniversary": ("anniversaire de mariage", "anniversaire de rencontre", "notre anniversaire", "anniversaire de couple",
                        "noces de \\w+", "nos \\d+ ans"),
        "wedding": ("mariage", "mariages", "noces"),
        "other": (
            "fête des mères", "fete des meres", "fête des pères", "saint-valentin", "saint valentin", "diplôme",
            "retraite", "départ", "qui part", "pot de départ", "crémaillère", "pendaison de crémaillère", "baptême",
            "communion", "pâques", "naissance", "baby shower", "remerciement", "halloween", "fiançailles",
        ),
    },
    "de": {
        "birthday": ("geburtstag~", "~geburtstag~", "b-day"),
        "christmas": ("weihnacht~", "~weihnacht~", "wichteln", "nikolaus", "advent~", "x-mas", "xmas"),
        "anniversary": ("jahrestag", "hochzeitstag", "~jahrestag"),
        "wedding": ("hochzeit~", "~hochzeit", "trauung", "vermählung"),
        "other": (
            "muttertag~", "vatertag~", "valentinstag~", "abschied~", "ruhestand", "rente", "renteneintritt",
            "einweihung~", "einzug~", "taufe", "kommunion", "konfirmation", "ostern", "oster~", "abschluss~", "abitur~",
            "geburt(?!stag)~", "babyparty", "dankeschön", "halloween", "verlobung~",
        ),
    },
    "pt": {
        "birthday": ("aniversário", "niver", "aniver", "aniversariante"),
        "christmas": ("natal", "natalin[oa]s?", "amigo secreto", "amigo oculto", "papai noel"),
        "anniversary": ("aniversário de casamento", "aniversário de namoro", "bodas de \\w+", "bodas"),
        "wedding": ("casamento", "casamentos", "matrimônio"),
        "other": (
            "dia das mães", "dia dos pais", "dia dos namorados", "formatura", "aposentadoria", "despedida",
            "chá de bebê", "chá de panela", "chá de casa nova", "chá revelação", "batizado", "páscoa", "nascimento",
            "agradecimento", "halloween", "noivado", "está saindo da empresa", "vai sair da empresa",
        ),
    },
}
# "his 70th", "ses 50 ans", "sus 40 años": a round-number birthday.
_BIRTHDAY_AGE_RE: Final[Mapping[str, re.Pattern[str]]] = {
    "en": re.compile(r"(?:(?:'s|\bhis|\bher|\bmy|\btheir|\bour)\s+\d{1,3}(?:st|nd|rd|th)\b(?!\s+(?:anniversary|wedding))"
                     r"|\bturn(?:s|ing)\s+\d{1,3}\b)"),
    "es": re.compile(r"\b(?:sus|mis|cumple|cumplirá|va a cumplir)\s+\d{1,3}\s*(?:años)?\b"),
    "fr": re.compile(r"\b(?:ses|mes|ton|son)\s+\d{1,3}\s*ans\b|\bva avoir\s+\d{1,3}\s*ans\b"),
    "de": re.compile(r"\b(?:zum|zu seinem|zu ihrem)\s+\d{2,3}\.(?!\d)(?!\s*(?:jan|feb|mär|apr|mai|jun|jul|aug|sep|okt|nov|dez|\d))"
                     r"|\bwird\s+\d{1,3}\b(?!\s*(?:€|euro|stück|cm|kg))"),
    "pt": re.compile(r"\b(?:\d{1,3}\s*anos\s+d[oae]l?[ae]?|seus\s+\d{1,3}\s*anos|(?:faz|vai fazer|completa)\s+\d{1,3}\s*anos)\b"),
}

# ---------------------------------------------------------------------------
# Vocabulary: time (weekdays, months, relative days)
# ---------------------------------------------------------------------------

_WEEKDAYS: Final[Mapping[str, _Table]] = {
    "en": {"monday": ("monday",), "tuesday": ("tuesday",), "wednesday": ("wednesday",), "thursday": ("thursday",),
           "friday": ("friday",), "saturday": ("saturday",), "sunday": ("sunday",)},
    "es": {"monday": ("lunes",), "tuesday": ("martes",), "wednesday": ("miércoles",), "thursday": ("jueves",),
           "friday": ("viernes",), "saturday": ("sábado",), "sunday": ("domingo",)},
    "fr": {"monday": ("lundi",), "tuesday": ("mardi",), "wednesday": ("mercredi",), "thursday": ("jeudi",),
           "friday": ("vendredi",), "saturday": ("samedi",), "sunday": ("dimanche",)},
    "de": {"monday": ("montag",), "tuesday": ("dienstag",), "wednesday": ("mittwoch",), "thursday": ("donnerstag",),
           "friday": ("freitag",), "saturday": ("samstag", "sonnabend"), "sunday": ("sonntag",)},
    "pt": {"monday": ("segunda-feira",), "tuesday": ("terça-feira",), "wednesday": ("quarta-feira",),
           "thursday": ("quinta-feira",), "friday": ("sexta-feira",), "saturday": ("sábado",), "sunday": ("domingo",)},
}
# Short weekday names, only read after a deadline preposition ("by fri", "até sexta").
_WEEKDAY_SHORT: Final[Mapping[str, _Table]] = {
    "en": {"monday": ("mon",), "tuesday": ("tue", "tues"), "wednesday": ("wed",), "thursday": ("thu", "thur", "thurs"),
           "friday": ("fri",), "saturday": ("sat",), "sunday": ("sun",)},
    "pt": {"monday": ("segunda",), "tuesday": ("terça",), "wednesday": ("quarta",), "thursday": ("quinta",),
           "friday": ("sexta",)},
    "de": {"monday": ("mo",), "tuesday": ("di",), "wednesday": ("mi",), "thursday": ("do",), "friday": ("fr",),
           "saturday": ("sa",), "sunday": ("so",)},
    "fr": {}, "es": {},
}
_DEADLINE_PREPOSITIONS: Final[Mapping[str, str]] = {
    "en": r"(?:by|before|on|until|till|til|for|no later than|latest by)",
    "es": r"(?:para|antes del?|hasta|el|este|esta|como tarde el)",
    "fr": r"(?:avant|d'ici|pour|jusqu'à|d'ici à|au plus tard|ce)",
    "de": r"(?:bis|vor|am|zum|bis zum|bis spätestens|spätestens|diesen|kommenden)",
    "pt": r"(?:até|para|pra|antes d[aeo]|na|no|nesta|neste|essa|esta|dia)",
}
_NEXT_BEFORE: Final[Mapping[str, str]] = {
    "en": r"next\s+$",
    "es": r"(?:próxim[oa]|proxim[oa])\s+$",
    "fr": r"$^",
    "de": r"(?:nächste[nm]?|naechste[nm]?|kommende[nm]?)\s+$",
    "pt": r"(?:próxim[oa]|proxim[oa])\s+$",
}
_NEXT_AFTER: Final[Mapping[str, str]] = {
    "en": r"^$x",
    "es": r"^\s+(?:que viene|próximo|proximo)\b",
    "fr": r"^\s+(?:prochaine?)\b",
    "de": r"^$x",
    "pt": r"^\s*(?:-feira\s+)?(?:que vem|próxim[oa])\b",
}
_RELATIVE_DAYS: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "en": {"day after tomorrow": ("day after tomorrow", "the day after tomorrow", "overmorrow"),
           "tomorrow": ("tomorrow", "tmrw", "tmr", "tomoz", "2moro", "2morrow", "tommorow", "tomorow"),
           "today": ("by today", "for today", "today please", "today pls", "need it today", "by tonight", "for tonight",
                     "(?:need|want|get|have|arrive|deliver|delivered|ship|shipped|send|sent)(?: \\w+){0,3} today",
                     "today if possible", "arrive today", "delivered today", "same day", "same-day")},
    "es": {"day after tomorrow": ("pasado mañana",),
           "tomorrow": ("(?<!la\\ )(?<!esta\\ )(?<!cada\\ )(?<!una\\ )(?<!por\\ )mañana(?!\\ por\\ la)(?!\\ de\\ la)",),
           "today": ("para hoy", "hoy mismo", "antes de esta noche", "para esta noche", "(?:necesito|llegue|llega)(?: \\w+){0,2} hoy")},
    "fr": {"day after tomorrow": ("après-demain", "après demain"), "tomorrow": ("demain",),
           "today": ("pour aujourd'hui", "aujourd'hui même", "pour ce soir", "avant ce soir")},
    "de": {"day after tomorrow": ("übermorgen",),
           "tomorrow": ("(?<!guten\\ )(?<!heute\\ )(?<!jeden\\ )(?<!am\\ )morgen", "morgen früh"),
           "today": ("für heute", "noch heute", "heute noch", "bis heute abend", "bis heute")},
    "pt": {"day after tomorrow": ("depois de amanhã",), "tomorrow": ("amanhã", "amanha"),
           "today": ("para hoje", "pra hoje", "hoje mesmo", "ainda hoje", "até hoje")},
}
_RELATIVE_OFFSETS: Final = {"today": 0, "tomorrow": 1, "day after tomorrow": 2}
# Periods: the coming weekend (read as its Saturday) and next week (seven days).
_PERIOD_DEADLINES: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "en": {"weekend": ("this weekend", "by the weekend", "by weekend", "for the weekend", "before the weekend"),
           "next week": ("next week", "early next week")},
    "es": {"weekend": ("este fin de semana", "el finde", "para el finde", "antes del finde", "antes del fin de semana",
                       "para el fin de semana"),
           "next week": ("la semana que viene", "la próxima semana", "la semana próxima")},
    "fr": {"weekend": ("ce week-end", "ce weekend", "d'ici le week-end", "pour le week-end", "avant le week-end"),
           "next week": ("la semaine prochaine",)},
    "de": {"weekend": ("am wochenende", "bis zum wochenende", "dieses wochenende", "vor dem wochenende", "bis wochenende"),
           "next week": ("nächste woche", "kommende woche", "nächster woche")},
    "pt": {"weekend": ("no fim de semana", "neste fim de semana", "até o fim de semana", "pro fim de semana", "para o fim de semana",
                       "até o fds", "pro fds"),
           "next week": ("semana que vem", "próxima semana")},
}
_DAY_UNITS: Final[Mapping[str, tuple[str, str]]] = {
    # (day words, week words)
    "en": (r"(?:business |working )?days?", r"weeks?"),
    "es": (r"días?(?: hábiles| laborables)?", r"semanas?"),
    "fr": (r"jours?(?: ouvrés| ouvrables)?", r"semaines?"),
    "de": (r"(?:werk)?tag(?:e|en)?", r"wochen?"),
    "pt": (r"dias?(?: úteis)?", r"semanas?"),
}
_HOUR_UNITS: Final[Mapping[str, str]] = {
    "en": r"(?:hours?|hrs?|h)", "es": r"(?:horas?|h)", "fr": r"(?:heures?|h)", "de": r"(?:stunden|std\.?|h)",
    "pt": r"(?:horas?|h)",
}
_DAY_COUNT_CUES: Final[Mapping[str, str]] = {
    "en": r"(?:in|within|in the next|next|under|in less than|in under|less than|no more than|not more than|max|at most|"
          r"up to|takes?|take max)",
    "es": r"(?:en|dentro de|en menos de|en los próximos|en las próximas|antes de|plazo de|máximo|como mucho|en un máximo de)",
    "fr": r"(?:dans|sous|d'ici|en|en moins de|dans les|maximum|max|au plus tard dans|pas plus de)",
    "de": r"(?:in|innerhalb von|innerhalb|binnen|in den nächsten|in weniger als|maximal|höchstens|spätestens in)",
    "pt": r"(?:em|dentro de|em até|nos próximos|nas próximas|daqui a|em menos de|até|no máximo|no max)",
}
_AGO_RE: Final = re.compile(r"^\s*(?:ago|atrás|atras)\b")
_AGO_BEFORE_RE: Final = re.compile(r"(?<!\w)(?:hace|il y a|vor|há|faz|seit|since|depuis|desde hace|for the (?:last|past))\s+$")
_MONTHS: Final[Mapping[str, _Table]] = {
    "en": {"jan": ("jan", "january"), "feb": ("feb", "february"), "mar": ("mar", "march"), "apr": ("apr", "april"),
           "may": ("may",), "jun": ("jun", "june"), "jul": ("jul", "july"), "aug": ("aug", "august"),
           "sep": ("sep", "sept", "september"), "oct": ("oct", "october"), "nov": ("nov", "november"),
           "dec": ("dec", "december")},
    "es": {"jan": ("enero", "ene"), "feb": ("febrero", "feb"), "mar": ("marzo", "mar"), "apr": ("abril", "abr"),
           "may": ("mayo",), "jun": ("junio", "jun"), "jul": ("julio", "jul"), "aug": ("agosto", "ago"),
           "sep": ("septiembre", "setiembre", "sept", "sep"), "oct": ("octubre", "oct"), "nov": ("noviembre", "nov"),
           "dec": ("diciembre", "dic")},
    "fr": {"jan": ("janvier", "janv"), "feb": ("février", "févr", "fév"), "mar": ("mars",), "apr": ("avril", "avr"),
           "may": ("mai",), "jun": ("juin",), "jul": ("juillet", "juil"), "aug": ("août",),
           "sep": ("septembre", "sept"), "oct": ("octobre", "oct"), "nov": ("novembre", "nov"),
           "dec": ("décembre", "déc")},
    "de": {"jan": ("januar", "jänner", "jan"), "feb": ("februar", "feb"), "mar": ("märz", "mär"), "apr": ("april", "apr"),
           "may": ("mai",), "jun": ("juni", "jun"), "jul": ("juli", "jul"), "aug": ("august", "aug"),
           "sep": ("september", "sept", "sep"), "oct": ("oktober", "okt"), "nov": ("november", "nov"),
           "dec": ("dezember", "dez")},
    "pt": {"jan": ("janeiro", "jan"), "feb": ("fevereiro", "fev"), "mar": ("março", "mar"), "apr": ("abril", "abr"),
           "may": ("maio", "mai"), "jun": ("junho", "jun"), "jul": ("julho", "jul"), "aug": ("agosto", "ago"),
           "sep": ("setembro", "set"), "oct": ("outubro", "out"), "nov": ("novembro", "nov"), "dec": ("dezembro", "dez")},
}
_MONTH_NUMBERS: Final = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                                     "nov", "dec"), start=1)}
_WEEKDAY_NUMBERS: Final = {d: i for i, d in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                                       "sunday"))}

# ---------------------------------------------------------------------------
# Vocabulary: sizes
# ---------------------------------------------------------------------------

# Letter sizes; Brazilian P/M/G/GG/XG map to the international letters.
_LETTER_SIZES: Final = {
    "xxxs": "XXXS", "xxs": "XXS", "xs": "XS", "s": "S", "m": "M", "l": "L", "xl": "XL", "xxl": "XXL", "xxxl": "XXXL",
    "2xl": "XXL", "3xl": "XXXL", "4xl": "XXXXL", "2xs": "XXS",
    "small": "S", "medium": "M", "large": "L", "x-large": "XL", "extra large": "XL", "extra-large": "XL",
    "xx-large": "XXL", "x-small": "XS", "extra small": "XS", "extra-small": "XS",
}
_BR_LETTER_SIZES: Final = {"pp": "XS", "p": "S", "m": "M", "g": "L", "gg": "XL", "xg": "XXL", "eg": "XXL", "xgg": "XXXL",
                           "egg": "XXXL", "g1": "XL", "g2": "XXL"}
_SIZE_CUES: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    # (pattern, kind): "shoe" cues name a shoe size, "generic" ones any size
    "*": (("size", "generic"), ("sizes", "generic"), ("sz", "generic"), ("in (?:a )?size", "generic")),
    "en": (("wears?(?: a)?(?: size)?", "generic"), ("(?:she|he)'?s (?:a|an)(?= ?(?:xx?[sl]|[sml]|\\d))", "generic"),
           ("i'?m (?:a|an)(?= ?(?:xx?[sl]|[sml]|\\d))", "generic"), ("shoe size", "shoe"), ("sized", "generic"),
           ("size:", "generic")),
    "es": (("talla", "generic"), ("tallas", "generic"), ("talle", "generic"), ("número", "shoe"), ("numero", "shoe"),
           ("n[º°]\\.?", "shoe"), ("nro\\.?", "shoe"), ("calz[ao](?: el| un| del)?", "shoe"),
           ("usa(?: la| una)?(?: talla)?", "generic")),
    "fr": (("taille", "generic"), ("tailles", "generic"), ("pointure", "shoe"), ("chausse du", "shoe"), ("fait du", "generic"),
           ("porte du", "generic"), ("je fais du", "generic"), ("en taille", "generic")),
    "de": (("größe", "generic"), ("grösse", "generic"), ("größen", "generic"), ("gr\\.", "generic"), ("gr", "generic"),
           ("schuhgröße", "shoe"), ("konfektionsgröße", "generic"), ("trägt", "generic"), ("trage", "generic")),
    "pt": (("tamanho", "generic"), ("tamanhos", "generic"), ("tam\\.?", "generic"), ("número", "shoe"), ("numero", "shoe"),
           ("n[º°]\\.?", "shoe"), ("calç[ao](?: o)?", "shoe"), ("veste", "generic"), ("visto", "generic"),
           ("usa(?: o)?", "generic"), ("uso(?: o)?", "generic")),
}
# Product words that tell shoe sizes from clothing sizes.
_SHOE_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("shoes?", "sneakers?", "trainers?", "boots?", "sandals?", "heels", "loafers?", "slippers?", "runners",
           "flats", "pumps", "cleats", "footwear", "flip-flops?", "mules", "clogs", "espadrilles", "oxfords", "brogues"),
    "es": ("zapat\\w*", "zapatillas?", "botas?", "botines?", "sandalias?", "tenis", "deportivas", "chanclas?",
           "tacones", "mocasines", "calzado", "alpargatas", "bailarinas"),
    "fr": ("chaussures?", "baskets?", "bottes?", "bottines?", "sandales?", "escarpins?", "mocassins?", "tennis",
           "tongs", "chaussons", "ballerines", "espadrilles", "derbies", "sneakers?"),
    "de": ("~schuh\\w*", "stiefel\\w*", "sneaker\\w*", "sandalen", "pumps", "slipper", "latschen", "clogs", "sandaletten"),
    "pt": ("sapat\\w*", "tênis", "botas?", "sandálias?", "chinelos?", "sapatilhas?", "tamancos?", "rasteirinhas?",
           "calçados?", "coturnos?", "mocassins?", "scarpins?", "tenis"),
}
_NUMERIC_CLOTHING_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("dress(?:es)?", "jeans", "trousers", "pants", "skirts?", "suits?", "shorts", "waist", "inseam", "blazers?",
           "chinos", "leggings", "jumpsuit"),
    "es": ("vestidos?", "pantal[oó]n(?:es)?", "vaqueros", "faldas?", "trajes?", "jeans", "chaquetas?", "blusas?"),
    "fr": ("robes?", "jeans?", "pantalons?", "jupes?", "costumes?", "vestes?", "chemisiers?", "tailleurs?"),
    "de": ("kleid\\w*", "jeans", "~hose\\w*", "röcke?", "anzug\\w*", "jacke\\w*", "blusen?"),
    "pt": ("vestidos?", "calças?", "saias?", "bermudas?", "jeans", "ternos?", "blazers?", "shorts"),
}
# Brazilian garments: a lone "P" next to one of them is the size S.
_PT_GARMENT_RE: Final = re.compile(
    r"(?<!\w)(?:camis\w+|blusa\w*|vestido\w*|casaco\w*|saia\w*|jaqueta\w*|moletom\w*|body|bodies|regata\w*|"
    r"cal[cç]a\w*|bermuda\w*|short\w*|pijama\w*|suéter\w*|sueter\w*|biquíni\w*|sutiã\w*|cueca\w*|calcinha\w*)(?!\w)"
)
# EU/DE height-based children's clothing sizes.
_KIDS_HEIGHT_SIZES: Final = frozenset(range(50, 189, 6)) | {98, 104, 110, 116, 122, 128, 134, 140, 146, 152, 158, 164, 170, 176}

# ---------------------------------------------------------------------------
# Vocabulary: money
# ---------------------------------------------------------------------------

_CURRENCY_SYMBOLS: Final = (("r$", "BRL"), ("us$", "USD"), ("u$s", "USD"), ("u$", "USD"), ("$", "USD"), ("€", "EUR"), ("£", "GBP"))
# Currency words and slang, any language ("bucks", "pavos", "balles", "Mäuse", "conto").
_CURRENCY_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "EUR": ("euros?", "eur", "eu?ro", "€uros?", "pavos", "pelas", "balles", "boules", "mäuse", "kröten", "tacken",
            "öcken", "piepen", "k€"),
    "USD": ("dollars?", "dólar(?:es)?", "dolar(?:es)?", "usd", "bucks", "dollar", "dolares", "us dollars?", "dls"),
    "GBP": ("pounds?", "quid", "gbp", "libras?(?: esterlinas?)?", "livres?(?: sterling)?", "pfund"),
    "BRL": ("reais", "real", "brl", "contos?", "pilas?", "pratas", "mangos"),
}
_MAX_CUES: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("under", "below", "less than", "no more than", "not more than", "not over", "at most", "max", "maximum",
           "up to", "upto", "cheaper than", "within", "budget(?: is| of)?", "my budget is", "budget max", "spend",
           "spending", "to spend", "nothing over", "nothing above", "not above", "no more than about", "under about",
           "<=?", "≤", "tops", "budget's", "max budget", "limit(?: is| of)?", "price range",
           "afford"),
    "es": ("menos de", "por menos de", "máximo", "max", "máx", "como máximo", "hasta", "no más de", "no mas de",
           "por debajo de", "presupuesto(?: de| es de| es)?", "mi presupuesto es", "inferior a", "que no pase de",
           "que no supere", "gastar", "no superior a", "que no cueste más de", "de menos de"),
    "fr": ("moins de", "pour moins de", "max", "maxi", "maximum", "jusqu'à", "pas plus de", "budget(?: de| max| maximum)?",
           "mon budget est de", "au plus", "en dessous de", "sous les", "inférieur à", "dépenser", "ne dépasse pas",
           "ne dépassant pas", "pas au-dessus de", "à moins de"),
    "de": ("unter", "bis", "bis zu", "max", "maximal", "höchstens", "nicht mehr als", "weniger als", "budget(?: von| ist| bis)?",
           "mein budget ist", "unterhalb von", "günstiger als", "billiger als", "ausgeben", "nicht über", "bis max"),
    "pt": ("até", "menos de", "por menos de", "no máximo", "máximo", "max", "abaixo de", "orçamento(?: de| é de| é)?",
           "não mais que", "não mais de", "nao mais que", "inferior a", "gastar", "que não passe de",
           "que custe até", "de até"),
}
_MIN_CUES: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("at least", "over", "more than", "above", "minimum", "min", "starting at", "starting from", "from", "no less than",
           ">=?", "≥"),
    "es": ("más de", "mas de", "mínimo", "al menos", "como mínimo", "desde", "a partir de", "por encima de", "superior a"),
    "fr": ("plus de", "au moins", "minimum", "à partir de", "au-dessus de", "supérieur à", "dès"),
    "de": ("mindestens", "über", "mehr als", "ab", "minimum", "wenigstens"),
    "pt": ("mais de", "mínimo", "no mínimo", "pelo menos", "acima de", "a partir de", "ao menos", "mais que"),
}
_AROUND_CUES: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("around", "about", "approx\\.?", "approximately", "roughly", "[~≈]", "circa", "ca\\.", "something like",
           "in the region of", "round about", "give or take", "budget around", "budget is around", "budget of about",
           "more or less"),
    "es": ("unos", "unas", "alrededor de", "aprox\\.?", "aproximadamente", "más o menos", "cerca de", "sobre los",
           "en torno a", "rondando", "por unos", "de unos", "[~≈]"),
    "fr": ("environ", "autour de", "à peu près", "dans les", "aux alentours de", "env\\.?", "approximativement",
           "vers les", "quelque chose comme", "grosso modo", "[~≈]", "un budget d'environ"),
    "de": ("um die", "so um die", "ungefähr", "etwa", "circa", "ca\\.?", "zirka", "rund", "so", "in etwa", "um", "[~≈]",
           "so ungefähr"),
    "pt": ("uns", "umas", "cerca de", "em torno de", "mais ou menos", "por volta de", "aproximadamente", "aprox\\.?",
           "na faixa de", "lá pelos", "[~≈]", "uns \\w+ de"),
}
_MAX_AFTER: Final = (
    r"max\.?", r"maximum", r"tops", r"or less", r"at most", r"at the most", r"or under", r"or below", r"como mucho",
    r"como máximo", r"máximo", r"máx\.?", r"maxi", r"au maximum", r"au plus", r"grand max", r"höchstens", r"maximal",
    r"no máximo", r"no max", r"max\.", r"limit", r"als obergrenze", r"de budget", r"budget",
)
_MIN_AFTER: Final = (r"or more", r"\+", r"minimum", r"min\.?", r"at least", r"como mínimo", r"mínimo", r"au moins", r"au minimum",
                     r"mindestens", r"no mínimo", r"und mehr", r"ou mais", r"et plus", r"o más", r"and up", r"or above",
                     r"plus")
_AROUND_AFTER: Final = (r"-?ish", r"or so", r"más o menos", r"environ", r"ungefähr", r"etwa", r"mais ou menos", r"aprox\.?",
                        r"give or take", r"à peu près", r"circa", r"ou algo assim")
# A price the shopper reports (paid, was charged, costs) is no budget.
_PAST_PRICE_RE: Final = re.compile(
    r"(?<!\w)(?:paid|pay|charged|cost|costs|costed|costing|was|were|priced at|refund\w*|spent|shipping|delivery fee|"
    r"pagué|pagado|pagamos|cobraron|cobrado|cuesta|costaba|costó|envío|payé|facturé|coûte|coûtait|livraison|frais|"
    r"bezahlt|berechnet|kostet|kostete|versand|paguei|pago|cobraram|cobrado|custa|custava|custou|frete)\b(?:\s+\w+){0,3}\s*$"
)
# Round amounts written in words; the flag marks approximations ("une vingtaine").
_MONEY_WORDS: Final[Mapping[str, Mapping[str, tuple[int, bool]]]] = {
    "en": {"ten": (10, False), "fifteen": (15, False), "twenty": (20, False), "thirty": (30, False), "forty": (40, False),
           "fifty": (50, False), "sixty": (60, False), "seventy": (70, False), "eighty": (80, False), "ninety": (90, False),
           "a hundred": (100, False), "one hundred": (100, False), "hundred": (100, False), "a couple hundred": (200, True)},
    "es": {"diez": (10, False), "quince": (15, False), "veinte": (20, False), "treinta": (30, False), "cuarenta": (40, False),
           "cincuenta": (50, False), "sesenta": (60, False), "setenta": (70, False), "ochenta": (80, False),
           "noventa": (90, False), "cien": (100, False), "doscientos": (200, False), "una veintena de": (20, True)},
    "fr": {"dix": (10, False), "quinze": (15, False), "vingt": (20, False), "trente": (30, False), "quarante": (40, False),
           "cinquante": (50, False), "soixante": (60, False), "cent": (100, False), "deux cents": (200, False),
           "une dizaine d'~": (10, True), "une quinzaine d'~": (15, True), "une vingtaine d'~": (20, True),
           "une trentaine d'~": (30, True), "une quarantaine d'~": (40, True), "une cinquantaine d'~": (50, True),
           "une centaine d'~": (100, True)},
    "de": {"zehn": (10, False), "fünfzehn": (15, False), "zwanzig": (20, False), "dreißig": (30, False),
           "vierzig": (40, False), "fünfzig": (50, False), "sechzig": (60, False), "hundert": (100, False),
           "einhundert": (100, False), "zweihundert": (200, False)},
    "pt": {"dez": (10, False), "quinze": (15, False), "vinte": (20, False), "trinta": (30, False), "quarenta": (40, False),
           "cinquenta": (50, False), "sessenta": (60, False), "cem": (100, False), "duzentos": (200, False),
           "uma dezena de": (10, True), "uns cem": (100, True)},
}
_BETWEEN_CUES: Final = (
    r"(?:between|somewhere between|from|entre|zwischen|von|de|desde|du|budget(?: is| of)?|presupuesto(?: de)?|orçamento(?: de)?)"
)
_BETWEEN_RE: Final = re.compile(_rx(_BETWEEN_CUES).replace("(?!\\w)", "") + r"\s*(?::|is|of)?\s*$")
_RANGE_JOIN: Final = r"(?:-|to|and|y|et|und|e|a|à|au|bis|até|hasta|~|/|or|o|ou|oder)"
# Numbers followed by these are counts or measures, never prices.
_NON_MONEY_UNITS_RE: Final = re.compile(
    r"^(?:th|st|nd|rd|er|e|ème|º|ª|°)(?!\w)|"  # ordinals: 10th, 1er, 2e
    r"^\s?(?:%|percent|por ?ciento|pour ?cent|prozent|por cento|cm|mm|m\b|km|kg|g\b|gr\b|grams?|ml|cl|l\b|lbs?|oz|inch|"
    r"inches|\"|ft|feet|mah|gb|tb|mb|w\b|watts?|v\b|hz|mp|years?|yrs?|y/?o|ans?\b|años?|jahren?|anos?|"
    r"months?|meses|mois|monate?n?|days?|días?|jours?|tage?n?|dias?|weeks?|hours?|h\b|uhr|horas?|heures?|stunden?|"
    r"minutes?|min\b|pairs?|pares?|paires?|paar|people|persons?|personas?|personnes?|personen|pessoas?|guests?|"
    r"invitados|invités|gäste|convidados|pieces?|pcs|units?|unidades?|unités?|stück|peças?|x\b|times|veces|fois|mal\b|"
    r"vezes)",
    re.IGNORECASE,
)

# ---------------------------------------------------------------------------
# Vocabulary: brands
# ---------------------------------------------------------------------------

# Well-known consumer brands with their usual spelling; the caller adds the store's own.
_KNOWN_BRANDS: Final[Mapping[str, tuple[str, ...]]] = {
    "Nike": ("nikes?",), "Adidas": ("adidas",), "Puma": ("puma",), "Reebok": ("reebok",), "New Balance": ("new balance", "nb"),
    "Asics": ("asics",), "Brooks": ("brooks",), "Hoka": ("hoka", "hoka one one"), "Saucony": ("saucony",),
    "Mizuno": ("mizuno",), "Under Armour": ("under armou?r",), "Converse": ("converse",), "Vans": ("vans",),
    "Skechers": ("skechers",), "Salomon": ("salomon",), "Timberland": ("timberland", "timbs"), "Crocs": ("crocs",),
    "Birkenstock": ("birkenstocks?", "birkis"), "Dr. Martens": ("dr\\.? martens", "doc martens", "dr\\.? marten's", "docs martens",
                                                                "doc marten's", "dr\\.? martins", "doc martins"),
    "UGG": ("ugg", "uggs"), "Clarks": ("clarks",), "Havaianas": ("havaianas",), "Schutz": ("schutz",), "Arezzo": ("arezzo",),
    "Melissa": ("melissa",), "Fila": ("fila",), "Kappa": ("kappa",), "Umbro": ("umbro",), "Champion": ("champion",),
    "Levi's": ("levi's", "levis", "levi s", "levi", "levi strauss"), "Wrangler": ("wrangler",), "Lee": ("lee",),
    "Diesel": ("diesel",), "Zara": ("zara",), "H&M": ("h&m", "h & m", "hm"), "Mango": ("mango",), "Uniqlo": ("uniqlo",),
    "Primark": ("primark",), "Gap": ("gap",), "Bershka": ("bershka",), "Pull&Bear": ("pull ?& ?bear", "pull and bear"),
    "Massimo Dutti": ("massimo dutti",), "Stradivarius": ("stradivarius",), "Shein": ("shein",), "Temu": ("temu",),
    "AliExpress": ("aliexpress", "ali express"), "Amazon": ("amazon",), "IKEA": ("ikea",), "Decathlon": ("decathlon",),
    "Lacoste": ("lacoste",), "Ralph Lauren": ("ralph lauren", "polo ralph lauren"), "Tommy Hilfiger": ("tommy hilfiger", "tommy"),
    "Calvin Klein": ("calvin klein", "ck"), "Hugo Boss": ("hugo boss",), "Gucci": ("gucci",), "Prada": ("prada",),
    "Louis Vuitton": ("louis vuitton", "lv"), "Chanel": ("chanel",), "Dior": ("dior",), "Hermès": ("hermès", "hermes"),
    "Burberry": ("burberry",), "Versace": ("versace",), "Armani": ("armani", "emporio armani"), "Michael Kors": ("michael kors",),
    "Kate Spade": ("kate spade",), "Coach": ("coach",), "Guess": ("guess",), "Longchamp": ("longchamp",),
    "Dolce & Gabbana": ("dolce ?& ?gabbana", "d&g"), "The North Face": ("the north face", "north face", "tnf"),
    "Patagonia": ("patagonia",), "Columbia": ("columbia",), "Fjällräven": ("fjällräven", "fjallraven", "kanken"),
    "Jack Wolfskin": ("jack wolfskin",), "Quechua": ("quechua",), "Eastpak": ("eastpak",), "Herschel": ("herschel",),
    "Samsonite": ("samsonite",), "Tumi": ("tumi",), "Rimowa": ("rimowa",), "Kipling": ("kipling",),
    "Apple": ("apple",), "Samsung": ("samsung",), "Sony": ("sony",), "LG": ("lg",), "Xiaomi": ("xiaomi",),
    "Huawei": ("huawei",), "Google": ("google",), "Microsoft": ("microsoft",), "Dell": ("dell",), "HP": ("hp",),
    "Lenovo": ("lenovo",), "Asus": ("asus",), "Acer": ("acer",), "Bose": ("bose",), "JBL": ("jbl",), "Beats": ("beats",),
    "Philips": ("philips",), "Bosch": ("bosch",), "Dyson": ("dyson",), "Nintendo": ("nintendo",),
    "PlayStation": ("playstation",), "Xbox": ("xbox",), "Garmin": ("garmin",), "Fitbit": ("fitbit",), "Canon": ("canon",),
    "Nikon": ("nikon",), "GoPro": ("gopro",), "Logitech": ("logitech",), "Oppo": ("oppo",), "Motorola": ("motorola",),
    "Nespresso": ("nespresso",), "Dolce Gusto": ("dolce gusto",), "De'Longhi": ("de'?longhi",), "Krups": ("krups",),
    "KitchenAid": ("kitchenaid", "kitchen aid"), "Le Creuset": ("le creuset",), "Tefal": ("tefal",), "WMF": ("wmf",),
    "Thermomix": ("thermomix",), "Stanley": ("stanley",), "Yeti": ("yeti",), "Tupperware": ("tupperware",),
    "Lego": ("lego",), "Playmobil": ("playmobil",), "Barbie": ("barbie",), "Hot Wheels": ("hot wheels",),
    "Lindt": ("lindt",), "Ferrero": ("ferrero", "ferrero rocher"), "Milka": ("milka",), "Godiva": ("godiva",),
    "Toblerone": ("toblerone",), "Haribo": ("haribo",), "Nutella": ("nutella",), "Cadbury": ("cadbury",),
    "L'Oréal": ("l'oréal", "loreal"), "Nivea": ("nivea",), "Clinique": ("clinique",), "Lancôme": ("lancôme",),
    "Estée Lauder": ("estée lauder",), "Sephora": ("sephora",), "MAC": ("mac cosmetics",), "Natura": ("natura",),
    "O Boticário": ("o boticário", "boticário"), "Yves Saint Laurent": ("yves saint laurent", "ysl", "saint laurent"),
    "Jo Malone": ("jo malone",), "Chloé": ("chloé",), "Carolina Herrera": ("carolina herrera",),
    "Paco Rabanne": ("paco rabanne", "rabanne"), "Lush": ("lush",), "The Body Shop": ("the body shop", "body shop"),
    "Rolex": ("rolex",), "Casio": ("casio",), "Seiko": ("seiko",), "Swatch": ("swatch",), "Fossil": ("fossil",),
    "Tissot": ("tissot",), "Omega": ("omega",), "Pandora": ("pandora",), "Swarovski": ("swarovski",),
    "Tiffany": ("tiffany", "tiffany & co"), "Cartier": ("cartier",), "Ray-Ban": ("ray-?bans?",), "Oakley": ("oakley",),
    "Victoria's Secret": ("victoria'?s secret",), "Abercrombie & Fitch": ("abercrombie(?: ?& ?fitch)?",),
    "Hollister": ("hollister",), "American Eagle": ("american eagle",), "Superdry": ("superdry",), "Jordan": ("air jordans?",),
    "Hering": ("hering",), "Osklen": ("osklen",), "Farm Rio": ("farm rio",), "Reserva": ("reserva",),
    "El Corte Inglés": ("el corte inglés", "corte inglés"), "Desigual": ("desigual",), "Camper": ("camper",),
    "Zalando": ("zalando",), "Esprit": ("esprit",), "s.Oliver": ("s\\.oliver",), "Tchibo": ("tchibo",),
    "Jack & Jones": ("jack ?& ?jones",), "Boden": ("boden",), "Marks & Spencer": ("marks ?& ?spencer", "m&s"),
    "Next": ("next",), "Oysho": ("oysho",), "Sézane": ("sézane",), "Kiabi": ("kiabi",), "Celio": ("celio",),
    "Jules": ("jules",), "Petit Bateau": ("petit bateau",), "Veja": ("veja",), "Le Slip Français": ("le slip français",),
    "Merrell": ("merrell",), "Keen": ("keen",), "Teva": ("teva",), "Ecco": ("ecco",), "Geox": ("geox",),
    "On Running": ("on running", "on cloud"), "Dockers": ("dockers",), "Carhartt": ("carhartt",), "Dickies": ("dickies",),
    "Lululemon": ("lululemon",), "Gymshark": ("gymshark",), "Arc'teryx": ("arc'?teryx",), "Canada Goose": ("canada goose",),
    "Moncler": ("moncler",), "Barbour": ("barbour",), "Ted Baker": ("ted baker",), "Tory Burch": ("tory burch",),
    "Furla": ("furla",), "Maje": ("maje",), "Sandro": ("sandro",), "Loewe": ("loewe",), "Pikolinos": ("pikolinos",),
    "Lladró": ("lladró",), "Rituals": ("rituals",), "Yankee Candle": ("yankee candles?",), "Diptyque": ("diptyque",),
    "Clarins": ("clarins",), "Kiehl's": ("kiehl'?s",), "The Ordinary": ("the ordinary",), "CeraVe": ("cerave",),
    "Aesop": ("aesop",), "Bath & Body Works": ("bath ?& ?body works", "bath and body works"),
    "L'Occitane": ("l'occitane",), "Yves Rocher": ("yves rocher",), "Granado": ("granado",), "Smeg": ("smeg",),
    "Ninja": ("ninja",), "Instant Pot": ("instant pot",), "Vitamix": ("vitamix",), "Zwilling": ("zwilling",),
    "Fissler": ("fissler",), "Staub": ("staub",), "Bialetti": ("bialetti",), "Hasbro": ("hasbro",), "Mattel": ("mattel",),
    "Fisher-Price": ("fisher-price",), "Jellycat": ("jellycat",), "Ravensburger": ("ravensburger",), "Schleich": ("schleich",),
    "Nerf": ("nerf",), "Sonos": ("sonos",), "Marshall": ("marshall",), "Sennheiser": ("sennheiser",), "Anker": ("anker",),
    "Fujifilm": ("fujifilm", "fuji"), "Polaroid": ("polaroid",), "Kindle": ("kindle",), "Leonidas": ("leonidas",),
    "Neuhaus": ("neuhaus",), "Guylian": ("guylian",), "Ritter Sport": ("ritter sport",), "Nestlé": ("nestlé",),
    "Cacau Show": ("cacau show",), "Kopenhagen": ("kopenhagen",), "Garoto": ("garoto",), "Renner": ("renner",),
    "C&A": ("c&a", "c & a"), "Riachuelo": ("riachuelo",), "Montblanc": ("mont ?blanc",),
}
# Brands that are also ordinary words: a lowercase mention only counts next to a
# preference/avoidance cue ("apple preferred", "no mango pls"); a capitalised one always.
_AMBIGUOUS_BRANDS: Final = frozenset({
    "Apple", "Coach", "Gap", "Vans", "Mango", "Guess", "Champion", "Puma", "Converse", "Next", "Brooks", "Lee", "Jordan",
    "Diesel", "Columbia", "Patagonia", "Stanley", "Yeti", "Omega", "Pandora", "Lush", "Canon", "Natura", "Reserva",
    "Melissa", "Tommy", "Kappa", "Fossil", "Tiffany", "Jules", "Camper", "Esprit", "Desigual", "Beats", "Google",
    "Amazon", "LG", "HP", "Calvin Klein", "Louis Vuitton", "Hermès", "New Balance", "Hering", "Celio", "Crocs", "Lego",
    "Boden", "Veja", "Oppo", "Umbro", "Fila", "Havaianas", "Tumi", "Kipling", "Salomon", "Keen", "Ninja", "Marshall",
    "Staub", "Garoto", "Anker", "Kindle", "Sandro", "Maje", "Teva", "Rituals", "Granado", "Montblanc",
})
_BRAND_SHORT_ALIASES: Final = frozenset({"nb", "ck", "lv", "hm", "tnf", "lg", "hp", "d&g", "m&s", "tommy"})
_BRAND_CUE_BEFORE_RE: Final = re.compile(
    r"(?:like|likes|love|loves|prefer|prefers|fan of|into|hates?|no|not|avoid|only|from|brand|anything|nothing from|"
    r"sin|nada de|me gusta|le gusta|le encanta|prefiere|marca|de la marca|sans|pas de|aime|adore|préfère|marque|kein\w*|"
    r"nicht|mag|liebt|marke|von|sem|curte|gosta de|ama|adora|prefere|nada da|da marca|or|o|ou|oder|y|et|und|e|and|"
    r"que no sea|não quero|no quiero)\s+(?:the |la |le |el |de |da |der |die |das |des )?$"
)
_BRAND_CUE_AFTER_RE: Final = re.compile(
    r"^\s*(?:preferred|preferably|pls|please|or similar|fan|de préférence|de preferencia|bevorzugt|de preferência|"
    r"if possible|brand|si possible|si es posible|se possível|or|o|ou|oder|and|y|et|und|e|lover|stuff|products?|\?)(?!\w)"
)
_BRAND_TIME_AFTER_RE: Final = re.compile(
    r"^\s+(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun|week|weekend|month|"
    r"year|day|time|one|size|pie|juice|cider|tree|crumble|sauce|slices?)(?!\w)"
)
_BRAND_FORMAT_AFTER_RE: Final = re.compile(
    r"^\s*-?\s*(?:compatible|compatibles|kompatibel\w*|compatível|compatíveis|style|type|like|knock-?offs?|dupes?|"
    r"alternatives?|inspired|copy|copies|imitation)(?!\w)"
)
# Brand-like capitalised names after these cues count even when the store does not know them.
_UNKNOWN_BRAND_CUES: Final[Mapping[str, str]] = {
    "en": r"(?:loves?|likes?|prefers?|preferably|fan of|big fan of|into|obsessed with|hates?|no|not|avoid|anything but|"
          r"nothing from|only wears|only uses|wears|from the brand|brand)",
    "es": r"(?:le encanta|le encantan|le gusta|le gustan|me gusta|me gustan|prefiere|prefiero|fan de|sin|nada de|no quiero|"
          r"que no sea|marca|de la marca|odia)",
    "fr": r"(?:aime|adore|préfère|fan de|sans|pas de|pas|sauf|marque|de la marque|déteste|que du)",
    "de": r"(?:marke|von der marke|keine marke|nichts von|fan von)",
    "pt": r"(?:curte|gosta de|ama|adora|prefere|fã de|sem|nada de|não quero|nao quero|marca|da marca|odeia)",
}
_NOT_BRANDS: Final = frozenset(
    "i i'm im the a an it this that my your he she we they please pls thanks hi hello hey ok yes no not and or but for "
    "size eu us uk usd eur gbp brl xl xs xxl l m s christmas navidad noël noel weihnachten natal black friday "
    "monday tuesday wednesday thursday friday saturday sunday "
    # nationalities, cuisines and places are tastes, not brands ("she loves Italian food", "fan de Paris")
    "italian french spanish german english british american mexican japanese chinese korean thai indian greek "
    "brazilian portuguese irish scottish asian european african italien français française espagnol allemand "
    "italiano italiana francés francesa alemán inglés italienisch französisch spanisch japanisch brasileiro "
    "brasileira paris london new york rome roma madrid barcelona berlin lisboa rio tokyo".split()
)

# Clause stop for quantities: numbers preceded by these are not item counts.
_QUANTITY_NOUN_STOP_RE: Final = re.compile(
    r"^\s?(?:years?|yrs?|yo|y\.o\.|ans|an|años?|jahre?n?|jährige\w*|anos?|months?|meses|mois|monate?n?|weeks?|semanas?|"
    r"semaines?|wochen?|days?|días?|jours?|tage?n?|dias?|hours?|horas?|heures?|stunden?|uhr|h|am|pm|minutes?|mins?|"
    r"people|persons?|personas?|personnes?|personen|pessoas?|guests?|invitados|invités|gäste|convidados|kids?|children|"
    r"hijos|enfants|kinder|filhos|friends|amigos|amis|freunde|colleagues|compañeros|collègues|kollegen|colegas|"
    r"percent|%|cm|mm|km|kg|g|gr|grams?|ml|cl|l|lbs?|oz|inch|inches|ft|mah|gb|tb|mb|w|v|hz|mp|pro|max|plus|mini|ultra|"
    r"series|gen|th|st|nd|rd|er|e|ème|º|ª|°|times|veces|fois|mal|vezes|stars?|estrellas|étoiles|sterne|estrelas|"
    r"-?ish|or so|installments?|instalments?|payments?|cuotas|plazos|mensualités|versements|raten|parcelas|prestações|"
    r"of (?:them|those|these)\b(?<!x)|de (?:ellos|ellas)|dollars?|euros?|bucks|reais|pounds?|quid|pavos|balles|mäuse|"
    r"orders?|pedidos?|commandes?|bestellung\w*|a\b|à\b|y\b|and\b|et\b|und\b|e\b|or\b|o\b|ou\b|oder\b|to\b|-)(?!\w)",
    re.IGNORECASE,
)
_QUANTITY_PREFIX_STOP_RE: Final = re.compile(
    r"(?:#|no\.|nº|n°|order|pedido|commande|bestellung|número|numero|nummer|is|está|tiene|tem|hat|has|wird|turns|"
    r"turning|cumple|fait|aged?|my|mis|mes|meine|meus|minhas|our|iphone|galaxy|pixel|ps|series|"
    r"version|model|modelo|modèle|gen|top|los|las|les|die|the|au|aux|los|para)\s*$",
    re.IGNORECASE,
)
_QUANTITY_CUE_RE: Final[Mapping[str, re.Pattern[str]]] = {
    "en": re.compile(r"(?:make (?:it|that)|change (?:it |that )?to|i'?ll take|i'?d like|i want|i need|need|get me|order|"
                     r"buy|send|pack of|set of|box of|bundle of|lot of|case of)\s+$"),
    "es": re.compile(r"(?:mejor|que sean|quiero|necesito|ponme|pon|serían|dame|pack de|caja de|lote de|set de|juego de|"
                     r"paquete de)\s+$"),
    "fr": re.compile(r"(?:plutôt|je veux|je voudrais|il me faut|j'en veux|mettez|lot de|pack de|boîte de|coffret de|besoin de|je prends|"
                     r"paquet de)\s+$"),
    "de": re.compile(r"(?:lieber|ich will|ich möchte|ich brauche|brauche|nehme|ich nehme|packung mit|set mit|"
                     r"set aus|karton mit|box mit)\s+$"),
    "pt": re.compile(r"(?:melhor|quero|preciso de|preciso|manda|me vê|kit com|kit de|pacote com|caixa com|"
                     r"pacote de|caixa de|lote de)\s+$"),
}


# ---------------------------------------------------------------------------
# Compiled vocabularies (per language, cached)
# ---------------------------------------------------------------------------


@cache
def _vocab(kind: str, lang: str) -> _Compiled:
    tables: dict[str, Mapping[str, _Table]] = {
        "colors": _COLORS, "materials": _MATERIALS, "diets": _DIETS, "allergens": _ALLERGENS,
        "soft_colors": _SOFT_COLORS, "recipients": _RECIPIENTS, "occasions": _OCCASIONS, "weekdays": _WEEKDAYS,
        "weekday_short": _WEEKDAY_SHORT,
        "months": _MONTHS,
    }
    return _compile(_merge_tables(tables[kind], lang))


@cache
def _cue_regex(kind: str, lang: str) -> re.Pattern[str]:
    cue_tables: dict[str, Mapping[str, tuple[str, ...]]] = {
        "negation": _NEGATION_CUES, "instead": _INSTEAD_CUES, "correction": _CORRECTION_CUES,
        "allergy": _ALLERGY_WORDS, "self": _SELF_EXPLICIT, "identity": _SELF_IDENTITY, "fake_leather": _FAKE_LEATHER,
        "shoe": _SHOE_WORDS, "numeric_clothing": _NUMERIC_CLOTHING_WORDS,
    }
    patterns = cue_tables[kind].get(lang, ())
    return re.compile("|".join(_rx(p) for p in sorted(patterns, key=len, reverse=True)) or r"(?!x)x")


@cache
def _opener_regex(lang: str) -> re.Pattern[str]:
    openers = "|".join(_rx(p) for p in sorted(_CORRECTION_OPENERS[lang], key=len, reverse=True))
    negative = "|".join(_rx(p) for p in sorted(_NEGATIVE_OPENERS[lang], key=len, reverse=True))
    return re.compile(r"^\W*(?:(?:" + openers + r")(?=\s*[,.!:;-]|\s+\w)|(?:" + negative + r")\s*[,.!:;-])")


@cache
def _money_cue_regex(kind: str, lang: str) -> re.Pattern[str]:
    table = {"max": _MAX_CUES, "min": _MIN_CUES, "around": _AROUND_CUES}[kind]
    cues = "|".join(_rx(p).replace("(?!\\w)", "") for p in sorted(table[lang], key=len, reverse=True))
    fillers = r"(?:\s*(?::|is|of|de|do|da|von|à|a|los|las|les|die|the|now|only|just|total|in total|es|est|ist|é|ahora|agora|jetzt))*"
    return re.compile(r"(?:" + cues + r")" + fillers + r"\s*$")


@cache
def _currency_after_regex() -> re.Pattern[str]:
    words = "|".join(f"(?P<{code}>{'|'.join(ws)})" for code, ws in _CURRENCY_WORDS.items())
    symbols = "|".join(re.escape(s) for s, _ in _CURRENCY_SYMBOLS)
    return re.compile(r"^\s?(?P<k>k|mil(?= ))?\s?(?:(?P<sym>" + symbols + r")|(?:" + words + r")(?!\w))")


_CURRENCY_NAMED_RE: Final = re.compile(
    r"(?<!\w)(?:in|en|em|auf|à|a|of|de)\s+(?:(?P<EUR>euros?)|(?P<USD>dollars?|dólares|dolares|usd)|"
    r"(?P<GBP>pounds|libras|livres|pfund|gbp)|(?P<BRL>reais|brl))(?!\w)"
)
_CURRENCY_BEFORE_RE: Final = re.compile(
    r"(?P<sym>r\$|us\$|u\$s|u\$|\$|€|£|(?<!\w)(?:eur|usd|gbp|brl)(?!\w))\s?$"
)

# ---------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------


@dataclass
class _Text:
    """A cleaned message: ``raw`` keeps case, ``low`` is lowercase with aligned offsets."""

    raw: str
    low: str
    lang: str
    excluded: list[tuple[int, int]]  # negation scopes ("no red")
    dropped: list[tuple[int, int]]  # replacement scopes ("instead of 2")
    used: list[tuple[int, int]] = field(default_factory=list)  # numbers already claimed by a field

    def in_scope(self, start: int, scopes: Sequence[tuple[int, int]]) -> bool:
        return any(s <= start < e for s, e in scopes)

    def negated(self, start: int) -> bool:
        return self.in_scope(start, self.excluded) or self.in_scope(start, self.dropped)

    def is_used(self, start: int, end: int) -> bool:
        return _overlaps(start, end, self.used)

    def use(self, start: int, end: int) -> None:
        self.used.append((start, end))


def _scope_after(low: str, cue_start: int, cue_end: int) -> tuple[int, int] | None:
    """The span a cue governs: up to five words, stopping at punctuation or a contrast word."""
    rest = low[cue_end:cue_end + 120]
    punct = _SCOPE_PUNCT_RE.search(rest)
    limit = punct.start() if punct else len(rest)
    first = re.match(r"\s*[\w']+", rest)
    if first:
        # a stop word right after the cue is what it negates ("pas pour mon fils", "não quero X")
        later = _SCOPE_END_RE.search(rest, first.end())
        if later and later.start() < limit:
            limit = later.start()
    words = list(re.finditer(r"\S+", rest[:limit]))
    if not words:
        return None
    end = words[min(_SCOPE_WORDS, len(words)) - 1].end()
    # a list joined by "or" stays negated: "no shein, temu or zara"
    while (more := re.match(r"\s+(?:or|nor|ni|ou|oder|o)\s+[^\s,.;:!?]+", rest[end:limit])) is not None:
        end += more.end()
    return cue_start, cue_end + end


def _scopes(low: str, cue: re.Pattern[str]) -> list[tuple[int, int]]:
    """Spans governed by every match of ``cue``."""
    return [span for m in cue.finditer(low) if (span := _scope_after(low, m.start(), m.end())) is not None]


def _prepare(text: str, language: str | None) -> _Text:
    raw = _clean(text)
    lang = _normalize_language(language) or detect_language(raw)
    low = _lower(raw)
    excluded = _scopes(low, _cue_regex("negation", lang))
    dropped = _scopes(low, _cue_regex("instead", lang))
    # "lieber schwarz als braun", "rather red than pink": the second choice is set aside
    for m in _RATHER_THAN_RE.finditer(low):
        span = _scope_after(low, m.start("than"), m.end("than"))
        if span is not None:
            dropped.append(span)
    # "-free" / "frei" right after a word negates that word only ("plastic-free").
    for m in re.finditer(r"(?<!\w)(\w+?)\s?-?\s?(?:free|frei\w*)(?!\w)", low):
        excluded.append((m.start(1), m.end(1)))
    return _Text(raw=raw, low=low, lang=lang, excluded=excluded, dropped=dropped)


def _before(text: str, end: int, window: int = 120) -> str:
    """The text just before ``end``: enough for the end-anchored cue patterns, and linear on long messages."""
    return text[max(0, end - window):end]


def _numbers(t: _Text) -> list[tuple[int, int, str]]:
    regex = _NUMBER_RE_FR if t.lang == "fr" else _NUMBER_RE
    return [(m.start(), m.end(), m.group()) for m in regex.finditer(t.low)]


# --- deadline -----------------------------------------------------------------


def _number_word_pattern(lang: str) -> str:
    words = [w for w in _NUMBER_WORDS[lang] if " " not in w]
    return "|".join(_rx(w).replace("(?<!\\w)", "").replace("(?!\\w)", "") for w in words)


def _count_value(token: str, lang: str) -> int | None:
    token = token.strip()
    if token.isdigit():
        return int(token)
    if token in _ONE_WORDS[lang]:
        return 1
    for word, value in _NUMBER_WORDS[lang].items():
        if _rx_re(word).fullmatch(token):
            return value
    return None


def _deadline_candidates(t: _Text) -> list[tuple[int, int, Deadline]]:
    lang, low = t.lang, t.low
    found: list[tuple[int, int, Deadline]] = []

    # "in 3 days", "within a week", "en 3 días", "sous 48 jours", "in 2 Tagen", "em 5 dias"
    day_words, week_words = _DAY_UNITS[lang]
    ones = "|".join(_ONE_WORDS[lang])
    count = rf"(?P<n>\d{{1,3}}|{_number_word_pattern(lang)}|{ones})"
    unit = rf"(?P<u>{_rx(day_words)}|{_rx(week_words)})"
    cue = _rx(_DAY_COUNT_CUES[lang])
    hours = _HOUR_UNITS[lang]
    for m in re.finditer(rf"(?:{cue})\s+(?P<n>\d{{2,3}})\s*{_rx(hours)}", low):
        hours_n = int(m.group("n"))
        if hours_n >= 24 and hours_n % 24 == 0:
            days_n = hours_n // 24
            found.append((m.start(), m.end(), Deadline(f"within {days_n} day" + ("s" if days_n > 1 else ""), None, days_n)))
    lower_bound = r"(?:\d{1,2}\s*(?:-|to|a|à|bis|ou|or|o|e|y)\s*)?"  # "in 2-3 days" counts the upper bound
    for m in re.finditer(rf"(?<!\w)(?P<cue>{cue})\s+{lower_bound}{count}\s*{unit}", low):
        if _AGO_RE.match(low[m.end():]) or _AGO_BEFORE_RE.search(_before(low, m.start())):
            continue
        n_text = m.group("n")
        if n_text in _ONE_WORDS[lang] and not m.group("cue"):
            continue
        n = _count_value(n_text, lang)
        if n is None or n == 0 or n > 90:
            continue
        is_week = _rx_re(week_words).fullmatch(m.group("u")) is not None
        if is_week:
            days = n * 7
            relative = "within a week" if n == 1 else f"within {n} weeks"
        else:
            days = n
            relative = f"within {n} day" if n == 1 else f"within {n} days"
        found.append((m.start(), m.end(), Deadline(relative, None, days)))

    # tomorrow / day after tomorrow / today
    for canon, patterns in _RELATIVE_DAYS[lang].items():
        for p in patterns:
            for m in _rx_re(p).finditer(low):
                found.append((m.start(), m.end(), Deadline(canon, None, _RELATIVE_OFFSETS[canon])))

    # "this weekend", "next week"
    for canon, patterns in _PERIOD_DEADLINES[lang].items():
        deadline = Deadline("by the weekend", "saturday", None) if canon == "weekend" else Deadline("by next week", None, 7)
        for p in patterns:
            for m in _rx_re(p).finditer(low):
                found.append((m.start(), m.end(), deadline))

    # weekdays, with "next" markers
    preps = _DEADLINE_PREPOSITIONS[lang]
    weekday_hits = list(_scan(low, _vocab("weekdays", lang)))
    for hit in _scan(low, _vocab("weekday_short", lang), [(h.start, h.end) for h in weekday_hits]):
        if re.search(rf"(?<!\w){preps}\s+(?:the |o |a |el |next |this |la )?$", _before(low, hit.start)):
            if lang == "de" and not t.raw[hit.start].isupper():
                continue
            weekday_hits.append(hit)
    for hit in weekday_hits:
        before, after = _before(low, hit.start), low[hit.end:]
        is_next = bool(re.search(_NEXT_BEFORE[lang], before) or re.match(_NEXT_AFTER[lang], after))
        relative = f"by next {hit.canon}" if is_next else f"by {hit.canon}"
        found.append((hit.start, hit.end, Deadline(relative, hit.canon, None)))

    # absolute dates: "dec 20", "20 de diciembre", "20. Dezember", "by 20/12"
    for hit in _scan(low, _vocab("months", lang)):
        before, after = _before(low, hit.start), low[hit.end:]
        day: int | None = None
        start, end = hit.start, hit.end
        m_after = re.match(r"^\.?\s*(\d{1,2})(?:st|nd|rd|th)?(?!\d)", after)
        m_before = re.search(r"(?<!\d)(\d{1,2})(?:st|nd|rd|th|er|º|\.)?\s*(?:of\s+|de\s+)?$", before)
        if m_before:
            day, start = int(m_before.group(1)), m_before.start()
        elif m_after and lang == "en":
            day, end = int(m_after.group(1)), hit.end + m_after.end()
        if day is None or not 1 <= day <= 31:
            continue
        if lang == "en" and hit.canon == "may" and not re.search(rf"(?<!\w){preps}\s+(?:the\s+)?$|\d(?:st|nd|rd|th)\s+(?:of\s+)?$",
                                                                 _before(low, hit.start)) and not m_after:
            continue  # "those 2 may be too small"
        found.append((start, end, Deadline(f"by {hit.canon} {day}", None, None)))
    date_cue = rf"(?<!\w){preps}\s+(?:the\s+|le\s+|o\s+|el\s+|dia\s+|día\s+|den\s+)?"
    not_money = r"(?!\s?(?:k\b|mil\b|€|\$|£|r\$|%|eur|usd|reais|euros?|dollars?|bucks|pavos|balles|kg|g\b|l\b))"
    for m in re.finditer(date_cue + r"(\d{1,2})[./](\d{1,2})(?:[./](?:\d{2}|\d{4}))?\.?(?![\d/])" + not_money, low):
        a, b = int(m.group(1)), int(m.group(2))
        month, day = (a, b) if lang == "en" else (b, a)
        if 1 <= month <= 12 and 1 <= day <= 31:
            mon = next(k for k, v in _MONTH_NUMBERS.items() if v == month)
            found.append((m.start(1), m.end(), Deadline(f"by {mon} {day}", None, None)))
    day_only = {
        "en": r"(?:by|before|on|for) the (\d{1,2})(?:st|nd|rd|th)(?!\w)",
        "es": r"(?:para|antes|hasta) (?:el )?día (\d{1,2})(?!\d)",
        "fr": r"(?:pour|avant|d'ici) le (\d{1,2})(?!\d|\s*(?:€|euros?|\$|ans))",
        "de": r"(?:bis|vor) (?:zum |dem )(\d{1,2})\.(?!\d)",
        "pt": r"(?:até|para|pra|antes d[oe]) (?:o )?dia (\d{1,2})(?!\d)",
    }[lang]
    for m in re.finditer(day_only, low):
        day = int(m.group(1))
        if 1 <= day <= 31 and not _overlaps(m.start(1), m.end(1), [(s, e) for s, e, _ in found]):
            suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}.get(day, "th")
            found.append((m.start(1), m.end(), Deadline(f"by the {day}{suffix}", None, None)))
    return found


def _extract_deadline(t: _Text) -> tuple[Deadline | None, bool]:
    """The first deadline not negated; the flag says whether another one was corrected away."""
    candidates = sorted(_deadline_candidates(t), key=lambda c: (c[0], -(c[1] - c[0])))
    kept: list[tuple[int, int, Deadline]] = []
    dropped = False
    for start, end, deadline in candidates:
        if any(_overlaps(start, end, [(s, e)]) for s, e, _ in kept):
            continue
        if t.negated(start):
            dropped = True
            t.use(start, end)
            continue
        kept.append((start, end, deadline))
        t.use(start, end)
    if not kept:
        return None, False
    return kept[0][2], dropped


# --- sizes --------------------------------------------------------------------


def _context(t: _Text, kind: str) -> bool:
    return bool(_cue_regex(kind, t.lang).search(t.low) or (t.lang != "en" and _cue_regex(kind, "en").search(t.low)))


def _numeric_size(value: Decimal, t: _Text, cue_kind: str, marker: str | None) -> Size:
    """Pick the size system of a number from its cue, marker and the product words around."""
    shoe_ctx = _context(t, "shoe")
    cloth_ctx = _context(t, "numeric_clothing")
    text = _format_size_number(value)
    if marker == "br":
        return Size("other", f"BR {text}")
    if marker in ("us", "uk"):
        if cloth_ctx and not shoe_ctx:
            return Size("numeric", text)
        return Size(f"shoe_{marker}", text)
    if marker == "eu":
        return Size("numeric", text) if (cloth_ctx and not shoe_ctx) else Size("shoe_eu", text)
    whole = value == value.to_integral_value()
    if whole and int(value) in _KIDS_HEIGHT_SIZES and int(value) >= 50:
        return Size("other", text)
    half = not whole
    shoe = cue_kind == "shoe" or (shoe_ctx and cue_kind != "waist") or (half and not cloth_ctx)
    if not shoe and not cloth_ctx and t.lang != "en" and whole and 16 <= value <= 33:
        shoe = True  # children's shoe sizes
    if shoe:
        if t.lang == "pt":
            return Size("other", f"BR {text}")
        if value < 16:
            return Size("shoe_us", text)
        return Size("shoe_eu", text)
    return Size("numeric", text)


_SIZE_NUMBER: Final = r"\d{1,3}(?:[.,]5)?"
_LETTER_ALTERNATIVES: Final = (
    r"(?:xxxs|xxs|2xs|xs|xxxl|xxl|2xl|3xl|4xl|xl|x-large|xx-large|x-small|extra[- ]large|extra[- ]small|small|medium|"
    r"large|s|m|l)"
)
_BR_LETTER_ALTERNATIVES: Final = r"(?:xgg|egg|xg|eg|gg|pp|g1|g2|p|m|g)"


def _letter_size(token: str, lang: str) -> str | None:
    token = token.strip().lower()
    if lang == "pt" and token in _BR_LETTER_SIZES:
        return _BR_LETTER_SIZES[token]
    return _LETTER_SIZES.get(token)


def _extract_sizes(t: _Text) -> tuple[list[Size], bool]:
    """Sizes in text order, without corrected-away ones; the flag tells whether one was dropped."""
    low, raw, lang = t.low, t.raw, t.lang
    found: list[tuple[int, Size]] = []
    dropped = False

    def add(start: int, end: int, size: Size) -> None:
        nonlocal dropped
        if t.is_used(start, end):
            return
        t.use(start, end)
        if t.negated(start):
            dropped = True
            return
        found.append((start, size))

    # waist/length: "W32 L34", "32/34", "32x32", "W32", "32 waist"
    waist_length = (
        r"(?<!\w)(?:waist\s?)?(\d{2})\s?(?:\"|in|inch)?\s?(?:waist|w)\s*[,/x&]?\s*(?:and\s)?(?:length|inseam|leg|l)?\s?(\d{2})\s?"
        r"(?:\"|in|inch)?\s?(?:length|inseam|leg|l)(?!\w)"
        r"|(?<!\w)waist\s?(\d{2})\s*[,/x&]?\s*(?:and\s)?(?:length|inseam|leg)\s?(\d{2})(?!\d)"
    )
    for m in re.finditer(waist_length, low):
        waist, length = m.group(1) or m.group(3), m.group(2) or m.group(4)
        add(m.start(), m.end(), Size("numeric", f"{waist}/{length}"))
    for m in re.finditer(r"(?<!\w)w\s?(\d{2})\s*(?:[/x]|\s)?\s*l\s?(\d{2})(?!\w)", low):
        add(m.start(), m.end(), Size("numeric", f"{m.group(1)}/{m.group(2)}"))
    for m in re.finditer(r"(?<![\w/.,])(\d{2})\s?[/x]\s?(\d{2})(?![\w/]|[.,]\d)", low):
        a, b = int(m.group(1)), int(m.group(2))
        if 23 <= a <= 50 and 26 <= b <= 38:
            add(m.start(), m.end(), Size("numeric", f"{a}/{b}"))
    for m in re.finditer(r"(?<!\w)w\s?(\d{2})(?!\w)|(?<![\w.,])(\d{2})\s?(?:inch |\" |'' )?(?:waist|de cintura|cintura|"
                         r"tour de taille|bundweite)(?!\w)|(?<!\w)(?:waist|cintura|bundweite)\s?(\d{2})(?!\d)", low):
        value = m.group(1) or m.group(2) or m.group(3)
        add(m.start(), m.end(), Size("numeric", value))

    # system markers: "US 10", "10 US", "uk 9", "EU 42", "BR 40"
    pronoun_before = re.compile(r"(?:for|to|with|send|give|tell|let|help|of|from|ship|call|email|show|all of|about|ask)\s+$")
    for m in re.finditer(rf"(?<!\w)(us|uk|eu|br)\s?(?:size\s?)?({_SIZE_NUMBER})(?![\d.,]?\d)(?!\s?(?:\$|dollars?|usd))", low):
        if m.group(1) == "us" and pronoun_before.search(_before(low, m.start())):
            continue
        value = parse_number(m.group(2), lang)
        if value is not None:
            add(m.start(), m.end(), _numeric_size(value, t, "generic", m.group(1)))
    for m in re.finditer(rf"(?<![\w.,])({_SIZE_NUMBER})\s?(us|uk|eu|br)(?!\w)", low):
        value = parse_number(m.group(1), lang)
        if value is not None:
            add(m.start(), m.end(), _numeric_size(value, t, "generic", m.group(2)))

    # cue + value list: "size M", "talla 42", "sizes S, M and L", "pointure 39", "Gr. 42,5", "tamanho GG"
    letter = _BR_LETTER_ALTERNATIVES + "|" + _LETTER_ALTERNATIVES if lang == "pt" else _LETTER_ALTERNATIVES
    value_re = rf"(?:(?:{letter})(?![\w'])|{_SIZE_NUMBER}(?![\d]))"
    joiner = r"\s*(?:,|/|&|(?<!\w)(?:and|or|y|o|et|ou|und|oder|e)(?!\w))\s*"
    cues = [c for c in (*_SIZE_CUES["*"], *_SIZE_CUES.get(lang, ())) if c]
    for pattern, kind in cues:
        cue_re = _rx(pattern) + r"\s*(?::|de|du|of|is|el|la|o|a|an|da)?\s*"
        for m in re.finditer(cue_re + rf"(?P<vals>{value_re}(?:{joiner}{value_re})*)", low):
            for v in re.finditer(value_re, m.group("vals")):
                start = m.start("vals") + v.start()
                end = m.start("vals") + v.end()
                token = v.group()
                letter_value = _letter_size(token, lang)
                if letter_value is not None:
                    add(start, end, Size("clothing", letter_value))
                    continue
                number = parse_number(token, lang)
                if number is None or number == 0:
                    continue
                # a system marker right after the number ("sz 10 US")
                marker_m = re.match(r"^\s?(us|uk|eu|br)(?!\w)", low[end:])
                marker = marker_m.group(1) if marker_m else None
                if marker_m:
                    end += marker_m.end()
                if _NON_MONEY_UNITS_RE.match(low[end:]) and not marker:
                    continue
                add(start, end, _numeric_size(number, t, kind, marker))

    # standalone letter sizes: "size M" is handled; here "XL", ", M," or "she's an XS"
    mostly_upper = sum(c.isupper() for c in raw) > 0.6 * max(1, sum(c.isalpha() for c in raw))
    standalone = r"(?<![\w&'./\-])(XXXS|XXS|XS|XXXL|XXL|2XL|3XL|4XL|XL|S|M|L)(?![\w&'./\-])"
    if lang == "pt":
        single_p = "|P" if _PT_GARMENT_RE.search(low) else ""
        standalone = (r"(?<![\w&'./\-])(XXXS|XXS|XS|XXXL|XXL|2XL|3XL|4XL|XL|XGG|EGG|XG|EG|GG|PP|S|M|L|G" + single_p
                      + r")(?![\w&'./\-])")
    for m in re.finditer(standalone, raw):
        token = m.group(1)
        if len(token) == 1 and mostly_upper:
            continue
        if re.match(r"^\s?\d", raw[m.end():]) or re.search(r"\d\s?$", _before(raw, m.start())):
            continue  # "L 34", "2 L"
        value = _letter_size(token, lang)
        if value is not None:
            add(m.start(), m.end(), Size("clothing", value))
    for m in re.finditer(r"(?<![\w&'./\-])(xxs|xs|xxl|xxxl|xl|2xl|3xl)(?![\w&'./\-])", low):
        value = _letter_size(m.group(1), lang)
        if value is not None:
            add(m.start(), m.end(), Size("clothing", value))

    # "sambas in 43", "Converse del 39": a bare number in the adult shoe range after "in"
    preposition = {"en": "in", "es": "en|del", "fr": "en|du", "de": "in|im", "pt": "em|no|na"}[lang]
    for m in re.finditer(rf"(?<!\w)(?:{preposition})\s+(\d{{2}}(?:[.,]5)?)(?![\d\w])(?!\s?(?:€|\$|£|%))", low):
        value = parse_number(m.group(1), lang)
        if value is None or not 35 <= value <= 48 or _NON_MONEY_UNITS_RE.match(low[m.end():]):
            continue
        add(m.start(1), m.end(), _numeric_size(value, t, "shoe", None))

    # "tênis adidas 38", "sneakers 42 please": with shoe words around, a bare adult shoe size
    if not found and _context(t, "shoe"):
        for start, end, text in _numbers(t):
            value = parse_number(text, lang)
            after = low[end:]
            if (
                value is None or not 34 <= value <= 48 or t.is_used(start, end)
                or _NON_MONEY_UNITS_RE.match(after) or _currency_after_regex().match(after)
                or _CURRENCY_BEFORE_RE.search(_before(low, start))
                or any(_money_cue_regex(kind, lang).search(_before(low, start)) for kind in ("max", "min", "around"))
            ):
                continue
            add(start, end, _numeric_size(value, t, "shoe", None))

    found.sort(key=lambda f: f[0])
    return _unique(size for _, size in found), dropped and bool(found)


# --- budget -------------------------------------------------------------------


def _currency_near(t: _Text, start: int, end: int) -> tuple[str | None, int, int, bool]:
    """Currency attached to the number at [start, end): (code, new_start, new_end, has_k)."""
    code: str | None = None
    k = False
    m_after = _currency_after_regex().match(t.low[end:])
    if m_after:
        k = bool(m_after.group("k"))
        sym = m_after.group("sym")
        code = dict(_CURRENCY_SYMBOLS)[sym] if sym else next((c for c in _CURRENCY_WORDS if m_after.group(c)), None)
        if code is not None:
            end += m_after.end()
    if code is None:
        m_k = re.match(r"^\s?k(?!\w)", t.low[end:])
        if m_k:
            k = True
            after_k = _currency_after_regex().match(t.low[end + m_k.end():])
            if after_k and (after_k.group("sym") or any(after_k.group(c) for c in _CURRENCY_WORDS)):
                sym = after_k.group("sym")
                code = dict(_CURRENCY_SYMBOLS)[sym] if sym else next(c for c in _CURRENCY_WORDS if after_k.group(c))
                end += m_k.end() + after_k.end()
            else:
                end += m_k.end()
    if code is None and t.lang == "fr" and re.match(r"^e(?!\w)", t.low[end:]):
        code, end = "EUR", end + 1  # "50e"
    m_before = _CURRENCY_BEFORE_RE.search(_before(t.low, start))
    if m_before:
        sym = m_before.group("sym")
        code = code or {"r$": "BRL", "us$": "USD", "u$s": "USD", "u$": "USD", "$": "USD", "€": "EUR", "£": "GBP",
                        "eur": "EUR", "usd": "USD", "gbp": "GBP", "brl": "BRL"}[sym]
        start = m_before.start()
    return code, start, end, k


@dataclass
class _Amount:
    start: int
    end: int
    value: Decimal
    currency: str | None
    thousands: bool = False  # written with "k" ("2-3k")
    approximate: bool = False  # "une vingtaine d'euros"


def _money_kind(t: _Text, amount: _Amount) -> str | None:
    before, after = _before(t.low, amount.start), t.low[amount.end:]
    lang = t.lang
    candidates: list[tuple[int, str]] = []
    for kind in ("max", "min", "around"):
        for language in {lang, "en"}:
            m = _money_cue_regex(kind, language).search(before[-60:])
            if m:
                candidates.append((len(before[-60:]) - m.start(), kind))
    after_kind: str | None = None
    for kind, options in (("max", _MAX_AFTER), ("min", _MIN_AFTER), ("around", _AROUND_AFTER)):
        if re.match(r"^\s*(?:" + "|".join(options) + r")(?!\w)", after):
            after_kind = kind
            break
    if candidates:
        priority = {"around": 2, "min": 1, "max": 0}
        candidates.sort(key=lambda c: (c[0], priority[c[1]]), reverse=True)
        kind = candidates[0][1]
        if kind == "max" and after_kind in ("min", "around"):
            return after_kind
        return kind
    return after_kind


def _word_amounts(t: _Text) -> list[_Amount]:
    """Amounts written in words right before a currency ("twenty bucks", "cien euros", "une vingtaine d'euros")."""
    found: list[_Amount] = []
    for word, (value, approximate) in _MONEY_WORDS.get(t.lang, {}).items():
        for m in _rx_re(word).finditer(t.low):
            currency, _, end, _ = _currency_near(t, m.end(), m.end())
            if currency is None or t.is_used(m.start(), end):
                continue
            found.append(_Amount(m.start(), end, Decimal(value), currency, approximate=approximate))
    return found


def _extract_budget(t: _Text) -> Budget:
    """Budget bounds from ranges, cue words ("under", "hasta", "environ") and priced amounts."""
    amounts: list[_Amount] = []
    for start, end, text in _numbers(t):
        if t.is_used(start, end):
            continue
        value = parse_number(text, t.lang)
        if value is None:
            continue
        amount_currency, s, e, k = _currency_near(t, start, end)
        if k or (re.match(r"^\s?mil(?!\w)", t.low[e:]) and t.lang in ("es", "pt")):
            value *= 1000
        amounts.append(_Amount(s, e, value, amount_currency, thousands=k))
    amounts.extend(_word_amounts(t))
    amounts.sort(key=lambda a: a.start)

    bounds: dict[str, Decimal] = {}
    currency: str | None = None
    consumed: set[int] = set()

    # ranges: "between 80 and 150€", "25-40 bucks", "entre R$ 100 e R$ 300", "von 20 bis 30 Euro"
    for i in range(len(amounts) - 1):
        a, b = amounts[i], amounts[i + 1]
        if i in consumed:
            continue
        gap = t.low[a.end:b.start]
        gap = re.sub(r"r\$|us\$|\$|€|£", "", gap)
        if not re.fullmatch(rf"\s*{_RANGE_JOIN}\s*", gap):
            continue
        before = _before(t.low, a.start)
        between = _BETWEEN_RE.search(before)
        budget_cue = re.search(r"(?:budget|presupuesto|orçamento|price|precio|prix|preis|preço)\w*\s*(?:is|of|de|:|est|ist|é)?\s*$",
                               before)
        budget_after = re.match(r"^\s*(?:range|budget|price|presupuesto|orçamento|preço|prix|preis|de budget)", t.low[b.end:])
        has_currency = a.currency is not None or b.currency is not None
        joined_by_and = re.fullmatch(r"\s*(?:and|y|et|und|e)\s*", gap) is not None
        if _NON_MONEY_UNITS_RE.match(t.low[b.end:]) and not has_currency:
            continue
        if not (has_currency or budget_cue or budget_after or (between and joined_by_and)):
            continue
        first = a.value * 1000 if (b.thousands and not a.thousands and a.value * 1000 <= b.value) else a.value
        low_v, high_v = sorted((first, b.value))
        bounds["min"], bounds["max"] = low_v, high_v
        currency = currency or a.currency or b.currency
        consumed.update({i, i + 1})
        t.use(a.start, b.end)

    for i, amount in enumerate(amounts):
        if i in consumed:
            continue
        kind = "around" if amount.approximate else _money_kind(t, amount)
        if kind is None:
            if amount.currency is None or _PAST_PRICE_RE.search(t.low[max(0, amount.start - 40): amount.start]):
                continue
            kind = "max"  # "a 50€ gift": a stated price is a ceiling
        elif amount.currency is None and _NON_MONEY_UNITS_RE.match(t.low[amount.end:]):
            continue
        elif amount.currency is None and re.search(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w\-]*\s+[A-Z][\w\-]*\s+$", _before(t.raw, amount.start)):
            continue  # a model name such as "Air Max 90"
        elif amount.currency is None and kind == "max" and re.search(
            r"(?<!\w)(?:for|für|pour|por|para|tengo|tenho|spend|within)\s*$", _before(t.low, amount.start)
        ):
            # "for 30" alone is too weak without a currency
            continue
        ish = re.match(r"^\s*(?:-?ish|or so)(?!\w)", t.low[amount.end:])
        if kind == "around" and amount.currency is None and not ish and not re.search(
            r"(?:budget|presupuesto|orçamento|price|precio|prix|preis|preço|spend|gastar|dépenser|ausgeben)",
            t.low[max(0, amount.start - 40): amount.start],
        ):
            continue
        t.use(amount.start, amount.end)
        currency = currency or amount.currency
        if kind == "around":
            bounds.setdefault("min", amount.value * Decimal("0.9"))
            bounds.setdefault("max", amount.value * Decimal("1.1"))
            bounds["min"], bounds["max"] = amount.value * Decimal("0.9"), amount.value * Decimal("1.1")
        else:
            bounds[kind] = amount.value
    if bounds and currency is None:
        # "max 80, in euros" / "hasta 50 (en dólares)"
        named = _CURRENCY_NAMED_RE.search(t.low)
        if named:
            currency = next(code for code in _CURRENCY_WORDS if named.group(code))
    clean = {k: _tidy_decimal(v) for k, v in bounds.items()}
    if not clean:
        return Budget()
    return Budget(clean.get("max"), clean.get("min"), currency)


def _tidy_decimal(value: Decimal) -> Decimal:
    normalized = value.normalize()
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral_value() else normalized


# --- quantity -----------------------------------------------------------------


def _extract_quantity(t: _Text) -> tuple[int | None, bool]:
    """Item count ("2 pairs", "pack of 6", "x2 ... x1", "a couple of", "make it 3")."""
    low, lang = t.low, t.lang
    dropped = False
    multipliers = [int(m.group(1) or m.group(2)) for m in re.finditer(r"(?<!\w)x\s?(\d{1,3})(?!\w)|(?<![\w.,])(\d{1,3})\s?x(?!\w)", low)]
    if multipliers:
        return sum(multipliers), False

    candidates: list[tuple[int, int]] = []
    for start, end, text in _numbers(t):
        if t.is_used(start, end) or not text.isdigit():
            continue
        value = int(text)
        if value == 0 or value > 500:
            continue
        before, after = _before(low, start), low[end:]
        cue = _QUANTITY_CUE_RE[lang].search(before) or _QUANTITY_CUE_RE["en"].search(before)
        if _QUANTITY_PREFIX_STOP_RE.search(before) and not cue:
            continue
        model = re.search(r"(?:^|[^.!?]\s)([A-Z][\w\-]*)\s+$", _before(t.raw, start))
        if model and model.group(1) != "I" and not cue and lang != "de":  # German capitalises every noun
            continue  # "Air Max 90", "Galaxy S 23": a model number
        counts_a_noun = bool(re.match(r"^\s?(?:[\w\-]+\s){0,2}?[a-zà-ÿ][\w\-]*", after)) and not _QUANTITY_NOUN_STOP_RE.match(after)
        ends_clause = re.match(r"^\s*(?:$|[,.!?;)]|instead|en vez|au lieu|statt|em vez|please|pls|por favor|bitte|svp|stp)", after)
        if not (counts_a_noun or (cue and ends_clause)):
            continue  # "2 pairs", "6 cestas"; a bare number only after "make it", "quiero"...
        if t.negated(start):
            dropped = True
            continue
        candidates.append((start, value))
    # number words: "two candles", "a couple of pillowcases", "une douzaine de roses"
    for word, value in sorted(_NUMBER_WORDS[lang].items(), key=lambda kv: -len(kv[0])):
        for m in _rx_re(word, r"\s+(?=[a-zà-ÿ])").finditer(low):
            after = low[m.end():]
            if _QUANTITY_NOUN_STOP_RE.match(after) or t.is_used(m.start(), m.end()):
                continue
            t.use(m.start(), m.end())
            if t.negated(m.start()):
                dropped = True
                continue
            candidates.append((m.start(), value))
    if not candidates:
        return None, False
    candidates.sort()
    values = [value for _, value in candidates]
    if len(values) > 1 and values[0] != sum(values[1:]):
        return sum(values), dropped  # "3 of the white ones and 1 black" -> 4 in all
    return values[0], dropped  # "10 favours, 5 pink and 5 blue" -> 10


# --- colours, materials, dietary -----------------------------------------------


def _split_include_exclude(t: _Text, hits: Iterable[_Hit]) -> tuple[list[str], list[str]]:
    include: list[str] = []
    exclude: list[str] = []
    for hit in hits:
        if t.in_scope(hit.start, t.dropped):
            continue
        (exclude if t.in_scope(hit.start, t.excluded) else include).append(hit.canon)
    exclude = _unique(exclude)
    include = [c for c in _unique(include) if c not in exclude]
    return include, exclude


def _extract_colors(t: _Text, blocked: list[tuple[int, int]]) -> tuple[list[str], list[str]]:
    products = _COLOR_PRODUCT_WORDS.get(t.lang, frozenset())

    def plausible(hit: _Hit) -> bool:
        prev_word = re.search(r"(\w+)\s+$", _before(t.low, hit.start))
        next_word = re.match(r"^\s+(\w+)", t.low[hit.end:])
        if (prev_word and prev_word.group(1) in products) or (next_word and next_word.group(1) in products):
            return False  # "red wine", "chocolate blanco"
        surface = t.low[hit.start:hit.end]
        return not (
            hit.canon == "pink" and surface.endswith("s") and prev_word
            and (prev_word.group(1) in _FLOWER_CONTEXT or prev_word.group(1).isdigit())
        )  # "des roses", "un ramo de rosas", "12 rosas" are flowers

    strong = [h for h in _scan(t.low, _vocab("colors", t.lang), blocked) if plausible(h)]
    hits = list(strong)
    taken = [*blocked, *((h.start, h.end) for h in strong)]
    for hit in _scan(t.low, _vocab("soft_colors", t.lang), taken):
        before, after = _before(t.low, hit.start), t.low[hit.end:]
        near_other = any(
            re.fullmatch(r"[\s,/]*(?:or|and|o|y|ou|et|oder|und|e|ni|nor|&)?[\s,/]*",
                         t.low[min(other.end, hit.end):max(other.start, hit.start)]) is not None
            for other in strong
        )
        context = _COLOR_CONTEXT_BEFORE_RE.search(before) or _COLOR_CONTEXT_AFTER_RE.match(after)
        if (near_other or context) and plausible(hit):
            hits.append(hit)
    hits.sort(key=lambda h: h.start)
    return _split_include_exclude(t, hits)


def _extract_materials(t: _Text, blocked: list[tuple[int, int]]) -> tuple[list[str], list[str], list[tuple[int, int]]]:
    fake = [(m.start(), m.end()) for m in _cue_regex("fake_leather", t.lang).finditer(t.low)]
    if t.lang != "en":
        fake += [(m.start(), m.end()) for m in _cue_regex("fake_leather", "en").finditer(t.low)]
    # "a vegan wallet", "bolso vegano", "vegane Schuhe": vegan goods are leather-free, not a diet
    for m in _VEGAN_RE.finditer(t.low):
        prev_word = re.search(r"([\w\-]+)\s+$", _before(t.low, m.start()))
        next_words = re.match(r"^\s+(?:[\w\-]+\s+)?", t.low[m.end():])
        neighbours = [prev_word.group(1)] if prev_word else []
        if next_words:
            neighbours += re.findall(r"[\w\-]+", t.low[m.end(): m.end() + next_words.end() + 20])[:2]
        if any(word in _VEGAN_GOODS for word in neighbours):
            fake.append((m.start(), m.end()))
    hits = _scan(t.low, _vocab("materials", t.lang), [*blocked, *fake])
    include, exclude = _split_include_exclude(t, hits)
    if fake and "leather" not in include:
        exclude = _unique([*exclude, "leather"])
    return include, exclude, fake


def _extract_dietary(t: _Text, blocked: list[tuple[int, int]]) -> list[str]:
    labels: list[tuple[int, str]] = []
    direct = _scan(t.low, _vocab("diets", t.lang), blocked)
    for hit in direct:
        if not t.in_scope(hit.start, t.dropped):
            labels.append((hit.start, hit.canon))
    taken = [(h.start, h.end) for h in direct] + blocked
    allergy_re = _cue_regex("allergy", t.lang)
    sentences = [(m.start(), m.end()) for m in re.finditer(r"[^.!?;]+", t.low)]
    for hit in _scan(t.low, _vocab("allergens", t.lang), taken):
        sentence = next(((s, e) for s, e in sentences if s <= hit.start < e), (0, len(t.low)))
        negated = t.in_scope(hit.start, t.excluded)
        free_after = bool(_FREE_SUFFIX_RE.match(t.low[hit.end:]))
        allergy = bool(allergy_re.search(t.low[sentence[0]:sentence[1]]))
        if negated or free_after or allergy:
            labels.append((hit.start, hit.canon))
    labels.sort()
    return _unique(label for _, label in labels)


# --- recipient and occasion --------------------------------------------------------


def _extract_occasion(t: _Text) -> tuple[str | None, list[tuple[int, int]]]:
    hits = _scan(t.low, _vocab("occasions", t.lang))
    spans = [(h.start, h.end) for h in hits]
    kept = [h for h in hits if not t.in_scope(h.start, t.dropped) and not t.in_scope(h.start, t.excluded)]
    if kept:
        return kept[0].canon, spans
    if _BIRTHDAY_AGE_RE[t.lang].search(t.low):
        return "birthday", spans
    return None, spans


def _extract_recipient(t: _Text, blocked: list[tuple[int, int]]) -> tuple[str | None, bool]:
    """Best-supported recipient: "for my X" > "for me" > "my X" > "I'm vegan" > a bare mention."""
    lang, low = t.lang, t.low
    scored: list[tuple[int, int, str]] = []  # (score, -start, canon)
    dropped = False
    hits = _scan(low, _vocab("recipients", lang), blocked)
    for index, hit in enumerate(hits):
        before = _before(low, hit.start)
        after = low[hit.end:]
        # "my friend's wedding" -> friend; "my son's teacher" -> teacher
        if index + 1 < len(hits) and re.fullmatch(r"'s?\s+(?:\w+\s+)?", low[hit.end:hits[index + 1].start]):
            continue
        # "the mother of my girlfriend" is somebody else's relative
        relative_of = re.match(r"^\s+(?:of my|de mi|de ma|de mon|d'une?|von meine\w*|der meine\w*|do meu|da minha|de minha)\s", after)
        canon = "other" if relative_of and hit.canon not in ("friend", "colleague") else hit.canon
        strong_for = _FOR_RE[lang].search(before[-40:])
        possessive = _POSSESSIVE_RE[lang].search(before[-30:])
        self_contained = low[hit.start:hit.end].split()[0] in ("my", "mi", "ma", "mon", "meine", "meiner", "mein", "meinen",
                                                                "meinem", "minha", "meu", "notre")
        if _CONTACT_BEFORE_RE.search(before[-40:]):
            continue  # "talk to a manager", "hablar con una persona"
        if strong_for:
            score = 4
        elif possessive or self_contained:
            score = 3
        elif hit.canon in _NEEDS_DETERMINER:
            continue  # "kids' shoes", "a team", "Ich möchte mit einem Mitarbeiter sprechen"
        else:
            score = 1
        if t.negated(hit.start):
            dropped = True
            continue
        scored.append((score, -hit.start, canon))
    for m in _cue_regex("self", lang).finditer(low):
        if not t.negated(m.start()):
            scored.append((4 if m.group().strip().startswith(("for", "para", "pra", "pour", "für")) else 2, -m.start(), "self"))
    for m in _cue_regex("identity", lang).finditer(low):
        scored.append((2, -m.start(), "self"))
    if not scored:
        return None, False
    scored.sort(reverse=True)
    return scored[0][2], dropped


# --- brands -----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _brand_table(extra: tuple[str, ...]) -> tuple[tuple[re.Pattern[str], str, bool], ...]:
    entries: list[tuple[str, str, bool]] = []
    for canon, aliases in _KNOWN_BRANDS.items():
        for alias in aliases:
            ambiguous = canon in _AMBIGUOUS_BRANDS or alias in _BRAND_SHORT_ALIASES
            entries.append((_rx(alias), canon, ambiguous))
    known_lower = {c.lower() for c in _KNOWN_BRANDS}
    for name in extra:
        name = name.strip()
        if not name or name.lower() in known_lower:
            continue
        ambiguous = name.lower() in _COMMON_WORDS or (len(name) <= 3 and not name.isupper()) or name.islower()
        entries.append((r"(?<!\w)" + re.escape(_lower(name)).replace("\\ ", r"[\s\-]+") + r"(?!\w)", name, ambiguous))
    entries.sort(key=lambda e: -len(e[0]))
    return tuple((re.compile(p), canon, amb) for p, canon, amb in entries)


# Everyday words that happen to be brand names in some catalogs ("Essence", "Attitude").
_COMMON_WORDS: Final = frozenset(
    "essence attitude generic classic velvet touch elegance collection urban chic comfort trends fashion gold silver "
    "black white red blue green pink off white casual basic home nature natural pure true simple vision master tech "
    "glamour diva shades fun express trends beauty style modern smart original premium".split()
)


def _extract_brands(t: _Text, brands: Iterable[str]) -> tuple[list[str], list[str], list[tuple[int, int]]]:
    low, raw = t.low, t.raw
    hits: list[_Hit] = []
    spans: list[tuple[int, int]] = []
    for pattern, canon, ambiguous in _brand_table(tuple(sorted(set(brands)))):
        for m in pattern.finditer(low):
            if _overlaps(m.start(), m.end(), spans):
                continue
            if _BRAND_FORMAT_AFTER_RE.match(low[m.end():]):
                spans.append((m.start(), m.end()))
                continue
            if ambiguous and _BRAND_TIME_AFTER_RE.match(low[m.end():]):
                continue  # "next friday", "next week"
            if ambiguous:
                capitalised = (raw[m.start()].isupper() and not raw[m.start(): m.end()].isupper()) or (
                    raw[m.start(): m.end()].isupper() and len(m.group()) <= 4
                )
                cue = _BRAND_CUE_BEFORE_RE.search(_before(low, m.start())) or _BRAND_CUE_AFTER_RE.match(low[m.end():])
                sentence_start = re.search(r"(?:^|[.!?]\s*)$", _before(raw, m.start())) is not None
                if not (cue or (capitalised and not sentence_start)):
                    continue
            hits.append(_Hit(m.start(), m.end(), canon))
            spans.append((m.start(), m.end()))

    # Unknown capitalised names after a liking/avoiding cue ("she loves Jellycat").
    mostly_upper = sum(c.isupper() for c in raw) > 0.5 * max(1, sum(c.isalpha() for c in raw))
    if not mostly_upper:
        cue_src = _rx(_UNKNOWN_BRAND_CUES[t.lang]).replace("(?!\\w)", "")
        article = (
            r"(?:the |la |le |el |de |da |der |die |das |des |a |o |as |os |les |los |las |un |une |una |um |uma |"
            r"anything |nothing )?"
        )
        starts = [m.end() for m in re.finditer(cue_src + r"\s+" + article, low)]
        # "levis and Carhartt": a capitalised name listed next to a brand
        for hit in hits if t.lang != "de" else ():
            joined = re.match(r"\s*(?:&|and|or|nor|y|o|ni|et|ou|e)\s+", low[hit.end:])
            if joined:
                starts.append(hit.end + joined.end())
        for start in sorted(starts):
            name_m = re.match(r"([A-Z][\w'&.\-]*[\w'&](?:\s+[A-Z][\w'&.\-]*)*|[A-Z])", raw[start:])
            if not name_m:
                continue
            end = start + name_m.end()
            name = raw[start:end].rstrip(".")
            if _overlaps(start, end, spans) or _lower(name) in _NOT_BRANDS or _lower(name.split()[0]) in _NOT_BRANDS or len(name) < 2:
                continue
            if _is_vocabulary(name, t.lang):
                continue
            hits.append(_Hit(start, start + len(name), name))
            spans.append((start, start + len(name)))
    hits.sort(key=lambda h: h.start)
    include, exclude = _split_include_exclude(t, hits)
    return include, exclude, spans


def _is_vocabulary(word: str, lang: str) -> bool:
    low = _lower(word)
    for kind in ("colors", "materials", "diets", "allergens", "recipients", "occasions", "weekdays", "months"):
        for language in {lang, "en"}:
            if any(h.start == 0 and h.end >= len(low.split()[0]) for h in _scan(low, _vocab(kind, language))):
                return True
    return bool(_letter_size(low, lang)) or bool(_cue_regex("shoe", lang).match(low))


# --- correction ---------------------------------------------------------------------


def _is_correction(t: _Text) -> bool:
    if _cue_regex("correction", t.lang).search(t.low) or _opener_regex(t.lang).search(t.low):
        return True
    return t.lang != "en" and bool(re.search(r"(?<!\w)(?:oops|sorry|actually|i meant)(?!\w)", t.low))


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def extract_constraints(text: str, *, language: str | None = None, brands: Iterable[str] = ()) -> Constraints:
    """Extract the shopper's constraints from one message.

    ``language`` (en, es, fr, de, pt/pt_BR) selects the vocabulary; when None it is
    guessed from the text. ``brands`` are the store's brand names: they are found
    case-insensitively in addition to the built-in list of well-known brands.
    """
    t = _prepare(text, language)
    deadline, deadline_dropped = _extract_deadline(t)
    sizes, size_dropped = _extract_sizes(t)
    budget = _extract_budget(t)
    quantity, quantity_dropped = _extract_quantity(t)

    brands_include, brands_exclude, brand_spans = _extract_brands(t, brands)
    occasion, occasion_spans = _extract_occasion(t)
    materials_include, materials_exclude, fake_leather = _extract_materials(t, brand_spans)
    colors_include, colors_exclude = _extract_colors(t, brand_spans)
    if _JEWELLERY_RE.search(t.low):
        # for jewellery, gold and silver name the metal
        for metal in ("gold", "silver"):
            if metal in colors_include:
                colors_include.remove(metal)
                materials_include = _unique([*materials_include, metal])
            if metal in colors_exclude:
                colors_exclude.remove(metal)
                materials_exclude = _unique([*materials_exclude, metal])
    dietary = _extract_dietary(t, [*brand_spans, *fake_leather])
    recipient, recipient_dropped = _extract_recipient(t, [*occasion_spans, *brand_spans])

    replaced = (
        (deadline_dropped and deadline is not None)
        or size_dropped
        or (recipient_dropped and recipient is not None)
        or (quantity_dropped and quantity is not None)
    )
    return Constraints(
        budget=budget,
        sizes=tuple(sizes),
        colors_include=tuple(colors_include),
        colors_exclude=tuple(colors_exclude),
        materials_include=tuple(materials_include),
        materials_exclude=tuple(materials_exclude),
        dietary=tuple(dietary),
        deadline=deadline,
        recipient=recipient,
        occasion=occasion,
        brands_include=tuple(brands_include),
        brands_exclude=tuple(brands_exclude),
        quantity=quantity,
        is_correction=bool(replaced or _is_correction(t)),
    )


def resolve_deadline(deadline: Deadline | None, today: datetime.date) -> datetime.date | None:
    """The calendar date a deadline stands for, counted from the store's local ``today``.

    Day counts add to today; a weekday is its next occurrence after today (a week
    ahead when today is that weekday); "by dec 20" is the next Dec 20 on or after
    today; "by the 20th" the next 20th of a month. None when nothing can be resolved.
    """
    if deadline is None:
        return None
    if deadline.days_from_now is not None:
        return today + datetime.timedelta(days=deadline.days_from_now)
    if deadline.weekday is not None and deadline.weekday in _WEEKDAY_NUMBERS:
        ahead = (_WEEKDAY_NUMBERS[deadline.weekday] - today.weekday()) % 7 or 7
        return today + datetime.timedelta(days=ahead)
    relative = deadline.relative.strip().lower()
    if relative in _RELATIVE_OFFSETS:
        return today + datetime.timedelta(days=_RELATIVE_OFFSETS[relative])
    m = re.fullmatch(r"(?:by|before|on)?\s*([a-z]{3})\w*\.?\s+(\d{1,2})(?:st|nd|rd|th)?", relative)
    if m and m.group(1) in _MONTH_NUMBERS:
        return _next_date(today, int(m.group(2)), _MONTH_NUMBERS[m.group(1)])
    m = re.fullmatch(r"(?:by|before|on)?\s*the\s+(\d{1,2})(?:st|nd|rd|th)?", relative)
    if m:
        return _next_date(today, int(m.group(1)), None)
    return None


def _next_date(today: datetime.date, day: int, month: int | None) -> datetime.date | None:
    """The first date on or after ``today`` with that day (and month, when given)."""
    year, current = today.year, month or today.month
    for _ in range(60):
        try:
            candidate = datetime.date(year, current, day)
        except ValueError:
            candidate = None
        if candidate is not None and candidate >= today:
            return candidate
        if month is None:
            year, current = (year + 1, 1) if current == 12 else (year, current + 1)
        else:
            year += 1
    return None


def constraints_from_dict(data: Mapping[str, Any]) -> Constraints:
    """Rebuild constraints from :meth:`Constraints.to_dict` output (conversation memory)."""
    budget = data.get("budget") or {}
    deadline = data.get("deadline")

    def amount(value: object) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    return Constraints(
        budget=Budget(amount(budget.get("max")), amount(budget.get("min")), budget.get("currency")),
        sizes=tuple(Size(str(s["system"]), str(s["value"])) for s in data.get("sizes") or ()),
        colors_include=tuple(data.get("colors_include") or ()),
        colors_exclude=tuple(data.get("colors_exclude") or ()),
        materials_include=tuple(data.get("materials_include") or ()),
        materials_exclude=tuple(data.get("materials_exclude") or ()),
        dietary=tuple(data.get("dietary") or ()),
        deadline=Deadline(deadline["relative"], deadline.get("weekday"), deadline.get("days_from_now")) if deadline else None,
        recipient=data.get("recipient"),
        occasion=data.get("occasion"),
        brands_include=tuple(data.get("brands_include") or ()),
        brands_exclude=tuple(data.get("brands_exclude") or ()),
        quantity=data.get("quantity"),
        is_correction=bool(data.get("is_correction", False)),
    )
