"""What kinds of things a store carries, and whether a request asks for one it does not.

A shopper asking for a "yoga mat" in a store whose only *Yoga* is a Lenovo laptop,
or for "winter tires for my car" in a store that sells cars but no tires, should
hear that the store does not carry it. The dense embedder cannot tell: the
modifier ("yoga", "for my car") makes those products score like true matches.
What decides is the *head* of the request, the kind of thing asked for ("mat",
"tires"), and whether any product *is* one.

* :func:`request_heads` finds the head of each coordinated phrase of a search
  text ("suco e refrigerante" has two): in English and German the last word of
  the phrase before its first preposition, pronoun or clause word ("winter tires
  for my car" → "tires", "Handtasche von Prada" → "Handtasche"); in Spanish,
  French and Portuguese the first ("calcetines de lana" → "calcetines",
  "chaussures de course" → "chaussures de course", a glossary phrase). Words of
  those languages are read through :mod:`kb.glossary` (its English term's last
  word: "pañales" → "diapers", "Rasenmäher" → "mower").
* A head is *known* when it is a product-type word: one of :data:`PRODUCT_KINDS`
  (general retail vocabulary, synonyms grouped) or a word the store itself uses
  for its products. Departments and occasions ("gift", "decor", "makeup",
  "tools", "food") are not product types: the store's own words decide for them.
* :class:`Assortment` holds the words of what the products *are* — the stems of
  their titles, categories and tags, never descriptions (a description of a car
  mentions tires). A head is carried when one of its stems or synonyms is there,
  or when it ends a longer word of the store's ("phone" in "smartphones") or a
  store word ends it ("wristwatch" and "watches").

:meth:`Assortment.missing_kind` answers the shopper's words for it ("yoga mat") when
every phrase's head is known and none is carried: the index then returns no
product and the bot says the store does not carry it. A query whose head is
unknown (a brand, a model, a word in no vocabulary) or that has no head ("to keep
my coffee hot") is left to the ranking. Both index implementations apply it
(:meth:`kb.index.BaseIndex.missing_kind`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Final

from kb.glossary import glossary_terms, translations

__all__ = ["PRODUCT_KINDS", "Assortment", "Head", "is_product_kind", "kind_stems", "request_heads"]

# Product types, singular English, synonyms joined by "|". General retail vocabulary by
# department (the kinds a shop's catalog is made of), not the queries of any evaluation set.
# Words that are as often something else are left out ("sweet", "light", "iron", "club",
# "notebook", "press"): an unknown head keeps the ranked search, a wrong known one empties it.
PRODUCT_KINDS: Final = """
sock, shoe|footwear, sneaker|trainer, boot, sandal|flip-flop, slipper, heel|pump|stiletto, loafer, clog, cleat, insole,
shoelace|lace, jacket|anorak, coat|parka, raincoat, vest|gilet, shirt|blouse, t-shirt|tee|tshirt, top|tank, sweater|jumper|pullover,
sweatshirt|hoodie, cardigan, fleece, trouser|pant|slack, jean|denim, short, skirt, dress|frock|gown, suit|tuxedo, blazer,
legging, jumpsuit, overall, swimsuit|bikini|trunk, pajama|pyjama, robe|bathrobe, underwear|boxer|panty,
bra, lingerie, corset, hat|cap|beanie, scarf|shawl, glove|mitten, belt, tie|bowtie, uniform, costume, apron, poncho,
bag|handbag|purse|tote, backpack|rucksack|daypack, wallet, suitcase|luggage, duffel, briefcase, pouch, watch|wristwatch,
sunglass, glass|eyeglass|spectacle, earring, necklace|pendant, ring, bracelet|bangle, brooch, umbrella, keychain,
perfume|fragrance|cologne, lipstick, mascara, eyeshadow, eyeliner, foundation, concealer, blush, polish, moisturizer,
cream, lotion, serum, shampoo, conditioner, soap, wash, toothpaste, toothbrush, deodorant, sunscreen|sunblock, razor,
shaver, trimmer, hairdryer|dryer, straightener, comb, hairbrush|brush, nail, powder, palette, mask, tampon, pad,
diaper|nappy, wipe, stroller|pram|pushchair, crib|cot, pacifier|dummy, bib, high-chair,
phone|smartphone|cellphone|mobile, laptop, computer|pc|desktop, tablet, monitor|screen, keyboard, mouse,
printer, scanner, ink, toner, cartridge, router|modem, headphone|headset, earphone|earbud, speaker, soundbar, microphone,
charger, cable|cord, adapter, battery|powerbank, camera|webcam, lens, tripod|monopod, drone, television|tv, projector,
console, controller|gamepad, smartwatch, tracker, ssd, case|cover, stand, dock,
lamp|lighting, bulb, candle, vase, frame, mirror, cushion|pillow, blanket|throw, towel, curtain|drape, rug|carpet,
mat|doormat, sheet, duvet|comforter|quilt, mattress, clock, plant, pot|planter, basket, bin, hanger, shelf|shelving,
furniture, chair|stool, table|desk, sofa|couch|settee, bed, wardrobe|closet, dresser, cabinet, bookcase, bench, swing,
sink, faucet|tap, shower, toilet, fan, heater, humidifier, dehumidifier, purifier, vacuum|hoover, thermostat,
knife|cutlery, fork, spoon, spatula, tong, turner, ladle, pan|skillet, pot|saucepan|casserole, wok, cup, mug, glass|tumbler,
plate|dish, bowl, board, blender|mixer, kettle, toaster, coffeemaker, grinder, grater, peeler, whisk, strainer|sieve,
colander, oven, microwave, stove|cooktop|hob, fridge|refrigerator|freezer, dishwasher, juicer|squeezer, slicer, opener,
bottle, flask|thermos, tray, rack, jar, container|box, lunchbox, scale, timer, thermometer, apron, napkin, tablecloth,
filter, dripper,
coffee, tea, chocolate, candy, cookie|biscuit, cake, bread, cheese, milk, yogurt, butter, egg, meat|beef|steak,
chicken, fish|seafood, fruit, vegetable|veggie, juice, soda, drink|beverage, water, wine, beer, liquor, honey,
jam, rice, pasta, noodle, flour, sugar, salt, oil, vinegar, sauce, spice, nut, cereal, oat, snack|chip|crisp, soup,
supplement|vitamin, protein, icecream, baby-food, dog-food, cat-food, leash, collar, litter, aquarium,
cage, kennel, toy, game, puzzle, doll, lego|brick, book, magazine, journal, pen, pencil, marker, paper, envelope,
stapler, folder, calendar, card, sticker, guitar, piano|keyboard, drum, violin, ukulele,
ball|football|basketball|volleyball, racket|racquet, bat, glove, helmet, wicket, rim|hoop, shuttlecock, goggle,
bicycle|bike, scooter, skateboard, skate, ski, snowboard, sled, surfboard, kayak|canoe, paddle, tent, sleeping-bag, hammock,
stove, lantern|flashlight|torch|headlamp, compass, rope, dumbbell|weight, kettlebell, treadmill, barbell, trampoline,
fishing-rod|rod, reel, tire|tyre, wheel, car|vehicle|sedan|suv|minivan|hatchback, motorcycle|motorbike|sportbike,
wiper, seat, mower, trimmer, hose, shovel|spade, rake, wheelbarrow, seed, fertilizer|compost, grill|barbecue|bbq,
drill, saw, hammer, screwdriver, wrench|spanner, plier, screw, nail, ladder, paint, glue, tape, lock, sander
"""
_ORDER_WORDS: Final = frozenset({"a", "an", "the", "some", "any", "pair", "pairs", "set", "sets", "new", "good", "nice", "big", "small"})

# Words that end the phrase naming the thing asked for: prepositions, pronouns, clause words.
_BOUNDARIES: Final[dict[str, frozenset[str]]] = {
    "en": frozenset("""for with without to that which who whose where when while on in at from by of under over below above
        like as so because if but than about into onto near around between per via i you he she we they it me my your his
        her our their its this these those is are was were be been can could would will should must may might do does did
        has have had he's she's it's that's i'm i'd you're they're we're there here""".split()),
    "es": frozenset("""para por de del con sin que en a al mi mis tu tus su sus como sobre hasta desde entre contra quien
        donde cuando cual es son está están este esta estos estas ese esa me te se le lo""".split()),
    "fr": frozenset("""pour par de du des d avec sans qui que qu en à au aux ma mon mes ta ton tes sa son ses sur dans
        comme contre pendant chez vers est sont ce cette ces je tu il elle nous vous ils elles me te se""".split()),
    "de": frozenset("""für mit von vom ohne zu zum zur aus bei beim gegen nach in im auf an am unter über um wie als
        der die das den dem des mein meine meinen meinem ihr ihre sein seine ist sind ich du er sie es wir mich dich""".split()),
    "pt": frozenset("""para pra pro pros pras por de do da dos das com sem que em no na nos nas meu minha meus minhas seu
        sua seus suas como sobre até desde entre contra quem onde quando é são está estão esse essa este esta me te se""".split()),
}
# Words joining two things asked for ("juice and soft drinks"): each side has its own head.
_COORDINATORS: Final[dict[str, frozenset[str]]] = {
    "en": frozenset({"and", "or", "plus", "&"}),
    "es": frozenset({"y", "e", "o", "u"}),
    "fr": frozenset({"et", "ou"}),
    "de": frozenset({"und", "oder", "sowie"}),
    "pt": frozenset({"e", "ou"}),
}
# Articles that may open a phrase without ending it.
_ARTICLES: Final[dict[str, frozenset[str]]] = {
    "en": _ORDER_WORDS,
    "es": frozenset({"un", "una", "unos", "unas", "el", "la", "los", "las", "par"}),
    "fr": frozenset({"un", "une", "des", "le", "la", "les", "l", "paire"}),
    "de": frozenset({"ein", "eine", "einen", "einem", "einer", "paar"}),
    "pt": frozenset({"um", "uma", "uns", "umas", "o", "a", "os", "as", "par"}),
}


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def _folded(vocabulary: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    return {lang: frozenset(_fold(word) for word in words) for lang, words in vocabulary.items()}


_HEAD_LAST: Final = frozenset({"en", "de"})  # the head ends the noun phrase ("winter tires", "Luxusuhr")
_BOUNDARY_WORDS: Final = _folded(_BOUNDARIES)
_COORDINATOR_WORDS: Final = _folded(_COORDINATORS)
_ARTICLE_WORDS: Final = _folded(_ARTICLES)
_TOKEN: Final = re.compile(r"\w+(?:['’]\w+)*")
_WORD_PARTS: Final = re.compile(r"[^\W\d_]+")
_MIN_COMPOUND_PART: Final = 4  # "smart|phone", "wrist|watch"; "s|ink" and "dr|ink" are not compounds


def _code(lang: str | None) -> str:
    """The language code of a locale ("pt_BR", "en-GB" → "pt", "en")."""
    return (lang or "").replace("-", "_").split("_")[0].casefold()


def _speaks(lang: str | None) -> bool:
    return _code(lang) in _BOUNDARIES


def _language(lang: str | None) -> str:
    return _code(lang) if _speaks(lang) else "en"


def kind_stems(word: str, *, base_of_ing: bool = True) -> frozenset[str]:
    """The stems a product-type word may take: plural and final -e off ("tires", "tire" → "tir"), -ves → -f, -ing → base.

    A store's "lighting" sells lights; the vocabulary's "lighting" (``base_of_ing=False``)
    does not make the adjective "light" a product type.
    """
    word = _fold(word).replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    word = word.strip("'")
    stems = {_stem(word)}
    if word.endswith("ves") and len(word) > 4:
        stems.add(_stem(word[:-3] + "f"))
    if base_of_ing and word.endswith("ing") and len(word) - 3 >= 4:
        stems.add(_stem(word[:-3]))
    return frozenset(stems)


def _stem(word: str) -> str:
    if len(word) <= 3:
        return word
    if word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("ies"):
        word = word[:-3] + "i"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 3 and word.endswith("y"):
        word = word[:-1] + "i"
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


@cache
def _kind_groups() -> dict[str, frozenset[str]]:
    """Each stem of :data:`PRODUCT_KINDS` with the stems of its synonyms (itself included)."""
    groups: dict[str, set[str]] = {}
    for entry in PRODUCT_KINDS.replace("\n", " ").split(","):
        members = [m.strip() for m in entry.split("|") if m.strip()]
        stems = frozenset().union(*(kind_stems(part, base_of_ing=False) for m in members for part in (m, m.replace("-", ""))))
        for stem in stems:
            groups.setdefault(stem, set()).update(stems)
    return {stem: frozenset(group) for stem, group in groups.items()}


def is_product_kind(word: str) -> bool:
    """Whether ``word`` names a kind of product in :data:`PRODUCT_KINDS` (any form: "tires", "Tyre")."""
    groups = _kind_groups()
    return any(stem in groups for stem in kind_stems(word))


@dataclass(frozen=True, slots=True)
class Head:
    """The kind of thing one phrase of a request asks for.

    ``word`` is the shopper's word (or glossary phrase), ``kind`` the English
    product-type word it stands for ("pañales" → "diapers"; the same word for
    English), ``known`` whether that is a product type at all and ``phrase``
    the shopper's words for the whole thing ("winter tires", "yoga mat").
    """

    word: str
    kind: str
    known: bool
    phrase: str = ""


def request_heads(text: str, language: str | None, *, store_words: Iterable[str] = ()) -> tuple[Head, ...]:
    """The head of each coordinated phrase of ``text`` (phrases without one, "to keep it hot", give none).

    ``store_words`` are stems the store uses for its products (:attr:`Assortment.stems`):
    such a word is a known kind even when :data:`PRODUCT_KINDS` lacks it.
    """
    lang = _language(language)
    boundaries, coordinators, articles = _BOUNDARY_WORDS[lang], _COORDINATOR_WORDS[lang], _ARTICLE_WORDS[lang]
    shopper_words = _shopper_words(text, lang)
    tokens = [(m.start(), m.end(), _fold(m.group())) for m in _TOKEN.finditer(shopper_words)]
    spans = glossary_terms(shopper_words, lang) if lang != "en" else []
    covered: dict[int, tuple[int, str]] = {}  # token index -> (index of the phrase's last token, English term)
    for start, end, term in spans:
        inside = [i for i, (s, e, _) in enumerate(tokens) if s < end and e > start]
        if inside:
            covered.setdefault(inside[0], (inside[-1], term))
    known_store = frozenset(store_words)
    heads: list[Head] = []
    phrase: list[tuple[str, str, int, int]] = []  # (shopper's words, English term or the word, start, end) of the segment
    ended = False  # the current phrase's first segment is over (a boundary word was met)
    i = 0

    def close() -> None:
        words = [w for w in phrase if w[1] not in articles]
        if words:
            word, kind, _, _ = words[-1] if lang in _HEAD_LAST else words[0]
            head_word = _last_word(kind)
            stems = kind_stems(head_word)
            known = is_product_kind(head_word) or bool(stems & known_store)
            heads.append(Head(word=word, kind=kind, known=known, phrase=shopper_words[words[0][2]:words[-1][3]]))

    while i < len(tokens):
        token = tokens[i][2]
        if token in coordinators and i not in covered:
            close()
            phrase, ended = [], False
            i += 1
            continue
        if i in covered:
            last, term = covered[i]
            if not ended:
                phrase.append((shopper_words[tokens[i][0]:tokens[last][1]], term, tokens[i][0], tokens[last][1]))
            i = last + 1
            continue
        if token in boundaries and not (token in articles and not phrase):
            ended = True
        elif not ended and not token.isdigit():
            phrase.append((shopper_words[tokens[i][0]:tokens[i][1]], token, tokens[i][0], tokens[i][1]))
        i += 1
    close()
    return tuple(heads)


def _last_word(kind: str) -> str:
    """The word of a (glossary) term that names the thing: "lawn mower" → "mower", "t-shirt" → "shirt"."""
    words = _WORD_PARTS.findall(kind)
    return words[-1] if words else kind


_MAX_APPENDED_WORDS: Final = 48
# Longer queries (shopper's words and appended English terms) are never declared "not carried".
_LONGEST_REQUEST_WORDS: Final = 40


def _shopper_words(text: str, lang: str) -> str:
    """``text`` without the English glossary terms :func:`kb.query.clean_query` appended to it."""
    if lang == "en":
        return text
    words = text.split()
    # the appended terms are few: start from the end, and look no further back than they can reach (each try
    # translates the words before the cut, so trying every cut of a 4,000-character message took seconds)
    for cut in range(len(words) - 1, max(0, len(words) - _MAX_APPENDED_WORDS), -1):
        tail = " ".join(words[cut:]).casefold()
        if tail == " ".join(translations(" ".join(words[:cut]), lang)).casefold():
            return " ".join(words[:cut])
    return text


@dataclass(frozen=True, slots=True)
class Assortment:
    """The kinds of products a store carries: the stems of what its products are called.

    Build it with :meth:`from_products` from each product's title, category and
    tags. ``categories`` are the store's category names as written, most
    products first (for telling a shopper what the store does sell).
    """

    stems: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()

    @staticmethod
    def from_products(products: Iterable[tuple[str, str, Iterable[str]]]) -> Assortment:
        """From ``(title, category, tags)`` of every product."""
        stems: set[str] = set()
        categories: Counter[str] = Counter()
        for title, category, tags in products:
            for text in (title, category, *tags):
                for part in _WORD_PARTS.findall(text or ""):
                    stems.update(kind_stems(part))
            if category and category.strip():
                categories[category.strip()] += 1
        return Assortment(frozenset(stems), tuple(name for name, _ in categories.most_common()))

    def carries(self, kind: str) -> bool:
        """Whether a product of the store is a ``kind`` (a product-type word, its synonyms, or a compound of it)."""
        own = kind_stems(_last_word(kind))
        groups = _kind_groups()
        wanted = set(own).union(*(groups.get(stem, frozenset()) for stem in own))
        if wanted & self.stems:
            return True
        for have in self.stems:
            if any(len(have) - len(stem) >= _MIN_COMPOUND_PART and have.endswith(stem) and len(stem) >= 3 for stem in wanted):
                return True  # "smartphones" are phones
            if any(len(stem) - len(have) >= _MIN_COMPOUND_PART and stem.endswith(have) and have in groups for stem in own):
                return True  # "snowboots" are boots (a "pullover" is no "over"; a synonym's parts count for nothing)
        return False

    def missing_kind(self, text: str, language: str | None) -> str | None:
        """The shopper's words for what ``text`` asks for ("yoga mat") when the store carries no such kind of thing.

        None unless every phrase with a head names a known product type and no
        product is one: unknown words, brands and models keep the ranked search.
        None too when ``language`` is not one of the five the bot speaks: where the
        head of a phrase stands depends on it ("presente pro meu namorado que curte
        games" read as English would ask for games).
        """
        if not self.stems or not _speaks(language) or len(text.split()) > _LONGEST_REQUEST_WORDS:
            return None  # a long message is no short request for one kind of thing: its search stays ranked
        heads = request_heads(text, language, store_words=self.stems)
        if not heads or not all(head.known for head in heads):
            return None
        if any(self.carries(head.kind) for head in heads):
            return None
        return _quotable(heads[0], language)


def _quotable(head: Head, language: str | None) -> str:
    """What the bot quotes back ("we don't carry anything like …"): the head with its modifiers where they
    precede it and read cleanly ("yoga mat", "winter tires"), else the head alone ("robe", not "robe mariage
    budget rien"; "Jeans", not "Jeans in 32/34,")."""
    words = head.phrase.split()
    lang = (language or "").split("_")[0].split("-")[0].lower()
    if lang in _HEAD_LAST and 0 < len(words) <= 3 and all(w.isalpha() for w in words):
        return head.phrase
    return head.word
