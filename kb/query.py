"""Turning a shopper's chat message into a product-search query.

A message such as "¿tienen calcetines de lana por menos de 20 €?" carries three
kinds of words: conversation ("¿tienen …?"), constraints that the engine turns into
hard filters ("por menos de 20 €", "in stock", "talla 42") and the product words
("calcetines de lana"). Only the product words should reach BM25 and the embedder:
the others match random product descriptions lexically and pull the query vector
away from the product.

:func:`clean_query` strips, in English, Spanish, French, German and Brazilian
Portuguese:

* greetings, openers and question cues ("do you have", "je cherche", "habt ihr",
  "vocês têm", "tienen") and filler nouns ("something", "algo", "etwas");
* budget phrases: an amount with a currency or after a price cue ("under $300",
  "moins de 40 euros", "ab 5000 Dollar", "entre 10 y 20"), bare currency words;
* size phrases ("size 42", "talla M", "EU 40");
* availability phrases ("in stock", "available now", "sofort lieferbar", "em
  estoque"), which set :attr:`ProductQuery.in_stock_only` because the shopper asked
  for something that can ship now;
* negated phrases ("without nuts", "sin lactosa", "ohne Leder"): exclusions are
  filters, and searching for their words would find exactly what is not wanted.

What remains is followed by the English terms of the retail words it contains
(:mod:`kb.glossary`), so a Spanish query also matches an English catalog's words.

Numbers that are not prices or sizes stay ("iphone 13 pro", "galaxy s8"). The rules
are general vocabulary, not per-query patterns; the engine calls :func:`clean_query`
on the shopper's message and passes ``in_stock_only`` on to
:func:`bot.personalization.filters_for`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Final

from kb.glossary import phrase_pattern, translations

__all__ = ["QUERY_LANGUAGES", "ProductQuery", "clean_query", "vocabulary_words"]

QUERY_LANGUAGES: Final = ("en", "es", "fr", "de", "pt")


@dataclass(frozen=True, slots=True)
class ProductQuery:
    """The product words of a message and what the cleaning learned on the way.

    ``text`` is what to search for: the shopper's product words (``words``) followed
    by the English terms of the retail words recognised in them (``translated``,
    see :mod:`kb.glossary`). It is "" when the message names no product at all: the
    caller then asks what the shopper is looking for, or reuses the previous
    search. ``in_stock_only`` is True when the shopper asked for availability.
    """

    text: str
    in_stock_only: bool = False
    original: str = ""
    words: str = ""
    translated: tuple[str, ...] = ()


# --------------------------------------------------------------------------- vocabulary
#
# Phrases are written in lower case with their accents; a space matches any run of
# spaces or hyphens, an accented letter also matches its plain form, "'" is optional.
# Longer phrases win over shorter ones.

_OPENERS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "hi", "hello", "hey", "hiya", "good morning", "good afternoon", "good evening", "please", "pls", "plz",
        "thanks", "thank you", "excuse me", "sorry",
        "do you have", "do you guys have", "do y'all have", "do you sell", "do you carry", "do you stock",
        "do you have any", "have you got", "have you got any", "you got", "you got any", "got any", "do you got",
        "is there", "are there", "is there any", "are there any", "any chance you have", "would you have",
        "i'm looking for", "im looking for", "i am looking for", "looking for", "i'm searching for", "searching for",
        "i'm shopping for", "shopping for", "i'm after", "i need", "i need to buy", "need", "i want", "i want to buy",
        "want", "i'd like", "i would like", "i'd love", "i wanna buy", "i wanna", "where can i find", "where can i get",
        "can i get", "can i buy", "could i get", "can you recommend", "could you recommend", "can you suggest",
        "could you suggest", "can you show me", "could you show me", "show me", "recommend me", "suggest me",
        "recommend", "suggest", "what do you have", "what have you got", "what do you recommend", "tell me about",
        "help me find", "i'm interested in", "interested in",
        "something", "anything", "some kind of", "some sort of", "any kind of", "a kind of", "stuff", "some", "any",
        "a good", "a nice", "nice", "good", "maybe", "perhaps", "thing", "things", "item", "items",
    ),
    "es": (
        "hola", "buenas", "buenos días", "buenas tardes", "buenas noches", "por favor", "porfa", "gracias", "disculpa",
        "tienen", "tienes", "tenéis", "tendrán", "tendrías", "tendrían", "tiene", "hay", "venden", "vendéis", "vendes",
        "busco", "estoy buscando", "ando buscando", "buscaba", "quiero", "quería", "quisiera", "quiero comprar",
        "necesito", "me gustaría", "me gustaría comprar", "me interesa", "me puedes recomendar", "me recomiendas",
        "recomiéndame", "puedes recomendarme", "me podrías recomendar", "qué me recomiendas", "me enseñas",
        "muéstrame", "dónde encuentro", "dónde puedo encontrar", "algo", "alguna cosa", "algún", "alguna", "algunos",
        "algunas", "cosa", "cosas", "un buen", "una buena", "tipo de", "algún tipo de",
    ),
    "fr": (
        "bonjour", "salut", "bonsoir", "coucou", "s'il vous plaît", "s'il te plaît", "svp", "stp", "merci", "pardon",
        "avez-vous", "avez vous", "vous avez", "est-ce que vous avez", "auriez-vous", "vous auriez", "as-tu",
        "tu as", "vous vendez", "vendez-vous", "y a-t-il", "y a t il", "il y a", "est-ce qu'il y a",
        "je cherche", "je recherche", "je suis à la recherche de", "à la recherche de", "je voudrais",
        "je voudrais acheter", "j'aimerais", "j'aimerais acheter", "je veux", "je veux acheter", "il me faut",
        "j'ai besoin de", "j'ai besoin d'", "j'ai besoin", "besoin de", "besoin d'", "pouvez-vous me conseiller",
        "pouvez-vous me recommander", "vous me conseillez", "que me conseillez-vous", "montrez-moi", "où trouver",
        "quelque chose", "quelque chose de", "un truc", "des trucs", "un bon", "une bonne", "genre de",
        "une sorte de", "un type de",
    ),
    "de": (
        "hallo", "hi", "hey", "guten tag", "guten morgen", "guten abend", "moin", "servus", "bitte", "danke",
        "habt ihr", "haben sie", "hast du", "gibt es", "gibt's", "gibts", "verkauft ihr", "verkaufen sie",
        "führt ihr", "führen sie", "ich suche", "ich suche nach", "suche", "ich brauche", "brauche", "ich möchte",
        "ich möchte kaufen", "ich hätte gern", "ich hätte gerne", "ich will", "ich würde gern", "ich würde gerne",
        "könnt ihr empfehlen", "können sie empfehlen", "könnt ihr mir", "können sie mir", "empfehlen", "zeig mir",
        "zeigen sie mir", "wo finde ich", "etwas", "irgendwas", "irgendetwas", "was", "ein gutes", "eine gute",
        "einen guten", "so etwas wie", "sowas wie", "art von", "eine art", "irgendein", "irgendeine", "irgendeinen",
    ),
    "pt": (
        "olá", "oi", "bom dia", "boa tarde", "boa noite", "por favor", "pfv", "obrigado", "obrigada", "valeu",
        "vocês têm", "vocês tem", "vcs tem", "vcs têm", "você tem", "tem", "têm", "teria", "teriam", "tem como",
        "vende", "vendem", "vocês vendem", "procuro", "estou procurando", "tô procurando", "to procurando",
        "quero", "queria", "quero comprar", "gostaria de", "gostaria de comprar", "gostaria", "preciso de",
        "preciso", "me indica", "me indicam", "pode me indicar", "podem me indicar", "me recomenda",
        "me mostra", "onde encontro", "algo", "alguma coisa", "algum", "alguma", "uns", "umas", "coisa", "coisas",
        "um bom", "uma boa", "tipo de",
    ),
}

# Words that are left dangling at either end once the phrases above are gone.
_EDGE_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("a", "an", "the", "to", "for", "of", "that", "that's", "which", "with", "and", "or", "but", "is", "are",
           "be", "must", "should", "it", "its", "it's", "one", "ones", "me", "you", "u", "now", "just", "also",
           "please", "thanks", "here", "there", "in", "on", "at", "so", "well", "ok", "okay", "yes", "um"),
    "es": ("un", "una", "unos", "unas", "el", "la", "los", "las", "de", "del", "para", "por", "que", "y", "o", "con",
           "en", "a", "al", "me", "se", "lo", "es", "son", "ya", "ahora", "también", "pues", "bueno", "vale"),
    "fr": ("un", "une", "des", "le", "la", "les", "l'", "de", "du", "d'", "pour", "par", "que", "qui", "et", "ou",
           "avec", "en", "à", "au", "aux", "me", "moi", "est", "sont", "aussi", "alors", "bon", "ok"),
    "de": ("ein", "eine", "einen", "einem", "einer", "der", "die", "das", "den", "dem", "des", "für", "von", "mit",
           "und", "oder", "zu", "zum", "zur", "in", "im", "auf", "an", "am", "mir", "mich", "ihr", "sie", "ist",
           "sind", "noch", "auch", "jetzt", "so", "also", "ok"),
    "pt": ("um", "uma", "uns", "umas", "o", "a", "os", "as", "de", "do", "da", "dos", "das", "pra", "pro", "para",
           "por", "que", "e", "ou", "com", "em", "no", "na", "me", "é", "são", "já", "agora", "também", "aí"),
}

# Price cues: a number after one of these is a budget, currency or not.
_PRICE_CUES: Final[dict[str, tuple[str, ...]]] = {
    "en": ("under", "below", "less than", "no more than", "not more than", "up to", "max", "maximum", "at most",
           "cheaper than", "within", "over", "above", "more than", "at least", "from", "starting at", "min", "minimum",
           "around", "about", "approximately", "roughly", "approx", "budget", "budget of", "budget is",
           "my budget is", "for", "for about", "for around", "for under", "for less than", "costing", "priced at",
           "price", "somewhere around", "or less", "or under", "tops", "max budget", "no more than about"),
    "es": ("menos de", "por menos de", "hasta", "máximo", "como máximo", "no más de", "más de", "por más de",
           "desde", "a partir de", "mínimo", "como mínimo", "alrededor de", "unos", "sobre", "presupuesto",
           "presupuesto de", "mi presupuesto es", "por", "por unos", "de hasta", "que cueste", "que cuesten",
           "inferior a", "superior a", "máx"),
    "fr": ("moins de", "pour moins de", "jusqu'à", "maximum", "max", "au plus", "au maximum", "pas plus de",
           "plus de", "à partir de", "au moins", "dès", "minimum", "environ", "autour de", "vers", "budget",
           "budget de", "mon budget est de", "pour", "pour environ", "à", "de moins de", "en dessous de",
           "au-dessous de", "inférieur à", "supérieur à", "qui coûte", "qui coûtent"),
    "de": ("unter", "bis", "bis zu", "höchstens", "maximal", "max", "weniger als", "nicht mehr als", "über",
           "mehr als", "ab", "mindestens", "um die", "circa", "ca", "etwa", "rund", "ungefähr", "budget",
           "budget von", "mein budget ist", "für", "für etwa", "für unter", "für maximal", "günstiger als",
           "billiger als", "kostet", "kosten", "im wert von", "preis"),
    "pt": ("até", "menos de", "por menos de", "no máximo", "máximo", "mais de", "acima de", "a partir de",
           "pelo menos", "no mínimo", "mínimo", "cerca de", "uns", "por volta de", "orçamento", "orçamento de",
           "meu orçamento é", "por", "por uns", "por até", "abaixo de", "de até", "que custe", "que custem", "na faixa de"),
}
_RANGE_JOINERS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("and", "to", "-"), "es": ("y", "a", "-"), "fr": ("et", "à", "-"), "de": ("und", "bis", "-"), "pt": ("e", "a", "-"),
}
_RANGE_OPENERS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("between", "somewhere between", "anywhere between", "in the range of", "from"),
    "es": ("entre", "de"), "fr": ("entre", "de"), "de": ("zwischen", "von"), "pt": ("entre", "de"),
}
# Currency symbols and words (all languages: people mix them).
_CURRENCY_WORDS: Final = (
    "usd", "eur", "gbp", "brl", "mxn", "chf", "cad", "aud", "dollar", "dollars", "dólar", "dólares", "dolar",
    "dolares", "bucks", "buck", "euro", "euros", "pound", "pounds", "quid", "reais", "real", "pesos", "peso",
    "francs", "franken", "balles", "pavos", "pila", "pilas", "paus", "conto", "contos", "us dollars", "us$",
)
_CURRENCY_SYMBOLS: Final = ("us$", "r$", "$", "€", "£", "¥")

# Sizes: a cue followed by a size value.
_SIZE_CUES: Final[dict[str, tuple[str, ...]]] = {
    "en": ("size", "sized", "in size", "in a size", "shoe size", "eu", "us", "uk", "waist", "length"),
    "es": ("talla", "en talla", "número", "numero", "la talla", "eu", "us", "uk"),
    "fr": ("taille", "en taille", "pointure", "en pointure", "eu", "us", "uk"),
    "de": ("größe", "in größe", "gr", "schuhgröße", "eu", "us", "uk"),
    "pt": ("tamanho", "no tamanho", "número", "numero", "tam", "eu", "us", "uk", "br"),
}
_SIZE_VALUE: Final = r"(?:\d{1,3}(?:[.,]5)?(?:/\d{1,3})?|xxs|xs|s|m|l|xl|xxl|xxxl|[2-5]xl|p|g|gg)"

# Availability: any of these means "only what can ship now".
_STOCK: Final[dict[str, tuple[str, ...]]] = {
    "en": ("in stock", "instock", "on hand", "available now", "available today", "available right now",
           "available immediately", "that's available", "that is available", "which is available",
           "which are available", "that are available", "must be available", "should be available",
           "has to be available", "needs to be available", "is it available", "are they available", "available",
           "ready to ship", "ships today", "ship today", "ships now", "can ship now", "right away"),
    "es": ("en stock", "en existencia", "en existencias", "disponible", "disponibles", "disponible ahora",
           "disponibles ahora", "disponible ya", "que haya en stock", "que esté disponible", "que estén disponibles",
           "para entrega inmediata", "entrega inmediata", "de inmediato"),
    "fr": ("en stock", "disponible", "disponibles", "disponible maintenant", "disponible tout de suite",
           "disponible immédiatement", "dispo", "livrable immédiatement", "tout de suite", "immédiatement"),
    "de": ("auf lager", "am lager", "vorrätig", "lieferbar", "sofort lieferbar", "sofort verfügbar", "verfügbar",
           "gerade verfügbar", "jetzt verfügbar", "sofort", "direkt lieferbar"),
    "pt": ("em estoque", "no estoque", "disponível", "disponíveis", "disponível agora", "pronta entrega",
           "à pronta entrega", "pra pronta entrega", "na hora", "imediato", "imediata"),
}

# Negations: what follows names something the shopper does NOT want (an exclusion the
# constraint extractor turns into a filter), so it is never searched for.
_NEGATIONS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("without", "no", "not", "nothing with", "free of"),
    "es": ("sin", "no", "nada de", "que no tenga", "que no lleve"),
    "fr": ("sans", "pas de", "pas d'", "aucun", "aucune", "ni"),
    "de": ("ohne", "kein", "keine", "keinen", "keiner", "nicht"),
    "pt": ("sem", "não", "nada de", "que não tenha"),
}
# Words that end a negated phrase ("without nuts for my son": "for my son" stays).
_NEGATION_STOPS: Final = frozenset(
    """for and or but with to in size under pour et ou mais avec à en taille para y o pero con en talla für und oder aber
    mit in größe pra e ou mas com em tamanho""".split()
)

_PUNCTUATION: Final = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "–": "-", "—": "-", "‐": "-",
                                     "‑": "-", "−": "-", "“": '"', "”": '"', "«": '"', "»": '"', "„": '"'})
# Words that may follow an amount and belong to the budget phrase ("$50 or less").
_AFTER_AMOUNT: Final = r"(?:or less|or under|max|tops|o menos|ou menos|ou moins|oder weniger|maximum|máximo|maximal)"
_NUMBER: Final = r"\d+(?:[.,\u00a0 ]\d{3})*(?:[.,]\d{1,2})?(?:\s?(?:k|mil)(?!\w))?"


def vocabulary_words() -> frozenset[str]:
    """Every word of the conversation, price, size, stock and negation vocabulary above, in the five languages."""
    tables = (_OPENERS, _EDGE_WORDS, _PRICE_CUES, _RANGE_JOINERS, _RANGE_OPENERS, _SIZE_CUES, _STOCK, _NEGATIONS)
    phrases = [phrase for table in tables for forms in table.values() for phrase in forms]
    return frozenset(word for phrase in (*phrases, *_CURRENCY_WORDS) for word in re.findall(r"[^\W\d_]+", phrase.casefold()))


def _alternatives(phrases: tuple[str, ...] | list[str]) -> str:
    ordered = sorted(set(phrases), key=len, reverse=True)
    return "(?:" + "|".join(phrase_pattern(p) for p in ordered) + ")"


def _languages(language: str | None) -> tuple[str, ...]:
    """The vocabularies to apply: the message's language plus English, or all when unknown."""
    code = (language or "").strip().lower().replace("-", "_").split("_")[0]
    if code in QUERY_LANGUAGES:
        return (code,) if code == "en" else (code, "en")
    return QUERY_LANGUAGES


@dataclass(frozen=True, slots=True)
class _Patterns:
    stock: re.Pattern[str]
    budget: re.Pattern[str]
    currency: re.Pattern[str]
    size: re.Pattern[str]
    opener: re.Pattern[str]
    edge: re.Pattern[str]
    negation: re.Pattern[str]


@cache
def _patterns(languages: tuple[str, ...]) -> _Patterns:
    def gather(table: dict[str, tuple[str, ...]]) -> list[str]:
        return [phrase for lang in languages for phrase in table[lang]]

    word_start, word_end = r"(?<![\w$€£¥])", r"(?!\w)"
    currency = (
        "(?:" + "|".join(re.escape(s) for s in sorted(_CURRENCY_SYMBOLS, key=len, reverse=True)) + "|"
        + word_start + _alternatives(list(_CURRENCY_WORDS)) + word_end + ")"
    )
    amount = rf"(?:{currency}\s?{_NUMBER}|{_NUMBER}\s?{currency}|{_NUMBER}(?!\w))"
    priced = rf"(?:{currency}\s?{_NUMBER}|{_NUMBER}\s?{currency})"
    cue = _alternatives(gather(_PRICE_CUES))
    joiner = _alternatives(gather(_RANGE_JOINERS))
    range_opener = _alternatives(gather(_RANGE_OPENERS))
    budget = re.compile(
        "|".join(
            (
                # "between $10 and $20", "entre 10 y 20 euros"
                rf"{word_start}{range_opener}\s+{amount}\s*{joiner}\s*{amount}",
                # "under $300", "moins de 40 euros", "ab 5000 Dollar", "até 300"
                rf"{word_start}{cue}\s*:?\s*{amount}(?:\s*{joiner}\s*{amount})?",
                # "$300", "40 euros", "10-20€"
                rf"{word_start}{priced}(?:\s*{joiner}\s*{amount})?(?:\s+{_AFTER_AMOUNT})?",
            )
        ),
        re.IGNORECASE,
    )
    size = re.compile(rf"{word_start}{_alternatives(gather(_SIZE_CUES))}\s*:?\s*{_SIZE_VALUE}{word_end}", re.IGNORECASE)
    stock = re.compile(rf"{word_start}{_alternatives(gather(_STOCK))}{word_end}", re.IGNORECASE)
    opener = re.compile(rf"{word_start}{_alternatives(gather(_OPENERS))}{word_end}", re.IGNORECASE)
    edge_words = _alternatives(gather(_EDGE_WORDS))
    edge = re.compile(rf"^(?:{edge_words}(?:\s+|$))+|(?:(?<=\s)|^){edge_words}$", re.IGNORECASE)
    stops = "|".join(sorted(_NEGATION_STOPS, key=len, reverse=True))
    negated_word = rf"(?:(?!(?:{stops})(?!\w))[^\W\d][\w'’-]*)"
    # English and German put the negated noun right after the cue ("no sugar bars"), Romance
    # languages may need two words ("sin frutos secos")
    negations = [
        rf"{_alternatives(list(_NEGATIONS[lang]))}\s+{negated_word}(?:\s+{negated_word}){{0,{0 if lang in ('en', 'de') else 1}}}"
        for lang in languages
    ]
    negation = re.compile(rf"{word_start}(?:{'|'.join(negations)}){word_end}", re.IGNORECASE)
    return _Patterns(stock=stock, budget=budget, currency=re.compile(currency, re.IGNORECASE), size=size,
                     opener=opener, edge=edge, negation=negation)


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_PUNCTUATION)
    return "".join(" " if unicodedata.category(ch) in ("So", "Cc", "Cf") else ch for ch in text)


_SEPARATORS: Final = re.compile(r"[¿?¡!;:()\[\]{}\"…]+|(?<!\w)'|'(?!\w)|(?<!\d)[.,](?!\d)|\s-\s")
_SPACES: Final = re.compile(r"\s+")


def _tidy(fragment: str, edge: re.Pattern[str]) -> str:
    """A fragment with dangling function words removed from both ends."""
    text = _SPACES.sub(" ", fragment).strip(" -/&+")
    previous = None
    while text and text != previous:
        previous = text
        text = edge.sub("", text).strip(" -/&+")
    return text


def clean_query(text: str, language: str | None = None) -> ProductQuery:
    """The product words of a shopper's message (see the module docstring).

    ``language`` is the conversation's language (en, es, fr, de, pt or a locale such
    as pt_BR); its vocabulary is applied together with English's. When it is None or
    unsupported the vocabularies of all five languages apply.
    """
    patterns = _patterns(_languages(language))
    work = _normalize(text)
    in_stock = False

    def drop(pattern: re.Pattern[str], source: str) -> str:
        return pattern.sub(" | ", source)

    if patterns.stock.search(work):
        in_stock = True
        work = drop(patterns.stock, work)
    work = drop(patterns.budget, work)
    work = drop(patterns.negation, work)
    work = drop(patterns.size, work)
    work = drop(patterns.currency, work)
    work = drop(patterns.opener, work)
    # punctuation splits the message into fragments; each is tidied at its ends
    fragments = [_tidy(part, patterns.edge) for part in _SEPARATORS.sub(" | ", work).split("|")]
    words = _SPACES.sub(" ", " ".join(f for f in fragments if f)).strip()
    translated = tuple(translations(words, language)) if words else ()
    search = " ".join((words, *translated)).strip()
    return ProductQuery(text=search, in_stock_only=in_stock, original=text, words=words, translated=translated)
