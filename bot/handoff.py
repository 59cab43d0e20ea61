"""Handing a conversation to the store's staff, and what the shopper is told.

States: ``bot`` → ``pending_human`` (escalated, waiting for staff) → ``human``
(a staff member owns it) → back to ``bot`` or ``closed``. While a thread is
pending or owned by staff the bot sends nothing of its own: the engine records
the shopper's messages for staff and replies with nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import StrEnum

from bot.i18n import _, format_moment
from bot.messages import OutboundMessage
from bot.shop import ShopProfile
from bot.store import Conversation

SILENT_STATES = frozenset({"pending_human", "human"})


class EscalationReason(StrEnum):
    ASKED_FOR_HUMAN = "asked_for_human"
    UNANSWERED = "unanswered"
    SENSITIVE = "sensitive"
    FRUSTRATION = "frustration"
    GUARDRAIL = "guardrail"


def bot_is_silent(conversation: Conversation) -> bool:
    return conversation.state in SILENT_STATES


def escalate(conversation: Conversation, reason: EscalationReason, at: datetime, detail: str | None = None) -> Conversation:
    """The conversation handed to staff, with the reason recorded for the staff inbox."""
    context = dict(conversation.context)
    label = f"{reason.value}:{detail}" if detail else reason.value
    context["escalation"] = {"reason": label, "at": at.isoformat()}
    return dataclasses.replace(conversation, state="pending_human", context=context)


def handoff_notice(shop: ShopProfile, at: datetime) -> OutboundMessage:
    """What the shopper is told once when the thread goes to staff."""
    text = _("I've passed this conversation to our team; a person will reply here.")
    if shop.business_hours and not shop.is_open(at):
        opening = shop.next_opening(at)
        if opening is not None:
            text += " " + _("We're closed right now and back at {when}.", when=format_moment(opening, shop.timezone))
    if shop.support_email:
        text += " " + _("You can also write to {email}.", email=shop.support_email)
    return OutboundMessage(text=text)
