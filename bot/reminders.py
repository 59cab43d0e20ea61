"""Reminders the shopper asks for: "remind me on Friday at 6pm about the blue dress", "recuérdamelo mañana".

Handled in the turn before understanding (the engine calls :meth:`ReminderDialog.handle`
right after the consent keywords), in English, Spanish, French, German and
Brazilian Portuguese:

* **set** (:data:`REMIND`): "remind me…", "recuérdame/recuérdamelo…", "rappelle-moi…",
  "erinnere mich…", "me lembre…". The date comes from the constraint parser's
  deadline (:func:`bot.constraints.extract_constraints` + :func:`~bot.constraints.resolve_deadline`:
  "tomorrow", "on Friday", "el viernes", "am 20. Dezember"…), the time of day from
  :func:`parse_time_of_day` ("at 6pm", "a las 18", "à 18h", "um 18 Uhr", "às 18h",
  "tonight", "in the morning"), or a delay ("in 2 hours", "dans 30 minutes"). Both
  are read in the shopper's timezone (the customer's, else the store's). What to
  remind about is the rest of the sentence ("about the blue dress"), linked to a
  catalog product when one matches, else the last product shown ("recuérdamelo").
  Without a time the bot asks for one. The request itself is the consent (purpose
  ``reminders``, with the message as evidence).
* **list** (:data:`LIST`): "my reminders", "mis recordatorios", "mes rappels",
  "meine Erinnerungen", "meus lembretes": numbered by due time.
* **cancel** (:data:`CANCEL`): "cancel reminder 2", "cancelar recordatorio 2",
  "annuler le rappel 2", "Erinnerung 2 löschen", "cancelar lembrete 2" (the
  number from the list), or a tapped "Cancel 2" button (``/reminder cancel <id>``).

* **offered by the language model** (:meth:`ReminderDialog.offer`, the ``schedule_reminder``
  tool, for requests the patterns above did not catch): the model's reading of the
  shopper is not their words, so without a standing ``reminders`` consent on that
  channel the bot asks "Want me to remind you on Fri, Nov 20 at 6:00 PM about …?
  (yes/no)" (the consent question of :mod:`bot.consent`) and only an explicit yes
  schedules it; with one it schedules at once and says so.

A reminder is a row of the ``followups`` table (kind ``reminder``); the dispatcher
(:mod:`jobs.followups`) sends it when due, applying quiet hours and the other
send-time rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton, format_time

from bot.consent import PENDING_KEY as CONSENT_PENDING_KEY
from bot.consent import ConsentLedger, Evidence, Purpose, fold, stamp, yes_no_question, yes_or_no
from bot.constraints import extract_constraints, resolve_deadline
from bot.i18n import _, current_locale, ngettext
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.shop import ShopProfile
from bot.store import Conversation, Store
from jobs.followups import FollowUpPolicy
from kb.index import BaseIndex
from kb.models import Product, SearchFilters

MAX_ACTIVE_REMINDERS = 20
PARSE_LANGUAGES = ("en", "es", "fr", "de", "pt")
DEFAULT_TIME = time(10, 0)  # a day without a time ("remind me on Friday")
PENDING_KEY = "reminder_pending"  # conversation.context: a request waiting for its time
CANCEL_PAYLOAD = "/reminder cancel"

# --- what the shopper asks (matched on lower-cased text; accents optional) -----------------------

REMIND = re.compile(
    r"\b(?:remind\s+me|set\s+(?:me\s+)?a\s+reminder|add\s+a\s+reminder)\b"
    r"|\brecu[eé]rd(?:a|e)me(?:lo|la|los|las)?\b|\brecordarme\b|\bpon(?:me)?\s+un\s+recordatorio\b"
    r"|\brappel(?:le|ez)[-\s]moi\b|\bfais[-\s]moi\s+penser\b"
    r"|\berinner(?:e|n|st)?\s+(?:sie\s+)?mich\b"
    r"|\bme\s+lembr(?:e|a|ar)\b|\blembr(?:e|a)[-\s]me\b"
)
LIST = re.compile(
    r"\b(?:my|list|show|see|list\s+my|show\s+me\s+my|what\s+are\s+my)\s+reminders\b|^reminders\??$"
    r"|\b(?:mis|ver|ver\s+mis)\s+recordatorios\b|^recordatorios\??$"
    r"|\b(?:mes|voir|voir\s+mes)\s+rappels\b|^rappels\??$"
    r"|\b(?:meine|zeig(?:e)?(?:\s+mir)?(?:\s+meine)?)\s+erinnerungen\b|^erinnerungen\??$"
    r"|\b(?:meus|ver|ver\s+meus)\s+lembretes\b|^lembretes\??$"
)
_NUMBER = r"\s*(?:#|n[oº°]\.?\s*|nr\.?\s*|number\s*|n[uú]mero\s*|nummer\s*)?(\d{1,3})\b"
CANCEL = re.compile(
    r"\b(?:cancel|delete|remove)\s+(?:my\s+|the\s+)?reminder" + _NUMBER
    + r"|\b(?:cancela|cancelar|borra|borrar|elimina|eliminar|quita|quitar)\s+(?:el\s+)?recordatorio" + _NUMBER
    + r"|\b(?:annule|annuler|annulez|supprime|supprimer|supprimez)\s+(?:le\s+)?rappel" + _NUMBER
    + r"|\b(?:l[öo]sche|storniere|entferne)\s+(?:die\s+)?erinnerung" + _NUMBER
    + r"|\berinnerung" + _NUMBER + r"\s+(?:l[öo]schen|stornieren|entfernen|absagen)\b"
    + r"|\b(?:cancela|cancelar|apaga|apagar|remove|remover|exclui|excluir)\s+(?:o\s+)?lembrete" + _NUMBER
)

# --- when ---------------------------------------------------------------------------------

_PM = (
    r"p\.?\s?m\.?|in\s+the\s+(?:evening|afternoon)|de\s+la\s+(?:tarde|noche)|du\s+soir|de\s+l'apr[eè]s-midi|"
    r"abends|nachmittags|am\s+abend|am\s+nachmittag|da\s+(?:tarde|noite)|[àa]\s+(?:tarde|noite)"
)
_AM = r"a\.?\s?m\.?|in\s+the\s+morning|de\s+la\s+ma[ñn]ana|du\s+matin|morgens|vormittags|am\s+morgen|da\s+manh[ãa]"
_CUE = r"(?:at|around|by|a\s+las|a\s+la|sobre\s+las|[àa]|vers|um|gegen|[àa]s|pelas|at[ée]\s+[àa]s)"
_CLOCK = re.compile(
    r"(?<![\d,/])(?:(?P<cue>" + _CUE + r")\s+)?(?P<h>\d{1,2})"
    r"(?:(?::|h|\.(?=\d{2}\b))(?P<m>\d{2}))?"
    r"(?:\s*(?:h(?:s|rs)?|uhr|horas|heures?)(?![a-zà-ü]))?(?P<unit_end>)"
    r"(?:\s*(?P<pm>" + _PM + r")|\s*(?P<am>" + _AM + r"))?(?![\w])",
)
_NOON = re.compile(r"\b(?:(?:at|a|al|à|um|ao|zu)\s+)?(?:noon|midday|mediod[ií]a|midi|mittags?|meio[-\s]dia)\b")
_MIDNIGHT = re.compile(r"\b(?:(?:at|a|à|um|[àa]\s+la|[àa])\s+)?(?:midnight|medianoche|minuit|mitternacht|meia[-\s]noite)\b")
_PERIODS: tuple[tuple[re.Pattern[str], time], ...] = (
    (re.compile(r"\b(?:tonight|this\s+evening|in\s+the\s+evening|esta\s+noche|por\s+la\s+noche|ce\s+soir|le\s+soir|"
                r"heute\s+abend|abends|am\s+abend|hoje\s+[àa]\s+noite|[àa]\s+noite|de\s+noite)\b"), time(19, 0)),
    (re.compile(r"\b(?:this\s+afternoon|in\s+the\s+afternoon|por\s+la\s+tarde|esta\s+tarde|cet\s+apr[eè]s-midi|"
                r"l'apr[eè]s-midi|nachmittags|am\s+nachmittag|heute\s+nachmittag|[àa]\s+tarde|de\s+tarde)\b"), time(15, 0)),
    (re.compile(r"\b(?:in\s+the\s+morning|morning|por\s+la\s+ma[ñn]ana|de\s+ma[ñn]ana\s+temprano|le\s+matin|demain\s+matin|"
                r"morgens|morgen\s+fr[üu]h|am\s+morgen|vormittags|de\s+manh[ãa]|pela\s+manh[ãa])\b"), time(9, 0)),
)
_TONIGHT = re.compile(r"\b(?:tonight|this\s+evening|esta\s+noche|ce\s+soir|heute\s+abend|hoje\s+[àa]\s+noite)\b")
_TOMORROW_MORNING = re.compile(r"\bma[ñn]ana\s+por\s+la\s+ma[ñn]ana\b")
_DELAY = re.compile(
    r"\b(?:in|within|en|dentro\s+de|dans|d'ici|binnen|em|daqui\s+a)\s+"
    r"(?:(?P<one>an?|one|half\s+an|una?|un|une|media|einer|eine|ein|einer\s+halben|uma|um|meia)|(?P<n>\d{1,3}))\s*"
    r"(?P<unit>hours?|hrs?|h|minutes?|mins?|horas?|minutos?|heures?|stunden?|std|minuten?|min)\b"
)
_WEEKDAYS = (
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|lunes|martes|mi[eé]rcoles|jueves|viernes|s[áa]bado|domingo|"
    r"lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|"
    r"sonntag|segunda(?:-feira)?|ter[çc]a(?:-feira)?|quarta(?:-feira)?|quinta(?:-feira)?|sexta(?:-feira)?"
)
_DAY_WORDS = (
    r"today|tomorrow|day\s+after\s+tomorrow|next\s+week|hoy|pasado\s+ma[ñn]ana|ma[ñn]ana|la\s+semana\s+que\s+viene|"
    r"aujourd'hui|apr[eè]s-demain|demain|la\s+semaine\s+prochaine|heute|[üu]bermorgen|morgen|n[äa]chste\s+woche|"
    r"hoje|depois\s+de\s+amanh[ãa]|amanh[ãa]|semana\s+que\s+vem|pr[óo]xima\s+semana"
)
# date and time expressions, removed from the request to leave what it is about
_WHEN_WORDS = re.compile(
    r"\b(?:on|this|next|el|este|le|ce|am|an|diesen|n[äa]chsten|na|no|nesta|neste|pr[óo]xim[ao]|prochain|el\s+pr[óo]ximo)?\s*"
    r"(?:" + _WEEKDAYS + r")\b(?:\s+(?:prochain|que\s+vem|que\s+viene))?"
    r"|\b(?:" + _DAY_WORDS + r")\b"
    r"|\b(?:on|the|el|le|am|dia|o)?\s*\d{1,2}(?:st|nd|rd|th|\.|º)?\s+(?:of\s+|de\s+)?(?:jan|feb|m[aä]r|apr|abr|avr|may|mai|mayo|"
    r"maio|jun|jul|aug|ago|ao[uû]t|sep|set|oct|okt|out|nov|dec|dez|dic|d[ée]c)\w*\.?"
    r"|\b(?:on|by)?\s*(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?\b"
    r"|\b(?:in|within|en|dentro\s+de|dans|d'ici|em|daqui\s+a)\s+(?:\d{1,3}|a|one|un|una|une|einer|um|uma)\s*"
    r"(?:days?|weeks?|d[ií]as?|semanas?|jours?|semaines?|tag(?:en)?|wochen?)\b"
)
_CONNECTOR = re.compile(
    r"^(?:about|of|to|that|de|del|sobre|lo\s+de|que|pour|à\s+propos\s+de|du|des|an|wegen|dass|do|da|dos|das)\b\s*", re.IGNORECASE
)
_PRONOUN_ONLY = re.compile(r"^(?:it|that|this|lo|la|eso|esto|le|ça|cela|es|das|daran|isso|disso|isto)?$", re.IGNORECASE)
_CONTENT = re.compile(r"[^\W\d_]{4,}", re.UNICODE)
# "remind me what/how…": the shopper asks to be told something now
_QUESTION = re.compile(
    r"^[\s,:]*(?:of\s+)?(?:what|how|where|which|why|who|whether|qu[eé]|c[oó]mo|cu[aá]l(?:es)?|d[oó]nde|por\s+qu[eé]|"
    r"quel(?:le)?s?|comment|o[uù]|pourquoi|ce\s+que|was|wie|welche[rsnm]?|wo|warum|qual|quais|onde|o\s+que|por\s+que)\b"
)


@dataclass(frozen=True, slots=True)
class When:
    """A resolved reminder time (UTC) and what the shopper actually said."""

    at: datetime
    has_date: bool
    has_time: bool


def parse_time_of_day(text: str, *, bare_hours_pm: bool = True) -> time | None:
    """The clock time in a message ("at 6pm", "a las 18:30", "à 18h", "um 18 Uhr", "às 18h", "tonight"), or None.

    A bare hour from 1 to 7 after "at"/"a las"/"um"… with no am/pm is read as the
    afternoon (nobody asks for a 6 a.m. reminder that way; quiet hours would hold it anyway).
    """
    low = text.lower()
    if _NOON.search(low):
        return time(12, 0)
    if _MIDNIGHT.search(low):
        return time(0, 0)
    for m in _CLOCK.finditer(low):
        hour, minute = int(m.group("h")), int(m.group("m") or 0)
        has_unit = m.group(0).rstrip().endswith(("h", "hs", "hrs", "uhr", "horas", "heure", "heures"))
        if not (m.group("cue") or m.group("m") or m.group("pm") or m.group("am") or has_unit):
            continue  # a bare number ("2 pairs")
        if m.group("cue") and not (m.group("m") or m.group("pm") or m.group("am") or has_unit):
            after = low[m.end() :].lstrip()
            if re.match(r"(?:€|\$|%|euros?|d[ií]as?|days?|jours?|tage|weeks?|pairs?|pares|paires|paar|units?)", after):
                continue
        if hour > 23 or minute > 59:
            continue
        if m.group("pm") and hour < 12:
            hour += 12
        elif m.group("am") and hour == 12:
            hour = 0
        elif bare_hours_pm and m.group("cue") and not (m.group("m") or m.group("am")) and 1 <= hour <= 7:
            hour += 12
        return time(hour, minute)
    for pattern, moment in _PERIODS:
        if pattern.search(low):
            return moment
    return None


def _delay(low: str) -> timedelta | None:
    m = _DELAY.search(low)
    if m is None:
        return None
    one = m.group("one")
    half = bool(one) and (one.startswith(("half", "media", "meia")) or "halben" in one)
    amount = (0.5 if half else 1.0) if one else float(m.group("n"))
    if amount <= 0:
        return None
    unit = m.group("unit")
    minutes = unit.startswith("min")
    delta = timedelta(minutes=amount) if minutes else timedelta(hours=amount)
    return delta if delta <= timedelta(days=31) else None


def parse_when(text: str, *, language: str, now: datetime, timezone: str) -> When | None:
    """When a reminder request means, in the shopper's ``timezone``; None when it names no time at all.

    ``language`` is a supported locale (``pt_BR`` reads as Portuguese); its dates
    are tried first, then those of the other languages.
    """
    low = text.lower()
    tz = ZoneInfo(timezone)
    delay = _delay(low)
    if delay is not None:
        return When(now + delay, has_date=True, has_time=True)
    local_now = now.astimezone(tz)
    lang = "pt" if language.startswith("pt") else language.split("_")[0]
    deadline = None
    for candidate in dict.fromkeys((lang, "en", *PARSE_LANGUAGES)):  # shoppers mix languages ("recuérdamelo" in an English chat)
        deadline = extract_constraints(text, language=candidate).deadline
        if deadline is not None:
            break
    day: date | None = resolve_deadline(deadline, local_now.date()) if deadline else None
    if day is None and _TOMORROW_MORNING.search(low):
        day = local_now.date() + timedelta(days=1)
    if day is None and _TONIGHT.search(low):
        day = local_now.date()
    clock = parse_time_of_day(text)
    if day is None and clock is None:
        return None
    if clock is None:
        keep_time = deadline is not None and deadline.relative.startswith("within")
        clock = local_now.time().replace(second=0, microsecond=0) if keep_time else DEFAULT_TIME
    has_date = day is not None
    local = datetime.combine(day or local_now.date(), clock, tzinfo=tz)
    if not has_date and local <= local_now:
        local = datetime.combine(local_now.date() + timedelta(days=1), clock, tzinfo=tz)
    return When(local.astimezone(now.tzinfo), has_date=has_date, has_time=True)


def subject_of(text: str) -> str | None:
    """What the reminder is about: the request without its cue, date and time words ("the blue dress")."""
    low = text.lower()
    cue = REMIND.search(low)
    start = cue.end() if cue else 0
    rest = low[start:]
    original = text[start:]
    spans: list[tuple[int, int]] = []
    for pattern in (_DELAY, _CLOCK, _WHEN_WORDS, _NOON, _MIDNIGHT, *(p for p, _t in _PERIODS)):
        for m in pattern.finditer(rest):
            if m.end() > m.start() and (pattern is not _CLOCK or _looks_like_time(m)):
                spans.append((m.start(), m.end()))
    kept = "".join(ch if not any(s <= i < e for s, e in spans) else " " for i, ch in enumerate(original))
    words = re.sub(r"\s+", " ", kept).strip(" ,.;:!?¡¿-")
    for _round in range(2):
        words = _CONNECTOR.sub("", words).strip(" ,.;:!?¡¿-")
    if _PRONOUN_ONLY.fullmatch(words) or len(words) < 2:
        return None
    return words[:120]


def _looks_like_time(m: re.Match[str]) -> bool:
    return bool(m.group("cue") or m.group("m") or m.group("pm") or m.group("am") or re.search(r"(?:h|uhr|horas|heures?)\s*$", m.group(0)))


def format_when(at: datetime, timezone: str) -> str:
    """"Fri, Nov 20 at 6:00 PM" in the current locale and the shopper's timezone."""
    tz = ZoneInfo(timezone)
    locale = current_locale()
    local = at.astimezone(tz)
    day = format_skeleton("MMMEd", local, tzinfo=tz, locale=locale)
    clock = format_time(local.time(), "short", locale=locale)
    return _("{date} at {time}", date=day, time=clock)


def _shares_a_word(subject: str, title: str) -> bool:
    wanted = {fold(w) for w in _CONTENT.findall(subject)}
    return bool(wanted & {fold(w) for w in _CONTENT.findall(title)})


@dataclass(frozen=True, slots=True)
class Reminder:
    """A pending reminder as listed to the shopper."""

    id: int
    due_at: datetime
    timezone: str
    subject: str | None
    title: str | None


class ReminderDialog:
    """Setting, listing and cancelling reminders in a turn (see the module docstring)."""

    def __init__(self, store: Store, index: BaseIndex, shop: ShopProfile, policy: FollowUpPolicy) -> None:
        self._store = store
        self._index = index
        self._shop = shop
        self._policy = policy
        self._ledger = ConsentLedger(store)

    async def handle(
        self, inbound: InboundMessage, conversation: Conversation, text: str, now: datetime
    ) -> list[OutboundMessage] | None:
        """The replies when the message is about reminders, else None (context updated in place)."""
        if not text:
            return None
        context = conversation.context
        asked = context.get(CONSENT_PENDING_KEY)
        if isinstance(asked, dict) and asked.get("purpose") == Purpose.REMINDERS.value:
            context.pop(CONSENT_PENDING_KEY)
            answer = yes_or_no(text)
            if answer is not None:  # anything else drops the question: a later "yes" is never read as consent
                context["last_intent"] = "consent_answer"
                if not answer:
                    return [OutboundMessage(_("No problem, I won't message you about it."))]
                return [await self._confirmed(inbound, conversation, asked, now)]
        low = text.lower()
        if text.startswith(CANCEL_PAYLOAD + " "):
            context["last_intent"] = "reminder_cancel"
            return [await self._cancel_by_id(conversation, text[len(CANCEL_PAYLOAD) :].strip(), now)]
        cancel = CANCEL.search(low)
        if cancel:
            context["last_intent"] = "reminder_cancel"
            number = int(next(g for g in cancel.groups() if g))
            return [await self._cancel_nth(conversation, inbound.channel, number, now)]
        if LIST.search(low):
            context["last_intent"] = "reminder_list"
            context.pop(PENDING_KEY, None)
            return [await self._list(conversation, inbound.channel)]
        pending = context.pop(PENDING_KEY, None)
        cue = REMIND.search(low)
        if cue and not self._asks_a_question(low[cue.end() :], text, conversation, now):
            context["last_intent"] = "reminder_set"
            return [await self._set(inbound, conversation, text, None, now)]
        if isinstance(pending, dict):
            timezone = await self._timezone(conversation)
            if parse_when(text, language=conversation.locale or self._shop.default_locale, now=now, timezone=timezone):
                context["last_intent"] = "reminder_set"
                return [await self._set(inbound, conversation, text, pending, now)]
        return None

    # -- set ---------------------------------------------------------------------------

    def _asks_a_question(self, after_cue: str, text: str, conversation: Conversation, now: datetime) -> bool:
        """ "Remind me what your return policy is": a question, not a reminder (unless it names a time)."""
        if not _QUESTION.match(after_cue):
            return False
        language = conversation.locale or self._shop.default_locale
        return parse_when(text, language=language, now=now, timezone=self._shop.timezone) is None

    async def _timezone(self, conversation: Conversation) -> str:
        customer = await self._store.get_customer(conversation.customer_id)
        return (customer.timezone if customer else None) or self._shop.timezone

    async def _set(
        self, inbound: InboundMessage, conversation: Conversation, text: str, pending: dict[str, object] | None, now: datetime
    ) -> OutboundMessage:
        timezone = await self._timezone(conversation)
        locale = conversation.locale or self._shop.default_locale
        when = parse_when(text, language=locale, now=now, timezone=timezone)
        subject = str(pending["subject"]) if pending and pending.get("subject") else subject_of(text)
        if when is None or when.at <= now:
            conversation.context[PENDING_KEY] = {"subject": subject}
            if when is not None:
                return OutboundMessage(_("That time has already passed. When should I remind you?"))
            return OutboundMessage(_("When should I remind you? For example: \"tomorrow at 6pm\"."))
        full = await self._too_many(conversation.customer_id, inbound.channel)
        if full is not None:
            return full
        product = await self._product(conversation, subject)
        return await self._schedule(inbound, conversation, when.at, timezone, subject, product, now)

    async def _too_many(self, customer_id: str, channel: str) -> OutboundMessage | None:
        active = await self._active(customer_id, channel)
        if len(active) < MAX_ACTIVE_REMINDERS:
            return None
        return OutboundMessage(
            ngettext(
                "You already have {n} reminder; cancel one first (say \"my reminders\").",
                "You already have {n} reminders; cancel one first (say \"my reminders\").",
                len(active),
            )
        )

    async def _schedule(
        self,
        inbound: InboundMessage,
        conversation: Conversation,
        at: datetime,
        timezone: str,
        subject: str | None,
        product: Product | None,
        now: datetime,
    ) -> OutboundMessage:
        """Record the consent (``inbound`` is its evidence) and the reminder; the confirmation for the shopper."""
        evidence = Evidence.of(inbound)
        async with self._store.transaction() as db:
            await ConsentLedger.grant_in(db, conversation.customer_id, Purpose.REMINDERS, inbound.channel, evidence, now)
            await db.execute(
                "INSERT OR IGNORE INTO followups (kind, purpose, customer_id, channel, chat_id, conversation_id, sku, product_id, title, "
                "subject, timezone, locale, requested_at, due_at, source_key, created_at) "
                "VALUES ('reminder', 'reminders', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation.customer_id,
                    inbound.channel,
                    inbound.chat_id,
                    conversation.id,
                    _sku(product),
                    product.id if product else None,
                    product.title if product else None,
                    subject,
                    timezone,
                    conversation.locale,
                    stamp(at),
                    stamp(at),
                    f"reminder:{evidence.message_id}",
                    stamp(now),
                ),
            )
        about = subject or (product.title if product else None)
        moment = format_when(at, timezone)
        if about:
            text_out = _("Okay! I'll remind you on {when} about {subject}.", when=moment, subject=about)
        else:
            text_out = _("Okay! I'll remind you on {when}.", when=moment)
        allowed = self._policy.next_allowed(at, timezone)
        if allowed > at:
            text_out += " " + _(
                "I don't send messages between {start} and {end}, so it will come on {when}.",
                start=format_time(self._policy.quiet_start, "short", locale=current_locale()),
                end=format_time(self._policy.quiet_end, "short", locale=current_locale()),
                when=format_when(allowed, timezone),
            )
        text_out += " " + _("Say \"my reminders\" to see or cancel them.")
        return OutboundMessage(text_out)

    # -- offered by a language model ------------------------------------------------------

    async def offer(
        self,
        inbound: InboundMessage,
        conversation: Conversation,
        when: str,
        subject: str | None,
        product: Product | None,
        now: datetime,
    ) -> ReminderOffer:
        """A reminder the model offers to set: scheduled when consent stands, else the yes/no question.

        ``when`` is an ISO date or local date-time ("2026-11-20T18:00", read in the
        shopper's timezone) or the shopper's words ("tomorrow at 6pm", any of the five
        languages). ``product`` is the catalog product it is about, if any.
        """
        timezone = await self._timezone(conversation)
        locale = conversation.locale or self._shop.default_locale
        at = _moment(when, locale=locale, now=now, timezone=timezone)
        if at is None:
            return ReminderOffer(ReminderStatus.NEEDS_TIME, None)
        if at <= now:
            return ReminderOffer(ReminderStatus.IN_THE_PAST, None)
        full = await self._too_many(conversation.customer_id, inbound.channel)
        if full is not None:
            return ReminderOffer(ReminderStatus.TOO_MANY, full)
        subject = (subject or "").strip()[:120] or None
        if await self._ledger.is_granted(conversation.customer_id, Purpose.REMINDERS, inbound.channel):
            message = await self._schedule(inbound, conversation, at, timezone, subject, product, now)
            return ReminderOffer(ReminderStatus.SCHEDULED, message)
        conversation.context.pop("pending_confirmation", None)  # the last question asked is the one a "yes" answers
        conversation.context[CONSENT_PENDING_KEY] = {
            "purpose": Purpose.REMINDERS.value,
            "due_at": stamp(at),
            "timezone": timezone,
            "subject": subject,
            "product_id": product.id if product else None,
            "asked_at": now.isoformat(),
        }
        about = subject or (product.title if product else None)
        moment = format_when(at, timezone)
        if about:
            question = _("Want me to remind you on {when} about {subject}? (yes/no)", when=moment, subject=about)
        else:
            question = _("Want me to remind you on {when}? (yes/no)", when=moment)
        return ReminderOffer(ReminderStatus.ASKED, yes_no_question(question))

    async def _confirmed(
        self, inbound: InboundMessage, conversation: Conversation, asked: dict[str, object], now: datetime
    ) -> OutboundMessage:
        """The shopper said yes to a reminder the model offered: schedule it with this message as the consent."""
        subject = str(asked["subject"]) if asked.get("subject") else None
        at = datetime.fromisoformat(str(asked["due_at"]))
        if at <= now:
            conversation.context[PENDING_KEY] = {"subject": subject}
            return OutboundMessage(_("That time has already passed. When should I remind you?"))
        full = await self._too_many(conversation.customer_id, inbound.channel)
        if full is not None:
            return full
        product_id = asked.get("product_id")
        product = await self._index.get_product(str(product_id)) if product_id else None
        timezone = str(asked.get("timezone") or await self._timezone(conversation))
        return await self._schedule(inbound, conversation, at, timezone, subject, product, now)

    async def _product(self, conversation: Conversation, subject: str | None) -> Product | None:
        """The catalog product the reminder is about: named in the subject, else the last one shown."""
        shown = await self._shown_products(conversation)
        if subject is None:
            return shown[0] if shown else None
        for product in shown:
            if _shares_a_word(subject, product.title):
                return product
        hits = await self._index.search(subject, SearchFilters(), k=3, kinds=("product",))
        for hit in hits:
            if hit.product is not None and _shares_a_word(subject, hit.product.title):
                return hit.product
        return None

    async def _shown_products(self, conversation: Conversation) -> list[Product]:
        """Products of the bot's recent cards in this conversation, most recent first."""
        from kb.inventory import product_for_sku  # the inventory module is only needed here

        products: list[Product] = []
        for message in reversed(await self._store.recent_messages(conversation.id, limit=12)):
            if message.direction != "out" or not message.payload:
                continue
            for card in message.payload.get("products") or ():
                product = await product_for_sku(self._index, str(card.get("sku", "")))
                if product is not None and product.id not in {p.id for p in products}:
                    products.append(product)
            if products:
                return products
        return products

    # -- list and cancel -------------------------------------------------------------------

    async def _active(self, customer_id: str, channel: str) -> list[Reminder]:
        async with self._store.db.execute(
            "SELECT id, due_at, timezone, subject, title FROM followups WHERE customer_id = ? AND channel = ? AND kind = 'reminder' "
            "AND status = 'pending' ORDER BY requested_at, id",
            (customer_id, channel),
        ) as cur:
            rows = await cur.fetchall()
        return [Reminder(r["id"], datetime.fromisoformat(r["due_at"]), r["timezone"], r["subject"], r["title"]) for r in rows]

    async def _list(self, conversation: Conversation, channel: str) -> OutboundMessage:
        reminders = await self._active(conversation.customer_id, channel)
        if not reminders:
            return OutboundMessage(_("You have no reminders. Say \"remind me tomorrow at 6pm\" to set one."))
        lines = [ngettext("You have {n} reminder:", "You have {n} reminders:", len(reminders))]
        for number, reminder in enumerate(reminders, 1):
            about = reminder.subject or reminder.title or _("(no details)")
            lines.append(f"{number}. {format_when(reminder.due_at, reminder.timezone)} — {about}")
        lines.append(_("Say \"cancel reminder 2\" to cancel one."))
        buttons = tuple(Button(_("Cancel {n}", n=number), f"{CANCEL_PAYLOAD} {r.id}") for number, r in enumerate(reminders[:3], 1))
        return OutboundMessage("\n".join(lines), buttons=buttons)

    async def _cancel_nth(self, conversation: Conversation, channel: str, number: int, now: datetime) -> OutboundMessage:
        reminders = await self._active(conversation.customer_id, channel)
        if not 1 <= number <= len(reminders):
            return OutboundMessage(_("I can't find reminder {n}. Say \"my reminders\" to see them.", n=number))
        return await self._cancel(conversation, reminders[number - 1], number, now)

    async def _cancel_by_id(self, conversation: Conversation, value: str, now: datetime) -> OutboundMessage:
        reminders = await self._active(conversation.customer_id, conversation.channel)
        for number, reminder in enumerate(reminders, 1):
            if str(reminder.id) == value:
                return await self._cancel(conversation, reminder, number, now)
        return OutboundMessage(_("That reminder was already sent or cancelled."))

    async def _cancel(self, conversation: Conversation, reminder: Reminder, number: int, now: datetime) -> OutboundMessage:
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE followups SET status = 'cancelled', reason = 'cancelled by the shopper', ended_at = ? "
                "WHERE id = ? AND customer_id = ? AND status = 'pending'",
                (stamp(now), reminder.id, conversation.customer_id),
            )
        about = reminder.subject or reminder.title
        if about:
            return OutboundMessage(_("Reminder {n} is cancelled: {subject}.", n=number, subject=about))
        return OutboundMessage(_("Reminder {n} is cancelled.", n=number))


class ReminderStatus(StrEnum):
    """What became of a reminder the model offered to set."""

    NEEDS_TIME = "needs_time"  # no date or time could be read: ask the shopper when
    IN_THE_PAST = "in_the_past"
    TOO_MANY = "too_many"
    ASKED = "consent_needed"  # the yes/no question stands in the conversation
    SCHEDULED = "scheduled"


@dataclass(frozen=True, slots=True)
class ReminderOffer:
    status: ReminderStatus
    message: OutboundMessage | None  # what the shopper is told, when our code words it


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _moment(value: str, *, locale: str, now: datetime, timezone: str) -> datetime | None:
    """An ISO date or local date-time in the shopper's ``timezone``, else the words read by :func:`parse_when`."""
    text = value.strip()
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        when = parse_when(text, language=locale, now=now, timezone=timezone)
        return when.at if when else None
    if _ISO_DATE.fullmatch(text):
        local = datetime.combine(local.date(), DEFAULT_TIME)
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(timezone))
    return local.astimezone(now.tzinfo)


def _sku(product: Product | None) -> str | None:
    """The variant a reminder about a product points at (its cheapest in-stock one, for the card and conversions)."""
    if product is None:
        return None
    variants = [v for v in product.variants if v.in_stock] or list(product.variants)
    return min(variants, key=lambda v: v.price).sku if variants else None
