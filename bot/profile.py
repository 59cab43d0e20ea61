"""Shopper profiles: the constraints a shopper allowed us to keep across conversations.

What a shopper declares holds for the conversation (``conversation.context["constraints"]``,
see :mod:`bot.constraints`). A few things are worth keeping for the next visit —
sizes, dietary needs and allergies, and the materials, colours and brands they avoid
(:data:`KEPT_KINDS`) — but only after the shopper said yes:

* the first time a conversation holds one of them, the bot asks once per customer, in
  the shopper's language, with yes/no buttons (:meth:`ProfileDialog.question`); the
  answer is recorded with its evidence (message id, words, time) in ``profile_consents``.
  After a no (or a question left unanswered) it never asks again, unless the shopper
  asks to be remembered ("remember my preferences");
* with a standing yes, the kept facts (``profile_facts``) follow the conversation: a
  correction in chat ("actually size 42") replaces the kept size;
* a new conversation of the same customer starts with the kept facts under its own
  constraints (:meth:`ProfileDialog.load`), after a restart too;
* "what do you know about me?" lists the kept facts and this conversation's
  constraints; "forget my size" drops one kind; "clear my profile" deletes every kept
  fact and withdraws the consent. "Forget me" (full erasure, :mod:`bot.privacy`) is a
  different request and keeps working as before.

Leaks: a fact is visible to the channel identity that declared it, and to the
customer's other identities only when both are verified (phone or one-time code);
an unverified Telegram account never sees what a WhatsApp number of the same
customer told us. Consent follows the same rule (:meth:`Profiles.consent`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.consent import Evidence, stamp, yes_or_no
from bot.constraints import Constraints, Size, constraints_from_dict
from bot.i18n import _, current_locale, join_list
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.store import Conversation, Store
from kb.glossary import GLOSSARY

# the Constraints fields a profile keeps, and the kind each is stored under
KEPT_KINDS: dict[str, str] = {
    "sizes": "size",
    "dietary": "dietary",
    "materials_exclude": "materials_exclude",
    "colors_exclude": "colors_exclude",
    "brands_exclude": "brands_exclude",
}
PENDING_KEY = "profile_pending"  # conversation.context: the "shall I remember?" question waits for its answer
LOADED_KEY = "profile_loaded"  # conversation.context: kept facts were merged in at the start
YES_PAYLOAD = "/profile yes"
NO_PAYLOAD = "/profile no"
SHOW_PAYLOAD = "/profile"
CLEAR_PAYLOAD = "/profile clear"


class ProfileRequest(StrEnum):
    """What a shopper asked about their profile."""

    SHOW = "show"
    REMEMBER = "remember"
    CLEAR = "clear"
    FORGET_SIZES = "sizes"
    FORGET_DIETARY = "dietary"
    FORGET_MATERIALS = "materials_exclude"
    FORGET_COLORS = "colors_exclude"
    FORGET_BRANDS = "brands_exclude"


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("’", "'"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\s\-_]+", " ", plain).strip(" .!?¡¿")


def _any(*phrases: str) -> re.Pattern[str]:
    folded = sorted({_fold(p) for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in folded) + r")(?!\w)")


SHOW = _any(
    "what do you know about me", "what do you remember about me", "what have you saved about me", "what did you keep about me",
    "show my profile", "my profile", "my preferences",
    "qué sabes de mí", "qué sabes sobre mí", "qué recuerdas de mí", "qué sabéis de mí", "mi perfil", "mis preferencias",
    "que sais-tu de moi", "que sais-tu sur moi", "que savez-vous de moi", "qu'est-ce que tu sais de moi",
    "qu'est-ce que vous savez de moi", "mon profil", "mes préférences",
    "was weißt du über mich", "was wisst ihr über mich", "was wissen sie über mich", "was hast du über mich gespeichert",
    "mein profil", "meine präferenzen", "meine vorlieben",
    "o que você sabe sobre mim", "o que você sabe de mim", "o que sabe sobre mim", "o que vocês sabem sobre mim",
    "meu perfil", "minhas preferências",
)
FORGET_VERB = _any(
    "forget", "delete", "remove", "clear", "erase", "wipe",
    "olvida", "olvide", "olvídate de", "olvidad", "borra", "borre", "elimina", "elimine",
    "oublie", "oubliez", "efface", "effacez", "supprime", "supprimez",
    "vergiss", "vergessen sie", "lösche", "löschen sie", "lösch", "entferne", "entfernen sie",
    "esqueça", "esquece", "esqueçam", "apague", "apaga", "remova", "exclua", "limpe",
)
REMEMBER_VERB = _any(
    "remember", "keep", "save",
    "recuerda", "recuerde", "recordad", "guarda", "guarde", "memoriza",
    "souviens-toi de", "souvenez-vous de", "retiens", "retenez", "garde", "gardez", "mémorise", "mémorisez", "enregistre",
    "merk dir", "merke dir", "merken sie sich", "speichere", "speichern sie", "behalte",
    "lembre", "lembra", "lembre-se de", "guarde", "salve", "memorize",
)
MINE = _any(
    "my", "mine", "me", "about me", "mi", "mis", "mí", "ma", "mon", "mes", "moi", "mein", "meine", "meinen", "meiner", "mich",
    "meu", "meus", "minha", "minhas", "mim",
)
FIELDS: dict[ProfileRequest, re.Pattern[str]] = {
    ProfileRequest.CLEAR: _any(
        "profile", "preferences", "everything you know", "all you know", "what you know",
        "perfil", "preferencias", "todo lo que sabes", "lo que sabes",
        "profil", "préférences", "tout ce que tu sais", "tout ce que vous savez", "ce que tu sais",
        "präferenzen", "vorlieben", "alles was du", "was du über mich weißt",
        "preferências", "tudo o que você sabe", "tudo que você sabe", "o que você sabe",
    ),
    ProfileRequest.FORGET_SIZES: _any(
        "size", "sizes", "shoe size", "talla", "tallas", "número de pie", "taille", "tailles", "pointure",
        "größe", "größen", "schuhgröße", "konfektionsgröße", "tamanho", "tamanhos", "numeração",
    ),
    ProfileRequest.FORGET_DIETARY: _any(
        "allergy", "allergies", "diet", "dietary needs", "intolerance", "intolerances",
        "alergia", "alergias", "dieta", "intolerancia", "intolerancias",
        "allergie", "allergies", "régime", "intolérance", "intolérances",
        "allergie", "allergien", "diät", "ernährung", "unverträglichkeit", "unverträglichkeiten",
        "alergia", "alergias", "dieta", "intolerância", "intolerâncias", "restrições alimentares",
    ),
    ProfileRequest.FORGET_MATERIALS: _any(
        "material", "materials", "material", "materiales", "matériau", "matériaux", "matières", "materialien", "materiais",
    ),
    ProfileRequest.FORGET_COLORS: _any(
        "colour", "colours", "color", "colors", "colores", "couleur", "couleurs", "farbe", "farben", "cor", "cores",
    ),
    ProfileRequest.FORGET_BRANDS: _any("brand", "brands", "marca", "marcas", "marque", "marques", "marke", "marken"),
}
MAX_REQUEST_WORDS = 14  # a profile request is a short sentence, not a product search that mentions "size"
LEADING_WORDS = 3  # "can you please forget my size": the verb comes first


def _leads(verb: re.Pattern[str], folded: str) -> bool:
    """Whether the message opens with the verb ("please forget my size"), not merely mentions it."""
    match = verb.search(folded)
    return match is not None and len(folded[: match.start()].split()) <= LEADING_WORDS


def profile_request(text: str) -> ProfileRequest | None:
    """The profile request a message makes ("what do you know about me?", "forget my size"…), in five languages."""
    if text == SHOW_PAYLOAD:
        return ProfileRequest.SHOW
    if text == CLEAR_PAYLOAD:
        return ProfileRequest.CLEAR
    folded = _fold(text)
    if not folded or len(folded.split()) > MAX_REQUEST_WORDS:
        return None
    field = next((request for request, pattern in FIELDS.items() if pattern.search(folded)), None)
    if field is not None and MINE.search(folded):
        if _leads(FORGET_VERB, folded):
            return field
        if _leads(REMEMBER_VERB, folded):
            return ProfileRequest.REMEMBER
    if SHOW.search(folded):
        return ProfileRequest.SHOW
    return None


# -- kept facts as constraints ----------------------------------------------------------------


def kept_part(constraints: Constraints) -> Constraints:
    """Only what a profile keeps (sizes, dietary needs, excluded materials, colours and brands)."""
    return Constraints(
        sizes=constraints.sizes,
        dietary=constraints.dietary,
        materials_exclude=constraints.materials_exclude,
        colors_exclude=constraints.colors_exclude,
        brands_exclude=constraints.brands_exclude,
    )


def without(constraints: Constraints, field: str) -> Constraints:
    """``constraints`` with one kept field emptied ("forget my size")."""
    data = constraints.to_dict()
    data[field] = []
    return constraints_from_dict(data)


def _facts(constraints: Constraints) -> list[tuple[str, str]]:
    facts = [("size", f"{s.system}:{s.value}") for s in constraints.sizes]
    for field in ("dietary", "materials_exclude", "colors_exclude", "brands_exclude"):
        facts.extend((KEPT_KINDS[field], value) for value in getattr(constraints, field))
    return facts


def _constraints(facts: Iterable[tuple[str, str]]) -> Constraints:
    fields: dict[str, list[str]] = {field: [] for field in KEPT_KINDS}
    sizes: list[Size] = []
    for kind, value in facts:
        if kind == "size":
            system, _sep, size = value.partition(":")
            sizes.append(Size(system, size))
        else:
            fields[kind].append(value)
    return Constraints(
        sizes=tuple(sizes),
        dietary=tuple(fields["dietary"]),
        materials_exclude=tuple(fields["materials_exclude"]),
        colors_exclude=tuple(fields["colors_exclude"]),
        brands_exclude=tuple(fields["brands_exclude"]),
    )


def under(kept: Constraints, conversation: Constraints | None) -> Constraints:
    """The conversation's constraints over the kept ones: a field the conversation states wins.

    Dietary needs and exclusions add up (keeping an allergy is always the safe side),
    except that something the conversation now wants is no longer avoided.
    """
    if conversation is None:
        return kept
    kept_sizes = () if conversation.sizes else kept.sizes

    def add(old: tuple[str, ...], new: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*(x for x in old if x not in wanted), *new]))

    data = conversation.to_dict()
    data["sizes"] = [{"system": s.system, "value": s.value} for s in (*kept_sizes, *conversation.sizes)]
    data["dietary"] = list(add(kept.dietary, conversation.dietary, ()))
    data["materials_exclude"] = list(add(kept.materials_exclude, conversation.materials_exclude, conversation.materials_include))
    data["colors_exclude"] = list(add(kept.colors_exclude, conversation.colors_exclude, conversation.colors_include))
    data["brands_exclude"] = list(add(kept.brands_exclude, conversation.brands_exclude, conversation.brands_include))
    return constraints_from_dict(data)


# -- describing constraints in the shopper's language -------------------------------------------

_GLOSSARY_COLUMN = {"es": 0, "fr": 1, "de": 2, "pt_BR": 3, "pt": 3}


def local_term(term: str) -> str:
    """A canonical English word of the extractor ("wool", "red") in the current locale, when the glossary has it."""
    column = _GLOSSARY_COLUMN.get(current_locale())
    forms = GLOSSARY.get(term)
    if column is None or forms is None:
        return term
    local = forms[column].split("|")[0]
    return local[:1].upper() + local[1:] if column == _GLOSSARY_COLUMN["de"] else local  # German nouns: "ohne Wolle"


def dietary_label(label: str) -> str:
    key = label.casefold().replace("-", "_").replace(" ", "_")
    labels = {
        "vegan": _("vegan"),
        "vegetarian": _("vegetarian"),
        "halal": _("halal"),
        "kosher": _("kosher"),
        "gluten_free": _("gluten-free"),
        "lactose_free": _("lactose-free"),
        "dairy_free": _("dairy-free"),
        "nut_free": _("nut-free"),
        "sugar_free": _("sugar-free"),
        "egg_free": _("egg-free"),
        "soy_free": _("soy-free"),
        "alcohol_free": _("alcohol-free"),
    }
    return labels.get(key, label.replace("_", "-"))


def size_label(size: Size) -> str:
    if size.system == "shoe_us":
        return _("US shoe size {size}", size=size.value)
    if size.system == "shoe_uk":
        return _("UK shoe size {size}", size=size.value)
    return _("size {size}", size=size.value)


def describe(constraints: Constraints, *, kept_only: bool = False) -> list[str]:
    """Each constraint in words ("size M", "nut-free", "no wool", "under 80")."""
    parts = [size_label(s) for s in constraints.sizes]
    parts.extend(dietary_label(d) for d in constraints.dietary)
    parts.extend(_("no {material}", material=local_term(m)) for m in constraints.materials_exclude)
    parts.extend(_("not {color}", color=local_term(c)) for c in constraints.colors_exclude)
    parts.extend(_("not {brand}", brand=b) for b in constraints.brands_exclude)
    if kept_only:
        return parts
    budget = constraints.budget
    currency = budget.currency or ""
    if budget.max is not None:
        parts.append(_("up to {amount}", amount=f"{budget.max} {currency}".strip()))
    if budget.min is not None:
        parts.append(_("from {amount}", amount=f"{budget.min} {currency}".strip()))
    parts.extend(_("in {color}", color=local_term(c)) for c in constraints.colors_include)
    parts.extend(_("made of {material}", material=local_term(m)) for m in constraints.materials_include)
    parts.extend(_("by {brand}", brand=b) for b in constraints.brands_include)
    return parts


# -- storage ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileConsent:
    """The latest answer of a customer to "shall I remember?"."""

    status: str  # asked | granted | declined | revoked
    channel: str
    external_id: str
    evidence_message_id: str | None
    evidence_text: str | None
    decided_at: datetime | None

    @property
    def granted(self) -> bool:
        return self.status == "granted"


class Profiles:
    """Kept facts and the profile consent of customers (tables ``profile_facts`` and ``profile_consents``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def consent(self, customer_id: str, inbound: InboundMessage | None = None, *, verified: bool = False) -> ProfileConsent | None:
        """The latest answer of the customer; with ``inbound``, the latest that counts for its identity.

        An answer counts for the identity that gave it, and for every verified identity of the
        customer when it was given on a verified one: a yes on a verified WhatsApp number is not
        a yes from an unverified Telegram account pointed at the same customer.
        """
        params: tuple[object, ...] = (customer_id,)
        sql = "SELECT * FROM profile_consents WHERE customer_id = ? ORDER BY id DESC LIMIT 1"
        if inbound is not None:
            sql = (
                "SELECT * FROM profile_consents c WHERE c.customer_id = ? AND ((c.channel = ? AND c.external_id = ?) OR "
                "(? AND EXISTS (SELECT 1 FROM identities i WHERE i.channel = c.channel AND i.external_id = c.external_id "
                "AND i.customer_id = c.customer_id AND i.verified = 1))) ORDER BY c.id DESC LIMIT 1"
            )
            params = (customer_id, inbound.channel, inbound.sender_id, int(verified))
        async with self._store.db.execute(sql, params) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return ProfileConsent(
            row["status"], row["channel"], row["external_id"], row["evidence_message_id"], row["evidence_text"],
            datetime.fromisoformat(row["decided_at"]) if row["decided_at"] else None,
        )

    async def record(self, customer_id: str, inbound: InboundMessage, status: str, evidence: Evidence | None = None) -> None:
        """Append the customer's answer (or that the question was asked) to the profile consent ledger."""
        now = stamp(self._store.now())
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO profile_consents (customer_id, channel, external_id, status, asked_at, decided_at, evidence_message_id, "
                "evidence_text, evidence_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    customer_id, inbound.channel, inbound.sender_id, status, now, None if status == "asked" else now,
                    evidence.message_id if evidence else None, evidence.text if evidence else None,
                    stamp(evidence.at) if evidence else None,
                ),
            )

    async def kept(self, customer_id: str, channel: str, external_id: str, *, verified: bool) -> Constraints:
        """The facts this identity may see: its own, and the verified identities' ones when it is verified too."""
        async with self._store.db.execute(
            "SELECT kind, value FROM profile_facts f WHERE f.customer_id = ? AND ((f.channel = ? AND f.external_id = ?) OR "
            "(? AND EXISTS (SELECT 1 FROM identities i WHERE i.channel = f.channel AND i.external_id = f.external_id "
            "AND i.customer_id = f.customer_id AND i.verified = 1))) ORDER BY f.id",
            (customer_id, channel, external_id, int(verified)),
        ) as cur:
            return _constraints((row["kind"], row["value"]) for row in await cur.fetchall())

    async def keep(self, customer_id: str, inbound: InboundMessage, constraints: Constraints, *, verified: bool) -> bool:
        """Make the facts this identity sees equal the kept part of ``constraints``; True when something changed."""
        wanted = _facts(kept_part(constraints))
        current = _facts(await self.kept(customer_id, inbound.channel, inbound.sender_id, verified=verified))
        if set(wanted) == set(current):
            return False
        gone = [fact for fact in current if fact not in wanted]
        now = stamp(self._store.now())
        source = f"{inbound.channel}:{inbound.external_id}"
        async with self._store.transaction() as db:
            for kind, value in gone:
                await db.execute(
                    "DELETE FROM profile_facts WHERE customer_id = ? AND kind = ? AND value = ?", (customer_id, kind, value)
                )
            for kind, value in wanted:
                await db.execute(
                    "INSERT INTO profile_facts (customer_id, kind, value, channel, external_id, source_message_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, kind, value) DO UPDATE SET channel = excluded.channel, "
                    "external_id = excluded.external_id",
                    (customer_id, kind, value, inbound.channel, inbound.sender_id, source, now),
                )
        return True

    async def forget(self, customer_id: str, kinds: Iterable[str] | None = None) -> int:
        """Delete kept facts (of some kinds, or all); returns how many."""
        async with self._store.transaction() as db:
            if kinds is None:
                cur = await db.execute("DELETE FROM profile_facts WHERE customer_id = ?", (customer_id,))
            else:
                marks = list(kinds)
                cur = await db.execute(
                    f"DELETE FROM profile_facts WHERE customer_id = ? AND kind IN ({','.join('?' * len(marks))})",  # noqa: S608
                    (customer_id, *marks),
                )
            return cur.rowcount


# -- the profile side of a turn ------------------------------------------------------------------


class ProfileDialog:
    """Loading, keeping and showing a shopper's profile inside one turn.

    Like :class:`bot.consent.ConsentDialog`, it records its decisions in
    ``conversation.context`` in place (the engine writes the context with the turn).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.profiles = Profiles(store)

    async def load(self, inbound: InboundMessage, conversation: Conversation, *, verified: bool) -> None:
        """Once per conversation: the kept facts this identity may see, under the conversation's constraints."""
        context = conversation.context
        if context.get(LOADED_KEY):
            return
        context[LOADED_KEY] = True
        kept = await self.profiles.kept(conversation.customer_id, inbound.channel, inbound.sender_id, verified=verified)
        if kept.is_empty():
            return
        own = constraints_from_dict(context["constraints"]) if context.get("constraints") else None
        context["constraints"] = under(kept, own).to_dict()

    async def handle(
        self, inbound: InboundMessage, conversation: Conversation, text: str, *, verified: bool
    ) -> list[OutboundMessage] | None:
        """The replies when the message answered the question or asked about the profile, else None."""
        context = conversation.context
        if context.pop(PENDING_KEY, None):
            answer = True if text == YES_PAYLOAD else False if text == NO_PAYLOAD else yes_or_no(text)
            if answer is not None:
                context["last_intent"] = "profile_consent"
                if answer:
                    return [await self._grant(inbound, conversation, verified=verified)]
                await self.profiles.record(conversation.customer_id, inbound, "declined", Evidence.of(inbound))
                return [OutboundMessage(_("No problem: I won't keep anything about you after this conversation."))]
            # anything else: the shopper moved on, and a later "yes" is not an answer to this question
        request = profile_request(text)
        if request is None:
            return None
        context["last_intent"] = f"profile_{request.value}"
        if request is ProfileRequest.SHOW:
            return [await self._show(inbound, conversation, verified=verified)]
        if request is ProfileRequest.REMEMBER:
            return [await self._grant(inbound, conversation, verified=verified)]
        if request is ProfileRequest.CLEAR:
            await self.profiles.forget(conversation.customer_id)
            consent = await self.profiles.consent(conversation.customer_id, inbound, verified=verified)
            if consent is not None and consent.granted:
                await self.profiles.record(conversation.customer_id, inbound, "revoked", Evidence.of(inbound))
            if context.get("constraints"):
                context["constraints"] = _drop_kept(constraints_from_dict(context["constraints"])).to_dict()
            return [
                OutboundMessage(
                    _(
                        "Done: I've deleted the preferences I kept about you, and I won't remember new ones. "
                        "Say \"remember my preferences\" if you change your mind."
                    )
                )
            ]
        await self.forget(conversation, request.value)
        return [OutboundMessage(_forgotten(request))]

    async def forget(self, conversation: Conversation, field: str) -> int:
        """Drop one kept field ("sizes", "dietary"…) from the profile and from this conversation; returns facts deleted."""
        deleted = await self.profiles.forget(conversation.customer_id, [KEPT_KINDS[field]])
        if conversation.context.get("constraints"):
            conversation.context["constraints"] = without(_declared(conversation), field).to_dict()
        return deleted

    async def remember(
        self, inbound: InboundMessage, conversation: Conversation, additions: Constraints, *, verified: bool
    ) -> Constraints | None:
        """Add kept facts (a size replaces the sizes) when the shopper's yes stands; None, storing nothing, without it."""
        consent = await self.profiles.consent(conversation.customer_id, inbound, verified=verified)
        if consent is None or not consent.granted:
            return None
        current = _declared(conversation)
        kept = under(kept_part(current), kept_part(additions))
        data = current.to_dict()
        data.update({field: kept.to_dict()[field] for field in KEPT_KINDS})
        merged = constraints_from_dict(data)
        conversation.context["constraints"] = merged.to_dict()
        await self.profiles.keep(conversation.customer_id, inbound, merged, verified=verified)
        return kept_part(merged)

    async def after_constraints(
        self, inbound: InboundMessage, conversation: Conversation, constraints: Constraints, *, verified: bool
    ) -> bool:
        """Keep what changed when the shopper said yes; True when the question is still to be asked."""
        consent = await self.profiles.consent(conversation.customer_id, inbound, verified=verified)
        if consent is not None and consent.granted:
            await self.profiles.keep(conversation.customer_id, inbound, constraints, verified=verified)
            return False
        # asked before (answered or not): never again unless the shopper asks to be remembered
        return consent is None and not kept_part(constraints).is_empty()

    async def question(self, inbound: InboundMessage, conversation: Conversation, constraints: Constraints) -> OutboundMessage:
        """"Shall I remember size 42 and nut-free for your next visits? (yes/no)", recorded as asked."""
        kept = kept_part(constraints)
        await self.profiles.record(conversation.customer_id, inbound, "asked")
        conversation.context[PENDING_KEY] = True
        return OutboundMessage(
            _(
                "Shall I remember {facts} for your next visits? I'd only use it to filter suggestions, and you can ask "
                "\"what do you know about me?\" or say \"clear my profile\" at any time. (yes/no)",
                facts=join_list(describe(kept, kept_only=True)),
            ),
            buttons=(Button(_("Yes, remember"), YES_PAYLOAD), Button(_("No, thanks"), NO_PAYLOAD)),
        )

    async def _grant(self, inbound: InboundMessage, conversation: Conversation, *, verified: bool) -> OutboundMessage:
        await self.profiles.record(conversation.customer_id, inbound, "granted", Evidence.of(inbound))
        constraints = _declared(conversation)
        await self.profiles.keep(conversation.customer_id, inbound, constraints, verified=verified)
        facts = describe(kept_part(constraints), kept_only=True)
        if facts:
            return OutboundMessage(
                _(
                    "Great, I'll remember {facts} for your next visits. Ask \"what do you know about me?\" to see it, "
                    "or say \"clear my profile\" to delete it.",
                    facts=join_list(facts),
                )
            )
        return OutboundMessage(
            _(
                "Okay: from now on I'll remember your sizes, allergies and what you avoid for your next visits. "
                "Ask \"what do you know about me?\" to see it, or say \"clear my profile\" to delete it."
            )
        )

    async def _show(self, inbound: InboundMessage, conversation: Conversation, *, verified: bool) -> OutboundMessage:
        customer_id = conversation.customer_id
        consent = await self.profiles.consent(customer_id, inbound, verified=verified)
        kept = await self.profiles.kept(customer_id, inbound.channel, inbound.sender_id, verified=verified)
        here = _declared(conversation)
        lines: list[str] = []
        if consent is not None and consent.granted:
            kept_words = describe(kept, kept_only=True)
            if kept_words:
                lines.append(_("Kept for your next visits: {facts}.", facts=join_list(kept_words)))
            else:
                lines.append(_("You allowed me to remember your preferences, but I'm not keeping any right now."))
        else:
            lines.append(
                _("I don't keep anything about you between conversations. Say \"remember my preferences\" if you'd like me to.")
            )
        here_words = describe(here)
        if here_words:
            lines.append(_("In this conversation: {facts}.", facts=join_list(here_words)))
        else:
            lines.append(_("You haven't told me any preferences in this conversation."))
        lines.append(
            _(
                "To change something, just tell me (\"actually size 42\"). Say \"forget my size\", \"forget my allergies\" or "
                "\"clear my profile\" to delete what I keep, or \"send me my data\" for a copy of everything."
            )
        )
        return OutboundMessage("\n".join(lines), buttons=(Button(_("Clear my profile"), CLEAR_PAYLOAD),))



def _declared(conversation: Conversation) -> Constraints:
    data = conversation.context.get("constraints")
    return constraints_from_dict(data) if data else Constraints()


def _drop_kept(constraints: Constraints) -> Constraints:
    for field in KEPT_KINDS:
        constraints = without(constraints, field)
    return constraints


def _forgotten(request: ProfileRequest) -> str:
    return {
        ProfileRequest.FORGET_SIZES: _("Done: I've forgotten your sizes."),
        ProfileRequest.FORGET_DIETARY: _("Done: I've forgotten your allergies and dietary needs."),
        ProfileRequest.FORGET_MATERIALS: _("Done: I've forgotten the materials you avoid."),
        ProfileRequest.FORGET_COLORS: _("Done: I've forgotten the colours you avoid."),
        ProfileRequest.FORGET_BRANDS: _("Done: I've forgotten the brands you avoid."),
    }[request]
