"""Step 4 of a turn: what the shopper wants (intent) and what they declared (constraints).

The offline understanding is rule-based and works in the five supported
languages. Rules look for whole words or phrases, so "return" in "I want to
return these boots" is a returns question while a product search for "running
shoes" is not mistaken for one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from bot.constraints import Constraints, extract_constraints


class Intent(StrEnum):
    GREETING = "greeting"
    HELP = "help"
    PRODUCT_SEARCH = "product_search"
    POLICY = "policy"
    ORDER_STATUS = "order_status"
    HUMAN = "human"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    EXPORT_MY_DATA = "export_my_data"
    FORGET_ME = "forget_me"
    UNKNOWN = "unknown"


class PolicyTopic(StrEnum):
    SHIPPING = "shipping"
    RETURNS = "returns"
    PAYMENT = "payment"
    PRIVACY = "privacy"
    CONTACT = "contact"
    SIZES = "sizes"
    GENERAL = "general"


class Concern(StrEnum):
    """Why a message should go to a person even though the bot could answer something."""

    FRUSTRATION = "frustration"
    DAMAGED_OR_WRONG_ITEM = "damaged_or_wrong_item"
    REFUND_DISPUTE = "refund_dispute"
    ALLERGY_REACTION = "allergy_reaction"
    LEGAL_THREAT = "legal_threat"


@dataclass(frozen=True, slots=True)
class Understanding:
    intent: Intent
    constraints: Constraints
    policy_topic: PolicyTopic | None = None
    order_number: str | None = None
    concern: Concern | None = None


def _phrases(*items: str) -> re.Pattern[str]:
    """A pattern matching any of the phrases as whole words (accents folded)."""
    alternatives = sorted({_fold(item) for item in items}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(a).replace(r"\ ", r"\s+") for a in alternatives) + r")(?!\w)")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


HUMAN = _phrases(
    "human", "a person", "real person", "someone real", "agent", "an agent", "representative", "operator", "staff",
    "customer service", "talk to someone", "speak to someone", "talk to a person", "speak to a person",
    "humano", "una persona", "persona real", "agente", "asesor", "hablar con alguien", "atención al cliente",
    "humain", "une personne", "conseiller", "conseillère", "parler à quelqu'un", "service client",
    "mensch", "mitarbeiter", "mitarbeiterin", "echte person", "kundendienst", "kundenservice",
    "atendente", "uma pessoa", "pessoa real", "falar com alguém", "atendimento",
)
GREETING = _phrases(
    "hi", "hello", "hey", "good morning", "good evening", "hola", "buenas", "buenos días", "bonjour", "salut",
    "bonsoir", "hallo", "guten tag", "moin", "servus", "olá", "ola", "oi", "bom dia", "boa tarde", "/start", "start",
)
HELP = _phrases(
    "help", "/help", "what can you do", "how does this work", "ayuda", "qué puedes hacer", "aide",
    "que sais-tu faire", "hilfe", "was kannst du", "ajuda", "o que você faz",
)
THANKS = _phrases(
    "thanks", "thank you", "thx", "cheers", "gracias", "merci", "danke", "vielen dank", "obrigado", "obrigada", "valeu",
)
YES = _phrases("yes", "y", "yeah", "yep", "sure", "ok", "okay", "sí", "si", "claro", "oui", "d'accord", "ja", "klar", "sim", "pode")
NO = _phrases("no", "n", "nope", "non", "nein", "não", "nao", "cancel", "cancelar", "annuler", "abbrechen")
GOODBYE = _phrases("bye", "goodbye", "see you", "adiós", "adios", "chao", "au revoir", "tschüss", "tschüs", "tchau", "até logo")
ORDER = _phrases(
    "my order", "order status", "where is my", "track", "tracking", "my package", "my parcel", "delivery status",
    "mi pedido", "estado del pedido", "dónde está", "seguimiento", "ma commande", "où est", "suivi",
    "meine bestellung", "wo ist", "sendungsverfolgung", "meu pedido", "minha encomenda", "cadê", "rastreio", "rastreamento",
)
ORDER_NUMBER = re.compile(r"(?<![\w-])#?([A-Z]{1,4}-?\d{3,10})(?![\w-])", re.IGNORECASE)
# Shopify numbers orders "#1001": digits after "#", or after the word for order ("order 1001", "pedido nº 1001")
NUMERIC_ORDER_NUMBER = re.compile(
    r"(?:(?<![\w&])#\s?|\b(?:order|pedido|commande|bestellung|encomenda)\s+(?:(?:n[º°o]|nr|no|number|número|numéro|nummer)\.?\s*)?#?)"
    r"(\d{3,10})\b",
    re.IGNORECASE,
)
POLICY_TOPICS: dict[PolicyTopic, re.Pattern[str]] = {
    PolicyTopic.RETURNS: _phrases(
        "return", "returns", "refund", "exchange", "send back", "devolución", "devolver", "reembolso", "cambio",
        "retour", "retourner", "rembourser", "remboursement", "échange", "rückgabe", "zurückgeben", "umtausch",
        "erstattung", "rücksendung", "devolução", "devolver", "reembolso", "troca", "trocar",
    ),
    PolicyTopic.SHIPPING: _phrases(
        "shipping", "ship", "ships", "delivery", "deliver", "how long", "express", "dispatch", "envío", "envio",
        "entrega", "enviáis", "envían", "livraison", "livrer", "expédition", "versand", "lieferung", "liefern",
        "lieferzeit", "frete", "entrega", "prazo",
    ),
    PolicyTopic.PAYMENT: _phrases(
        "payment", "pay", "paypal", "credit card", "debit card", "bizum", "cash on delivery", "pago", "pagar", "tarjeta",
        "paiement", "payer", "carte bancaire", "carte de crédit", "zahlung", "bezahlen", "kreditkarte", "pagamento",
        "cartão de crédito", "pix",
        "boleto",
    ),
    PolicyTopic.PRIVACY: _phrases(
        "privacy", "my data", "personal data", "gdpr", "privacidad", "mis datos", "confidentialité",
        "mes données", "datenschutz", "meine daten", "privacidade", "meus dados",
    ),
    PolicyTopic.CONTACT: _phrases(
        "opening hours", "business hours", "are you open", "contact", "email", "phone number", "horario",
        "contacto", "horaires", "contacter", "öffnungszeiten", "kontakt", "horário", "contato",
    ),
    PolicyTopic.SIZES: _phrases(
        "size guide", "size chart", "sizing", "what size", "which size", "guía de tallas", "qué talla",
        "guide des tailles", "quelle taille", "größentabelle", "welche größe", "tabela de medidas", "qual tamanho",
    ),
}
EXPORT_MY_DATA = _phrases(
    "send me my data", "export my data", "download my data", "what data do you have", "a copy of my data",
    "envíame mis datos", "exportar mis datos", "copia de mis datos", "envoyez-moi mes données", "exporter mes données",
    "copie de mes données", "schick mir meine daten", "meine daten exportieren", "kopie meiner daten",
    "me envie meus dados", "exportar meus dados", "cópia dos meus dados",
)
FORGET_ME = _phrases(
    "forget me", "delete my data", "erase my data", "delete everything about me", "remove my data",
    "olvídame", "borra mis datos", "elimina mis datos", "oubliez-moi", "supprimez mes données", "effacez mes données",
    "vergiss mich", "lösche meine daten", "löschen sie meine daten", "me esqueça", "apague meus dados", "exclua meus dados",
)
CONCERNS: dict[Concern, re.Pattern[str]] = {
    Concern.LEGAL_THREAT: _phrases(
        "lawyer", "attorney", "sue you", "legal action", "small claims", "consumer protection", "report you",
        "abogado", "demanda", "denunciar", "acción legal", "avocat", "poursuivre", "plainte", "action en justice",
        "anwalt", "verklagen", "rechtliche schritte", "anzeige", "advogado", "processar", "procon", "ação judicial",
    ),
    Concern.ALLERGY_REACTION: _phrases(
        "allergic reaction", "had a reaction", "anaphylaxis", "hospital", "epipen", "made me sick", "got sick",
        "reacción alérgica", "me puse malo", "me enfermé", "réaction allergique", "j'ai été malade", "allergische reaktion",
        "krankenhaus", "mir wurde schlecht", "reação alérgica", "passei mal",
    ),
    Concern.DAMAGED_OR_WRONG_ITEM: _phrases(
        "arrived broken", "arrived damaged", "is broken", "was broken", "damaged", "defective", "wrong item",
        "wrong size sent", "not what i ordered", "missing item", "llegó roto", "llegó dañado", "defectuoso",
        "producto equivocado", "arrivé cassé", "endommagé", "défectueux", "mauvais article", "kaputt angekommen",
        "beschädigt", "defekt", "falscher artikel", "chegou quebrado", "danificado", "com defeito", "produto errado",
    ),
    Concern.REFUND_DISPUTE: _phrases(
        "still no refund", "haven't received my refund", "where is my refund", "chargeback", "dispute", "you charged me twice",
        "charged twice", "reembolso todavía", "no me han devuelto", "cobrado dos veces", "toujours pas remboursé",
        "débité deux fois", "immer noch keine erstattung", "doppelt abgebucht", "ainda não recebi o reembolso",
        "cobrado duas vezes", "estorno",
    ),
    Concern.FRUSTRATION: _phrases(
        "useless", "ridiculous", "terrible service", "worst", "this is a joke", "are you stupid", "stupid bot",
        "i'm angry", "i am angry", "so frustrated", "fed up", "wtf", "not helpful", "inútil", "una vergüenza",
        "harto", "harta", "estoy enfadado", "nul", "c'est une honte", "ras le bol", "j'en ai marre", "inadmissible",
        "nutzlos", "unverschämt", "eine frechheit", "ich bin sauer", "inútil", "um absurdo", "estou irritado",
        "que raiva", "palhaçada",
    ),
}
PRODUCT_CUES = _phrases(
    "do you have", "do you sell", "looking for", "i need", "i want", "recommend", "suggest", "gift", "buy",
    "any", "cheap", "under", "tienen", "tienes", "vendéis", "busco", "quiero", "necesito", "recomienda", "regalo",
    "avez-vous", "vous avez", "je cherche", "je voudrais", "cadeau", "habt ihr", "haben sie", "ich suche",
    "ich brauche", "geschenk", "vocês têm", "voces tem", "tem", "procuro", "quero", "preciso", "presente",
)
_WORD = re.compile(r"\w+", re.UNICODE)


def understand(text: str, *, language: str | None = None, brands: tuple[str, ...] = ()) -> Understanding:
    """Classify one shopper message and extract the constraints it declares."""
    folded = _fold(text)
    constraints = extract_constraints(text, language=language, brands=brands)
    order_number = _order_number(text)
    words = _WORD.findall(folded)

    if FORGET_ME.search(folded):
        return Understanding(Intent.FORGET_ME, constraints)
    if EXPORT_MY_DATA.search(folded):
        return Understanding(Intent.EXPORT_MY_DATA, constraints)
    if HUMAN.search(folded):
        return Understanding(Intent.HUMAN, constraints)
    for concern, pattern in CONCERNS.items():
        if pattern.search(folded):
            return Understanding(Intent.HUMAN, constraints, order_number=order_number, concern=concern)
    if order_number or ORDER.search(folded):
        return Understanding(Intent.ORDER_STATUS, constraints, order_number=order_number)
    for topic, pattern in POLICY_TOPICS.items():
        if pattern.search(folded) and not (topic is PolicyTopic.SIZES and not constraints.is_empty() and PRODUCT_CUES.search(folded)):
            return Understanding(Intent.POLICY, constraints, policy_topic=topic)
    if HELP.search(folded):
        return Understanding(Intent.HELP, constraints)
    short = len(words) <= 3
    if short and THANKS.search(folded):
        return Understanding(Intent.THANKS, constraints)
    if short and GOODBYE.search(folded):
        return Understanding(Intent.GOODBYE, constraints)
    if short and GREETING.search(folded) and len([w for w in words if not GREETING.fullmatch(w)]) == 0:
        return Understanding(Intent.GREETING, constraints)
    if PRODUCT_CUES.search(folded) or not constraints.is_empty():
        return Understanding(Intent.PRODUCT_SEARCH, constraints)
    content = [w for w in words if len(w) > 2 and not GREETING.fullmatch(w)]
    if content:
        # a bare noun phrase ("wool socks", "grinder") is a catalog question
        return Understanding(Intent.PRODUCT_SEARCH, constraints)
    if GREETING.search(folded):
        return Understanding(Intent.GREETING, constraints)
    return Understanding(Intent.UNKNOWN, constraints)


def is_yes(text: str) -> bool:
    folded = _fold(text).strip(" .!¡?¿")
    return bool(YES.fullmatch(folded))


def is_no(text: str) -> bool:
    folded = _fold(text).strip(" .!¡?¿")
    return bool(NO.fullmatch(folded))


def _order_number(text: str) -> str | None:
    match = ORDER_NUMBER.search(text)
    value = match.group(1).upper() if match is not None else ""
    if any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value):
        return value
    numeric = NUMERIC_ORDER_NUMBER.search(text)
    return "#" + numeric.group(1) if numeric is not None else None


def strip_greeting(text: str) -> str:
    """The message without a leading greeting, as a search query."""
    folded_words = text.split()
    while folded_words and GREETING.fullmatch(_fold(folded_words[0].strip(",.!¡¿?"))):
        folded_words.pop(0)
    return " ".join(folded_words) or text
