"""Product-line names that imply a brand: learned from the catalog, read in a shopper's message.

A shopper who asks for an "iPhone 13", a "Galaxy S8", a "MacBook" or a "PlayStation"
wants that maker's product without naming the maker, and another maker's phone is
not an answer. :class:`ProductLines` holds the product-line names of a store and
:meth:`ProductLines.implied_brand` reads the brand a message implies.

Where the names come from (:meth:`ProductLines.from_catalog`):

* the store's own catalog, principally. A word of a product title is the name of a
  product line of brand B when
  - it stands where titles put a line name: right after the brand's name
    ("Samsung *Galaxy* S8", "New DELL *XPS* 13") or first in a title that does not
    name the brand ("*iPhone* 13 Pro");
  - no product of another brand, nor an unbranded one, has it in its title, except
    after "with", "for", "compatible with"… ("Selfie Lamp with iPhone" is an
    accessory for the line, made by someone else);
  - it is not retail vocabulary: the words of :mod:`kb.glossary` in all five
    languages ("mascara", "watch", "bed"), the query vocabulary of :mod:`kb.query`
    (openers, price and stock cues), the catalog's category and brand names, and
    the model qualifiers every maker uses (``pro``, ``max``, ``air``, ``ultra``…);
  - it is a name, not a describing word: it stands nowhere else in that brand's
    titles ("Almond Cantuccini" but "Crunchy Almond Butter"), the descriptions never
    write it in lower case inside a sentence ("a rich dark chocolate") and at least
    one writes it capitalised there ("attach it to your iPhone");
  - it holds a letter and, without a digit, at least three characters;
* a small built-in table of well-known lines of well-known brands (``_KNOWN_LINES``),
  for a store whose titles do not show them: applied when the catalog sells the
  brand, or when no title of the catalog has the line at all (the shopper then hears
  that nothing fits, with the closest options and what each breaks). When the
  catalog has the line under brands of its own, the catalog decides.

Where a name counts in a message (:meth:`ProductLines.implied_brand`): only as the
head of the request. Not after "for", "para", "pour", "für", "de", "with", "like"…
("funda para iPhone", "tapis de yoga"), not when the message asks for an accessory
(case, charger, cover, funda, coque, Hülle, capinha…), not negated ("not an
iPhone"), and not when a word that does not belong to the line follows it ("yoga
mat": "mat" is no word of the Lenovo Yoga's titles, while "13", "pro" or "max" after
"iPhone" are). A brand the shopper names wins: an implied brand is only reported
when the message names no brand, or when the named "brand" is itself the line
("PlayStation" read as a brand also admits Sony's products).

The implied brand is not a declared constraint (the shopper did not say it): the
engine turns it into a search filter (:func:`bot.personalization.filters_for`) and
says why on each card.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from kb.glossary import GLOSSARY, translations
from kb.models import ProductName
from kb.query import clean_query, vocabulary_words

__all__ = ["ImpliedBrand", "ProductLine", "ProductLines"]


def _fold(text: str) -> str:
    """Lower case without accents, apostrophes straightened: how names and words are compared."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _folded(words: str) -> frozenset[str]:
    return frozenset(_fold(word) for word in words.split())


# Well-known product lines of well-known brands, as the maker writes them.
_KNOWN_LINES: Final[Mapping[str, tuple[str, ...]]] = {
    "Apple": ("iPhone", "iPad", "MacBook", "iMac", "AirPods", "AirTag", "iPod", "HomePod", "Apple Watch"),
    "Samsung": ("Galaxy",),
    "Sony": ("PlayStation", "PS4", "PS5", "Walkman", "Bravia"),
    "Microsoft": ("Xbox",),
    "Google": ("Pixel", "Chromecast"),
    "Lenovo": ("ThinkPad", "IdeaPad"),
    "Dell": ("XPS", "Alienware", "Inspiron"),
    "HP": ("EliteBook", "ProBook"),
    "Asus": ("ZenBook", "VivoBook"),
    "Huawei": ("MateBook",),
    "Xiaomi": ("Redmi",),
    "Amazon": ("Kindle",),
    "Nike": ("Air Jordan", "Air Max"),
    "Adidas": ("Ultraboost", "Yeezy"),
}

# Words every maker puts after a line name: never a line name themselves, always allowed after one.
QUALIFIERS: Final = _folded(
    """pro max mini plus ultra air lite light se neo note fold flip edge slim series gen generation edition standard
    classic sport xl fe touch nano new latest original genuine unlocked used refurbished nuevo nueva usado usada
    reacondicionado neuf neuve occasion reconditionné débloqué neu gebraucht generalüberholt novo nova seminovo
    recondicionado desbloqueado gb tb go 4g 5g lte wifi wi fi cellular inch inches pulgadas pouces zoll polegadas
    one super premium deluxe special limited collection master"""
)
# Descriptive glossary terms (colours, materials, price, for whom): allowed after a line name ("iPhone barato").
_DESCRIPTIVE_TERMS: Final = frozenset(
    """cheap luxury wireless waterproof women men children girl boy summer winter red blue green black white yellow
    pink grey brown golden wool cotton leather silk linen wooden steel""".split()
) | {"light (weight)"}
# A request for one of these is for an accessory of the line, usually made by another brand.
_ACCESSORIES: Final = _folded(
    """case cases cover covers sleeve sleeves skin skins charger chargers cable cables adapter adapters protector
    protectors screen film strap straps band bands holder holders mount mounts stand stands dock docks stylus pen
    keyboard mouse lens lenses controller controllers bumper glass tempered funda fundas carcasa carcasas cargador
    cargadores cable cables adaptador adaptadores protector protectores mica micas soporte soportes correa correas
    estuche estuches coque coques étui étuis housse housses chargeur chargeurs câble câbles adaptateur protection
    verre support supports bracelet hülle hüllen schutzhülle schutzhüllen ladegerät ladekabel kabel schutzfolie
    panzerglas halterung armband adapter tasche capa capas capinha capinhas carregador carregadores cabo cabos
    película películas suporte pulseira adaptador"""
)
# Words after which a line name is what the product is for, like or made with, not what is asked for.
_LINKS: Final = _folded(
    """for from with like than compatible fits fit fitting works para con como tipo estilo compatible pour avec comme
    genre type compatible für aus mit wie passend kompatibel von pra pro com compatível de da do das dos du des d del
    di as to"""
)
# Possessives and articles that may stand between a link word and the line name ("for my iPhone").
_DETERMINERS: Final = _folded(
    """my your his her our their the a an this that mi mis tu tus su sus el la los las un una mon ma mes ton ta tes
    son sa ses notre votre leur le les un une mein meine meinen meinem dein deine deinen sein seine ihr ihre den dem
    der die das ein eine einen einem meu minha meus minhas teu tua seu sua o a os as um uma"""
)
# Negations and set-asides: a line named after these is not wanted ("not an iPhone", "anything but a Galaxy").
_NEGATION: Final = re.compile(
    r"(?<!\w)(?:no|not|non|never|without|but|except|besides|instead of|other than|rather than|don'?t want|"
    r"ni|sin|sino|excepto|salvo|nada de|en vez de|en lugar de|pas|sans|sauf|au lieu d[e']|plutôt que|"
    r"kein\w*|nicht|ohne|außer|statt|anstatt|não|nao|sem|exceto|em vez de|em lugar de)"
    # "no more than 500", "pas cher": a budget or a price word, not a negated product
    r"(?!\s+(?:more|less|longer|más|mas|plus|cher|chère|chers|mehr|weniger|caro|cara|expensive)(?!\w))"
    r"(?:\s+[\w']+){0,2}\s*$",
    re.IGNORECASE,
)
_WORD: Final = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_ELISION: Final = re.compile(r"(l|d|j|qu|n|s|c|m|t)'(?=\w)")
_CAMEL: Final = re.compile(r"(?<=[a-z])(?=[A-Z])")
_ACCESSORY_CUES: Final = _folded("for with compatible fits para pour für mit avec con com")


def _spans(text: str) -> list[tuple[str, int]]:
    """The folded words of ``text`` with where each starts; French elisions split ("d'iPhone" → "d", "iphone")."""
    found: list[tuple[str, int]] = []
    for m in _WORD.finditer(text):
        word = _fold(m.group())
        elided = _ELISION.match(word)
        if elided:
            found.append((elided.group(1), m.start()))
            found.append((word[elided.end() :], m.start() + elided.end()))
        else:
            found.append((word, m.start()))
    return found


def _words(text: str) -> list[str]:
    return [word for word, _ in _spans(text)]


def _singular(word: str) -> str:
    for suffix in ("es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _plural_stems(word: str) -> list[str]:
    stems = [word[: -len(suffix)] for suffix in ("s", "es") if word.endswith(suffix) and len(word) - len(suffix) >= 3]
    return [*stems, word[:-3] + "y"] if word.endswith("ies") and len(word) > 4 else stems


def _is_code(word: str) -> bool:
    """A model designator: "13", "s8", "z800", "x", "xr" (a digit, or two letters at most)."""
    return any(ch.isdigit() for ch in word) or len(word) <= 2


def _generic_words() -> frozenset[str]:
    """Retail vocabulary in the five languages: never a product-line name."""
    words: set[str] = set(vocabulary_words()) | QUALIFIERS | _ACCESSORIES | _LINKS | _DETERMINERS
    for term, forms in GLOSSARY.items():
        words.update(_words(term))
        for column in forms:
            words.update(_words(column))
    return frozenset(_fold(w) for w in words)


_GENERIC: Final = _generic_words()
_DESCRIPTIVE: Final = frozenset(
    _fold(w)
    for term, forms in GLOSSARY.items()
    if term in _DESCRIPTIVE_TERMS
    for w in (*_words(term), *(w for column in forms for w in _words(column)))
)


def _is_generic(word: str, extra: frozenset[str]) -> bool:
    forms = {word, _singular(word), word + "s", word + "es"}
    return bool(forms & (_GENERIC | extra))


@dataclass(frozen=True, slots=True)
class ProductLine:
    """One product line: its name and maker as the catalog writes them, and the words of its products' titles."""

    name: str
    brand: str
    words: frozenset[str] = frozenset()  # folded words of the line's titles and categories ("13", "pro", "smartphones")

    def covers(self, word: str, language: str | None) -> bool:
        """Whether ``word``, after the line's name, still describes the line ("13", "pro", "barato", "phone")."""
        if _is_code(word) or word in QUALIFIERS or word in _DESCRIPTIVE or _singular(word) in _DESCRIPTIVE:
            return True
        candidates = {word, _singular(word)} | {_fold(t) for t in translations(word, language)}
        for candidate in candidates:
            stem = _singular(candidate)
            if candidate in self.words or any(w == stem or (len(stem) >= 4 and _singular(w).endswith(stem)) for w in self.words):
                return True
        return False


@dataclass(frozen=True, slots=True)
class ImpliedBrand:
    """The brand a message implies through a product-line name ("iPhone" → Apple)."""

    brand: str
    line: str


@dataclass(frozen=True, slots=True)
class _Mention:
    line: ProductLine
    start: int  # word index in the message
    end: int


class ProductLines:
    """A store's product-line names (see the module docstring). Built once per catalog, then read-only."""

    def __init__(self, lines: Iterable[ProductLine] = ()) -> None:
        self._lines: dict[tuple[str, ...], ProductLine] = {}
        for line in lines:
            for key in _keys(line.name):
                self._lines.setdefault(key, line)
        self._longest = max((len(k) for k in self._lines), default=0)

    def __len__(self) -> int:
        return len({line.name for line in self._lines.values()})

    def __repr__(self) -> str:
        return f"ProductLines({len(self)} lines)"

    def get(self, name: str) -> ProductLine | None:
        """The line called ``name`` (any case, spaced or not: "airpods", "Air Pods"), or None."""
        return self._lines.get(tuple(_words(name))) or self._lines.get((_fold(name).replace(" ", ""),))

    @property
    def lines(self) -> tuple[ProductLine, ...]:
        return tuple(sorted({line.name: line for line in self._lines.values()}.values(), key=lambda line: _fold(line.name)))

    @classmethod
    def from_catalog(cls, products: Iterable[ProductName], *, known: bool = True) -> ProductLines:
        """The product lines of a catalog (see the module docstring); ``known`` adds the built-in table."""
        products = list(products)
        brand_of = {_fold(p.brand.strip()): p.brand.strip() for p in reversed(products) if p.brand.strip()}
        titles = _TitleEvidence(products)
        described = _description_evidence(p.description for p in products)
        extra = frozenset(w for p in products for w in (*_words(p.category), *_words(p.brand)))
        lines: list[ProductLine] = []
        for word, brands in titles.positioned.items():
            if len(brands) != 1 or titles.brands[word] != brands or _is_generic(word, extra):
                continue  # another brand's (or an unbranded) title has it, or it is retail vocabulary
            brand = next(iter(brands))
            if (word, brand) in titles.elsewhere or {word, _singular(word)} & described.ordinary:
                continue  # also a describing word: "Almond Cantuccini" but "Crunchy Almond Butter"; "dark chocolate"
            if not ({word, _singular(word)} & described.named):
                continue  # no description writes it as a name: "Thermal Merino Top" may well be just thermal
            if not any(ch.isalpha() for ch in word) or (len(word) < 3 and not any(ch.isdigit() for ch in word)):
                continue
            lines.append(ProductLine(titles.spelled[word], brand_of[brand], frozenset(titles.vocabulary[(word, brand)])))
        if known:
            derived = cls(lines)
            for maker, names in _KNOWN_LINES.items():
                for name in names:
                    key = tuple(_words(name))
                    if derived.get(name) is not None:
                        continue  # the catalog decided
                    if _fold(maker) in brand_of:
                        brand = _fold(maker)
                        words = {w for (first, b), ws in titles.vocabulary.items() if b == brand and first in key for w in ws}
                        lines.append(ProductLine(name, brand_of[brand], frozenset(words)))
                    elif not any(_contains(_words(p.title), key) for p in products):
                        lines.append(ProductLine(name, maker))  # the store does not sell the line at all
        return cls(lines)

    def implied_brand(
        self, text: str, language: str | None = None, *, declared: Sequence[str] = (), excluded: Sequence[str] = ()
    ) -> ImpliedBrand | None:
        """The brand ``text`` implies by naming a product line as what it asks for, or None.

        ``declared`` and ``excluded`` are the brands the shopper named (to include or
        avoid): a named brand wins, unless it is the line itself ("PlayStation").
        """
        if not self._lines:
            return None
        spans = _spans(text)
        words = [word for word, _ in spans]
        if any(w in _ACCESSORIES for w in words):
            return None  # "iPhone case", "funda para iPhone": the accessory is usually another brand's
        declared_folded = {_fold(b) for b in declared}
        excluded_folded = {_fold(b) for b in excluded}
        cleaned = _words(clean_query(text, language).words)
        for mention in self._mentions(words):
            line = mention.line
            if _NEGATION.search(text[: spans[mention.start][1]]):
                continue
            if not self._is_head(mention, words, cleaned, language):
                continue
            brand = _fold(line.brand)
            line_names = {_fold(line.name), _fold(line.name).replace(" ", ""), *_words(line.name)}
            if declared_folded and not declared_folded & line_names:
                return None  # the shopper named a brand: it wins (unless the "brand" is the line: "PlayStation", "Jordan")
            if brand in declared_folded or brand in excluded_folded:
                return None
            return ImpliedBrand(line.brand, line.name)
        return None

    def _mentions(self, words: list[str]) -> list[_Mention]:
        found: list[_Mention] = []
        i = 0
        while i < len(words):
            for size in range(min(self._longest, len(words) - i), 0, -1):
                key = tuple(words[i : i + size])
                line = self._lines.get(key)
                if line is None and size == 1:  # "iPhones", "Galaxies" are still the line
                    line = next((self._lines[(w,)] for w in _plural_stems(key[0]) if (w,) in self._lines), None)
                if line is not None:
                    found.append(_Mention(line, i, i + size))
                    i += size - 1
                    break
            i += 1
        return found

    @staticmethod
    def _is_head(mention: _Mention, words: list[str], cleaned: list[str], language: str | None) -> bool:
        """The line is what is asked for: no link word before it, nothing foreign to it after it."""
        before = words[: mention.start]
        while before and before[-1] in _DETERMINERS:
            before = before[:-1]
        if before and before[-1] in _LINKS:
            return False  # "for my iPhone", "tapis de yoga", "something like an iPhone"
        # what follows, among the product words (budget, size and stock phrases are gone), up to a link word
        key = words[mention.start : mention.end]
        after = words[mention.end :]
        for i in range(len(cleaned) - len(key) + 1):
            if cleaned[i : i + len(key)] == key:
                after = cleaned[i + len(key) :]
                break
        for word in after:
            if word in _LINKS or word in _DETERMINERS or word in ("and", "or", "y", "o", "et", "ou", "und", "oder", "e"):
                break
            if not mention.line.covers(word, language):
                return False  # "yoga mat": the mat is the product, the line only describes it
        return True


class _TitleEvidence:
    """What the catalog's titles say about each word (folded), brand by brand (folded, "" for unbranded)."""

    def __init__(self, products: Sequence[ProductName]) -> None:
        self.brands: dict[str, set[str]] = defaultdict(set)  # brands whose titles have the word
        self.positioned: dict[str, set[str]] = defaultdict(set)  # brands whose titles put it where a line name stands
        self.elsewhere: set[tuple[str, str]] = set()  # (word, brand): also somewhere else in that brand's titles
        self.vocabulary: dict[tuple[str, str], set[str]] = defaultdict(set)  # (word, brand): words of those titles
        self.spelled: dict[str, str] = {}
        for p in products:
            brand = _fold(p.brand.strip())
            spans = _spans(p.title)
            folded = [word for word, _ in spans]
            position = _line_position(folded, _words(p.brand)) if brand else None
            for i, (word, start) in enumerate(spans):
                if any(w in _ACCESSORY_CUES for w in folded[max(0, i - 2) : i]):
                    continue  # "Selfie Lamp with iPhone": made for the line, not of it
                self.brands[word].add(brand)
                written = m.group() if (m := _WORD.match(p.title, start)) else word
                if word not in self.spelled or _CAMEL.search(written):  # "AirPods" rather than "Airpods"
                    self.spelled[word] = written
                if i == position:
                    self.positioned[word].add(brand)
                elif brand:
                    self.elsewhere.add((word, brand))
                self.vocabulary[(word, brand)].update(folded, _words(p.category))


@dataclass(frozen=True, slots=True)
class _DescriptionEvidence:
    """How the descriptions write each word (folded, singular too) inside a sentence."""

    ordinary: frozenset[str]  # in lower case somewhere ("a rich dark chocolate"): a common word, not a name
    named: frozenset[str]  # capitalised somewhere ("attach it to your iPhone", "the Lenovo Yoga 920 is"): a name


def _description_evidence(descriptions: Iterable[str]) -> _DescriptionEvidence:
    ordinary: set[str] = set()
    named: set[str] = set()
    for text in descriptions:
        for m in _WORD.finditer(text):
            token = m.group()
            before = text[: m.start()].rstrip()
            if not before or before[-1] in ".!?:;•-*(\"'":
                continue  # a sentence's first word is capitalised whatever it is
            forms = {_fold(token), _singular(_fold(token))}
            if token == token.lower():
                ordinary.update(forms)
            elif token != token.upper() or len(token) <= 4:  # a shouted sentence is no evidence, an acronym is
                named.update(forms)
    return _DescriptionEvidence(frozenset(ordinary), frozenset(named))


def _keys(name: str) -> list[tuple[str, ...]]:
    """How a shopper may write a line name: "AirPods" as "airpods" or "air pods", "iPhone" as "i phone"."""
    keys = [tuple(_words(name))]
    split = tuple(_words(" ".join(_CAMEL.sub(" ", part) for part in name.split())))
    if split != keys[0] and min(len(w) for w in split) > 1:  # "air pods", never "i phone" ("can I phone you?")
        keys.append(split)
    joined = ("".join(keys[0]),)
    if joined not in keys:
        keys.append(joined)
    return keys


def _line_position(title: list[str], brand: list[str]) -> int | None:
    """Where a line name stands in a title: right after the brand's name, or first when the brand is absent."""
    if not title:
        return None
    size = len(brand)
    for i in range(len(title) - size + 1):
        if size and title[i : i + size] == brand:
            return i + size if i + size < len(title) else None
    return 0


def _contains(words: list[str], key: tuple[str, ...]) -> bool:
    return any(tuple(words[i : i + len(key)]) == key for i in range(len(words) - len(key) + 1)) or "".join(key) in words
