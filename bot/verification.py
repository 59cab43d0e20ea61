"""Who is this chat? Linking a channel identity to a customer, so their orders can be shown.

Two ways, run by :meth:`IdentityVerification.handle` once per turn (step 1 of
the engine's turn, before anything uses the customer):

* **WhatsApp number** (channels ``twilio`` and ``whatsapp``): the platform has
  verified the number, so a sender whose number (E.164, :mod:`bot.phones`) is a
  customer's phone is linked to that customer as verified, silently.
* **One-time code by e-mail** (every channel, the only way on Telegram,
  Messenger and the web): an unverified shopper who asks about an order is
  offered to verify; they give the e-mail address of their orders; a 6-digit
  code goes there through the :class:`bot.notifiers.BaseNotifier`; typing it in
  the chat links the identity to that customer as verified, and the question they
  asked first is answered.

The dialog state (``context["verification"]``) is ``{"step": "email"}`` after the
offer and ``{"step": "code"}`` once a code was issued. Codes live in the
``verification_codes`` table as a keyed hash (HMAC-SHA256 with the install's
secret) with an expiry (:data:`CODE_LIFETIME`) and an attempt limit
(:data:`MAX_ATTEMPTS`); at most :data:`MAX_CODES_PER_HOUR` are issued per chat
identity. The reply after an address is given is the same whether or not the
address belongs to a customer (an unknown address gets a code row too, which
no code can match), so the chat never reveals who shops here. A message that
is not an address (or not a code) simply leaves the dialog: the shopper is never
trapped in it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.i18n import _, ngettext
from bot.logs import hash_id
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.notifiers import BaseNotifier, NotifierError
from bot.phones import whatsapp_e164
from bot.shop import ShopProfile
from bot.store import Conversation, Store
from bot.understanding import Intent, Understanding

log = logging.getLogger(__name__)

CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 3
PHONE_VERIFIED_CHANNELS = frozenset({"twilio", "whatsapp"})
EMAIL = re.compile(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+\.[^\s@<>(),;:\"'.]{2,}")
CODE = re.compile(r"^\s*(\d{3})[\s-]?(\d{3})\s*[.!]?\s*$")


@dataclass(frozen=True, slots=True)
class VerificationStep:
    """What the verification step did with this turn.

    ``conversation`` may now belong to another customer (the identity was linked).
    When ``answered``, ``replies`` are the turn's answer. Otherwise the turn goes on;
    ``resume`` is then the question asked before verifying, to answer now, after ``replies``.
    """

    conversation: Conversation
    replies: tuple[OutboundMessage, ...] = ()
    answered: bool = False
    resume: str | None = None


class IdentityVerification:
    """Links chat identities to customers (verified phone, or a one-time code sent by e-mail)."""

    def __init__(self, store: Store, shop: ShopProfile, notifier: BaseNotifier, secret: bytes) -> None:
        self.store = store
        self.shop = shop
        self.notifier = notifier
        self._secret = secret

    async def handle(
        self, inbound: InboundMessage, conversation: Conversation, text: str, understanding: Understanding, now: datetime
    ) -> VerificationStep:
        verified = await self.store.is_verified(inbound.channel, inbound.sender_id)
        if not verified and inbound.channel in PHONE_VERIFIED_CHANNELS:
            linked = await self._link_by_phone(inbound, conversation)
            if linked is not None:
                conversation, verified = linked, True
        context = conversation.context
        state = context.get("verification")
        if verified:
            context.pop("verification", None)
            return VerificationStep(conversation)
        step = state.get("step") if isinstance(state, dict) else None
        if step == "code" and (code := CODE.match(text)):
            return await self._check_code(inbound, conversation, "".join(code.groups()), now)
        if step in ("email", "code") and (address := EMAIL.search(text)):
            return await self._issue_code(inbound, conversation, address.group(0), now)
        if step == "email":
            context.pop("verification", None)  # not an address: the shopper moved on
            step = None
        if understanding.intent is Intent.ORDER_STATUS:
            # a code already sent stays typeable; the question asked now is the one answered after verifying
            context["verification"] = {"step": step or "email", "question": text[:500]}
            return VerificationStep(conversation, (self._offer(),), answered=True)
        return VerificationStep(conversation)

    # -- WhatsApp: the number is the proof ------------------------------------

    async def _link_by_phone(self, inbound: InboundMessage, conversation: Conversation) -> Conversation | None:
        phone = whatsapp_e164(inbound.sender_id)
        customer_id = await self.store.customer_by_phone(phone) if phone else None
        if customer_id is None:
            return None
        await self.store.link_identity(inbound.channel, inbound.sender_id, customer_id, verified=True)
        log.info("whatsapp identity linked to customer %s by its verified number", hash_id(customer_id))
        return dataclasses.replace(conversation, customer_id=customer_id)

    # -- one-time code -----------------------------------------------------------

    def _offer(self) -> OutboundMessage:
        return OutboundMessage(
            _(
                "For your privacy I only share order details with the account holder. I can send a 6-digit code to the "
                "e-mail address you used for your orders: what is that address?"
            ),
            buttons=(Button(_("Talk to a person"), "/human"),),
        )

    def _hash(self, inbound: InboundMessage, code: str) -> str:
        message = f"{inbound.channel}|{inbound.sender_id}|{code}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def _issue_code(self, inbound: InboundMessage, conversation: Conversation, email: str, now: datetime) -> VerificationStep:
        context = conversation.context
        async with self.store.db.execute(
            "SELECT COUNT(*) FROM verification_codes WHERE channel = ? AND external_id = ? AND created_at > ?",
            (inbound.channel, inbound.sender_id, (now - timedelta(hours=1)).isoformat()),
        ) as cur:
            row = await cur.fetchone()
        if row is not None and row[0] >= MAX_CODES_PER_HOUR:
            context.pop("verification", None)
            return VerificationStep(conversation, (OutboundMessage(
                _("I've already sent several codes. Please try again in an hour, or ask to talk to a person."),
                buttons=(Button(_("Talk to a person"), "/human"),),
            ),), answered=True)
        customer_id = await self.store.customer_by_email(email)
        code = f"{secrets.randbelow(1_000_000):06d}"
        async with self.store.transaction() as db:
            # a newer code replaces the older ones of this chat
            await db.execute(
                "UPDATE verification_codes SET used_at = ? WHERE channel = ? AND external_id = ? AND used_at IS NULL",
                (now.isoformat(), inbound.channel, inbound.sender_id),
            )
            await db.execute(
                "INSERT INTO verification_codes (channel, external_id, customer_id, code_hash, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (inbound.channel, inbound.sender_id, customer_id, self._hash(inbound, code), now.isoformat(),
                 (now + CODE_LIFETIME).isoformat()),
            )
        if customer_id is not None:
            try:
                await self.notifier.send_code(
                    email=email, code=code, customer_id=customer_id, store_name=self.shop.name,
                    locale=conversation.locale or self.shop.default_locale,
                )
            except NotifierError as exc:  # the shopper hears the same as for an unknown address; staff see the log
                log.error("could not send a verification code to customer %s: %s", hash_id(customer_id), exc)
        context["verification"] = {**(context.get("verification") or {}), "step": "code"}
        return VerificationStep(conversation, (OutboundMessage(_(
            "If that address is on an order with us, I've just sent it a 6-digit code. Type the code here; "
            "it works for 10 minutes."
        )),), answered=True)

    async def _check_code(self, inbound: InboundMessage, conversation: Conversation, code: str, now: datetime) -> VerificationStep:
        context = conversation.context
        async with self.store.db.execute(
            "SELECT id, customer_id, code_hash, attempts, expires_at FROM verification_codes "
            "WHERE channel = ? AND external_id = ? AND used_at IS NULL ORDER BY id DESC LIMIT 1",
            (inbound.channel, inbound.sender_id),
        ) as cur:
            row = await cur.fetchone()
        if row is None or datetime.fromisoformat(row["expires_at"]) <= now:
            context["verification"] = {**context["verification"], "step": "email"}
            return VerificationStep(conversation, (OutboundMessage(_(
                "That code has expired. Send me your e-mail address again and I'll send a new one."
            )),), answered=True)
        matches = hmac.compare_digest(row["code_hash"], self._hash(inbound, code))
        if not matches or row["customer_id"] is None:
            attempts = int(row["attempts"]) + 1
            async with self.store.transaction() as db:
                await db.execute(
                    "UPDATE verification_codes SET attempts = ?, used_at = CASE WHEN ? >= ? THEN ? ELSE used_at END WHERE id = ?",
                    (attempts, attempts, MAX_ATTEMPTS, now.isoformat(), row["id"]),
                )
            left = MAX_ATTEMPTS - attempts
            if left <= 0:
                context["verification"] = {**context["verification"], "step": "email"}
                text = _(
                    "That code was tried too many times and no longer works. Send me your e-mail address again for a new one."
                )
            else:
                text = ngettext(
                    "That code isn't right. You can try once more.", "That code isn't right. You can try {n} more times.", left
                )
            return VerificationStep(conversation, (OutboundMessage(text),), answered=True)
        customer_id = str(row["customer_id"])
        async with self.store.transaction() as db:
            await db.execute("UPDATE verification_codes SET used_at = ? WHERE id = ?", (now.isoformat(), row["id"]))
        await self.store.link_identity(inbound.channel, inbound.sender_id, customer_id, verified=True)
        log.info("%s identity verified by e-mail code as customer %s", inbound.channel, hash_id(customer_id))
        question = context.pop("verification", {}).get("question")
        conversation = dataclasses.replace(conversation, customer_id=customer_id)
        notice = OutboundMessage(_("Thanks, you're verified: this chat is now linked to your account."))
        if question:
            return VerificationStep(conversation, (notice,), resume=str(question))
        return VerificationStep(conversation, (notice,), answered=True)
