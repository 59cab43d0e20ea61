"""Shopper profiles: constraints kept across conversations only with consent, shown, corrected and cleared.

The chat tests drive the real engine on the demo store (a real SQLite file) with a
faked clock; a "restart" closes the runtime and opens a new one on the same files,
and the nightly retention job ends the old conversation so the next message starts
a new one, which only the kept profile can carry constraints into.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.constraints import Constraints, Size
from bot.i18n import _, join_list, use_locale
from bot.messages import InboundMessage, OutboundMessage
from bot.privacy import erase_customer, export_customer
from bot.profile import (
    NO_PAYLOAD,
    PENDING_KEY,
    YES_PAYLOAD,
    ProfileRequest,
    Profiles,
    kept_part,
    profile_request,
    under,
)
from bot.runtime import Runtime, open_runtime
from bot.settings import Settings
from jobs.retention import RetentionPolicy, apply_retention
from kb.inventory import product_for_sku
from tests.fakes.followups import Clock

NOW = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)


class Chat:
    """One shopper on one channel; survives restarts (``runtime`` is swapped)."""

    def __init__(self, runtime: Runtime, clock: Clock, user: str, channel: str = "web") -> None:
        self.runtime, self.clock, self.user, self.channel = runtime, clock, user, channel
        self.count = 0

    async def say(self, text: str = "", *, tap: str | None = None) -> list[OutboundMessage]:
        self.count += 1
        self.clock.advance(seconds=5)
        inbound = InboundMessage(
            channel=self.channel, external_id=f"{self.user}-{self.count}-{self.clock().timestamp()}", sender_id=self.user,
            chat_id=self.user, text=text or (tap or ""), timestamp=self.clock(), button_payload=tap,
        )
        return await self.runtime.engine.handle(inbound)

    async def customer(self) -> str:
        conversation = await self.runtime.store.open_conversation(self.channel, self.user)
        assert conversation is not None
        return conversation.customer_id

    async def constraints(self) -> dict[str, object]:
        conversation = await self.runtime.store.open_conversation(self.channel, self.user)
        assert conversation is not None
        return dict(conversation.context.get("constraints") or {})


def cards(replies: list[OutboundMessage]) -> list[str]:
    return [card.sku for reply in replies for card in reply.products]


def sizes(constraints: dict[str, object]) -> list[str]:
    return [str(s["value"]) for s in constraints.get("sizes") or []]  # type: ignore[attr-defined]


def text_of(replies: list[OutboundMessage]) -> str:
    return "\n".join(r.text for r in replies)


# -- the done-when conversation, in each language ------------------------------------------------------------

SCRIPTS = {
    #       turn 1 (declares size M), turn 3 (unrelated), turn 4, after the restart, the correction
    "en": ("do you have jackets in size M?", "how long does shipping take?", "and running t-shirts?", "any fleece?",
           "actually size L"),
    "es": ("¿tienen chaquetas en talla M?", "¿cuánto tarda el envío?", "¿y camisetas de running?", "¿tienen forros polares?",
           "mejor en talla L"),
    "fr": ("avez-vous des vestes en taille M ?", "combien de temps prend la livraison ?", "et des t-shirts de course ?",
           "avez-vous des vestes imperméables ?", "en fait plutôt en taille L"),
    "de": ("haben Sie Jacken in Größe M?", "wie lange dauert der Versand?", "und Laufshirts?", "haben Sie Fleecejacken?",
           "doch lieber Größe L"),
    "pt_BR": ("vocês têm jaquetas tamanho M?", "quanto tempo demora a entrega?", "e camisetas de corrida?", "vocês têm fleece?",
              "na verdade tamanho G"),
}
YES = {"en": "yes", "es": "sí", "fr": "oui", "de": "ja", "pt_BR": "sim"}


def in_size(skus: list[str], size: str) -> bool:
    return bool(skus) and all(f"-{size}-" in sku for sku in skus)


@pytest.mark.parametrize("locale", list(SCRIPTS))
async def test_a_declared_size_holds_three_turns_later_after_a_restart_with_consent_and_a_correction_replaces_it(
    settings: Settings, locale: str
) -> None:
    first, unrelated, later, after_restart, correction = SCRIPTS[locale]
    clock = Clock(NOW)
    user = f"shopper-{locale}"
    async with open_runtime(settings, clock=clock) as runtime:
        chat = Chat(runtime, clock, user)
        replies = await chat.say(first)
        assert in_size(cards(replies), "M"), replies
        question = replies[-1]
        assert [b.payload for b in question.buttons] == [YES_PAYLOAD, NO_PAYLOAD]
        with use_locale(locale):  # asked in the shopper's language
            assert question.text == _(
                "Shall I remember {facts} for your next visits? I'd only use it to filter suggestions, and you can ask "
                "\"what do you know about me?\" or say \"clear my profile\" at any time. (yes/no)",
                facts=join_list([_("size {size}", size="M")]),
            )
            if locale != "en":
                assert _("Yes, remember") != "Yes, remember"
        granted = await chat.say(YES[locale])
        with use_locale(locale):
            assert _("size {size}", size="M") in text_of(granted)
        await chat.say(unrelated)
        fourth = await chat.say(later)  # turn 4: still size M
        assert in_size(cards(fourth), "M"), fourth
        customer = await chat.customer()
        consent = await Profiles(runtime.store).consent(customer)
        assert consent is not None and consent.granted
        assert consent.evidence_text == YES[locale] and consent.evidence_message_id and consent.evidence_message_id.startswith("web:")

    clock.advance(days=100)
    async with open_runtime(settings, clock=clock) as runtime:  # a restart; the old conversation is then removed
        await apply_retention(runtime.store, RetentionPolicy(transcript_days=90), clock())
        assert await runtime.store.open_conversation("web", user) is None
        chat.runtime = runtime
        replies = await chat.say(after_restart)
        assert await chat.customer() == customer
        assert sizes(await chat.constraints()) == ["M"]
        assert in_size(cards(replies), "M"), replies
        assert not any(b.payload == YES_PAYLOAD for r in replies for b in r.buttons)  # asked once, never again

        corrected = await chat.say(correction)
        assert sizes(await chat.constraints()) == ["L"]
        assert in_size(cards(corrected), "L"), corrected
        kept = await Profiles(runtime.store).kept(customer, "web", user, verified=False)
        assert kept.sizes == (Size("clothing", "L"),)  # the correction replaced the kept size


async def test_without_consent_nothing_outlives_the_conversation(settings: Settings) -> None:
    clock = Clock(NOW)
    async with open_runtime(settings, clock=clock) as runtime:
        chat = Chat(runtime, clock, "nora")
        replies = await chat.say("do you have jackets in size M?")
        assert replies[-1].buttons[-1].payload == NO_PAYLOAD
        declined = await chat.say(tap=NO_PAYLOAD)
        assert "won't keep" in text_of(declined)
        replies = await chat.say("I'm vegan, any snacks?")
        assert not any(b.payload == YES_PAYLOAD for r in replies for b in r.buttons)  # no means no: not asked again
        customer = await chat.customer()
        assert (await Profiles(runtime.store).kept(customer, "web", "nora", verified=False)).is_empty()
        consent = await Profiles(runtime.store).consent(customer)
        assert consent is not None and consent.status == "declined" and consent.evidence_text == NO_PAYLOAD
    clock.advance(days=100)
    async with open_runtime(settings, clock=clock) as runtime:
        await apply_retention(runtime.store, RetentionPolicy(transcript_days=90), clock())
        chat.runtime = runtime
        await chat.say("any fleece?")
        assert sizes(await chat.constraints()) == []


async def test_an_unanswered_question_is_not_consent_and_is_not_asked_again(settings: Settings) -> None:
    clock = Clock(NOW)
    async with open_runtime(settings, clock=clock) as runtime:
        chat = Chat(runtime, clock, "omar")
        await chat.say("nut-free snacks please")
        await chat.say("how long does shipping take?")  # moved on
        replies = await chat.say("yes")  # a later yes answers nothing
        assert "remember" not in text_of(replies).casefold()
        customer = await chat.customer()
        consent = await Profiles(runtime.store).consent(customer)
        assert consent is not None and consent.status == "asked"
        assert (await Profiles(runtime.store).kept(customer, "web", "omar", verified=False)).is_empty()
        conversation = await runtime.store.open_conversation("web", "omar")
        assert conversation is not None and PENDING_KEY not in conversation.context


# -- seeing, changing and clearing ------------------------------------------------------------------------


async def test_what_do_you_know_about_me_forget_my_size_and_clear_my_profile(settings: Settings) -> None:
    clock = Clock(NOW)
    async with open_runtime(settings, clock=clock) as runtime:
        chat = Chat(runtime, clock, "lea")
        await chat.say("I have a nut allergy, any snacks in size M? no wool please")
        await chat.say(tap=YES_PAYLOAD)
        await chat.say("under 40 please")
        shown = text_of(await chat.say("what do you know about me?"))
        assert "Kept for your next visits: size M, nut-free, and no wool." in shown
        assert "In this conversation:" in shown and "up to 40" in shown  # the budget is for this conversation only
        customer = await chat.customer()
        profiles = Profiles(runtime.store)

        assert text_of(await chat.say("please forget my size")) == "Done: I've forgotten your sizes."
        kept = await profiles.kept(customer, "web", "lea", verified=False)
        assert kept.sizes == () and kept.dietary == ("nut_free",)
        assert sizes(await chat.constraints()) == []  # gone from this conversation too, so it is not kept again
        await chat.say("any chocolate?")
        assert (await profiles.kept(customer, "web", "lea", verified=False)).sizes == ()

        cleared = text_of(await chat.say("forget everything you know about my preferences"))
        assert cleared.startswith("Done: I've deleted the preferences")
        assert (await profiles.kept(customer, "web", "lea", verified=False)).is_empty()
        consent = await profiles.consent(customer)
        assert consent is not None and consent.status == "revoked"
        await chat.say("vegan snacks in size L")  # nothing is kept any more, and the question is not asked again
        assert (await profiles.kept(customer, "web", "lea", verified=False)).is_empty()

        remembered = text_of(await chat.say("remember my preferences"))
        assert "size L" in remembered and "vegan" in remembered
        assert (await profiles.kept(customer, "web", "lea", verified=False)).sizes == (Size("clothing", "L"),)

        # "forget me" is still the full erasure, confirmed first
        replies = await chat.say("forget me")
        assert [b.payload for r in replies for b in r.buttons] == ["/forget yes", "/forget no"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What do you know about me?", ProfileRequest.SHOW),
        ("¿Qué sabes de mí?", ProfileRequest.SHOW),
        ("que sais-tu de moi ?", ProfileRequest.SHOW),
        ("Was weißt du über mich?", ProfileRequest.SHOW),
        ("o que você sabe sobre mim?", ProfileRequest.SHOW),
        ("forget my size", ProfileRequest.FORGET_SIZES),
        ("olvida mi talla", ProfileRequest.FORGET_SIZES),
        ("oublie ma pointure", ProfileRequest.FORGET_SIZES),
        ("vergiss meine Größe", ProfileRequest.FORGET_SIZES),
        ("esqueça meu tamanho", ProfileRequest.FORGET_SIZES),
        ("please delete my allergies", ProfileRequest.FORGET_DIETARY),
        ("borra mis alergias", ProfileRequest.FORGET_DIETARY),
        ("clear my profile", ProfileRequest.CLEAR),
        ("forget everything you know about my preferences", ProfileRequest.CLEAR),
        ("efface mon profil", ProfileRequest.CLEAR),
        ("lösche mein Profil", ProfileRequest.CLEAR),
        ("apague meu perfil", ProfileRequest.CLEAR),
        ("remember my preferences", ProfileRequest.REMEMBER),
        ("merk dir meine Größe", ProfileRequest.REMEMBER),
        # not profile requests
        ("forget me", None),
        ("delete my data", None),
        ("do you have jackets in my size M?", None),
        ("I need boots to keep my feet warm in size 42", None),
        ("running shoes size 42", None),
    ],
)
def test_profile_requests_in_five_languages(text: str, expected: ProfileRequest | None) -> None:
    assert profile_request(text) is expected


def test_the_conversation_wins_over_what_is_kept_and_allergies_add_up() -> None:
    kept = Constraints(sizes=(Size("clothing", "M"),), dietary=("nut_free",), colors_exclude=("red",))
    here = Constraints(sizes=(Size("clothing", "L"),), dietary=("vegan",), colors_include=("red",))
    merged = under(kept, here)
    assert merged.sizes == (Size("clothing", "L"),)
    assert merged.dietary == ("nut_free", "vegan")
    assert merged.colors_exclude == () and merged.colors_include == ("red",)
    assert kept_part(merged).colors_include == ()


# -- no leaks between customers and channels ---------------------------------------------------------------


async def test_two_customers_on_two_channels_never_see_each_others_profile(settings: Settings) -> None:
    clock = Clock(NOW)
    async with open_runtime(settings, clock=clock) as runtime:
        ana = Chat(runtime, clock, "ana-web", "web")
        ben = Chat(runtime, clock, "555001", "telegram")
        await ana.say("I have a nut allergy, any jackets in size S?")
        await ana.say("yes")
        await ben.say("gluten free snacks please, and jackets in XL")
        await ben.say("ja")  # Ben answers in German: still a yes
        ana_id, ben_id = await ana.customer(), await ben.customer()
        assert ana_id != ben_id
        profiles = Profiles(runtime.store)
        assert (await profiles.kept(ana_id, "web", "ana-web", verified=False)).dietary == ("nut_free",)
        assert (await profiles.kept(ben_id, "telegram", "555001", verified=False)).dietary == ("gluten_free",)

        ana_sees = text_of(await ana.say("what do you know about me?"))
        ben_sees = text_of(await ben.say("what do you know about me?"))
        assert "nut-free" in ana_sees and "size S" in ana_sees and "gluten" not in ana_sees and "XL" not in ana_sees
        assert "gluten-free" in ben_sees and "size XL" in ben_sees and "nut" not in ben_sees and "size S" not in ben_sees

        ben_jackets = await ben.say("any jackets?")
        assert in_size(cards(ben_jackets), "XL")
        assert sizes(await ben.constraints()) == ["XL"]
        assert (await ben.constraints())["dietary"] == ["gluten_free"]

    clock.advance(days=100)
    async with open_runtime(settings, clock=clock) as runtime:  # new conversations for both, after a restart
        await apply_retention(runtime.store, RetentionPolicy(transcript_days=90), clock())
        ana.runtime = ben.runtime = runtime
        await ana.say("any fleece?")
        await ben.say("any fleece?")
        assert sizes(await ana.constraints()) == ["S"] and (await ana.constraints())["dietary"] == ["nut_free"]
        assert sizes(await ben.constraints()) == ["XL"] and (await ben.constraints())["dietary"] == ["gluten_free"]


async def test_kept_facts_reach_another_channel_of_the_same_customer_only_when_both_are_verified(settings: Settings) -> None:
    clock = Clock(NOW)
    async with open_runtime(settings, clock=clock) as runtime:
        store = runtime.store
        whatsapp = Chat(runtime, clock, "whatsapp:+34600111222", "whatsapp")
        await whatsapp.say("jackets in size M please")
        customer = await whatsapp.customer()
        await store.link_identity("whatsapp", "whatsapp:+34600111222", customer, verified=True)
        await whatsapp.say("yes")
        # an unverified Telegram account pointed at the same customer sees nothing
        await store.link_identity("telegram", "tg-1", customer, verified=False)
        telegram = Chat(runtime, clock, "tg-1", "telegram")
        shown = text_of(await telegram.say("what do you know about me?"))
        assert "size M" not in shown
        assert sizes(await telegram.constraints()) == []
        # and the WhatsApp number's yes is not this account's yes: it is asked itself, and nothing is kept meanwhile
        replies = await telegram.say("jackets in size XL please")
        assert replies[-1].buttons[0].payload == YES_PAYLOAD
        kept = await Profiles(store).kept(customer, "whatsapp", "whatsapp:+34600111222", verified=True)
        assert kept.sizes == (Size("clothing", "M"),)
        assert (await Profiles(store).kept(customer, "telegram", "tg-1", verified=False)).is_empty()
        # once verified (one-time code), a new conversation there starts with the kept size
        await store.link_identity("telegram", "tg-2", customer, verified=True)
        verified = Chat(runtime, clock, "tg-2", "telegram")
        await verified.say("any fleece?")
        assert sizes(await verified.constraints()) == ["M"]


# -- privacy ------------------------------------------------------------------------------------------------


async def test_profile_and_its_consent_are_exported_and_erased(settings: Settings) -> None:
    clock = Clock(NOW)
    async with open_runtime(settings, clock=clock) as runtime:
        chat = Chat(runtime, clock, "eva")
        await chat.say("lactose free snacks, size XS")
        await chat.say("yes")
        customer = await chat.customer()
        export = await export_customer(runtime.store, customer)
        assert {row["value"] for row in export["data"]["profile_facts"]} == {"clothing:XS", "lactose_free"}
        assert [row["status"] for row in export["data"]["profile_consents"]] == ["asked", "granted"]
        report = await erase_customer(runtime.store, customer)
        assert report.rows_deleted["profile_facts"] == 2 and report.rows_deleted["profile_consents"] == 2
        assert (await Profiles(runtime.store).kept(customer, "web", "eva", verified=False)).is_empty()
        assert await Profiles(runtime.store).consent(customer) is None


# -- allergies stay hard when nothing fits -------------------------------------------------------------------


async def test_near_misses_break_the_budget_but_never_an_allergy_and_labels_are_only_claimed_when_true(settings: Settings) -> None:
    clock = Clock(NOW)
    async with open_runtime(settings, clock=clock) as runtime:
        chat = Chat(runtime, clock, "ida")
        replies = await chat.say("I have a nut allergy: chocolate or granola under 1 euro?")
        assert "Nothing in our catalog matches everything you asked for" in replies[0].text
        assert replies[0].products
        for card in replies[0].products:
            product = await product_for_sku(runtime.index, card.sku)
            assert product is not None
            allergens = set(product.attributes.get("allergens") or [])
            assert not allergens & {"nuts", "peanuts"}, product.title
            assert "over your budget" in (card.reason or "")
        found = await chat.say("any candles?")
        for card in (c for r in found for c in r.products):
            assert "nut-free" not in (card.reason or "")  # a candle carries no food label


TAUGHT = {  # the phrases the bot's own messages suggest, per language: each must do what it says
    "en": ("what do you know about me?", "forget my size", "forget my allergies", "clear my profile", "remember my preferences"),
    "es": ("¿qué sabes de mí?", "olvida mi talla", "olvida mis alergias", "borra mi perfil", "recuerda mis preferencias"),
    "fr": ("que sais-tu de moi ?", "oublie ma taille", "oublie mes allergies", "efface mon profil",
           "souviens-toi de mes préférences"),
    "de": ("was weißt du über mich?", "vergiss meine Größe", "vergiss meine Allergien", "lösche mein Profil",
           "merk dir meine Vorlieben"),
    "pt_BR": ("o que você sabe sobre mim?", "esqueça meu tamanho", "esqueça minhas alergias", "apague meu perfil",
              "lembre minhas preferências"),
}


@pytest.mark.parametrize("locale", list(TAUGHT))
def test_the_phrases_the_bot_teaches_are_the_ones_it_understands(locale: str) -> None:
    show, sizes_, dietary, clear, remember = TAUGHT[locale]
    assert [profile_request(t) for t in TAUGHT[locale]] == [
        ProfileRequest.SHOW, ProfileRequest.FORGET_SIZES, ProfileRequest.FORGET_DIETARY, ProfileRequest.CLEAR, ProfileRequest.REMEMBER,
    ]
    with use_locale(locale):
        taught = _(
            "To change something, just tell me (\"actually size 42\"). Say \"forget my size\", \"forget my allergies\" or "
            "\"clear my profile\" to delete what I keep, or \"send me my data\" for a copy of everything."
        ) + _("I don't keep anything about you between conversations. Say \"remember my preferences\" if you'd like me to.")
        asked = _(
            "Shall I remember {facts} for your next visits? I'd only use it to filter suggestions, and you can ask "
            "\"what do you know about me?\" or say \"clear my profile\" at any time. (yes/no)",
            facts="x",
        )
    for phrase in (sizes_, dietary, clear, remember):
        assert phrase.casefold() in taught.casefold(), phrase
    assert show.rstrip(" ?").removeprefix("¿").casefold() in asked.casefold()
