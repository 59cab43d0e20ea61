"""The terminal channel: ``shopkeeper chat`` for a person, ``--json`` for scripts.

Interactive mode prints each reply in the plain-text form every channel
degrades to (numbered product options, sources). JSON mode reads one message per
line from standard input and writes one JSON object per reply on standard
output; a line that cannot be accepted produces one ``{"error": ...}`` object.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import TextIO

from bot.i18n import use_locale
from bot.messages import InboundMessage, OutboundMessage
from bot.runtime import Runtime

CHANNEL = "terminal"


async def _read_line(stream: TextIO) -> str | None:
    line = await asyncio.to_thread(stream.readline)
    return None if line == "" else line.rstrip("\r\n")


async def run_chat(
    runtime: Runtime,
    *,
    user_id: str,
    json_mode: bool,
    stdin: TextIO,
    stdout: TextIO,
    locale: str | None = None,
) -> int:
    """Chat until end of input (or "/quit"); returns the number of messages handled."""
    handled = 0
    interactive = not json_mode and stdin.isatty()
    if interactive:
        stdout.write(f"{runtime.shop.name}: chatting as {user_id!r}. Type /quit to leave.\n")
    while True:
        if interactive:
            stdout.write("you> ")
            stdout.flush()
        line = await _read_line(stdin)
        if line is None or line.strip() in {"/quit", "/exit"}:
            break
        text = line.strip()
        if not text:
            continue
        if len(text) > runtime.settings.max_message_chars:
            error = f"text: must be at most {runtime.settings.max_message_chars} characters (got {len(text)})"
            stdout.write((json.dumps({"error": error}) if json_mode else f"! {error}") + "\n")
            stdout.flush()
            continue
        inbound = InboundMessage(
            channel=CHANNEL,
            external_id=uuid.uuid4().hex,
            sender_id=user_id,
            chat_id=user_id,
            text=text,
            timestamp=datetime.now(UTC),
            locale_hint=locale,
        )
        replies, _new = await runtime.engine.accept_and_handle(inbound)
        handled += 1
        conversation = await runtime.store.open_conversation(CHANNEL, user_id)
        with use_locale((conversation.locale if conversation else None) or runtime.shop.default_locale):
            _write_replies(
                stdout, replies, runtime, conversation.id if conversation else "", conversation.state if conversation else "bot", json_mode
            )
        stdout.flush()
    return handled


def _write_replies(
    stdout: TextIO, replies: list[OutboundMessage], runtime: Runtime, conversation_id: str, state: str, json_mode: bool
) -> None:
    for reply in replies:
        if json_mode:
            record = reply.to_dict() | {"conversation_id": conversation_id, "state": state}
            stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            stdout.write(f"{runtime.shop.name}> {reply.as_plain_text()}\n")
