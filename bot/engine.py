"""The dialog engine: one shopper message in, the replies out.

:meth:`DialogEngine.handle` runs the turn described in the design brief:

1. identity, conversation and memory (:mod:`bot.store`);
2. commands (``/help``, ``/language xx``, tapped buttons);
3. handoff state: while staff has the thread, the bot stays silent (a STOP still revokes);
   then follow-ups: consent keywords (STOP/START/HELP), the yes/no consent question and
   reminders ("remind me…", "my reminders", "cancel reminder 2"), see :mod:`bot.consent`
   and :mod:`bot.reminders`; the shopper's profile: kept sizes and allergies merged in when
   a conversation starts, "what do you know about me?", "forget my size" and the answer to
   "shall I remember?", see :mod:`bot.profile`;
4. understanding: intent and declared constraints (:mod:`bot.understanding`), then
   who the chat is (:mod:`bot.verification`: a WhatsApp number on file, or the one-time
   code dialog an unverified order question starts); numbered order lookups that are not
   the customer's are counted and rate-limited (:mod:`bot.order_lookup`);
5. retrieval from the knowledge base with the constraints as filters;
6. personalization (:mod:`bot.personalization`), and for a verified customer the
   re-ranking by prior orders (:mod:`bot.purchase_history`);
7. the responder's answer (:mod:`bot.responders`);
8. decisions: escalate, ask a clarifying question, offer a back-in-stock alert.

Turns of one chat run one at a time, in arrival order; turns of different chats
run concurrently. The whole turn is written to the store in one transaction at
the end, so a crash mid-turn leaves the inbox row to be processed again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.consent import PENDING_KEY as CONSENT_PENDING_KEY
from bot.consent import YES_PAYLOAD, ConsentDialog, add_alert_buttons
from bot.constraints import Constraints, constraints_from_dict
from bot.events import Event, EventBus
from bot.guardrails import NOTICES, Verdict, enforce
from bot.handoff import EscalationReason, bot_is_silent, escalate, handoff_notice
from bot.i18n import SUPPORTED_LOCALES, _, join_list, use_locale
from bot.locale_choice import LANGUAGE_COMMAND, choose_locale, explicit_language, language_name
from bot.logs import conversation_id
from bot.messages import Button, InboundMessage, OutboundMessage, Source
from bot.metrics import Metrics
from bot.notifiers import BaseNotifier, LogNotifier
from bot.order_lookup import OrderLookupGuard
from bot.personalization import filters_for
from bot.privacy import erase_customer, export_token
from bot.profile import ProfileDialog
from bot.purchase_history import PurchaseHistory, load_purchase_history, reasons_by_product, rerank
from bot.reminders import PENDING_KEY as REMINDER_PENDING_KEY
from bot.reminders import ReminderDialog
from bot.responders import NOT_CARRIED, PURCHASE_REASONS, NotCarried, OfflineResponder, Responder, TurnContext, disclosure
from bot.shop import ShopProfile
from bot.store import Conversation, Store, TurnAlreadyFinished, utc_now
from bot.understanding import Concern, Intent, PolicyTopic, Understanding, is_no, is_yes, strip_greeting, understand
from bot.verification import IdentityVerification
from jobs.followups import FollowUpPolicy
from kb.index import BaseIndex, IndexUnavailableError
from kb.models import Hit, SearchFilters
from kb.product_lines import ImpliedBrand, ProductLines
from kb.query import clean_query

if TYPE_CHECKING:  # the anthropic SDK loads only when Claude is configured
    from bot.claude_constraints import ConstraintExtractor

log = logging.getLogger(__name__)

TOPIC_QUERIES = {
    PolicyTopic.SHIPPING: "shipping delivery times costs",
    PolicyTopic.RETURNS: "returns refunds exchanges",
    PolicyTopic.PAYMENT: "payment methods",
    PolicyTopic.PRIVACY: "privacy personal data",
    PolicyTopic.CONTACT: "contact opening hours",
    PolicyTopic.SIZES: "size guide conversion",
}


EXPORT_LINK_LIFETIME = timedelta(hours=24)
# consecutive turns the bot could not answer before the thread goes to staff
UNANSWERED_BEFORE_HANDOFF = 2
CATEGORIES_NAMED = 6  # store categories named when it does not carry what was asked for
# a message with constraints and at most this many other words refines the previous search
REFINEMENT_MAX_WORDS = 2
_CONTENT_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_FILLER = frozenset(
    """any some one ones them those these that this in of for with and but also not only more less than
    under below over above around between actually make instead please cheaper bigger smaller size sizes
    color colour algo alguno alguna en de con sin pero también más menos talla color quelque un une en de avec sans
    mais aussi plus moins taille couleur irgendwas in mit ohne aber auch mehr weniger unter größe farbe algum alguma
    em com sem mas também mais menos tamanho cor""".split()
)


_NUMBER_REPLY = re.compile(r"^\s*\[?(\d{1,2})[\].)]?\s*$")


def _numbered_choice(text: str, offered: object) -> str | None:
    """The payload of option N when the shopper answers a numbered list with just "N"."""
    match = _NUMBER_REPLY.match(text)
    if match is None or not isinstance(offered, list):
        return None
    index = int(match.group(1)) - 1
    return str(offered[index]) if 0 <= index < len(offered) else None


def _content_words(text: str) -> list[str]:
    return [w for w in _CONTENT_WORD.findall(text.casefold()) if w not in _FILLER]


# intents whose message may declare constraints (the others skip the model's extractor)
CONSTRAINT_INTENTS = frozenset({Intent.PRODUCT_SEARCH, Intent.POLICY, Intent.ORDER_STATUS, Intent.UNKNOWN})


def _done(notices: list[OutboundMessage]) -> list[OutboundMessage]:
    """The notices that report what a tool did (a question without the thread is dropped with its pending state)."""
    return [n for n in notices if not any(b.payload == YES_PAYLOAD for b in n.buttons)]


class _ChatLocks:
    """One asyncio lock per chat, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class DialogEngine:
    """Runs turns. Built once in the app lifespan with the resources it uses."""

    def __init__(
        self,
        *,
        store: Store,
        index: BaseIndex,
        shop: ShopProfile,
        responder: Responder | None = None,
        results: int = 3,
        brands: tuple[str, ...] = (),
        product_lines: ProductLines | None = None,
        clock: Callable[[], datetime] = utc_now,
        events: EventBus | None = None,
        metrics: Metrics | None = None,
        secret: bytes = b"",
        public_url: str = "",
        followup_policy: FollowUpPolicy | None = None,
        constraint_extractor: ConstraintExtractor | None = None,
        notifier: BaseNotifier | None = None,
    ) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.public_url = public_url.rstrip("/")
        self.events = events or EventBus()
        self.metrics = metrics or Metrics()
        self.store = store
        self.index = index
        self.shop = shop
        self.responder: Responder = responder or OfflineResponder()
        self.fallback: Responder = OfflineResponder()
        self.results = results
        self.brands = brands
        self.product_lines = product_lines or ProductLines()  # "iPhone" → Apple (kb.product_lines)
        self._clock = clock
        self._locks = _ChatLocks()
        self.constraint_extractor = constraint_extractor  # None: the offline extractor of understand()
        self.consent = ConsentDialog(store, index, shop)
        self.reminders = ReminderDialog(store, index, shop, followup_policy or FollowUpPolicy())
        self.profile = ProfileDialog(store)
        self.verification = IdentityVerification(store, shop, notifier or LogNotifier(), self.secret)
        self.order_lookups = OrderLookupGuard(store)

    async def handle(
        self, inbound: InboundMessage, *, inbox_id: int | None = None, via_outbox: bool = False
    ) -> list[OutboundMessage]:
        """Run one turn for ``inbound`` and persist it; returns the replies.

        With ``via_outbox`` the replies are queued in the outbox in the same
        transaction (platform channels); otherwise the caller delivers them
        (web and terminal answer in the response).
        """
        started = time.perf_counter()
        async with self._locks.hold((inbound.channel, inbound.chat_id)):
            if inbox_id is not None and await self.store.inbox_status(inbox_id) not in (None, "accepted"):
                # the recovery job and the worker (or two deliveries) both had this row: it is answered once
                return await self.store.replies_for(inbox_id)
            conversation = await self.store.conversation_for(inbound)
            started_in = conversation.state
            conversation_id.set(conversation.id)
            locale, conversation = await self._resolve_locale(inbound, conversation)
            with use_locale(locale):
                replies, conversation = await self._turn(inbound, conversation, locale)
                # platforms without buttons show them as numbered options: remember what "1", "2"… mean
                conversation.context["last_buttons"] = [b.payload for reply in replies for b in reply.buttons][:10]
                if conversation.context.get("unsupported_language_notice") == "pending" and replies:
                    wanted = choose_locale(inbound, None, self.shop.default_locale).unsupported or ""
                    notice = self._unsupported_notice(wanted, locale)
                    replies = [dataclasses.replace(replies[0], text=notice + "\n" + replies[0].text), *replies[1:]]
                    conversation.context["unsupported_language_notice"] = "given"
            escalated = conversation.state == "pending_human" and started_in == "bot"
            reason = str(conversation.context.get("escalation", {}).get("reason", "asked_for_human")) if escalated else None
            try:
                written = await self.store.finish_turn(
                    inbox_id, conversation, inbound, replies, outbox=via_outbox, escalation_reason=reason,
                    started_in=started_in,
                )
            except TurnAlreadyFinished:  # another process finished this row while we computed: theirs stands
                return await self.store.replies_for(inbox_id) if inbox_id is not None else []
            if written is None:  # staff took the thread while the turn ran: the bot stays silent
                self.events.publish(Event("message", conversation.id, "human"))
                return []
            if reason is not None:
                self.metrics.escalations.labels(reason.split(":")[0]).inc()
                self.events.publish(Event("escalated", conversation.id, conversation.state))
            elif conversation.state in ("pending_human", "human"):
                self.events.publish(Event("message", conversation.id, conversation.state))
            if conversation.context.get("erase_requested_at") and not via_outbox:
                # answered in the response (web, terminal): nothing waits for delivery, erase now
                await erase_customer(self.store, conversation.customer_id, actor="shopper")
            self.metrics.turns.labels(inbound.channel, str(conversation.context.get("last_intent", "none"))).inc()
            self.metrics.turn_seconds.labels(inbound.channel).observe(time.perf_counter() - started)
            return replies

    async def accept_and_handle(self, inbound: InboundMessage) -> tuple[list[OutboundMessage], bool]:
        """Accept into the inbox, then handle; a replayed event returns its stored replies.

        Returns the replies and whether this delivery was new.
        """
        accepted = await self.store.accept(inbound)
        if not accepted.is_new and accepted.status == "done":
            return await self.store.replies_for(accepted.inbox_id), False
        replies = await self.handle(inbound, inbox_id=accepted.inbox_id)
        return replies, accepted.is_new

    # -- the steps -----------------------------------------------------------

    async def _resolve_locale(self, inbound: InboundMessage, conversation: Conversation) -> tuple[str, Conversation]:
        """The turn's language (see :mod:`bot.locale_choice`), remembered when the shopper chose it."""
        known = conversation.locale
        if known is None:
            customer = await self.store.get_customer(conversation.customer_id)
            known = customer.locale if customer else None
        choice = choose_locale(inbound, known, self.shop.default_locale)
        context = dict(conversation.context)
        if choice.unsupported and not context.get("unsupported_language_notice"):
            context["unsupported_language_notice"] = "pending"
        if choice.remember or (known and not conversation.locale):
            conversation = dataclasses.replace(conversation, locale=choice.locale)
        return choice.locale, dataclasses.replace(conversation, context=context)

    def _privacy_turn(
        self, text: str, context: dict[str, Any], conversation: Conversation, inbound: InboundMessage, now: datetime
    ) -> list[OutboundMessage] | None:
        """"Send me my data" and "forget me" (confirmed once); None when the message is neither."""
        if context.pop("pending_confirmation", None) == "forget_me":
            if is_yes(text) or text == "/forget yes":
                context["erase_requested_at"] = now.isoformat()
                return [OutboundMessage(_(
                    "Done. Everything we held about you in this shop assistant is being deleted now. "
                    "We keep only the record that you withdrew your consents, as the law requires."
                ))]
            if is_no(text) or text == "/forget no":
                return [OutboundMessage(_("Okay, I haven't deleted anything."))]
        intent = self._understand(text, conversation.locale or "en").intent if not text.startswith("/") else None
        if intent is Intent.FORGET_ME or text == "/forget":
            context["pending_confirmation"] = "forget_me"
            return [OutboundMessage(
                _("Do you want me to delete everything we hold about you (conversations, preferences, orders linked to "
                  "this chat)? This cannot be undone."),
                buttons=(Button(_("Yes, delete it"), "/forget yes"), Button(_("No, keep it"), "/forget no")),
            )]
        if intent is Intent.EXPORT_MY_DATA:
            expires = now + EXPORT_LINK_LIFETIME
            link = f"{self.public_url}/api/export/{export_token(conversation.customer_id, expires, self.secret)}"
            return [OutboundMessage(
                _("Here is a copy of everything we hold about you, as a JSON file. The link works for 24 hours "
                  "and only for you; please don't share it."),
                sources=(Source(_("Your data"), link),),
            )]
        return None

    @staticmethod
    def _unsupported_notice(tag: str, locale: str) -> str:
        supported = join_list([language_name(code, locale) for code in SUPPORTED_LOCALES])
        return _(
            "Sorry, I can't chat in {language} yet, so I'll answer in {current}. I speak {languages}.",
            language=language_name(tag, locale),
            current=language_name(locale, locale),
            languages=supported,
        )

    async def _turn(
        self, inbound: InboundMessage, conversation: Conversation, locale: str
    ) -> tuple[list[OutboundMessage], Conversation]:
        now = self._clock()
        context: dict[str, Any] = dict(conversation.context)
        first_turn = not context.get("turns")
        context["turns"] = int(context.get("turns", 0)) + 1
        conversation = dataclasses.replace(conversation, context=context)

        if bot_is_silent(conversation):
            await self.consent.while_staff_owns(inbound, conversation)  # a STOP still revokes
            return [], conversation  # staff has the thread: record only

        text = (inbound.button_payload or _numbered_choice(inbound.text, context.get("last_buttons")) or inbound.text).strip()
        verified = await self.store.is_verified(inbound.channel, inbound.sender_id)
        await self.profile.load(inbound, conversation, verified=verified)  # kept sizes, allergies… (with consent)
        followup = await self.consent.handle(inbound, conversation, text, now)  # STOP/START/HELP, yes/no to alerts
        if followup is None:  # the "shall I remember?" answer, "what do you know about me?", "forget my size"
            followup = await self.profile.handle(inbound, conversation, text, verified=verified)
        if followup is None:
            followup = await self.reminders.handle(inbound, conversation, text, now)
        if followup is not None:
            return followup, conversation
        if not text:
            # a photo, voice note, sticker or location without words
            notice = _("Thanks! I can only read text for now. Could you tell me in words what you're looking for?")
            return [OutboundMessage(notice)], conversation
        if LANGUAGE_COMMAND.match(text):
            chosen, unsupported = explicit_language(text)
            if chosen is None:
                context["unsupported_language_notice"] = "given"
                return [OutboundMessage(self._unsupported_notice(unsupported or text, locale))], conversation
            return [OutboundMessage(_("Okay, I'll continue in English."))], conversation

        privacy = self._privacy_turn(text, context, conversation, inbound, now)
        if privacy is not None:
            return privacy, conversation

        understanding = await self._understand_with_model(text, locale)
        # whose chat is this: a verified WhatsApp number, or the one-time code dialog (bot/verification.py)
        step = await self.verification.handle(inbound, conversation, text, understanding, now)
        conversation = step.conversation
        if step.answered:
            return self._disclosed(list(step.replies), first_turn), conversation
        if step.resume is not None:  # just verified: answer the question asked before
            text = step.resume
            understanding = await self._understand_with_model(text, locale)
        verified = await self.store.is_verified(inbound.channel, inbound.sender_id)  # the step may have verified it
        context["last_intent"] = understanding.intent.value
        previous = constraints_from_dict(context["constraints"]) if context.get("constraints") else None
        constraints = understanding.constraints.merged_into(previous) if previous else understanding.constraints
        if not constraints.is_empty():
            context["constraints"] = constraints.to_dict()
        # a correction updates what is kept (with consent); first time a size or an allergy is heard: ask once
        ask_to_remember = await self.profile.after_constraints(inbound, conversation, constraints, verified=verified)

        if understanding.intent is Intent.HUMAN:
            reason = EscalationReason.ASKED_FOR_HUMAN
            if understanding.concern is Concern.FRUSTRATION:
                reason = EscalationReason.FRUSTRATION
            elif understanding.concern is not None:
                reason = EscalationReason.SENSITIVE
            conversation = escalate(conversation, reason, now, detail=understanding.concern)
            return [handoff_notice(self.shop, now)], conversation

        notices: list[OutboundMessage] = []  # what a responder's tools asked or did, in our wording (bot.tools)
        filters = filters_for(constraints, lang=locale)
        implied: ImpliedBrand | None = None
        hits: list[Hit] = []
        near_misses: list[Hit] = []
        purchase_reasons: dict[str, str] = {}
        not_carried: NotCarried | None = None
        try:
            if understanding.intent is Intent.PRODUCT_SEARCH:
                query, in_stock_only, refines = self._product_query(text, understanding, context, locale)
                implied = self._implied_brand(text, locale, constraints, context, refines=refines)
                filters = filters_for(constraints, lang=locale, in_stock_only=in_stock_only, implied=implied)
                # prior orders re-rank what the hard filters let through (verified customers only)
                history = await load_purchase_history(self.store, self.index, conversation.customer_id) if verified else PurchaseHistory()
                pool = self.results * 3 if not history.is_empty() else self.results
                hits = await self.index.search(query, filters, k=pool, kinds=("product",))
                if not history.is_empty():
                    suggestions = rerank(hits, history, now)[: self.results]
                    hits = [s.hit for s in suggestions]
                    purchase_reasons = reasons_by_product(suggestions)
                if not hits and not filters.is_empty():
                    # the closest options may break the budget, size or stock, never an allergy or a dietary need
                    never_relaxed = SearchFilters(exclude_allergens=filters.exclude_allergens, dietary=filters.dietary)
                    near_misses = await self.index.search(query, never_relaxed, k=self.results, kinds=("product",))
                if not hits and not near_misses:
                    not_carried = await self._not_carried(query, locale)
            elif understanding.intent is Intent.POLICY:
                topic = understanding.policy_topic or PolicyTopic.GENERAL
                # the shopper's own words rank best; a tapped topic button has none, so it gets the topic's
                query = TOPIC_QUERIES.get(topic, text) if text.startswith("/topic") else text
                hits = await self.index.search(query, SearchFilters(lang=locale), k=3, kinds=("passage",))
        except IndexUnavailableError as exc:  # Weaviate down or unreachable: say so now, search again next turn
            log.warning("catalog search unavailable: %s", exc)
            notice = _("I can't search the catalog right now. Please try again in a few minutes, or ask for a person.")
            return self._disclosed([OutboundMessage(notice)], first_turn), conversation

        orders = await self.store.orders_for(conversation.customer_id) if verified else []
        if verified and understanding.intent is Intent.ORDER_STATUS and understanding.order_number:
            refusal = await self.order_lookups.check(inbound, understanding.order_number, orders, now)
            if refusal is not None:  # too many numbers that are not theirs: slow the guessing down
                return self._disclosed(refusal, first_turn), conversation
        ctx = TurnContext(
            inbound=inbound,
            conversation=conversation,
            understanding=understanding,
            constraints=constraints,
            filters=filters,
            shop=self.shop,
            locale=locale,
            now=now,
            first_turn=first_turn,
            hits=tuple(hits),
            near_misses=tuple(near_misses),
            orders=tuple(orders),
            customer_verified=verified,
            unanswered_streak=int(context.get("unanswered", 0)),
            extras={NOTICES: notices, PURCHASE_REASONS: purchase_reasons, **({NOT_CARRIED: not_carried} if not_carried else {})},
            implied_brand=implied,
        )
        verdict = await self._respond(ctx)
        # a tool's question or confirmation goes out whatever became of the draft it came with
        replies = [*step.replies, *verdict.replies, *notices]
        if verdict.escalation is not None:  # the responder handed off, or no reply passed the guardrail
            context.pop(CONSENT_PENDING_KEY, None)
            conversation = escalate(conversation, verdict.escalation, now, detail=verdict.detail)
            return [handoff_notice(self.shop, now), *_done(notices)], conversation

        searched = {Intent.PRODUCT_SEARCH, Intent.POLICY, Intent.UNKNOWN}
        answered = bool(hits or near_misses or not_carried) or understanding.intent not in searched
        context["unanswered"] = 0 if answered else int(context.get("unanswered", 0)) + 1
        conversation = dataclasses.replace(conversation, context=context)
        if context["unanswered"] >= UNANSWERED_BEFORE_HANDOFF:
            # two turns in a row the bot could not help: a person takes over
            context["unanswered"] = 0
            context.pop(CONSENT_PENDING_KEY, None)
            conversation = escalate(conversation, EscalationReason.UNANSWERED, now)
            return [handoff_notice(self.shop, now), *_done(notices)], conversation
        products = [h.product for h in (*hits, *near_misses) if h.product is not None]
        replies = add_alert_buttons(replies, products, filters)
        # one yes/no question at a time: an alert or reminder question asked this turn goes first, and
        # "shall I remember?" waits for a later turn (it is asked while the answer is still unknown)
        other_question = any(key in context for key in (CONSENT_PENDING_KEY, REMINDER_PENDING_KEY)) or any(
            b.payload.endswith((" yes", " no")) for n in notices for b in n.buttons
        )
        if ask_to_remember and not other_question:
            replies = [*replies, await self.profile.question(inbound, conversation, constraints)]
        return replies, conversation

    async def _understand_with_model(self, text: str, locale: str) -> Understanding:
        """:meth:`_understand`, with the constraints read by the model's extractor when one is configured."""
        understanding = self._understand(text, locale)
        if self.constraint_extractor is None or text.startswith("/") or understanding.intent not in CONSTRAINT_INTENTS:
            return understanding
        constraints = await self.constraint_extractor.extract(text, language=locale, brands=self.brands)
        intent = understanding.intent
        if intent is Intent.UNKNOWN and not constraints.is_empty():
            intent = Intent.PRODUCT_SEARCH
        return dataclasses.replace(understanding, intent=intent, constraints=constraints)

    def _disclosed(self, replies: list[OutboundMessage], first_turn: bool) -> list[OutboundMessage]:
        """Replies written outside the responder still open a conversation by saying the bot is automated."""
        if first_turn and replies:
            replies[0] = dataclasses.replace(replies[0], text=disclosure(self.shop) + " " + replies[0].text)
        return replies

    def _understand(self, text: str, locale: str) -> Understanding:
        if text.startswith("/topic "):
            name = text.split(maxsplit=1)[1]
            topic = PolicyTopic(name) if name in {t.value for t in PolicyTopic} else PolicyTopic.GENERAL
            return Understanding(Intent.POLICY, Constraints(), policy_topic=topic)
        if text in {"/help", "/start"}:
            return Understanding(Intent.HELP if text == "/help" else Intent.GREETING, Constraints())
        if text == "/human":
            return Understanding(Intent.HUMAN, Constraints())
        return understand(text, language=locale, brands=self.brands)

    async def _not_carried(self, query: str, locale: str) -> NotCarried | None:
        """What the shopper asked for when the store has no such kind of product, with what it does sell."""
        asked_for = await self.index.missing_kind(query, locale)
        if asked_for is None:
            return None
        categories = (await self.index.assortment()).categories
        return NotCarried(asked_for, categories[:CATEGORIES_NAMED])

    @staticmethod
    def _product_query(
        text: str, understanding: Understanding, context: dict[str, Any], locale: str
    ) -> tuple[str, bool, bool]:
        """The search query, whether the shopper asked for what is in stock, and whether it refines the last search.

        The message's product words (:func:`kb.query.clean_query`), or the earlier
        search it refines: "any in blue?" or "actually under 80" after "running shoes
        under 100" keep the products of the first message and add this one's constraints.
        """
        cleaned = clean_query(strip_greeting(text), locale)
        previous = context.get("last_query")
        refines = understanding.constraints.is_correction or not cleaned.text or (
            not understanding.constraints.is_empty() and len(_content_words(cleaned.text)) <= REFINEMENT_MAX_WORDS
        )
        if previous and refines:
            return f"{previous} {cleaned.text}".strip(), cleaned.in_stock_only, True
        query = cleaned.text or strip_greeting(text)
        context["last_query"] = query
        return query, cleaned.in_stock_only, False

    def _implied_brand(
        self, text: str, locale: str, constraints: Constraints, context: dict[str, Any], *, refines: bool
    ) -> ImpliedBrand | None:
        """The brand a product-line name implies ("iPhone 13" → Apple), kept while later messages refine that search.

        Not a declared constraint (:mod:`kb.product_lines`): a brand the shopper names wins.
        """
        declared, excluded = constraints.brands_include, constraints.brands_exclude
        implied = self.product_lines.implied_brand(strip_greeting(text), locale, declared=declared, excluded=excluded)
        if implied is None and refines and isinstance(kept := context.get("implied_brand"), dict):
            # "any under 500?" after "iphone 13": the line still stands, unless a brand was named since
            line = self.product_lines.get(str(kept.get("line", "")))
            if line is not None and not declared and line.brand.casefold() not in {b.casefold() for b in excluded}:
                implied = ImpliedBrand(line.brand, line.name)
        if implied is not None:
            context["implied_brand"] = {"brand": implied.brand, "line": implied.line}
        else:
            context.pop("implied_brand", None)
        return implied

    async def _respond(self, ctx: TurnContext) -> Verdict:
        """The responder's replies once the guardrail passed them (:func:`bot.guardrails.enforce`).

        A failing reply is regenerated once, then replaced by the offline answer; when
        nothing passes, or the responder asked for staff, the verdict carries an escalation.
        """

        async def generate(turn: TurnContext) -> list[OutboundMessage]:
            try:
                return await self.responder.respond(turn)
            except Exception:  # a failing model-backed responder must not cost the shopper an answer
                if self.responder is self.fallback:
                    raise
                log.exception("responder %s failed; answering with the offline responder", self.responder.name)
                return await self.fallback.respond(turn)

        return await enforce(generate, ctx, safe=self.fallback)
