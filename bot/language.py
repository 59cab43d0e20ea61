"""A small offline language detector for the five supported languages.

Shopper messages are short and informal, so statistical detectors trained on
prose do poorly on them. This one scores function words and characteristic
letters per language and answers only when the evidence is clear; ``None``
means "not sure", and the caller keeps the language it already had.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Frequent words that are distinctive enough for one language in shopping chat.
MARKERS: dict[str, frozenset[str]] = {
    "en": frozenset(
        """the and you your have do does is are what where when how much for with my me i want need looking
        something under please can could would any hi hello thanks thank shipping return order size shoes
        gift cheap price buy which there this that it's don't im""".split()
    ),
    "es": frozenset(
        """el la los las un una unos unas y que qué de del en para por con tienen tiene hay quiero necesito
        busco algo menos hola gracias envío envio devolución devolucion pedido talla zapatillas regalo
        cuánto cuanto cuesta puedo dónde donde mi mis usted ustedes es está esta son muy pero""".split()
    ),
    "fr": frozenset(
        """le la les un une des et que de du en pour avec vous avez je cherche quelque chose moins bonjour
        salut merci livraison retour commande taille chaussures cadeau combien coûte où mon ma mes est sont
        très mais pas ne ce cette il elle parlez français""".split()
    ),
    "de": frozenset(
        """der die das ein eine einen und oder für mit ist sind haben sie ich suche etwas unter bitte hallo
        danke versand rückgabe bestellung größe schuhe geschenk wie viel kostet wo mein meine nicht auch
        kann können gibt es ihr habt""".split()
    ),
    "pt_BR": frozenset(
        """o os as um uma uns umas e que de do da dos das em para por com vocês você tem têm quero preciso
        procuro algo menos olá oi obrigado obrigada frete entrega devolução pedido tamanho tênis presente
        quanto custa onde meu minha não é está são muito mas""".split()
    ),
}
# Letters that only some of the languages use.
LETTERS: dict[str, str] = {"es": "ñ¿¡", "fr": "çèêàùœ", "de": "äöüß", "pt_BR": "ãõç"}


def detect_language(text: str) -> str | None:
    """The most likely supported language of ``text``, or None when unclear."""
    lowered = unicodedata.normalize("NFC", text).casefold()
    words = _WORD.findall(lowered)
    if not words:
        return None
    scores = {lang: sum(1.0 for w in words if w in vocab) for lang, vocab in MARKERS.items()}
    for lang, letters in LETTERS.items():
        scores[lang] += 0.5 * sum(1 for ch in lowered if ch in letters)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, best_score), (_, second_score) = ranked[0], ranked[1]
    if best_score < 1 or best_score - second_score < 0.5:
        return None
    return best
